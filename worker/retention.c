/*-------------------------------------------------------------------------
 *
 * worker/retention.c
 *	  The retention worker: keeps every growing table within its setting.
 *
 * Every marketdata.retention_interval it runs md._retention_step() (the
 * extension's SQL, also behind md_retention_run()) in one short
 * transaction after another until a step removes nothing: each step
 * deletes at most marketdata.retention_batch_size rows per table, so no
 * transaction is long and vacuum reclaims the space as it goes. Then it
 * drops the old months of md.prices (md._retention_partitions) in a
 * transaction of their own, which holds md.prices' lock only that long.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "spi_util.h"
#include "worker.h"

PGDLLEXPORT void md_retention_main(Datum main_arg);

#define STEP_SQL "SELECT md._retention_step($1)"
#define PARTITIONS_SQL "SELECT md._retention_partitions()"

static MdWorkerSlot *slot;
static TimestampTz last_run = 0;
static SPIPlanPtr step_plan = NULL;
static SPIPlanPtr partitions_plan = NULL;

static void
retention_start(MdWorkerSlot *worker_slot)
{
	slot = worker_slot;
}

/* one statement of SQL in a transaction of its own; the number it returns */
static int64
run_step(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes, Datum *args,
		 const char *what)
{
	bool		isnull;
	int64		n;

	md_worker_begin(what);
	md_spi_run(md_spi_plan(plan, sql, nargs, argtypes), args, NULL,
			   false, 1, SPI_OK_SELECT, what);
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									SPI_tuptable->tupdesc, 1, &isnull));
	md_worker_commit();
	return isnull ? 0 : n;
}

static long
retention_loop(MdWorkerSlot *worker_slot, MemoryContext loop_context, int *fd)
{
	/* from the last run and the setting now, so that a reload applies at once */
	TimestampTz next = TimestampTzPlusMilliseconds(last_run,
												   (int64) md_retention_interval * 1000);
	TimestampTz now = GetCurrentTimestamp();
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(md_retention_batch_size)};
	int64		removed;

	if (now < next)
	{
		md_worker_set_state(slot, "waiting for the next run");
		return (long) ((next - now) / 1000);
	}
	md_worker_set_state(slot, "removing old rows");
	removed = run_step(&step_plan, STEP_SQL, 1, argtypes, args,
					   "marketdata retention: removing old rows");
	if (removed > 0)
	{
		/* more to remove: the next step in a new transaction, at once */
		md_worker_loop_done(slot, removed, 0);
		return 0;
	}
	removed = run_step(&partitions_plan, PARTITIONS_SQL, 0, NULL, NULL,
					   "marketdata retention: dropping old partitions");
	md_worker_loop_done(slot, removed, 0);
	last_run = GetCurrentTimestamp();
	md_worker_set_state(slot, "waiting for the next run");
	return (long) md_retention_interval * 1000;
}

static const MdWorkerOps retention_ops = {
	.kind = "retention",
	.start = retention_start,
	.loop = retention_loop,
};

void
md_retention_main(Datum main_arg)
{
	md_worker_run(&retention_ops);
}
