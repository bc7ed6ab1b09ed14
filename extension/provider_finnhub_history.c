/*-------------------------------------------------------------------------
 *
 * extension/provider_finnhub_history.c
 *	  Finnhub history: stock candles.
 *
 * GET {base}/api/v1/stock/candle?symbol=&resolution=&from=&to= (epoch
 * seconds, to inclusive; resolution 1, 5, 15, 30, 60 minutes or D, W, M),
 * key in X-Finnhub-Token. Bars are parallel arrays o, h, l, c, v, t with
 * "s":"ok"; {"s":"no_data"} with HTTP 200 is no data in the range, not a
 * failure of the provider. Free keys get 403 on candles: not entitled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fetch_outcome.h"
#include "history.h"
#include "json_util.h"

static const char *
finnhub_resolution(MdBarStep step)
{
	if (step.unit == MD_UNIT_MINUTE)
		switch (step.count)
		{
			case 1:
				return "1";
			case 5:
				return "5";
			case 15:
				return "15";
			case 30:
				return "30";
			case 60:
				return "60";
		}
	if (step.count == 1)
		return step.unit == MD_UNIT_DAY ? "D" : (step.unit == MD_UNIT_WEEK ? "W" : "M");
	return NULL;
}

static bool
finnhub_supports(MdBarStep step, const char **why)
{
	*why = "Finnhub serves 1, 5, 15, 30 and 60 minutes, 1 day, 1 week and 1 month.";
	return finnhub_resolution(step) != NULL;
}

static TimestampTz
finnhub_request_end(MdBarStep step, TimestampTz from, TimestampTz to)
{
	return to;
}

static void
finnhub_history_build(MdHistoryPage *p, MdHttpRequest *req)
{
	req->url = psprintf("%s/api/v1/stock/candle?symbol=%s&resolution=%s&from=" INT64_FORMAT
						"&to=" INT64_FORMAT,
						p->fetch.base_url, md_http_escape(p->fetch.symbol),
						finnhub_resolution(p->step), md_epoch_seconds(p->from),
						md_epoch_seconds(p->to) - 1);
	req->headers = md_headers("Accept: application/json",
							  psprintf("X-Finnhub-Token: %s", p->fetch.key), NULL);
}

static void
finnhub_history_parse(MdHistoryPage *p, MdHttpRequest *req)
{
	MdFetch    *f = &p->fetch;
	JsonbContainer *root;
	static const char *const names[5] = {"o", "h", "l", "c", "v"};
	JsonbValue *cols[5];
	JsonbValue *times;
	char	   *problem;
	char	   *said = NULL;
	char	   *s;
	int			n;
	int			i;
	int			c;

	if (md_fetch_transport_failed(f, req))
		return;
	root = md_json_parse(req->body, req->body_len, &problem);
	if (root != NULL)
		said = md_provider_said(md_json_string(md_json_get(root, "error", NULL)));
	if (req->status == 429)
	{
		md_fetch_rate_limited(f, req->retry_after, said);
		return;
	}
	if (!md_fetch_status_ok(f, req, root, problem, said))
		return;
	if (said != NULL)
	{
		md_history_malformed(p, psprintf("error with HTTP status 200: %s", said));
		return;
	}
	s = md_json_string(md_json_get(root, "s", NULL));
	if (s != NULL && strcmp(s, "no_data") == 0)
	{
		md_fetch_fail(f, MD_NO_DATA, "no history of \"%s\" at provider %s in that range",
					  f->symbol, f->provider);
		return;
	}
	if (s == NULL || strcmp(s, "ok") != 0)
	{
		md_history_malformed(p, "\"s\" is neither \"ok\" nor \"no_data\"");
		return;
	}
	times = md_json_get(root, "t", NULL);
	n = md_json_array_size(times);
	if (n < 0)
	{
		md_history_malformed(p, "\"t\" is not an array");
		return;
	}
	for (c = 0; c < 5; c++)
	{
		cols[c] = md_json_get(root, names[c], NULL);
		if (md_json_array_size(cols[c]) != n)
		{
			md_history_malformed(p, psprintf("\"%s\" is not an array as long as \"t\"", names[c]));
			return;
		}
	}
	md_history_bars_alloc(p, n);
	for (i = 0; i < n; i++)
	{
		Numeric		v[5];
		TimestampTz ts;

		if (!md_json_epoch(md_json_elem(times, i), 1, &ts))
		{
			md_history_malformed(p, "an element of \"t\" is not epoch seconds");
			return;
		}
		for (c = 0; c < 5; c++)
			if (!md_json_number_or_null(md_json_elem(cols[c], i), &v[c]))
			{
				md_history_malformed(p, psprintf("an element of \"%s\" is not a number", names[c]));
				return;
			}
		if (!md_history_add_bar(p, ts, v[0], v[1], v[2], v[3], v[4]))
			return;
	}
}

const MdHistoryProvider md_history_finnhub = {
	.name = "finnhub",
	.supports = finnhub_supports,
	.request_end = finnhub_request_end,
	.build = finnhub_history_build,
	.parse = finnhub_history_parse,
};
