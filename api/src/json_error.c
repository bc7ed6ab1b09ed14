/*
 * api/src/json_error.c
 *	The one way errors leave the API: {"error":{"code","message"}} with
 *	the right status, and the mapping of the database's SQLSTATEs to
 *	HTTP statuses (docs/errors.md is the table this follows).
 *
 * JSON is written with jansson: Kore 4.1's kore_json_item_tobuf() does
 * not escape strings, and messages carry user input ("invalid symbol
 * \"x\"").
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

struct sqlstate_map {
	const char	*sqlstate;	/* 5 characters, or 2 for a class */
	int		 status;
	const char	*code;
};

/* First match wins: exact codes before classes. */
static const struct sqlstate_map sqlstate_map[] = {
	{ "MD001", 404, "no_price" },
	{ "MD100", 404, "unknown_symbol" },
	{ "MD101", 404, "no_data" },
	{ "MD102", 503, "provider_rate_limited" },
	{ "MD103", 502, "provider_auth_failed" },
	{ "MD104", 503, "provider_unavailable" },
	{ "MD105", 502, "provider_malformed" },
	{ "23505", 409, "conflict" },
	{ "42501", 403, "forbidden" },
	{ "57014", 503, "database_timeout" },
	{ "53300", 503, "database_unavailable" },
	{ "57P", 503, "database_unavailable" },
	{ "08", 503, "database_unavailable" },
	{ "22", 400, "invalid_argument" },
	{ NULL, 0, NULL }
};

void
api_json(struct http_request *req, int status, const void *body, size_t len)
{
	http_response_header(req, "content-type", "application/json");
	if (api_draining)
		http_response_header(req, "connection", "close");
	http_response(req, status, body, len);
}

/*
 * Replaces every byte that does not start a valid UTF-8 sequence with
 * '?', in place: messages quote the client's path, method or symbol, and
 * jansson refuses a string that is not UTF-8 (the worker then died on its
 * fatal(): a request with a byte 0xff in its path stopped a worker; found
 * by test/t/090_fuzz_servers.pl). A cut at the end of the buffer is
 * replaced too.
 */
static void
utf8_clean(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	int		 n, i;
	u_int32_t	 cp;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else {
			*p++ = '?';
			continue;
		}
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				break;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* short, overlong, a surrogate or beyond U+10FFFF */
		if (i <= n || (n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || (cp >= 0xd800 && cp <= 0xdfff) ||
		    cp > 0x10ffff) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

int
api_error(struct http_request *req, int status, const char *code,
    const char *fmt, ...)
{
	json_t		*root;
	char		 msg[512], *text;
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_clean(msg);

	root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
	    msg);
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (text == NULL)
		fatal("api_error: cannot build the error body");
	api_json(req, status, text, strlen(text));
	free(text);
	json_decref(root);

	return (KORE_RESULT_OK);
}

/* The mapping of a SQLSTATE (docs/errors.md), NULL when it has none. */
static const struct sqlstate_map *
sqlstate_find(const char *sqlstate)
{
	const struct sqlstate_map	*m;

	for (m = sqlstate_map; m->sqlstate != NULL; m++) {
		if (!strncmp(sqlstate, m->sqlstate, strlen(m->sqlstate)))
			return (m);
	}
	return (NULL);
}

/*
 * Seconds to wait after an error of that SQLSTATE: MD102's DETAIL
 * "Retry after N s.", 1 for the other 503s, 0 for the rest.
 */
int
api_sqlstate_retry(const char *sqlstate, const char *detail)
{
	const struct sqlstate_map	*m = sqlstate_find(sqlstate);
	int				 secs;

	if (m == NULL)
		return (0);
	if (!strcmp(m->sqlstate, "MD102")) {
		secs = 60;
		if (detail != NULL)
			(void)sscanf(detail, "Retry after %d s", &secs);
		return (secs < 1 ? 1 : secs);
	}
	return (m->status == 503 ? 1 : 0);
}

/*
 * Answers an error of the database (or one cached from it): the status
 * and code its SQLSTATE maps to, Retry-After on a 503.
 */
int
api_sqlstate_error(struct http_request *req, const char *sqlstate,
    const char *detail, const char *msg)
{
	const struct sqlstate_map	*m = sqlstate_find(sqlstate);
	char				 retry[16];
	int				 secs;

	if (m == NULL) {
		kore_log(LOG_ERR, "database error %s: %s", sqlstate, msg);
		return (api_error(req, 500, "internal",
		    "internal error (SQLSTATE %s)", sqlstate));
	}
	secs = api_sqlstate_retry(sqlstate, detail);
	if (m->status == 503) {
		(void)snprintf(retry, sizeof(retry), "%d", secs);
		http_response_header(req, "retry-after", retry);
	}
	return (api_error(req, m->status, m->code, "%s", msg));
}

/* Answers the database error in ctx->db with the status its SQLSTATE maps to. */
int
api_db_error(struct api_ctx *ctx)
{
	api_metrics_count(MC_DB_ERROR);
	if (ctx->db.sqlstate[0] == '\0') {
		/* no SQLSTATE: the connection failed, the server is gone */
		kore_log(LOG_NOTICE, "database: %s",
		    ctx->db.message ? ctx->db.message : "unknown error");
		http_response_header(ctx->req, "retry-after", "1");
		return (api_error(ctx->req, 503, "database_unavailable",
		    "the database is unavailable"));
	}
	return (api_sqlstate_error(ctx->req, ctx->db.sqlstate, ctx->db.detail,
	    ctx->db.message != NULL ? ctx->db.message : "database error"));
}

/*
 * Whether to take a new request: 503 while shutting down, 405 unless its
 * method is one of the allowed ones.
 */
int
api_method(struct http_request *req, int allowed)
{
	if (api_draining) {
		api_error(req, 503, "shutting_down",
		    "the server is shutting down");
		return (KORE_RESULT_ERROR);
	}
	if (req->method & allowed)
		return (KORE_RESULT_OK);
	api_error(req, 405, "method_not_allowed", "method %s not allowed on %s",
	    http_method_text(req->method), req->path);
	return (KORE_RESULT_ERROR);
}
