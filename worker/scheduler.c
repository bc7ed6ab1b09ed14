/*-------------------------------------------------------------------------
 *
 * worker/scheduler.c
 *	  The scheduler: runs due polling jobs (design invariant 2).
 *
 * One round: claim the due jobs in a short transaction (a run row each,
 * next_run_at moved on); with no transaction open, fetch every symbol of
 * every claimed job concurrently through the providers (libcurl multi,
 * each provider's max_concurrency, its circuit breaker and Retry-After, and
 * our own budget of rate_limit_per_minute requests), taking each fetch as
 * it settles. Whenever the round would wait for the network, a short
 * transaction stores the jobs
 * whose fetches are all settled (raw responses, the sink, their runs
 * finished): the first jobs of a round are visible while the last ones
 * are still being fetched. That transaction waits for no response (see
 * store_ready_jobs).
 * A change to md.polling_jobs wakes the scheduler at commit (a trigger);
 * otherwise it sleeps until the next job is due, at most a second.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "error_class.h"
#include "fetch.h"
#include "fetch_outcome.h"
#include "guc.h"
#include "health.h"
#include "http.h"
#include "jobs.h"
#include "kept_responses.h"
#include "raw_responses.h"
#include "worker.h"

#define MAX_JOBS_PER_ROUND 1000
#define HOUSEKEEPING_EVERY_MS 60000

static MdWorkerSlot *slot = NULL;
static int	my_number = 0;		/* 0..marketdata.scheduler_workers-1 */
static bool recovered = false;	/* interrupted runs failed since ready */
static TimestampTz last_housekeeping = 0;

PGDLLEXPORT void md_scheduler_main(Datum main_arg);

/*
 * Scheduler number's share of a provider's max_concurrency when nworkers
 * schedulers run: together exactly the limit, each in its own libcurl
 * multi handle. A scheduler whose share is 0 claims no job of the provider
 * (CLAIM_SQL: max_concurrency > number).
 */
static int
share_of(int limit, int number, int nworkers)
{
	return limit / nworkers + (number < limit % nworkers ? 1 : 0);
}

/*
 * Decide which fetches may go out now. Those that may not are classified
 * here and moved after the others (owner, the job index of each fetch,
 * moves with them); returns how many go out.
 */
static int
admit(MdFetch *fetches, int *owner, int n, List *providers)
{
	int			admitted = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		MdFetch    *f = &fetches[i];
		MdProviderInfo *p = md_provider_find(providers, f->provider, NULL);

		/* the request budget is fetch.c's, for every caller alike */
		if (p == NULL || !p->enabled)
		{
			md_fetch_fail(f, MD_UNAVAILABLE, "provider %s is disabled", f->provider);
			continue;
		}
		if (i != admitted)
		{
			MdFetch		tmp = fetches[admitted];
			int			tmp_owner = owner[admitted];

			fetches[admitted] = *f;
			owner[admitted] = owner[i];
			fetches[i] = tmp;
			owner[i] = tmp_owner;
		}
		admitted++;
	}
	return admitted;
}

/* a claimed job in a round: its fetches, and how many are not settled */
typedef struct RoundJob
{
	MdDueJob   *job;
	MdFetch   **fetches;		/* its symbols' fetches, in the round's array */
	int			nfetches;
	int			pending;
} RoundJob;

/* a round: the claimed jobs, and which job each fetch belongs to */
typedef struct Round
{
	RoundJob   *jobs;
	int			njobs;
	int		   *owner;			/* per fetch: its index in jobs */
	MdFetch    *base;			/* the round's fetches */
	RoundJob  **ready;			/* settled, not stored yet */
	int			nready;
	int			stored;
} Round;

/* The outcome of a job's run from its symbols' fetches. */
static void
finish_run(RoundJob *rj)
{
	MdRunResult result = {0};
	int			i;

	for (i = 0; i < rj->nfetches; i++)
	{
		MdFetch    *f = rj->fetches[i];
		const char *word;
		ListCell   *lc;
		bool		seen = false;

		if (f->cls == MD_OK)
		{
			result.ok++;
			continue;
		}
		result.failed++;
		word = md_error_class_word(f->cls);
		foreach(lc, result.error_classes)
			seen |= strcmp((char *) lfirst(lc), word) == 0;
		if (!seen)
			result.error_classes = lappend(result.error_classes, (char *) word);
		if (result.message == NULL)
			result.message = psprintf("%s: %s", f->symbol, f->message);
	}
	md_jobs_finish_run(rj->job, &result);
}

