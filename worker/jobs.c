/*-------------------------------------------------------------------------
 *
 * worker/jobs.c
 *	  SPI access to md.polling_jobs and md.job_runs for the scheduler.
 *
 * A *job* is a schedule (symbols, interval, provider); a *run* is one
 * execution of it, recorded in md.job_runs from claim to finish. Schedules
 * do not drift: next_run_at moves by whole intervals from where it was,
 * skipping the slots a long run overran instead of piling them up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "spi_util.h"
#include "jobs.h"

#define INTERRUPTED_MESSAGE "interrupted: the scheduler stopped during the run"

/*
 * A run is interrupted when the scheduler that claimed it is gone: no
 * marketdata scheduler of that pid runs (a pid is reused at most by an
 * unrelated process, or by us: a scheduler that starts has no run yet).
 */
#define FAIL_INTERRUPTED_SQL \
	"WITH r AS (" \
	"  UPDATE md.job_runs r SET status = 'failed', finished_at = now()," \
	"    message = '" INTERRUPTED_MESSAGE "'" \
	"  WHERE status = 'running' AND (r.worker_pid IS NULL OR r.worker_pid = $1" \
	"    OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a" \
	"      WHERE a.pid = r.worker_pid AND a.backend_type = 'marketdata scheduler'))" \
	"  RETURNING job_id)" \
	"UPDATE md.polling_jobs j SET last_status = 'failed'," \
	"  last_error = '" INTERRUPTED_MESSAGE "'" \
	" FROM r WHERE j.id = r.job_id AND j.last_status = 'running'"

/*
 * A job is due when enabled, its time has come, and no run of it is under
 * way (another scheduler may have it). Up to $1 of them, and of those the
 * jobs of providers with a share of concurrency for scheduler number $2
 * of $3 (see share_of in scheduler.c): a share of the work under way, so
 * that the schedulers split a burst instead of the first taking it all.
 * Rows locked by another scheduler's claim are skipped. A time that is not
 * finite is refused by the table; were one there, it would stop every
 * claim ("cannot subtract infinite timestamps"), so it is never due.
 */
#define DUE_WHERE \
	" j.enabled AND j.next_run_at <= now() AND isfinite(j.next_run_at)" \
	"  AND j.last_status IS DISTINCT FROM 'running'"

/* a job this scheduler may run: $n is its number */
#define MINE_WHERE(n) \
	" EXISTS (SELECT 1 FROM md.providers p" \
	"  WHERE p.name = j.provider AND p.max_concurrency > " n ")"

/*
 * A run starts when its claim runs, not when the claiming transaction
 * began: a claim that sees another scheduler's finish committed comes
 * after that finish, and clock_timestamp() says so where now() would
 * put the start before it.
 */
#define CLAIM_SQL \
	"WITH due AS (" \
	"  SELECT j.id FROM md.polling_jobs j" \
	"  WHERE" DUE_WHERE " AND" MINE_WHERE("$2") \
	"  ORDER BY j.next_run_at" \
	"  LIMIT least($1, greatest(1, ceil(((SELECT count(*) FROM md.polling_jobs j" \
	"      WHERE" DUE_WHERE ") + (SELECT count(*) FROM md.job_runs" \
	"      WHERE status = 'running')) / $3::float8)))" \
	"  FOR UPDATE OF j SKIP LOCKED)," \
	" upd AS (" \
	"  UPDATE md.polling_jobs j SET last_run_at = now(), last_status = 'running'," \
	"    next_run_at = j.next_run_at + make_interval(secs => (j.interval *" \
	"      (floor(extract(epoch FROM now() - j.next_run_at) / j.interval) + 1))::float8)" \
	"  FROM due WHERE j.id = due.id" \
	"  RETURNING j.id, j.provider, j.symbols)," \
	" runs AS (" \
	"  INSERT INTO md.job_runs (job_id, worker_pid, started_at)" \
	"  SELECT id, $4, clock_timestamp() FROM upd" \
	"  RETURNING id, job_id)" \
	"SELECT upd.id, runs.id, upd.provider, upd.symbols" \
	" FROM upd JOIN runs ON runs.job_id = upd.id ORDER BY upd.id"

#define DUE_COUNT_SQL \
	"SELECT count(*) FROM md.polling_jobs j WHERE" DUE_WHERE " AND" MINE_WHERE("$1")

