/*-------------------------------------------------------------------------
 *
 * extension/redis.c
 *	  Redis write-through of new latest prices.
 *
 * When the sink moves md.latest_prices, the new price is queued here and
 * written at commit: SET md:price:{provider}:{symbol} <json> EX ttl,
 * DEL md:price:_:{symbol} (the REST API's answer for "any provider", which
 * the API fills from the database on its next miss) and PUBLISH
 * md:prices:{symbol} <event>: the JSON of the SET is what the REST API
 * serves, the PUBLISH carries the price event of the design (the Kafka
 * event, md._price_event), which the API's streams send to their clients.
 * The API's workers drop their own cached answers of the symbol when they
 * hear the PUBLISH, which comes after the SET and the DEL.
 * Writing at commit (never before) keeps Redis from showing a price that
 * was rolled back; a subtransaction that aborts drops its queued writes.
 *
 * Redis is a cache: when it is down or slow, a commit waits at most
 * marketdata.redis_timeout, the writes are dropped, the failure is counted
 * (md.cache_status) and Redis is left alone for a growing back-off (1 s to
 * 30 s). A failed connection is freed, never reused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "access/xact.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "redis.h"
#include "cache_stats.h"

#define MIN_BACKOFF_MS 1000
#define MAX_BACKOFF_MS 30000
#define WRITE_COMMANDS 3		/* SET, DEL, PUBLISH per price */

typedef struct PendingWrite
{
	int			nest_level;		/* subtransaction that queued it */
	char	   *key;			/* md:price:{provider}:{symbol} */
	char	   *any_key;		/* md:price:_:{symbol} */
	char	   *channel;		/* md:prices:{symbol} */
	char	   *json;
	char	   *event;			/* what PUBLISH sends */
} PendingWrite;

static List *pending = NIL;		/* in TopTransactionContext's lifetime */
static MemoryContext pending_context = NULL;

static redisContext *conn = NULL;
static char *conn_url = NULL;	/* the marketdata.redis_url it was made for */
static TimestampTz retry_after = 0;
static int	backoff_ms = MIN_BACKOFF_MS;
static bool callbacks_registered = false;

static void
disconnect(void)
{
	if (conn != NULL)
		redisFree(conn);
	conn = NULL;
}

static void
disconnect_at_exit(int code, Datum arg)
{
	disconnect();
}

static void
failed(const char *what)
{
	char		message[MD_CACHE_ERROR_LEN];

	snprintf(message, sizeof(message), "redis: %s", what);
	md_cache_count_failure(message);
	disconnect();
	retry_after = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff_ms);
	backoff_ms = Min(backoff_ms * 2, MAX_BACKOFF_MS);
}

/*
 * Parse redis://[:password@]host[:port][/db] with libcurl's URL parser.
 * Returns false when the URL cannot be used.
 */
static bool
parse_url(const char *url, char *host, size_t hostlen, int *port, char *password,
		  size_t passwordlen, int *db)
{
	CURLU	   *u = curl_url();
	char	   *part = NULL;
	bool		ok = false;

	*port = 6379;
	*db = 0;
	password[0] = '\0';
	if (u == NULL ||
		curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
		curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK ||
		strcmp(part, "redis") != 0)
		goto done;
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK)
		goto done;
	strlcpy(host, part, hostlen);
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_PORT, &part, 0) == CURLUE_OK)
		*port = atoi(part);
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_PASSWORD, &part, CURLU_URLDECODE) == CURLUE_OK)
		strlcpy(password, part, passwordlen);
	curl_free(part);
	part = NULL;
	if (curl_url_get(u, CURLUPART_PATH, &part, 0) == CURLUE_OK && strlen(part) > 1)
		*db = atoi(part + 1);
	ok = true;
done:
	curl_free(part);
	curl_url_cleanup(u);
	return ok;
}

/* Run one command on the connection; false (and the connection gone) on error. */
static bool
simple_command(const char *what, const char *fmt, const char *arg)
{
	redisReply *reply = redisCommand(conn, fmt, arg);
	bool		ok = reply != NULL && reply->type != REDIS_REPLY_ERROR;

	if (!ok)
		failed(reply ? reply->str : (conn->errstr[0] ? conn->errstr : what));
	if (reply)
		freeReplyObject(reply);
	return ok;
}