/*
 * Store the jobs whose fetches are all settled and not stored yet: their
 * raw responses and prices, and finish their runs, in one short
 * transaction. Called when the round would wait for the network (and at
 * its end), so the first jobs of a round are visible while the last ones
 * are still being fetched, and under load jobs that settle together share
 * a transaction. The transaction waits for no response: the requests that
 * can go out are out, and between its statements md_fetch_pump takes the
 * answers that came in and sends the next requests, so the provider
 * connections do not stand idle.
 */
static void
store_ready_jobs(Round *round, MdFetchRound *fetching)
{
	MemoryContext cxt = CurrentMemoryContext;
	MdFetch    *copy;
	int			n = 0;
	int			i;
	int			k;

	if (round->nready == 0)
		return;
	md_worker_set_state(slot, "storing");
	md_worker_begin("marketdata scheduler: storing prices");
	/* md_fetch_store takes an array: these jobs' fetches, side by side */
	for (i = 0; i < round->nready; i++)
		n += round->ready[i]->nfetches;
	copy = palloc(sizeof(MdFetch) * Max(n, 1));
	n = 0;
	for (i = 0; i < round->nready; i++)
		for (k = 0; k < round->ready[i]->nfetches; k++)
			copy[n++] = *round->ready[i]->fetches[k];
	md_raw_responses_store(copy, n);
	md_fetch_pump(fetching);
	md_fetch_ingest(copy, n);
	md_fetch_pump(fetching);
	for (i = 0; i < round->nready; i++)
		finish_run(round->ready[i]);
	md_worker_commit();
	/* the commit left us in TopMemoryContext */
	MemoryContextSwitchTo(cxt);
	md_worker_set_state(slot, "fetching");
	round->stored += round->nready;
	round->nready = 0;
}

/* one fetch of the round is settled: its job may be ready */
static void
fetch_settled(Round *round, MdFetch *f)
{
	RoundJob   *rj = &round->jobs[round->owner[f - round->base]];

	Assert(rj->pending > 0);
	if (--rj->pending == 0)
		round->ready[round->nready++] = rj;
}

/*
 * Fetch the round's admitted fetches: take each as it settles; when none
 * is settled and the network must be waited for, store the jobs that are
 * ready first; the last ones after the round.
 */
static void
fetch_and_store(Round *round, MdFetch *fetches, int n, List *providers)
{
	MdFetchRound *fetching = md_fetch_start(fetches, n, providers);

	while (!md_fetch_finished(fetching))
	{
		MdFetch    *f = md_fetch_next(fetching, 0);

		if (f == NULL && round->nready > 0)
		{
			store_ready_jobs(round, fetching);
			/* what finished meanwhile frees slots: send the next requests */
			md_fetch_pump(fetching);
			continue;
		}
		if (f == NULL)
			f = md_fetch_next(fetching, -1);
		if (f != NULL)
			fetch_settled(round, f);
	}
	md_fetch_end(fetching);
	store_ready_jobs(round, fetching);
}

/* runs of a scheduler that is gone (we at an earlier start, or another) */
static void
fail_interrupted_runs(void)
{
	int			failed;

	md_worker_begin("marketdata scheduler: failing interrupted runs");
	failed = md_jobs_fail_interrupted_runs();
	md_worker_commit();
	if (failed > 0)
		elog(LOG, "marketdata scheduler: %d interrupted runs marked failed", failed);
}

/*
 * One round: claim due jobs; fetch without a transaction; store the jobs
 * as their fetches settle.
 */
