/*-------------------------------------------------------------------------
 *
 * extension/fetch.h
 *	  Fetching prices from providers: one batch, or with failover.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_FETCH_H
#define MD_FETCH_H

#include "nodes/pg_list.h"

#include "provider.h"

/*
 * Run fetches concurrently (symbol and provider set in each): keys,
 * circuit breaker, HTTP, parsing, md.raw_responses, then the sink for the
 * prices. Every fetch comes back classified.
 */
extern void md_fetch_batch(MdFetch *fetches, int n, List *providers);

/*
 * md_fetch_batch in two halves, for a worker that must not hold a
 * transaction across HTTP: perform needs no transaction (HTTP, parsing,
 * circuit breaker); store runs in one (raw responses, then the sink).
 */
extern void md_fetch_perform(MdFetch *fetches, int n, List *providers);

/*
 * md_fetch_perform calling done as each fetch is settled (answered,
 * failed, or refused before any HTTP), and idle (when not NULL) whenever
 * it is about to wait for the network, in the calling process: a worker
 * can store the jobs whose fetches are all settled while the other jobs'
 * requests are in flight. idle may run a short transaction of its own
 * (waiting for no response: md_http_pump), and must leave
 * CurrentMemoryContext as it found it.
 */
typedef void (*MdFetchDone) (MdFetch *f, void *arg);
extern void md_fetch_perform_each(MdFetch *fetches, int n, List *providers,
								  MdFetchDone done, MdHttpIdle idle, void *arg);
extern void md_fetch_store(MdFetch *fetches, int n);

typedef struct MdFetchResult
{
	int			nattempts;		/* every fetch made, in order */
	MdFetch   **attempts;
	MdFetch   **final;			/* per symbol: its last attempt, NULL when
								 * no provider could be asked */
	bool		nobody;			/* no provider to ask at all */
	char	   *nobody_reason;	/* why, for messages */
} MdFetchResult;

/*
 * Fetch symbols from provider, or with provider NULL from the enabled
 * failover providers by priority: a symbol goes on to the next provider
 * while its answer is a provider failure (unavailable, rate limited,
 * refused key, malformed). An unknown provider name is an error.
 */
extern MdFetchResult *md_fetch_symbols(char **symbols, int nsymbols, const char *provider);

/* raise the error for a symbol whose fetches all failed */
extern void md_fetch_raise(MdFetchResult *result, const char *symbol) pg_attribute_noreturn();

#endif							/* MD_FETCH_H */
