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

#include "wake.h"

#define MD_MAX_WORKER_SLOTS MD_WAKE_LISTENERS
#define MD_WORKER_KIND_LEN MD_WAKE_KIND_LEN
#define MD_WORKER_STATE_LEN 48
#define MD_WORKER_ERROR_LEN 256

typedef struct MdWorkerSlot
{
	slock_t		mutex;
	bool		in_use;
	int			pid;
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
extern void md_worker_state_init(void);

/* A worker takes a slot at start and gives it back at exit. */
extern MdWorkerSlot *md_worker_slot_acquire(const char *kind);
extern void md_worker_set_state(MdWorkerSlot *slot, const char *state);
extern void md_worker_loop_done(MdWorkerSlot *slot, int64 processed, int64 backlog);
extern void md_worker_set_error(MdWorkerSlot *slot, const char *error);

/* an error for this process's own slot, when it is a worker */
extern void md_worker_report_error(const char *error);

#endif							/* MD_WORKER_STATE_H */
