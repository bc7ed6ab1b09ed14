/*-------------------------------------------------------------------------
 *
 * extension/fetch.c
 *	  Fetching prices from providers: one batch, or with failover.
 *
 * A *batch* is a set of fetches run concurrently: each provider's requests
 * share its md.providers.max_concurrency. For each fetch, in order: the
 * circuit breaker may skip it; a provider that needs a key and has none
 * fails as auth_failed without a request; the sandbox answers at once;
 * the others take a token of the provider's request budget
 * (rate_limit_per_minute, shared by every process of the database: the
 * scheduler, md_price, md_fetch, the API's misses), failing as
 * rate_limited without a request when it is spent, and go over HTTP to be
 * read by their provider's parser. Then
 * every response is stored in md.raw_responses (secrets masked), and the
 * prices go through the sink with observed_now, carrying their
 * raw_response_id.
 *
 * Failover runs batches provider by provider: all symbols at the first
 * provider, the ones that failed there at the next, and so on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/lsyscache.h"

#include "errors.h"
#include "fetch.h"
#include "health.h"
#include "fetch_outcome.h"
#include "kept_responses.h"
#include "raw_responses.h"
#include "secrets.h"
#include "sink.h"
#include "spi_util.h"

/*
 * A round: fetches started together. The ones settled before any HTTP
 * (refused, keyless, the sandbox) are handed out first, then the others
 * as their answers come in.
 */
struct MdFetchRound
{
	MdFetch    *fetches;
	int			n;
	int		   *unsent;			/* fetches settled without HTTP, in order */
	int			nunsent;
	int			next_unsent;
	MdHttpRequest *requests;
	int		   *limits;
	char	  **keys;			/* per provider, wiped at the end */
	int			nkeys;
	MdHttpRun  *http;
	MemoryContext cxt;
};

static void finish_fetch(MdFetch *f);

/* the provider's answer is in: read it, mask secrets, check the price */
static MdFetch *
read_answer(MdHttpRequest *req)
{
	MdFetch    *f = (MdFetch *) req->private;

	md_fetch_take_response(f, req);
	md_provider_lookup(f->provider)->parse(f, req);
	finish_fetch(f);
	return f;
}

/* after parsing: secrets out of everything kept, the price row checked */
static void
finish_fetch(MdFetch *f)
{
	md_raw_response_mask(f);
	if (f->cls == MD_OK)
	{
		MdPriceRow	row = {0};
		char	   *problem;

		row.symbol = f->symbol;
		row.provider = f->provider;
		row.price = f->price;
		row.ts = f->ts;
		row.volume = f->volume;
		row.currency = f->currency;
		problem = md_sink_check_row(&row);
		if (problem != NULL)
			md_fetch_malformed(f, problem);
	}
	if (f->cls != MD_OK)
		ereport(LOG,
				(errmsg("marketdata: fetch of \"%s\" at %s failed: %s: %s",
						f->symbol, f->provider, md_error_class_word(f->cls), f->message),
				 f->transport_detail
				 ? errdetail_internal("%s", md_mask_secret(f->transport_detail, f->key)) : 0));
	if (f->responded)
		md_health_record(f);
}

/* the prices of the batch through the sink */
static void
ingest_prices(MdFetch *fetches, int n)
{
	MdPriceBatch *batch = md_batch_create(n, true);
	int			i;

	for (i = 0; i < n; i++)
	{
		MdFetch    *f = &fetches[i];
		MdPriceRow *row;

		if (f->cls != MD_OK)
			continue;
		row = md_batch_add(batch);
		row->symbol = f->symbol;
		row->provider = f->provider;
		row->price = f->price;
		row->ts = f->ts;
		row->volume = f->volume;
		row->currency = f->currency;
		row->raw_response_id = f->raw_response_id;
		row->meta = &f->meta;
		if (md_sink_check_row(row) != NULL)
			elog(ERROR, "price row of \"%s\" changed after its check", f->symbol);
	}
	if (batch->nrows > 0)
		md_sink_ingest(batch);
}

