/*-------------------------------------------------------------------------
 *
 * extension/fetch.c
 *	  Fetching prices from providers: one batch, or with failover.
 *
 * A *batch* is a set of fetches run concurrently: each provider's requests
 * share its md.providers.max_concurrency. For each fetch, in order: the
 * circuit breaker may skip it; a provider that needs a key and has none
 * fails as auth_failed without a request; the sandbox answers at once;
 * the others go over HTTP and are read by their provider's parser. Then
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
#include "kept_responses.h"
#include "secrets.h"
#include "sink.h"
#include "spi_util.h"

#define PROVIDERS_SQL \
	"SELECT name, rtrim(base_url, '/'), enabled, failover, max_concurrency," \
	"  rate_limit_per_minute" \
	" FROM md.providers ORDER BY priority, name"

#define RAW_IDS_SQL \
	"SELECT pg_catalog.nextval('md.raw_responses_id_seq')" \
	" FROM pg_catalog.generate_series(1, $1)"

#define RAW_INSERT_SQL \
	"INSERT INTO md.raw_responses" \
	" (id, provider, symbol, url, http_status, latency_ms, error_class, body)" \
	" SELECT * FROM ROWS FROM (pg_catalog.unnest($1::int8[])," \
	"  pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])," \
	"  pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::int4[])," \
	"  pg_catalog.unnest($6::float8[]), pg_catalog.unnest($7::text[])," \
	"  pg_catalog.unnest($8::text[]))" \
	" ON CONFLICT (id) DO NOTHING"

static SPIPlanPtr providers_plan = NULL;
static SPIPlanPtr raw_ids_plan = NULL;
static SPIPlanPtr raw_insert_plan = NULL;

List *
md_providers_load(void)
{
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	uint64		i;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	md_spi_run(md_spi_plan(&providers_plan, PROVIDERS_SQL, 0, NULL),
			   NULL, NULL, true, 0, SPI_OK_SELECT, "provider list");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tuple = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext spi = MemoryContextSwitchTo(caller);
		MdProviderInfo *p = palloc0(sizeof(MdProviderInfo));
		bool		isnull;

		p->name = TextDatumGetCString(SPI_getbinval(tuple, desc, 1, &isnull));
		p->base_url = TextDatumGetCString(SPI_getbinval(tuple, desc, 2, &isnull));
		p->enabled = DatumGetBool(SPI_getbinval(tuple, desc, 3, &isnull));
		p->failover = DatumGetBool(SPI_getbinval(tuple, desc, 4, &isnull));
		p->max_concurrency = DatumGetInt32(SPI_getbinval(tuple, desc, 5, &isnull));
		p->rate_limit_per_minute = DatumGetInt32(SPI_getbinval(tuple, desc, 6, &isnull));
		p->impl = md_provider_lookup(p->name);
		result = lappend(result, p);
		MemoryContextSwitchTo(spi);
	}
	SPI_finish();
	return result;
}

MdProviderInfo *
md_provider_find(List *providers, const char *name, int *index)
{
	ListCell   *lc;

	foreach(lc, providers)
	{
		MdProviderInfo *p = lfirst(lc);

		if (strcmp(p->name, name) == 0)
		{
			if (index)
				*index = foreach_current_index(lc);
			return p;
		}
	}
	return NULL;
}

/* a body as text we can store: masked, or hex when it is not valid text */
static char *
storable_body(MdFetch *f)
{
	if (f->body == NULL)
		return NULL;
	if (memchr(f->body, '\0', f->body_len) == NULL &&
		pg_verifymbstr(f->body, f->body_len, true))
		return md_mask_secret(f->body, f->key);
	else
	{
		char	   *hex = palloc(f->body_len * 2 + 3);

		hex[0] = '\\';
		hex[1] = 'x';
		hex[2 + hex_encode(f->body, f->body_len, hex + 2)] = '\0';
		return hex;
	}
}

/* the caller's callback for each finished fetch (md_fetch_perform_each) */
typedef struct FetchDone
{
	MdFetchDone done;
	MdHttpIdle	idle;
	void	   *arg;
} FetchDone;

