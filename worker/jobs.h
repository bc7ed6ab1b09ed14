/*-------------------------------------------------------------------------
 *
 * worker/jobs.h
 *	  SPI access to md.polling_jobs and md.job_runs for the scheduler.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_JOBS_H
#define MD_JOBS_H

#include "nodes/pg_list.h"

/* a job claimed for one run */
typedef struct MdDueJob
{
	int64		job_id;
	int64		run_id;
	char	   *provider;
	int			nsymbols;
	char	  **symbols;
} MdDueJob;

/* the outcome of a run */
typedef struct MdRunResult
{
	int			ok;
	int			failed;
	List	   *error_classes;	/* distinct class words (char *) */
	char	   *message;		/* the first failure, or NULL */
} MdRunResult;

/* Each runs inside the caller's transaction (md_worker_begin). */

/*
 * Runs left "running" by a scheduler that is gone (a crash or a stop) are
 * marked failed; the runs of the other schedulers still running are not.
 */
extern int	md_jobs_fail_interrupted_runs(void);

/*
 * Claim due jobs for scheduler number (0..) of nworkers: up to limit, and
 * at most this scheduler's share of the work (jobs due and runs under way,
 * divided by nworkers); a job with a run under way is never claimed again
 * before that run finishes. A run row each (with our pid), last_status
 * 'running', and next_run_at moved on by whole intervals past now (no
 * drift, no pile-up). The jobs are copied into memory context cxt, to
 * outlive the transaction.
 */
extern List *md_jobs_claim_due(int limit, int number, int nworkers, MemoryContext cxt);

/*
 * Enabled jobs due now and not under way; milliseconds to the next due
 * job not under way: of those scheduler number may claim.
 */
extern int64 md_jobs_due_count(int number);
extern long md_jobs_ms_to_next(int number);

extern void md_jobs_finish_run(MdDueJob *job, MdRunResult *result);

#endif							/* MD_JOBS_H */
