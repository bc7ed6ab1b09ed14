/*
 * api/src/redis.c
 *	The API's Redis: its two connections (on Kore's event loop through
 *	redis_kore.c) and the commands.
 *
 * Each worker has two connections. The *command* connection carries every
 * command, pipelined. When it fails, commands answer "Redis down" at once
 * (callers fall back to the database, the rate limiter follows
 * MD_API_RATE_LIMIT_FAIL) and a timer reconnects every second. A command
 * unanswered after MD_API_REDIS_TIMEOUT_MS counts as Redis down too: the
 * connection is dropped, which answers every waiting command with "no
 * reply" (hiredis 0.14 has no timeouts of its own).
 *
 * The *subscriber* connection does PSUBSCRIBE md:prices:* and hands each
 * price the sink publishes (its symbol and event) to the hooks registered
 * by the worker's cache (local_cache.c, used only while this connection is
 * subscribed) and its streams (stream_fanout.c).
 *
 * A failed context is never reused: hiredis frees it and we make a new one.
 */

#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "api.h"

#define REDIS_DOWN		0
#define REDIS_CONNECTING	1
#define REDIS_UP		2

#define PRICES_PATTERN		"md:prices:*"
#define PRICES_PREFIX_LEN	10	/* strlen("md:prices:") */

struct redis_conn {
	struct api_redis_kore	 k;		/* first: the adapter's */
	int			 state;
	int			 subscriber;
};

struct redis_call {
	void			(*cb)(void *, void *);
	void			*arg;
	u_int64_t		 sent;		/* ms */
	TAILQ_ENTRY(redis_call)	 list;
};

static struct redis_conn	rk;		/* commands */
static struct redis_conn	rs;		/* subscriber */

/* the subscriber's hooks (local_cache.c, stream_fanout.c) */
#define PUBLISH_HOOKS		4
static struct {
	void	(*price)(const char *, size_t, const char *, size_t);
	void	(*subscribed)(int);
} hooks[PUBLISH_HOOKS];
static int	nhooks;

static void
subscribed(int up)
{
	int	i;

	for (i = 0; i < nhooks; i++) {
		if (hooks[i].subscribed != NULL)
			hooks[i].subscribed(up);
	}
}

/* commands waiting for their reply, oldest first (Redis answers in order) */
static TAILQ_HEAD(, redis_call)	calls = TAILQ_HEAD_INITIALIZER(calls);

static void	redis_connect(struct redis_conn *);

/* Subscriber ------------------------------------------------------------ */

/* Every reply of PSUBSCRIBE: its confirmation, then one per message. */
static void
on_published(redisAsyncContext *ac, void *r, void *privdata)
{
	redisReply	*reply = r;
	redisReply	*kind, *channel;
	int		 i;

	(void)ac;
	(void)privdata;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements < 3)
		return;
	kind = reply->element[0];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (!strcmp(kind->str, "psubscribe")) {
		rs.state = REDIS_UP;
		subscribed(1);
		return;
	}
	if (strcmp(kind->str, "pmessage") || reply->elements != 4)
		return;
	/* pmessage, pattern, channel md:prices:{symbol}, the JSON */
	channel = reply->element[2];
	if (channel->type != REDIS_REPLY_STRING ||
	    channel->len <= PRICES_PREFIX_LEN ||
	    reply->element[3]->type != REDIS_REPLY_STRING)
		return;
	for (i = 0; i < nhooks; i++) {
		if (hooks[i].price != NULL)
			hooks[i].price(channel->str + PRICES_PREFIX_LEN,
			    channel->len - PRICES_PREFIX_LEN,
			    reply->element[3]->str, reply->element[3]->len);
	}
}

static void
subscribe(void)
{
	if (redisAsyncCommand(rs.k.ac, on_published, NULL,
	    "PSUBSCRIBE " PRICES_PATTERN) != REDIS_OK)
		redisAsyncDisconnect(rs.k.ac);
}

/* Connection ------------------------------------------------------------ */

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_conn	*r = ac->ev.data;

	if (status != REDIS_OK) {
		/* hiredis frees the context after this */
		r->k.ac = NULL;
		r->state = REDIS_DOWN;
		return;
	}
	if (r->subscriber) {
		/* up once the subscription is confirmed */
		subscribe();
		return;
	}
	r->state = REDIS_UP;
	kore_log(LOG_NOTICE, "redis: connected to %s:%d", api_cfg.redis_host,
	    api_cfg.redis_port);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_conn	*r = ac->ev.data;

	if (status != REDIS_OK && r->state == REDIS_UP && !r->subscriber)
		kore_log(LOG_NOTICE, "redis: connection lost");
	r->k.ac = NULL;
	r->state = REDIS_DOWN;
	if (r->subscriber)
		subscribed(0);
}

