/*
 * api/src/stream_token.c
 *	POST /stream/token: a short-lived, single-use token that lets a
 *	browser open GET /prices/stream, whose EventSource and WebSocket
 *	cannot send an X-API-Key or Authorization header.
 *
 * A *stream token* is "mdst_" and 48 random hex digits. Redis keeps only
 * its SHA-256, for MD_API_STREAM_TOKEN_TTL seconds (60), with the role and rate-limit
 * identity of the caller who asked for it (md:stream_token:{sha256} =
 * "{role} {ident}"); the stream consumes it with GETDEL, so it opens one
 * stream at most, and only a stream: every other route ignores it. The
 * API key itself is never accepted in a URL. Without Redis no token can
 * be issued (503) or used (401).
 */

#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "api.h"

#define TOKEN_PREFIX		"mdst_"
#define TOKEN_HEX		48
#define TOKEN_LEN		(5 + TOKEN_HEX)
#define TOKEN_KEY_PREFIX	"md:stream_token:"

int	api_stream_token(struct http_request *);

static void
hex(const u_int8_t *d, size_t n, char *out)
{
	size_t	i;

	for (i = 0; i < n; i++)
		(void)snprintf(out + i * 2, 3, "%02x", d[i]);
}

/* md:stream_token:{sha256 of the token} */
static void
token_key(const char *token, char *key, size_t len)
{
	u_int8_t	d[32];
	char		h[65];

	api_digest("SHA256", token, strlen(token), d);
	hex(d, sizeof(d), h);
	(void)snprintf(key, len, "%s%s", TOKEN_KEY_PREFIX, h);
}

int
api_stream_token_format_ok(const char *token)
{
	size_t	i;

	if (strlen(token) != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, 5))
		return (0);
	for (i = 5; i < TOKEN_LEN; i++) {
		if (!((token[i] >= '0' && token[i] <= '9') ||
		    (token[i] >= 'a' && token[i] <= 'f')))
			return (0);
	}
	return (1);
}

static void
stored(void *r, void *arg)
{
	redisReply	*reply = r;
	struct api_ctx	*ctx = arg;

	ctx->redis.ok = (reply != NULL && reply->type == REDIS_REPLY_STATUS);
	api_ctx_done(ctx);
}

/* The gate, then a new token stored in Redis. */
static int
token_store(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	const char	*argv[6];
	size_t		 lens[6];
	u_int8_t	 rnd[TOKEN_HEX / 2];
	char		 key[96], value[128], ttl[16];
	int		 rc;

	if (ctx->gate.step == 0 && !api_method(req, HTTP_METHOD_POST))
		return (HTTP_STATE_COMPLETE);
	rc = api_gate(ctx, ROLE_READER);
	if (rc != HTTP_STATE_CONTINUE)
		return (rc);
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		fatal("getrandom: %s", errno_s);
	(void)memcpy(ctx->args.cache_key, TOKEN_PREFIX, 5);
	hex(rnd, sizeof(rnd), ctx->args.cache_key + 5);
	explicit_bzero(rnd, sizeof(rnd));
	token_key(ctx->args.cache_key, key, sizeof(key));
	(void)snprintf(value, sizeof(value), "%d %s", ctx->gate.role,
	    ctx->gate.ident);
	(void)snprintf(ttl, sizeof(ttl), "%d", api_cfg.stream_token_ttl);
	argv[0] = "SET";	lens[0] = 3;
	argv[1] = key;		lens[1] = strlen(key);
	argv[2] = value;	lens[2] = strlen(value);
	argv[3] = "EX";		lens[3] = 2;
	argv[4] = ttl;		lens[4] = strlen(ttl);
	argv[5] = "NX";		lens[5] = 2;
	req->fsm_state++;
	ctx->redis.ok = 0;
	api_ctx_wait(ctx);
	if (!api_redis_argv(stored, ctx, 6, argv, lens))
		api_ctx_done(ctx);
	return (HTTP_STATE_RETRY);
}

static int
token_answer(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	char		 body[160];

	if (!ctx->redis.ok) {
		explicit_bzero(ctx->args.cache_key, sizeof(ctx->args.cache_key));
		http_response_header(req, "retry-after", "1");
		(void)api_error(req, 503, "redis_unavailable",
		    "stream tokens need Redis, which is unavailable");
		return (HTTP_STATE_COMPLETE);
	}
	(void)snprintf(body, sizeof(body), "{\"token\":\"%s\",\"expires_in\":%d}",
	    ctx->args.cache_key, api_cfg.stream_token_ttl);
	explicit_bzero(ctx->args.cache_key, sizeof(ctx->args.cache_key));
	http_response_header(req, "cache-control", "no-store");
	api_json(req, 200, body, strlen(body));
	explicit_bzero(body, sizeof(body));
	return (HTTP_STATE_COMPLETE);
}

static struct http_state token_states[] = {
	KORE_HTTP_STATE(token_store),
	KORE_HTTP_STATE(token_answer),
};

/* POST /stream/token */
int
api_stream_token(struct http_request *req)
{
	return (API_RUN(req, ROUTE_STREAM_TOKEN, token_states));
}

/* Consumes a token: GETDEL; cb(reply or NULL, arg). Error: not sent. */
int
api_stream_token_take(const char *token, void (*cb)(void *, void *),
    void *arg)
{
	const char	*argv[2];
	size_t		 lens[2];
	char		 key[96];

	token_key(token, key, sizeof(key));
	argv[0] = "GETDEL";	lens[0] = 6;
	argv[1] = key;		lens[1] = strlen(key);
	return (api_redis_argv(cb, arg, 2, argv, lens));
}

/* The role and identity a token's value holds; 0 when malformed. */
int
api_stream_token_parse(const char *value, size_t len, int *role,
    char *ident, size_t identlen)
{
	char	buf[128], *sp, *end;
	long	r;

	if (len == 0 || len >= sizeof(buf))
		return (0);
	memcpy(buf, value, len);
	buf[len] = '\0';
	if ((sp = strchr(buf, ' ')) == NULL)
		return (0);
	*sp = '\0';
	r = strtol(buf, &end, 10);
	if (*end != '\0' || r < ROLE_READER || r > ROLE_ADMIN)
		return (0);
	*role = (int)r;
	(void)kore_strlcpy(ident, sp + 1, identlen);
	return (1);
}
