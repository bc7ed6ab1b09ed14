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
#include <string.h>

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
	if (api_draining)
		return (api_error(req, 503, "shutting_down",
		    "the server is shutting down"));
	api_json(req, 200, body, sizeof(body) - 1);
	return (KORE_RESULT_OK);
}

static struct kore_json_item *
check(struct kore_json_item *root, const char *name, const char *status,
    double ms, const char *error)
{
	struct kore_json_item	*o;

	o = kore_json_create_object(root, name);
	kore_json_create_string(o, "status", status);
	if (ms >= 0)
		kore_json_create_number(o, "latency_ms", ms);
	if (error != NULL)
		kore_json_create_string(o, "error", error);
	return (o);
}

static int
ready_answer(struct api_ctx *ctx)
{
	struct kore_json_item	*root, *item;
	struct kore_json	 dbjson;
	struct kore_buf		 buf;
	const char		*status;
	int			 code, parsed;

	root = kore_json_create_object(NULL, NULL);
	parsed = 0;
	if (ctx->db.ok && ctx->db.value != NULL) {
		kore_json_init(&dbjson, ctx->db.value, strlen(ctx->db.value));
		parsed = kore_json_parse(&dbjson) &&
		    dbjson.root->type == KORE_JSON_TYPE_OBJECT;
	}

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
	kore_json_create_string(root, "status", status);
	check(root, "database", ctx->db.ok ? "ok" : "down",
	    ctx->db.ok ? ctx->db_us / 1000.0 : -1,
	    ctx->db.ok ? NULL : "the database is unreachable");
	check(root, "redis", ctx->redis_ok ? "ok" : "down",
	    ctx->redis_ok ? ctx->redis_us / 1000.0 : -1,
	    ctx->redis_ok ? NULL : "Redis is unreachable: answers come "
	    "from the database");

	/* kafka and providers, as the database reported them */
	if (parsed) {
		while ((item = TAILQ_FIRST(&dbjson.root->data.items)) != NULL) {
			TAILQ_REMOVE(&dbjson.root->data.items, item, list);
			item->parent = root;
			TAILQ_INSERT_TAIL(&root->data.items, item, list);
		}
	}
	if (ctx->db.ok && ctx->db.value != NULL)
		kore_json_cleanup(&dbjson);

	kore_buf_init(&buf, 512);
	kore_json_item_tobuf(root, &buf);
	kore_json_item_free(root);
	http_response_header(ctx->req, "cache-control", "no-store");
	api_json(ctx->req, code, buf.data, buf.offset);
	kore_buf_cleanup(&buf);
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
		if (api_draining)
			return (api_error(req, 503, "shutting_down",
			    "the server is shutting down"));
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
