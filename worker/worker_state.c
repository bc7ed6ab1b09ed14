/*-------------------------------------------------------------------------
 *
 * worker/worker_state.c
 *	  What each marketdata worker is doing, in shared memory.
 *
 * A *slot* describes one running worker: its kind (scheduler, relay,
 * consumer), database, state word, last loop, counters and last error.
 * Workers write their own slot; md._worker_status() reads them all for the
 * md.worker_status view. A backend that wrote work for a worker (a new job,
 * an outbox row) sets that worker's latch through its slot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "worker_state.h"

typedef struct MdCacheStats
{
	slock_t		mutex;
	int64		writes;
	int64		failures;
	char		last_error[MD_WORKER_ERROR_LEN];
	TimestampTz last_error_at;
	TimestampTz last_write_at;
} MdCacheStats;

static MdWorkerSlot *slots = NULL;
static MdCacheStats *cache_stats = NULL;
static MdWorkerSlot *my_slot = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
slots_size(void)
{
	return mul_size(MD_MAX_WORKER_SLOTS, sizeof(MdWorkerSlot));
}

static void
request_shmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(slots_size());
	RequestAddinShmemSpace(sizeof(MdCacheStats));
}

static void
startup_shmem(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	slots = ShmemInitStruct("marketdata worker slots", slots_size(), &found);
	if (!found)
	{
		memset(slots, 0, slots_size());
		for (i = 0; i < MD_MAX_WORKER_SLOTS; i++)
			SpinLockInit(&slots[i].mutex);
	}
	cache_stats = ShmemInitStruct("marketdata cache stats", sizeof(MdCacheStats), &found);
	if (!found)
	{
		memset(cache_stats, 0, sizeof(MdCacheStats));
		SpinLockInit(&cache_stats->mutex);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
md_worker_state_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_shmem;
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
	int			i;

	if (slots == NULL)
		elog(ERROR, "marketdata must be loaded by shared_preload_libraries");
	for (i = 0; i < MD_MAX_WORKER_SLOTS; i++)
	{
		MdWorkerSlot *slot = &slots[i];
		bool		mine = false;

		SpinLockAcquire(&slot->mutex);
		if (!slot->in_use)
		{
			slot->in_use = true;
			slot->pid = MyProcPid;
			slot->procno = MyProc->pgprocno;
			slot->dboid = MyDatabaseId;
			strlcpy(slot->kind, kind, sizeof(slot->kind));
			strlcpy(slot->state, "starting", sizeof(slot->state));
			slot->started_at = GetCurrentTimestamp();
			slot->last_loop = 0;
			slot->processed = 0;
			slot->backlog = 0;
			slot->last_error[0] = '\0';
			slot->last_error_at = 0;
			mine = true;
		}
		SpinLockRelease(&slot->mutex);
		if (mine)
		{
			before_shmem_exit(release_slot, PointerGetDatum(slot));
			my_slot = slot;
			return slot;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("too many marketdata workers (at most %d)", MD_MAX_WORKER_SLOTS)));
	return NULL;
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
md_cache_count_writes(int n)
{
	TimestampTz now = GetCurrentTimestamp();

	if (cache_stats == NULL)
		return;
	SpinLockAcquire(&cache_stats->mutex);
	cache_stats->writes += n;
	cache_stats->last_write_at = now;
	SpinLockRelease(&cache_stats->mutex);
}

void
md_cache_count_failure(const char *error)
{
	TimestampTz now = GetCurrentTimestamp();

	/* a worker's own status says it too */
	if (my_slot != NULL)
		md_worker_set_error(my_slot, error);
	if (cache_stats == NULL)
		return;
	SpinLockAcquire(&cache_stats->mutex);
	cache_stats->failures++;
	strlcpy(cache_stats->last_error, error, sizeof(cache_stats->last_error));
	cache_stats->last_error_at = now;
	SpinLockRelease(&cache_stats->mutex);
}

void
md_worker_wake(const char *kind, Oid dboid)
{
	int			i;

	if (slots == NULL)
		return;
	for (i = 0; i < MD_MAX_WORKER_SLOTS; i++)
	{
		MdWorkerSlot *slot = &slots[i];
		int			procno = -1;

		SpinLockAcquire(&slot->mutex);
		if (slot->in_use && slot->dboid == dboid && strcmp(slot->kind, kind) == 0)
			procno = slot->procno;
		SpinLockRelease(&slot->mutex);
		if (procno >= 0)
			SetLatch(&ProcGlobal->allProcs[procno].procLatch);
	}
}

/* kinds to wake when the current transaction commits, as a bit mask */
#define WAKE_KINDS 2
static const char *const wake_kinds[WAKE_KINDS] = {"scheduler", "relay"};
static int	wake_mask = 0;
static bool wake_callback_registered = false;

static void
wake_at_commit(XactEvent event, void *arg)
{
	int			i;

	if (wake_mask == 0)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		for (i = 0; i < WAKE_KINDS; i++)
			if (wake_mask & (1 << i))
				md_worker_wake(wake_kinds[i], MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_mask = 0;
}

void
md_worker_wake_at_commit(const char *kind)
{
	int			i;

	for (i = 0; i < WAKE_KINDS; i++)
		if (strcmp(wake_kinds[i], kind) == 0)
			wake_mask |= 1 << i;
	if (!wake_callback_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		wake_callback_registered = true;
	}
}

PG_FUNCTION_INFO_V1(md_wake_scheduler);

/*
 * Trigger on md.polling_jobs: a committed change wakes the scheduler at
 * once (pg_net's way), so a new job runs within a second without the
 * scheduler polling the table. The scheduler's own updates need no wake.
 */
Datum
md_wake_scheduler(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "md._wake_scheduler() must be called as a trigger");
	if (my_slot == NULL || strcmp(my_slot->kind, "scheduler") != 0)
		md_worker_wake_at_commit("scheduler");
	PG_RETURN_POINTER(NULL);
}

PG_FUNCTION_INFO_V1(md_worker_status);
PG_FUNCTION_INFO_V1(md_cache_status);

/* md._cache_status() -> (writes, failures, last_write_at, last_error, last_error_at) */
Datum
md_cache_status(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	MdCacheStats copy;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	memset(&copy, 0, sizeof(copy));
	if (cache_stats != NULL)
	{
		SpinLockAcquire(&cache_stats->mutex);
		memcpy(&copy, cache_stats, sizeof(copy));
		SpinLockRelease(&cache_stats->mutex);
	}
	values[0] = Int64GetDatum(copy.writes);
	values[1] = Int64GetDatum(copy.failures);
	values[2] = TimestampTzGetDatum(copy.last_write_at);
	nulls[2] = (copy.last_write_at == 0);
	values[3] = CStringGetTextDatum(copy.last_error);
	nulls[3] = (copy.last_error[0] == '\0');
	values[4] = TimestampTzGetDatum(copy.last_error_at);
	nulls[4] = (copy.last_error_at == 0);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/*
 * md._worker_status() -> setof (pid, database oid, worker, state, started_at,
 * last_loop, processed, backlog, last_error, last_error_at)
 */
Datum
md_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
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
		values[5] = TimestampTzGetDatum(copy.last_loop);
		nulls[5] = (copy.last_loop == 0);
		values[6] = Int64GetDatum(copy.processed);
		values[7] = Int64GetDatum(copy.backlog);
		values[8] = CStringGetTextDatum(copy.last_error);
		nulls[8] = (copy.last_error[0] == '\0');
		values[9] = TimestampTzGetDatum(copy.last_error_at);
		nulls[9] = (copy.last_error_at == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}
