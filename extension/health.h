/*-------------------------------------------------------------------------
 *
 * extension/health.h
 *	  Provider health and the circuit breaker, in shared memory.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_HEALTH_H
#define MD_HEALTH_H

#include "provider.h"

/* reserve shared memory; called from _PG_init when preloaded */
extern void md_health_init(void);

/*
 * May we call the provider now? False, with the fetch classified
 * (unavailable while the circuit is open, rate limited while a Retry-After
 * runs), when it must be skipped.
 */
extern bool md_health_admit(MdFetch *f);

/* record the outcome of a fetch that reached the provider */
extern void md_health_record(const MdFetch *f);

#endif							/* MD_HEALTH_H */
