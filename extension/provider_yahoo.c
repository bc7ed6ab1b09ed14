/*-------------------------------------------------------------------------
 *
 * extension/provider_yahoo.c
 *	  Yahoo Finance, chart API v8 (no key).
 *
 * GET {base}/v8/finance/chart/{SYMBOL}?interval=1d&range=1d; the symbol is
 * a percent-encoded path segment (^GSPC is %5EGSPC). The latest price is
 * chart.result[0].meta.regularMarketPrice at meta.regularMarketTime (epoch
 * seconds): meta describes the instrument now, whatever the bars say, so a
 * weekend answer without bars still carries Friday's price. Without
 * regularMarketPrice (a delisted symbol) there is no data. Unknown symbols
 * are HTTP 404; rate limiting is a plain-text 429.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "json_util.h"
#include "fetch_outcome.h"
#include "provider_answers.h"

static void
yahoo_build(MdFetch *f, MdHttpRequest *req)
{
	req->url = psprintf("%s/v8/finance/chart/%s?interval=1d&range=1d",
						f->base_url, md_http_escape(f->symbol));
	req->headers = md_headers("Accept: application/json", NULL);
}

JsonbContainer *
md_yahoo_answer(MdFetch *f, MdHttpRequest *req, bool range_asked)
{
	JsonbContainer *root;
	JsonbValue *error;
	char	   *problem;

	if (md_fetch_transport_failed(f, req))
		return NULL;
	if (req->status == 429)
	{
		md_fetch_rate_limited(f, req->retry_after, md_provider_said(req->body));
		return NULL;
	}
	if (req->status == 404)
	{
		md_fetch_unknown_symbol(f);
		return NULL;
	}
	root = md_json_parse(req->body, req->body_len, &problem);
	error = root ? md_json_get(root, "chart", "error", NULL) : NULL;
	if (range_asked && req->status == 400 && error != NULL && error->type != jbvNull)
	{
		/* "Data doesn't exist for startDate = ..., endDate = ...": before the listing */
		char	   *said = md_json_string(md_json_get(md_json_container(error), "description", NULL));

		md_fetch_fail(f, MD_NO_DATA, "no history of \"%s\" at provider %s in that range%s%s",
					  f->symbol, f->provider, said ? ": " : "", said ? md_provider_said(said) : "");
		return NULL;
	}
	if (!md_fetch_status_ok(f, req, root, problem, NULL))
		return NULL;
	if (error != NULL && error->type != jbvNull)
	{
		char	   *code = md_json_string(md_json_get(md_json_container(error), "code", NULL));

		if (code != NULL && strcmp(code, "Not Found") == 0)
			md_fetch_unknown_symbol(f);
		else
			md_fetch_malformed(f, psprintf("chart.error is %s",
										   code ? md_provider_said(code) : "not understood"));
		return NULL;
	}
	return root;
}

static void
yahoo_parse(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	JsonbValue *meta;
	JsonbValue *price;

	if ((root = md_yahoo_answer(f, req, false)) == NULL)
		return;
	meta = md_json_get(root, "chart", "result", "[0]", "meta", NULL);
	if (md_json_container(meta) == NULL)
	{
		md_fetch_malformed(f, "no chart.result[0].meta");
		return;
	}
	price = md_json_get(md_json_container(meta), "regularMarketPrice", NULL);
	if (price == NULL || price->type == jbvNull)
	{
		md_fetch_fail(f, MD_NO_DATA, "no price for symbol \"%s\" at provider %s: it has no regularMarketPrice (delisted or not traded)",
					  f->symbol, f->provider);
		return;
	}
	if (md_json_numeric(price) == NULL)
	{
		md_fetch_malformed(f, "regularMarketPrice is not a number");
		return;
	}
	if (!md_numeric_positive(md_json_numeric(price)))
	{
		md_fetch_fail(f, MD_NO_DATA, "no price for symbol \"%s\" at provider %s: regularMarketPrice is 0",
					  f->symbol, f->provider);
		return;
	}
	if (!md_json_epoch(md_json_get(md_json_container(meta), "regularMarketTime", NULL),
					   1, &f->ts))
	{
		md_fetch_malformed(f, "regularMarketTime is missing or not epoch seconds");
		return;
	}
	md_fetch_set_price(f, md_json_numeric(price),
					   md_json_string(md_json_get(md_json_container(meta), "currency", NULL)));
	f->volume = md_json_numeric(md_json_get(md_json_container(meta), "regularMarketVolume", NULL));
	f->meta.time_zone = md_json_string(md_json_get(md_json_container(meta), "exchangeTimezoneName", NULL));
	f->meta.exchange = md_json_string(md_json_get(md_json_container(meta), "fullExchangeName", NULL));
	if (f->meta.exchange == NULL)
		f->meta.exchange = md_json_string(md_json_get(md_json_container(meta), "exchangeName", NULL));
	f->meta.name = md_json_string(md_json_get(md_json_container(meta), "longName", NULL));
	if (f->meta.name == NULL)
		f->meta.name = md_json_string(md_json_get(md_json_container(meta), "shortName", NULL));
}

const MdProvider md_provider_yahoo = {
	.name = "yahoo_finance",
	.needs_key = false,
	.build = yahoo_build,
	.parse = yahoo_parse,
};
