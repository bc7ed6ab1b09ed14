/*
 * api/src/json_error.c
 *	The one way errors leave the API: {"error":{"code","message"}} with
 *	the right status, and the mapping of the database's SQLSTATEs to
 *	HTTP statuses (docs/errors.md is the table this follows).
 *
 * JSON is written with jansson: Kore 4.1's kore_json_item_tobuf() does
 * not escape strings, and messages carry user input ("invalid symbol
 * \"x\""). jansson refuses strings that are not UTF-8, and user input
 * (a path with a byte 0xff, a name cut by "%.40s" inside a character)
 * need not be: the message is made valid first, never refused.
 */

#include <stdarg.h>
#include <stdint.h>
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

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
utf8_sequence(const unsigned char *s, size_t n)
{
	size_t		len, i;
	uint32_t	cp;

	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return (0);
	}
	if (n < len)
		return (0);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return (0);
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return (0);
	return (len);
}

int
api_utf8_valid(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), len;

	while (n > 0) {
		if ((len = utf8_sequence(p, n)) == 0)
			return (0);
		p += len;
		n -= len;
	}
	return (1);
}

/*
 * in as valid UTF-8 into out (outlen >= 3 * strlen(in) + 1): a byte that
 * starts no valid character becomes U+FFFD; a character cut at the very
 * end (a message truncated to its buffer) is dropped.
 */
static void
utf8_clean(const char *in, char *out, size_t outlen)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 n = strlen(in), len, o = 0, tail;

	while (n > 0 && o + 4 <= outlen) {
		if ((len = utf8_sequence(p, n)) > 0) {
			memcpy(out + o, p, len);
			o += len;
			p += len;
			n -= len;
			continue;
		}
		/* continuation bytes up to the end: a character cut short */
		for (tail = 1; tail < n && (p[tail] & 0xc0) == 0x80; tail++)
			;
		if (tail == n && p[0] >= 0xc2 && p[0] <= 0xf4 && n < 4)
			break;
		memcpy(out + o, "\xef\xbf\xbd", 3);
		o += 3;
		p++;
		n--;
	}
	out[o] = '\0';
}

void
api_json(struct http_request *req, int status, const void *body, size_t len)
{
	http_response_header(req, "content-type", "application/json");
	if (api_draining)
		http_response_header(req, "connection", "close");
	http_response(req, status, body, len);
}

int
api_error(struct http_request *req, int status, const char *code,
    const char *fmt, ...)
{
	json_t		*root;
	char		 raw[512], msg[3 * sizeof(raw) + 1], *text;
	va_list		 ap;
	static const char	 fallback[] =
	    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

	va_start(ap, fmt);
	(void)vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	utf8_clean(raw, msg, sizeof(msg));

	root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
	    msg);
	text = root ? json_dumps(root, JSON_COMPACT) : NULL;
	if (text == NULL) {
		/* only memory can fail here: the request's content cannot */
		kore_log(LOG_ERR, "api_error: cannot build the error body");
		api_json(req, 500, fallback, sizeof(fallback) - 1);
	} else {
		api_json(req, status, text, strlen(text));
	}
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
 * Whether to take a new request: 503 while shutting down, 405 (with the
 * Allow header) unless its method is one of the allowed ones. HEAD is
 * allowed wherever GET is: Kore sends the headers without the body.
 */
int
api_method(struct http_request *req, int allowed)
{
	static const struct { int method; const char *name; } names[] = {
		{ HTTP_METHOD_GET, "GET" }, { HTTP_METHOD_HEAD, "HEAD" },
		{ HTTP_METHOD_POST, "POST" }, { HTTP_METHOD_PUT, "PUT" },
		{ HTTP_METHOD_DELETE, "DELETE" }, { HTTP_METHOD_PATCH, "PATCH" },
	};
	char	allow[64];
	size_t	i, used = 0;
	int	n;

	if (api_draining) {
		api_error(req, 503, "shutting_down",
		    "the server is shutting down");
		return (KORE_RESULT_ERROR);
	}
	if (allowed & HTTP_METHOD_GET)
		allowed |= HTTP_METHOD_HEAD;
	if (req->method & allowed)
		return (KORE_RESULT_OK);
	allow[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!(allowed & names[i].method))
			continue;
		n = snprintf(allow + used, sizeof(allow) - used, "%s%s",
		    used > 0 ? ", " : "", names[i].name);
		if (n > 0 && (size_t)n < sizeof(allow) - used)
			used += (size_t)n;
	}
	http_response_header(req, "allow", allow);
	api_error(req, 405, "method_not_allowed", "method %s not allowed on %s",
	    http_method_text(req->method), req->path);
	return (KORE_RESULT_ERROR);
}
