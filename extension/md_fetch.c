/*-------------------------------------------------------------------------
 *
 * extension/md_fetch.c
 *	  md_fetch() and md_fetch_many(): fetch now, whatever is stored.
 *
 * Both return one row per *attempt* (a fetch at one provider), in order:
 * with a provider named, one per symbol; with failover, a symbol that a
 * provider could not serve has a row for each provider tried, and its
 * last row is its outcome. Provider failures are rows with an error
 * class, not errors, so a batch always completes and every raw response
 * is kept; only bad arguments raise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "fetch.h"
#include "symbol.h"
#include "version.h"

#define FETCH_COLUMNS 11

static void
return_attempts(FunctionCallInfo fcinfo, MdFetchResult *result)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	for (i = 0; i < result->nattempts; i++)
	{
		MdFetch    *f = result->attempts[i];
		Datum		values[FETCH_COLUMNS];
		bool		nulls[FETCH_COLUMNS] = {false};
		bool		ok = (f->cls == MD_OK);

		values[0] = CStringGetTextDatum(f->symbol);
		values[1] = CStringGetTextDatum(f->provider);
		nulls[2] = nulls[3] = !ok;
		if (ok)
		{
			values[2] = NumericGetDatum(f->price);
			values[3] = TimestampTzGetDatum(f->ts);
		}
		nulls[4] = !ok || f->currency == NULL;
		if (!nulls[4])
			values[4] = CStringGetTextDatum(f->currency);
		nulls[5] = !ok || f->volume == NULL;
		if (!nulls[5])
			values[5] = NumericGetDatum(f->volume);
		nulls[6] = nulls[7] = ok;
		if (!ok)
		{
			values[6] = CStringGetTextDatum(md_error_class_word(f->cls));
			values[7] = CStringGetTextDatum(f->message);
		}
		nulls[8] = (f->http_status == 0);
		values[8] = Int32GetDatum((int32) f->http_status);
		nulls[9] = !f->responded;
		values[9] = Float8GetDatum(f->latency_ms);
		nulls[10] = (f->raw_response_id == 0);
		values[10] = Int64GetDatum(f->raw_response_id);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

static char *
provider_arg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
nobody_error(MdFetchResult *result)
{
	if (result->nobody)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no provider to fetch from"),
				 errdetail_internal("%s", result->nobody_reason)));
}

PG_FUNCTION_INFO_V1(md_fetch);
PG_FUNCTION_INFO_V1(md_fetch_many);

/* md_fetch(symbol, provider DEFAULT NULL) -> setof attempt */
Datum
md_fetch(PG_FUNCTION_ARGS)
{
	text	   *symbol_text;
	char	   *symbol;
	MdFetchResult *result;

	md_require_installed_version();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("symbol must not be null")));
	symbol_text = PG_GETARG_TEXT_PP(0);
	symbol = md_symbol_normalize_or_error(VARDATA_ANY(symbol_text),
										  VARSIZE_ANY_EXHDR(symbol_text));
	result = md_fetch_symbols(&symbol, 1, provider_arg(fcinfo, 1));
	nobody_error(result);
	return_attempts(fcinfo, result);
	PG_RETURN_VOID();
}

/* md_fetch_many(symbols text[], provider DEFAULT NULL) -> setof attempt */
Datum
md_fetch_many(PG_FUNCTION_ARGS)
{
	ArrayType  *array;
	Datum	   *elems;
	bool	   *elem_nulls;
	int			nelems;
	char	  **symbols;
	int			nsymbols = 0;
	MdFetchResult *result;
	int			i;

	md_require_installed_version();
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("symbols must not be null")));
	array = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("symbols must be a one-dimensional array")));
	deconstruct_array(array, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &nelems);
	if (nelems > MD_MAX_SYMBOLS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("md_fetch_many takes at most %d symbols, not %d", MD_MAX_SYMBOLS, nelems),
				 errhint("Fetch them in batches, or schedule them as polling jobs.")));
	symbols = palloc(sizeof(char *) * Max(nelems, 1));
	for (i = 0; i < nelems; i++)
	{
		char	   *symbol;
		int			j;

		CHECK_FOR_INTERRUPTS();
		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("symbols must not contain NULL")));
		symbol = md_symbol_normalize_or_error(VARDATA_ANY(DatumGetTextPP(elems[i])),
											  VARSIZE_ANY_EXHDR(DatumGetTextPP(elems[i])));
		/* a symbol asked twice is fetched once */
		for (j = 0; j < nsymbols && strcmp(symbols[j], symbol) != 0; j++)
			;
		if (j == nsymbols)
			symbols[nsymbols++] = symbol;
	}
	if (nsymbols == 0)
		PG_RETURN_VOID();
	result = md_fetch_symbols(symbols, nsymbols, provider_arg(fcinfo, 1));
	nobody_error(result);
	return_attempts(fcinfo, result);
	PG_RETURN_VOID();
}
