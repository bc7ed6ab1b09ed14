/*-------------------------------------------------------------------------
 *
 * extension/sink.c
 *	  The one idempotent ingest path for prices (design invariant 1).
 *
 * A *batch* is a set of price rows checked by md_sink_check_row(). Ingest
 * runs three parameterised statements, each prepared once:
 *
 *	1. insert the rows into md.prices ON CONFLICT DO NOTHING and, from the
 *	   rows really inserted, upsert md.latest_prices where the new price is
 *	   newer; return the symbols that got new rows;
 *	2. when the rows were observed just now at their provider, advance
 *	   md.latest_prices.fetched_at for the prices we already had;
 *	3. for the symbols with new rows, recompute each moving average of
 *	   marketdata.average_windows from md.prices. Recomputing (instead of
 *	   adjusting a running sum) keeps averages right when an old price is
 *	   back-filled out of order. Statement 3 runs under advisory locks so
 *	   that two sessions ingesting the same symbol cannot leave an average
 *	   that misses the other's row.
 *
 * Before statement 1, md_bars_add() (bars.c) adds the rows that are new to
 * md.bars.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "bars.h"
#include "guc.h"
#include "partitions.h"
#include "provider.h"
#include "redis.h"
#include "spi_util.h"
#include "sink.h"
#include "symbol.h"
#include "symbol_meta.h"
#include "wake.h"

/* averages are serialised per bucket of symbols, not per symbol, so a
 * batch of 10,000 symbols takes at most this many locks */
#define AVERAGE_LOCK_BUCKETS 64

/*
 * $8: write price events to md.outbox (Kafka configured); $9: return the
 * JSON of each moved latest price for Redis. Rows come ordered by symbol,
 * one per (symbol, provider) whose latest price moved, or one with a NULL
 * provider when none did; n is the symbol's count of new rows.
 */
#define INSERT_SQL \
	"WITH input AS (" \
	"  SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[])," \
	"    pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::numeric[])," \
	"    pg_catalog.unnest($4::timestamptz[]), pg_catalog.unnest($5::numeric[])," \
	"    pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::bigint[]))" \
	"    AS u(symbol, provider, price, ts, volume, currency, raw_response_id))," \
	" ins AS (" \
	"  INSERT INTO md.prices AS p" \
	"    (symbol, provider, price, ts, volume, currency, raw_response_id)" \
	"  SELECT * FROM input ON CONFLICT DO NOTHING" \
	"  RETURNING p.symbol, p.provider, p.price, p.ts, p.volume, p.currency," \
	"    p.raw_response_id)," \
	" newest AS (" \
	"  SELECT DISTINCT ON (symbol, provider) * FROM ins" \
	"  ORDER BY symbol, provider, ts DESC)," \
	" latest AS (" \
	"  INSERT INTO md.latest_prices AS l" \
	"    (symbol, provider, price, ts, fetched_at, volume, currency, raw_response_id)" \
	"  SELECT symbol, provider, price, ts, pg_catalog.now(), volume, currency," \
	"    raw_response_id FROM newest" \
	"  ON CONFLICT (symbol, provider) DO UPDATE SET price = EXCLUDED.price," \
	"    ts = EXCLUDED.ts, fetched_at = EXCLUDED.fetched_at," \
	"    volume = EXCLUDED.volume, currency = EXCLUDED.currency," \
	"    raw_response_id = EXCLUDED.raw_response_id" \
	"  WHERE l.ts < EXCLUDED.ts" \
	"  RETURNING l.symbol, l.provider, l.price, l.ts, l.raw_response_id)," \
	" outbox AS (" \
	"  INSERT INTO md.outbox (symbol, payload)" \
	"  SELECT symbol, md._price_event(symbol, provider, price, ts, raw_response_id)" \
	"  FROM ins WHERE $8 ORDER BY ts, symbol, provider)" \
	"SELECT c.symbol, c.n, l.provider," \
	"  CASE WHEN $9 THEN md._price_json(l.symbol, l.price, l.ts, l.provider) END," \
	"  CASE WHEN $9 THEN md._price_event(l.symbol, l.provider, l.price, l.ts," \
	"    l.raw_response_id) END" \
	" FROM (SELECT symbol, pg_catalog.count(*) AS n FROM ins GROUP BY symbol) c" \
	" LEFT JOIN latest l ON l.symbol = c.symbol" \
	" ORDER BY c.symbol, l.provider"

