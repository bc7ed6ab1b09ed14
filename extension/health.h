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

/*
 * Take one request from the provider's budget of per_minute requests a
 * minute, shared by every process of this database; false with the
 * seconds to wait when it is spent. Without shared memory (marketdata not
 * preloaded, so no scheduler either) every request is let through.
 */
extern bool md_health_take_token(const char *provider, int per_minute, int *wait_s);

#endif							/* MD_HEALTH_H */
