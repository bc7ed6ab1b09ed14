/*
 * api/src/stream.c
 *	GET /prices/stream: new prices pushed to clients, as Server-Sent
 *	Events or over a WebSocket (an Upgrade: websocket request).
 *
 * Words: a *client* is one open stream; a *sub* is one symbol a client
 * follows; an *event* is one price as the sink publishes it (PUBLISH
 * md:prices:{symbol} with the price event JSON of the design, heard on
 * the worker's one subscriber connection, redis_kore.c), with an *id*
 * "<market time µs>:<provider>:<symbol>", the key of its md.prices row.
 *
 * Fan-out: a hash from symbol to its subs; each event is formatted once
 * per protocol and queued to every client that follows the symbol. A
 * client whose send queue (plus a small kernel buffer, SO_SNDBUF) holds
 * more than MD_API_STREAM_BUFFER bytes is *full*: its new events are
 * conflated, the newest per symbol kept aside and sent once the queue has
 * drained; a client full for longer than MD_API_STREAM_SLOW_MS is closed
 * with the reason "slow_consumer". So a slow client costs the others one
 * memcpy per event, never a wait.
 *
 * Resume: SSE's Last-Event-ID header or the since parameter (an id) asks
 * md._api_stream_replay() for what followed it within
 * MD_API_STREAM_REPLAY_WINDOW; live events heard meanwhile are *held*
 * and sent after the replay. Every event goes through one check, the
 * newest market time sent per symbol and provider: an event not newer is
 * not sent. Live events of one symbol and provider only move forward (the
 * sink publishes a price only when it moves md.latest_prices), so the
 * check removes exactly the overlap of replay and live, at the seam.
 * Redis down: clients hear {"redis":"down"}; when the subscription is
 * back they hear {"redis":"up"} and what they missed is replayed.
 *
 * Limits: MD_API_STREAM_MAX_SYMBOLS per stream; open streams per caller
 * and per IP, counted across API instances in Redis (a sorted set per
 * caller and IP whose members expire unless refreshed every heartbeat,
 * so a crashed instance's streams stop counting). A heartbeat every
 * MD_API_STREAM_HEARTBEAT seconds (an SSE comment, a WebSocket ping); a
 * WebSocket silent for MD_API_STREAM_IDLE_TIMEOUT is closed. Shutdown:
 * every client gets a "reconnect" event, then its connection is closed.
 */

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "stream.h"

int	api_prices_stream(struct http_request *);

/* the states of stream_states */
#define S_ARGS			0
#define S_TOKEN_WAIT		1
#define S_GATE			2
#define S_LIMIT_WAIT		3

/* SSE: input is not expected; it is read and dropped. */
static int
sse_recv(struct netbuf *nb)
{
	net_recv_reset(nb->owner, 512, sse_recv);
	return (KORE_RESULT_OK);
}

static void
sse_disconnect(struct connection *c)
{
	struct stream_client	*sc = c->hdlr_extra;

	if (sc != NULL)
		stream_client_close(sc, NULL);
}

static int
parse_symbols(struct api_ctx *ctx, struct stream_client *sc)
{
	char	*list, *s, *save;
	char	 symbol[40];
	int	 rc = KORE_RESULT_OK;

	if (ctx->args.arg[0] == NULL)
		return (KORE_RESULT_OK);
	list = kore_strdup(ctx->args.arg[0]);
	for (s = strtok_r(list, ",", &save); s != NULL;
	    s = strtok_r(NULL, ",", &save)) {
		if (!api_symbol_normalize(s, symbol, sizeof(symbol)) ||
		    !stream_sub_add(sc, symbol)) {
			rc = KORE_RESULT_ERROR;
			break;
		}
	}
	kore_free(list);
	return (rc);
}

static void
token_taken(void *r, void *arg)
{
	redisReply	*reply = r;
	struct api_ctx	*ctx = arg;

	ctx->redis.ok = 0;
	if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
	    api_stream_token_parse(reply->str, reply->len, &ctx->gate.role,
	    ctx->gate.ident, sizeof(ctx->gate.ident)))
		ctx->redis.ok = 1;
	api_ctx_done(ctx);
}