static bool
connect_if_needed(void)
{
	char		host[256];
	char		password[256];
	char		dbtext[16];
	int			port;
	int			db;
	struct timeval tv;

	if (conn != NULL && conn_url != NULL && strcmp(conn_url, md_redis_url) == 0)
		return true;
	disconnect();
	if (GetCurrentTimestamp() < retry_after)
		return false;
	if (!parse_url(md_redis_url, host, sizeof(host), &port, password, sizeof(password), &db))
	{
		failed("marketdata.redis_url is not redis://[:password@]host[:port][/db]");
		return false;
	}
	tv.tv_sec = md_redis_timeout / 1000;
	tv.tv_usec = (md_redis_timeout % 1000) * 1000;
	conn = redisConnectWithTimeout(host, port, tv);
	if (conn == NULL || conn->err)
	{
		failed(conn ? conn->errstr : "out of memory");
		return false;
	}
	if (redisSetTimeout(conn, tv) != REDIS_OK)
	{
		failed("could not set the timeout");
		return false;
	}
	if (password[0] != '\0' && !simple_command("AUTH failed", "AUTH %s", password))
		return false;
	snprintf(dbtext, sizeof(dbtext), "%d", db);
	if (db != 0 && !simple_command("SELECT failed", "SELECT %s", dbtext))
		return false;
	if (conn_url)
		pfree(conn_url);
	conn_url = MemoryContextStrdup(TopMemoryContext, md_redis_url);
	return true;
}

/* Pipeline every queued write and read the replies. */
static void
flush_pending(void)
{
	ListCell   *lc;
	int			sent = 0;
	int			i;

	if (!connect_if_needed())
		return;
	foreach(lc, pending)
	{
		PendingWrite *w = (PendingWrite *) lfirst(lc);

		if (redisAppendCommand(conn, "SET %s %s EX %d", w->key, w->json, md_redis_ttl) != REDIS_OK ||
			redisAppendCommand(conn, "DEL %s", w->any_key) != REDIS_OK ||
			redisAppendCommand(conn, "PUBLISH %s %s", w->channel, w->event) != REDIS_OK)
		{
			failed(conn->errstr);
			return;
		}
		sent += WRITE_COMMANDS;
	}
	for (i = 0; i < sent; i++)
	{
		redisReply *reply = NULL;

		if (redisGetReply(conn, (void **) &reply) != REDIS_OK || reply == NULL)
		{
			failed(conn->errstr[0] ? conn->errstr : "no reply");
			return;
		}
		if (reply->type == REDIS_REPLY_ERROR)
		{
			failed(reply->str);
			freeReplyObject(reply);
			return;
		}
		freeReplyObject(reply);
	}
	backoff_ms = MIN_BACKOFF_MS;
	md_cache_count_writes(sent / WRITE_COMMANDS);
}

static void
forget_pending(void)
{
	pending = NIL;
	if (pending_context != NULL)
		MemoryContextReset(pending_context);
}

static void
on_xact(XactEvent event, void *arg)
{
	if (pending == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* after the commit record: nothing here may raise an error */
			flush_pending();
			forget_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			forget_pending();
			break;
		default:
			break;
	}
}

static void
on_subxact(SubXactEvent event, SubTransactionId mySubid,
		   SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	foreach(lc, pending)
	{
		PendingWrite *w = (PendingWrite *) lfirst(lc);

		if (w->nest_level < level)
			continue;
		if (event == SUBXACT_EVENT_ABORT_SUB)
			pending = foreach_delete_current(pending, lc);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
			w->nest_level = level - 1;
	}
}

bool
md_redis_enabled(void)
{
	return md_redis_url != NULL && md_redis_url[0] != '\0';
}

void
md_redis_queue_price(const char *provider, const char *symbol, const char *json,
					 const char *event)
{
	MemoryContext old;
	PendingWrite *w;

	if (!callbacks_registered)
	{
		RegisterXactCallback(on_xact, NULL);
		RegisterSubXactCallback(on_subxact, NULL);
		on_proc_exit(disconnect_at_exit, (Datum) 0);
		pending_context = AllocSetContextCreate(TopMemoryContext, "marketdata redis writes",
												ALLOCSET_SMALL_SIZES);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(pending_context);
	w = palloc(sizeof(PendingWrite));
	w->nest_level = GetCurrentTransactionNestLevel();
	w->key = psprintf("md:price:%s:%s", provider, symbol);
	w->any_key = psprintf("md:price:_:%s", symbol);
	w->channel = psprintf("md:prices:%s", symbol);
	w->json = pstrdup(json);
	w->event = pstrdup(event);
	pending = lappend(pending, w);
	MemoryContextSwitchTo(old);
}
