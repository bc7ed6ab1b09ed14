/*
 * api/src/metrics.c
 *	GET /metrics: the counters (counters.c) as Prometheus text, for an
 *	admin or a scrape from this machine, and the database's alerts
 *	(md.alerts through md._api_alerts(): table sizes, retention lag,
 *	outbox backlog age, consumer lag, the oldest running job run).
 *
 * The alerts are asked of the database at most every ALERTS_MAX_AGE_US
 * per worker, so that scrapes, however frequent, cost it little.
 */

#include <jansson.h>

#include "api.h"

#define ALERTS_MAX_AGE_US	(5 * 1000000ULL)

/* this worker's last answer of md._api_alerts() */
static char		*alerts_json = NULL;
static u_int64_t	 alerts_at = 0;
static int		 alerts_ok = 0;

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
metrics_alerts(struct http_request *req)
{
	if (alerts_at != 0 && api_now_us() - alerts_at < ALERTS_MAX_AGE_US) {
		req->fsm_state += 2;
		return (HTTP_STATE_CONTINUE);
	}
	req->fsm_state++;
	return (api_db_start(req->hdlr_extra, API_DB_PRIMARY,
	    "SELECT md._api_alerts()", 0, NULL));
}

static int
metrics_alerts_answered(struct http_request *req)
{
	struct api_ctx	*ctx = req->hdlr_extra;

	alerts_at = api_now_us();
	alerts_ok = ctx->db.ok && !ctx->db.isnull && ctx->db.value != NULL;
	free(alerts_json);
	alerts_json = alerts_ok ? strdup(ctx->db.value) : NULL;
	req->fsm_state++;
	return (HTTP_STATE_CONTINUE);
}

/* a label value as Prometheus text wants it */
static void
append_label(struct kore_buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			kore_buf_appendf(b, "\\%c", *v);
		else if (*v == '\n')
			kore_buf_appendf(b, "\\n");
		else
			kore_buf_append(b, v, 1);
	}
}

static void
render_alerts(struct kore_buf *b)
{
	json_t		*all, *a;
	size_t		 i;
	const char	*measure, *subject;
	double		 value;

	kore_buf_appendf(b, "# HELP md_alerts_up Whether the last ask of the "
	    "database's alerts (md.alerts) was answered.\n"
	    "# TYPE md_alerts_up gauge\nmd_alerts_up %d\n", alerts_ok);
	if (alerts_json == NULL ||
	    (all = json_loads(alerts_json, 0, NULL)) == NULL)
		return;
	kore_buf_appendf(b, "# HELP md_alert md.alerts: table_bytes, "
	    "retention_lag_seconds, outbox_backlog_age_seconds, "
	    "consumer_lag_messages, oldest_running_job_run_seconds; asked "
	    "at most every 5 s.\n# TYPE md_alert gauge\n");
	json_array_foreach(all, i, a) {
		if (json_unpack(a, "[ssF]", &measure, &subject, &value) != 0)
			continue;
		kore_buf_appendf(b, "md_alert{measure=\"");
		append_label(b, measure);
		kore_buf_appendf(b, "\",subject=\"");
		append_label(b, subject);
		kore_buf_appendf(b, "\"} %.17g\n", value);
	}
	json_decref(all);
}

static int
metrics_answer(struct http_request *req)
{
	struct kore_buf	 b;

	kore_buf_init(&b, 8192);
	api_metrics_render(&b, api_redis_up());
	render_alerts(&b);
	http_response_header(req, "content-type",
	    "text/plain; version=0.0.4; charset=utf-8");
	http_response(req, 200, b.data, b.offset);
	kore_buf_cleanup(&b);
	return (HTTP_STATE_COMPLETE);
}

static struct http_state metrics_states[] = {
	KORE_HTTP_STATE(metrics_start),
	KORE_HTTP_STATE(metrics_gate),
	KORE_HTTP_STATE(metrics_alerts),
	KORE_HTTP_STATE(metrics_alerts_answered),
	KORE_HTTP_STATE(metrics_answer),
};

/* GET /metrics: an admin, or anyone on this machine (MD_API_METRICS_LOCAL). */
int
api_metrics_page(struct http_request *req)
{
	return (API_RUN(req, ROUTE_METRICS, metrics_states));
}