/* a job under way is not next: its scheduler runs it again if due */
#define NEXT_SQL \
	"SELECT (extract(epoch FROM min(next_run_at) - clock_timestamp()) * 1000)::int8" \
	" FROM md.polling_jobs j WHERE j.enabled AND j.last_status IS DISTINCT FROM 'running'" \
	"  AND isfinite(j.next_run_at)" \
	"  AND" MINE_WHERE("$1")

#define FINISH_SQL \
	"WITH r AS (" \
	"  UPDATE md.job_runs SET status = $2, finished_at = clock_timestamp(), symbols_ok = $3," \
	"    symbols_failed = $4, error_classes = $5, message = $6" \
	"  WHERE id = $1 RETURNING job_id)" \
	"UPDATE md.polling_jobs j SET last_status = $2, last_error = $6" \
	" FROM r WHERE j.id = r.job_id"

static SPIPlanPtr fail_plan = NULL;
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr due_plan = NULL;
static SPIPlanPtr next_plan = NULL;
static SPIPlanPtr finish_plan = NULL;

int
md_jobs_fail_interrupted_runs(void)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(MyProcPid)};

	md_spi_run(md_spi_plan(&fail_plan, FAIL_INTERRUPTED_SQL, 1, argtypes), args, NULL,
			   false, 0, SPI_OK_UPDATE, "failing interrupted runs");
	return (int) SPI_processed;
}

List *
md_jobs_claim_due(int limit, int number, int nworkers, MemoryContext cxt)
{
	Oid			argtypes[4] = {INT4OID, INT4OID, INT4OID, INT4OID};
	Datum		args[4] = {Int32GetDatum(limit), Int32GetDatum(number),
	Int32GetDatum(nworkers), Int32GetDatum(MyProcPid)};
	List	   *jobs = NIL;
	uint64		i;

	md_spi_run(md_spi_plan(&claim_plan, CLAIM_SQL, 4, argtypes), args, NULL,
			   false, 0, SPI_OK_SELECT, "claiming due jobs");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		MdDueJob   *job = palloc0(sizeof(MdDueJob));
		Datum	   *elems;
		bool	   *nulls;
		bool		isnull;
		int			n;
		int			k;

		job->job_id = DatumGetInt64(SPI_getbinval(tuple, desc, 1, &isnull));
		job->run_id = DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
		job->provider = TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tuple, desc, 4, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		job->nsymbols = n;
		job->symbols = palloc(sizeof(char *) * Max(n, 1));
		for (k = 0; k < n; k++)
			job->symbols[k] = TextDatumGetCString(elems[k]);
		jobs = lappend(jobs, job);
		MemoryContextSwitchTo(old);
	}
	return jobs;
}

int64
md_jobs_due_count(int number)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(number)};
	bool		isnull;

	md_spi_run(md_spi_plan(&due_plan, DUE_COUNT_SQL, 1, argtypes), args, NULL,
			   true, 1, SPI_OK_SELECT, "counting due jobs");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
									   &isnull));
}

long
md_jobs_ms_to_next(int number)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(number)};
	bool		isnull;
	Datum		d;

	md_spi_run(md_spi_plan(&next_plan, NEXT_SQL, 1, argtypes), args, NULL,
			   true, 1, SPI_OK_SELECT, "finding the next due job");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	return (long) Max(DatumGetInt64(d), 0);
}

void
md_jobs_finish_run(MdDueJob *job, MdRunResult *result)
{
	Oid			argtypes[6] = {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTARRAYOID, TEXTOID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	const char *status;
	Datum	   *words;
	ListCell   *lc;
	int			n = 0;

	status = result->failed == 0 ? "succeeded" : result->ok == 0 ? "failed" : "partial";
	words = palloc(sizeof(Datum) * Max(list_length(result->error_classes), 1));
	foreach(lc, result->error_classes)
		words[n++] = CStringGetTextDatum((char *) lfirst(lc));

	args[0] = Int64GetDatum(job->run_id);
	args[1] = CStringGetTextDatum(status);
	args[2] = Int32GetDatum(result->ok);
	args[3] = Int32GetDatum(result->failed);
	args[4] = PointerGetDatum(construct_array(words, n, TEXTOID, -1, false, TYPALIGN_INT));
	if (n == 0)
		nulls[4] = 'n';
	if (result->message != NULL)
		args[5] = CStringGetTextDatum(result->message);
	else
		nulls[5] = 'n';
	md_spi_run(md_spi_plan(&finish_plan, FINISH_SQL, 6, argtypes), args, nulls,
			   false, 0, SPI_OK_UPDATE, "finishing a run");
}
