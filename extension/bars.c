/*-------------------------------------------------------------------------
 *
 * extension/bars.c
 *	  The sink's upkeep of md.bars: every new price updates the bar of its
 *	  bucket at each stored level, in the same transaction.
 *
 * A *level* is a stored bar interval (marketdata.bar_intervals); buckets
 * are computed by md._bar_bucket() (extension/bars.sql), the same function
 * md_bars() and md_rebuild_bars() use. Per batch, two statements:
 *
 *	1. advisory locks on the batch's symbols (md._bar_lock_key), so two
 *	   sessions never merge into one bar at once and the next statement
 *	   sees every bar and price committed before;
 *	2. one MERGE: the batch's prices not yet in md.prices (the first of
 *	   each key, as the insert keeps it) grouped per bar and merged into
 *	   the stored bar. A merge is exact in any order of arrival: open moves
 *	   only to an earlier first price, close only to a later last price.
 *	   A group's open and close are the price of the least and greatest
 *	   [epoch, price] array (times are unique in a group): plain min/max
 *	   let the planner hash the groups, where ORDER BY aggregates sort.
 *	   Only the shortest level and those it does not divide
 *	   (md._bar_divides) are grouped from the prices; the others from the
 *	   shortest level's groups, which lie whole inside one of their bars
 *	   (a third of the rows into the aggregation with the default levels).
 *
 * It runs before the prices are inserted, so "not yet in md.prices" is
 * what the insert's ON CONFLICT DO NOTHING will find new. OFFSET 0 keeps
 * that test a probe of the key per row: as an anti-join, the kept plan
 * hashed the whole of md.prices on every batch once it had been planned
 * for a small table. md.bars has no
 * key on its parent (see bars.sql), so INSERT ... ON CONFLICT DO UPDATE
 * cannot serve; the lock makes MERGE safe instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "bars.h"
#include "partitions.h"
#include "spi_util.h"

MdBarLevels md_bar_levels = {0, 0};

#define LOCK_SQL \
	"SELECT pg_catalog.pg_advisory_xact_lock(k) FROM (" \
	"  SELECT DISTINCT md._bar_lock_key(s) AS k" \
	"  FROM pg_catalog.unnest($1::text[]) s) b ORDER BY k"

#define MERGE_SQL \
	"MERGE INTO md.bars b USING (" \
	"  WITH input AS (" \
	"    SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[])," \
	"      pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::numeric[])," \
	"      pg_catalog.unnest($4::timestamptz[]), pg_catalog.unnest($5::numeric[]))" \
	"      WITH ORDINALITY AS u(symbol, provider, price, ts, volume, ord))," \
	"  fresh AS MATERIALIZED (" \
	"    SELECT DISTINCT ON (i.symbol, i.provider, i.ts) i.*," \
	"      coalesce(s.time_zone, 'UTC') AS tz" \
	"    FROM input i LEFT JOIN md.symbols s ON s.symbol = i.symbol" \
	"    WHERE NOT EXISTS (SELECT 1 FROM md.prices p WHERE p.symbol = i.symbol" \
	"      AND p.provider = i.provider AND p.ts = i.ts OFFSET 0)" \
	"    ORDER BY i.symbol, i.provider, i.ts, i.ord)," \
	"  levels AS MATERIALIZED (SELECT l.level, md._bar_kind(l.level) AS kind," \
	"      l.n = 1 AS base, l.n > 1 AND md._bar_divides(a.ls[1], l.level) AS derived" \
	"    FROM (SELECT md._bar_levels() AS ls) a," \
	"      pg_catalog.unnest(a.ls) WITH ORDINALITY AS l(level, n))," \
	"  direct AS MATERIALIZED (" \
	"    SELECT f.symbol, f.provider, v.level, f.tz, v.base," \
	"      md._bar_bucket(f.ts, v.level, v.kind, f.tz) AS bucket," \
	"      (pg_catalog.min(ARRAY[extract(epoch FROM f.ts), f.price]))[2] AS open," \
	"      pg_catalog.max(f.price) AS high, pg_catalog.min(f.price) AS low," \
	"      (pg_catalog.max(ARRAY[extract(epoch FROM f.ts), f.price]))[2] AS close," \
	"      pg_catalog.sum(f.volume) AS volume, pg_catalog.count(*)::int4 AS prices," \
	"      pg_catalog.min(f.ts) AS first_ts, pg_catalog.max(f.ts) AS last_ts" \
	"    FROM fresh f JOIN levels v ON NOT v.derived" \
	"    GROUP BY 1, 2, 3, 4, 5, 6)" \
	"  SELECT symbol, provider, level, bucket, open, high, low, close, volume," \
	"    prices, first_ts, last_ts FROM direct" \
	"  UNION ALL" \
	"  SELECT d.symbol, d.provider, v.level," \
	"    md._bar_bucket(d.bucket, v.level, v.kind, d.tz)," \
	"    (pg_catalog.min(ARRAY[extract(epoch FROM d.first_ts), d.open]))[2]," \
	"    pg_catalog.max(d.high), pg_catalog.min(d.low)," \
	"    (pg_catalog.max(ARRAY[extract(epoch FROM d.last_ts), d.close]))[2]," \
	"    pg_catalog.sum(d.volume), pg_catalog.sum(d.prices)::int4," \
	"    pg_catalog.min(d.first_ts), pg_catalog.max(d.last_ts)" \
	"  FROM direct d JOIN levels v ON v.derived WHERE d.base" \
	"  GROUP BY 1, 2, 3, 4) a" \
	" ON b.symbol = a.symbol AND b.provider = a.provider" \
	"  AND b.\"interval\" = a.level AND b.bucket = a.bucket" \
	" WHEN MATCHED AND b.source = 'ticks' THEN UPDATE SET" \
	"  open = CASE WHEN a.first_ts < b.first_ts THEN a.open ELSE b.open END," \
	"  high = greatest(b.high, a.high), low = least(b.low, a.low)," \
	"  close = CASE WHEN a.last_ts > b.last_ts THEN a.close ELSE b.close END," \
	"  volume = CASE WHEN b.volume IS NULL THEN a.volume" \
	"    WHEN a.volume IS NULL THEN b.volume ELSE b.volume + a.volume END," \
	"  prices = b.prices + a.prices," \
	"  first_ts = least(b.first_ts, a.first_ts), last_ts = greatest(b.last_ts, a.last_ts)" \
	" WHEN NOT MATCHED THEN INSERT (symbol, provider, \"interval\", bucket, open, high," \
	"  low, close, volume, prices, first_ts, last_ts)" \
	"  VALUES (a.symbol, a.provider, a.level, a.bucket, a.open, a.high, a.low, a.close," \
	"  a.volume, a.prices, a.first_ts, a.last_ts)"

static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr merge_plan = NULL;

/* one interval of the list: false when it is not an interval */
static bool
parse_interval(char *text, Interval *out)
{
	char		workbuf[256];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_itm_in itm;

	if (ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
					  MAXDATEFIELDS, &nf) != 0 ||
		DecodeInterval(field, ftype, nf, INTERVAL_FULL_RANGE, &dtype, &itm) != 0 ||
		dtype != DTK_DELTA)
		return false;
	return itmin2interval(&itm, out) == 0;
}

