/*
 * api/src/api.h
 *	Shared declarations of the marketdata REST API (a Kore module).
 *
 * Words: a *ctx* is our per-request state (struct api_ctx, one struct per
 * concern, with hooks run when the request is done); a *gate* is
 * what every protected route passes first (authentication, role check,
 * rate limit); a *flight* is one database call shared by all concurrent
 * cache misses of one key (single flight).
 */

#ifndef MD_API_H
#define MD_API_H

#include <sys/types.h>
#include <sys/queue.h>

#include <kore/kore.h>
#include <kore/http.h>
#include <kore/pgsql.h>

#define API_DB_PRIMARY		"primary"
#define API_DB_READ		"read"

#define ROLE_NONE		0
#define ROLE_READER		1
#define ROLE_WRITER		2
#define ROLE_ADMIN		3

/* Routes, for metrics labels. */
enum api_route {
	ROUTE_LATEST = 0,
	ROUTE_POLL,
	ROUTE_POLL_JOB,
	ROUTE_HISTORY,
	ROUTE_AVERAGE,
	ROUTE_BARS,
	ROUTE_HEALTH,
	ROUTE_READY,
	ROUTE_METRICS,
	ROUTE_OPENAPI,
	ROUTE_STREAM,
	ROUTE_STREAM_TOKEN,
	ROUTE_DASHBOARD,
	ROUTE_OTHER,
	ROUTE_COUNT
};

/* Settings, read from the environment once (docs/configuration.md). */
struct api_settings {
	char		*db_url;
	char		*db_read_url;
	char		*redis_host;
	int		 redis_port;
	int		 cache_ttl;		/* s; 0: no caching */
	int		 bars_cache_ttl;	/* s, closed bars; 0: no caching */
	int		 negative_ttl;		/* s; 0: no caching of 404/503 */
	int		 max_age;		/* s; md_price's max_age */
	int		 key_cache_ttl;		/* s */
	int		 ready_cache_ms;	/* /health/ready kept; 0: not */
	char		*jwt_secret;
	size_t		 jwt_secret_len;
	char		*jwt_role_claim;
	char		*jwt_issuer;		/* NULL: any iss */
	char		*jwt_audience;		/* NULL: any aud */
	long		 jwt_max_lifetime;	/* s from now to exp */
	int		 rl_window;		/* s */
	int		 rl_ipv6_prefix;	/* bits of an IPv6 client counted */
	char		 rl_ipv6_suffix[8];	/* "/64" */
	int		 rl_ip;			/* requests per window per IP */
	int		 rl_role[4];		/* per key, by role */
	int		 rl_fail_open;
	int		 rl_lease;		/* most tokens per lease */
	int		 local_cache_ms;	/* worker cache max age; 0: off */
	int		 redis_timeout_ms;
	char		*trusted_proxies;	/* comma separated addresses */
	int		 metrics_local;
	size_t		 body_max;
	int		 shutdown_timeout;	/* s */
	int		 db_conn_max;
	int		 stream_max_symbols;	/* per stream */
	int		 stream_heartbeat;	/* s */
	int		 stream_idle_timeout;	/* s, WebSocket without pong */
	int		 stream_buffer;		/* bytes queued before conflation */
	int		 stream_slow_ms;	/* full this long: closed */
	int		 stream_replay_window;	/* s */
	int		 stream_max_per_key;	/* open streams; 0: no limit */
	int		 stream_max_per_ip;
	int		 stream_token_ttl;	/* s */
	int		 db_prepare;	/* named prepared statements */
};

extern struct api_settings	api_cfg;

/* settings.c */
void		 api_settings_load(void);

/* The result of one database query: one value (row 0, column 0). */
struct api_dbres {
	int		 ok;
	int		 isnull;
	char		*value;
	char		*value2;	/* column 1, when the query has one */
	char		 sqlstate[6];
	char		*message;
	char		*detail;
};

/* The gate's state: who the caller is, what the route needs. */
struct api_gate_state {
	int			 step;		/* API_GATE_PASSED: through */
	int			 auth;		/* what the credentials told */
	const char		*auth_error;	/* why they are refused */
	int			 need_role;
	int			 role;
	char			 ident[80];	/* rate limit identity */
	char			*api_key;
};

