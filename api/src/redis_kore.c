/*
 * api/src/redis_kore.c
 *	hiredis's asynchronous API on Kore's event loop, after hiredis's own
 *	adapters/ headers: the adapter tells us which events hiredis wants, we
 *	register the socket with Kore's epoll (level-triggered) and hand
 *	readiness back to redisAsyncHandleRead/Write.
 *
 * Each worker has one connection, pipelined. When it fails, commands
 * answer "Redis down" at once (callers fall back to the database, the
 * rate limiter follows MD_API_RATE_LIMIT_FAIL) and a timer reconnects
 * every second. A failed context is never reused: hiredis frees it and
 * we make a new one.
 */

#include <sys/epoll.h>

#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "api.h"

#define REDIS_DOWN		0
#define REDIS_CONNECTING	1
#define REDIS_UP		2

struct redis_kore {
	struct kore_event	 evt;		/* first: Kore's epoll data */
	redisAsyncContext	*ac;
	int			 fd;
	int			 events;	/* EPOLLIN | EPOLLOUT wanted */
	int			 registered;
	int			 state;
};

struct redis_call {
	void	(*cb)(void *, void *);
	void	*arg;
};

static struct redis_kore	rk;

static void	redis_connect(void);

/* Adapter --------------------------------------------------------------- */

static void
rk_update(struct redis_kore *r)
{
	if (r->events == 0) {
		if (r->registered) {
			kore_platform_disable_read(r->fd);
			r->registered = 0;
		}
		return;
	}
	kore_platform_event_schedule(r->fd, r->events, 0, r);
	r->registered = 1;
}

static void
rk_add_read(void *p)
{
	struct redis_kore	*r = p;

	r->events |= EPOLLIN;
	rk_update(r);
}

static void
rk_del_read(void *p)
{
	struct redis_kore	*r = p;

	r->events &= ~EPOLLIN;
	rk_update(r);
}

static void
rk_add_write(void *p)
{
	struct redis_kore	*r = p;

	r->events |= EPOLLOUT;
	rk_update(r);
}

static void
rk_del_write(void *p)
{
	struct redis_kore	*r = p;

	r->events &= ~EPOLLOUT;
	rk_update(r);
}

static void
rk_cleanup(void *p)
{
	struct redis_kore	*r = p;

	r->events = 0;
	rk_update(r);
}

/* Kore calls this when the socket is ready (or failed: err). */
static void
rk_handle(void *p, int err)
{
	struct redis_kore	*r = p;
	int			 flags = r->evt.flags;

	r->evt.flags = 0;
	if (r->ac == NULL)
		return;
	if ((flags & KORE_EVENT_WRITE) && r->ac != NULL)
		redisAsyncHandleWrite(r->ac);
	/* an error is found out by reading */
	if (((flags & KORE_EVENT_READ) || err) && r->ac != NULL)
		redisAsyncHandleRead(r->ac);
}

/* Connection ------------------------------------------------------------ */

static void
on_connect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this */
		rk.ac = NULL;
		rk.state = REDIS_DOWN;
		return;
	}
	rk.state = REDIS_UP;
	kore_log(LOG_NOTICE, "redis: connected to %s:%d", api_cfg.redis_host,
	    api_cfg.redis_port);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)ac;
	if (status != REDIS_OK && rk.state == REDIS_UP)
		kore_log(LOG_NOTICE, "redis: connection lost");
	rk.ac = NULL;
	rk.state = REDIS_DOWN;
}

static void
redis_connect(void)
{
	redisAsyncContext	*ac;

	ac = redisAsyncConnect(api_cfg.redis_host, api_cfg.redis_port);
	if (ac == NULL)
		return;
	if (ac->err) {
		redisAsyncFree(ac);
		return;
	}

	memset(&rk, 0, sizeof(rk));
	rk.evt.type = 100;
	rk.evt.handle = rk_handle;
	rk.ac = ac;
	rk.fd = ac->c.fd;
	rk.state = REDIS_CONNECTING;

	ac->ev.data = &rk;
	ac->ev.addRead = rk_add_read;
	ac->ev.delRead = rk_del_read;
	ac->ev.addWrite = rk_add_write;
	ac->ev.delWrite = rk_del_write;
	ac->ev.cleanup = rk_cleanup;
	(void)redisAsyncSetConnectCallback(ac, on_connect);
	(void)redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* the connect completes when the socket becomes writable */
	rk_add_write(&rk);
}

