/*
 * api/src/prices.c
 *	GET /prices/latest, /prices/history and /prices/average.
 *
 * /prices/latest asks Redis first (key md:price:{provider}:{symbol},
 * provider "_" when none is asked for; the value is the answer's JSON),
 * then the database through md._api_latest() (md_quote(), which may call
 * a provider), and stores the answer in Redis for MD_API_CACHE_TTL
 * seconds; answers that there is nothing to be had now (unknown symbol,
 * no data, a spent request budget) for MD_API_NEGATIVE_TTL. In front of
 * Redis each worker keeps the answers it served for up to
 * MD_API_LOCAL_CACHE_MS, dropped when the sink publishes a new price of
 * the symbol (local_cache.c); "X-Cache: HIT" then comes with
 * "X-Cache-Level: local" instead of "redis". Concurrent misses of one
 * key in a worker share one database call: a *flight* (per worker: two
 * workers missing the same key make two calls). The flight's query
 * belongs to the flight, not to a request, so a client going away does
 * not cancel it for the others.
 *
 * Each handler is a Kore state table (http_state_run): /prices/latest its
 * own, the others their arguments then route.c's gate, query, answer.
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

static void	flight_ctx_gone(struct api_ctx *);

/* /prices/latest's states, in the order of latest_states */
#define LATEST_START		0
#define LATEST_GATE		1
#define LATEST_CACHE		2
#define LATEST_CACHE_WAIT	3
#define LATEST_FLIGHT_WAIT	4

static const char q_latest[] =
    "SELECT md._api_latest($1, $2, make_interval(secs => $3::int))";

/*
 * Answers that say nothing is to be had now are cached too, for
 * MD_API_NEGATIVE_TTL seconds (a rate limit for at most its Retry-After):
 * otherwise every request for an unknown symbol would cost a database
 * call and a provider request. The value is "!SQLSTATE RETRY MESSAGE", a
 * '!' no JSON answer starts with.
 */
static int
negative_ttl(const struct api_dbres *res)
{
	static const char	*cached[] = { "MD100", "MD101", "MD001", "MD102" };
	size_t			 i;
	int			 retry;

	if (res->ok || api_cfg.negative_ttl <= 0)
		return (0);
	for (i = 0; i < sizeof(cached) / sizeof(cached[0]); i++) {
		if (!strcmp(res->sqlstate, cached[i])) {
			retry = api_sqlstate_retry(res->sqlstate, res->detail);
			return (retry > 0 && retry < api_cfg.negative_ttl ?
			    retry : api_cfg.negative_ttl);
		}
	}
	return (0);
}

static void
negative_store(struct api_flight *f, const struct api_dbres *res, int ttl)
{
	char	buf[600];
	int	n;

	n = snprintf(buf, sizeof(buf), "!%.5s %d %s", res->sqlstate,
	    api_sqlstate_retry(res->sqlstate, res->detail),
	    res->message != NULL ? res->message : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	api_redis_set(f->key, buf, (size_t)n, ttl);
	api_lcache_put(f->symbol, f->provider, buf, (size_t)n, f->gen);
}

/* A cached negative answer ("!SQLSTATE RETRY MESSAGE") as its error. */
static int
negative_answer(struct api_ctx *ctx, const char *body, size_t len)
{
	char	 text[600], sqlstate[6], detail[32];
	int	 retry = 0, off = 0;

	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, body, len);
	text[len] = '\0';
	if (sscanf(text, "!%5s %d %n", sqlstate, &retry, &off) != 2 ||
	    off == 0)
		return (api_error(ctx->req, 500, "internal",
		    "a cached answer is unreadable"));
	(void)snprintf(detail, sizeof(detail), "Retry after %d s.", retry);
	http_response_header(ctx->req, "x-cache", "HIT");
	api_ratelimit_headers(ctx);
	return (api_sqlstate_error(ctx->req, sqlstate, detail, text + off));
}

