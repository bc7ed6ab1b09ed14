/*-------------------------------------------------------------------------
 *
 * worker/worker.h
 *	  What every marketdata background worker shares: the kinds the
 *	  launcher starts, start-up, waiting, and one short transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_WORKER_H
#define MD_WORKER_H

#include <limits.h>

#include "worker_state.h"

/* A kind of per-database worker, started by the launcher in each database. */
typedef struct MdWorkerKind
{
	const char *name;			/* "relay": in bgw_type and md.worker_status */
	const char *function;		/* its main function, exported from the library */
} MdWorkerKind;

extern const MdWorkerKind md_worker_kinds[];
extern const int md_worker_kind_count;

/* launcher.c */
extern void md_launcher_register(void);

/*
 * A worker's main loop, driven by md_worker_run so that each reads like a
 * table of contents. After start-up (signals, connection, slot) start runs
 * once. Then each iteration, in a memory context reset after it: when
 * idle_reason gives a reason, the worker idles with that state for a
 * second; when the extension is not ready (not created, or its SQL at
 * another version than the library's), not_ready drops what the
 * worker holds and it waits 5 s; otherwise loop does one batch and returns
 * the milliseconds until its next deadline (0: go on at once, capped at
 * one second), setting *fd to a socket whose readability also ends the
 * wait (-1: none). Every wait answers interrupts and SIGHUP.
 */
typedef struct MdWorkerOps
{
	const char *kind;			/* "relay" */
	void		(*start) (MdWorkerSlot *slot);
	const char *(*idle_reason) (void);
	void		(*not_ready) (void);
	long		(*loop) (MdWorkerSlot *slot, MemoryContext loop_context, int *fd);
} MdWorkerOps;

extern void md_worker_run(const MdWorkerOps *ops) pg_attribute_noreturn();

/* what loop returns when nothing of its own is due: the driver's cap */
#define MD_WORKER_NO_DEADLINE LONG_MAX

/* milliseconds from now until every_ms after last (0 once that has passed) */
extern long md_worker_ms_until(TimestampTz last, int every_ms);

/* One short transaction with a snapshot and SPI connected; "what" for ps. */
extern void md_worker_begin(const char *what);
extern void md_worker_commit(void);

#endif							/* MD_WORKER_H */
