/*
 * api/src/stream_limit.c
 *	Open streams per caller and per client IP, counted across API
 *	instances in Redis: a sorted set per caller (md:streams:{ident}) and
 *	IP (md:streams:ip:{ip}) whose members, one per stream, expire
 *	unless their instance refreshes them every heartbeat; a crashed
 *	instance's streams so stop counting within three heartbeats. Redis's
 *	TIME is the clock, so instances' clocks need not agree.
 */

#include <stdio.h>
#include <string.h>

#include "stream.h"

static const char lua_limit[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "for i, k in ipairs(KEYS) do\n"
    "  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)\n"
    "  local lim = tonumber(ARGV[2 + i])\n"
    "  if lim > 0 and redis.call('ZCARD', k) >= lim then return i end\n"
    "end\n"
    "for i, k in ipairs(KEYS) do\n"
    "  redis.call('ZADD', k, now + tonumber(ARGV[2]), ARGV[1])\n"
    "  redis.call('PEXPIRE', k, ARGV[2])\n"
    "end\n"
    "return 0\n";

static const char lua_refresh[] =
    "local t = redis.call('TIME')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "for i, k in ipairs(KEYS) do\n"
    "  redis.call('ZADD', k, 'XX', now + tonumber(ARGV[2]), ARGV[1])\n"
    "  redis.call('PEXPIRE', k, ARGV[2])\n"
    "end\n"
    "return 0\n";

static void
limit_keys(struct stream_client *sc, char keys[2][160])
{
	(void)snprintf(keys[0], 160, "md:streams:ip:%s", sc->ip);
	(void)snprintf(keys[1], 160, "md:streams:%s", sc->ident);
}

static void
ignore_reply(void *r, void *arg)
{
	(void)r;
	(void)arg;
}

static int
limit_eval(struct stream_client *sc, const char *script, int with_limits,
    void (*cb)(void *, void *), void *arg)
{
	const char	*argv[9];
	size_t		 lens[9];
	char		 keys[2][160], ttl[16], lip[16], lkey[16];
	int		 argc = 0, i;

	limit_keys(sc, keys);
	(void)snprintf(ttl, sizeof(ttl), "%d", api_cfg.stream_heartbeat *
	    3000);
	(void)snprintf(lip, sizeof(lip), "%d", api_cfg.stream_max_per_ip);
	(void)snprintf(lkey, sizeof(lkey), "%d", api_cfg.stream_max_per_key);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = "2";
	argv[argc++] = keys[0];
	argv[argc++] = keys[1];
	argv[argc++] = sc->member;
	argv[argc++] = ttl;
	if (with_limits) {
		argv[argc++] = lip;
		argv[argc++] = lkey;
	}
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return (api_redis_argv(cb, arg, argc, argv, lens));
}

void
stream_limit_release(struct stream_client *sc)
{
	const char	*argv[3];
	size_t		 lens[3];
	char		 keys[2][160];
	int		 i;

	if (!sc->limited)
		return;
	limit_keys(sc, keys);
	for (i = 0; i < 2; i++) {
		argv[0] = "ZREM";
		argv[1] = keys[i];
		argv[2] = sc->member;
		lens[0] = 4;
		lens[1] = strlen(keys[i]);
		lens[2] = strlen(sc->member);
		(void)api_redis_argv(ignore_reply, NULL, 3, argv, lens);
	}
	sc->limited = 0;
}

/* Admits sc if neither its IP nor its caller is at the limit: cb gets
 * 0 (admitted), 1 (the IP), 2 (the caller) or an error. */
int
stream_limit_check(struct stream_client *sc, void (*cb)(void *, void *),
    void *arg)
{
	return (limit_eval(sc, lua_limit, 1, cb, arg));
}

void
stream_limit_refresh(struct stream_client *sc)
{
	if (sc->limited)
		(void)limit_eval(sc, lua_refresh, 0, ignore_reply, NULL);
}
