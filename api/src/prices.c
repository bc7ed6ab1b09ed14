/*
 * api/src/prices.c
 *	GET /prices/latest, /prices/history and /prices/average.
 *
 * /prices/latest asks Redis first (key md:price:{provider}:{symbol},
 * provider "_" when none is asked for; the value is the answer's JSON),
 * then the database through md._api_latest() (md_quote(), which may call
 * a provider), and stores the answer in Redis for MD_API_CACHE_TTL
 * seconds. In front of Redis each worker keeps the answers it served
 * for up to MD_API_LOCAL_CACHE_MS, dropped when the sink publishes a new
 * price of the symbol (local_cache.c); "X-Cache: HIT" then comes with
 * "X-Cache-Level: local" instead of "redis". Concurrent misses of one
 * key in a worker share one database call: a *flight* (per worker: two
 * workers missing the same key make two calls). The flight's query
 * belongs to the flight, not to a request, so a client going away does
 * not cancel it for the others.
 *
 * Each handler is a small state table on ctx->step.
 */

#include <stdio.h>
#include <string.h>

#include "api.h"

int	api_prices_latest(struct http_request *);
int	api_prices_history(struct http_request *);
int	api_prices_average(struct http_request *);

struct api_flight {
	char			 key[128];
	char			 symbol[40];
	char			 provider[72];
	u_int64_t		 gen;		/* local cache generation */
	TAILQ_HEAD(, api_ctx)	 waiters;
	TAILQ_ENTRY(api_flight)	 list;
};

static TAILQ_HEAD(, api_flight)	flights = TAILQ_HEAD_INITIALIZER(flights);

#define LATEST_START		0
#define LATEST_GATE		1
#define LATEST_CACHE		2
#define LATEST_CACHE_WAIT	3
#define LATEST_FLIGHT_WAIT	4

static const char q_latest[] =
    "SELECT md._api_latest($1, $2, make_interval(secs => $3::int))";

static void
flight_done(struct api_dbres *res, void *arg)
{
	struct api_flight	*f = arg;
	struct api_ctx		*ctx;

	/*
	 * Not cached when a new price of the symbol was published during the
	 * query: the answer may predate it, and Redis would keep it.
	 */
	if (res->ok && !res->isnull && api_cfg.cache_ttl > 0 &&
	    !api_lcache_published(f->symbol, f->gen)) {
		api_redis_set(f->key, res->value, strlen(res->value),
		    api_cfg.cache_ttl);
		api_lcache_put(f->symbol, f->provider, res->value,
		    strlen(res->value), f->gen);
	}

	while ((ctx = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, ctx, flight_list);
		ctx->in_flight_list = 0;
		ctx->flight = NULL;
		api_dbres_clear(&ctx->db);
		ctx->db.ok = res->ok;
		ctx->db.isnull = res->isnull;
		memcpy(ctx->db.sqlstate, res->sqlstate, sizeof(res->sqlstate));
		if (res->value != NULL)
			ctx->db.value = kore_strdup(res->value);
		if (res->message != NULL)
			ctx->db.message = kore_strdup(res->message);
		if (res->detail != NULL)
			ctx->db.detail = kore_strdup(res->detail);
		api_ctx_done(ctx);
	}
	api_dbres_clear(res);
	TAILQ_REMOVE(&flights, f, list);
	kore_free(f);
}

/* Joins the flight of ctx->cache_key, or starts it. */
static void
flight_join(struct api_ctx *ctx)
{
	struct api_flight	*f;
	const char		*params[3];
	char			 maxage[16];

	api_ctx_wait(ctx);
	TAILQ_FOREACH(f, &flights, list) {
		if (!strcmp(f->key, ctx->cache_key))
			break;
	}
	if (f != NULL) {
		api_metrics_count(MC_FLIGHT_JOINED);
		TAILQ_INSERT_TAIL(&f->waiters, ctx, flight_list);
		ctx->in_flight_list = 1;
		ctx->flight = f;
		return;
	}

	f = kore_calloc(1, sizeof(*f));
	(void)kore_strlcpy(f->key, ctx->cache_key, sizeof(f->key));
	(void)kore_strlcpy(f->symbol, ctx->symbol, sizeof(f->symbol));
	(void)kore_strlcpy(f->provider, ctx->provider, sizeof(f->provider));
	f->gen = api_lcache_gen(ctx->symbol);
	TAILQ_INIT(&f->waiters);
	TAILQ_INSERT_TAIL(&flights, f, list);
	TAILQ_INSERT_TAIL(&f->waiters, ctx, flight_list);
	ctx->in_flight_list = 1;
	ctx->flight = f;

	api_metrics_count(MC_DB_QUERY_LATEST);
	(void)snprintf(maxage, sizeof(maxage), "%d", api_cfg.max_age);
	params[0] = ctx->symbol;
	params[1] = ctx->provider[0] ? ctx->provider : NULL;
	params[2] = maxage;
	api_db_query(API_DB_PRIMARY, q_latest, 3, params, flight_done, f);
}

