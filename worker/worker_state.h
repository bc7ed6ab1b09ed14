/*-------------------------------------------------------------------------
 *
 * worker/worker_state.h
 *	  What each marketdata worker is doing, in shared memory, for
 *	  md.worker_status and for waking a worker from another backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_WORKER_STATE_H
#define MD_WORKER_STATE_H

#include "datatype/timestamp.h"
#include "storage/spin.h"

#define MD_MAX_WORKER_SLOTS 64
#define MD_WORKER_KIND_LEN 16
#define MD_WORKER_STATE_LEN 48
#define MD_WORKER_ERROR_LEN 256

typedef struct MdWorkerSlot
{
	slock_t		mutex;
	bool		in_use;
	int			pid;
	int			procno;			/* to set the worker's latch */
	Oid			dboid;
	char		kind[MD_WORKER_KIND_LEN];
	char		state[MD_WORKER_STATE_LEN];
	TimestampTz started_at;
	TimestampTz last_loop;
	int64		processed;		/* items done since start */
	int64		backlog;		/* items waiting, as the worker last saw it */
	char		last_error[MD_WORKER_ERROR_LEN];
	TimestampTz last_error_at;
} MdWorkerSlot;

/* shared memory set-up, from _PG_init */
extern void md_worker_state_request(void);

/* A worker takes a slot at start and gives it back at exit. */
extern MdWorkerSlot *md_worker_slot_acquire(const char *kind);
extern void md_worker_set_state(MdWorkerSlot *slot, const char *state);
extern void md_worker_loop_done(MdWorkerSlot *slot, int64 processed, int64 backlog);
extern void md_worker_set_error(MdWorkerSlot *slot, const char *error);

/* Redis write-through counters, shared by every process (md.cache_status) */
extern void md_cache_count_writes(int n);
extern void md_cache_count_failure(const char *error);

/* Set the latch of the worker of that kind in this database, if running. */
extern void md_worker_wake(const char *kind, Oid dboid);

/* The same when (and only if) the current transaction commits. */
extern void md_worker_wake_at_commit(const char *kind);

#endif							/* MD_WORKER_STATE_H */
