/*-------------------------------------------------------------------------
 *
 * worker/backfill.c
 *	  The backfill worker: runs the requests of md.backfill_jobs, one
 *	  after another, within its share of each provider's budget.
 *
 * A *job* is a row of md.backfill_jobs; a *request* is one history call
 * for one symbol and one slice of the job's range. Each step is one
 * transaction of md._backfill_step() (the extension's SQL): the request,
 * its bars and the job's cursor commit together, so a crash or kill -9
 * loses at most the request under way (sent again on restart) and never
 * doubles a bar. Its requests take tokens of the provider's budget like
 * the scheduler's; the step paces them at marketdata.backfill_share of
 * the provider's rate, so live polls keep the rest of it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/timestamp.h"

#include "spi_util.h"
#include "worker.h"

PGDLLEXPORT void md_backfill_main(Datum main_arg);

#define STEP_SQL "SELECT md._backfill_step()"
/* no job runs: look again this often (an INSERT starts within it) */
#define IDLE_MS 1000

static MdWorkerSlot *slot;
static TimestampTz next_step = 0;
static SPIPlanPtr step_plan = NULL;

static void
backfill_start(MdWorkerSlot *worker_slot)
{
	slot = worker_slot;
}

static long
backfill_loop(MdWorkerSlot *worker_slot, MemoryContext loop_context, int *fd)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		isnull;
	int32		wait_ms;

	if (now < next_step)
		return (long) ((next_step - now) / 1000);

	md_worker_set_state(slot, "running a request");
	md_worker_begin("marketdata backfill: running a request");
	md_spi_run(md_spi_plan(&step_plan, STEP_SQL, 0, NULL), NULL, NULL,
			   false, 1, SPI_OK_SELECT, "backfill step");
	wait_ms = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull));
	md_worker_commit();
	if (isnull || wait_ms < 0)
	{
		md_worker_set_state(slot, "waiting for a job");
		wait_ms = IDLE_MS;
	}
	else
	{
		md_worker_loop_done(slot, 1, 0);
		md_worker_set_state(slot, "pacing requests");
	}
	next_step = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);
	return wait_ms;
}

static const MdWorkerOps backfill_ops = {
	.kind = "backfill",
	.start = backfill_start,
	.loop = backfill_loop,
};

void
md_backfill_main(Datum main_arg)
{
	md_worker_run(&backfill_ops);
}
