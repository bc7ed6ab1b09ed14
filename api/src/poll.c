/*
 * api/src/poll.c
 *	POST /prices/poll, GET and DELETE /prices/poll/{job_id}.
 *
 * A *job* is a row of md.polling_jobs; the API names it "poll_<id>".
 * The body of POST is checked field by field here (kore_json): an object
 * with exactly symbols (1-500 valid symbols), interval (whole seconds,
 * 1-86400) and provider (a provider name); anything else is refused. The
 * database then checks what only it knows (the provider exists, no
 * duplicate symbols) through md._api_poll_create().
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

int	api_poll_create(struct http_request *);
int	api_poll_job(struct http_request *);

#define POLL_SYMBOLS_MAX	500

static int
body_error(struct http_request *req, const char *fmt, const char *what)
{
	return (api_error(req, 400, "invalid_body", fmt, what));
}

/* Checks the body; fills ctx->args.arg[0..2]. KORE_RESULT_ERROR: answered. */
static int
poll_body(struct api_ctx *ctx)
{
	struct http_request	*req = ctx->req;
	struct kore_json	 json;
	struct kore_json_item	*item, *s;
	json_t			*arr;
	char			*body, *text, sym[40], num[32];
	ssize_t			 n;
	int			 have_s, have_i, have_p, count;
	int64_t			 interval;

	if (req->content_length > api_cfg.body_max)
		return (api_error(req, 413, "body_too_large",
		    "the body has more than %zu bytes", api_cfg.body_max),
		    KORE_RESULT_ERROR);
	body = kore_malloc(api_cfg.body_max + 1);
	n = http_body_read(req, body, api_cfg.body_max + 1);
	if (n < 0) {
		kore_free(body);
		return (body_error(req, "%s", "cannot read the body"),
		    KORE_RESULT_ERROR);
	}
	if ((size_t)n > api_cfg.body_max) {
		kore_free(body);
		return (api_error(req, 413, "body_too_large",
		    "the body has more than %zu bytes", api_cfg.body_max),
		    KORE_RESULT_ERROR);
	}

	kore_json_init(&json, body, n);
	if (!kore_json_parse(&json)) {
		kore_free(body);
		body_error(req, "malformed JSON: %s", kore_json_strerror(&json));
		kore_json_cleanup(&json);
		return (KORE_RESULT_ERROR);
	}
	kore_free(body);
	if (json.root->type != KORE_JSON_TYPE_OBJECT) {
		kore_json_cleanup(&json);
		return (body_error(req, "%s", "the body must be a JSON object"),
		    KORE_RESULT_ERROR);
	}

	have_s = have_i = have_p = 0;
	interval = 0;
	arr = json_array();

	TAILQ_FOREACH(item, &json.root->data.items, list) {
		if (!strcmp(item->name, "symbols") && !have_s) {
			have_s = 1;
			if (item->type != KORE_JSON_TYPE_ARRAY) {
				body_error(req, "%s", "symbols must be an "
				    "array of strings");
				goto bad;
			}
			count = 0;
			TAILQ_FOREACH(s, &item->data.items, list) {
				if (s->type != KORE_JSON_TYPE_STRING) {
					body_error(req, "%s", "symbols must be "
					    "an array of strings");
					goto bad;
				}
				if (!api_symbol_normalize(s->data.string, sym,
				    sizeof(sym))) {
					api_error(req, 400, "invalid_body",
					    "invalid symbol \"%.40s\"",
					    s->data.string);
					goto bad;
				}
				json_array_append_new(arr, json_string(sym));
				count++;
			}
			if (count < 1 || count > POLL_SYMBOLS_MAX) {
				body_error(req, "%s", "symbols must have 1 to "
				    "500 symbols");
				goto bad;
			}
		} else if (!strcmp(item->name, "interval") && !have_i) {
			have_i = 1;
			if (item->type == KORE_JSON_TYPE_INTEGER_U64 &&
			    item->data.u64 <= 86400)
				interval = (int64_t)item->data.u64;
			else if (item->type == KORE_JSON_TYPE_INTEGER)
				interval = item->data.s64;
			else if (item->type != KORE_JSON_TYPE_INTEGER_U64) {
				body_error(req, "%s", "interval must be a "
				    "whole number of seconds");
				goto bad;
			}
			if (interval < 1 || interval > 86400) {
				body_error(req, "%s", "interval must be "
				    "between 1 and 86400 seconds");
				goto bad;
			}
		} else if (!strcmp(item->name, "provider") && !have_p) {
			have_p = 1;
			if (item->type != KORE_JSON_TYPE_STRING ||
			    !api_provider_ok(item->data.string)) {
				body_error(req, "%s", "provider must be a "
				    "provider name (lower-case letters, digits, _)");
				goto bad;
			}
			ctx->args.arg[2] = kore_strdup(item->data.string);
		} else {
			api_error(req, 400, "invalid_body",
			    "unknown or repeated field \"%.40s\"", item->name);
			goto bad;
		}
	}
	if (!have_s || !have_i || !have_p) {
		body_error(req, "missing field: %s", !have_s ? "symbols" :
		    !have_i ? "interval" : "provider");
		goto bad;
	}

	text = json_dumps(arr, JSON_COMPACT);
	ctx->args.arg[0] = kore_strdup(text);
	free(text);
	(void)snprintf(num, sizeof(num), "%lld", (long long)interval);
	ctx->args.arg[1] = kore_strdup(num);
	json_decref(arr);
	kore_json_cleanup(&json);
	return (KORE_RESULT_OK);

bad:
	json_decref(arr);
	kore_json_cleanup(&json);
	return (KORE_RESULT_ERROR);
}