#define TOUCH_SQL \
	"UPDATE md.latest_prices l SET fetched_at = pg_catalog.now()" \
	" FROM (SELECT DISTINCT symbol, provider" \
	"       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]))" \
	"         AS u(symbol, provider)) u" \
	" WHERE l.symbol = u.symbol AND l.provider = u.provider" \
	"   AND l.fetched_at < pg_catalog.now()"

#define LOCK_SQL \
	"SELECT pg_catalog.pg_advisory_xact_lock(k) FROM (" \
	"  SELECT DISTINCT pg_catalog.hashtextextended('md.symbol_averages', 0)" \
	"    + (pg_catalog.hashtext(s) & 2147483647) % " CppAsString2(AVERAGE_LOCK_BUCKETS) " AS k" \
	"  FROM pg_catalog.unnest($1::text[]) s) b ORDER BY k"

#define AVERAGES_SQL \
	"INSERT INTO md.symbol_averages AS a" \
	"  (symbol, \"window\", average, points, last_ts, updated_at)" \
	" SELECT s.symbol, w.win, x.average, x.points, x.last_ts, pg_catalog.now()" \
	" FROM pg_catalog.unnest($1::text[]) s(symbol)" \
	" CROSS JOIN pg_catalog.unnest($2::int4[]) w(win)" \
	" CROSS JOIN LATERAL (" \
	"   SELECT pg_catalog.avg(t.price) AS average, pg_catalog.count(*)::int4 AS points," \
	"     pg_catalog.max(t.ts) AS last_ts" \
	"   FROM (SELECT p.price, p.ts FROM md.prices p WHERE p.symbol = s.symbol" \
	"         ORDER BY p.ts DESC, p.provider LIMIT w.win) t) x" \
	" WHERE x.points > 0" \
	" ON CONFLICT (symbol, \"window\") DO UPDATE SET average = EXCLUDED.average," \
	"   points = EXCLUDED.points, last_ts = EXCLUDED.last_ts," \
	"   updated_at = EXCLUDED.updated_at"

static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr touch_plan = NULL;
static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr averages_plan = NULL;

/* the Unix epoch as a TimestampTz: older prices are refused */
#define UNIX_EPOCH_TIMESTAMPTZ \
	((TimestampTz) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

MdPriceBatch *
md_batch_create(int capacity, bool observed_now)
{
	MdPriceBatch *batch = palloc0(sizeof(MdPriceBatch));

	batch->capacity = Max(capacity, 1);
	batch->rows = palloc0(sizeof(MdPriceRow) * batch->capacity);
	batch->observed_now = observed_now;
	batch->publish = true;
	return batch;
}

MdPriceRow *
md_batch_add(MdPriceBatch *batch)
{
	MdPriceRow *row;

	if (batch->nrows == batch->capacity)
	{
		batch->capacity *= 2;
		batch->rows = repalloc(batch->rows, sizeof(MdPriceRow) * batch->capacity);
	}
	row = &batch->rows[batch->nrows++];
	memset(row, 0, sizeof(MdPriceRow));
	return row;
}

static bool
numeric_positive_finite(Numeric n)
{
	Numeric		zero = int64_to_numeric(0);

	if (numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(zero))) > 0;
}

static bool
currency_ok(const char *c)
{
	size_t		len = strlen(c);
	size_t		i;

	if (len < 3 || len > 5)
		return false;
	for (i = 0; i < len; i++)
		if (!((c[i] >= 'A' && c[i] <= 'Z') || (c[i] >= 'a' && c[i] <= 'z')))
			return false;
	return true;
}