MdFetchRound *
md_fetch_start(MdFetch *fetches, int n, List *providers)
{
	MdFetchRound *round = palloc0(sizeof(MdFetchRound));
	int			ngroups = list_length(providers);
	bool	   *key_read = palloc0(sizeof(bool) * Max(ngroups, 1));
	int			nrequests = 0;
	ListCell   *lc;
	int			i;

	round->fetches = fetches;
	round->n = n;
	round->cxt = CurrentMemoryContext;
	round->unsent = palloc(sizeof(int) * Max(n, 1));
	round->limits = palloc(sizeof(int) * Max(ngroups, 1));
	round->keys = palloc0(sizeof(char *) * Max(ngroups, 1));
	round->nkeys = ngroups;
	round->requests = palloc0(sizeof(MdHttpRequest) * Max(n, 1));
	foreach(lc, providers)
		round->limits[foreach_current_index(lc)] = ((MdProviderInfo *) lfirst(lc))->max_concurrency;

	for (i = 0; i < n; i++)
	{
		MdFetch    *f = &fetches[i];
		MdHttpRequest *req = &round->requests[nrequests];
		int			g;
		int			wait_s = 0;
		MdProviderInfo *p = md_provider_find(providers, f->provider, &g);

		f->cls = MD_OK;
		if (p == NULL)
			elog(ERROR, "provider \"%s\" vanished", f->provider);
		f->base_url = p->base_url;
		round->unsent[round->nunsent++] = i;
		if (p->impl == NULL)
		{
			md_fetch_fail(f, MD_UNAVAILABLE, "provider %s has no implementation in marketdata",
						  f->provider);
			continue;
		}
		if (!md_health_admit(f))
			continue;
		if (p->impl->needs_key)
		{
			if (!key_read[g])
			{
				round->keys[g] = md_secret_key(p->name);
				key_read[g] = true;
			}
			if (round->keys[g] == NULL)
			{
				md_fetch_fail(f, MD_AUTH_FAILED,
							  "no API key configured for provider %s", f->provider);
				continue;
			}
			f->key = round->keys[g];
		}
		if (p->impl->answer != NULL)
		{
			p->impl->answer(f);
			continue;
		}
		if (!md_health_take_token(p->name, p->rate_limit_per_minute, &wait_s))
		{
			md_fetch_fail(f, MD_RATE_LIMITED,
						  "provider %s: our budget of %d requests a minute is spent",
						  p->name, p->rate_limit_per_minute);
			f->retry_after = wait_s;
			continue;
		}
		/* it goes over HTTP after all */
		round->nunsent--;
		p->impl->build(f, req);
		f->url = req->url;
		req->group = g;
		req->private = f;
		nrequests++;
	}
	round->http = md_http_start(round->requests, nrequests, round->limits, ngroups);
	return round;
}

MdFetch *
md_fetch_next(MdFetchRound *round, long timeout_ms)
{
	MemoryContext old;
	MdHttpRequest *req;
	MdFetch    *f;

	old = MemoryContextSwitchTo(round->cxt);
	if (round->next_unsent < round->nunsent)
	{
		f = &round->fetches[round->unsent[round->next_unsent++]];
		finish_fetch(f);
	}
	else if ((req = md_http_next(round->http, timeout_ms)) != NULL)
		f = read_answer(req);
	else
		f = NULL;
	MemoryContextSwitchTo(old);
	return f;
}

bool
md_fetch_finished(MdFetchRound *round)
{
	return round->next_unsent == round->nunsent && md_http_finished(round->http);
}

void
md_fetch_pump(MdFetchRound *round)
{
	md_http_pump(round->http);
}

void
md_fetch_end(MdFetchRound *round)
{
	int			i;

	md_http_end(round->http);
	/* the keys were in palloc'd memory: wipe them */
	for (i = 0; i < round->nkeys; i++)
		if (round->keys[i] != NULL)
			explicit_bzero(round->keys[i], strlen(round->keys[i]));
	for (i = 0; i < round->n; i++)
		round->fetches[i].key = NULL;
}

void
md_fetch_perform(MdFetch *fetches, int n, List *providers)
{
	MdFetchRound *round = md_fetch_start(fetches, n, providers);

	while (md_fetch_next(round, -1) != NULL)
		;
	md_fetch_end(round);
}

void
md_fetch_ingest(MdFetch *fetches, int n)
{
	ingest_prices(fetches, n);
}

void
md_fetch_store(MdFetch *fetches, int n)
{
	md_raw_responses_store(fetches, n);
	ingest_prices(fetches, n);
}

void
md_fetch_batch(MdFetch *fetches, int n, List *providers)
{
	md_fetch_perform(fetches, n, providers);
	md_fetch_store(fetches, n);
}

