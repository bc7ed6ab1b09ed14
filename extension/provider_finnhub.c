/*-------------------------------------------------------------------------
 *
 * extension/provider_finnhub.c
 *	  Finnhub quote API (key in the X-Finnhub-Token header).
 *
 * GET {base}/api/v1/quote?symbol=S with the key in a header, so it never
 * appears in a URL. Body {"c":price,"t":epoch seconds,...}. c = 0 means "no
 * price": with d and dp null (and everything 0) it is Finnhub's answer for
 * an unknown symbol, otherwise the symbol has no price now (pre-market,
 * an index without data). Errors are {"error":"..."} with 401, 403, 429.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "json_util.h"
#include "fetch_outcome.h"
#include "provider_answers.h"

static void
finnhub_build(MdFetch *f, MdHttpRequest *req)
{
	req->url = psprintf("%s/api/v1/quote?symbol=%s", f->base_url,
						md_http_escape(f->symbol));
	req->headers = md_headers("Accept: application/json",
							  psprintf("X-Finnhub-Token: %s", f->key), NULL);
}

static bool
is_null(JsonbValue *v)
{
	return v != NULL && v->type == jbvNull;
}

JsonbContainer *
md_finnhub_answer(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	char	   *problem;
	char	   *said = NULL;

	if (md_fetch_transport_failed(f, req))
		return NULL;
	root = md_json_parse(req->body, req->body_len, &problem);
	if (root != NULL)
		said = md_provider_said(md_json_string(md_json_get(root, "error", NULL)));
	if (req->status == 429)
	{
		md_fetch_rate_limited(f, req->retry_after, said);
		return NULL;
	}
	if (!md_fetch_status_ok(f, req, root, problem, said))
		return NULL;
	if (said != NULL)
	{
		md_fetch_malformed(f, psprintf("error with HTTP status 200: %s", said));
		return NULL;
	}
	return root;
}

static void
finnhub_parse(MdFetch *f, MdHttpRequest *req)
{
	JsonbContainer *root;
	Numeric		c;

	if ((root = md_finnhub_answer(f, req)) == NULL)
		return;
	c = md_json_numeric(md_json_get(root, "c", NULL));
	if (c == NULL)
	{
		md_fetch_malformed(f, "no number \"c\"");
		return;
	}
	if (!md_numeric_positive(c))
	{
		if (is_null(md_json_get(root, "d", NULL)) && is_null(md_json_get(root, "dp", NULL)))
			md_fetch_unknown_symbol(f);
		else
			md_fetch_fail(f, MD_NO_DATA, "no price for symbol \"%s\" at provider %s: \"c\" is 0",
						  f->symbol, f->provider);
		return;
	}
	if (!md_json_epoch(md_json_get(root, "t", NULL), 1, &f->ts))
	{
		md_fetch_malformed(f, "\"t\" is missing or not epoch seconds");
		return;
	}
	md_fetch_set_price(f, c, NULL);
}

const MdProvider md_provider_finnhub = {
	.name = "finnhub",
	.needs_key = true,
	.build = finnhub_build,
	.parse = finnhub_parse,
};
