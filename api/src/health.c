/*
 * api/src/health.c
 *	GET /health (liveness), GET /health/ready (readiness), the OpenAPI
 *	document and the answer for routes that do not exist.
 *
 * Readiness: the database (a query to md._api_ready(), which also reports
 * Kafka from md.worker_status and each provider), the read database when
 * MD_API_DATABASE_READ_URL names one (a replica: history and averages),
 * and Redis (PING). The status is "ok", "degraded" when Redis is down
 * (answers then come from the database) or the read database is (history
 * and averages fail), or "down" with 503 when the database is unreachable.
 * The route is public, so each worker keeps its answer for
 * MD_API_READY_CACHE_MS: a flood of probes costs the database one query
 * per worker in that time.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"

int	api_health(struct http_request *);
int	api_ready(struct http_request *);
int	api_openapi(struct http_request *);
int	api_not_found(struct http_request *);

/* the OpenAPI document, built into the module from assets/ by kodev */
extern const u_int8_t	asset_openapi_json[];
extern const u_int32_t	asset_len_openapi_json;

int
api_health(struct http_request *req)
{
	static const char	body[] = "{\"status\":\"ok\"}";

	(void)api_ctx_get(req, ROUTE_HEALTH);
	if (!api_method(req, HTTP_METHOD_GET))
		return (KORE_RESULT_OK);
	api_json(req, 200, body, sizeof(body) - 1);
	return (KORE_RESULT_OK);
}

static void
check(json_t *root, const char *name, const char *status, double ms,
    const char *error)
{
	json_t	*o;

	o = json_object();
	json_object_set_new(o, "status", json_string(status));
	if (ms >= 0)
		json_object_set_new(o, "latency_ms", json_real(ms));
	if (error != NULL)
		json_object_set_new(o, "error", json_string(error));
	json_object_set_new(root, name, o);
}

/* the last readiness answer of this worker */
static struct {
	char		*body;
	size_t		 len;
	int		 code;
	u_int64_t	 until;		/* ms */
} ready_cache;

static void
ready_send(struct http_request *req, int code, const char *body, size_t len,
    int hit)
{
	http_response_header(req, "cache-control", "no-store");
	http_response_header(req, "x-cache", hit ? "HIT" : "MISS");
	api_json(req, code, body, len);
}

static void
ready_keep(int code, char *text)
{
	if (api_cfg.ready_cache_ms <= 0) {
		free(text);
		return;
	}
	free(ready_cache.body);
	ready_cache.body = text;
	ready_cache.len = strlen(text);
	ready_cache.code = code;
	ready_cache.until = kore_time_ms() + (u_int64_t)api_cfg.ready_cache_ms;
}

/* a read database of its own (not the primary's URL) */
static int
ready_has_read_db(void)
{
	return (strcmp(api_cfg.db_read_url, api_cfg.db_url) != 0);
}

static int
ready_answer(struct api_ctx *ctx)
{
	json_t		*root, *db;
	const char	*status, *k;
	json_t		*v;
	char		*text;
	int		 code;

	if (!ctx->db.ok) {
		status = "down";
		code = 503;
	} else if (!ctx->redis.ok ||
	    (ready_has_read_db() && !ctx->read_db.ok)) {
		status = "degraded";
		code = 200;
	} else {
		status = "ok";
		code = 200;
	}
	root = json_object();
	json_object_set_new(root, "status", json_string(status));
	check(root, "database", ctx->db.ok ? "ok" : "down",
	    ctx->db.ok ? ctx->db_us / 1000.0 : -1,
	    ctx->db.ok ? NULL : "the database is unreachable");
	if (ready_has_read_db()) {
		check(root, "replica", ctx->read_db.ok ? "ok" : "down",
		    ctx->read_db.ok ? ctx->read_db_us / 1000.0 : -1,
		    ctx->read_db.ok ? NULL : "the read database is unreachable: "
		    "history and averages fail");
		if (ctx->read_db.ok && ctx->read_db.value != NULL)
			json_object_set_new(json_object_get(root, "replica"),
			    "in_recovery",
			    json_boolean(!strcmp(ctx->read_db.value, "t")));
	}
	check(root, "redis", ctx->redis.ok ? "ok" : "down",
	    ctx->redis.ok ? ctx->redis.us / 1000.0 : -1,
	    ctx->redis.ok ? NULL : "Redis is unreachable: answers come "
	    "from the database");

	/* kafka and providers, as the database reported them */
	if (ctx->db.ok && ctx->db.value != NULL &&
	    (db = json_loads(ctx->db.value, 0, NULL)) != NULL) {
		json_object_foreach(db, k, v)
			json_object_set(root, k, v);
		json_decref(db);
	}

	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(4));
	json_decref(root);
	ready_send(ctx->req, code, text, strlen(text), 0);
	ready_keep(code, text);
	return (KORE_RESULT_OK);
}

static int
ready_redis(struct http_request *req)
{
	if (!api_method(req, HTTP_METHOD_GET))
		return (HTTP_STATE_COMPLETE);
	if (ready_cache.body != NULL && ready_cache.until > kore_time_ms()) {
		ready_send(req, ready_cache.code, ready_cache.body,
		    ready_cache.len, 1);
		return (HTTP_STATE_COMPLETE);
	}
	req->fsm_state++;
	return (api_redis_ping(req->hdlr_extra) ? HTTP_STATE_RETRY :
	    HTTP_STATE_CONTINUE);
}

static int
ready_read_database(struct http_request *req)
{
	req->fsm_state++;
	if (!ready_has_read_db())
		return (HTTP_STATE_CONTINUE);
	return (api_db_start(req->hdlr_extra, API_DB_READ,
	    "SELECT pg_is_in_recovery()", 0, NULL));
}

static int
ready_database(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	/* the read database's answer, if any, kept apart */
	ctx->read_db = ctx->db;
	ctx->read_db_us = ctx->db_us;
	memset(&ctx->db, 0, sizeof(ctx->db));
	req->fsm_state++;
	return (api_db_start(ctx, API_DB_PRIMARY,
	    "SELECT md._api_ready()", 0, NULL));
}

static int
ready_answered(struct http_request *req)
{
	(void)ready_answer(req->hdlr_extra);
	return (HTTP_STATE_COMPLETE);
}

static struct http_state ready_states[] = {
	KORE_HTTP_STATE(ready_redis),
	KORE_HTTP_STATE(ready_read_database),
	KORE_HTTP_STATE(ready_database),
	KORE_HTTP_STATE(ready_answered),
};

/* GET /health/ready: Redis, the read database, the database, the answer */
int
api_ready(struct http_request *req)
{
	return (API_RUN(req, ROUTE_READY, ready_states));
}

int
api_openapi(struct http_request *req)
{
	(void)api_ctx_get(req, ROUTE_OPENAPI);
	if (!api_method(req, HTTP_METHOD_GET))
		return (KORE_RESULT_OK);
	api_json(req, 200, asset_openapi_json, asset_len_openapi_json);
	return (KORE_RESULT_OK);
}

int
api_not_found(struct http_request *req)
{
	(void)api_ctx_get(req, ROUTE_OTHER);
	if (!api_utf8_valid(req->path))
		return (api_error(req, 400, "invalid_path",
		    "the path is not valid UTF-8"));
	return (api_error(req, 404, "not_found", "no route %.100s",
	    req->path));
}
