/*-------------------------------------------------------------------------
 *
 * extension/provider.h
 *	  What a provider implementation is, and what one fetch produces.
 *
 * A *fetch* asks one provider for the latest price of one symbol. A
 * provider implementation (provider_<name>.c) builds the request and reads
 * the answer into the fetch (fetch_outcome.h): a price with the market's
 * time, or an error class with a message a user can act on. fetch.c does
 * the rest (keys, HTTP, circuit breaker, raw responses, the sink). A
 * *provider row* is a provider's line in md.providers (provider.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PROVIDER_H
#define MD_PROVIDER_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/numeric.h"

#include "error_class.h"
#include "http.h"
#include "symbol_meta.h"

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
	MdSymbolMeta meta;			/* what the provider says of the symbol */

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

/* one row of md.providers */
typedef struct MdProviderInfo
{
	char	   *name;
	char	   *base_url;
	bool		enabled;
	bool		failover;
	int			max_concurrency;
	int			rate_limit_per_minute;	/* our own budget of requests */
	const MdProvider *impl;		/* NULL: no implementation of that name */
} MdProviderInfo;

/* md.providers by ascending priority */
extern List *md_providers_load(void);

/* the provider of that name in a loaded list (its position in *index), or NULL */
extern MdProviderInfo *md_provider_find(List *providers, const char *name, int *index);

/*
 * The one "does this provider exist?": the names of a text[] that are not
 * in md.providers, as a List of C strings (NIL: all exist). Needs SPI.
 */
extern List *md_providers_unknown(ArrayType *names);

/* the same as an error: "unknown provider" for the first unknown name */
extern void md_provider_require(ArrayType *names);
extern void md_provider_require_one(const char *name);
extern void md_provider_unknown_error(const char *name) pg_attribute_noreturn();

#endif							/* MD_PROVIDER_H */
