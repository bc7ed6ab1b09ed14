/*
 * api/src/local_cache.c
 *	The worker's own cache of /prices/latest answers, in front of Redis.
 *
 * An answer read from Redis or the database is kept here for at most
 * MD_API_LOCAL_CACHE_MS milliseconds. It is dropped sooner when the sink
 * publishes a new price of its symbol (PUBLISH md:prices:{symbol},
 * extension/redis.c), which the worker hears on its subscriber connection
 * (redis.c). While that connection is not subscribed we would not
 * hear of new prices: then the cache is emptied and neither serves nor
 * keeps anything, and requests go to Redis as before.
 *
 * A *generation* per bucket closes the race between a read and an
 * invalidation: a request notes its bucket's generation before it asks
 * Redis or the database, every invalidation in the bucket (and every
 * flush) moves it, and an answer is kept only when the generation did
 * not move meanwhile (so an answer read before a new price arrived is
 * never kept after it).
 *
 * An answer past half its maximum age is still served, and read again
 * from Redis in the background: a hot answer is renewed before it
 * expires, so its requests never wait for Redis.
 */

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "api.h"

#define LC_BUCKETS		4096
#define LC_MAX_ENTRIES		65536

struct lc_entry {
	LIST_ENTRY(lc_entry)	 list;
	char			 symbol[40];
	char			 provider[72];
	char			*body;
	size_t			 len;
	u_int64_t		 stored;	/* ms */
	int			 renewing;	/* a GET is on its way */
};

/* A background GET renewing an answer. */
struct lc_renew {
	char			 symbol[40];
	char			 provider[72];
	u_int64_t		 gen;
};

struct lc_bucket {
	LIST_HEAD(, lc_entry)	 entries;
	u_int64_t		 gen;
};

static struct lc_bucket	 buckets[LC_BUCKETS];
static size_t		 nentries;
static int		 subscribed;
static u_int32_t	 epoch;		/* flushes */

static struct lc_bucket *
bucket_of(const char *symbol, size_t len)
{
	return (&buckets[api_slot(symbol, len, LC_BUCKETS)]);
}

static void
entry_free(struct lc_entry *e)
{
	LIST_REMOVE(e, list);
	kore_free(e->body);
	kore_free(e);
	nentries--;
}

static void
published(const char *symbol, size_t len, const char *event, size_t elen)
{
	(void)event;
	(void)elen;
	api_lcache_invalidate(symbol, len);
}

void
api_lcache_init(void)
{
	size_t	i;

	for (i = 0; i < LC_BUCKETS; i++)
		LIST_INIT(&buckets[i].entries);
	/* the sink's PUBLISH of a symbol drops its answers */
	api_redis_on_publish(published, api_lcache_subscribed);
}

static int
enabled(void)
{
	return (subscribed && api_cfg.local_cache_ms > 0 &&
	    api_cfg.cache_ttl > 0);
}

static struct lc_entry *
entry_find(struct lc_bucket *b, const char *symbol, const char *provider)
{
	struct lc_entry		*e;

	LIST_FOREACH(e, &b->entries, list) {
		if (!strcmp(e->symbol, symbol) && !strcmp(e->provider, provider))
			return (e);
	}
	return (NULL);
}

static void
renew_done(void *r, void *arg)
{
	redisReply		*reply = r;
	struct lc_renew		*w = arg;
	struct lc_entry		*e;

	if (reply != NULL && reply->type == REDIS_REPLY_STRING)
		api_lcache_put(w->symbol, w->provider, reply->str, reply->len,
		    w->gen);
	else if ((e = entry_find(bucket_of(w->symbol, strlen(w->symbol)),
	    w->symbol, w->provider)) != NULL)
		e->renewing = 0;	/* gone from Redis: let it expire */
	kore_free(w);
}

