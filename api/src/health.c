/*
 * api/src/health.c
 *	GET /health (liveness), GET /health/ready (readiness), the OpenAPI
 *	document and the answer for routes that do not exist.
 *
 * Readiness: the database (a query to md._api_ready(), which also reports
 * Kafka from md.worker_status and each provider), and Redis (PING). The
 * status is "ok", "degraded" when Redis is down (answers then come from
 * the database) or "down" with 503 when the database is unreachable.
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
	} else if (!ctx->redis_ok) {
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
	check(root, "redis", ctx->redis_ok ? "ok" : "down",
	    ctx->redis_ok ? ctx->redis_us / 1000.0 : -1,
	    ctx->redis_ok ? NULL : "Redis is unreachable: answers come "
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
	http_response_header(ctx->req, "cache-control", "no-store");
	api_json(ctx->req, code, text, strlen(text));
	free(text);
	return (KORE_RESULT_OK);
}

int
api_ready(struct http_request *req)
{
	struct api_ctx	*ctx = api_ctx_get(req, ROUTE_READY);

	switch (ctx->step) {
	case 0:
		if (!api_method(req, HTTP_METHOD_GET))
			return (KORE_RESULT_OK);
		ctx->step = 1;
		if (api_redis_ping(ctx))
			return (KORE_RESULT_RETRY);
		/* FALLTHROUGH */
	case 1:
		ctx->step = 2;
		return (api_db_start(ctx, API_DB_PRIMARY,
		    "SELECT md._api_ready()", 0, NULL) == HTTP_STATE_RETRY ?
		    KORE_RESULT_RETRY : KORE_RESULT_OK);
	default:
		return (ready_answer(ctx));
	}
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
	return (api_error(req, 404, "not_found", "no route %.100s",
	    req->path));
}
