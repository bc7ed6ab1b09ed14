/*-------------------------------------------------------------------------
 *
 * extension/wake.c
 *	  Waking the process that waits for a kind of work, from any backend.
 *
 * A *listener* is a process that sleeps on its latch until work of its
 * kind arrives in its database: the scheduler (a job changed, a response
 * kept), the relay (an outbox row committed). A backend that wrote such
 * work sets the listener's latch, at once or when its transaction commits
 * (an XactCallback, pg_net's way), so no worker polls a table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/spin.h"

#include "shmem.h"
#include "wake.h"

typedef struct Listener
{
	slock_t		mutex;
	bool		in_use;
	Oid			dboid;
	int			procno;
	char		kind[MD_WAKE_KIND_LEN];
} Listener;

static Listener *listeners = NULL;
static Listener *my_listener = NULL;

static void
listeners_init(void *ptr)
{
	Listener   *l = ptr;
	int			i;

	for (i = 0; i < MD_WAKE_LISTENERS; i++)
		SpinLockInit(&l[i].mutex);
}

void
md_wake_init(void)
{
	md_shmem_add("marketdata listeners", sizeof(Listener) * MD_WAKE_LISTENERS,
				 (void **) &listeners, NULL, listeners_init);
}

static void
stop_listening(int code, Datum arg)
{
	Listener   *l = (Listener *) DatumGetPointer(arg);

	SpinLockAcquire(&l->mutex);
	l->in_use = false;
	SpinLockRelease(&l->mutex);
	my_listener = NULL;
}

int
md_wake_listen(const char *kind)
{
	int			i;

	if (listeners == NULL)
		elog(ERROR, "marketdata must be loaded by shared_preload_libraries");
	for (i = 0; i < MD_WAKE_LISTENERS; i++)
	{
		Listener   *l = &listeners[i];
		bool		mine = false;

		SpinLockAcquire(&l->mutex);
		if (!l->in_use)
		{
			l->in_use = true;
			l->dboid = MyDatabaseId;
			l->procno = MyProc->pgprocno;
			strlcpy(l->kind, kind, sizeof(l->kind));
			mine = true;
		}
		SpinLockRelease(&l->mutex);
		if (mine)
		{
			before_shmem_exit(stop_listening, PointerGetDatum(l));
			my_listener = l;
			return i;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("too many marketdata workers (at most %d)", MD_WAKE_LISTENERS)));
	return -1;
}

void
md_wake(const char *kind, Oid dboid)
{
	int			i;

	if (listeners == NULL)
		return;
	for (i = 0; i < MD_WAKE_LISTENERS; i++)
	{
		Listener   *l = &listeners[i];
		int			procno = -1;

		SpinLockAcquire(&l->mutex);
		if (l->in_use && l->dboid == dboid && strcmp(l->kind, kind) == 0)
			procno = l->procno;
		SpinLockRelease(&l->mutex);
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
				md_wake(wake_kinds[i], MyDatabaseId);
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_mask = 0;
}

void
md_wake_at_commit(const char *kind)
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
 * once, so a new job runs within a second without the scheduler polling
 * the table. The scheduler's own updates need no wake.
 */
Datum
md_wake_scheduler(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "md._wake_scheduler() must be called as a trigger");
	if (my_listener == NULL || strcmp(my_listener->kind, "scheduler") != 0)
		md_wake_at_commit("scheduler");
	PG_RETURN_POINTER(NULL);
}
