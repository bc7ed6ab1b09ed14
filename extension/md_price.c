/*-------------------------------------------------------------------------
 *
 * extension/md_price.c
 *	  md_price() and md_quote(): the latest price of a symbol.
 *
 * A price is *fresh* when we heard from its provider (fetched_at) within
 * max_age; the market's time ts may be days old when the market is closed.
 * With no provider named, the price with the newest market time wins.
 * A fresh row in md.latest_prices answers at once through one prepared
 * index look-up. On a miss (nothing stored, or nothing fresh) the price is
 * fetched now (fetch.c): from the named provider, or with failover by
 * priority; it is stored through the sink and answered. Only when no
 * provider can be asked at all (all disabled) does the miss raise MD001.
 *
 * md_price is the hot path (bench/README.md: at least 0.8x a plain SELECT
 * of the row), so the look-up plans are single index scans: a symbol has
 * a row per provider, a handful, and the newest is picked here, in C. An
 * ORDER BY ... LIMIT 1 in the statement costs a Sort and a Limit node
 * whose start-up and run took about a sixth of md_price's time (perf).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "errors.h"
#include "fetch.h"
#include "spi_util.h"
#include "symbol.h"
#include "version.h"

#define LATEST_SQL \
	"SELECT price, ts, provider, fetched_at FROM md.latest_prices" \
	" WHERE symbol = $1"

#define LATEST_AT_SQL \
	"SELECT price, ts, provider, fetched_at FROM md.latest_prices" \
	" WHERE symbol = $1 AND provider = $2"

typedef struct LatestPrice
{
	Numeric		price;
	TimestampTz ts;
	char	   *provider;
	TimestampTz fetched_at;
} LatestPrice;

static SPIPlanPtr latest_plan = NULL;
static SPIPlanPtr latest_at_plan = NULL;

/*
 * Is row a of the look-up newer than row b? The newest market time wins,
 * then the latest fetch, then (for a stable answer) the provider's name.
 */
static bool
newer(HeapTuple a, HeapTuple b, TupleDesc desc)
{
	bool		isnull;
	TimestampTz ts_a = DatumGetTimestampTz(SPI_getbinval(a, desc, 2, &isnull));
	TimestampTz ts_b = DatumGetTimestampTz(SPI_getbinval(b, desc, 2, &isnull));
	TimestampTz fetched_a;
	TimestampTz fetched_b;

	if (ts_a != ts_b)
		return ts_a > ts_b;
	fetched_a = DatumGetTimestampTz(SPI_getbinval(a, desc, 4, &isnull));
	fetched_b = DatumGetTimestampTz(SPI_getbinval(b, desc, 4, &isnull));
	if (fetched_a != fetched_b)
		return fetched_a > fetched_b;
	return strcmp(SPI_getvalue(a, desc, 3), SPI_getvalue(b, desc, 3)) < 0;
}

/*
 * Find the newest stored price of symbol (at provider, when not NULL).
 * Returns false when there is none. Results are copied out of SPI memory.
 */
static bool
lookup_latest(const char *symbol, const char *provider, LatestPrice *out)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	MemoryContext caller = CurrentMemoryContext;
	bool		found = false;

	args[0] = CStringGetTextDatum(symbol);
	args[1] = provider ? CStringGetTextDatum(provider) : (Datum) 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (provider != NULL)
		md_spi_run(md_spi_plan(&latest_at_plan, LATEST_AT_SQL, 2, argtypes),
				   args, NULL, true, 1, SPI_OK_SELECT, "price look-up");
	else
		md_spi_run(md_spi_plan(&latest_plan, LATEST_SQL, 1, argtypes),
				   args, NULL, true, 0, SPI_OK_SELECT, "price look-up");
	if (SPI_processed > 0)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		HeapTuple	tuple = SPI_tuptable->vals[0];
		MemoryContext spi;
		bool		isnull;
		uint64		i;

		for (i = 1; i < SPI_processed; i++)
			if (newer(SPI_tuptable->vals[i], tuple, desc))
				tuple = SPI_tuptable->vals[i];
		spi = MemoryContextSwitchTo(caller);

		out->price = DatumGetNumericCopy(SPI_getbinval(tuple, desc, 1, &isnull));
		out->ts = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 2, &isnull));
		out->provider = TextDatumGetCString(SPI_getbinval(tuple, desc, 3, &isnull));
		out->fetched_at = DatumGetTimestampTz(SPI_getbinval(tuple, desc, 4, &isnull));
		MemoryContextSwitchTo(spi);
		found = true;
	}
	else if (provider != NULL)
		md_provider_require_one(provider);
	SPI_finish();
	return found;
}

