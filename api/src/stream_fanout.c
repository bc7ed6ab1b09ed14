/*
 * api/src/stream_fanout.c
 *	The streams of a worker: clients and their subs, the fan-out of
 *	each published price, conflation of full clients, heartbeats and
 *	shutdown (stream.c says how it all fits).
 */

#define _GNU_SOURCE		/* strptime */

#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "stream.h"

static LIST_HEAD(, stream_sub)	 buckets[SUB_BUCKETS];
static TAILQ_HEAD(, stream_client) clients = TAILQ_HEAD_INITIALIZER(clients);
static TAILQ_HEAD(, stream_client) full = TAILQ_HEAD_INITIALIZER(full);
static int			 subscribed;
static int			 shutting_down;
static u_int32_t		 member_seq;

static u_int64_t
wall_us(void)
{
	struct timespec	ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return ((u_int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* "2026-11-20T15:30:00.25Z" (md._iso_utc) in µs since the epoch; -1: bad */
int64_t
stream_iso_us(const char *s)
{
	struct tm	 tm;
	const char	*p;
	int64_t		 us, scale;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return (-1);
	us = (int64_t)timegm(&tm) * 1000000;
	if (*p == '.') {
		p++;
		for (scale = 100000; *p >= '0' && *p <= '9'; p++) {
			us += (*p - '0') * scale;
			scale /= 10;
		}
	}
	return (*p == 'Z' && p[1] == '\0' ? us : -1);
}

static size_t
queued(struct connection *c)
{
	struct netbuf	*nb;
	size_t		 n = 0;

	TAILQ_FOREACH(nb, &c->send_queue, list)
		n += nb->b_len - nb->s_off;
	return (n);
}

struct stream_sub *
stream_sub_find(struct stream_client *sc, const char *symbol)
{
	int	i;

	for (i = 0; i < sc->nsubs; i++) {
		if (!strcmp(sc->subs[i]->symbol, symbol))
			return (sc->subs[i]);
	}
	return (NULL);
}

int
stream_sub_add(struct stream_client *sc, const char *symbol)
{
	struct stream_sub	*sub;

	if (stream_sub_find(sc, symbol) != NULL)
		return (KORE_RESULT_OK);
	if (sc->nsubs >= api_cfg.stream_max_symbols)
		return (KORE_RESULT_ERROR);
	sub = kore_calloc(1, sizeof(*sub));
	sub->client = sc;
	(void)kore_strlcpy(sub->symbol, symbol, sizeof(sub->symbol));
	LIST_INSERT_HEAD(&buckets[api_slot(symbol, strlen(symbol),
	    SUB_BUCKETS)], sub, bucket);
	sc->subs[sc->nsubs++] = sub;
	return (KORE_RESULT_OK);
}

void
stream_sub_free(struct stream_sub *sub)
{
	struct stream_client	*sc = sub->client;
	struct held		*h, *next;

	for (h = TAILQ_FIRST(&sc->held); h != NULL; h = next) {
		next = TAILQ_NEXT(h, list);
		if (h->sub == sub) {
			TAILQ_REMOVE(&sc->held, h, list);
			sc->nheld--;
			kore_free(h);
		}
	}
	if (sub->pending != NULL)
		sc->npending--;
	LIST_REMOVE(sub, bucket);
	kore_free(sub->pending);
	kore_free(sub->seen);
	kore_free(sub);
}

void
stream_sub_remove(struct stream_client *sc, const char *symbol)
{
	int	i;

	for (i = 0; i < sc->nsubs; i++) {
		if (!strcmp(sc->subs[i]->symbol, symbol)) {
			stream_sub_free(sc->subs[i]);
			sc->subs[i] = sc->subs[--sc->nsubs];
			return;
		}
	}
}

/* Whether (provider, ts) is newer than what sub sent; notes it if so. */
static int
seen_newer(struct stream_sub *sub, const char *provider, int64_t ts)
{
	int	i;

	for (i = 0; i < sub->nseen; i++) {
		if (!strcmp(sub->seen[i].provider, provider)) {
			if (ts <= sub->seen[i].ts)
				return (0);
			sub->seen[i].ts = ts;
			return (1);
		}
	}
	sub->seen = kore_realloc(sub->seen, sizeof(*sub->seen) *
	    (sub->nseen + 1));
	(void)kore_strlcpy(sub->seen[sub->nseen].provider, provider,
	    sizeof(sub->seen[0].provider));
	sub->seen[sub->nseen++].ts = ts;
	return (1);
}

static void
mark_full(struct stream_client *sc)
{
	if (sc->full_since != 0)
		return;
	sc->full_since = kore_time_ms();
	TAILQ_INSERT_TAIL(&full, sc, full_list);
}

/*
 * A client to close: never at once, in the middle of a fan-out (a
 * disconnect frees the client's subs), but by the next drain_timer.
 */
void
stream_mark_dead(struct stream_client *sc)
{
	sc->dead = 1;
	mark_full(sc);
}

/* The bytes of one message: an SSE frame, or a WebSocket text message. */
void
stream_emit(struct stream_client *sc, const void *data, size_t len)
{
	if (sc->dead)
		return;
	if (sc->proto == STREAM_WS) {
		kore_websocket_send(sc->c, WEBSOCKET_OP_TEXT, data, len);
		return;
	}
	net_send_queue(sc->c, data, len);
	if (net_send_flush(sc->c) == KORE_RESULT_ERROR)
		stream_mark_dead(sc);
}

/* A message that is not a price: event name and JSON data. */
void
stream_emit_control(struct stream_client *sc, const char *event, const char *json)
{
	struct kore_buf	b;

	kore_buf_init(&b, 256);
	if (sc->proto == STREAM_WS)
		kore_buf_appendf(&b, "{\"event\":\"%s\",\"data\":%s}", event,
		    json);
	else
		kore_buf_appendf(&b, "event: %s\ndata: %s\n\n", event, json);
	stream_emit(sc, b.data, b.offset);
	kore_buf_cleanup(&b);
}

static void
event_format(struct stream_event *ev, int proto)
{
	if (proto == STREAM_WS && !ev->ws_built) {
		kore_buf_init(&ev->ws, ev->len + 64);
		kore_buf_appendf(&ev->ws, "{\"event\":\"price\",\"id\":\"%s\","
		    "\"data\":", ev->id);
		kore_buf_append(&ev->ws, ev->json, ev->len);
		kore_buf_append(&ev->ws, "}", 1);
		ev->ws_built = 1;
	}
	if (proto == STREAM_SSE && !ev->sse_built) {
		kore_buf_init(&ev->sse, ev->len + 64);
		kore_buf_appendf(&ev->sse, "id: %s\nevent: price\ndata: ",
		    ev->id);
		kore_buf_append(&ev->sse, ev->json, ev->len);
		kore_buf_append(&ev->sse, "\n\n", 2);
		ev->sse_built = 1;
	}
}

void
stream_event_cleanup(struct stream_event *ev)
{
	if (ev->sse_built)
		kore_buf_cleanup(&ev->sse);
	if (ev->ws_built)
		kore_buf_cleanup(&ev->ws);
}

/* Sends ev to sub's client now, or keeps it as the symbol's newest. */
void
stream_deliver(struct stream_sub *sub, struct stream_event *ev)
{
	struct stream_client	*sc = sub->client;
	struct kore_buf		*b;

	if (sc->dead || !seen_newer(sub, ev->provider, ev->ts))
		return;
	event_format(ev, sc->proto);
	b = sc->proto == STREAM_WS ? &ev->ws : &ev->sse;
	(void)kore_strlcpy(sc->last_id, ev->id, sizeof(sc->last_id));
	if (sc->full_since == 0 &&
	    queued(sc->c) < (size_t)api_cfg.stream_buffer) {
		stream_emit(sc, b->data, b->offset);
		api_metrics_count(MC_STREAM_EVENTS);
		return;
	}
	mark_full(sc);
	if (sub->pending == NULL)
		sc->npending++;
	else
		api_metrics_count(MC_STREAM_CONFLATED);
	kore_free(sub->pending);
	sub->pending = kore_malloc(b->offset);
	memcpy(sub->pending, b->data, b->offset);
	sub->pending_len = b->offset;
}

static void
hold(struct stream_sub *sub, struct stream_event *ev)
{
	struct stream_client	*sc = sub->client;
	struct held		*h;

	if (sc->nheld >= HELD_MAX) {
		stream_mark_dead(sc);
		return;
	}
	h = kore_malloc(sizeof(*h) + ev->len + 1);
	h->sub = sub;
	(void)kore_strlcpy(h->provider, ev->provider, sizeof(h->provider));
	h->ts = ev->ts;
	(void)kore_strlcpy(h->id, ev->id, sizeof(h->id));
	h->len = ev->len;
	memcpy(h->json, ev->json, ev->len);
	h->json[ev->len] = '\0';
	TAILQ_INSERT_TAIL(&sc->held, h, list);
	sc->nheld++;
}

/* The held events, after a replay, through the usual check. */
void
stream_release_held(struct stream_client *sc)
{
	struct held		*h;
	struct stream_event	 ev;

	while ((h = TAILQ_FIRST(&sc->held)) != NULL) {
		TAILQ_REMOVE(&sc->held, h, list);
		sc->nheld--;
		memset(&ev, 0, sizeof(ev));
		ev.symbol = h->sub->symbol;
		(void)kore_strlcpy(ev.provider, h->provider,
		    sizeof(ev.provider));
		ev.ts = h->ts;
		(void)kore_strlcpy(ev.id, h->id, sizeof(ev.id));
		ev.json = h->json;
		ev.len = h->len;
		stream_deliver(h->sub, &ev);
		stream_event_cleanup(&ev);
		kore_free(h);
	}
}

/* From the subscriber: the sink published json on md:prices:{symbol}. */
static void
published(const char *symbol, size_t slen, const char *json,
    size_t len)
{
	struct stream_sub	*sub, *next;
	struct stream_event	 ev;
	json_t			*root;
	json_error_t		 err;
	const char		*ts, *source;
	char			 sym[40];

	if (TAILQ_EMPTY(&clients) || slen >= sizeof(sym))
		return;
	memcpy(sym, symbol, slen);
	sym[slen] = '\0';

	sub = LIST_FIRST(&buckets[api_slot(sym, slen, SUB_BUCKETS)]);
	while (sub != NULL && strcmp(sub->symbol, sym))
		sub = LIST_NEXT(sub, bucket);
	if (sub == NULL)
		return;

	memset(&ev, 0, sizeof(ev));
	if ((root = json_loadb(json, len, 0, &err)) == NULL)
		return;
	ts = json_string_value(json_object_get(root, "timestamp"));
	source = json_string_value(json_object_get(root, "source"));
	if (ts == NULL || source == NULL || (ev.ts = stream_iso_us(ts)) < 0 ||
	    kore_strlcpy(ev.provider, source, sizeof(ev.provider)) >=
	    sizeof(ev.provider)) {
		json_decref(root);
		return;
	}
	json_decref(root);
	ev.symbol = sym;
	ev.json = json;
	ev.len = len;
	(void)snprintf(ev.id, sizeof(ev.id), "%lld:%s:%s",
	    (long long)ev.ts, ev.provider, sym);

	for (; sub != NULL; sub = next) {
		next = LIST_NEXT(sub, bucket);
		if (strcmp(sub->symbol, sym))
			continue;
		if (sub->client->replaying)
			hold(sub, &ev);
		else
			stream_deliver(sub, &ev);
	}
	stream_event_cleanup(&ev);
}

/* The subscriber connection is subscribed (1) or not (0): say so. */
static void
subscription(int up)
{
	struct stream_client	*sc;

	if (up == subscribed)
		return;
	subscribed = up;
	TAILQ_FOREACH(sc, &clients, list)
		stream_emit_control(sc, "status", up ? "{\"redis\":\"up\"}" :
		    "{\"redis\":\"down\"}");
}

/* The first open stream; TAILQ_NEXT(sc, list) the next. */
struct stream_client *
stream_clients(void)
{
	return (TAILQ_FIRST(&clients));
}

struct stream_client *
stream_client_new(struct api_ctx *ctx, int proto)
{
	struct stream_client	*sc;

	sc = kore_calloc(1, sizeof(*sc));
	sc->proto = proto;
	sc->role = ctx->gate.role;
	(void)kore_strlcpy(sc->ident, ctx->gate.ident, sizeof(sc->ident));
	(void)api_client_bucket(ctx->req, sc->ip, sizeof(sc->ip));
	(void)snprintf(sc->member, sizeof(sc->member), "%d.%u.%llu",
	    (int)getpid(), ++member_seq, (unsigned long long)wall_us());
	sc->subs = kore_calloc(api_cfg.stream_max_symbols, sizeof(*sc->subs));
	sc->opened_us = wall_us();
	TAILQ_INIT(&sc->held);
	return (sc);
}

/* Frees a client that was never opened, and its place in the limits. */
void
stream_client_discard(struct stream_client *sc)
{
	stream_limit_release(sc);
	while (sc->nsubs > 0)
		stream_sub_free(sc->subs[--sc->nsubs]);
	kore_free(sc->subs);
	kore_free(sc);
}

/* Frees the client, with a last word (reason) when it is still open. */
void
stream_client_close(struct stream_client *sc, const char *reason)
{
	struct connection	*c = sc->c;
	char			 json[128];

	if (c != NULL) {
		/* from here on, Kore's disconnect callbacks do not find us */
		c->hdlr_extra = NULL;
		if (reason != NULL && !sc->dead) {
			(void)snprintf(json, sizeof(json),
			    "{\"reason\":\"%s\"}", reason);
			stream_emit_control(sc, "close", json);
		}
		if (reason != NULL)
			kore_connection_disconnect(c);
		sc->c = NULL;
		TAILQ_REMOVE(&clients, sc, list);
		api_metrics_streams(-1);
		stream_limit_release(sc);
		while (sc->nsubs > 0)
			stream_sub_free(sc->subs[--sc->nsubs]);
		if (sc->full_since != 0)
			TAILQ_REMOVE(&full, sc, full_list);
		sc->full_since = 0;
	}
	if (sc->replaying) {
		sc->gone = 1;	/* replay_done frees it */
		return;
	}
	kore_free(sc->subs);
	kore_free(sc);
}

void
stream_client_open(struct stream_client *sc, struct connection *c)
{
	int	sndbuf = KERNEL_SNDBUF;

	sc->c = c;
	c->hdlr_extra = sc;
	/* a small kernel buffer: our queue is the one that is bounded */
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    sizeof(sndbuf));
	TAILQ_INSERT_TAIL(&clients, sc, list);
	api_metrics_streams(1);
}

/* Full clients: send what was kept once drained, or close the slow. */
static void
drain_timer(void *unused, u_int64_t now)
{
	struct stream_client	*sc, *next;
	int			 i;

	(void)unused;
	if (api_draining && !shutting_down)
		api_stream_shutdown();
	for (sc = TAILQ_FIRST(&full); sc != NULL; sc = next) {
		next = TAILQ_NEXT(sc, full_list);
		if (sc->dead || net_send_flush(sc->c) == KORE_RESULT_ERROR) {
			sc->dead = 1;
			stream_client_close(sc, "closed");
			continue;
		}
		if (queued(sc->c) < (size_t)api_cfg.stream_buffer / 2) {
			TAILQ_REMOVE(&full, sc, full_list);
			sc->full_since = 0;
			for (i = 0; i < sc->nsubs && sc->npending > 0; i++) {
				if (sc->subs[i]->pending == NULL)
					continue;
				stream_emit(sc, sc->subs[i]->pending,
				    sc->subs[i]->pending_len);
				api_metrics_count(MC_STREAM_EVENTS);
				kore_free(sc->subs[i]->pending);
				sc->subs[i]->pending = NULL;
				sc->npending--;
			}
		} else if (now - sc->full_since >=
		    (u_int64_t)api_cfg.stream_slow_ms) {
			kore_log(LOG_NOTICE, "stream: closing a slow client "
			    "(%s, %s)", sc->ip, sc->ident);
			api_metrics_count(MC_STREAM_SLOW_CLOSED);
			stream_client_close(sc, "slow_consumer");
		}
	}
}

static void
heartbeat_timer(void *unused, u_int64_t now)
{
	struct stream_client	*sc;

	(void)unused;
	(void)now;
	TAILQ_FOREACH(sc, &clients, list) {
		stream_limit_refresh(sc);
		if (sc->full_since != 0 || sc->dead)
			continue;
		if (sc->proto == STREAM_WS) {
			kore_websocket_send(sc->c, WEBSOCKET_OP_PING, NULL, 0);
		} else {
			stream_emit(sc, ": heartbeat\n\n", 13);
			/* it reads: not idle */
			if (queued(sc->c) == 0)
				kore_connection_start_idletimer(sc->c);
		}
	}
}

/* Every client is told to reconnect elsewhere, then closed. */
void
api_stream_shutdown(void)
{
	struct stream_client	*sc;
	struct connection	*c;
	int			 ws;

	shutting_down = 1;
	if (!TAILQ_EMPTY(&clients))
		kore_log(LOG_NOTICE, "stream: telling the streams to reconnect");
	while ((sc = TAILQ_FIRST(&clients)) != NULL) {
		c = sc->c;
		ws = (sc->proto == STREAM_WS && !sc->dead);
		stream_emit_control(sc, "reconnect", "{\"reason\":\"shutdown\"}");
		/* detached and freed first: the disconnect below finds nothing */
		stream_client_close(sc, NULL);
		if (ws) {
			kore_websocket_send(c, WEBSOCKET_OP_CLOSE, NULL, 0);
			c->flags |= CONN_WS_CLOSE_SENT;
		}
		/* closed by Kore once what is queued is sent */
		c->flags |= CONN_CLOSE_EMPTY;
		if (net_send_flush(c) == KORE_RESULT_ERROR)
			kore_connection_disconnect(c);
	}
}

void
stream_fanout_init(void)
{
	size_t	i;

	for (i = 0; i < SUB_BUCKETS; i++)
		LIST_INIT(&buckets[i]);
	api_redis_on_publish(published, subscription);
	kore_websocket_timeout = (u_int64_t)api_cfg.stream_idle_timeout * 1000;
	(void)kore_timer_add(drain_timer, 20, NULL, 0);
	(void)kore_timer_add(heartbeat_timer,
	    (u_int64_t)api_cfg.stream_heartbeat * 1000, NULL, 0);
}

int
stream_is_subscribed(void)
{
	return (subscribed);
}
