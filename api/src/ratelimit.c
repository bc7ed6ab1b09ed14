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
 * GET its cache key when the request is allowed (ctx->cache_key): one
 * Redis round trip for the gate and the cache.
 *
 * The client IP is the peer address; X-Forwarded-For is believed only
 * when the peer is one of MD_API_TRUSTED_PROXIES, and then its right-most
 * address that is not itself a trusted proxy is the client.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "api.h"

static const char ratelimit_lua[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"local period = tonumber(ARGV[1])\n"
	"local nlim = tonumber(ARGV[2])\n"
	"local allowed, olimit, oremaining, oretry, oreset = 1, 0, -1, 0, 0\n"
	"local tats = {}\n"
	"for i = 1, nlim do\n"
	"  local key = KEYS[i]\n"
	"  local limit = tonumber(ARGV[i + 2])\n"
	"  local interval = period / limit\n"
	"  local tat = tonumber(redis.call('GET', key)) or now\n"
	"  if tat < now then tat = now end\n"
	"  local new_tat = tat + interval\n"
	"  local allow_at = new_tat - period\n"
	"  local remaining, retry = 0, 0\n"
	"  if allow_at > now then\n"
	"    allowed = 0\n"
	"    retry = allow_at - now\n"
	"  else\n"
	"    remaining = math.floor((now - allow_at) / interval)\n"
	"  end\n"
	"  tats[i] = new_tat\n"
	"  if oremaining < 0 or remaining < oremaining then\n"
	"    olimit, oremaining = limit, remaining\n"
	"    oreset = math.ceil(new_tat - now)\n"
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
	"return {allowed, olimit, oremaining, math.ceil(oretry), oreset, cached}\n";

static char	script_sha[SHA_DIGEST_LENGTH * 2 + 1];

static int	send_script(struct api_ctx *, int);

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

static int
addr_of(struct http_request *req, char *buf, size_t len)
{
	struct connection	*c = req->owner;

	if (c->family == AF_INET)
		return (inet_ntop(AF_INET, &c->addr.ipv4.sin_addr, buf,
		    len) != NULL);
	if (c->family == AF_INET6)
		return (inet_ntop(AF_INET6, &c->addr.ipv6.sin6_addr, buf,
		    len) != NULL);
	(void)kore_strlcpy(buf, "local", len);
	return (1);
}

static int
is_trusted(const char *ip)
{
	const char	*p = api_cfg.trusted_proxies;
	size_t		 n = strlen(ip);

	while (p != NULL && *p != '\0') {
		while (*p == ',' || *p == ' ')
			p++;
		if (!strncmp(p, ip, n) && (p[n] == ',' || p[n] == ' ' ||
		    p[n] == '\0'))
			return (1);
		p = strchr(p, ',');
	}
	return (0);
}

static int
ip_valid(const char *s)
{
	struct in6_addr	a6;
	struct in_addr	a4;

	return (inet_pton(AF_INET, s, &a4) == 1 ||
	    inet_pton(AF_INET6, s, &a6) == 1);
}

/*
 * All X-Forwarded-For lines, in order, as one list: a proxy may append a
 * line of its own rather than extend the client's.
 */
static int
xff_list(struct http_request *req, char *list, size_t len)
{
	struct http_header	*hdr;
	size_t			 used = 0;
	int			 found = 0, n;

	list[0] = '\0';
	TAILQ_FOREACH(hdr, &req->req_headers, list) {
		if (strcasecmp(hdr->header, "x-forwarded-for"))
			continue;
		n = snprintf(list + used, len - used, "%s%s", found ? "," : "",
		    hdr->value);
		if (n < 0 || (size_t)n >= len - used)
			return (0);	/* too long to believe */
		used += n;
		found = 1;
	}
	return (found);
}

const char *
api_client_ip(struct http_request *req, char *buf, size_t len)
{
	char		 list[1024], *end, *start;
	size_t		 n;

	if (!addr_of(req, buf, len))
		(void)kore_strlcpy(buf, "unknown", len);
	if (!is_trusted(buf) || !xff_list(req, list, sizeof(list)))
		return (buf);

	/* right to left: the first address not one of our proxies */
	for (;;) {
		end = list + strlen(list);
		while (end > list && (end[-1] == ' ' || end[-1] == ','))
			*--end = '\0';
		if (end == list)
			break;
		start = strrchr(list, ',');
		start = start ? start + 1 : list;
		while (*start == ' ')
			start++;
		if (!ip_valid(start))
			break;
		if (!is_trusted(start)) {
			n = strlen(start);
			if (n < len)
				memcpy(buf, start, n + 1);
			break;
		}
		*start = '\0';
	}
	return (buf);
}

int
api_is_local(struct http_request *req)
{
	char	ip[INET6_ADDRSTRLEN + 8];

	(void)api_client_ip(req, ip, sizeof(ip));
	return (!strncmp(ip, "127.", 4) || !strcmp(ip, "::1") ||
	    !strcmp(ip, "local"));
}

static void
script_done(void *r, void *arg)
{
	redisReply	*reply = r;
	struct api_ctx	*ctx = arg;
	redisReply	*v;
	size_t		 i;

	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    !strncmp(reply->str, "NOSCRIPT", 8) && ctx->rl_done == 0) {
		/* Redis restarted or was flushed: send the text once */
		ctx->rl_done = 1;
		if (send_script(ctx, 1) == KORE_RESULT_OK)
			return;
	}

	ctx->rl_error = 1;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 6) {
		ctx->rl_error = 0;
		for (i = 0; i < 5; i++) {
			if (reply->element[i]->type != REDIS_REPLY_INTEGER)
				ctx->rl_error = 1;
			else
				ctx->rl[i] = reply->element[i]->integer;
		}
		v = reply->element[5];
		if (!ctx->rl_error && ctx->cache_key[0] != '\0') {
			ctx->redis_ok = 1;
			ctx->cache_peeked = 1;
			if (v->type == REDIS_REPLY_STRING) {
				ctx->redis_value = kore_malloc(v->len + 1);
				memcpy(ctx->redis_value, v->str, v->len);
				ctx->redis_value[v->len] = '\0';
				ctx->redis_len = v->len;
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
	const char	*argv[10];
	size_t		 lens[10];
	char		 ipkey[96], idkey[128], period[16], l1[16], l2[16];
	char		 ip[INET6_ADDRSTRLEN + 8], nkeys_s[4], nlim_s[4];
	int		 argc, nlim, nkeys, lim, use_ip, use_id, peek;

	(void)api_client_ip(ctx->req, ip, sizeof(ip));
	(void)snprintf(ipkey, sizeof(ipkey), "md:rl:ip:%s", ip);
	(void)snprintf(idkey, sizeof(idkey), "md:rl:id:%s", ctx->ident);
	(void)snprintf(period, sizeof(period), "%d", api_cfg.rl_window * 1000);
	(void)snprintf(l1, sizeof(l1), "%d", api_cfg.rl_ip);
	lim = api_cfg.rl_role[ctx->role];
	(void)snprintf(l2, sizeof(l2), "%d", lim);

	use_ip = api_cfg.rl_ip > 0;
	use_id = lim > 0 && ctx->ident[0] != '\0';
	peek = ctx->cache_key[0] != '\0' && api_cfg.cache_ttl > 0;
	nlim = use_ip + use_id;
	nkeys = nlim + peek;
	if (nkeys == 0)
		return (KORE_RESULT_ERROR);
	(void)snprintf(nkeys_s, sizeof(nkeys_s), "%d", nkeys);
	(void)snprintf(nlim_s, sizeof(nlim_s), "%d", nlim);

	argc = 0;
	argv[argc++] = full ? "EVAL" : "EVALSHA";
	argv[argc++] = full ? ratelimit_lua : script_sha;
	argv[argc++] = nkeys_s;
	if (use_ip)
		argv[argc++] = ipkey;
	if (use_id)
		argv[argc++] = idkey;
	if (peek)
		argv[argc++] = ctx->cache_key;
	argv[argc++] = period;
	argv[argc++] = nlim_s;
	if (use_ip)
		argv[argc++] = l1;
	if (use_id)
		argv[argc++] = l2;

	for (nkeys = 0; nkeys < argc; nkeys++)
		lens[nkeys] = strlen(argv[nkeys]);
	return (api_redis_argv(script_done, ctx, argc, argv, lens));
}

/* RETRY while the script runs; CONTINUE when there is nothing to ask. */
int
api_ratelimit_start(struct api_ctx *ctx)
{
	ctx->rl_error = 0;
	ctx->rl[0] = 1;
	if (api_cfg.rl_ip == 0 && api_cfg.rl_role[ctx->role] == 0) {
		ctx->rl[1] = 0;
		return (HTTP_STATE_CONTINUE);
	}
	api_ctx_wait(ctx);
	if (send_script(ctx, 0) != KORE_RESULT_OK) {
		ctx->rl_error = 1;
		api_ctx_done(ctx);
		return (HTTP_STATE_CONTINUE);
	}
	return (HTTP_STATE_RETRY);
}

void
api_ratelimit_headers(struct api_ctx *ctx)
{
	char	buf[32];

	if (ctx->rl_error || ctx->rl[1] == 0)
		return;
	(void)snprintf(buf, sizeof(buf), "%lld", ctx->rl[1]);
	http_response_header(ctx->req, "ratelimit-limit", buf);
	(void)snprintf(buf, sizeof(buf), "%lld", ctx->rl[2]);
	http_response_header(ctx->req, "ratelimit-remaining", buf);
	(void)snprintf(buf, sizeof(buf), "%lld", (ctx->rl[4] + 999) / 1000);
	http_response_header(ctx->req, "ratelimit-reset", buf);
	if (!ctx->rl[0]) {
		(void)snprintf(buf, sizeof(buf), "%lld",
		    (ctx->rl[3] + 999) / 1000);
		http_response_header(ctx->req, "retry-after", buf);
	}
}
