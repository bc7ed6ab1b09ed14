-- OHLCV bars: kept by the sink, read by md_bars, rebuilt by md_rebuild_bars.
SET timezone = 'UTC';
SHOW marketdata.bar_intervals;

-- errors as SQLSTATE: message
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE q;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- every bar recomputed from md.prices with date_trunc, independently of
-- md._bar_bucket; must equal md.bars (both ways)
CREATE VIEW pg_temp.recomputed AS
	SELECT p.symbol, p.provider, l.level AS "interval",
		   CASE l.level WHEN '1 minute' THEN date_trunc('minute', p.ts)
						WHEN '1 hour' THEN date_trunc('hour', p.ts)
						ELSE date_trunc('day', p.ts, coalesce(s.time_zone, 'UTC')) END AS bucket,
		   (array_agg(p.price ORDER BY p.ts))[1] AS open, max(p.price) AS high,
		   min(p.price) AS low, (array_agg(p.price ORDER BY p.ts DESC))[1] AS close,
		   sum(p.volume) AS volume, count(*)::int AS prices, min(p.ts) AS first_ts,
		   max(p.ts) AS last_ts
	FROM md.prices p LEFT JOIN md.symbols s ON s.symbol = p.symbol
	CROSS JOIN (VALUES (interval '1 minute'), ('1 hour'), ('1 day')) l(level)
	GROUP BY 1, 2, 3, 4;
CREATE VIEW pg_temp.mismatches AS
	(SELECT 'missing' AS what, * FROM pg_temp.recomputed
	 EXCEPT SELECT 'missing', symbol, provider, "interval", bucket, open, high, low, close,
		volume, prices, first_ts, last_ts FROM md.bars)
	UNION ALL
	(SELECT 'extra', symbol, provider, "interval", bucket, open, high, low, close,
		volume, prices, first_ts, last_ts FROM md.bars
	 EXCEPT SELECT 'extra', * FROM pg_temp.recomputed);

-- Kept by the sink -----------------------------------------------------------

SELECT md_ingest_prices(array_fill('BARS'::text, ARRAY[4]),
	ARRAY['finnhub', 'finnhub', 'finnhub', 'polygon'],
	ARRAY[10, 12, 9, 100]::numeric[],
	ARRAY['2026-03-02 10:00:05+00', '2026-03-02 10:00:30+00', '2026-03-02 10:00:10+00',
		  '2026-03-02 10:01:00+00']::timestamptz[],
	ARRAY[1, 2, NULL, 5]::numeric[]);
SELECT provider, "interval", bucket, open, high, low, close, volume, prices, first_ts, last_ts, source
	FROM md.bars WHERE symbol = 'BARS' ORDER BY "interval", provider, bucket;

-- a late price earlier than the bar's first moves open; one between its
-- first and last moves neither open nor close
SELECT md_ingest_prices(ARRAY['BARS', 'BARS'], ARRAY['finnhub', 'finnhub'], ARRAY[7, 11]::numeric[],
	ARRAY['2026-03-02 10:00:01+00', '2026-03-02 10:00:20+00']::timestamptz[]);
-- a later one moves close
SELECT md_ingest_price('BARS', 'finnhub', 13, '2026-03-02 10:00:59+00', 4);
-- a duplicate (already in md.prices) changes nothing, even with another price;
-- inside one batch, the first of a key counts, as in md.prices
SELECT md_ingest_price('BARS', 'finnhub', 99, '2026-03-02 10:00:30+00');
SELECT md_ingest_prices(ARRAY['BARS', 'BARS'], ARRAY['finnhub', 'finnhub'], ARRAY[8, 1000]::numeric[],
	ARRAY['2026-03-02 10:02:00+00', '2026-03-02 10:02:00+00']::timestamptz[]);
SELECT provider, "interval", bucket, open, high, low, close, volume, prices
	FROM md.bars WHERE symbol = 'BARS' AND provider = 'finnhub' ORDER BY "interval", bucket;
