/*
 * api/src/local_cache.c
 *	The worker's own cache of /prices/latest answers, in front of Redis.
 *
 * An answer read from Redis or the database is kept here for at most
 * MD_API_LOCAL_CACHE_MS milliseconds. It is dropped sooner when the sink
 * publishes a new price of its symbol (PUBLISH md:prices:{symbol},
 * extension/redis.c), which the worker hears on its subscriber connection
 * (redis_kore.c). While that connection is not subscribed we would not
 * hear of new prices: then the cache is emptied and neither serves nor
 * keeps anything, and requests go to Redis as before.
 *
 * A *generation* per bucket closes the race between a read and an
 * invalidation: a request notes its bucket's generation before it asks
 * Redis or the database, every invalidation in the bucket bumps it, and
 * an answer is kept only when the generation did not move meanwhile (so
 * an answer read before a new price arrived is never kept after it).
 */

#include <string.h>

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
};

struct lc_bucket {
	LIST_HEAD(, lc_entry)	 entries;
	u_int64_t		 gen;
};

static struct lc_bucket	 buckets[LC_BUCKETS];
static size_t		 nentries;
static int		 subscribed;

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

void
api_lcache_init(void)
{
	size_t	i;

	for (i = 0; i < LC_BUCKETS; i++)
		LIST_INIT(&buckets[i].entries);
}

static int
enabled(void)
{
	return (subscribed && api_cfg.local_cache_ms > 0 &&
	    api_cfg.cache_ttl > 0);
}

/* The cached answer of (symbol, provider or ""), valid until used. */
int
api_lcache_get(const char *symbol, const char *provider, char **body,
    size_t *len)
{
	struct lc_bucket	*b;
	struct lc_entry		*e;

	if (!enabled())
		return (0);
	b = bucket_of(symbol, strlen(symbol));
	LIST_FOREACH(e, &b->entries, list) {
		if (strcmp(e->symbol, symbol) || strcmp(e->provider, provider))
			continue;
		if (kore_time_ms() - e->stored >= (u_int64_t)api_cfg.local_cache_ms)
			return (0);
		*body = e->body;
		*len = e->len;
		return (1);
	}
	return (0);
}

/* Note this before asking Redis or the database; give it to put. */
u_int64_t
api_lcache_gen(const char *symbol)
{
	return (bucket_of(symbol, strlen(symbol))->gen);
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
	if (b->gen != gen)
		return;		/* a new price came in meanwhile */
	LIST_FOREACH(e, &b->entries, list) {
		if (!strcmp(e->symbol, symbol) && !strcmp(e->provider, provider))
			break;
	}
	if (e == NULL) {
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

	for (i = 0; i < LC_BUCKETS; i++) {
		buckets[i].gen++;
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
