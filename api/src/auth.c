/*
 * api/src/auth.c
 *	Who is calling: an API key (X-API-Key) or a JWT (Authorization:
 *	Bearer), and the gate every protected route passes first.
 *
 * An *API key* is looked up by its SHA-256 with md._api_key_role() (only
 * the hash is stored, and only the hash is sent) and the answer, a role
 * or "no such key", is cached in the worker for MD_API_KEY_CACHE_TTL
 * seconds: a revoked key stops working within that time. A *JWT* is
 * judged by jwt_check.c (HS256, its claims, the role claim). Missing or
 * bad credentials: 401; a valid caller without the role: 403.
 */

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "api.h"
#include "jwt_check.h"

#define KEY_CACHE_SIZE		1024
#define KEY_LEN			52	/* mdk_ + 48 hex */

#define GATE_START		0
#define GATE_KEY_WAIT		1
#define GATE_LIMIT		API_GATE_AUTHED
#define GATE_LIMIT_WAIT		3
#define GATE_PASSED		API_GATE_PASSED

struct key_entry {
	u_int8_t	digest[SHA256_DIGEST_LENGTH];
	int		role;		/* -1: no such key */
	u_int64_t	expires;	/* ms */
};

static struct key_entry	key_cache[KEY_CACHE_SIZE];

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

static struct key_entry *
key_slot(const char *key, u_int8_t *digest)
{
	u_int32_t	idx;

	api_digest("SHA256", key, strlen(key), digest);
	memcpy(&idx, digest, sizeof(idx));
	return (&key_cache[idx % KEY_CACHE_SIZE]);
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
	http_response_header(ctx->req, "www-authenticate",
	    "Bearer realm=\"marketdata\", ApiKey header=\"X-API-Key\"");
	api_error(ctx->req, 401, "unauthorized", "%s", msg);
	return (HTTP_STATE_COMPLETE);
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
		return (unauthorized(ctx, "bearer tokens are not enabled"));
	rules.secret = api_cfg.jwt_secret;
	rules.secret_len = api_cfg.jwt_secret_len;
	rules.role_claim = api_cfg.jwt_role_claim;
	rules.issuer = api_cfg.jwt_issuer;
	rules.audience = api_cfg.jwt_audience;
	rules.max_lifetime = api_cfg.jwt_max_lifetime;
	if (!api_jwt_check(&rules, token, (long)time(NULL), &v))
		return (unauthorized(ctx, v.why));
	ctx->gate.role = role_parse(v.role);
	(void)kore_strlcpy(ctx->gate.ident, v.ident, sizeof(ctx->gate.ident));
	if (ctx->gate.role == ROLE_NONE)
		return (unauthorized(ctx, "token has no valid role"));
	return (HTTP_STATE_CONTINUE);
}

/* CONTINUE: ctx->gate.role is known; RETRY: looking the key up; COMPLETE: 401. */
int
api_auth(struct api_ctx *ctx)
{
	struct http_request	*req = ctx->req;
	struct key_entry	*e;
	u_int8_t		 digest[SHA256_DIGEST_LENGTH];
	char			 hex[2 * SHA256_DIGEST_LENGTH + 1];
	const char		*key, *authz, *params[1];
	size_t			 i;

	if (http_request_header(req, "x-api-key", &key)) {
		if (!key_format_ok(key))
			return (unauthorized(ctx, "invalid API key"));
		e = key_slot(key, digest);
		ident_from_digest(ctx, digest);
		if (!memcmp(e->digest, digest, sizeof(digest)) &&
		    e->expires > kore_time_ms()) {
			if (e->role < 0)
				return (unauthorized(ctx, "invalid API key"));
			ctx->gate.role = e->role;
			return (HTTP_STATE_CONTINUE);
		}
		ctx->gate.api_key = kore_strdup(key);
		/* the key's SHA-256, never the key, goes to the database */
		for (i = 0; i < sizeof(digest); i++)
			(void)snprintf(hex + 2 * i, 3, "%02x", digest[i]);
		params[0] = hex;
		ctx->gate.step = GATE_KEY_WAIT;
		return (api_db_start(ctx, API_DB_PRIMARY,
		    "SELECT md._api_key_role($1)", 1, params));
	}

	if (http_request_header(req, "authorization", &authz)) {
		if (strncasecmp(authz, "Bearer ", 7))
			return (unauthorized(ctx,
			    "use Authorization: Bearer <JWT> or X-API-Key"));
		return (auth_jwt(ctx, authz + 7));
	}

	return (unauthorized(ctx, "an API key (X-API-Key) or a bearer token "
	    "is required"));
}