static const struct api_query q_create = {
	ROLE_WRITER, API_DB_PRIMARY,
	"SELECT md._api_poll_create("
	"ARRAY(SELECT jsonb_array_elements_text($1::jsonb)), $2::int, $3)",
	3, 202, "no_such_job", "no polling job", 1
};

static const struct api_query q_get = {
	ROLE_WRITER, API_DB_PRIMARY,
	"SELECT md._api_poll_get($1::bigint)", 1, 200,
	"no_such_job", "no polling job", 1
};

static const struct api_query q_delete = {
	ROLE_WRITER, API_DB_PRIMARY,
	"SELECT md._api_poll_delete($1::bigint)", 1, 200,
	"no_such_job", "no polling job", 1
};

static int
create_start(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!api_method(req, HTTP_METHOD_POST))
		return (HTTP_STATE_COMPLETE);
	/* who asks comes before what is asked: the gate, then the body */
	ctx->args.query = &q_create;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
create_body(struct http_request *req)
{
	if (!poll_body(req->hdlr_extra))
		return (HTTP_STATE_COMPLETE);
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
job_id(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	const char	*id, *p;

	if (!api_method(req, HTTP_METHOD_GET | HTTP_METHOD_DELETE))
		return (HTTP_STATE_COMPLETE);
	id = req->path + strlen("/prices/poll/");
	(void)kore_strlcpy(ctx->args.symbol, id, sizeof(ctx->args.symbol));
	if (strncmp(id, "poll_", 5) || strlen(id) < 6 || strlen(id) > 23) {
		(void)api_error(req, 404, "no_such_job", "no polling job "
		    "\"%.40s\" (job ids look like poll_42)", id);
		return (HTTP_STATE_COMPLETE);
	}
	for (p = id + 5; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			(void)api_error(req, 404, "no_such_job", "no polling "
			    "job \"%.40s\" (job ids look like poll_42)", id);
			return (HTTP_STATE_COMPLETE);
		}
	}
	ctx->args.arg[0] = kore_strdup(id + 5);
	ctx->args.query = req->method == HTTP_METHOD_DELETE ? &q_delete : &q_get;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static struct http_state create_states[] = {
	KORE_HTTP_STATE(create_start),
	KORE_HTTP_STATE(api_route_gate),
	KORE_HTTP_STATE(create_body),
	KORE_HTTP_STATE(api_route_query),
	KORE_HTTP_STATE(api_route_answer),
};

static struct http_state job_states[] = {
	KORE_HTTP_STATE(job_id),
	KORE_HTTP_STATE(api_route_gate),
	KORE_HTTP_STATE(api_route_query),
	KORE_HTTP_STATE(api_route_answer),
};

/* POST /prices/poll */
int
api_poll_create(struct http_request *req)
{
	return (API_RUN(req, ROUTE_POLL, create_states));
}

/* GET and DELETE /prices/poll/{job_id} */
int
api_poll_job(struct http_request *req)
{
	return (API_RUN(req, ROUTE_POLL_JOB, job_states));
}