/*
 * The fresh latest price of the call's arguments (symbol, provider,
 * max_age): stored, or fetched now; or an error saying why there is none.
 */
static void
fresh_latest_price(FunctionCallInfo fcinfo, char **symbol_out, LatestPrice *latest)
{
	text	   *symbol_text;
	char	   *symbol;
	char	   *provider = NULL;
	Interval   *max_age;
	TimestampTz oldest_fresh;
	bool		found;
	MdFetchResult *result;
	MdFetch    *f;

	md_require_installed_version();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("symbol must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_age must not be null")));
	symbol_text = PG_GETARG_TEXT_PP(0);
	symbol = md_symbol_normalize_or_error(VARDATA_ANY(symbol_text),
										  VARSIZE_ANY_EXHDR(symbol_text));
	if (!PG_ARGISNULL(1))
		provider = text_to_cstring(PG_GETARG_TEXT_PP(1));
	max_age = PG_GETARG_INTERVAL_P(2);
	if (max_age->month < 0 || max_age->day < 0 || max_age->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_age must not be negative")));
	*symbol_out = symbol;

	found = lookup_latest(symbol, provider, latest);
	oldest_fresh = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
														   TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
														   PointerGetDatum(max_age)));
	if (found && latest->fetched_at >= oldest_fresh)
		return;

	/* a miss: ask the providers */
	result = md_fetch_symbols(&symbol, 1, provider);
	f = result->final[0];
	if (f != NULL && f->cls == MD_OK)
	{
		latest->price = f->price;
		latest->ts = f->ts;
		latest->provider = f->provider;
		latest->fetched_at = GetCurrentTransactionStartTimestamp();
		return;
	}
	if (f != NULL)
		md_fetch_raise(result, symbol);

	/* nobody could be asked: say what is stored */
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_MD_NO_PRICE),
				 provider ? errmsg("no price for symbol \"%s\" at provider \"%s\"", symbol, provider)
				 : errmsg("no price for symbol \"%s\"", symbol),
				 errdetail_internal("%s", result->nobody_reason),
				 errhint("Store one with md_ingest_price() or schedule polling with md_poll().")));
	ereport(ERROR,
			(errcode(ERRCODE_MD_NO_PRICE),
			 errmsg("no price for symbol \"%s\" fresher than %s", symbol,
					DatumGetCString(DirectFunctionCall1(interval_out,
														PointerGetDatum(max_age)))),
			 errdetail("The newest price, from %s, was fetched at %s. %s",
					   latest->provider, timestamptz_to_str(latest->fetched_at),
					   result->nobody_reason),
			 errhint("Pass a larger max_age, or schedule polling with md_poll().")));
}

PG_FUNCTION_INFO_V1(md_price);
PG_FUNCTION_INFO_V1(md_quote);

/* md_price(symbol, provider DEFAULT NULL, max_age DEFAULT '1 minute') -> numeric */
Datum
md_price(PG_FUNCTION_ARGS)
{
	LatestPrice latest;
	char	   *symbol;

	fresh_latest_price(fcinfo, &symbol, &latest);
	PG_RETURN_NUMERIC(latest.price);
}

/*
 * md_quote(symbol, provider, max_age) -> (symbol, price, ts, provider,
 * fetched_at, age)
 */
Datum
md_quote(PG_FUNCTION_ARGS)
{
	LatestPrice latest;
	char	   *symbol;
	TupleDesc	desc;
	Datum		values[6];
	bool		nulls[6] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "md_quote must return a composite type");
	desc = BlessTupleDesc(desc);

	fresh_latest_price(fcinfo, &symbol, &latest);
	values[0] = CStringGetTextDatum(symbol);
	values[1] = NumericGetDatum(latest.price);
	values[2] = TimestampTzGetDatum(latest.ts);
	values[3] = CStringGetTextDatum(latest.provider);
	values[4] = TimestampTzGetDatum(latest.fetched_at);
	values[5] = DirectFunctionCall2(timestamp_mi,
									TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
									TimestampTzGetDatum(latest.fetched_at));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
