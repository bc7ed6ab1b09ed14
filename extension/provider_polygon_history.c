/*-------------------------------------------------------------------------
 *
 * extension/provider_polygon_history.c
 *	  Polygon.io history: aggregates over a range, page by page.
 *
 * GET {base}/v2/aggs/ticker/T/range/{mult}/{timespan}/{from}/{to}
 * ?adjusted=false&sort=asc&limit=50000, from and to in milliseconds (to
 * inclusive). results[] holds {o,h,l,c,v,t} with t in milliseconds; v may
 * be a float in exponent form. resultsCount 0 without results is no bars.
 * A longer answer names its next page in next_url, an absolute URL on
 * Polygon's own host: only its path and query are kept, asked of our
 * base_url with the key in the header, so the key never goes to a host
 * we were not configured with. Errors are the price parser's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fetch_outcome.h"
#include "history.h"
#include "json_util.h"
#include "provider_answers.h"

#define POLYGON_AGGS_PATH "/v2/aggs/ticker/"

static bool
polygon_supports(MdBarStep step, const char **why)
{
	*why = NULL;
	return step.count > 0;
}

static TimestampTz
polygon_request_end(MdBarStep step, TimestampTz from, TimestampTz to)
{
	/* one request for any range: the pages cut it */
	return to;
}

static int64
epoch_ms(TimestampTz ts)
{
	return (ts - UNIX_EPOCH_TIMESTAMPTZ) / 1000;
}

static void
polygon_history_build(MdHistoryPage *p, MdHttpRequest *req)
{
	if (p->page_path != NULL)
		req->url = psprintf("%s%s", p->fetch.base_url, p->page_path);
	else
	{
		int			count = p->step.count;
		const char *timespan = "minute";

		switch (p->step.unit)
		{
			case MD_UNIT_MINUTE:
				if (count % 60 == 0)
				{
					count /= 60;
					timespan = "hour";
				}
				break;
			case MD_UNIT_DAY:
				timespan = "day";
				break;
			case MD_UNIT_WEEK:
				timespan = "week";
				break;
			case MD_UNIT_MONTH:
				timespan = "month";
				break;
		}
		req->url = psprintf("%s" POLYGON_AGGS_PATH "%s/range/%d/%s/" INT64_FORMAT "/" INT64_FORMAT
							"?adjusted=false&sort=asc&limit=50000",
							p->fetch.base_url, md_http_escape(p->fetch.symbol), count, timespan,
							epoch_ms(p->from), epoch_ms(p->to) - 1);
	}
	req->headers = md_headers("Accept: application/json",
							  psprintf("Authorization: Bearer %s", p->fetch.key), NULL);
}

/*
 * The path and query of next_url, which must be another page of
 * aggregates; NULL when it is not.
 */
static char *
next_page_path(const char *next_url)
{
	const char *scheme_end;
	const char *path;

	if (strncmp(next_url, "https://", 8) != 0 && strncmp(next_url, "http://", 7) != 0)
		return NULL;
	scheme_end = strstr(next_url, "://") + 3;
	path = strchr(scheme_end, '/');
	if (path == NULL || strncmp(path, POLYGON_AGGS_PATH, strlen(POLYGON_AGGS_PATH)) != 0 ||
		strstr(path, "/../") != NULL)
		return NULL;
	return pstrdup(path);
}

static void
polygon_history_parse(MdHistoryPage *p, MdHttpRequest *req)
{
	MdFetch    *f = &p->fetch;
	JsonbContainer *root;
	JsonbValue *results;
	char	   *said;
	char	   *next_url;
	int			n;
	int			i;

	if ((root = md_polygon_answer(f, req, &said)) == NULL)
		return;

	results = md_json_get(root, "results", NULL);
	n = (results == NULL || results->type == jbvNull) ? 0 : md_json_array_size(results);
	if (n < 0)
	{
		md_history_malformed(p, "results is not an array");
		return;
	}
	md_history_bars_alloc(p, n);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *bar = md_json_container(md_json_elem(results, i));
		Numeric		v[5];
		static const char *const names[5] = {"o", "h", "l", "c", "v"};
		TimestampTz ts;
		int			c;

		if (bar == NULL || !md_json_epoch(md_json_get(bar, "t", NULL), 1000, &ts))
		{
			md_history_malformed(p, "a result without a millisecond time \"t\"");
			return;
		}
		for (c = 0; c < 5; c++)
			if (!md_json_number_or_null(md_json_get(bar, names[c], NULL), &v[c]))
			{
				md_history_malformed(p, psprintf("\"%s\" of a result is not a number", names[c]));
				return;
			}
		if (!md_history_add_bar(p, ts, v[0], v[1], v[2], v[3], v[4]))
			return;
	}
	next_url = md_json_string(md_json_get(root, "next_url", NULL));
	if (next_url != NULL)
	{
		p->next_path = next_page_path(next_url);
		if (p->next_path == NULL)
			md_history_malformed(p, "next_url is not a page of aggregates");
	}
}

const MdHistoryProvider md_history_polygon = {
	.name = "polygon",
	.supports = polygon_supports,
	.request_end = polygon_request_end,
	.build = polygon_history_build,
	.parse = polygon_history_parse,
};
