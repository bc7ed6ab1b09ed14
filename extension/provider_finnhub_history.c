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
#include "provider_answers.h"

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
	char	   *s;

	if ((root = md_finnhub_answer(f, req)) == NULL)
		return;
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
	md_history_read_arrays(p, md_json_get(root, "t", NULL), "t", root, names);
}

const MdHistoryProvider md_history_finnhub = {
	.name = "finnhub",
	.supports = finnhub_supports,
	.request_end = finnhub_request_end,
	.build = finnhub_history_build,
	.parse = finnhub_history_parse,
};
