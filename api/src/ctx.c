/*
 * api/src/ctx.c
 *	Per-request state and its lifetime.
 *
 * The state is one struct per concern (gate, rate limit, Redis and
 * database answers, route arguments, flight share); what a concern must
 * do when the request is gone it registers as an "on done" hook, so this
 * file knows none of them.
 *
 * An asynchronous operation (a Redis command, a database query, a share
 * of a flight) holds the ctx: api_ctx_wait() puts the request to sleep
 * and takes a hold before the operation starts, api_ctx_done() gives it
 * back and wakes the request. When the client goes away first, Kore frees
 * the request but not the ctx: the last hold frees it. So no callback ever
 * touches a freed request.
 */

#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "api.h"

int	api_ctx_live;

static void	ctx_onfree(struct http_request *);
static void	ctx_free(struct api_ctx *);

u_int64_t
api_now_us(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((u_int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/*
 * A digest with its algorithm fetched once per process: OpenSSL 3's
 * one-shot SHA1()/SHA256() fetch it, under a lock, on every call, which
 * showed in the profile of the cache-hit path.
 */
void
api_digest(const char *alg, const void *data, size_t len, u_int8_t *out)
{
	static EVP_MD	*sha1, *sha256;
	EVP_MD		**md = strcmp(alg, "SHA256") ? &sha1 : &sha256;

	if (*md == NULL && (*md = EVP_MD_fetch(NULL, alg, NULL)) == NULL)
		fatal("OpenSSL has no %s", alg);
	if (!EVP_Digest(data, len, out, NULL, *md, NULL))
		fatal("%s failed", alg);
}

/* Where key goes in a table of n slots (a SHA-1 spreads the keys). */
u_int32_t
api_slot(const void *key, size_t len, u_int32_t n)
{
	u_int8_t	d[EVP_MAX_MD_SIZE];
	u_int32_t	idx;

	api_digest("SHA1", key, len, d);
	memcpy(&idx, d, sizeof(idx));
	return (idx % n);
}

struct api_ctx *
api_ctx_get(struct http_request *req, int route)
{
	struct api_ctx	*ctx;

	if (req->hdlr_extra != NULL)
		return (req->hdlr_extra);

	ctx = kore_calloc(1, sizeof(*ctx));
	ctx->req = req;
	ctx->route = route;
	ctx->start_us = api_now_us();
	req->hdlr_extra = ctx;
	/* the ctx may outlive the request: Kore must not free it */
	req->flags |= HTTP_REQUEST_RETAIN_EXTRA;
	req->onfree = ctx_onfree;
	api_ctx_live++;

	return (ctx);
}

int
api_ctx_run(struct http_request *req, int route, struct http_state *states,
    u_int8_t nstates)
{
	(void)api_ctx_get(req, route);
	return (http_state_run(states, nstates, req));
}

void
api_ctx_wait(struct api_ctx *ctx)
{
	ctx->pending++;
	if (ctx->req != NULL)
		http_request_sleep(ctx->req);
}

void
api_ctx_done(struct api_ctx *ctx)
{
	ctx->pending--;
	if (ctx->req != NULL)
		http_request_wakeup(ctx->req);
	else if (ctx->pending == 0)
		ctx_free(ctx);
}

static void
ctx_onfree(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	int		 i;

	if (ctx == NULL)
		return;
	api_metrics_request(ctx->route, req->status,
	    api_now_us() - ctx->start_us);
	req->hdlr_extra = NULL;
	ctx->req = NULL;
	for (i = 0; i < API_CTX_HOOKS && ctx->on_done[i] != NULL; i++)
		ctx->on_done[i](ctx);
	if (ctx->pending == 0)
		ctx_free(ctx);
}

static void
ctx_free(struct api_ctx *ctx)
{
	int	i;

	api_dbres_clear(&ctx->db);
	api_dbres_clear(&ctx->read_db);
	kore_free(ctx->redis.value);
	kore_free(ctx->gate.api_key);
	for (i = 0; i < API_NARGS; i++)
		kore_free(ctx->args.arg[i]);
	kore_free(ctx);
	api_ctx_live--;
}

/* Run fn when the request is gone; once, however often it is asked. */
void
api_ctx_on_done(struct api_ctx *ctx, void (*fn)(struct api_ctx *))
{
	int	i;

	for (i = 0; i < API_CTX_HOOKS; i++) {
		if (ctx->on_done[i] == fn)
			return;
		if (ctx->on_done[i] == NULL) {
			ctx->on_done[i] = fn;
			return;
		}
	}
	fatal("more than %d on-done hooks on a request", API_CTX_HOOKS);
}

void
api_dbres_clear(struct api_dbres *res)
{
	kore_free(res->value);
	kore_free(res->value2);
	kore_free(res->message);
	kore_free(res->detail);
	memset(res, 0, sizeof(*res));
}