static void
renew(struct lc_entry *e)
{
	struct lc_renew		*w;
	char			 key[128];

	w = kore_malloc(sizeof(*w));
	(void)kore_strlcpy(w->symbol, e->symbol, sizeof(w->symbol));
	(void)kore_strlcpy(w->provider, e->provider, sizeof(w->provider));
	w->gen = api_lcache_gen(e->symbol);
	/* the key of prices.c: provider "_" when none is asked for */
	(void)snprintf(key, sizeof(key), "md:price:%s:%s",
	    e->provider[0] ? e->provider : "_", e->symbol);
	if (api_redis_get_cb(key, renew_done, w) == KORE_RESULT_OK)
		e->renewing = 1;
	else
		kore_free(w);
}

/* The cached answer of (symbol, provider or ""), valid until used. */
int
api_lcache_get(const char *symbol, const char *provider, char **body,
    size_t *len)
{
	struct lc_bucket	*b;
	struct lc_entry		*e;
	u_int64_t		 age;

	if (!enabled())
		return (0);
	b = bucket_of(symbol, strlen(symbol));
	if ((e = entry_find(b, symbol, provider)) == NULL)
		return (0);
	age = kore_time_ms() - e->stored;
	if (age >= (u_int64_t)api_cfg.local_cache_ms)
		return (0);
	if (age * 2 >= (u_int64_t)api_cfg.local_cache_ms && !e->renewing)
		renew(e);
	*body = e->body;
	*len = e->len;
	return (1);
}

/*
 * Note this before asking Redis or the database; give it to put. High
 * half: the flushes, low half: the invalidations of the symbol's bucket.
 */
u_int64_t
api_lcache_gen(const char *symbol)
{
	return ((u_int64_t)epoch << 32 |
	    (u_int32_t)bucket_of(symbol, strlen(symbol))->gen);
}

/* Whether a price of symbol's bucket was published since gen. */
int
api_lcache_published(const char *symbol, u_int64_t gen)
{
	return ((u_int32_t)bucket_of(symbol, strlen(symbol))->gen !=
	    (u_int32_t)gen);
}

void
api_lcache_put(const char *symbol, const char *provider, const char *body,
    size_t len, u_int64_t gen)
{
	struct lc_bucket	*b;
	struct lc_entry		*e;

	if (!enabled())
		return;
	b = bucket_of(symbol, strlen(symbol));
	if (api_lcache_gen(symbol) != gen)
		return;		/* a new price, or a flush, came meanwhile */
	if ((e = entry_find(b, symbol, provider)) == NULL) {
		if (nentries >= LC_MAX_ENTRIES)
			return;
		e = kore_calloc(1, sizeof(*e));
		(void)kore_strlcpy(e->symbol, symbol, sizeof(e->symbol));
		(void)kore_strlcpy(e->provider, provider, sizeof(e->provider));
		LIST_INSERT_HEAD(&b->entries, e, list);
		nentries++;
	} else {
		kore_free(e->body);
	}
	e->body = kore_malloc(len);
	memcpy(e->body, body, len);
	e->len = len;
	e->stored = kore_time_ms();
	e->renewing = 0;
}

/* A new price of symbol (not NUL-terminated, from a channel name). */
void
api_lcache_invalidate(const char *symbol, size_t len)
{
	struct lc_bucket	*b;
	struct lc_entry		*e, *next;

	b = bucket_of(symbol, len);
	b->gen++;
	for (e = LIST_FIRST(&b->entries); e != NULL; e = next) {
		next = LIST_NEXT(e, list);
		if (strlen(e->symbol) == len && !memcmp(e->symbol, symbol, len))
			entry_free(e);
	}
	api_metrics_count(MC_CACHE_INVALIDATED);
}

void
api_lcache_flush(void)
{
	size_t	i;

	epoch++;
	for (i = 0; i < LC_BUCKETS; i++) {
		while (!LIST_EMPTY(&buckets[i].entries))
			entry_free(LIST_FIRST(&buckets[i].entries));
	}
}

/* The subscriber connection is subscribed (1) or not (0). */
void
api_lcache_subscribed(int up)
{
	subscribed = up;
	api_lcache_flush();
}
