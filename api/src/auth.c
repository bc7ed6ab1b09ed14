/*
 * api/src/auth.c
 *	Who is calling: an API key (X-API-Key) or a JWT (Authorization:
 *	Bearer), and the gate every protected route passes first.
 *
 * An *API key* is looked up by its SHA-256 with md._api_key_role() (only
 * the hash is stored, and only the hash is sent) and the answer, a role
 * or "no such key", is cached in the worker for MD_API_KEY_CACHE_TTL
 * seconds: a revoked key stops working within that time. Keys that do
 * not exist have a cache of their own, so a flood of made-up keys cannot
 * evict the good ones (each of which would then cost a look-up again). A *JWT* is
 * judged by jwt_check.c (HS256, its claims, the role claim). Missing or
 * bad credentials: 401; a valid caller without the role: 403.
 *
 * The per-IP limit comes before any answer and before any database
 * look-up: credentials this worker can judge alone (a cached key, a JWT,
 * a malformed header) go to the rate limiter with the caller's own key in
 * one script call; the rest (an unknown key, a 401) pass the IP limit
 * first, so a flood of random keys costs no more than its limit.
 */

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "api.h"
#include "jwt_check.h"

#define KEY_CACHE_SIZE		1024
#define BAD_KEY_CACHE_SIZE	4096
#define KEY_LEN			52	/* mdk_ + 48 hex */

#define GATE_START		0
#define GATE_KEY_WAIT		1
#define GATE_LIMIT		API_GATE_AUTHED
#define GATE_LIMIT_WAIT		3
#define GATE_PASSED		API_GATE_PASSED
#define GATE_IP_WAIT		5

/* what api_auth() found */
#define AUTH_KNOWN		0	/* ctx->gate.role */
#define AUTH_FAILED		1	/* ctx->gate.auth_error: a 401 */
#define AUTH_LOOKUP		2	/* ctx->gate.api_key to look up */

struct key_entry {
	u_int8_t	digest[SHA256_DIGEST_LENGTH];
	int		role;		/* -1: no such key */
	u_int64_t	expires;	/* ms */
};

/* keys with a role, and keys the database said do not exist */
static struct key_entry	key_cache[KEY_CACHE_SIZE];
static struct key_entry	bad_key_cache[BAD_KEY_CACHE_SIZE];

static const char *role_names[] = { "none", "reader", "writer", "admin" };

static int
role_parse(const char *s)
{
	int	i;

	for (i = ROLE_READER; i <= ROLE_ADMIN; i++) {
		if (s != NULL && !strcmp(s, role_names[i]))
			return (i);
	}
	return (ROLE_NONE);
}

static void
key_digest(const char *key, u_int8_t *digest)
{
	api_digest("SHA256", key, strlen(key), digest);
}

/* the key's slot in a cache of n entries */
static struct key_entry *
key_slot(struct key_entry *cache, size_t n, const u_int8_t *digest)
{
	u_int32_t	idx;

	memcpy(&idx, digest, sizeof(idx));
	return (&cache[idx % n]);
}

/* the entry of this key in the cache, if it is there and fresh */
static struct key_entry *
key_cached(struct key_entry *cache, size_t n, const u_int8_t *digest)
{
	struct key_entry	*e = key_slot(cache, n, digest);

	if (memcmp(e->digest, digest, SHA256_DIGEST_LENGTH) ||
	    e->expires <= kore_time_ms())
		return (NULL);
	return (e);
}

static int
key_format_ok(const char *key)
{
	size_t	i;

	if (strlen(key) != KEY_LEN || strncmp(key, "mdk_", 4))
		return (0);
	for (i = 4; i < KEY_LEN; i++) {
		if (!((key[i] >= '0' && key[i] <= '9') ||
		    (key[i] >= 'a' && key[i] <= 'f')))
			return (0);
	}
	return (1);
}

static int
unauthorized(struct api_ctx *ctx, const char *msg)
{
	api_metrics_count(MC_AUTH_FAILED);
	api_ratelimit_headers(ctx);
	http_response_header(ctx->req, "www-authenticate",
	    "Bearer realm=\"marketdata\", ApiKey header=\"X-API-Key\"");
	api_error(ctx->req, 401, "unauthorized", "%s", msg);
	return (HTTP_STATE_COMPLETE);
}

