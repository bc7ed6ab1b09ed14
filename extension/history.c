/*-------------------------------------------------------------------------
 *
 * extension/history.c
 *	  Fetching a history range: requests cut to the provider's depth,
 *	  pages followed, responses kept.
 *
 * The requests of a range go out concurrently within the provider's
 * md.providers.max_concurrency; the next pages of those that have one
 * (Polygon's next_url) go out in the following round, until none is
 * left. A provider's next page is always asked of our configured
 * base_url with the key only there: a next_url names the provider's own
 * host, which is not where we were told to go.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"

#include "errors.h"
#include "fetch_outcome.h"
#include "history.h"
#include "raw_responses.h"
#include "secrets.h"

/* a next_url chain this long is the provider looping, not history */
#define MD_HISTORY_MAX_PAGES 10000

static const MdHistoryProvider *const implementations[] = {
	&md_history_yahoo,
	&md_history_polygon,
	&md_history_alphavantage,
	&md_history_finnhub,
	&md_history_sandbox,
};

const MdHistoryProvider *
md_history_lookup(const char *provider)
{
	size_t		i;

	for (i = 0; i < lengthof(implementations); i++)
		if (strcmp(implementations[i]->name, provider) == 0)
			return implementations[i];
	return NULL;
}

/* the pages fetched so far, growing */
typedef struct Pages
{
	MdHistoryPage **all;
	int			n;
	int			capacity;
} Pages;

static MdHistoryPage *
new_page(Pages *pages, const MdProviderInfo *p, const char *symbol, MdBarStep step,
		 TimestampTz from, TimestampTz to)
{
	MdHistoryPage *page = palloc0(sizeof(MdHistoryPage));

	if (pages->n == pages->capacity)
	{
		pages->capacity = Max(16, pages->capacity * 2);
		pages->all = pages->all ? repalloc(pages->all, sizeof(MdHistoryPage *) * pages->capacity)
			: palloc(sizeof(MdHistoryPage *) * pages->capacity);
	}
	pages->all[pages->n++] = page;
	page->fetch.symbol = pstrdup(symbol);
	page->fetch.provider = p->name;
	page->fetch.base_url = p->base_url;
	page->step = step;
	page->from = from;
	page->to = to;
	return page;
}

/* the answer of a page's request is in */
static void
read_page(MdHttpRequest *req, const MdHistoryProvider *h)
{
	MdHistoryPage *page = (MdHistoryPage *) req->private;
	MdFetch    *f = &page->fetch;

	md_fetch_take_response(f, req);
	h->parse(page, req);
	md_history_finish_page(page);
}

/* after parsing: secrets out of what is kept */
static void
settle(MdHistoryPage *page)
{
	MdFetch    *f = &page->fetch;

	md_raw_response_mask(f);
	if (f->cls != MD_OK)
		ereport(LOG,
				(errmsg("marketdata: history of \"%s\" at %s failed: %s: %s",
						f->symbol, f->provider, md_error_class_word(f->cls), f->message),
				 f->transport_detail
				 ? errdetail_internal("%s", md_mask_secret(f->transport_detail, f->key)) : 0));
}

static int
page_cmp(const void *a, const void *b)
{
	const MdHistoryPage *x = a;
	const MdHistoryPage *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	return x->page - y->page;
}

MdHistoryPage *
md_history_fetch(const char *symbol, const char *provider, MdBarStep step,
				 TimestampTz from, TimestampTz to, int *npages)
{
	List	   *providers = md_providers_load();
	MdProviderInfo *p = md_provider_find(providers, provider, NULL);
	const MdHistoryProvider *h;
	const char *why = NULL;
	char	   *key = NULL;
	Pages		pages = {0};
	MdHistoryPage *result;
	MdFetch   **fetches;
	int			round_start;
	int			i;

	if (p == NULL)
		md_provider_unknown_error(provider);
	if (!p->enabled)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("provider %s is disabled", provider)));
	h = md_history_lookup(provider);
	if (h == NULL || p->impl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("provider %s has no history in marketdata", provider)));
	if (!h->supports(step, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("provider %s has no bars at that interval", provider),
				 errdetail_internal("%s", why)));
	if (from >= to)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the history range must end after it starts")));

	/* the requests, each within the provider's depth */
	{
		TimestampTz start = from;

		while (start < to)
		{
			TimestampTz end = h->request_end(step, start, to);

			if (end <= start || end > to)
				elog(ERROR, "provider %s cut its history range badly", provider);
			new_page(&pages, p, symbol, step, start, end);
			start = end;
		}
	}
	if (p->impl->needs_key)
		key = md_secret_key(p->name);

	for (round_start = 0; round_start < pages.n;)
	{
		int			round_end = pages.n;
		MdHttpRequest *requests = palloc0(sizeof(MdHttpRequest) * (round_end - round_start));
		int			nrequests = 0;
		int			limit = p->max_concurrency;

		for (i = round_start; i < round_end; i++)
		{
			MdHistoryPage *page = pages.all[i];

			if (p->impl->needs_key && key == NULL)
			{
				md_fetch_fail(&page->fetch, MD_AUTH_FAILED,
							  "no API key configured for provider %s", provider);
				continue;
			}
			page->fetch.key = key;
			if (h->answer != NULL)
			{
				h->answer(page);
				md_history_finish_page(page);
				continue;
			}
			h->build(page, &requests[nrequests]);
			page->fetch.url = requests[nrequests].url;
			requests[nrequests].group = 0;
			requests[nrequests].private = page;
			nrequests++;
		}
		if (nrequests > 0)
		{
			MdHttpRun  *run = md_http_start(requests, nrequests, &limit, 1);
			MdHttpRequest *req;

			while ((req = md_http_next(run, -1)) != NULL)
				read_page(req, h);
			md_http_end(run);
		}

		/* the next pages, for the next round */
		for (i = round_start; i < round_end; i++)
		{
			MdHistoryPage *page = pages.all[i];
			MdHistoryPage *next;

			if (page->fetch.cls != MD_OK || page->next_path == NULL)
				continue;
			if (page->page + 1 >= MD_HISTORY_MAX_PAGES ||
				(page->page_path != NULL && strcmp(page->page_path, page->next_path) == 0))
			{
				md_history_malformed(page, "the next page is this page again");
				continue;
			}
			next = new_page(&pages, p, symbol, step, page->from, page->to);
			next->page_path = page->next_path;
			next->page = page->page + 1;
		}
		round_start = round_end;
	}

	for (i = 0; i < pages.n; i++)
		settle(pages.all[i]);
	if (key != NULL)
		explicit_bzero(key, strlen(key));
	for (i = 0; i < pages.n; i++)
		pages.all[i]->fetch.key = NULL;
	fetches = palloc(sizeof(MdFetch *) * Max(pages.n, 1));
	for (i = 0; i < pages.n; i++)
		fetches[i] = &pages.all[i]->fetch;
	md_raw_responses_store_each(fetches, pages.n);

	/* the pages in the order of their times, as one array */
	result = palloc(sizeof(MdHistoryPage) * Max(pages.n, 1));
	for (i = 0; i < pages.n; i++)
		result[i] = *pages.all[i];
	qsort(result, pages.n, sizeof(MdHistoryPage), page_cmp);
	*npages = pages.n;
	return result;
}
