/*-------------------------------------------------------------------------
 *
 * extension/fetch_outcome.h
 *	  How a fetch ends: the helpers every provider implementation uses to
 *	  set a price or an error class on its fetch.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_FETCH_OUTCOME_H
#define MD_FETCH_OUTCOME_H

#include "provider.h"

/* set the outcome to an error class with a formatted message */
extern void md_fetch_fail(MdFetch *f, MdErrorClass cls, const char *fmt,...) pg_attribute_printf(3, 4);

/* the common ways a fetch fails whatever the provider */
extern void md_fetch_unknown_symbol(MdFetch *f);
extern void md_fetch_rate_limited(MdFetch *f, int retry_after, const char *said);
extern void md_fetch_malformed(MdFetch *f, const char *problem);

/* a completed request's response into the fetch, before its parser reads it */
extern void md_fetch_take_response(MdFetch *f, MdHttpRequest *req);

/*
 * Transport failures and 5xx, the same for every provider: true when the
 * request failed that way (the fetch is then classified), false when there
 * is a response for the provider to read.
 */
extern bool md_fetch_transport_failed(MdFetch *f, MdHttpRequest *req);

/*
 * The end of every provider's status ladder, after its own special cases
 * (429, 404, ...): 401 and 403 are a refusal (auth_failed), any other
 * status but 200 is unavailable, and a 200 body must be JSON (root, or
 * malformed with the parser's problem). said is the provider's own error
 * text, or NULL. Returns false when the fetch is classified.
 */
extern bool md_fetch_status_ok(MdFetch *f, MdHttpRequest *req, void *root,
							   const char *problem, const char *said);

/* a provider's error text, shortened for a message */
extern char *md_provider_said(const char *text);

/* "base/path" with a list of NULL-terminated headers builder helper */
extern char **md_headers(const char *first,...) __attribute__((sentinel));

/* keep a price with currency, turning minor units (GBp, ZAc, ILA) into major */
extern void md_fetch_set_price(MdFetch *f, Numeric price, const char *currency);

/*
 * A minor currency unit (GBp, ZAc, ILA) replaced by its major one in
 * *currency: true when it was one, and amounts must go through
 * md_minor_to_major (a hundredth).
 */
extern bool md_currency_major(char **currency);
extern Numeric md_minor_to_major(Numeric amount);

#endif							/* MD_FETCH_OUTCOME_H */