SELECT * FROM pg_temp.mismatches;

-- md_bars: stored levels and roll-ups -------------------------------------------

SELECT md_ingest_prices(array_fill('ROLL'::text, ARRAY[8]), array_fill('finnhub'::text, ARRAY[8]),
	ARRAY[1, 2, 3, 4, 5, 6, 7, 8]::numeric[],
	ARRAY['2026-03-02 09:58:00+00', '2026-03-02 10:01:00+00', '2026-03-02 10:04:59+00',
		  '2026-03-02 10:06:00+00', '2026-03-02 13:59:00+00', '2026-03-02 14:00:00+00',
		  '2026-03-09 08:00:00+00', '2026-04-01 00:00:00+00']::timestamptz[],
	ARRAY[10, 20, 30, 40, 50, 60, 70, 80]::numeric[]);
SELECT * FROM md_bars('ROLL', '1 minute', '2026-03-02 10:00', '2026-03-02 10:10');
SELECT * FROM md_bars('ROLL', '5 minutes', '2026-03-02 09:00', '2026-03-02 11:00');
-- 7 minutes is a multiple of 1 minute: epoch-aligned buckets
SELECT * FROM md_bars('ROLL', '7 minutes', '2026-03-02 09:00', '2026-03-02 11:00');
SELECT * FROM md_bars('ROLL', '1 hour', '2026-03-02', '2026-03-03');
SELECT * FROM md_bars('ROLL', '4 hours', '2026-03-02', '2026-03-03');
SELECT * FROM md_bars('ROLL', '1 day', '2026-03-01', '2026-04-02');
-- weeks start on Monday (2026-03-02 is one)
SELECT * FROM md_bars('ROLL', '1 week', '2026-03-01', '2026-04-02');
SELECT * FROM md_bars('ROLL', '1 month', '2026-03-01', '2026-05-01');
-- every stored bar of the range, when from and to are NULL
SELECT count(*), sum(prices) FROM md_bars('ROLL', '1 hour', NULL, NULL);
-- the bucket holding from is included; one starting at to is not
SELECT bucket FROM md_bars('ROLL', '1 hour', '2026-03-02 10:30', '2026-03-02 14:00');

-- the roll-up reads the largest stored level that divides the interval:
-- a minute bar alone (no hour bar) is not read for '2 hours'
DELETE FROM md.bars WHERE symbol = 'ROLL' AND "interval" = '1 hour' AND bucket = '2026-03-02 13:00+00';
SELECT * FROM md_bars('ROLL', '2 hours', '2026-03-02 12:00', '2026-03-02 14:00');
SELECT md_rebuild_bars('ROLL');
SELECT * FROM md_bars('ROLL', '2 hours', '2026-03-02 12:00', '2026-03-02 14:00');

-- Providers: one per bar by priority, or the one asked for --------------------

SELECT md_ingest_prices(ARRAY['ROLL', 'ROLL'], ARRAY['yahoo_finance', 'alpha_vantage'],
	ARRAY[50, 60]::numeric[], ARRAY['2026-03-02 10:02:00+00', '2026-03-02 10:07:00+00']::timestamptz[]);
-- 10:00 has finnhub (20) and yahoo (10): yahoo's alone; 10:05 finnhub (20) over alpha_vantage (40)
SELECT * FROM md_bars('ROLL', '5 minutes', '2026-03-02 10:00', '2026-03-02 10:10');
SELECT * FROM md_bars('ROLL', '5 minutes', '2026-03-02 10:00', '2026-03-02 10:10', 'finnhub');
SELECT * FROM md_bars('ROLL', '5 minutes', '2026-03-02 10:00', '2026-03-02 10:10', 'polygon');

-- Fills ----------------------------------------------------------------------