bool
md_bar_levels_parse(const char *text, MdBarLevels *levels)
{
	char	   *copy = pstrdup(text);
	char	   *item;
	char	   *save = NULL;
	Interval	seen[MD_MAX_BAR_LEVELS];

	levels->count = 0;
	levels->span = 0;
	for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save))
	{
		Interval	iv;
		int64		span;
		int			parts;
		int			i;

		while (*item == ' ' || *item == '\t')
			item++;
		if (*item == '\0')
			continue;
		if (!parse_interval(item, &iv))
		{
			GUC_check_errdetail("\"%s\" is not an interval.", item);
			return false;
		}
		parts = (iv.month != 0) + (iv.day != 0) + (iv.time != 0);
		if (iv.month < 0 || iv.day < 0 || iv.time < 0 || parts != 1)
		{
			GUC_check_errdetail("\"%s\" is not a positive time, number of days or number of months.",
								item);
			return false;
		}
		/* intervals compare as months of 30 days of 24 hours (the bars' key) */
		for (i = 0; i < levels->count; i++)
			if (((int64) seen[i].month * 30 + seen[i].day) * USECS_PER_DAY + seen[i].time ==
				((int64) iv.month * 30 + iv.day) * USECS_PER_DAY + iv.time)
			{
				GUC_check_errdetail("\"%s\" is listed twice.", item);
				return false;
			}
		if (levels->count == MD_MAX_BAR_LEVELS)
		{
			GUC_check_errdetail("At most %d bar intervals.", MD_MAX_BAR_LEVELS);
			return false;
		}
		seen[levels->count++] = iv;

		/* the widest bar (a month of 31 days) plus a time zone's offset */
		span = iv.time + (int64) iv.day * USECS_PER_DAY +
			(int64) iv.month * 31 * USECS_PER_DAY + USECS_PER_DAY;
		levels->span = Max(levels->span, span);
	}
	return true;
}

/*
 * The MERGE looks its few hundred bars up by key: a merge or hash join
 * would read every bar of the touched partitions on each batch (the plan
 * picked while md.bars is small is kept for the session). The settings
 * hold for this statement only (and its planning), as a function's SET
 * clause would.
 */
static void
merge_bars(Datum *args, Oid *argtypes)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	md_spi_run(md_spi_plan(&merge_plan, MERGE_SQL, 5, argtypes),
			   args, NULL, false, 0, SPI_OK_MERGE, "updating bars");
	AtEOXact_GUC(true, nest);
}

void
md_bars_lock(Datum *args)
{
	Oid			argtypes[1] = {TEXTARRAYOID};

	if (md_bar_levels.count == 0)
		return;
	md_spi_run(md_spi_plan(&lock_plan, LOCK_SQL, 1, argtypes),
			   args, NULL, false, 0, SPI_OK_SELECT, "locking bars");
}

void
md_bars_add(Datum *args, const TimestampTz *ts, int n)
{
	Oid			argtypes[5] = {TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID,
	TIMESTAMPTZARRAYOID, NUMERICARRAYOID};

	if (md_bar_levels.count == 0 || n == 0)
		return;
	md_bar_partitions_ensure(ts, n, md_bar_levels.span);
	md_bars_lock(args);
	merge_bars(args, argtypes);
}