/* The rate limit's answer and the keys it limited. */
struct api_rl_state {
	long long		 allowed;
	long long		 limit;		/* of the key with the fewest left */
	long long		 remaining;
	long long		 retry_ms;
	long long		 reset_ms;
	int			 done;		/* the script was sent in full */
	int			 ip_done;	/* the IP's limit was applied */
	int			 error;
	int			 headers;	/* RateLimit-* added */
	int			 nkeys;		/* limited keys: IP, caller */
	int			 peek;		/* the script reads args.cache_key */
	char			 keys[2][128];
	struct rl_lease		*slots[2];	/* their leases' slots */
	int			 limits[2];
};

/* The last Redis answer. */
struct api_redis_answer {
	int			 ok;
	char			*value;
	size_t			 len;
	u_int64_t		 us;
};

/* The one query of a route (route.c), and its answers. */
struct api_query {
	int			 role;		/* the gate's */
	const char		*db;		/* API_DB_PRIMARY or API_DB_READ */
	const char		*sql;
	int			 nparams;	/* of args.arg */
	int			 status;	/* of an answer */
	const char		*not_found;	/* error code of a NULL answer */
	const char		*not_found_text;
	int			 not_found_names_symbol;	/* + args.symbol */
};

/* the most parameters of a query */
#define API_NARGS	8

/* What the route was asked for, and what it learnt of its cache. */
struct api_route_args {
	const struct api_query	*query;
	char			 symbol[40];
	char			 provider[72];
	char			 cache_key[128];
	char			*arg[API_NARGS];	/* the query's parameters, in order */
	int			 cache_hit;
	int			 cache_peeked;	/* the gate's script read the cache */
	u_int64_t		 cache_gen;	/* local cache generation seen */
};

/* This request's share of a flight (prices.c). */
struct api_flight_share {
	struct api_flight	*flight;
	TAILQ_ENTRY(api_ctx)	 list;
	int			 listed;
};

#define API_CTX_HOOKS	4

/* Our per-request state, one struct per concern. */
struct api_ctx {
	struct http_request	*req;		/* NULL once Kore freed it */
	int			 route;
	int			 pending;	/* async operations holding us */
	u_int64_t		 start_us;
	/* run once when the request is gone (answered, or the client left) */
	void			(*on_done[API_CTX_HOOKS])(struct api_ctx *);

	struct api_gate_state	 gate;
	struct api_rl_state	 rl;
	struct api_redis_answer	 redis;
	struct api_dbres	 db;		/* the last database answer */
	u_int64_t		 db_us;
	struct api_dbres	 read_db;	/* /health/ready: the replica's */
	u_int64_t		 read_db_us;
	struct api_route_args	 args;
	struct api_flight_share	 share;
	void			*stream;	/* a stream being opened (stream.c) */
};

/* ctx.c */
struct api_ctx	*api_ctx_get(struct http_request *, int);
void		 api_ctx_wait(struct api_ctx *);
void		 api_ctx_done(struct api_ctx *);
void		 api_ctx_on_done(struct api_ctx *, void (*)(struct api_ctx *));
int		 api_ctx_run(struct http_request *, int, struct http_state *,
		    u_int8_t);
/* a handler: its ctx, then its state table (Kore's http_state_run) */
#define API_RUN(req, route, states)					\
	api_ctx_run((req), (route), (states),				\
	    sizeof(states) / sizeof((states)[0]))
void		 api_dbres_clear(struct api_dbres *);
u_int64_t	 api_now_us(void);
void		 api_digest(const char *, const void *, size_t, u_int8_t *);
u_int32_t	 api_slot(const void *, size_t, u_int32_t);
extern int	 api_ctx_live;

/* gate: auth.c + ratelimit.c */
#define API_GATE_AUTHED	2	/* the caller is known: role, limit */
#define API_GATE_PASSED	4
int		 api_gate(struct api_ctx *, int);
#define RL_IP		1	/* the client IP's limit */
#define RL_CALLER	2	/* the key's or token's limit */
int		 api_ratelimit_start(struct api_ctx *, int);
void		 api_ratelimit_headers(struct api_ctx *);
void		 api_ratelimit_init(void);

/* client_ip.c */
const char	*api_client_ip(struct http_request *, char *, size_t);
/* the client as rate limits count it: an IPv6 address by its network */
const char	*api_client_bucket(struct http_request *, char *, size_t);
int		 api_is_local(struct http_request *);