static void
limit_checked(void *r, void *arg)
{
	redisReply		*reply = r;
	struct api_ctx		*ctx = arg;
	struct stream_client	*sc = ctx->stream;

	/* the request went away meanwhile, and its stream with it */
	if (sc == NULL) {
		api_ctx_done(ctx);
		return;
	}
	/* 0: admitted; 1: the IP, 2: the caller is at its limit; -1: down */
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER)
		sc->admit = -1;
	else
		sc->admit = (int)reply->integer;
	sc->limited = (sc->admit == 0);
	api_ctx_done(ctx);
}

/* The request is gone: a stream it was opening goes with it. */
static void
opening_gone(struct api_ctx *ctx)
{
	if (ctx->stream != NULL)
		stream_client_discard(ctx->stream);
	ctx->stream = NULL;
}

static int
stream_open(struct api_ctx *ctx, struct stream_client *sc)
{
	struct http_request	*req = ctx->req;
	const char		*hdr, *resume;

	resume = ctx->args.arg[1];
	if (sc->proto == STREAM_WS) {
		req->owner->hdlr_extra = sc;
		kore_websocket_handshake(req, "api_stream_ws_connect",
		    "api_stream_ws_message", "api_stream_ws_disconnect");
		if (req->status != HTTP_STATUS_SWITCHING_PROTOCOLS) {
			req->owner->hdlr_extra = NULL;
			stream_client_discard(sc);
			return (KORE_RESULT_OK);
		}
		stream_client_open(sc, req->owner);
		req->owner->idle_timer.length =
		    (u_int64_t)api_cfg.stream_idle_timeout * 1000;
		stream_ws_subscribed(sc);
	} else {
		if (resume == NULL &&
		    http_request_header(req, "last-event-id", &hdr) &&
		    hdr[0] != '\0')
			resume = hdr;
		http_response_header(req, "content-type",
		    "text/event-stream");
		http_response_header(req, "cache-control", "no-store");
		http_response_header(req, "x-accel-buffering", "no");
		req->flags |= HTTP_REQUEST_NO_CONTENT_LENGTH;
		http_response(req, 200, NULL, 0);
		/*
		 * The connection is ours now: no more HTTP on it, and open
		 * until one side closes it, even when the request said
		 * "Connection: close".
		 */
		req->owner->flags &= ~CONN_CLOSE_EMPTY;
		req->owner->http_timeout = 0;
		req->owner->disconnect = sse_disconnect;
		req->owner->idle_timer.length =
		    (u_int64_t)api_cfg.stream_idle_timeout * 1000;
		net_recv_reset(req->owner, 512, sse_recv);
		stream_client_open(sc, req->owner);
		/* EventSource reconnects after retry ms */
		net_send_queue(sc->c, "retry: 1000\n\n", 13);
	}
	if (!stream_is_subscribed())
		stream_emit_control(sc, "status", "{\"redis\":\"down\"}");
	if (resume != NULL)
		stream_replay_start(sc, resume);
	return (KORE_RESULT_OK);
}

static int
is_websocket(struct http_request *req)
{
	const char	*hdr;

	return (http_request_header(req, "upgrade", &hdr) &&
	    !strcasecmp(hdr, "websocket"));
}

/* Arguments; a token is taken from Redis, else the gate follows. */
static int
stream_args(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	char		*v, sym[40], prov[72];
	int64_t		 ts;

	if (!api_method(req, HTTP_METHOD_GET))
		return (HTTP_STATE_COMPLETE);
	http_populate_get(req);
	if (http_argument_get_string(req, "symbols", &v))
		ctx->args.arg[0] = kore_strdup(v);
	if (http_argument_get_string(req, "since", &v))
		ctx->args.arg[1] = kore_strdup(v);
	if (http_argument_get_string(req, "channels", &v) &&
	    strcmp(v, "prices")) {
		(void)api_error(req, 400, "bad_channels",
		    "channels: only \"prices\" is available");
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->args.arg[0] == NULL && !is_websocket(req)) {
		(void)api_error(req, 400, "missing_symbols",
		    "symbols is required: symbols=AAPL,MSFT (at most %d, no "
		    "\"*\")", api_cfg.stream_max_symbols);
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->args.arg[1] != NULL && !stream_id_parse(ctx->args.arg[1],
	    &ts, prov, sizeof(prov), sym, sizeof(sym))) {
		(void)api_error(req, 400, "bad_since",
		    "since is an event id, as sent with each event");
		return (HTTP_STATE_COMPLETE);
	}
	if (http_argument_get_string(req, "api_key", &v)) {
		(void)api_error(req, 400, "key_in_url", "an API key is never "
		    "accepted in a URL: send X-API-Key, or POST /stream/token "
		    "for a token");
		return (HTTP_STATE_COMPLETE);
	}
	if (!http_argument_get_string(req, "token", &v)) {
		req->fsm_state = S_GATE;
		return (HTTP_STATE_CONTINUE);
	}
	if (!api_stream_token_format_ok(v)) {
		api_metrics_count(MC_AUTH_FAILED);
		(void)api_error(req, 401, "unauthorized", "invalid stream token");
		return (HTTP_STATE_COMPLETE);
	}
	req->fsm_state = S_TOKEN_WAIT;
	ctx->redis.ok = 0;
	api_ctx_wait(ctx);
	if (!api_stream_token_take(v, token_taken, ctx))
		api_ctx_done(ctx);
	return (HTTP_STATE_RETRY);
}