MdFetchResult *
md_fetch_symbols(char **symbols, int nsymbols, const char *provider)
{
	MdFetchResult *result = palloc0(sizeof(MdFetchResult));
	List	   *providers = md_providers_load();
	List	   *chain = NIL;
	int		   *pending = palloc(sizeof(int) * nsymbols);
	int			npending = nsymbols;
	int			capacity = nsymbols;
	ListCell   *lc;
	int			i;

	result->final = palloc0(sizeof(MdFetch *) * nsymbols);
	result->attempts = palloc(sizeof(MdFetch *) * capacity);

	if (provider != NULL)
	{
		MdProviderInfo *p = md_provider_find(providers, provider, NULL);

		if (p == NULL)
			md_provider_unknown_error(provider);
		if (p->enabled)
			chain = list_make1(p);
		else
			result->nobody_reason = psprintf("Provider %s is disabled.", provider);
	}
	else
	{
		foreach(lc, providers)
		{
			MdProviderInfo *p = lfirst(lc);

			if (p->enabled && p->failover && p->impl != NULL)
				chain = lappend(chain, p);
		}
		if (chain == NIL)
			result->nobody_reason = pstrdup("No provider in md.providers is enabled for failover.");
	}
	result->nobody = (chain == NIL);

	for (i = 0; i < nsymbols; i++)
		pending[i] = i;
	foreach(lc, chain)
	{
		MdProviderInfo *p = lfirst(lc);
		MdFetch    *batch;
		int			still = 0;

		if (npending == 0)
			break;
		batch = palloc0(sizeof(MdFetch) * npending);
		for (i = 0; i < npending; i++)
		{
			batch[i].symbol = symbols[pending[i]];
			batch[i].provider = p->name;
		}
		md_fetch_batch(batch, npending, providers);
		for (i = 0; i < npending; i++)
		{
			if (result->nattempts == capacity)
			{
				capacity *= 2;
				result->attempts = repalloc(result->attempts, sizeof(MdFetch *) * capacity);
			}
			result->attempts[result->nattempts++] = &batch[i];
			result->final[pending[i]] = &batch[i];
			if (md_error_class_fails_over(batch[i].cls))
				pending[still++] = pending[i];
		}
		npending = still;
	}
	return result;
}

void
md_fetch_raise(MdFetchResult *result, const char *symbol)
{
	MdFetch    *tried[64];
	int			ntried = 0;
	bool		same = true;
	int			min_retry = INT_MAX;
	StringInfoData detail;
	int			i;

	for (i = 0; i < result->nattempts && ntried < (int) lengthof(tried); i++)
	{
		MdFetch    *f = result->attempts[i];

		if (strcmp(f->symbol, symbol) != 0)
			continue;
		tried[ntried++] = f;
		if (f->cls != tried[0]->cls)
			same = false;
		if (f->cls == MD_RATE_LIMITED)
			min_retry = Min(min_retry, f->retry_after);
	}
	if (ntried == 0)
		elog(ERROR, "no fetch of \"%s\" to report", symbol);
	/* the error rolls back their md.raw_responses rows: keep them aside */
	md_kept_responses_keep(tried, ntried);

	if (same && tried[0]->cls == MD_RATE_LIMITED)
		ereport(ERROR,
				(errcode(ERRCODE_MD_RATE_LIMITED),
				 ntried == 1 ? errmsg_internal("%s", tried[0]->message)
				 : errmsg("every provider rate limited the fetch of \"%s\", the soonest retry is after %d s",
						  symbol, min_retry),
				 errdetail("Retry after %d s.", min_retry)));
	if (ntried == 1)
		ereport(ERROR,
				(errcode(md_error_class_sqlstate(tried[0]->cls)),
				 errmsg_internal("%s", tried[0]->message),
				 tried[0]->cls == MD_AUTH_FAILED && tried[0]->http_status == 0
				 ? errhint("Set the environment variable MARKETDATA_%s_KEY of the server or marketdata.secrets_file.",
						   asc_toupper(tried[0]->provider, strlen(tried[0]->provider)))
				 : 0));

	initStringInfo(&detail);
	for (i = 0; i < ntried; i++)
		appendStringInfo(&detail, "%s%s: %s: %s", i ? "\n" : "", tried[i]->provider,
						 md_error_class_word(tried[i]->cls), tried[i]->message);
	ereport(ERROR,
			(errcode(same ? md_error_class_sqlstate(tried[0]->cls) : ERRCODE_MD_UNAVAILABLE),
			 errmsg("no provider could give a price for symbol \"%s\"", symbol),
			 errdetail_internal("%s", detail.data)));
}