static int
key_looked_up(struct api_ctx *ctx)
{
	struct key_entry	*e;
	u_int8_t		 digest[SHA256_DIGEST_LENGTH];

	if (!ctx->db.ok) {
		(void)api_db_error(ctx);
		return (HTTP_STATE_COMPLETE);
	}
	e = key_slot(ctx->gate.api_key, digest);
	memcpy(e->digest, digest, sizeof(digest));
	e->role = ctx->db.isnull ? -1 : role_parse(ctx->db.value);
	if (e->role == ROLE_NONE)
		e->role = -1;
	e->expires = kore_time_ms() + (u_int64_t)api_cfg.key_cache_ttl * 1000;
	if (e->role < 0)
		return (unauthorized(ctx, "invalid API key"));
	ctx->gate.role = e->role;
	return (HTTP_STATE_CONTINUE);
}

/*
 * The gate: authentication, the role, the rate limit. Returns
 * HTTP_STATE_CONTINUE once passed, HTTP_STATE_RETRY while waiting and
 * HTTP_STATE_COMPLETE when it answered the request (an error).
 */
int
api_gate(struct api_ctx *ctx, int need_role)
{
	int	rc;

	for (;;) {
		switch (ctx->gate.step) {
		case GATE_START:
			rc = api_auth(ctx);
			if (rc != HTTP_STATE_CONTINUE)
				return (rc);
			ctx->gate.step = GATE_LIMIT;
			break;
		case GATE_KEY_WAIT:
			rc = key_looked_up(ctx);
			if (rc != HTTP_STATE_CONTINUE)
				return (rc);
			ctx->gate.step = GATE_LIMIT;
			break;
		case GATE_LIMIT:
			if (ctx->gate.role < need_role) {
				api_error(ctx->req, 403, "forbidden",
				    "this needs the %s role, the caller is %s",
				    role_names[need_role],
				    role_names[ctx->gate.role]);
				return (HTTP_STATE_COMPLETE);
			}
			ctx->gate.step = GATE_LIMIT_WAIT;
			if (api_ratelimit_start(ctx) == HTTP_STATE_RETRY)
				return (HTTP_STATE_RETRY);
			break;
		case GATE_LIMIT_WAIT:
			api_ratelimit_headers(ctx);
			if (ctx->rl.error && !api_cfg.rl_fail_open) {
				http_response_header(ctx->req, "retry-after",
				    "1");
				api_error(ctx->req, 503, "rate_limiter_unavailable",
				    "the rate limiter is unavailable");
				return (HTTP_STATE_COMPLETE);
			}
			if (ctx->rl.error) {
				api_metrics_count(MC_RL_FAIL_OPEN);
			} else if (!ctx->rl.allowed) {
				api_metrics_count(MC_RATE_LIMITED);
				api_error(ctx->req, 429, "rate_limited",
				    "too many requests, retry after %lld s",
				    (ctx->rl.retry_ms + 999) / 1000);
				return (HTTP_STATE_COMPLETE);
			}
			ctx->gate.step = GATE_PASSED;
			break;
		case GATE_PASSED:
			return (HTTP_STATE_CONTINUE);
		}
	}
}
