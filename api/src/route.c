/*
 * api/src/route.c
 *	The states every route shares that runs one query after the gate
 *	(/prices/history, /prices/average, /prices/poll...): the gate, the
 *	query, its answer.
 *
 * A route's table is its own first states (method, arguments, read with
 * api_symbol_arg and api_opt_arg), then these; its arguments state names the query (struct api_query) in
 * ctx->args.query. Each state moves to the next one of the table.
 */

#include <stdio.h>
#include <string.h>

#include "api.h"

/* Copies an optional query argument into ctx->args.arg[i] (NULL: absent). */
int
api_opt_arg(struct api_ctx *ctx, int i, const char *name)
{
	char	*v;

	if (http_argument_get_string(ctx->req, name, &v)) {
		ctx->args.arg[i] = kore_strdup(v);
		return (KORE_RESULT_OK);
	}
	/* present in the query but dropped by its validator: invalid */
	if (ctx->req->query_string != NULL) {
		char	pat[40];

		(void)snprintf(pat, sizeof(pat), "%s=", name);
		if (strstr(ctx->req->query_string, pat) != NULL)
			return (KORE_RESULT_ERROR);
	}
	return (KORE_RESULT_OK);
}

/* The normalised symbol argument into ctx->args.symbol and args.arg[0]. */
int
api_symbol_arg(struct api_ctx *ctx)
{
	char	*sym;

	if (!http_argument_get_string(ctx->req, "symbol", &sym) ||
	    !api_symbol_normalize(sym, ctx->args.symbol, sizeof(ctx->args.symbol))) {
		api_error(ctx->req, 400, "invalid_argument",
		    "symbol is missing or invalid: 1-32 letters, digits and "
		    ". - ^ = _ /, starting with a letter, a digit or ^");
		return (KORE_RESULT_ERROR);
	}
	ctx->args.arg[0] = kore_strdup(ctx->args.symbol);
	return (KORE_RESULT_OK);
}

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