SELECT * FROM md_bars('ROLL', '1 minute', '2026-03-02 10:03', '2026-03-02 10:08', 'finnhub', 'null');
SELECT * FROM md_bars('ROLL', '1 minute', '2026-03-02 10:03', '2026-03-02 10:08', 'finnhub', 'previous');
-- previous before any data in the range carries the close of the last bar before from
SELECT * FROM md_bars('ROLL', '1 hour', '2026-03-02 15:00', '2026-03-02 18:00', fill => 'previous');
-- nothing before: NULL until the first bar
SELECT * FROM md_bars('ROLL', '1 hour', '2026-03-02 07:00', '2026-03-02 11:00', fill => 'previous');
SELECT * FROM md_bars('ROLL', '1 day', '2026-03-01', '2026-03-04', fill => 'null');

-- Empty ranges -----------------------------------------------------------------

SELECT count(*) FROM md_bars('ROLL', '1 minute', '2026-03-02 10:01', '2026-03-02 10:01');
SELECT count(*) FROM md_bars('ROLL', '1 minute', '2030-01-01', '2030-01-02');
SELECT count(*) FROM md_bars('NOSUCH', '1 hour', '2026-03-01', '2026-03-02', fill => 'null');
SELECT count(*) FROM md_bars('ROLL', '1 minute', '2026-03-02 10:01', '2026-03-02 10:01', fill => 'previous');

-- Time zones -------------------------------------------------------------------

-- XETRA: days start at midnight Europe/Berlin; on 2026-03-29 clocks go
-- forward (a day of 23 hours), on 2026-10-25 back (25 hours)
INSERT INTO md.symbols (symbol, exchange, time_zone, currency, name)
	VALUES ('SAP.DE', 'XETRA', 'Europe/Berlin', 'EUR', 'SAP SE');
SELECT md_ingest_prices(array_fill('SAP.DE'::text, ARRAY[7]), array_fill('yahoo_finance'::text, ARRAY[7]),
	ARRAY[1, 2, 3, 4, 5, 6, 7]::numeric[],
	ARRAY['2026-03-27 23:30:00+00',	-- Mar 28 00:30 CET
		  '2026-03-28 22:30:00+00',	-- Mar 28 23:30 CET
		  '2026-03-28 23:30:00+00',	-- Mar 29 00:30 CET
		  '2026-03-29 21:30:00+00',	-- Mar 29 23:30 CEST
		  '2026-03-29 22:30:00+00',	-- Mar 30 00:30 CEST
		  '2026-10-25 22:59:00+00',	-- Oct 25 23:59 CET
		  '2026-10-25 23:00:00+00'	-- Oct 26 00:00 CET
		  ]::timestamptz[]);
SELECT bucket, md._bar_end(bucket, '1 day', 'Europe/Berlin') - bucket AS length, open, close, prices
	FROM md_bars('SAP.DE', '1 day', '2026-03-27', '2026-03-31');
SELECT bucket, open, close, prices FROM md_bars('SAP.DE', '1 day', '2026-10-24', '2026-10-27', fill => 'null');
SELECT md._bar_end('2026-10-24 22:00+00', '1 day', 'Europe/Berlin') - '2026-10-24 22:00+00'::timestamptz AS oct_25;
-- weeks and months in Berlin too; intraday bars stay UTC-aligned
SELECT bucket, open, close, prices FROM md_bars('SAP.DE', '1 week', '2026-03-23', '2026-04-06');
SELECT bucket, open, close, prices FROM md_bars('SAP.DE', '1 month', '2026-03-01', '2026-11-01');
SELECT bucket, prices FROM md_bars('SAP.DE', '1 hour', '2026-03-28 22:00', '2026-03-29 00:00');
SELECT * FROM pg_temp.mismatches;

-- a changed time zone rebuilds the symbol's daily bars
UPDATE md.symbols SET time_zone = 'America/New_York' WHERE symbol = 'SAP.DE';
SELECT bucket, open, close, prices FROM md_bars('SAP.DE', '1 day', '2026-03-27', '2026-03-31');
SELECT * FROM pg_temp.mismatches;
DELETE FROM md.symbols WHERE symbol = 'SAP.DE';
SELECT bucket, prices FROM md_bars('SAP.DE', '1 day', '2026-03-27', '2026-03-31');
SELECT * FROM pg_temp.mismatches;

