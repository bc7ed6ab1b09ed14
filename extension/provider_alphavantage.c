/*-------------------------------------------------------------------------
 *
 * extension/provider_alphavantage.c
 *	  Alpha Vantage GLOBAL_QUOTE (key in the query: masked when stored).
 *
 * GET {base}/query?function=GLOBAL_QUOTE&symbol=S&apikey=K. Every value is
 * a string ("05. price": "112.1300") and errors arrive with HTTP 200; the
 * top-level key tells them apart: an empty "Global Quote" is an unknown
 * symbol, "Error Message" an invalid call (unknown symbol, or a missing
 * key), "Note" the per-minute throttle, "Information" the daily limit.
 *
 * GLOBAL_QUOTE has no time, only "07. latest trading day" (a date, no
 * zone). We stamp the price with that day's US close, 16:00 New York, or
 * with now while that close is still ahead: a closed day's price keeps one
 * time (re-fetching it adds nothing), a live day's price moves with now.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "json_util.h"
#include "fetch_outcome.h"
#include "provider_answers.h"

static void
alphavantage_build(MdFetch *f, MdHttpRequest *req)
{
	req->url = psprintf("%s/query?function=GLOBAL_QUOTE&symbol=%s&apikey=%s",
						f->base_url, md_http_escape(f->symbol), md_http_escape(f->key));
	req->headers = md_headers("Accept: application/json", NULL);
}

/* seconds to the next midnight UTC, when the daily allowance comes back */
static int
seconds_to_utc_midnight(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		into_day = now % USECS_PER_DAY;

	if (into_day < 0)
		into_day += USECS_PER_DAY;
	return (int) ((USECS_PER_DAY - into_day + USECS_PER_SEC - 1) / USECS_PER_SEC);
}

/* the close of trading day "YYYY-MM-DD", or now while it is ahead */
static bool
trading_day_time(const char *day, TimestampTz *out)
{
	int			y,
				m,
				d;
	char		extra;
	TimestampTz close;
	TimestampTz now = GetCurrentTimestamp();

	if (day == NULL || strlen(day) != 10 ||
		sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3 ||
		y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > day_tab[isleap(y)][m - 1])
		return false;
	close = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
													CStringGetDatum(psprintf("%s 16:00:00 America/New_York", day)),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
	*out = close <= now ? close : now;
	return true;
}

/* its error bodies; true when root is one (the fetch is classified) */
static bool
refused(MdFetch *f, MdHttpRequest *req, JsonbContainer *root)
{
	char	   *said;

	if ((said = md_json_string(md_json_get(root, "Error Message", NULL))) != NULL)
	{
		if (strstr(said, "apikey") != NULL)
			md_fetch_fail(f, MD_AUTH_FAILED, "provider %s refused our API key: %s",
						  f->provider, md_provider_said(said));
		else
			md_fetch_unknown_symbol(f);
		return true;
	}
	if ((said = md_json_string(md_json_get(root, "Note", NULL))) != NULL)
	{
		/* the legacy throttle: 5 requests a minute */
		md_fetch_rate_limited(f, req->retry_after, md_provider_said(said));
		return true;
	}
	if ((said = md_json_string(md_json_get(root, "Information", NULL))) != NULL)
	{
		if (strstr(said, "rate limit") != NULL || strstr(said, "per day") != NULL)
			md_fetch_rate_limited(f, req->retry_after >= 0 ? req->retry_after
								  : seconds_to_utc_midnight(), md_provider_said(said));
		else
			md_fetch_fail(f, MD_AUTH_FAILED, "provider %s refused the request: %s",
						  f->provider, md_provider_said(said));
		return true;
	}
	return false;
}

JsonbContainer *
md_alphavantage_answer(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	char	   *problem;

	if (md_fetch_transport_failed(f, req))
		return NULL;
	if (req->status == 429)
	{
		md_fetch_rate_limited(f, req->retry_after, NULL);
		return NULL;
	}
	root = md_json_parse(req->body, req->body_len, &problem);
	if (!md_fetch_status_ok(f, req, root, problem, NULL) || refused(f, req, root))
		return NULL;
	return root;
}

static void
alphavantage_parse(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	JsonbValue *quote;
	Numeric		price;

	if ((root = md_alphavantage_answer(f, req)) == NULL)
		return;

	quote = md_json_get(root, "Global Quote", NULL);
	if (md_json_container(quote) == NULL || !JsonContainerIsObject(md_json_container(quote)))
	{
		md_fetch_malformed(f, "no \"Global Quote\" object");
		return;
	}
	if (md_json_empty(quote))
	{
		md_fetch_unknown_symbol(f);
		return;
	}
	price = md_json_string_numeric(md_json_get(md_json_container(quote), "05. price", NULL));
	if (price == NULL)
	{
		md_fetch_malformed(f, "\"05. price\" is not a number in a string");
		return;
	}
	if (!md_numeric_positive(price))
	{
		md_fetch_fail(f, MD_NO_DATA, "no price for symbol \"%s\" at provider %s: the price is 0",
					  f->symbol, f->provider);
		return;
	}
	if (!trading_day_time(md_json_string(md_json_get(md_json_container(quote),
													  "07. latest trading day", NULL)),
						  &f->ts))
	{
		md_fetch_malformed(f, "\"07. latest trading day\" is not a date YYYY-MM-DD");
		return;
	}
	md_fetch_set_price(f, price, NULL);
	f->volume = md_json_string_numeric(md_json_get(md_json_container(quote), "06. volume", NULL));
}

const MdProvider md_provider_alphavantage = {
	.name = "alpha_vantage",
	.needs_key = true,
	.build = alphavantage_build,
	.parse = alphavantage_parse,
};
