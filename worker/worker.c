/*-------------------------------------------------------------------------
 *
 * worker/worker.c
 *	  Start-up, waiting and transactions shared by every per-database
 *	  marketdata worker.
 *
 * A worker never holds a transaction while it waits for I/O: it claims
 * work in one short transaction, commits, does the HTTP or Kafka I/O, and
 * stores the results in the next one (md_worker_begin / md_worker_commit).
 * The scheduler stores the jobs already fetched while others are still
 * in flight, in transactions that wait for no response.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "cache_stats.h"
#include "version.h"
#include "worker.h"

/* the longest wait of a worker loop, and that of one waiting for CREATE EXTENSION */
#define MAX_WAIT_MS 1000
#define NOT_READY_WAIT_MS 5000

/* advisory lock space of the one-worker-per-kind-and-database guard */
#define MD_WORKER_LOCK_FIELD1 0x6d64		/* "md" */

static bool
take_kind_lock(const char *kind, int number)
{
	LOCKTAG		tag;
	uint32		h = 0;
	const char *p;

	for (p = kind; *p; p++)
		h = h * 31 + (unsigned char) *p;
	/* the first of a kind keeps the key it always had */
	if (number > 0)
		h = h * 31 + (uint32) number;
	/* a session-level advisory lock, as pg_try_advisory_lock(int, int) */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, MD_WORKER_LOCK_FIELD1, h, 2);
	return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Start-up of a per-database worker: signal handlers, connection to the
 * database named in bgw_extra, its shared-memory slot. Exits quietly when
 * another worker of this kind and number (bgw_main_arg: 0.., several
 * only of the scheduler) already runs in the database.
 */
static MdWorkerSlot *
start_worker(const char *kind)
{
	MdWorkerSlot *slot;
	bool		unique;
	int			number = DatumGetInt32(MyBgworkerEntry->bgw_main_arg);
	char		name[MD_WORKER_KIND_LEN + 16];

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(MyBgworkerEntry->bgw_extra, NULL, 0);
	pgstat_report_appname(MyBgworkerEntry->bgw_type);

	/* "scheduler", "scheduler 2", ... */
	if (number == 0)
		strlcpy(name, kind, sizeof(name));
	else
		snprintf(name, sizeof(name), "%s %d", kind, number + 1);
	StartTransactionCommand();
	unique = take_kind_lock(kind, number);
	CommitTransactionCommand();
	if (!unique)
	{
		elog(LOG, "marketdata %s: another one runs in database \"%s\"; exiting",
			 name, MyBgworkerEntry->bgw_extra);
		proc_exit(0);
	}
	slot = md_worker_slot_acquire(kind);
	elog(LOG, "marketdata %s started in database \"%s\"", name,
		 MyBgworkerEntry->bgw_extra);
	return slot;
}

/*
 * NULL when the extension exists here (and is not being created or
 * dropped) at the library's version; otherwise what the worker waits for
 */
static const char *
extension_not_ready(void)
{
	/* the installed version last complained about, so the log says it once */
	static char logged[NAMEDATALEN] = "";
	const char *reason = NULL;
	char	   *installed;

	StartTransactionCommand();
	installed = md_installed_version();
	if (installed == NULL || creating_extension)
		reason = "waiting for CREATE EXTENSION";
	else if (strcmp(installed, MD_LIBRARY_VERSION) != 0)
	{
		/* new C code against old tables: wait for the upgrade, do not run */
		reason = "waiting for ALTER EXTENSION marketdata UPDATE";
		if (strcmp(logged, installed) != 0)
		{
			ereport(LOG,
					(errmsg("%s waits: the library is version %s but the extension in database \"%s\" is version %s",
							MyBgworkerEntry->bgw_type, MD_LIBRARY_VERSION,
							MyBgworkerEntry->bgw_extra, installed),
					 errhint("Run ALTER EXTENSION marketdata UPDATE in that database.")));
			strlcpy(logged, installed, sizeof(logged));
		}
	}
	else
		logged[0] = '\0';
	CommitTransactionCommand();
	return reason;
}

static void wait_fd(int fd, long timeout_ms);

void
md_worker_run(const MdWorkerOps *ops)
{
	MdWorkerSlot *slot = start_worker(ops->kind);
	MemoryContext loop_context;

	if (ops->start != NULL)
		ops->start(slot);
	loop_context = AllocSetContextCreate(TopMemoryContext, "marketdata worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSetIdentifier(loop_context, ops->kind);
	for (;;)
	{
		MemoryContext old = MemoryContextSwitchTo(loop_context);
		const char *reason = ops->idle_reason != NULL ? ops->idle_reason() : NULL;
		long		timeout;
		int			fd = -1;

		if (reason != NULL)
		{
			md_worker_set_state(slot, reason);
			timeout = MAX_WAIT_MS;
		}
		else if ((reason = extension_not_ready()) != NULL)
		{
			md_worker_set_state(slot, reason);
			if (ops->not_ready != NULL)
				ops->not_ready();
			timeout = NOT_READY_WAIT_MS;
		}
		else
			timeout = Min(ops->loop(slot, loop_context, &fd), MAX_WAIT_MS);
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);
		wait_fd(fd, timeout);
	}
}

long
md_worker_ms_until(TimestampTz last, int every_ms)
{
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
										   TimestampTzPlusMilliseconds(last, every_ms));
}

/*
 * Wait on the latch up to timeout_ms, also woken when fd (a pipe or
 * socket; -1: none) is readable, then handle interrupts and SIGHUP.
 */
static void
wait_fd(int fd, long timeout_ms)
{
	int			events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;

	if (fd >= 0)
		events |= WL_SOCKET_READABLE;
	(void) WaitLatchOrSocket(MyLatch, events, fd, Max(timeout_ms, 0), PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
md_worker_begin(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

void
md_worker_commit(void)
{
	const char *cache_failure;

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* a Redis write that failed at that commit shows in the worker's status too */
	cache_failure = md_cache_take_failure();
	if (cache_failure != NULL)
		md_worker_report_error(cache_failure);
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
}
