/*
 * api/src/ratelimit.c
 *	Rate limits in Redis: per client IP and per caller (API key or JWT
 *	subject), one atomic Lua script, so the limits hold across all
 *	workers and all API instances sharing the Redis.
 *
 * The algorithm is GCRA (generic cell rate algorithm): each limit is
 * "limit requests per window" with a burst of the whole limit; the
 * state is one number per key, the theoretical arrival time (TAT), kept
 * in Redis with an expiry. The script checks every key first and stores
 * the new TATs only when all allow the request, and it reads Redis's own
 * clock so instances need not agree on time.
 *
 * A route that reads the cache next (/prices/latest) has the script also
 * GET its cache key when the request is allowed (ctx->args.cache_key): one
 * Redis round trip for the gate and the cache.
 *
 * The client IP limited is client_ip.c's.
 */

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "api.h"

/*
 * KEYS: the limited keys, then (optional) the cache key to read.
 * ARGV: period (ms), the number of limited keys n, their n limits, the n
 * numbers of tokens wanted (a lease, 1 without leasing). Each key grants
 * what it has up to what is wanted; the request passes when every key
 * grants at least one token, and only then are the grants stored.
 * Returns allowed, and for the key with the fewest tokens left its limit,
 * remaining, retry (ms) and reset (ms), the cached value (or false), then
 * for each key its grant, remaining and reset.
 */
static const char ratelimit_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local period = tonumber(ARGV[1])\n"
	"local nlim = tonumber(ARGV[2])\n"
	"local allowed, olimit, oremaining, oretry, oreset = 1, 0, -1, 0, 0\n"
	"local tats, per = {}, {}\n"
	"for i = 1, nlim do\n"
	"  local key = KEYS[i]\n"
	"  local limit = tonumber(ARGV[i + 2])\n"
	"  local want = tonumber(ARGV[i + 2 + nlim])\n"
	"  local interval = period / limit\n"
	"  local tat = tonumber(redis.call('GET', key)) or now\n"
	"  if tat < now then tat = now end\n"
	"  local free = math.floor((now + period - tat) / interval)\n"
	"  local grant = math.min(want, free)\n"
	"  local remaining, retry = 0, 0\n"
	"  if grant < 1 then\n"
	"    grant = 0\n"
	"    allowed = 0\n"
	"    retry = tat + interval - period - now\n"
	"  else\n"
	"    remaining = free - grant\n"
	"  end\n"
	"  tats[i] = tat + grant * interval\n"
	"  local reset = math.ceil(tat + math.max(grant, 1) * interval - now)\n"
	"  per[#per + 1] = grant\n"
	"  per[#per + 1] = remaining\n"
	"  per[#per + 1] = reset\n"
	"  if oremaining < 0 or remaining < oremaining then\n"
	"    olimit, oremaining, oreset = limit, remaining, reset\n"
	"  end\n"
	"  if retry > oretry then oretry = retry end\n"
	"end\n"
	"local cached = false\n"
	"if allowed == 1 then\n"
	"  for i = 1, nlim do\n"
	"    redis.call('SET', KEYS[i], tats[i], 'PX', math.ceil(tats[i] - now))\n"
	"  end\n"
	"  if #KEYS > nlim then cached = redis.call('GET', KEYS[nlim + 1]) end\n"
	"end\n"
	"local r = {allowed, olimit, oremaining, math.ceil(oretry), oreset, cached}\n"
	"for i = 1, #per do r[#r + 1] = per[i] end\n"
	"return r\n";

static char	script_sha[SHA_DIGEST_LENGTH * 2 + 1];

/*
 * Token leases: a worker asks the script for up to min(MD_API_RATE_LEASE,
 * limit / LEASE_PER_LIMIT) tokens of a key at once and spends them without
 * Redis. The tokens are taken from Redis when leased, so all workers and
 * instances together never pass more than the limit; a lease not spent
 * within LEASE_MS (or the window, if shorter) is dropped, which only ever
 * refuses more. Limits under LEASE_PER_LIMIT lease one token: exact.
 * When a lease is down to half, the worker asks for the next one in the
 * background, so a busy key's requests need not wait for Redis at all.
 */
