/*-------------------------------------------------------------------------
 *
 * worker/launcher.c
 *	  The launcher: starts every marketdata worker in every database of
 *	  marketdata.databases (marketdata.scheduler_workers schedulers, one of
 *	  each other kind), and starts them again when they stop.
 *
 * The launcher is a static background worker registered from
 * shared_preload_libraries with BgWorkerStart_RecoveryFinished: on a standby
 * it does not run at all, and the postmaster starts it on promotion. It
 * connects to no database (only to the shared catalogs). The per-database workers it registers are
 * dynamic and never restarted by the postmaster; the launcher restarts a
 * stopped one with a growing delay (1 s to 60 s), so a database that does
 * not exist costs a log line a minute, not a crash loop.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "guc.h"
#include "worker.h"

const MdWorkerKind md_worker_kinds[] = {
	{"scheduler", "md_scheduler_main"},
	{"relay", "md_relay_main"},
	{"consumer", "md_consumer_main"},
	{"retention", "md_retention_main"},
	/* last: the one left out when max_worker_processes runs short */
	{"backfill", "md_backfill_main"},
};
const int	md_worker_kind_count = lengthof(md_worker_kinds);

#define MAX_LAUNCHED 64
#define MIN_RESTART_DELAY_MS 1000
#define MAX_RESTART_DELAY_MS 60000

/* one per (database, kind, number) the launcher looks after */
typedef struct Launched
{
	char		dbname[NAMEDATALEN];
	int			kind;
	int			number;			/* 0.., several only of the scheduler */
	BackgroundWorkerHandle *handle;
	TimestampTz next_start;		/* not before this */
	int			delay_ms;		/* grows while it keeps stopping */
	TimestampTz started_at;
	bool		wanted;			/* still in marketdata.databases */
} Launched;

static Launched launched[MAX_LAUNCHED];
static int	nlaunched = 0;

PGDLLEXPORT void md_launcher_main(Datum main_arg);

void
md_launcher_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "marketdata", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "md_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "marketdata launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "marketdata launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* how many workers of that kind run in each database */
static int
instances(int kind)
{
	return strcmp(md_worker_kinds[kind].name, "scheduler") == 0 ? md_scheduler_workers : 1;
}

static Launched *
find_or_add(const char *dbname, int kind, int number)
{
	int			i;

	for (i = 0; i < nlaunched; i++)
		if (launched[i].kind == kind && launched[i].number == number &&
			strcmp(launched[i].dbname, dbname) == 0)
			return &launched[i];
	if (nlaunched == MAX_LAUNCHED)
	{
		elog(WARNING, "marketdata launcher: too many databases, ignoring \"%s\"", dbname);
		return NULL;
	}
	memset(&launched[nlaunched], 0, sizeof(Launched));
	strlcpy(launched[nlaunched].dbname, dbname, NAMEDATALEN);
	launched[nlaunched].kind = kind;
	launched[nlaunched].number = number;
	launched[nlaunched].delay_ms = MIN_RESTART_DELAY_MS;
	return &launched[nlaunched++];
}

static bool
is_running(Launched *l)
{
	pid_t		pid;

	return l->handle != NULL &&
		GetBackgroundWorkerPid(l->handle, &pid) != BGWH_STOPPED;
}

static void
start_worker(Launched *l)
{
	const MdWorkerKind *kind = &md_worker_kinds[l->kind];
	BackgroundWorker worker;
	TimestampTz now = GetCurrentTimestamp();
	MemoryContext old;
	bool		registered;

	if (now < l->next_start)
		return;
	/* a worker that ran for a minute earned a fresh start delay */
	if (l->started_at != 0 &&
		TimestampDifferenceExceeds(l->started_at, now, MAX_RESTART_DELAY_MS))
		l->delay_ms = MIN_RESTART_DELAY_MS;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	worker.bgw_notify_pid = MyProcPid;
	worker.bgw_main_arg = Int32GetDatum(l->number);
	strlcpy(worker.bgw_library_name, "marketdata", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, kind->function, BGW_MAXLEN);
	snprintf(worker.bgw_type, BGW_MAXLEN, "marketdata %s", kind->name);
	if (l->number == 0)
		snprintf(worker.bgw_name, BGW_MAXLEN, "marketdata %s for database %s",
				 kind->name, l->dbname);
	else
		snprintf(worker.bgw_name, BGW_MAXLEN, "marketdata %s %d for database %s",
				 kind->name, l->number + 1, l->dbname);
	strlcpy(worker.bgw_extra, l->dbname, BGW_EXTRALEN);

	if (l->handle != NULL)
		pfree(l->handle);
	l->handle = NULL;
	/* the handle outlives the loop's memory */
	old = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&worker, &l->handle);
	MemoryContextSwitchTo(old);
	if (!registered)
	{
		elog(WARNING, "marketdata launcher: no background worker slot for the %s of \"%s\" (raise max_worker_processes)",
			 kind->name, l->dbname);
		l->handle = NULL;
	}
	l->started_at = now;
	l->next_start = TimestampTzPlusMilliseconds(now, l->delay_ms);
	l->delay_ms = Min(l->delay_ms * 2, MAX_RESTART_DELAY_MS);
}

/* Start what is missing for the databases listed; stop what is no longer. */
static void
reconcile(void)
{
	char	   *copy = pstrdup(md_databases);
	List	   *names = NIL;
	ListCell   *lc;
	int			i;

	for (i = 0; i < nlaunched; i++)
		launched[i].wanted = false;
	if (!SplitIdentifierString(copy, ',', &names))
		elog(WARNING, "marketdata launcher: marketdata.databases is not a list of names");

	foreach(lc, names)
	{
		const char *dbname = (const char *) lfirst(lc);
		int			k;

		for (k = 0; k < md_worker_kind_count; k++)
		{
			int			number;

			for (number = 0; number < instances(k); number++)
			{
				Launched   *l = find_or_add(dbname, k, number);

				if (l == NULL)
					continue;
				l->wanted = true;
				if (!is_running(l))
					start_worker(l);
			}
		}
	}
	for (i = 0; i < nlaunched; i++)
		if (!launched[i].wanted && is_running(&launched[i]))
			TerminateBackgroundWorker(launched[i].handle);
	list_free(names);
	pfree(copy);
}

void
md_launcher_main(Datum main_arg)
{
	MemoryContext loop_context;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* no database, like the autovacuum launcher: visible in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("marketdata launcher");

	loop_context = AllocSetContextCreate(TopMemoryContext, "marketdata launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		old = MemoryContextSwitchTo(loop_context);
		reconcile();
		MemoryContextSwitchTo(old);
		MemoryContextReset(loop_context);

		/* woken by SIGHUP and by our workers starting or stopping */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 MIN_RESTART_DELAY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
