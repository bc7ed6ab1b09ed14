/*-------------------------------------------------------------------------
 *
 * extension/provider.h
 *	  What a provider implementation is, and what one fetch produces.
 *
 * A *fetch* asks one provider for the latest price of one symbol. A
 * provider implementation (provider_<name>.c) builds the request and reads
 * the answer into the fetch: a price with the market's time, or an error
 * class with a message a user can act on. fetch.c does the rest (keys,
 * HTTP, circuit breaker, raw responses, the sink).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PROVIDER_H
#define MD_PROVIDER_H

#include "datatype/timestamp.h"
#include "utils/numeric.h"

#include "error_class.h"
#include "http.h"

/* when a rate-limited provider gives no Retry-After: its documented window */
#define MD_DEFAULT_RETRY_AFTER 60

typedef struct MdFetch
{
	/* input */
	char	   *symbol;			/* normalised */
	char	   *provider;
	char	   *base_url;		/* from md.providers, without a trailing / */
	char	   *key;			/* API key or NULL: never logged or stored */

	/* outcome */
	MdErrorClass cls;
	char	   *message;		/* NULL when cls is MD_OK */
	int			retry_after;	/* seconds to wait, for MD_RATE_LIMITED */
	Numeric		price;
	TimestampTz ts;				/* the market's time of the price, UTC */
	char	   *currency;		/* NULL when not given */
	Numeric		volume;			/* NULL when not given */

	/* the raw response, as stored in md.raw_responses */
	bool		responded;		/* something to store: a response or a
								 * transport failure */
	char	   *url;			/* with secrets masked */
	long		http_status;
	double		latency_ms;
	char	   *body;
	int			body_len;
	int64		raw_response_id;
	char	   *transport_detail;	/* libcurl's detailed error, for the log */
} MdFetch;

typedef struct MdProvider
{
	const char *name;
	bool		needs_key;

	/* fill in the request (URL, headers) for a fetch: HTTP providers */
	void		(*build) (MdFetch *f, MdHttpRequest *req);
	/* read a completed request into the fetch: HTTP providers */
	void		(*parse) (MdFetch *f, MdHttpRequest *req);
	/* answer without network: the sandbox */
	void		(*answer) (MdFetch *f);
} MdProvider;

extern const MdProvider md_provider_yahoo;
extern const MdProvider md_provider_alphavantage;
extern const MdProvider md_provider_finnhub;
extern const MdProvider md_provider_polygon;
extern const MdProvider md_provider_sandbox;

/* the implementation of a provider name, NULL when there is none */
extern const MdProvider *md_provider_lookup(const char *name);

/* set the outcome to an error class with a formatted message */
extern void md_fetch_fail(MdFetch *f, MdErrorClass cls, const char *fmt,...) pg_attribute_printf(3, 4);

/* the common ways a fetch fails whatever the provider */
extern void md_fetch_unknown_symbol(MdFetch *f);
extern void md_fetch_rate_limited(MdFetch *f, int retry_after, const char *said);
extern void md_fetch_malformed(MdFetch *f, const char *problem);

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

#endif							/* MD_PROVIDER_H */
