/*-------------------------------------------------------------------------
 *
 * worker/worker_state.c
 *	  What each marketdata worker is doing, in shared memory.
 *
 * A *slot* describes one running worker: its kind (scheduler, relay,
 * consumer), database, state word, last loop, counters and last error.
 * Workers write their own slot; md._worker_status() reads them all for the
 * md.worker_status view. A worker's slot is the one of its listener number
 * (extension/wake.c), through which a backend that wrote work for it (a
 * new job, an outbox row) sets its latch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "shmem.h"
#include "status_row.h"
#include "wake.h"
#include "worker_state.h"

static MdWorkerSlot *slots = NULL;
static MdWorkerSlot *my_slot = NULL;
static void
slots_init(void *ptr)
{
	MdWorkerSlot *s = ptr;
	int			i;

	for (i = 0; i < MD_MAX_WORKER_SLOTS; i++)
		SpinLockInit(&s[i].mutex);
}

void
md_worker_state_init(void)
{
	md_shmem_add("marketdata worker slots", mul_size(MD_MAX_WORKER_SLOTS, sizeof(MdWorkerSlot)),
				 (void **) &slots, NULL, slots_init);
}

static void
release_slot(int code, Datum arg)
{
	MdWorkerSlot *slot = (MdWorkerSlot *) DatumGetPointer(arg);

	SpinLockAcquire(&slot->mutex);
	slot->in_use = false;
	slot->pid = 0;
	SpinLockRelease(&slot->mutex);
}

MdWorkerSlot *
md_worker_slot_acquire(const char *kind)
{
	MdWorkerSlot *slot;

	if (slots == NULL)
		elog(ERROR, "marketdata must be loaded by shared_preload_libraries");
	/* a worker listens for its kind of work; its number is its slot */
	slot = &slots[md_wake_listen(kind)];
	SpinLockAcquire(&slot->mutex);
	slot->in_use = true;
	slot->pid = MyProcPid;
	slot->dboid = MyDatabaseId;
	strlcpy(slot->kind, kind, sizeof(slot->kind));
	strlcpy(slot->state, "starting", sizeof(slot->state));
	slot->started_at = GetCurrentTimestamp();
	slot->last_loop = 0;
	slot->processed = 0;
	slot->backlog = 0;
	slot->last_error[0] = '\0';
	slot->last_error_at = 0;
	SpinLockRelease(&slot->mutex);
	before_shmem_exit(release_slot, PointerGetDatum(slot));
	my_slot = slot;
	return slot;
}

void
md_worker_set_state(MdWorkerSlot *slot, const char *state)
{
	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->state, state, sizeof(slot->state));
	SpinLockRelease(&slot->mutex);
}

void
md_worker_loop_done(MdWorkerSlot *slot, int64 processed, int64 backlog)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&slot->mutex);
	slot->last_loop = now;
	slot->processed += processed;
	slot->backlog = backlog;
	SpinLockRelease(&slot->mutex);
}

void
md_worker_set_error(MdWorkerSlot *slot, const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&slot->mutex);
	strlcpy(slot->last_error, error, sizeof(slot->last_error));
	slot->last_error_at = now;
	SpinLockRelease(&slot->mutex);
}

void
md_worker_report_error(const char *error)
{
	if (my_slot != NULL)
		md_worker_set_error(my_slot, error);
}

PG_FUNCTION_INFO_V1(md_worker_status);

/*
 * md._worker_status() -> setof (pid, database oid, worker, state, started_at,
 * last_loop, processed, backlog, last_error, last_error_at)
 */
Datum
md_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = md_status_rows(fcinfo);
	int			i;

	if (slots == NULL)
		PG_RETURN_VOID();
	for (i = 0; i < MD_MAX_WORKER_SLOTS; i++)
	{
		MdWorkerSlot copy;
		Datum		values[10];
		bool		nulls[10] = {false};

		SpinLockAcquire(&slots[i].mutex);
		memcpy(&copy, &slots[i], sizeof(copy));
		SpinLockRelease(&slots[i].mutex);
		if (!copy.in_use)
			continue;
		values[0] = Int32GetDatum(copy.pid);
		values[1] = ObjectIdGetDatum(copy.dboid);
		values[2] = CStringGetTextDatum(copy.kind);
		values[3] = CStringGetTextDatum(copy.state);
		values[4] = TimestampTzGetDatum(copy.started_at);
		md_status_time(values, nulls, 5, copy.last_loop);
		values[6] = Int64GetDatum(copy.processed);
		values[7] = Int64GetDatum(copy.backlog);
		md_status_text(values, nulls, 8, copy.last_error);
		md_status_time(values, nulls, 9, copy.last_error_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