#define LEASE_SLOTS		1024
#define LEASE_MS		1000
#define LEASE_PER_LIMIT		1000

struct rl_lease {
	char		key[128];
	int		limit;
	long long	tokens;		/* left in this worker */
	long long	remaining;	/* Redis's count after the last lease */
	u_int64_t	reset_at;	/* ms: the key's full burst is back */
	u_int64_t	expires;	/* ms */
	int		refilling;	/* a refill is on its way */
};

/* A refill asked for in the background, for the lease of key. */
struct rl_refill {
	char		key[128];
	int		limit;
};

static struct rl_lease	leases[LEASE_SLOTS];

static int		send_script(struct api_ctx *, int);
static long long	lease_size(int);
static void		lease_refill(struct rl_lease *);

void
api_ratelimit_init(void)
{
	u_int8_t	d[SHA_DIGEST_LENGTH];
	int		i;

	/* Redis names a script by the SHA-1 of its text */
	SHA1((const unsigned char *)ratelimit_lua, strlen(ratelimit_lua), d);
	for (i = 0; i < SHA_DIGEST_LENGTH; i++)
		(void)snprintf(script_sha + i * 2, 3, "%02x", d[i]);
}

/* Lease table --------------------------------------------------------- */

static struct rl_lease *
lease_slot(const char *key)
{
	return (&leases[api_slot(key, strlen(key), LEASE_SLOTS)]);
}

/* Whether key's slot holds another key's live lease (a collision). */
static int
slot_taken(struct rl_lease *l, const char *key, u_int64_t now)
{
	return (strcmp(l->key, key) && l->expires > now && l->tokens > 0);
}

/* The live lease of key i of ctx, or NULL. */
static struct rl_lease *
lease_live(struct api_ctx *ctx, int i, u_int64_t now)
{
	struct rl_lease	*l = ctx->rl.slots[i];

	if (strcmp(l->key, ctx->rl.keys[i]) || l->limit != ctx->rl.limits[i] ||
	    l->expires <= now || l->tokens < 1)
		return (NULL);
	return (l);
}

/*
 * The RateLimit-* numbers as the caller sees them: of the key with the
 * fewest tokens left, Redis's count plus the tokens this worker holds.
 */
static void
lease_report(struct api_ctx *ctx, long long *remaining, long long *reset,
    u_int64_t now)
{
	struct rl_lease	*l;
	long long	 left, best = -1;
	int		 i;

	for (i = 0; i < ctx->rl.nkeys; i++) {
		l = ctx->rl.slots[i];
		if (strcmp(l->key, ctx->rl.keys[i]))
			continue;
		left = remaining[i] + (l->expires > now ? l->tokens : 0);
		if (best < 0 || left < best) {
			best = left;
			ctx->rl.limit = ctx->rl.limits[i];
			ctx->rl.remaining = left;
			ctx->rl.reset_ms = reset[i];
		}
	}
}

/* A token from each key's lease, without Redis; 0: some key has none. */
static int
lease_take(struct api_ctx *ctx)
{
	struct rl_lease	*l[2];
	long long	 remaining[2], reset[2];
	u_int64_t	 now = kore_time_ms();
	int		 i;

	for (i = 0; i < ctx->rl.nkeys; i++) {
		if ((l[i] = lease_live(ctx, i, now)) == NULL)
			return (0);
	}
	for (i = 0; i < ctx->rl.nkeys; i++) {
		l[i]->tokens--;
		if (!l[i]->refilling &&
		    l[i]->tokens * 2 < lease_size(l[i]->limit))
			lease_refill(l[i]);
		remaining[i] = l[i]->remaining;
		reset[i] = l[i]->reset_at > now ? l[i]->reset_at - now : 0;
	}
	ctx->rl.allowed = 1;
	ctx->rl.retry_ms = 0;
	lease_report(ctx, remaining, reset, now);
	api_metrics_count(MC_RL_LEASED);
	return (1);
}