static int
stream_token_checked(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!ctx->redis.ok) {
		api_metrics_count(MC_AUTH_FAILED);
		(void)api_error(req, 401, "unauthorized",
		    "the stream token is unknown, used or expired");
		return (HTTP_STATE_COMPLETE);
	}
	/* the token is the authentication; the gate's rest follows */
	ctx->gate.step = API_GATE_AUTHED;
	req->fsm_state = S_GATE;
	return (HTTP_STATE_CONTINUE);
}

/* The gate, the symbols, then the limits in Redis. */
static int
stream_gate(struct http_request *req)
{
	struct api_ctx		*ctx = req->hdlr_extra;
	struct stream_client	*sc;
	int			 rc;

	rc = api_gate(ctx, ROLE_READER);
	if (rc != HTTP_STATE_CONTINUE)
		return (rc);
	sc = stream_client_new(ctx, is_websocket(req) ? STREAM_WS :
	    STREAM_SSE);
	if (!parse_symbols(ctx, sc)) {
		stream_client_discard(sc);
		(void)api_error(req, 400, "bad_symbols", "symbols is a "
		    "comma-separated list of at most %d symbols (\"*\" is not "
		    "allowed)", api_cfg.stream_max_symbols);
		return (HTTP_STATE_COMPLETE);
	}
	ctx->stream = sc;
	api_ctx_on_done(ctx, opening_gone);
	req->fsm_state = S_LIMIT_WAIT;
	sc->admit = -1;
	api_ctx_wait(ctx);
	if (!stream_limit_check(sc, limit_checked, ctx))
		api_ctx_done(ctx);
	return (HTTP_STATE_RETRY);
}

static int
stream_admitted(struct http_request *req)
{
	struct api_ctx		*ctx = req->hdlr_extra;
	struct stream_client	*sc = ctx->stream;
	int			 admit = sc->admit;

	if (admit > 0 || (admit < 0 && !api_cfg.rl_fail_open)) {
		if (admit < 0) {
			http_response_header(req, "retry-after", "1");
			(void)api_error(req, 503, "rate_limiter_unavailable",
			    "stream limits need Redis, which is unavailable");
			return (HTTP_STATE_COMPLETE);
		}
		api_metrics_count(MC_RATE_LIMITED);
		http_response_header(req, "retry-after", "5");
		(void)api_error(req, 429, "too_many_streams",
		    "too many open streams for this %s (at most %d)",
		    admit == 1 ? "IP address" : "caller", admit == 1 ?
		    api_cfg.stream_max_per_ip : api_cfg.stream_max_per_key);
		return (HTTP_STATE_COMPLETE);
	}
	ctx->stream = NULL;	/* the stream's own from here */
	(void)stream_open(ctx, sc);
	return (HTTP_STATE_COMPLETE);
}

static struct http_state stream_states[] = {
	KORE_HTTP_STATE(stream_args),
	KORE_HTTP_STATE(stream_token_checked),
	KORE_HTTP_STATE(stream_gate),
	KORE_HTTP_STATE(stream_admitted),
};

/* GET /prices/stream */
int
api_prices_stream(struct http_request *req)
{
	return (API_RUN(req, ROUTE_STREAM, stream_states));
}

void
api_stream_init(void)
{
	stream_fanout_init();
	stream_replay_init();
}