static void
flight_done(struct api_dbres *res, void *arg)
{
	struct api_flight	*f = arg;
	struct api_ctx		*ctx;
	int			 ttl;

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
	} else if ((ttl = negative_ttl(res)) > 0 &&
	    !api_lcache_published(f->symbol, f->gen)) {
		negative_store(f, res, ttl);
	}

	while ((ctx = TAILQ_FIRST(&f->waiters)) != NULL) {
		TAILQ_REMOVE(&f->waiters, ctx, share.list);
		ctx->share.listed = 0;
		ctx->share.flight = NULL;
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

/* Joins the flight of ctx->args.cache_key, or starts it. */
static void
flight_join(struct api_ctx *ctx)
{
	struct api_flight	*f;
	const char		*params[3];
	char			 maxage[16];

	api_ctx_wait(ctx);
	api_ctx_on_done(ctx, flight_ctx_gone);
	TAILQ_FOREACH(f, &flights, list) {
		if (!strcmp(f->key, ctx->args.cache_key))
			break;
	}
	if (f != NULL) {
		api_metrics_count(MC_FLIGHT_JOINED);
		TAILQ_INSERT_TAIL(&f->waiters, ctx, share.list);
		ctx->share.listed = 1;
		ctx->share.flight = f;
		return;
	}

	f = kore_calloc(1, sizeof(*f));
	(void)kore_strlcpy(f->key, ctx->args.cache_key, sizeof(f->key));
	(void)kore_strlcpy(f->symbol, ctx->args.symbol, sizeof(f->symbol));
	(void)kore_strlcpy(f->provider, ctx->args.provider, sizeof(f->provider));
	f->gen = api_lcache_gen(ctx->args.symbol);
	TAILQ_INIT(&f->waiters);
	TAILQ_INSERT_TAIL(&flights, f, list);
	TAILQ_INSERT_TAIL(&f->waiters, ctx, share.list);
	ctx->share.listed = 1;
	ctx->share.flight = f;

	api_metrics_count(MC_DB_QUERY_LATEST);
	(void)snprintf(maxage, sizeof(maxage), "%d", api_cfg.max_age);
	params[0] = ctx->args.symbol;
	params[1] = ctx->args.provider[0] ? ctx->args.provider : NULL;
	params[2] = maxage;
	api_db_query(API_DB_PRIMARY, q_latest, 3, params, flight_done, f);
}

/* The request of ctx is gone: it no longer waits for its flight. */
static void
flight_ctx_gone(struct api_ctx *ctx)
{
	if (!ctx->share.listed)
		return;
	TAILQ_REMOVE(&ctx->share.flight->waiters, ctx, share.list);
	ctx->share.listed = 0;
	ctx->share.flight = NULL;
	ctx->pending--;
}

#define FROM_DB		0
#define FROM_REDIS	1
#define FROM_LOCAL	2

static int
answer_price(struct api_ctx *ctx, const char *body, size_t len, int from)
{
	static const char	*levels[] = { NULL, "redis", "local" };

	if (from && len > 0 && body[0] == '!') {
		http_response_header(ctx->req, "x-cache-level", levels[from]);
		return (negative_answer(ctx, body, len));
	}

	http_response_header(ctx->req, "x-cache", from ? "HIT" : "MISS");
	if (from)
		http_response_header(ctx->req, "x-cache-level", levels[from]);
	api_ratelimit_headers(ctx);
	api_json(ctx->req, 200, body, len);
	return (KORE_RESULT_OK);
}

/* Answered (or refused): the state table is done. */
static int
answered(int rc)
{
	(void)rc;
	return (HTTP_STATE_COMPLETE);
}

static int
latest_start(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	char		*sym, *prov;

	if (!api_method(req, HTTP_METHOD_GET) || !api_query_parse(req))
		return (HTTP_STATE_COMPLETE);
	if (!http_argument_get_string(req, "symbol", &sym) ||
	    !api_symbol_normalize(sym, ctx->args.symbol,
	    sizeof(ctx->args.symbol)))
		return (answered(api_error(req, 400, "invalid_argument",
		    "symbol is missing or invalid: 1-32 letters, digits and "
		    ". - ^ = _ /, starting with a letter, a digit or ^")));
	if (http_argument_get_string(req, "provider", &prov))
		(void)kore_strlcpy(ctx->args.provider, prov,
		    sizeof(ctx->args.provider));
	else if (strstr(req->query_string ? req->query_string : "",
	    "provider=") != NULL)
		return (answered(api_error(req, 400, "invalid_argument",
		    "provider is invalid: a provider name is lower-case "
		    "letters, digits and _")));
	(void)snprintf(ctx->args.cache_key, sizeof(ctx->args.cache_key),
	    "md:price:%s:%s", ctx->args.provider[0] ? ctx->args.provider : "_",
	    ctx->args.symbol);
	/* before anything is read from Redis */
	ctx->args.cache_gen = api_lcache_gen(ctx->args.symbol);
	req->fsm_state = LATEST_GATE;
	return (HTTP_STATE_CONTINUE);
}

static int
latest_gate(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	int		 rc;

	rc = api_gate(ctx, ROLE_READER);
	if (rc == HTTP_STATE_RETRY || rc == HTTP_STATE_COMPLETE)
		return (rc);
	req->fsm_state = LATEST_CACHE;
	return (HTTP_STATE_CONTINUE);
}

/* Not cached: one flight to the database for all who miss this key. */
static int
latest_miss(struct http_request *req)
{
	api_metrics_count(MC_CACHE_MISS);
	req->fsm_state = LATEST_FLIGHT_WAIT;
	flight_join(req->hdlr_extra);
	return (HTTP_STATE_RETRY);
}

static int
latest_cache(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	char		*body;
	size_t		 len;

	if (ctx->args.cache_peeked) {
		/* the gate's script read the cache already */
		req->fsm_state = LATEST_CACHE_WAIT;
		return (HTTP_STATE_CONTINUE);
	}
	if (api_lcache_get(ctx->args.symbol, ctx->args.provider, &body, &len)) {
		api_metrics_count(MC_CACHE_HIT);
		api_metrics_count(MC_CACHE_LOCAL_HIT);
		return (answered(answer_price(ctx, body, len, FROM_LOCAL)));
	}
	if (api_cfg.cache_ttl > 0 && api_redis_up()) {
		req->fsm_state = LATEST_CACHE_WAIT;
		if (api_redis_get(ctx, ctx->args.cache_key))
			return (HTTP_STATE_RETRY);
		return (HTTP_STATE_CONTINUE);
	}
	return (latest_miss(req));
}

static int
latest_cache_wait(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (ctx->redis.value == NULL)
		return (latest_miss(req));
	api_metrics_count(MC_CACHE_HIT);
	api_lcache_put(ctx->args.symbol, ctx->args.provider, ctx->redis.value,
	    ctx->redis.len, ctx->args.cache_gen);
	return (answered(answer_price(ctx, ctx->redis.value, ctx->redis.len,
	    FROM_REDIS)));
}

static int
latest_flight_wait(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!ctx->db.ok)
		return (answered(api_db_error(ctx)));
	if (ctx->db.isnull)
		return (answered(api_error(req, 404, "no_price",
		    "no price for symbol \"%s\"", ctx->args.symbol)));
	return (answered(answer_price(ctx, ctx->db.value,
	    strlen(ctx->db.value), FROM_DB)));
}

