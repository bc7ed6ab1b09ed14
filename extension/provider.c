/*-------------------------------------------------------------------------
 *
 * extension/provider.c
 *	  Providers: the registry of implementations and the rows of
 *	  md.providers.
 *
 * An *implementation* (provider_<name>.c) is code that speaks a provider's
 * format; a *provider row* is its line in md.providers (URL, priority,
 * concurrency, budget). Whether a provider exists is asked here only, with
 * one query and one error, whoever asks: the sink, md_price, the
 * consumer, md_fetch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "provider.h"
#include "spi_util.h"

#define PROVIDERS_SQL \
	"SELECT name, rtrim(base_url, '/'), enabled, failover, max_concurrency," \
	"  rate_limit_per_minute" \
	" FROM md.providers ORDER BY priority, name"

#define UNKNOWN_PROVIDERS_SQL \
	"SELECT u.name FROM pg_catalog.unnest($1::text[]) u(name)" \
	" WHERE NOT EXISTS (SELECT 1 FROM md.providers p WHERE p.name = u.name)"

static const MdProvider *const implementations[] = {
	&md_provider_yahoo,
	&md_provider_alphavantage,
	&md_provider_finnhub,
	&md_provider_polygon,
	&md_provider_sandbox,
};

static SPIPlanPtr providers_plan = NULL;
static SPIPlanPtr unknown_plan = NULL;

const MdProvider *
md_provider_lookup(const char *name)
{
	size_t		i;

	for (i = 0; i < lengthof(implementations); i++)
		if (strcmp(implementations[i]->name, name) == 0)
			return implementations[i];
	return NULL;
}

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

List *
md_providers_unknown(ArrayType *names)
{
	Oid			argtypes[1] = {TEXTARRAYOID};
	Datum		args[1] = {PointerGetDatum(names)};
	List	   *unknown = NIL;
	uint64		i;

	md_spi_run(md_spi_plan(&unknown_plan, UNKNOWN_PROVIDERS_SQL, 1, argtypes),
			   args, NULL, true, 0, SPI_OK_SELECT, "provider check");
	for (i = 0; i < SPI_processed; i++)
		unknown = lappend(unknown, SPI_getvalue(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1));
	return unknown;
}

void
md_provider_unknown_error(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown provider \"%s\"", name),
			 errhint("Providers are listed in md.providers.")));
}

void
md_provider_require(ArrayType *names)
{
	List	   *unknown = md_providers_unknown(names);

	if (unknown != NIL)
		md_provider_unknown_error(linitial(unknown));
}

void
md_provider_require_one(const char *name)
{
	char	   *names[1] = {(char *) name};

	md_provider_require(md_text_array(names, 1));
}
