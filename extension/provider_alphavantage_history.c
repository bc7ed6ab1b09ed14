/*-------------------------------------------------------------------------
 *
 * extension/provider_alphavantage_history.c
 *	  Alpha Vantage history: TIME_SERIES_DAILY, _WEEKLY, _MONTHLY and
 *	  TIME_SERIES_INTRADAY a month at a time.
 *
 * GET {base}/query?function=TIME_SERIES_DAILY&symbol=&outputsize=full
 * &apikey= (WEEKLY, MONTHLY alike), or function=TIME_SERIES_INTRADAY
 * &interval=1min&month=YYYY-MM&outputsize=full&extended_hours=false: one
 * request per month of the market's calendar. Bars are an object keyed by
 * date ("YYYY-MM-DD") or local time ("YYYY-MM-DD HH:MM:SS") in the time
 * zone of "Meta Data" (US/Eastern), newest first, with string numbers
 * "1. open" ... "5. volume". A date is the local midnight of that trading
 * day. Errors (all HTTP 200) are the quote parser's: "Note" and
 * "Information" bodies are rate limits or refusals.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "fetch_outcome.h"
#include "history.h"
#include "json_util.h"
#include "provider_answers.h"

/* the US market's calendar, which Alpha Vantage's months follow */
#define AV_MARKET_ZONE "America/New_York"

static bool
av_supports(MdBarStep step, const char **why)
{
	*why = "Alpha Vantage serves 1, 5, 15, 30 and 60 minutes, 1 day, 1 week and 1 month.";
	switch (step.unit)
	{
		case MD_UNIT_MINUTE:
			return step.count == 1 || step.count == 5 || step.count == 15 ||
				step.count == 30 || step.count == 60;
		default:
			return step.count == 1;
	}
}

/* intraday: to the start of the next month in the market's time zone */
static TimestampTz
av_request_end(MdBarStep step, TimestampTz from, TimestampTz to)
{
	pg_tz	   *zone = pg_tzset(AV_MARKET_ZONE);
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	TimestampTz end;

	if (step.unit != MD_UNIT_MINUTE)
		return to;
	if (zone == NULL || timestamp2tm(from, &tz, &tm, &fsec, NULL, zone) != 0)
		elog(ERROR, "cannot read the time zone %s", AV_MARKET_ZONE);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	if (++tm.tm_mon > 12)
	{
		tm.tm_mon = 1;
		tm.tm_year++;
	}
	tz = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, 0, &tz, &end) != 0)
		elog(ERROR, "month after a time out of range");
	return Min(end, to);
}

static void
av_history_build(MdHistoryPage *p, MdHttpRequest *req)
{
	if (p->step.unit == MD_UNIT_MINUTE)
	{
		pg_tz	   *zone = pg_tzset(AV_MARKET_ZONE);
		struct pg_tm tm;
		fsec_t		fsec;
		int			tz;

		if (zone == NULL || timestamp2tm(p->from, &tz, &tm, &fsec, NULL, zone) != 0)
			elog(ERROR, "cannot read the time zone %s", AV_MARKET_ZONE);
		req->url = psprintf("%s/query?function=TIME_SERIES_INTRADAY&symbol=%s&interval=%dmin"
							"&month=%04d-%02d&outputsize=full&extended_hours=false&apikey=%s",
							p->fetch.base_url, md_http_escape(p->fetch.symbol), p->step.count,
							tm.tm_year, tm.tm_mon, md_http_escape(p->fetch.key));
	}
	else
		req->url = psprintf("%s/query?function=TIME_SERIES_%s&symbol=%s&outputsize=full&apikey=%s",
							p->fetch.base_url,
							p->step.unit == MD_UNIT_DAY ? "DAILY"
							: (p->step.unit == MD_UNIT_WEEK ? "WEEKLY" : "MONTHLY"),
							md_http_escape(p->fetch.symbol), md_http_escape(p->fetch.key));
	req->headers = md_headers("Accept: application/json", NULL);
}

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM:SS", local in zone; false when not */
static bool
local_time(const char *text, pg_tz *zone, TimestampTz *out)
{
	struct pg_tm tm = {0};
	char		extra;
	int			tz;
	size_t		len = strlen(text);

	if (len == 10 ? sscanf(text, "%4d-%2d-%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &extra) != 3
		: (len != 19 || sscanf(text, "%4d-%2d-%2d %2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon,
							   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &extra) != 6))
		return false;
	if (tm.tm_year < 1900 || tm.tm_year > 2200 || tm.tm_mon < 1 || tm.tm_mon > 12 ||
		tm.tm_mday < 1 || tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return false;
	tz = DetermineTimeZoneOffset(&tm, zone);
	return tm2timestamp(&tm, 0, &tz, out) == 0;
}

static void
av_history_parse(MdHistoryPage *p, MdHttpRequest *req)
{
	MdFetch    *f = &p->fetch;
	JsonbContainer *root;
	JsonbValue *meta;
	JsonbValue *series = NULL;
	char	  **keys;
	JsonbValue *values;
	char	   *zone_name = NULL;
	pg_tz	   *zone;
	int			n;
	int			i;

	if ((root = md_alphavantage_answer(f, req)) == NULL)
		return;

	/* "5. Time Zone" (daily) or "6. Time Zone" (intraday) */
	meta = md_json_get(root, "Meta Data", NULL);
	n = md_json_object_entries(meta, &keys, &values);
	for (i = 0; i < n; i++)
		if (strstr(keys[i], "Time Zone") != NULL)
			zone_name = md_json_string(&values[i]);
	zone = zone_name ? pg_tzset(zone_name) : NULL;
	if (zone == NULL)
	{
		md_history_malformed(p, "\"Meta Data\" has no known time zone");
		return;
	}
	/* "Time Series (Daily)", "Time Series (5min)", "Weekly Time Series" */
	n = md_json_object_entries(&(JsonbValue) {.type = jbvBinary, .val.binary.data = root},
							   &keys, &values);
	for (i = 0; i < n; i++)
		if (strstr(keys[i], "Time Series") != NULL)
			series = &values[i];
	if (series == NULL)
	{
		md_history_malformed(p, "no \"Time Series\" object");
		return;
	}
	n = md_json_object_entries(series, &keys, &values);
	if (n < 0)
	{
		md_history_malformed(p, "the time series is not an object");
		return;
	}
	md_history_bars_alloc(p, n);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *bar = md_json_container(&values[i]);
		static const char *const names[5] = {"1. open", "2. high", "3. low", "4. close", "5. volume"};
		Numeric		v[5];
		TimestampTz ts;
		int			c;

		if (!local_time(keys[i], zone, &ts))
		{
			md_history_malformed(p, psprintf("\"%s\" is not a date or a local time",
											 md_provider_said(keys[i])));
			return;
		}
		for (c = 0; c < 5; c++)
		{
			JsonbValue *s = bar ? md_json_get(bar, names[c], NULL) : NULL;

			v[c] = md_json_string_numeric(s);
			if (v[c] == NULL && (c < 4 || s != NULL))
			{
				md_history_malformed(p, psprintf("\"%s\" of %s is not a number in a string",
												 names[c], keys[i]));
				return;
			}
		}
		if (!md_history_add_bar(p, ts, v[0], v[1], v[2], v[3], v[4]))
			return;
	}
}

const MdHistoryProvider md_history_alphavantage = {
	.name = "alpha_vantage",
	.supports = av_supports,
	.request_end = av_request_end,
	.build = av_history_build,
	.parse = av_history_parse,
};