/* The request of ctx is gone: it no longer waits for its flight. */
void
api_flight_ctx_gone(struct api_ctx *ctx)
{
	if (!ctx->in_flight_list)
		return;
	TAILQ_REMOVE(&ctx->flight->waiters, ctx, flight_list);
	ctx->in_flight_list = 0;
	ctx->flight = NULL;
	ctx->pending--;
}

#define FROM_DB		0
#define FROM_REDIS	1
#define FROM_LOCAL	2

static int
answer_price(struct api_ctx *ctx, const char *body, size_t len, int from)
{
	static const char	*levels[] = { NULL, "redis", "local" };

	http_response_header(ctx->req, "x-cache", from ? "HIT" : "MISS");
	if (from)
		http_response_header(ctx->req, "x-cache-level", levels[from]);
	api_ratelimit_headers(ctx);
	api_json(ctx->req, 200, body, len);
	return (KORE_RESULT_OK);
}

int
api_prices_latest(struct http_request *req)
{
	struct api_ctx	*ctx = api_ctx_get(req, ROUTE_LATEST);
	char		*sym, *prov, *body;
	size_t		 len;
	int		 rc;

	for (;;) {
		switch (ctx->step) {
		case LATEST_START:
			if (!api_method(req, HTTP_METHOD_GET))
				return (KORE_RESULT_OK);
			http_populate_qs(req);
			if (!http_argument_get_string(req, "symbol", &sym) ||
			    !api_symbol_normalize(sym, ctx->symbol,
			    sizeof(ctx->symbol)))
				return (api_error(req, 400, "invalid_argument",
				    "symbol is missing or invalid: 1-32 "
				    "letters, digits and . - ^ = _ /, "
				    "starting with a letter, a digit or ^"));
			if (http_argument_get_string(req, "provider", &prov))
				(void)kore_strlcpy(ctx->provider, prov,
				    sizeof(ctx->provider));
			else if (strstr(req->query_string ?
			    req->query_string : "", "provider=") != NULL)
				return (api_error(req, 400, "invalid_argument",
				    "provider is invalid: a provider name is "
				    "lower-case letters, digits and _"));
			(void)snprintf(ctx->cache_key, sizeof(ctx->cache_key),
			    "md:price:%s:%s", ctx->provider[0] ?
			    ctx->provider : "_", ctx->symbol);
			/* before anything is read from Redis */
			ctx->cache_gen = api_lcache_gen(ctx->symbol);
			ctx->step = LATEST_GATE;
			break;
		case LATEST_GATE:
			rc = api_gate(ctx, ROLE_READER);
			if (rc == HTTP_STATE_RETRY)
				return (KORE_RESULT_RETRY);
			if (rc == HTTP_STATE_COMPLETE)
				return (KORE_RESULT_OK);
			ctx->step = LATEST_CACHE;
			break;
		case LATEST_CACHE:
			if (ctx->cache_peeked) {
				/* the gate's script read the cache already */
				ctx->step = LATEST_CACHE_WAIT;
				break;
			}
			if (api_lcache_get(ctx->symbol, ctx->provider, &body,
			    &len)) {
				api_metrics_count(MC_CACHE_HIT);
				api_metrics_count(MC_CACHE_LOCAL_HIT);
				return (answer_price(ctx, body, len,
				    FROM_LOCAL));
			}
			if (api_cfg.cache_ttl > 0 && api_redis_up()) {
				ctx->step = LATEST_CACHE_WAIT;
				if (api_redis_get(ctx, ctx->cache_key))
					return (KORE_RESULT_RETRY);
				break;
			}
			api_metrics_count(MC_CACHE_MISS);
			ctx->step = LATEST_FLIGHT_WAIT;
			flight_join(ctx);
			return (KORE_RESULT_RETRY);
		case LATEST_CACHE_WAIT:
			if (ctx->redis_value != NULL) {
				api_metrics_count(MC_CACHE_HIT);
				api_lcache_put(ctx->symbol, ctx->provider,
				    ctx->redis_value, ctx->redis_len,
				    ctx->cache_gen);
				return (answer_price(ctx, ctx->redis_value,
				    ctx->redis_len, FROM_REDIS));
			}
			api_metrics_count(MC_CACHE_MISS);
			ctx->step = LATEST_FLIGHT_WAIT;
			flight_join(ctx);
			return (KORE_RESULT_RETRY);
		case LATEST_FLIGHT_WAIT:
			if (!ctx->db.ok)
				return (api_db_error(ctx));
			if (ctx->db.isnull)
				return (api_error(req, 404, "no_price",
				    "no price for symbol \"%s\"", ctx->symbol));
			return (answer_price(ctx, ctx->db.value,
			    strlen(ctx->db.value), FROM_DB));
		}
	}
}