/* A 401 to answer once the IP limit has been passed. */
static int
auth_failed(struct api_ctx *ctx, const char *msg)
{
	ctx->gate.auth_error = msg;
	return (AUTH_FAILED);
}

static void
ident_from_digest(struct api_ctx *ctx, const u_int8_t *d)
{
	(void)snprintf(ctx->gate.ident, sizeof(ctx->gate.ident),
	    "key:%02x%02x%02x%02x%02x%02x%02x%02x",
	    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

static int
auth_jwt(struct api_ctx *ctx, const char *token)
{
	struct api_jwt_rules	rules;
	struct api_jwt_verdict	v;

	if (api_cfg.jwt_secret == NULL)
		return (auth_failed(ctx, "bearer tokens are not enabled"));
	rules.secret = api_cfg.jwt_secret;
	rules.secret_len = api_cfg.jwt_secret_len;
	rules.role_claim = api_cfg.jwt_role_claim;
	rules.issuer = api_cfg.jwt_issuer;
	rules.audience = api_cfg.jwt_audience;
	rules.max_lifetime = api_cfg.jwt_max_lifetime;
	if (!api_jwt_check(&rules, token, (long)time(NULL), &v))
		return (auth_failed(ctx, v.why));
	ctx->gate.role = role_parse(v.role);
	(void)kore_strlcpy(ctx->gate.ident, v.ident, sizeof(ctx->gate.ident));
	if (ctx->gate.role == ROLE_NONE)
		return (auth_failed(ctx, "token has no valid role"));
	return (AUTH_KNOWN);
}

/* Who the caller is, as far as this worker knows without the database. */
static int
api_auth(struct api_ctx *ctx)
{
	struct http_request	*req = ctx->req;
	struct key_entry	*e;
	u_int8_t		 digest[SHA256_DIGEST_LENGTH];
	const char		*key, *authz;

	if (http_request_header(req, "x-api-key", &key)) {
		if (!key_format_ok(key))
			return (auth_failed(ctx, "invalid API key"));
		key_digest(key, digest);
		if ((e = key_cached(key_cache, KEY_CACHE_SIZE,
		    digest)) != NULL) {
			ident_from_digest(ctx, digest);
			ctx->gate.role = e->role;
			return (AUTH_KNOWN);
		}
		if (key_cached(bad_key_cache, BAD_KEY_CACHE_SIZE,
		    digest) != NULL)
			return (auth_failed(ctx, "invalid API key"));
		ctx->gate.api_key = kore_strdup(key);
		return (AUTH_LOOKUP);
	}

	if (http_request_header(req, "authorization", &authz)) {
		if (strncasecmp(authz, "Bearer ", 7))
			return (auth_failed(ctx,
			    "use Authorization: Bearer <JWT> or X-API-Key"));
		return (auth_jwt(ctx, authz + 7));
	}

	return (auth_failed(ctx, "an API key (X-API-Key) or a bearer token "
	    "is required"));
}

/* Ask the database for the role of ctx->gate.api_key. */
static int
key_lookup(struct api_ctx *ctx)
{
	u_int8_t	 digest[SHA256_DIGEST_LENGTH];
	char		 hex[2 * SHA256_DIGEST_LENGTH + 1];
	const char	*params[1];
	size_t		 i;

	key_digest(ctx->gate.api_key, digest);
	/* the key's SHA-256, never the key, goes to the database */
	for (i = 0; i < sizeof(digest); i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	params[0] = hex;
	ctx->gate.step = GATE_KEY_WAIT;
	return (api_db_start(ctx, API_DB_PRIMARY,
	    "SELECT md._api_key_role($1)", 1, params));
}

static int
key_looked_up(struct api_ctx *ctx)
{
	struct key_entry	*e;
	u_int8_t		 digest[SHA256_DIGEST_LENGTH];
	int			 role;

	if (!ctx->db.ok) {
		(void)api_db_error(ctx);
		return (HTTP_STATE_COMPLETE);
	}
	key_digest(ctx->gate.api_key, digest);
	role = ctx->db.isnull ? ROLE_NONE : role_parse(ctx->db.value);
	e = role == ROLE_NONE ?
	    key_slot(bad_key_cache, BAD_KEY_CACHE_SIZE, digest) :
	    key_slot(key_cache, KEY_CACHE_SIZE, digest);
	memcpy(e->digest, digest, sizeof(digest));
	e->role = role == ROLE_NONE ? -1 : role;
	e->expires = kore_time_ms() + (u_int64_t)api_cfg.key_cache_ttl * 1000;
	if (role == ROLE_NONE)
		return (unauthorized(ctx, "invalid API key"));
	ident_from_digest(ctx, digest);
	ctx->gate.role = role;
	return (HTTP_STATE_CONTINUE);
}

/*
 * After a rate limiter call: COMPLETE when it refused (429, or 503 when
 * Redis is down and the limiter fails closed), CONTINUE otherwise.
 */
/*
 * Requests let through unlimited are said in the log, at most once a
 * minute per worker (the metric counts each).
 */
static void
fail_open_log(void)
{
	static u_int64_t	last_ms = 0;
	static u_int64_t	since = 0;
	u_int64_t		now = kore_time_ms();

	since++;
	if (last_ms != 0 && now - last_ms < 60000)
		return;
	kore_log(LOG_WARNING, "rate limiter unavailable (Redis): %llu "
	    "request(s) let through unlimited since the last such line "
	    "(MD_API_RATE_LIMIT_FAIL=open)", (unsigned long long)since);
	last_ms = now;
	since = 0;
}

static int
limit_passed(struct api_ctx *ctx)
{
	if (ctx->rl.error && !api_cfg.rl_fail_open) {
		http_response_header(ctx->req, "retry-after", "1");
		api_error(ctx->req, 503, "rate_limiter_unavailable",
		    "the rate limiter is unavailable");
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->rl.error) {
		api_metrics_count(MC_RL_FAIL_OPEN);
		fail_open_log();
	} else if (!ctx->rl.allowed) {
		api_ratelimit_headers(ctx);
		api_metrics_count(MC_RATE_LIMITED);
		api_error(ctx->req, 429, "rate_limited",
		    "too many requests, retry after %lld s",
		    (ctx->rl.retry_ms + 999) / 1000);
		return (HTTP_STATE_COMPLETE);
	}
	return (HTTP_STATE_CONTINUE);
}

/*
 * The gate: authentication, the rate limit, the role. Returns
 * HTTP_STATE_CONTINUE once passed, HTTP_STATE_RETRY while waiting and
 * HTTP_STATE_COMPLETE when it answered the request (an error).
 */
int
api_gate(struct api_ctx *ctx, int need_role)
{
	int		 rc;

	for (;;) {
		switch (ctx->gate.step) {
		case GATE_START:
			ctx->gate.auth = api_auth(ctx);
			if (ctx->gate.auth == AUTH_KNOWN) {
				ctx->gate.step = GATE_LIMIT;
				break;
			}
			/* the IP's limit before a 401 or a look-up */
			ctx->gate.step = GATE_IP_WAIT;
			if (api_ratelimit_start(ctx, RL_IP) == HTTP_STATE_RETRY)
				return (HTTP_STATE_RETRY);
			break;
		case GATE_IP_WAIT:
			if (limit_passed(ctx) != HTTP_STATE_CONTINUE)
				return (HTTP_STATE_COMPLETE);
			if (ctx->gate.auth == AUTH_FAILED)
				return (unauthorized(ctx, ctx->gate.auth_error));
			return (key_lookup(ctx));
		case GATE_KEY_WAIT:
			rc = key_looked_up(ctx);
			if (rc != HTTP_STATE_CONTINUE)
				return (rc);
			ctx->gate.step = GATE_LIMIT;
			break;
		case GATE_LIMIT:
			ctx->gate.step = GATE_LIMIT_WAIT;
			if (api_ratelimit_start(ctx, ctx->rl.ip_done ?
			    RL_CALLER : RL_IP | RL_CALLER) == HTTP_STATE_RETRY)
				return (HTTP_STATE_RETRY);
			break;
		case GATE_LIMIT_WAIT:
			api_ratelimit_headers(ctx);
			if (limit_passed(ctx) != HTTP_STATE_CONTINUE)
				return (HTTP_STATE_COMPLETE);
			if (ctx->gate.role < need_role) {
				api_error(ctx->req, 403, "forbidden",
				    "this needs the %s role, the caller is %s",
				    role_names[need_role],
				    role_names[ctx->gate.role]);
				return (HTTP_STATE_COMPLETE);
			}
			ctx->gate.step = GATE_PASSED;
			break;
		case GATE_PASSED:
			return (HTTP_STATE_CONTINUE);
		}
	}
}
