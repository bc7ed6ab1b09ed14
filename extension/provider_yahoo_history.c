/*-------------------------------------------------------------------------
 *
 * extension/provider_yahoo_history.c
 *	  Yahoo Finance history: the chart API with period1/period2/interval.
 *
 * GET {base}/v8/finance/chart/{SYMBOL}?period1=&period2=&interval=
 * &events=div,splits. Bars are parallel arrays: timestamp[] (epoch seconds
 * at the bar's start) and indicators.quote[0].{open,high,low,close,volume}
 * with null entries where there was no trade (skipped, not zeros). An
 * answer without bars has no timestamp key at all, or empty arrays.
 * events.dividends / events.splits are objects keyed by epoch. Intraday
 * depth is limited per request (1m: 7 days, other minutes: 60 days, 60m
 * and 90m: 730 days), so a longer range is several requests; how far back
 * Yahoo serves is its answer (HTTP 400 "Data doesn't exist", or no bars),
 * not our guess. Quote status handling is the price parser's: 429 plain
 * text is a rate limit, 404 an unknown symbol.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/fmgrprotos.h"

#include "fetch_outcome.h"
#include "history.h"
#include "json_util.h"
#include "provider_answers.h"

static const char *
yahoo_interval(MdBarStep step)
{
	switch (step.unit)
	{
		case MD_UNIT_MINUTE:
			switch (step.count)
			{
				case 1:
					return "1m";
				case 2:
					return "2m";
				case 5:
					return "5m";
				case 15:
					return "15m";
				case 30:
					return "30m";
				case 60:
					return "60m";
				case 90:
					return "90m";
			}
			return NULL;
		case MD_UNIT_DAY:
			return step.count == 1 ? "1d" : (step.count == 5 ? "5d" : NULL);
		case MD_UNIT_WEEK:
			return step.count == 1 ? "1wk" : NULL;
		case MD_UNIT_MONTH:
			return step.count == 1 ? "1mo" : (step.count == 3 ? "3mo" : NULL);
	}
	return NULL;
}

static bool
yahoo_supports(MdBarStep step, const char **why)
{
	*why = "Yahoo Finance serves 1, 2, 5, 15, 30, 60 and 90 minutes, 1 and 5 days, 1 week, 1 and 3 months.";
	return yahoo_interval(step) != NULL;
}

static TimestampTz
yahoo_request_end(MdBarStep step, TimestampTz from, TimestampTz to)
{
	int64		depth = 0;

	if (step.unit == MD_UNIT_MINUTE)
		depth = (step.count == 1 ? 7 : (step.count >= 60 ? 730 : 60)) * USECS_PER_DAY;
	if (depth == 0 || to - from <= depth)
		return to;
	return from + depth;
}

static void
yahoo_history_build(MdHistoryPage *p, MdHttpRequest *req)
{
	req->url = psprintf("%s/v8/finance/chart/%s?period1=" INT64_FORMAT "&period2=" INT64_FORMAT
						"&interval=%s&includePrePost=false&events=div%%2Csplits",
						p->fetch.base_url, md_http_escape(p->fetch.symbol),
						md_epoch_seconds(p->from), md_epoch_seconds(p->to),
						yahoo_interval(p->step));
	req->headers = md_headers("Accept: application/json", NULL);
}

/* events.dividends and events.splits */
static bool
read_events(MdHistoryPage *p, JsonbContainer *result)
{
	JsonbValue *dividends = md_json_get(result, "events", "dividends", NULL);
	JsonbValue *splits = md_json_get(result, "events", "splits", NULL);
	char	  **keys;
	JsonbValue *values;
	int			n;
	int			i;

	n = dividends ? md_json_object_entries(dividends, &keys, &values) : 0;
	for (i = 0; i < n; i++)
	{
		JsonbContainer *d = md_json_container(&values[i]);
		Numeric		amount = md_json_numeric(md_json_get(d, "amount", NULL));
		TimestampTz ts;

		if (amount == NULL || !md_json_epoch(md_json_get(d, "date", NULL), 1, &ts))
		{
			md_history_malformed(p, "a dividend without a number \"amount\" and an epoch \"date\"");
			return false;
		}
		md_history_add_event(p, ts, MD_EVENT_DIVIDEND, amount);
	}
	n = splits ? md_json_object_entries(splits, &keys, &values) : 0;
	for (i = 0; i < n; i++)
	{
		JsonbContainer *s = md_json_container(&values[i]);
		Numeric		numerator = md_json_numeric(md_json_get(s, "numerator", NULL));
		Numeric		denominator = md_json_numeric(md_json_get(s, "denominator", NULL));
		TimestampTz ts;
		bool		error = false;

		if (numerator == NULL || denominator == NULL || !md_numeric_positive(numerator) ||
			!md_numeric_positive(denominator) ||
			!md_json_epoch(md_json_get(s, "date", NULL), 1, &ts))
		{
			md_history_malformed(p, "a split without positive \"numerator\" and \"denominator\" and an epoch \"date\"");
			return false;
		}
		md_history_add_event(p, ts, MD_EVENT_SPLIT,
							 DatumGetNumeric(DirectFunctionCall1(numeric_trim_scale,
																 NumericGetDatum(numeric_div_opt_error(numerator, denominator, &error)))));
	}
	return true;
}

static void
yahoo_history_parse(MdHistoryPage *p, MdHttpRequest *req)
{
	MdFetch    *f = &p->fetch;
	JsonbContainer *root;
	JsonbContainer *result;
	JsonbValue *times;
	static const char *const names[5] = {"open", "high", "low", "close", "volume"};

	if ((root = md_yahoo_answer(f, req, true)) == NULL)
		return;
	result = md_json_container(md_json_get(root, "chart", "result", "[0]", NULL));
	if (result == NULL || md_json_container(md_json_get(result, "meta", NULL)) == NULL)
	{
		md_history_malformed(p, "no chart.result[0].meta");
		return;
	}
	f->currency = md_json_string(md_json_get(result, "meta", "currency", NULL));
	if (!read_events(p, result))
		return;

	/* no timestamp key at all: no bars in the range (a weekend, a delisting) */
	times = md_json_get(result, "timestamp", NULL);
	if (times == NULL)
	{
		md_history_bars_alloc(p, 0);
		return;
	}
	md_history_read_arrays(p, times, "timestamp",
						   md_json_container(md_json_get(result, "indicators", "quote", "[0]", NULL)),
						   names);
}

const MdHistoryProvider md_history_yahoo = {
	.name = "yahoo_finance",
	.supports = yahoo_supports,
	.request_end = yahoo_request_end,
	.build = yahoo_history_build,
	.parse = yahoo_history_parse,
};
