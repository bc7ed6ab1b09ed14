/*-------------------------------------------------------------------------
 *
 * extension/provider_polygon.c
 *	  Polygon.io aggregates and last trade (key in an Authorization header).
 *
 * marketdata.polygon_endpoint picks the request: "prev",
 * GET {base}/v2/aggs/ticker/T/prev?adjusted=true, whose results[0].c is
 * the previous close at results[0].t in *milliseconds*; or "last_trade",
 * GET {base}/v2/last/trade/T, whose results.p is the last trade's price at
 * results.t in *nanoseconds* (parsed as an exact integer). Both shapes are
 * read whichever was asked. No results (resultsCount 0) is an unknown
 * ticker. Errors carry "status" with "error" or "message".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "guc.h"
#include "json_util.h"
#include "provider_answers.h"
#include "fetch_outcome.h"

static void
polygon_build(MdFetch *f, MdHttpRequest *req)
{
	if (md_polygon_endpoint == MD_POLYGON_LAST_TRADE)
		req->url = psprintf("%s/v2/last/trade/%s", f->base_url, md_http_escape(f->symbol));
	else
		req->url = psprintf("%s/v2/aggs/ticker/%s/prev?adjusted=true", f->base_url,
							md_http_escape(f->symbol));
	req->headers = md_headers("Accept: application/json",
							  psprintf("Authorization: Bearer %s", f->key), NULL);
}

JsonbContainer *
md_polygon_answer(MdFetch *f, MdHttpRequest *req, char **said)
{
	JsonbContainer *root;
	char	   *problem;

	*said = NULL;
	if (md_fetch_transport_failed(f, req))
		return NULL;
	root = md_json_parse(req->body, req->body_len, &problem);
	if (root != NULL)
	{
		*said = md_json_string(md_json_get(root, "error", NULL));
		if (*said == NULL)
			*said = md_json_string(md_json_get(root, "message", NULL));
		*said = md_provider_said(*said);
	}
	if (req->status == 429)
	{
		md_fetch_rate_limited(f, req->retry_after, *said);
		return NULL;
	}
	/* a missing key has been seen as "400 ERR" too */
	if (req->status == 400 && *said != NULL && strstr(*said, "API Key") != NULL)
	{
		md_fetch_fail(f, MD_AUTH_FAILED, "provider %s refused our API key: %s",
					  f->provider, *said);
		return NULL;
	}
	if (req->status == 404)
	{
		md_fetch_unknown_symbol(f);
		return NULL;
	}
	if (!md_fetch_status_ok(f, req, root, problem, *said))
		return NULL;
	return root;
}

static void
polygon_parse(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	JsonbValue *results;
	char	   *said;
	Numeric		price;

	if ((root = md_polygon_answer(f, req, &said)) == NULL)
		return;

	results = md_json_get(root, "results", NULL);
	if (results == NULL || results->type == jbvNull || md_json_empty(results))
	{
		Numeric		count = md_json_numeric(md_json_get(root, "resultsCount", NULL));

		if (said != NULL && (count == NULL || !md_numeric_is_zero(count)))
			md_fetch_malformed(f, psprintf("error with HTTP status 200: %s", said));
		else
			md_fetch_unknown_symbol(f);
		return;
	}
	if (md_json_container(results) != NULL && JsonContainerIsArray(md_json_container(results)))
	{
		/* prev: an aggregate bar, time in milliseconds */
		JsonbContainer *bar = md_json_container(md_json_get(md_json_container(results), "[0]", NULL));

		price = md_json_numeric(md_json_get(bar, "c", NULL));
		if (price == NULL || !md_json_epoch(md_json_get(bar, "t", NULL), 1000, &f->ts))
		{
			md_fetch_malformed(f, "results[0] has no number \"c\" or no millisecond time \"t\"");
			return;
		}
		f->volume = md_json_numeric(md_json_get(bar, "v", NULL));
	}
	else
	{
		/* last trade: time in nanoseconds */
		JsonbContainer *trade = md_json_container(results);

		price = md_json_numeric(md_json_get(trade, "p", NULL));
		if (price == NULL || !md_json_epoch(md_json_get(trade, "t", NULL),
											INT64CONST(1000000000), &f->ts))
		{
			md_fetch_malformed(f, "results has no number \"p\" or no nanosecond time \"t\"");
			return;
		}
	}
	if (!md_numeric_positive(price))
	{
		md_fetch_fail(f, MD_NO_DATA, "no price for symbol \"%s\" at provider %s: the price is 0",
					  f->symbol, f->provider);
		return;
	}
	md_fetch_set_price(f, price, NULL);
}

const MdProvider md_provider_polygon = {
	.name = "polygon",
	.needs_key = true,
	.build = polygon_build,
	.parse = polygon_parse,
};