/* The script granted key i `grant` tokens: one is this request's. */
static void
lease_store(struct api_ctx *ctx, int i, long long grant, long long remaining,
    long long reset, u_int64_t now)
{
	struct rl_lease	*l = ctx->rl.slots[i];
	u_int64_t	 life;

	if (slot_taken(l, ctx->rl.keys[i], now))
		return;		/* another key's lease: leave it be */
	if (strcmp(l->key, ctx->rl.keys[i]) || l->limit != ctx->rl.limits[i] ||
	    l->expires <= now) {
		(void)kore_strlcpy(l->key, ctx->rl.keys[i], sizeof(l->key));
		l->limit = ctx->rl.limits[i];
		l->tokens = 0;
		l->expires = now;
		l->refilling = 0;
	}
	if (grant > 1) {
		/* a lease lives one second at most, never past the window */
		life = (u_int64_t)api_cfg.rl_window * 1000;
		if (life > LEASE_MS)
			life = LEASE_MS;
		l->tokens += grant - 1;
		l->expires = now + life;
	}
	l->remaining = remaining;
	l->reset_at = now + reset;
}

/* Tokens per lease for a limit. */
static long long
lease_size(int limit)
{
	long long	n = limit / LEASE_PER_LIMIT;

	if (n > api_cfg.rl_lease)
		n = api_cfg.rl_lease;
	return (n < 1 ? 1 : n);
}

/*
 * How many tokens to ask for: 1 while key i still has a lease, and 1 when
 * its slot holds another key's live lease (that key keeps its tokens and
 * this one is counted request by request: colliding keys never make each
 * other lose tokens).
 */
static long long
lease_want(struct api_ctx *ctx, int i)
{
	u_int64_t	now = kore_time_ms();

	if (lease_live(ctx, i, now) != NULL ||
	    slot_taken(ctx->rl.slots[i], ctx->rl.keys[i], now))
		return (1);
	return (lease_size(ctx->rl.limits[i]));
}

static void
refill_done(void *r, void *arg)
{
	redisReply	*reply = r;
	struct rl_refill *f = arg;
	struct rl_lease	*l = lease_slot(f->key);
	u_int64_t	 now = kore_time_ms(), life;
	size_t		 i;

	if (strcmp(l->key, f->key) || l->limit != f->limit) {
		kore_free(f);
		return;		/* the slot went to another key meanwhile */
	}
	l->refilling = 0;
	kore_free(f);
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 9)
		return;
	for (i = 0; i < 9; i++) {
		if (i != 5 && reply->element[i]->type != REDIS_REPLY_INTEGER)
			return;
	}
	if (reply->element[0]->integer != 1)
		return;		/* nothing left: requests will ask themselves */
	if (l->expires <= now)
		l->tokens = 0;
	life = (u_int64_t)api_cfg.rl_window * 1000;
	if (life > LEASE_MS)
		life = LEASE_MS;
	l->tokens += reply->element[6]->integer;
	l->remaining = reply->element[7]->integer;
	l->reset_at = now + reply->element[8]->integer;
	l->expires = now + life;
}

/* Asks the script for the next lease of l, not waited for. */
static void
lease_refill(struct rl_lease *l)
{
	struct rl_refill *f;
	const char	*argv[8];
	size_t		 lens[8];
	char		 period[16], lim[24], want[24];
	int		 i;

	f = kore_malloc(sizeof(*f));
	(void)kore_strlcpy(f->key, l->key, sizeof(f->key));
	f->limit = l->limit;
	(void)snprintf(period, sizeof(period), "%d", api_cfg.rl_window * 1000);
	(void)snprintf(lim, sizeof(lim), "%d", l->limit);
	(void)snprintf(want, sizeof(want), "%lld", lease_size(l->limit));
	argv[0] = "EVALSHA";
	argv[1] = script_sha;
	argv[2] = "1";
	argv[3] = f->key;
	argv[4] = period;
	argv[5] = "1";
	argv[6] = lim;
	argv[7] = want;
	for (i = 0; i < 8; i++)
		lens[i] = strlen(argv[i]);
	/* NOSCRIPT or Redis down: the next request's own call sees to it */
	if (api_redis_argv(refill_done, f, 8, argv, lens) == KORE_RESULT_OK)
		l->refilling = 1;
	else
		kore_free(f);
}

