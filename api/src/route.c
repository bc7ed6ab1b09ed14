/*
 * api/src/route.c
 *	The states every route shares that runs one query after the gate
 *	(/prices/history, /prices/average, /prices/poll...): the gate, the
 *	query, its answer.
 *
 * A route's table is its own first states (method, arguments), then
 * these; its arguments state names the query (struct api_query) in
 * ctx->args.query. Each state moves to the next one of the table.
 */

#include <string.h>

#include "api.h"

int
api_route_gate(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;
	int		 rc;

	rc = api_gate(ctx, ctx->args.query->role);
	if (rc == HTTP_STATE_RETRY || rc == HTTP_STATE_COMPLETE)
		return (rc);
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

int
api_route_query(struct http_request *req)
{
	struct api_ctx		*ctx = req->hdlr_extra;
	const struct api_query	*q = ctx->args.query;

	req->fsm_state++;
	return (api_db_start(ctx, q->db, q->sql, q->nparams,
	    (const char **)ctx->args.arg));
}

int
api_route_answer(struct http_request *req)
{
	struct api_ctx		*ctx = req->hdlr_extra;
	const struct api_query	*q = ctx->args.query;

	if (!ctx->db.ok) {
		(void)api_db_error(ctx);
		return (HTTP_STATE_COMPLETE);
	}
	if (ctx->db.isnull) {
		if (q->not_found_names_symbol)
			(void)api_error(req, 404, q->not_found, "%s %s",
			    q->not_found_text, ctx->args.symbol);
		else
			(void)api_error(req, 404, q->not_found, "%s",
			    q->not_found_text);
		return (HTTP_STATE_COMPLETE);
	}
	api_ratelimit_headers(ctx);
	api_json(req, q->status, ctx->db.value, strlen(ctx->db.value));
	return (HTTP_STATE_COMPLETE);
}