static int
run_due_jobs(MemoryContext cxt)
{
	int			nworkers = md_scheduler_workers;
	List	   *jobs;
	List	   *providers;
	MdFetch    *fetches;
	int		   *owner;
	Round		round = {0};
	int			n = 0;
	int			admitted;
	int			i;
	ListCell   *lc;
	MemoryContext old;

	md_worker_begin("marketdata scheduler: claiming due jobs");
	jobs = md_jobs_claim_due(MAX_JOBS_PER_ROUND, my_number, nworkers, cxt);
	old = MemoryContextSwitchTo(cxt);
	providers = md_providers_load();
	MemoryContextSwitchTo(old);
	md_worker_commit();
	if (jobs == NIL)
		return 0;
	foreach(lc, providers)
	{
		MdProviderInfo *p = lfirst(lc);

		p->max_concurrency = share_of(p->max_concurrency, my_number, nworkers);
	}

	md_worker_set_state(slot, "fetching");
	old = MemoryContextSwitchTo(cxt);
	round.njobs = list_length(jobs);
	round.jobs = palloc0(sizeof(RoundJob) * round.njobs);
	round.ready = palloc(sizeof(RoundJob *) * round.njobs);
	foreach(lc, jobs)
		n += ((MdDueJob *) lfirst(lc))->nsymbols;
	fetches = palloc0(sizeof(MdFetch) * Max(n, 1));
	owner = palloc(sizeof(int) * Max(n, 1));
	n = 0;
	foreach(lc, jobs)
	{
		MdDueJob   *job = lfirst(lc);
		RoundJob   *rj = &round.jobs[foreach_current_index(lc)];
		int			k;

		rj->job = job;
		rj->fetches = palloc(sizeof(MdFetch *) * Max(job->nsymbols, 1));
		for (k = 0; k < job->nsymbols; k++)
		{
			fetches[n].symbol = job->symbols[k];
			fetches[n].provider = job->provider;
			owner[n] = foreach_current_index(lc);
			n++;
		}
	}
	admitted = admit(fetches, owner, n, providers);
	/* after admit's moves: each job's fetches, and those still to settle */
	for (i = 0; i < n; i++)
	{
		RoundJob   *rj = &round.jobs[owner[i]];

		rj->fetches[rj->nfetches++] = &fetches[i];
		if (i < admitted)
			rj->pending++;
	}
	round.owner = owner;
	round.base = fetches;
	/* jobs with nothing to fetch (every symbol refused by admit) are ready */
	for (i = 0; i < round.njobs; i++)
		if (round.jobs[i].pending == 0)
			round.ready[round.nready++] = &round.jobs[i];
	fetch_and_store(&round, fetches, admitted, providers);
	MemoryContextSwitchTo(old);
	if (round.stored != round.njobs)
		elog(ERROR, "marketdata scheduler: %d of %d jobs of the round stored",
			 round.stored, round.njobs);
	return n;
}

static void
scheduler_start(MdWorkerSlot *worker_slot)
{
	slot = worker_slot;
}

/* marketdata.scheduler_workers was lowered: the launcher stops us */
static const char *
scheduler_idle_reason(void)
{
	return my_number >= md_scheduler_workers ? "stopping: not wanted" : NULL;
}

/* after CREATE EXTENSION (again), the runs of an earlier start are failed */
static void
scheduler_not_ready(void)
{
	recovered = false;
}

static long
scheduler_loop(MdWorkerSlot *worker_slot, MemoryContext loop_context, int *fd)
{
	int			fetched;
	int64		due;
	long		next;
	bool		housekeeping;

	if (!recovered)
	{
		fail_interrupted_runs();
		recovered = true;
	}
	fetched = run_due_jobs(loop_context);
	housekeeping = TimestampDifferenceExceeds(last_housekeeping, GetCurrentTimestamp(),
											  HOUSEKEEPING_EVERY_MS);
	md_worker_begin("marketdata scheduler: looking ahead");
	/* responses of failed md_price calls elsewhere, kept for the first */
	if (my_number == 0)
		fetched += md_kept_responses_store();
	due = md_jobs_due_count(my_number);
	next = md_jobs_ms_to_next(my_number);
	if (housekeeping)
		last_housekeeping = GetCurrentTimestamp();
	md_worker_commit();
	/* a scheduler stopped for good: the others fail its runs */
	if (housekeeping)
		fail_interrupted_runs();
	md_worker_loop_done(slot, fetched, due);
	md_worker_set_state(slot, next < 0 ? "idle: no enabled job" : "waiting for the next job");
	/* due jobs left over (a round takes at most so many) run at once */
	if (due > 0)
		return 0;
	return Min(next >= 0 ? next : MD_WORKER_NO_DEADLINE,
			   md_worker_ms_until(last_housekeeping, HOUSEKEEPING_EVERY_MS));
}

static const MdWorkerOps scheduler_ops = {
	.kind = "scheduler",
	.start = scheduler_start,
	.idle_reason = scheduler_idle_reason,
	.not_ready = scheduler_not_ready,
	.loop = scheduler_loop,
};

void
md_scheduler_main(Datum main_arg)
{
	my_number = DatumGetInt32(main_arg);
	md_worker_run(&scheduler_ops);
}