static void
redis_timer(void *unused, u_int64_t now)
{
	(void)unused;
	(void)now;
	if (rk.state == REDIS_DOWN && !api_draining)
		redis_connect();
}

void
api_redis_init(void)
{
	memset(&rk, 0, sizeof(rk));
	redis_connect();
	(void)kore_timer_add(redis_timer, 1000, NULL, 0);
}

void
api_redis_close(void)
{
	if (rk.ac != NULL)
		redisAsyncDisconnect(rk.ac);
}

int
api_redis_up(void)
{
	return (rk.state == REDIS_UP);
}

/* Commands -------------------------------------------------------------- */

static void
call_trampoline(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_call	*call = privdata;

	(void)ac;
	if (reply == NULL)
		api_metrics_count(MC_REDIS_ERROR);
	call->cb(reply, call->arg);
	kore_free(call);
}

/* Sends a command; cb(reply or NULL, arg) follows. Error: nothing sent. */
int
api_redis_argv(void (*cb)(void *, void *), void *arg, int argc,
    const char **argv, const size_t *lens)
{
	struct redis_call	*call;

	if (rk.state != REDIS_UP || rk.ac == NULL) {
		api_metrics_count(MC_REDIS_ERROR);
		return (KORE_RESULT_ERROR);
	}
	call = kore_malloc(sizeof(*call));
	call->cb = cb;
	call->arg = arg;
	if (redisAsyncCommandArgv(rk.ac, call_trampoline, call, argc, argv,
	    lens) != REDIS_OK) {
		kore_free(call);
		api_metrics_count(MC_REDIS_ERROR);
		return (KORE_RESULT_ERROR);
	}
	return (KORE_RESULT_OK);
}

static void
get_done(void *r, void *arg)
{
	redisReply	*reply = r;
	struct api_ctx	*ctx = arg;

	kore_free(ctx->redis_value);
	ctx->redis_value = NULL;
	ctx->redis_len = 0;
	ctx->redis_ok = (reply != NULL && reply->type != REDIS_REPLY_ERROR);
	if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
		ctx->redis_value = kore_malloc(reply->len + 1);
		memcpy(ctx->redis_value, reply->str, reply->len);
		ctx->redis_value[reply->len] = '\0';
		ctx->redis_len = reply->len;
	}
	ctx->redis_us = api_now_us() - ctx->redis_us;
	api_ctx_done(ctx);
}

/* GET key into ctx->redis_value; KORE_RESULT_ERROR: Redis is down. */
int
api_redis_get(struct api_ctx *ctx, const char *key)
{
	const char	*argv[2] = { "GET", key };
	size_t		 lens[2] = { 3, strlen(key) };

	ctx->redis_ok = 0;
	api_ctx_wait(ctx);
	ctx->redis_us = api_now_us();
	if (!api_redis_argv(get_done, ctx, 2, argv, lens)) {
		api_ctx_done(ctx);
		return (KORE_RESULT_ERROR);
	}
	return (KORE_RESULT_OK);
}

int
api_redis_ping(struct api_ctx *ctx)
{
	const char	*argv[1] = { "PING" };
	size_t		 lens[1] = { 4 };

	ctx->redis_ok = 0;
	api_ctx_wait(ctx);
	ctx->redis_us = api_now_us();
	if (!api_redis_argv(get_done, ctx, 1, argv, lens)) {
		api_ctx_done(ctx);
		return (KORE_RESULT_ERROR);
	}
	return (KORE_RESULT_OK);
}

static void
set_done(void *r, void *arg)
{
	(void)r;
	(void)arg;
}

/* SET key value EX ttl, not waited for. */
void
api_redis_set(const char *key, const char *val, size_t len, int ttl)
{
	const char	*argv[5];
	size_t		 lens[5];
	char		 ttlbuf[16];

	(void)snprintf(ttlbuf, sizeof(ttlbuf), "%d", ttl);
	argv[0] = "SET";	lens[0] = 3;
	argv[1] = key;		lens[1] = strlen(key);
	argv[2] = val;		lens[2] = len;
	argv[3] = "EX";		lens[3] = 2;
	argv[4] = ttlbuf;	lens[4] = strlen(ttlbuf);
	(void)api_redis_argv(set_done, NULL, 5, argv, lens);
}
