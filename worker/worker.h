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
 * Start-up of a per-database worker: signal handlers, connection to the
 * database named in bgw_extra, its shared-memory slot. Exits quietly when
 * another worker of this kind and number (bgw_main_arg: 0.., several
 * only of the scheduler) already runs in the database.
 */
extern MdWorkerSlot *md_worker_start(const char *kind);

/* true when the extension exists (and is not being dropped) here */
extern bool md_worker_extension_ready(void);

/* Wait on the latch up to timeout_ms, then handle interrupts and SIGHUP. */
extern void md_worker_wait(long timeout_ms);

/* The same, also woken when fd (a pipe or socket; -1: none) is readable. */
extern void md_worker_wait_fd(int fd, long timeout_ms);

/* One short transaction with a snapshot and SPI connected; "what" for ps. */
extern void md_worker_begin(const char *what);
extern void md_worker_commit(void);

#endif							/* MD_WORKER_H */
