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
extern void md_fetch_store(MdFetch *fetches, int n);

/* the second half of md_fetch_store: the prices through the sink */
extern void md_fetch_ingest(MdFetch *fetches, int n);

/*
 * md_fetch_perform pulled, for a caller that works while fetches are in
 * flight (the scheduler stores the jobs already settled): start a round,
 * take each fetch as it settles (answered, failed, or refused before any
 * HTTP) with md_fetch_next, waiting up to timeout_ms for one (0: not at
 * all, -1: until one settles; NULL when none did or none is left), let
 * the requests progress with md_fetch_pump while doing other work, and
 * end the round (keys wiped). Needs no transaction; results are allocated
 * in the memory context of md_fetch_start.
 */
typedef struct MdFetchRound MdFetchRound;
extern MdFetchRound *md_fetch_start(MdFetch *fetches, int n, List *providers);
extern MdFetch *md_fetch_next(MdFetchRound *round, long timeout_ms);
extern bool md_fetch_finished(MdFetchRound *round);
extern void md_fetch_pump(MdFetchRound *round);
extern void md_fetch_end(MdFetchRound *round);

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
