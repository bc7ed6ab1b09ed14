/*
 * api/src/stream_replay.c
 *	A stream's resume: what followed an event id, from
 *	md._api_stream_replay(), while live events are held (stream.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

static const char q_replay[] =
    "SELECT md._api_stream_replay($1::text[], $2, $3::int, $4::int)";

/* An id's parts; KORE_RESULT_ERROR when it is not one of ours. */
int
stream_id_parse(const char *id, int64_t *ts, char *provider, size_t plen,
    char *symbol, size_t slen)
{
	char		 buf[ID_LEN], *a, *b, *end;
	long long	 v;

	if (kore_strlcpy(buf, id, sizeof(buf)) >= sizeof(buf))
		return (KORE_RESULT_ERROR);
	if ((a = strchr(buf, ':')) == NULL || (b = strchr(a + 1, ':')) == NULL)
		return (KORE_RESULT_ERROR);
	*a++ = '\0';
	*b++ = '\0';
	v = strtoll(buf, &end, 10);
	if (*end != '\0' || end == buf || v < 0 || !api_provider_ok(a) ||
	    !api_symbol_normalize(b, symbol, slen) || strcmp(symbol, b))
		return (KORE_RESULT_ERROR);
	*ts = v;
	(void)kore_strlcpy(provider, a, plen);
	return (KORE_RESULT_OK);
}

static void
replay_line(struct stream_client *sc, char *line)
{
	struct stream_event	 ev;
	struct stream_sub	*sub;
	char			*sp, symbol[40];

	if ((sp = strchr(line, ' ')) == NULL)
		return;
	*sp = '\0';
	memset(&ev, 0, sizeof(ev));
	if (!stream_id_parse(line, &ev.ts, ev.provider, sizeof(ev.provider),
	    symbol, sizeof(symbol)) || (sub = stream_sub_find(sc, symbol)) == NULL)
		return;
	(void)kore_strlcpy(ev.id, line, sizeof(ev.id));
	ev.symbol = sub->symbol;
	ev.json = sp + 1;
	ev.len = strlen(sp + 1);
	stream_deliver(sub, &ev);
	stream_event_cleanup(&ev);
}

static void
replay_done(struct api_dbres *res, void *arg)
{
	struct stream_client	*sc = arg;
	char			*line, *next;
	int			 partial = 1;

	sc->replaying = 0;
	if (sc->gone) {
		api_dbres_clear(res);
		stream_client_close(sc, NULL);
		return;
	}
	if (!res->ok || res->isnull) {
		stream_emit_control(sc, "replay", "{\"complete\":false,"
		    "\"reason\":\"database_unavailable\"}");
	} else {
		for (line = res->value; line != NULL; line = next) {
			if ((next = strchr(line, '\n')) != NULL)
				*next++ = '\0';
			if (line == res->value)
				partial = strcmp(line, "complete") != 0;
			else
				replay_line(sc, line);
		}
		stream_emit_control(sc, "replay", partial ?
		    "{\"complete\":false}" : "{\"complete\":true}");
	}
	api_dbres_clear(res);
	stream_release_held(sc);
	if (sc->replay_again) {
		sc->replay_again = 0;
		stream_replay_start(sc, sc->last_id);
	}
}

/* Replays what followed after (an id, or "@<µs>" of ingestion). */
void
stream_replay_start(struct stream_client *sc, const char *after)
{
	struct kore_buf	 syms;
	const char	*params[4];
	char		 window[16], max[16];
	int		 i;

	if (sc->replaying) {
		sc->replay_again = 1;
		return;
	}
	if (sc->nsubs == 0)
		return;
	kore_buf_init(&syms, 256);
	kore_buf_append(&syms, "{", 1);
	for (i = 0; i < sc->nsubs; i++)
		kore_buf_appendf(&syms, "%s\"%s\"", i ? "," : "",
		    sc->subs[i]->symbol);
	kore_buf_append(&syms, "}", 2);	/* and the NUL */
	(void)snprintf(window, sizeof(window), "%d",
	    api_cfg.stream_replay_window);
	(void)snprintf(max, sizeof(max), "%d", REPLAY_MAX_EVENTS);
	params[0] = (const char *)syms.data;
	params[1] = after;
	params[2] = window;
	params[3] = max;
	sc->replaying = 1;
	api_db_query(API_DB_PRIMARY, q_replay, 4, params, replay_done, sc);
	kore_buf_cleanup(&syms);
}

/*
 * The subscription is back: each stream replays what was published while
 * the worker did not listen, from its last event, or from a second before
 * it opened when it had none.
 */
static void
resubscribed(int up)
{
	struct stream_client	*sc;
	char			 since[32];

	if (!up)
		return;
	for (sc = stream_clients(); sc != NULL; sc = TAILQ_NEXT(sc, list)) {
		if (sc->last_id[0] != '\0') {
			stream_replay_start(sc, sc->last_id);
		} else {
			(void)snprintf(since, sizeof(since), "@%llu",
			    (unsigned long long)(sc->opened_us - 1000000));
			stream_replay_start(sc, since);
		}
	}
}

void
stream_replay_init(void)
{
	/* after stream_fanout_init's: streams hear "up" before the replay */
	api_redis_on_publish(NULL, resubscribed);
}