/* GET /prices/latest: worker cache, then Redis, then a flight. */
static struct http_state latest_states[] = {
	KORE_HTTP_STATE(latest_start),
	KORE_HTTP_STATE(latest_gate),
	KORE_HTTP_STATE(latest_cache),
	KORE_HTTP_STATE(latest_cache_wait),
	KORE_HTTP_STATE(latest_flight_wait),
};

int
api_prices_latest(struct http_request *req)
{
	return (API_RUN(req, ROUTE_LATEST, latest_states));
}

static const struct api_query q_history = {
	ROLE_READER, API_DB_READ,
	"SELECT md._api_history($1, $2, $3, $4, $5::int)", 5, 200,
	"not_found", "nothing found", 0
};

static const struct api_query q_average = {
	ROLE_READER, API_DB_READ,
	"SELECT md._api_average($1, $2::int)", 2, 200,
	"not_found", "nothing found", 0
};

static int
history_args(struct http_request *req)
{
	struct api_ctx		*ctx = req->hdlr_extra;
	static const char	*names[] = { "from", "to", "provider", "limit" };
	int			 i;

	if (!api_method(req, HTTP_METHOD_GET) || !api_query_parse(req))
		return (HTTP_STATE_COMPLETE);
	if (!api_symbol_arg(ctx))
		return (HTTP_STATE_COMPLETE);
	for (i = 0; i < 4; i++) {
		if (!api_opt_arg(ctx, i + 1, names[i]))
			return (answered(api_error(req, 400,
			    "invalid_argument", "%s is invalid", names[i])));
	}
	ctx->args.query = &q_history;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
average_args(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!api_method(req, HTTP_METHOD_GET) || !api_query_parse(req))
		return (HTTP_STATE_COMPLETE);
	if (!api_symbol_arg(ctx))
		return (HTTP_STATE_COMPLETE);
	if (!api_opt_arg(ctx, 1, "window"))
		return (answered(api_error(req, 400, "invalid_argument",
		    "window is invalid: a whole number of points")));
	ctx->args.query = &q_average;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static struct http_state history_states[] = {
	KORE_HTTP_STATE(history_args),
	KORE_HTTP_STATE(api_route_gate),
	KORE_HTTP_STATE(api_route_query),
	KORE_HTTP_STATE(api_route_answer),
};

static struct http_state average_states[] = {
	KORE_HTTP_STATE(average_args),
	KORE_HTTP_STATE(api_route_gate),
	KORE_HTTP_STATE(api_route_query),
	KORE_HTTP_STATE(api_route_answer),
};

/* GET /prices/history (the replica) */
int
api_prices_history(struct http_request *req)
{
	return (API_RUN(req, ROUTE_HISTORY, history_states));
}

/* GET /prices/average (the replica) */
int
api_prices_average(struct http_request *req)
{
	return (API_RUN(req, ROUTE_AVERAGE, average_states));
}