char *
md_sink_check_row(MdPriceRow *row)
{
	const char *problem = NULL;
	char	   *symbol;
	TimestampTz latest_allowed;

	if (row->symbol == NULL)
		return pstrdup("symbol is missing");
	symbol = md_symbol_normalize(row->symbol, strlen(row->symbol), &problem);
	if (symbol == NULL)
		return psprintf("invalid symbol \"%.64s\": %s", row->symbol, problem);
	row->symbol = symbol;

	if (row->provider == NULL || row->provider[0] == '\0')
		return pstrdup("provider is missing");
	if (row->price == NULL)
		return psprintf("price of \"%s\" is missing", symbol);
	if (!numeric_positive_finite(row->price))
		return psprintf("price of \"%s\" must be a finite number greater than 0, not %s",
						symbol, numeric_normalize(row->price));
	if (row->volume != NULL &&
		(numeric_is_nan(row->volume) || numeric_is_inf(row->volume) ||
		 DatumGetInt32(DirectFunctionCall2(numeric_cmp,
										   NumericGetDatum(row->volume),
										   NumericGetDatum(int64_to_numeric(0)))) < 0))
		return psprintf("volume of \"%s\" must be a finite number of at least 0", symbol);
	if (row->currency != NULL && !currency_ok(row->currency))
		return psprintf("currency of \"%s\" must be 3 to 5 letters, not \"%.16s\"",
						symbol, row->currency);

	if (TIMESTAMP_NOT_FINITE(row->ts))
		return psprintf("timestamp of \"%s\" must be finite", symbol);
	if (row->ts < UNIX_EPOCH_TIMESTAMPTZ)
		return psprintf("timestamp of \"%s\" must not be before 1970-01-01 UTC", symbol);
	latest_allowed = GetCurrentTimestamp() + (TimestampTz) md_max_future_skew * USECS_PER_SEC;
	if (row->ts > latest_allowed)
		return psprintf("timestamp of \"%s\" is %s, more than %d s in the future",
						symbol, timestamptz_to_str(row->ts), md_max_future_skew);
	return NULL;
}

/* statement 3: moving averages of the symbols that got new rows */
static void
update_averages(ArrayType *symbols)
{
	Oid			lock_types[1] = {TEXTARRAYOID};
	Oid			avg_types[2] = {TEXTARRAYOID, INT4ARRAYOID};
	Datum		windows[MD_MAX_AVERAGE_WINDOWS];
	Datum		args[2];
	int			i;

	args[0] = PointerGetDatum(symbols);
	md_spi_run(md_spi_plan(&lock_plan, LOCK_SQL, 1, lock_types),
			   args, NULL, false, 0, SPI_OK_SELECT, "locking averages");

	for (i = 0; i < md_average_window_count; i++)
		windows[i] = Int32GetDatum(md_average_windows[i]);
	args[1] = PointerGetDatum(construct_array(windows, md_average_window_count,
											  INT4OID, sizeof(int32), true,
											  TYPALIGN_INT));
	md_spi_run(md_spi_plan(&averages_plan, AVERAGES_SQL, 2, avg_types),
			   args, NULL, false, 0, SPI_OK_INSERT, "updating averages");
}

/*
 * Read statement 1's rows: count the new rows, collect the symbols whose
 * averages must move, queue the moved latest prices for Redis.
 */
static int
read_inserted(SPITupleTable *tuptable, uint64 nrows, ArrayType **symbols_out)
{
	Datum	   *symbols = palloc(sizeof(Datum) * Max(nrows, 1));
	int			nsymbols = 0;
	int			inserted = 0;
	char	   *previous = NULL;
	uint64		i;

	for (i = 0; i < nrows; i++)
	{
		HeapTuple	tuple = tuptable->vals[i];
		TupleDesc	desc = tuptable->tupdesc;
		char	   *symbol = SPI_getvalue(tuple, desc, 1);
		char	   *provider = SPI_getvalue(tuple, desc, 3);
		char	   *json = SPI_getvalue(tuple, desc, 4);
		char	   *event = SPI_getvalue(tuple, desc, 5);
		bool		isnull;

		/* rows are ordered by symbol; a symbol repeats once per provider */
		if (previous == NULL || strcmp(previous, symbol) != 0)
		{
			symbols[nsymbols++] = CStringGetTextDatum(symbol);
			inserted += (int) DatumGetInt64(SPI_getbinval(tuple, desc, 2, &isnull));
			previous = symbol;
		}
		if (provider != NULL && json != NULL)
			md_redis_queue_price(provider, symbol, json, event);
	}
	*symbols_out = construct_array(symbols, nsymbols, TEXTOID, -1, false, TYPALIGN_INT);
	return inserted;
}