/* route.c: the states of a route that runs one query after the gate */
int		 api_route_gate(struct http_request *);
int		 api_route_query(struct http_request *);
int		 api_route_answer(struct http_request *);
int		 api_symbol_arg(struct api_ctx *);
int		 api_opt_arg(struct api_ctx *, int, const char *);

/* json_error.c */
int		 api_error(struct http_request *, int, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
int		 api_db_error(struct api_ctx *);
int		 api_sqlstate_error(struct http_request *, const char *,
		    const char *, const char *);
int		 api_sqlstate_retry(const char *, const char *);
void		 api_json(struct http_request *, int, const void *, size_t);
int		 api_method(struct http_request *, int);
int		 api_utf8_valid(const char *);

/* query.c */
int		 api_query_parse(struct http_request *);

/* db.c */
void		 api_db_init(void);
void		 api_db_query(const char *, const char *, int, const char **,
		    void (*)(struct api_dbres *, void *), void *);
int		 api_db_start(struct api_ctx *, const char *, const char *,
		    int, const char **);
extern int	 api_db_active;

/* redis_kore.c: the hiredis adapter on Kore's event loop */
struct redisAsyncContext;
struct api_redis_kore {
	struct kore_event		 evt;		/* first: Kore's epoll data */
	struct redisAsyncContext	*ac;
	int				 fd;
	int				 events;	/* EPOLLIN | EPOLLOUT wanted */
	int				 registered;
};
void		 api_redis_kore_attach(struct api_redis_kore *,
		    struct redisAsyncContext *);

/* redis.c */
void		 api_redis_on_publish(void (*)(const char *, size_t,
		    const char *, size_t), void (*)(int));
int		 api_redis_up(void);
void		 api_redis_init(void);
void		 api_redis_close(void);
int		 api_redis_argv(void (*)(void *, void *), void *, int,
		    const char **, const size_t *);
int		 api_redis_get(struct api_ctx *, const char *);
int		 api_redis_get_cb(const char *, void (*)(void *, void *), void *);
void		 api_redis_set(const char *, const char *, size_t, int);
int		 api_redis_ping(struct api_ctx *);

/* local_cache.c */
void		 api_lcache_init(void);
int		 api_lcache_get(const char *, const char *, char **, size_t *);
u_int64_t	 api_lcache_gen(const char *);
int		 api_lcache_published(const char *, u_int64_t);
void		 api_lcache_put(const char *, const char *, const char *, size_t,
		    u_int64_t);
void		 api_lcache_invalidate(const char *, size_t);
void		 api_lcache_flush(void);
void		 api_lcache_subscribed(int);

/* symbol.c */
int		 api_symbol_normalize(const char *, char *, size_t);
int		 api_provider_ok(const char *);

/* counters.c: the counters behind /metrics, shared by all workers */
void		 api_metrics_render(struct kore_buf *, int);
void		 api_metrics_init(void);
void		 api_metrics_worker_init(void);
void		 api_metrics_request(int, int, u_int64_t);
void		 api_metrics_count(int);
void		 api_metrics_rusage(void);
void		 api_metrics_streams(int);

enum api_counter {
	MC_CACHE_HIT = 0,
	MC_CACHE_MISS,
	MC_RATE_LIMITED,
	MC_AUTH_FAILED,
	MC_DB_ERROR,
	MC_REDIS_ERROR,
	MC_DB_QUERY_LATEST,
	MC_FLIGHT_JOINED,
	MC_RL_FAIL_OPEN,
	MC_RL_LEASED,
	MC_CACHE_LOCAL_HIT,
	MC_CACHE_INVALIDATED,
	MC_REDIS_TIMEOUT,
	MC_STREAM_EVENTS,
	MC_STREAM_CONFLATED,
	MC_STREAM_SLOW_CLOSED,
	MC_COUNT
};

/* stream*.c: GET /prices/stream; stream_token.c: POST /stream/token */
void		 api_stream_init(void);
void		 api_stream_shutdown(void);
int		 api_stream_token_format_ok(const char *);
int		 api_stream_token_take(const char *, void (*)(void *, void *),
		    void *);
int		 api_stream_token_parse(const char *, size_t, int *, char *,
		    size_t);

/* shutdown.c */
void		 api_shutdown_init(void);
extern volatile sig_atomic_t	api_draining;

#endif