-- md_rebuild_bars ----------------------------------------------------------------

-- bars lost or damaged come back from md.prices, for a range or all
DELETE FROM md.bars WHERE symbol = 'BARS';
UPDATE md.bars SET close = 0 WHERE symbol = 'ROLL';
SELECT md_rebuild_bars('BARS', '2026-03-02 10:00:30', '2026-03-02 10:00:40');
SELECT "interval", bucket, prices FROM md.bars WHERE symbol = 'BARS' ORDER BY 1, 2, provider;
SELECT count(*) > 0 AS damaged FROM pg_temp.mismatches;
SELECT md_rebuild_bars() > 0 AS rebuilt;
SELECT * FROM pg_temp.mismatches;
-- official bars of a provider are not touched by ticks or rebuilds
INSERT INTO md.bars (symbol, provider, "interval", bucket, open, high, low, close, volume,
	prices, first_ts, last_ts, source)
	VALUES ('OFFI', 'polygon', '1 day', '2026-03-02', 5, 6, 4, 5.5, 1000, 1,
			'2026-03-02', '2026-03-02 23:59', 'polygon');
SELECT md_ingest_price('OFFI', 'polygon', 9, '2026-03-02 12:00+00');
SELECT md_rebuild_bars('OFFI');
SELECT "interval", open, close, prices, source FROM md.bars WHERE symbol = 'OFFI' ORDER BY 1;

-- Settings -------------------------------------------------------------------------

-- no stored levels: no bars kept, md_bars says why
SET marketdata.bar_intervals = '';
SELECT md_ingest_price('NOBARS', 'finnhub', 1, '2026-03-02 12:00+00');
SELECT count(*) FROM md.bars WHERE symbol = 'NOBARS';
SELECT pg_temp.err($$SELECT * FROM md_bars('NOBARS', '1 hour', NULL, NULL)$$);
-- other levels: 15 minutes and 1 week; 1 hour rolls up from 15 minutes
SET marketdata.bar_intervals = '15 minutes, 1 week';
SELECT md_ingest_price('NOBARS', 'finnhub', 2, '2026-03-02 12:20+00');
SELECT "interval", bucket, prices FROM md.bars WHERE symbol = 'NOBARS' ORDER BY 1;
SELECT bucket, open, prices FROM md_bars('NOBARS', '1 hour', '2026-03-02', '2026-03-03');
SELECT pg_temp.err($$SELECT * FROM md_bars('NOBARS', '1 day', NULL, NULL)$$);
RESET marketdata.bar_intervals;

SET marketdata.bar_intervals = '1 minute, soon';
SET marketdata.bar_intervals = '1 day 2 hours';
SET marketdata.bar_intervals = '-1 minute';
SET marketdata.bar_intervals = '1 day, 24 hours';

-- Invalid input ----------------------------------------------------------------------

SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '90 seconds', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 day 2 hours', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '-5 minutes', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '0 minutes', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', NULL, NULL, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 hour', '2026-03-02', '2026-03-01')$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 hour', '2026-03-01', '2026-03-02', fill => 'zero')$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 hour', NULL, '2026-03-02', fill => 'null')$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 minute', '2000-01-01', '2026-03-02', fill => 'null')$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('ROLL', '1 hour', NULL, NULL, 'nosuch')$$);
SELECT pg_temp.err($$SELECT * FROM md_bars('bad symbol!', '1 hour', NULL, NULL)$$);
SELECT pg_temp.err($$SELECT md_rebuild_bars('ROLL', '2026-03-02', '2026-03-01')$$);
SELECT pg_temp.err($$INSERT INTO md.symbols (symbol, time_zone) VALUES ('TZ', 'Mars/Olympus')$$);
SELECT pg_temp.err($$INSERT INTO md.symbols (symbol) VALUES ('bad symbol!')$$);
