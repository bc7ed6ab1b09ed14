/*-------------------------------------------------------------------------
 *
 * extension/kept_responses.h
 *	  Provider responses of a failing statement, kept in shared memory
 *	  until the scheduler stores them in md.raw_responses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_KEPT_RESPONSES_H
#define MD_KEPT_RESPONSES_H

#include "provider.h"

/* shared memory set-up, from _PG_init */
extern void md_kept_responses_init(void);

/* keep the responses (raw_response_id set) that an error will roll back */
extern void md_kept_responses_keep(MdFetch **fetches, int n);

/* store this database's kept responses; call in a transaction */
extern int	md_kept_responses_store(void);

#endif							/* MD_KEPT_RESPONSES_H */
