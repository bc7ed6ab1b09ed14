/*
 * api/src/metrics.c
 *	GET /metrics: the counters (counters.c) as Prometheus text, for an
 *	admin or a scrape from this machine.
 */

#include "api.h"

int	api_metrics_page(struct http_request *);

static int
metrics_start(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	if (!api_method(req, HTTP_METHOD_GET))
		return (HTTP_STATE_COMPLETE);
	/* a local scrape, with or without credentials */
	if (api_cfg.metrics_local && api_is_local(req))
		ctx->gate.step = API_GATE_PASSED;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
metrics_gate(struct http_request *req)
{
	int	rc;

	rc = api_gate(req->hdlr_extra, ROLE_ADMIN);
	if (rc == HTTP_STATE_RETRY || rc == HTTP_STATE_COMPLETE)
		return (rc);
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

static int
metrics_answer(struct http_request *req)
{
	struct kore_buf	 b;

	kore_buf_init(&b, 8192);
	api_metrics_render(&b, api_redis_up());
	http_response_header(req, "content-type",
	    "text/plain; version=0.0.4; charset=utf-8");
	http_response(req, 200, b.data, b.offset);
	kore_buf_cleanup(&b);
	return (HTTP_STATE_COMPLETE);
}

static struct http_state metrics_states[] = {
	KORE_HTTP_STATE(metrics_start),
	KORE_HTTP_STATE(metrics_gate),
	KORE_HTTP_STATE(metrics_answer),
};

/* GET /metrics: an admin, or anyone on this machine (MD_API_METRICS_LOCAL). */
int
api_metrics_page(struct http_request *req)
{
	return (API_RUN(req, ROUTE_METRICS, metrics_states));
}
