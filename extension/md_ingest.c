/*-------------------------------------------------------------------------
 *
 * extension/md_ingest.c
 *	  md_ingest_price() and md_ingest_prices(): users push prices by SQL
 *	  through the same sink as every other path.
 *
 * A bad row refuses the whole call with an error naming it: a caller who
 * sent a batch learns what to fix, and nothing half-applied remains.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "sink.h"
#include "version.h"

PG_FUNCTION_INFO_V1(md_ingest_price);
PG_FUNCTION_INFO_V1(md_ingest_prices);

static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

static void
check_or_error(MdPriceRow *row, int position)
{
	char	   *problem = md_sink_check_row(row);

	if (problem != NULL)
	{
		if (position > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row %d: %s", position, problem)));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem)));
	}
}

/*
 * md_ingest_price(symbol, provider, price, ts, volume, currency,
 *				   raw_response_id) -> boolean: true when the price was new.
 */
Datum
md_ingest_price(PG_FUNCTION_ARGS)
{
	MdPriceBatch *batch;
	MdPriceRow *row;

	md_require_installed_version();
	batch = md_batch_create(1, false);
	row = md_batch_add(batch);
	require_arg(fcinfo, 0, "symbol");
	require_arg(fcinfo, 1, "provider");
	require_arg(fcinfo, 2, "price");
	require_arg(fcinfo, 3, "ts");
	row->symbol = text_to_cstring(PG_GETARG_TEXT_PP(0));
	row->provider = text_to_cstring(PG_GETARG_TEXT_PP(1));
	row->price = PG_GETARG_NUMERIC(2);
	row->ts = PG_GETARG_TIMESTAMPTZ(3);
	row->volume = PG_ARGISNULL(4) ? NULL : PG_GETARG_NUMERIC(4);
	row->currency = PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));
	row->raw_response_id = PG_ARGISNULL(6) ? 0 : PG_GETARG_INT64(6);
	check_or_error(row, 0);

	PG_RETURN_BOOL(md_sink_ingest(batch) == 1);
}

/* Deconstruct a one-dimensional array argument; NULL argument gives n = -1. */
static int
array_arg(FunctionCallInfo fcinfo, int argno, Oid type, int16 len, bool byval,
		  char align, Datum **values, bool **nulls)
{
	ArrayType  *a;
	int			n;

	if (PG_ARGISNULL(argno))
		return -1;
	a = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("argument %d must be a one-dimensional array", argno + 1)));
	deconstruct_array(a, type, len, byval, align, values, nulls, &n);
	return n;
}

/*
 * md_ingest_prices(symbols[], providers[], prices[], ts[], volumes[],
 *					currencies[], raw_response_ids[]) -> integer: the number
 * of new prices. The first four arrays are required and of one length; the
 * optional ones are NULL or of the same length.
 */
Datum
md_ingest_prices(PG_FUNCTION_ARGS)
{
	static const char *const names[7] = {"symbols", "providers", "prices", "ts",
	"volumes", "currencies", "raw_response_ids"};
	Datum	   *values[7];
	bool	   *nulls[7];
	int			count[7];
	MdPriceBatch *batch;
	int			n;
	int			i;

	md_require_installed_version();
	for (i = 0; i < 4; i++)
		require_arg(fcinfo, i, names[i]);
	count[0] = array_arg(fcinfo, 0, TEXTOID, -1, false, TYPALIGN_INT, &values[0], &nulls[0]);
	count[1] = array_arg(fcinfo, 1, TEXTOID, -1, false, TYPALIGN_INT, &values[1], &nulls[1]);
	count[2] = array_arg(fcinfo, 2, NUMERICOID, -1, false, TYPALIGN_INT, &values[2], &nulls[2]);
	count[3] = array_arg(fcinfo, 3, TIMESTAMPTZOID, sizeof(TimestampTz), FLOAT8PASSBYVAL,
						 TYPALIGN_DOUBLE, &values[3], &nulls[3]);
	count[4] = array_arg(fcinfo, 4, NUMERICOID, -1, false, TYPALIGN_INT, &values[4], &nulls[4]);
	count[5] = array_arg(fcinfo, 5, TEXTOID, -1, false, TYPALIGN_INT, &values[5], &nulls[5]);
	count[6] = array_arg(fcinfo, 6, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
						 TYPALIGN_DOUBLE, &values[6], &nulls[6]);
	n = count[0];
	for (i = 1; i < 7; i++)
		if (count[i] != n && !(i >= 4 && count[i] == -1))
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("%s has %d elements but symbols has %d",
							names[i], count[i], n)));

	batch = md_batch_create(n, false);
	for (i = 0; i < n; i++)
	{
		MdPriceRow *row = md_batch_add(batch);
		int			a;

		for (a = 0; a < 4; a++)
			if (nulls[a][i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("row %d: %s must not contain nulls", i + 1, names[a])));
		row->symbol = TextDatumGetCString(values[0][i]);
		row->provider = TextDatumGetCString(values[1][i]);
		row->price = DatumGetNumeric(values[2][i]);
		row->ts = DatumGetTimestampTz(values[3][i]);
		if (count[4] >= 0 && !nulls[4][i])
			row->volume = DatumGetNumeric(values[4][i]);
		if (count[5] >= 0 && !nulls[5][i])
			row->currency = TextDatumGetCString(values[5][i]);
		if (count[6] >= 0 && !nulls[6][i])
			row->raw_response_id = DatumGetInt64(values[6][i]);
		check_or_error(row, i + 1);
	}
	PG_RETURN_INT32(md_sink_ingest(batch));
}
