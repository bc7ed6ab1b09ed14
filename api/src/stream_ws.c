/*
 * api/src/stream_ws.c
 *	A stream over a WebSocket: Kore's callbacks, and the client's
 *	{"action":"subscribe"|"unsubscribe","symbols":[...]} messages,
 *	answered with the whole set ("subscribed") or an "error" that never
 *	closes the socket.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stream.h"

void	api_stream_ws_connect(struct connection *);
void	api_stream_ws_message(struct connection *, u_int8_t, const void *,
	    size_t);
void	api_stream_ws_disconnect(struct connection *);

void
api_stream_ws_connect(struct connection *c)
{
	(void)c;
}

void
api_stream_ws_disconnect(struct connection *c)
{
	struct stream_client	*sc = c->hdlr_extra;

	if (sc != NULL)
		stream_client_close(sc, NULL);
}

static void
ws_error(struct stream_client *sc, const char *msg)
{
	json_t	*j;
	char	*text;

	j = json_pack("{s:s}", "message", msg);
	text = json_dumps(j, JSON_COMPACT);
	stream_emit_control(sc, "error", text);
	free(text);
	json_decref(j);
}

void
stream_ws_subscribed(struct stream_client *sc)
{
	struct kore_buf	b;
	int		i;

	kore_buf_init(&b, 256);
	kore_buf_append(&b, "{\"symbols\":[", 12);
	for (i = 0; i < sc->nsubs; i++)
		kore_buf_appendf(&b, "%s\"%s\"", i ? "," : "",
		    sc->subs[i]->symbol);
	kore_buf_append(&b, "]}", 3);
	stream_emit_control(sc, "subscribed", (const char *)b.data);
	kore_buf_cleanup(&b);
}

/* {"action":"subscribe"|"unsubscribe","symbols":[...]} */
void
api_stream_ws_message(struct connection *c, u_int8_t op, const void *data,
    size_t len)
{
	struct stream_client	*sc = c->hdlr_extra;
	json_t			*root, *syms, *s;
	json_error_t		 err;
	const char		*action;
	char			 symbol[40], msg[128];
	size_t			 i;
	int			 sub, added = 0;

	if (sc == NULL || op != WEBSOCKET_OP_TEXT)
		return;
	if ((root = json_loadb(data, len, 0, &err)) == NULL) {
		ws_error(sc, "messages are JSON: {\"action\":\"subscribe\","
		    "\"symbols\":[\"AAPL\"]}");
		return;
	}
	action = json_string_value(json_object_get(root, "action"));
	syms = json_object_get(root, "symbols");
	if (action == NULL || (strcmp(action, "subscribe") &&
	    strcmp(action, "unsubscribe")) || !json_is_array(syms) ||
	    json_array_size(syms) == 0) {
		ws_error(sc, "action is subscribe or unsubscribe, with a "
		    "non-empty symbols array");
		json_decref(root);
		return;
	}
	sub = !strcmp(action, "subscribe");
	json_array_foreach(syms, i, s) {
		if (!json_is_string(s) || !api_symbol_normalize(
		    json_string_value(s), symbol, sizeof(symbol))) {
			(void)snprintf(msg, sizeof(msg), "symbol %zu is not a "
			    "valid symbol (\"*\" is not allowed)", i + 1);
			ws_error(sc, msg);
			json_decref(root);
			return;
		}
	}
	if (sub && sc->nsubs + json_array_size(syms) >
	    (size_t)api_cfg.stream_max_symbols) {
		/* a lower bound: symbols already followed count twice */
		(void)snprintf(msg, sizeof(msg), "at most %d symbols per "
		    "stream", api_cfg.stream_max_symbols);
		ws_error(sc, msg);
		json_decref(root);
		return;
	}
	json_array_foreach(syms, i, s) {
		(void)api_symbol_normalize(json_string_value(s), symbol,
		    sizeof(symbol));
		if (!sub)
			stream_sub_remove(sc, symbol);
		else if (stream_sub_find(sc, symbol) == NULL)
			added += stream_sub_add(sc, symbol);
	}
	json_decref(root);
	stream_ws_subscribed(sc);
}
