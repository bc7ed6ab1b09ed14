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

/* runs left "running" by a crash or a stop are marked failed */
extern int	md_jobs_fail_interrupted_runs(void);

/*
 * Claim up to limit due jobs: a run row each, last_status 'running', and
 * next_run_at moved on by whole intervals past now (no drift, no pile-up).
 * The jobs are copied into memory context cxt, to outlive the transaction.
 */
extern List *md_jobs_claim_due(int limit, MemoryContext cxt);

/* enabled jobs due now and not claimed; milliseconds to the next due job */
extern int64 md_jobs_due_count(void);
extern long md_jobs_ms_to_next(void);

extern void md_jobs_finish_run(MdDueJob *job, MdRunResult *result);

extern void md_jobs_apply_retention(int seconds);

#endif							/* MD_JOBS_H */
