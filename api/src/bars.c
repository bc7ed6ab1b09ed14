/*
 * api/src/bars.c
 *	GET /prices/bars: OHLCV bars (md_bars() through md._api_bars()).
 *
 * A page whose buckets have all ended (and whose "to" was given, so the
 * answer does not move with the clock) is kept in Redis for
 * MD_API_BARS_CACHE_TTL seconds under md:bars:{symbol}:{digest of the
 * arguments}; a page holding the current bucket is never cached, so a new
 * price shows at once. The database says which a page is (the second
 * column of md._api_bars).
 *
 * The state table: arguments, the gate and the query of route.c, with the
 * cache between them and the answer after.
 */

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "api.h"

int	api_prices_bars(struct http_request *);

static const struct api_query q_bars = {
	ROLE_READER, API_DB_READ,
	"SELECT body, closed FROM md._api_bars($1, $2, $3, $4, $5, $6, $7::int)",
	7, 200, "not_found", "nothing found", 0
};

static const char *arg_names[] = {
	"interval", "from", "to", "fill", "provider", "limit"
};
#define NAMED_ARGS	(sizeof(arg_names) / sizeof(arg_names[0]))

/* the states, by index in bars_states */
#define BARS_CACHE_WAIT	3
#define BARS_QUERY	4

/* md:bars:{symbol}:{hex of the first 16 bytes of SHA-256 of the arguments} */
static void
cache_key(struct api_ctx *ctx)
{
	u_int8_t	 d[EVP_MAX_MD_SIZE];
	char		 buf[512];
	size_t		 len, i;
	int		 n;

	len = 0;
	for (i = 0; i <= NAMED_ARGS; i++) {
		n = snprintf(buf + len, sizeof(buf) - len, "%s%c",
		    ctx->args.arg[i] ? ctx->args.arg[i] : "",
		    ctx->args.arg[i] ? '=' : '-');
		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			fatal("bars: cache key arguments too long");
		len += n;
	}
	api_digest("SHA256", buf, len, d);
	n = snprintf(ctx->args.cache_key, sizeof(ctx->args.cache_key),
	    "md:bars:%s:", ctx->args.symbol);
	for (i = 0; i < 16; i++)
		n += snprintf(ctx->args.cache_key + n,
		    sizeof(ctx->args.cache_key) - n, "%02x", d[i]);
}

static int
answer(struct api_ctx *ctx, const char *body, size_t len, int hit)
{
	http_response_header(ctx->req, "x-cache", hit ? "HIT" : "MISS");
	api_ratelimit_headers(ctx);
	api_json(ctx->req, 200, body, len);
	return (HTTP_STATE_COMPLETE);
}

static int
bars_args(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	size_t		 i;

	if (!api_method(req, HTTP_METHOD_GET) || !api_query_parse(req))
		return (HTTP_STATE_COMPLETE);
	if (!api_symbol_arg(ctx))
		return (HTTP_STATE_COMPLETE);
	for (i = 0; i < NAMED_ARGS; i++) {
		if (!api_opt_arg(ctx, i + 1, arg_names[i])) {
			(void)api_error(req, 400, "invalid_argument",
			    "%s is invalid", arg_names[i]);
			return (HTTP_STATE_COMPLETE);
		}
	}
	if (ctx->args.arg[1] == NULL) {
		(void)api_error(req, 400, "invalid_argument",
		    "interval is missing: 1m, 5m, 1h, 4h, 1d, 1w, 1mo or "
		    "interval text (15 minutes)");
		return (HTTP_STATE_COMPLETE);
	}
	cache_key(ctx);
	ctx->args.query = &q_bars;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
bars_cache(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (ctx->args.cache_peeked) {
		/* the gate's script read the cache already */
		req->fsm_state = BARS_CACHE_WAIT;
		return (HTTP_STATE_CONTINUE);
	}
	if (api_cfg.bars_cache_ttl > 0 && api_redis_up()) {
		req->fsm_state = BARS_CACHE_WAIT;
		if (api_redis_get(ctx, ctx->args.cache_key))
			return (HTTP_STATE_RETRY);
		return (HTTP_STATE_CONTINUE);
	}
	req->fsm_state = BARS_QUERY;
	return (HTTP_STATE_CONTINUE);
}

static int
bars_cache_wait(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (ctx->redis.value != NULL && api_cfg.bars_cache_ttl > 0)
		return (answer(ctx, ctx->redis.value, ctx->redis.len, 1));
	req->fsm_state = BARS_QUERY;
	return (HTTP_STATE_CONTINUE);
}

static int
bars_answer(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!ctx->db.ok) {
		(void)api_db_error(ctx);
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->db.isnull) {
		(void)api_error(req, 500, "internal",
		    "no answer from md._api_bars");
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->db.value2 != NULL && !strcmp(ctx->db.value2, "t") &&
	    api_cfg.bars_cache_ttl > 0 && api_redis_up())
		api_redis_set(ctx->args.cache_key, ctx->db.value,
		    strlen(ctx->db.value), api_cfg.bars_cache_ttl);
	return (answer(ctx, ctx->db.value, strlen(ctx->db.value), 0));
}

static struct http_state bars_states[] = {
	KORE_HTTP_STATE(bars_args),
	KORE_HTTP_STATE(api_route_gate),
	KORE_HTTP_STATE(bars_cache),
	KORE_HTTP_STATE(bars_cache_wait),
	KORE_HTTP_STATE(api_route_query),
	KORE_HTTP_STATE(bars_answer),
};

/* GET /prices/bars (the replica) */
int
api_prices_bars(struct http_request *req)
{
	return (API_RUN(req, ROUTE_BARS, bars_states));
}