static void
redis_connect(struct redis_conn *r)
{
	redisAsyncContext	*ac;
	int			 subscriber = r->subscriber;

	ac = redisAsyncConnect(api_cfg.redis_host, api_cfg.redis_port);
	if (ac == NULL)
		return;
	if (ac->err) {
		redisAsyncFree(ac);
		return;
	}

	memset(r, 0, sizeof(*r));
	r->state = REDIS_CONNECTING;
	r->subscriber = subscriber;
	/* ac->ev.data is &r->k, which is r */
	api_redis_kore_attach(&r->k, ac);
	(void)redisAsyncSetConnectCallback(ac, on_connect);
	(void)redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

/* Drops a connection now: its waiting commands are answered "no reply". */
static void
redis_drop(struct redis_conn *r)
{
	redisAsyncContext	*ac = r->k.ac;

	if (ac == NULL)
		return;
	/* down first: the callbacks run by the free must not send more */
	r->state = REDIS_DOWN;
	redisAsyncFree(ac);	/* calls on_disconnect, which clears r->k.ac */
	r->k.ac = NULL;
	if (r->subscriber)
		subscribed(0);
}

static void
redis_timer(void *unused, u_int64_t now)
{
	(void)unused;
	(void)now;
	if (api_draining)
		return;
	if (rk.state == REDIS_DOWN)
		redis_connect(&rk);
	if (rs.state == REDIS_DOWN && rs.k.ac == NULL)
		redis_connect(&rs);
}

/* The oldest command waited too long: Redis counts as down. */
static void
timeout_timer(void *unused, u_int64_t now)
{
	struct redis_call	*call;

	(void)unused;
	(void)now;
	call = TAILQ_FIRST(&calls);
	if (call == NULL || rk.k.ac == NULL ||
	    kore_time_ms() - call->sent < (u_int64_t)api_cfg.redis_timeout_ms)
		return;
	kore_log(LOG_NOTICE, "redis: no reply within %d ms, reconnecting",
	    api_cfg.redis_timeout_ms);
	api_metrics_count(MC_REDIS_TIMEOUT);
	redis_drop(&rk);
	redis_drop(&rs);
}

/* Registers hooks (either may be NULL): price(symbol, len, event, len),
 * subscribed(up), called in the order registered. */
void
api_redis_on_publish(void (*price)(const char *, size_t, const char *,
    size_t), void (*up)(int))
{
	if (nhooks == PUBLISH_HOOKS)
		fatal("api_redis_on_publish: too many hooks");
	hooks[nhooks].price = price;
	hooks[nhooks++].subscribed = up;
}

void
api_redis_init(void)
{
	memset(&rk, 0, sizeof(rk));
	memset(&rs, 0, sizeof(rs));
	rs.subscriber = 1;
	redis_connect(&rk);
	redis_connect(&rs);
	(void)kore_timer_add(redis_timer, 1000, NULL, 0);
	(void)kore_timer_add(timeout_timer, 50, NULL, 0);
}

void
api_redis_close(void)
{
	if (rk.k.ac != NULL)
		redisAsyncDisconnect(rk.k.ac);
	if (rs.k.ac != NULL)
		redisAsyncDisconnect(rs.k.ac);
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
	TAILQ_REMOVE(&calls, call, list);
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

	if (rk.state != REDIS_UP || rk.k.ac == NULL) {
		api_metrics_count(MC_REDIS_ERROR);
		return (KORE_RESULT_ERROR);
	}
	call = kore_malloc(sizeof(*call));
	call->cb = cb;
	call->arg = arg;
	call->sent = kore_time_ms();
	TAILQ_INSERT_TAIL(&calls, call, list);
	if (redisAsyncCommandArgv(rk.k.ac, call_trampoline, call, argc, argv,
	    lens) != REDIS_OK) {
		TAILQ_REMOVE(&calls, call, list);
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

	kore_free(ctx->redis.value);
	ctx->redis.value = NULL;
	ctx->redis.len = 0;
	ctx->redis.ok = (reply != NULL && reply->type != REDIS_REPLY_ERROR);
	if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
		ctx->redis.value = kore_malloc(reply->len + 1);
		memcpy(ctx->redis.value, reply->str, reply->len);
		ctx->redis.value[reply->len] = '\0';
		ctx->redis.len = reply->len;
	}
	ctx->redis.us = api_now_us() - ctx->redis.us;
	api_ctx_done(ctx);
}

/* GET key; cb(reply or NULL, arg) follows. Error: nothing sent. */
int
api_redis_get_cb(const char *key, void (*cb)(void *, void *), void *arg)
{
	const char	*argv[2] = { "GET", key };
	size_t		 lens[2] = { 3, strlen(key) };

	return (api_redis_argv(cb, arg, 2, argv, lens));
}

/* GET key into ctx->redis.value; KORE_RESULT_ERROR: Redis is down. */
int
api_redis_get(struct api_ctx *ctx, const char *key)
{
	ctx->redis.ok = 0;
	api_ctx_wait(ctx);
	ctx->redis.us = api_now_us();
	if (!api_redis_get_cb(key, get_done, ctx)) {
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

	ctx->redis.ok = 0;
	api_ctx_wait(ctx);
	ctx->redis.us = api_now_us();
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