/* The script ------------------------------------------------------------ */

static void
script_done(void *r, void *arg)
{
	redisReply	*reply = r;
	struct api_ctx	*ctx = arg;
	redisReply	*v;
	long long	 per[6], remaining[2], reset[2];
	/* the script's first five answers, in its order */
	long long	*answer[5] = { &ctx->rl.allowed, &ctx->rl.limit,
			    &ctx->rl.remaining, &ctx->rl.retry_ms,
			    &ctx->rl.reset_ms };
	u_int64_t	 now;
	size_t		 i, n;

	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    !strncmp(reply->str, "NOSCRIPT", 8) && ctx->rl.done == 0) {
		/* Redis restarted or was flushed: send the text once */
		ctx->rl.done = 1;
		if (send_script(ctx, 1) == KORE_RESULT_OK)
			return;
	}

	ctx->rl.error = 1;
	n = 6 + 3 * (size_t)ctx->rl.nkeys;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == n) {
		ctx->rl.error = 0;
		for (i = 0; i < n; i++) {
			if (i == 5)
				continue;
			if (reply->element[i]->type != REDIS_REPLY_INTEGER)
				ctx->rl.error = 1;
			else if (i < 5)
				*answer[i] = reply->element[i]->integer;
			else
				per[i - 6] = reply->element[i]->integer;
		}
		if (!ctx->rl.error && ctx->rl.allowed) {
			now = kore_time_ms();
			for (i = 0; i < (size_t)ctx->rl.nkeys; i++) {
				lease_store(ctx, (int)i, per[i * 3],
				    per[i * 3 + 1], per[i * 3 + 2], now);
				remaining[i] = per[i * 3 + 1];
				reset[i] = per[i * 3 + 2];
			}
			lease_report(ctx, remaining, reset, now);
		}
		v = reply->element[5];
		if (!ctx->rl.error && ctx->args.cache_key[0] != '\0' &&
		    ctx->rl.peek) {
			ctx->redis.ok = 1;
			ctx->args.cache_peeked = 1;
			if (v->type == REDIS_REPLY_STRING) {
				ctx->redis.value = kore_malloc(v->len + 1);
				memcpy(ctx->redis.value, v->str, v->len);
				ctx->redis.value[v->len] = '\0';
				ctx->redis.len = v->len;
			}
		}
	} else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		kore_log(LOG_NOTICE, "rate limit script: %s", reply->str);
	}
	api_ctx_done(ctx);
}

static int
send_script(struct api_ctx *ctx, int full)
{
	const char	*argv[12];
	size_t		 lens[12];
	char		 period[16], lim[2][24], want[2][24];
	char		 nkeys_s[4], nlim_s[4];
	int		 argc, i, nkeys;

	(void)snprintf(period, sizeof(period), "%d", api_cfg.rl_window * 1000);
	nkeys = ctx->rl.nkeys + ctx->rl.peek;
	(void)snprintf(nkeys_s, sizeof(nkeys_s), "%d", nkeys);
	(void)snprintf(nlim_s, sizeof(nlim_s), "%d", ctx->rl.nkeys);

	argc = 0;
	argv[argc++] = full ? "EVAL" : "EVALSHA";
	argv[argc++] = full ? ratelimit_lua : script_sha;
	argv[argc++] = nkeys_s;
	for (i = 0; i < ctx->rl.nkeys; i++)
		argv[argc++] = ctx->rl.keys[i];
	if (ctx->rl.peek)
		argv[argc++] = ctx->args.cache_key;
	argv[argc++] = period;
	argv[argc++] = nlim_s;
	for (i = 0; i < ctx->rl.nkeys; i++) {
		(void)snprintf(lim[i], sizeof(lim[i]), "%d",
		    ctx->rl.limits[i]);
		argv[argc++] = lim[i];
	}
	for (i = 0; i < ctx->rl.nkeys; i++) {
		(void)snprintf(want[i], sizeof(want[i]), "%lld",
		    lease_want(ctx, i));
		argv[argc++] = want[i];
	}

	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return (api_redis_argv(script_done, ctx, argc, argv, lens));
}

