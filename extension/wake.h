/*-------------------------------------------------------------------------
 *
 * extension/wake.h
 *	  Waking the process that waits for a kind of work, from any backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_WAKE_H
#define MD_WAKE_H

#define MD_WAKE_KIND_LEN 16
#define MD_WAKE_LISTENERS 64		/* at most this many listening processes */

/* shared memory set-up, from _PG_init */
extern void md_wake_init(void);

/*
 * This process waits on its latch for work of kind ("scheduler", "relay")
 * in its database, until it exits. Returns its listener number, from 0 to
 * MD_WAKE_LISTENERS - 1, which no other living process has.
 */
extern int	md_wake_listen(const char *kind);

/* Set the latch of every process waiting for kind in that database. */
extern void md_wake(const char *kind, Oid dboid);

/* The same when (and only if) the current transaction commits. */
extern void md_wake_at_commit(const char *kind);

#endif							/* MD_WAKE_H */