int
md_sink_ingest(MdPriceBatch *batch)
{
	int			n = batch->nrows;
	char	  **symbols;
	char	  **providers;
	char	  **currencies;
	Datum	   *prices;
	Datum	   *ts;
	Datum	   *volumes;
	Datum	   *raw_ids;
	bool	   *volume_nulls;
	bool	   *raw_nulls;
	TimestampTz *times;
	Datum		args[9];
	Oid			argtypes[9] = {TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
		TIMESTAMPTZARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, INT8ARRAYOID,
	BOOLOID, BOOLOID};
	bool		outbox = batch->publish && md_kafka_bootstrap_servers[0] != '\0';
	ArrayType  *new_symbols;
	int			inserted;
	int			i;

	if (n == 0)
		return 0;

	symbols = palloc(sizeof(char *) * n);
	providers = palloc(sizeof(char *) * n);
	currencies = palloc(sizeof(char *) * n);
	prices = palloc(sizeof(Datum) * n);
	ts = palloc(sizeof(Datum) * n);
	times = palloc(sizeof(TimestampTz) * n);
	volumes = palloc(sizeof(Datum) * n);
	raw_ids = palloc(sizeof(Datum) * n);
	volume_nulls = palloc(sizeof(bool) * n);
	raw_nulls = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		MdPriceRow *row = &batch->rows[i];

		symbols[i] = row->symbol;
		providers[i] = row->provider;
		currencies[i] = row->currency;
		prices[i] = NumericGetDatum(row->price);
		ts[i] = TimestampTzGetDatum(row->ts);
		times[i] = row->ts;
		volume_nulls[i] = (row->volume == NULL);
		volumes[i] = volume_nulls[i] ? (Datum) 0 : NumericGetDatum(row->volume);
		raw_nulls[i] = (row->raw_response_id == 0);
		raw_ids[i] = Int64GetDatum(row->raw_response_id);
	}
	args[0] = PointerGetDatum(md_text_array(symbols, n));
	args[1] = PointerGetDatum(md_text_array(providers, n));
	args[2] = PointerGetDatum(md_datum_array(prices, NULL, n, NUMERICOID));
	args[3] = PointerGetDatum(md_datum_array(ts, NULL, n, TIMESTAMPTZOID));
	args[4] = PointerGetDatum(md_datum_array(volumes, volume_nulls, n, NUMERICOID));
	args[5] = PointerGetDatum(md_text_array(currencies, n));
	args[6] = PointerGetDatum(md_datum_array(raw_ids, raw_nulls, n, INT8OID));
	args[7] = BoolGetDatum(outbox);
	args[8] = BoolGetDatum(md_redis_enabled());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	md_provider_require(DatumGetArrayTypeP(args[1]));
	md_partitions_ensure(times, n);
	md_symbols_learn(batch, args);
	md_bars_add(args, times, n);

	/* statement 1: prices, latest prices, outbox */
	md_spi_run(md_spi_plan(&insert_plan, INSERT_SQL, 9, argtypes),
			   args, NULL, false, 0, SPI_OK_SELECT, "inserting prices");
	inserted = read_inserted(SPI_tuptable, SPI_processed, &new_symbols);

	/* statement 3: moving averages of the symbols with new rows */
	if (inserted > 0)
		update_averages(new_symbols);

	/* a committed outbox row wakes the relay rather than waiting for its poll */
	if (outbox && inserted > 0)
		md_wake_at_commit("relay");

	/* statement 2: a fresh observation of an old price is still fresh */
	if (batch->observed_now && inserted < n)
	{
		md_spi_run(md_spi_plan(&touch_plan, TOUCH_SQL, 2, argtypes),
				   args, NULL, false, 0, SPI_OK_UPDATE, "touching latest prices");
	}

	SPI_finish();
	return inserted;
}