/* The limited keys of ctx (of which: RL_IP, RL_CALLER); how many. */
static int
limit_keys(struct api_ctx *ctx, int which)
{
	char	ip[INET6_ADDRSTRLEN + 8];
	int	lim = (which & RL_CALLER) ? api_cfg.rl_role[ctx->gate.role] : 0;

	ctx->rl.nkeys = 0;
	if (api_cfg.rl_ip > 0 && (which & RL_IP)) {
		(void)api_client_bucket(ctx->req, ip, sizeof(ip));
		(void)snprintf(ctx->rl.keys[ctx->rl.nkeys],
		    sizeof(ctx->rl.keys[0]), "md:rl:ip:%s", ip);
		ctx->rl.limits[ctx->rl.nkeys++] = api_cfg.rl_ip;
	}
	if (lim > 0 && ctx->gate.ident[0] != '\0') {
		(void)snprintf(ctx->rl.keys[ctx->rl.nkeys],
		    sizeof(ctx->rl.keys[0]), "md:rl:id:%s", ctx->gate.ident);
		ctx->rl.limits[ctx->rl.nkeys++] = lim;
	}
	if (ctx->rl.nkeys > 0)
		ctx->rl.slots[0] = lease_slot(ctx->rl.keys[0]);
	if (ctx->rl.nkeys > 1)
		ctx->rl.slots[1] = lease_slot(ctx->rl.keys[1]);
	return (ctx->rl.nkeys);
}

/*
 * CONTINUE when there is nothing to ask Redis (no limit, or every key's
 * lease had a token); RETRY while the script runs.
 */
int
api_ratelimit_start(struct api_ctx *ctx, int which)
{
	char	*body;
	size_t	 len;

	ctx->rl.error = 0;
	ctx->rl.done = 0;
	ctx->rl.allowed = 1;
	if (which & RL_IP)
		ctx->rl.ip_done = 1;
	if (limit_keys(ctx, which) == 0) {
		ctx->rl.limit = 0;
		return (HTTP_STATE_CONTINUE);
	}
	if (lease_take(ctx))
		return (HTTP_STATE_CONTINUE);
	/* the caller's call reads the cache too, unless the worker has it */
	ctx->rl.peek = (which & RL_CALLER) && ctx->args.cache_key[0] != '\0' &&
	    api_cfg.cache_ttl > 0 &&
	    !api_lcache_get(ctx->args.symbol, ctx->args.provider, &body, &len);
	api_ctx_wait(ctx);
	if (send_script(ctx, 0) != KORE_RESULT_OK) {
		ctx->rl.error = 1;
		api_ctx_done(ctx);
		return (HTTP_STATE_CONTINUE);
	}
	return (HTTP_STATE_RETRY);
}

void
api_ratelimit_headers(struct api_ctx *ctx)
{
	char	buf[32];

	if (ctx->rl.error || ctx->rl.limit == 0 || ctx->rl.headers)
		return;
	ctx->rl.headers = 1;
	(void)snprintf(buf, sizeof(buf), "%lld", ctx->rl.limit);
	http_response_header(ctx->req, "ratelimit-limit", buf);
	(void)snprintf(buf, sizeof(buf), "%lld", ctx->rl.remaining);
	http_response_header(ctx->req, "ratelimit-remaining", buf);
	(void)snprintf(buf, sizeof(buf), "%lld", (ctx->rl.reset_ms + 999) / 1000);
	http_response_header(ctx->req, "ratelimit-reset", buf);
	if (!ctx->rl.allowed) {
		(void)snprintf(buf, sizeof(buf), "%lld",
		    (ctx->rl.retry_ms + 999) / 1000);
		http_response_header(ctx->req, "retry-after", buf);
	}
}