static void finish_fetch(MdFetch *f);

/* the run waits for the network: the caller's turn */
static void
fetch_idle(void *arg)
{
	FetchDone  *cb = (FetchDone *) arg;

	cb->idle(cb->arg);
}

/* the provider's answer is in: read it, mask secrets, check the price */
static void
read_answer(MdHttpRequest *req, void *arg)
{
	MdFetch    *f = (MdFetch *) req->private;
	FetchDone  *cb = (FetchDone *) arg;

	f->responded = true;
	f->http_status = req->status;
	f->latency_ms = req->latency_ms;
	f->body = req->body;
	f->body_len = req->body_len;
	f->transport_detail = req->error_detail;
	md_provider_lookup(f->provider)->parse(f, req);
	finish_fetch(f);
	if (cb->done != NULL)
		cb->done(f, cb->arg);
}

/* after parsing: secrets out of everything kept, the price row checked */
static void
finish_fetch(MdFetch *f)
{
	/* the body as it will be stored, masked while the key is known */
	f->body = storable_body(f);
	f->body_len = f->body ? strlen(f->body) : 0;
	if (f->key != NULL)
	{
		char	   *escaped = md_http_escape(f->key);

		f->url = md_mask_secret(md_mask_secret(f->url, f->key), escaped);
		f->message = md_mask_secret(f->message, f->key);
	}
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

/* every response of the batch into md.raw_responses; ids into the fetches */
static void
store_raw_responses(MdFetch *fetches, int n)
{
	MdFetch   **kept = palloc(sizeof(MdFetch *) * n);
	int			nkept = 0;
	int			i;
	Datum		args[1];
	Oid			id_types[1] = {INT4OID};

	for (i = 0; i < n; i++)
		if (fetches[i].responded)
			kept[nkept++] = &fetches[i];
	if (nkept == 0)
		return;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int32GetDatum(nkept);
	md_spi_run(md_spi_plan(&raw_ids_plan, RAW_IDS_SQL, 1, id_types),
			   args, NULL, false, 0, SPI_OK_SELECT, "raw response ids");
	if (SPI_processed != (uint64) nkept)
		elog(ERROR, "got " UINT64_FORMAT " raw response ids for %d responses",
			 SPI_processed, nkept);
	for (i = 0; i < nkept; i++)
	{
		bool		isnull;

		kept[i]->raw_response_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1, &isnull));
	}
	md_raw_responses_insert(kept, nkept);
	SPI_finish();
}

void
md_raw_responses_insert(MdFetch **kept, int nkept)
{
	Datum		args[8];
	Oid			types[8] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, FLOAT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum	   *ids = palloc(sizeof(Datum) * nkept);
	Datum	   *statuses = palloc(sizeof(Datum) * nkept);
	bool	   *status_nulls = palloc(sizeof(bool) * nkept);
	Datum	   *latencies = palloc(sizeof(Datum) * nkept);
	char	  **providers = palloc(sizeof(char *) * nkept);
	char	  **symbols = palloc(sizeof(char *) * nkept);
	char	  **urls = palloc(sizeof(char *) * nkept);
	char	  **classes = palloc(sizeof(char *) * nkept);
	char	  **bodies = palloc(sizeof(char *) * nkept);
	int			i;

	for (i = 0; i < nkept; i++)
	{
		MdFetch    *f = kept[i];

		ids[i] = Int64GetDatum(f->raw_response_id);
		providers[i] = f->provider;
		symbols[i] = f->symbol;
		urls[i] = f->url;
		statuses[i] = Int32GetDatum((int32) f->http_status);
		status_nulls[i] = (f->http_status == 0);
		latencies[i] = Float8GetDatum(f->latency_ms);
		classes[i] = (char *) md_error_class_word(f->cls);
		bodies[i] = f->body;
	}
	args[0] = PointerGetDatum(md_datum_array(ids, NULL, nkept, INT8OID));
	args[1] = PointerGetDatum(md_text_array(providers, nkept));
	args[2] = PointerGetDatum(md_text_array(symbols, nkept));
	args[3] = PointerGetDatum(md_text_array(urls, nkept));
	args[4] = PointerGetDatum(md_datum_array(statuses, status_nulls, nkept, INT4OID));
	args[5] = PointerGetDatum(md_datum_array(latencies, NULL, nkept, FLOAT8OID));
	args[6] = PointerGetDatum(md_text_array(classes, nkept));
	args[7] = PointerGetDatum(md_text_array(bodies, nkept));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	md_spi_run(md_spi_plan(&raw_insert_plan, RAW_INSERT_SQL, 8, types),
			   args, NULL, false, 0, SPI_OK_INSERT, "storing raw responses");
	SPI_finish();
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
		if (md_sink_check_row(row) != NULL)
			elog(ERROR, "price row of \"%s\" changed after its check", f->symbol);
	}
	if (batch->nrows > 0)
		md_sink_ingest(batch);
}