/* A handler that runs one query after the gate and answers its JSON. */
static int
one_query(struct api_ctx *ctx, int role, const char *dbname,
    const char *query, int nparams, int status)
{
	int	rc;

	switch (ctx->step) {
	case 1:
		rc = api_gate(ctx, role);
		if (rc == HTTP_STATE_RETRY)
			return (KORE_RESULT_RETRY);
		if (rc == HTTP_STATE_COMPLETE)
			return (KORE_RESULT_OK);
		ctx->step = 2;
		(void)api_db_start(ctx, dbname, query, nparams,
		    (const char **)ctx->arg);
		return (KORE_RESULT_RETRY);
	case 2:
		if (!ctx->db.ok)
			return (api_db_error(ctx));
		if (ctx->db.isnull)
			return (api_error(ctx->req, 404, "not_found",
			    "nothing found"));
		api_ratelimit_headers(ctx);
		api_json(ctx->req, status, ctx->db.value,
		    strlen(ctx->db.value));
		return (KORE_RESULT_OK);
	}
	fatal("one_query: bad step %d", ctx->step);
	return (KORE_RESULT_OK);
}

/* Copies an optional query argument into ctx->arg[i] (NULL: absent). */
static int
opt_arg(struct api_ctx *ctx, int i, const char *name)
{
	char	*v;

	if (http_argument_get_string(ctx->req, name, &v)) {
		ctx->arg[i] = kore_strdup(v);
		return (KORE_RESULT_OK);
	}
	/* present in the query but dropped by its validator: invalid */
	if (ctx->req->query_string != NULL) {
		char	pat[40];

		(void)snprintf(pat, sizeof(pat), "%s=", name);
		if (strstr(ctx->req->query_string, pat) != NULL)
			return (KORE_RESULT_ERROR);
	}
	return (KORE_RESULT_OK);
}

static int
symbol_arg(struct api_ctx *ctx)
{
	char	*sym;

	if (!http_argument_get_string(ctx->req, "symbol", &sym) ||
	    !api_symbol_normalize(sym, ctx->symbol, sizeof(ctx->symbol))) {
		api_error(ctx->req, 400, "invalid_argument",
		    "symbol is missing or invalid: 1-32 letters, digits and "
		    ". - ^ = _ /, starting with a letter, a digit or ^");
		return (KORE_RESULT_ERROR);
	}
	ctx->arg[0] = kore_strdup(ctx->symbol);
	return (KORE_RESULT_OK);
}

int
api_prices_history(struct http_request *req)
{
	struct api_ctx	*ctx = api_ctx_get(req, ROUTE_HISTORY);
	static const char *names[] = { "from", "to", "provider", "limit" };
	int		 i;

	if (ctx->step == 0) {
		if (!api_method(req, HTTP_METHOD_GET))
			return (KORE_RESULT_OK);
		http_populate_qs(req);
		if (!symbol_arg(ctx))
			return (KORE_RESULT_OK);
		for (i = 0; i < 4; i++) {
			if (!opt_arg(ctx, i + 1, names[i]))
				return (api_error(req, 400, "invalid_argument",
				    "%s is invalid", names[i]));
		}
		ctx->step = 1;
	}
	return (one_query(ctx, ROLE_READER, API_DB_READ,
	    "SELECT md._api_history($1, $2, $3, $4, $5::int)", 5, 200));
}

int
api_prices_average(struct http_request *req)
{
	struct api_ctx	*ctx = api_ctx_get(req, ROUTE_AVERAGE);

	if (ctx->step == 0) {
		if (!api_method(req, HTTP_METHOD_GET))
			return (KORE_RESULT_OK);
		http_populate_qs(req);
		if (!symbol_arg(ctx))
			return (KORE_RESULT_OK);
		if (!opt_arg(ctx, 1, "window"))
			return (api_error(req, 400, "invalid_argument",
			    "window is invalid: a whole number of points"));
		ctx->step = 1;
	}
	return (one_query(ctx, ROLE_READER, API_DB_READ,
	    "SELECT md._api_average($1, $2::int)", 2, 200));
}