void
md_fetch_perform(MdFetch *fetches, int n, List *providers)
{
	md_fetch_perform_each(fetches, n, providers, NULL, NULL, NULL);
}

void
md_fetch_perform_each(MdFetch *fetches, int n, List *providers,
					  MdFetchDone done, MdHttpIdle idle, void *arg)
{
	FetchDone	cb = {done, idle, arg};
	bool	   *sent = palloc0(sizeof(bool) * Max(n, 1));
	int			ngroups = list_length(providers);
	int		   *limits = palloc(sizeof(int) * Max(ngroups, 1));
	char	  **keys = palloc0(sizeof(char *) * Max(ngroups, 1));
	bool	   *key_read = palloc0(sizeof(bool) * Max(ngroups, 1));
	MdHttpRequest *requests = palloc0(sizeof(MdHttpRequest) * n);
	int			nrequests = 0;
	ListCell   *lc;
	int			i;

	foreach(lc, providers)
		limits[foreach_current_index(lc)] = ((MdProviderInfo *) lfirst(lc))->max_concurrency;

	for (i = 0; i < n; i++)
	{
		MdFetch    *f = &fetches[i];
		int			g;
		MdProviderInfo *p = md_provider_find(providers, f->provider, &g);

		f->cls = MD_OK;
		if (p == NULL)
			elog(ERROR, "provider \"%s\" vanished", f->provider);
		f->base_url = p->base_url;
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
				keys[g] = md_secret_key(p->name);
				key_read[g] = true;
			}
			if (keys[g] == NULL)
			{
				md_fetch_fail(f, MD_AUTH_FAILED,
							  "no API key configured for provider %s", f->provider);
				continue;
			}
			f->key = keys[g];
		}
		if (p->impl->answer != NULL)
		{
			p->impl->answer(f);
			continue;
		}
		p->impl->build(f, &requests[nrequests]);
		f->url = requests[nrequests].url;
		requests[nrequests].group = g;
		requests[nrequests].private = f;
		sent[i] = true;
		nrequests++;
	}

	/* those settled without HTTP first; the others as their answers come */
	for (i = 0; i < n; i++)
		if (!sent[i])
		{
			finish_fetch(&fetches[i]);
			if (done != NULL)
				done(&fetches[i], arg);
		}
	md_http_run(requests, nrequests, limits, ngroups, read_answer,
				idle != NULL ? fetch_idle : NULL, &cb);

	/* the keys were in palloc'd memory: wipe them */
	for (i = 0; i < ngroups; i++)
		if (keys[i] != NULL)
			explicit_bzero(keys[i], strlen(keys[i]));
	for (i = 0; i < n; i++)
		fetches[i].key = NULL;
}

void
md_fetch_store(MdFetch *fetches, int n)
{
	store_raw_responses(fetches, n);
	/* a worker storing one job while others are fetched: keep them going */
	md_http_pump();
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
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown provider \"%s\"", provider),
					 errhint("Providers are listed in md.providers.")));
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
