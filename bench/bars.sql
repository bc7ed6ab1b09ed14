-- bench/bars.sql: the data and timed procedures of bench/bars.sh, in schema
-- bench (bench/setup.sql made it and the ingest batches). psql variables:
-- query_days (trading days of the query symbol), per_minute (its prices
-- per minute).

-- Query: one symbol, QBENCH, trading 14:30-21:00 UTC on weekdays for
-- :query_days days ending yesterday, :per_minute prices a minute, with
-- volumes. Stored through the plain table and given its bars by
-- md_rebuild_bars (the same bars the sink keeps, sql/bars.sql and
-- test/t/042_bars_replay.pl), which is quicker than a million sink rows.
CREATE TABLE bench.query_range AS
SELECT min(d) AS lo, max(d) + interval '1 day' AS hi
FROM (SELECT d FROM generate_series(date_trunc('day', now(), 'UTC') - interval '1 day' * (:query_days * 1.4 + 7),
									date_trunc('day', now(), 'UTC') - interval '1 day', interval '1 day') d
	  WHERE extract(isodow FROM d AT TIME ZONE 'UTC') < 6
	  ORDER BY d DESC LIMIT :query_days) t;
SELECT md._ensure_price_partition(m)
FROM bench.query_range r, generate_series(date_trunc('month', r.lo, 'UTC'), r.hi, interval '1 month') m;
INSERT INTO md.prices (symbol, provider, price, ts, volume)
SELECT 'QBENCH', 'yahoo_finance', round((100 + 20 * sin(extract(epoch FROM ts) / 86400) + random())::numeric, 4),
	   ts, (random() * 1000)::int
FROM bench.query_range r,
	 generate_series(r.lo, r.hi - interval '1 day', interval '1 day') d,
	 generate_series(d + interval '14 hours 30 minutes', d + interval '20 hours 59 minutes 59 seconds',
					 interval '60 seconds' / :per_minute) ts
WHERE extract(isodow FROM d AT TIME ZONE 'UTC') < 6;
SELECT md_rebuild_bars('QBENCH');

-- the baseline: the GROUP BY a user writes over md.prices (first and last
-- by time as ordered array_agg, PostgreSQL having no first/last)
CREATE FUNCTION bench.group_by_hour(lo timestamptz, hi timestamptz)
	RETURNS TABLE (bucket timestamptz, open numeric, high numeric, low numeric,
				   close numeric, volume numeric, prices bigint)
LANGUAGE sql STABLE AS $$
	SELECT date_trunc('hour', ts), (array_agg(price ORDER BY ts))[1], max(price), min(price),
		   (array_agg(price ORDER BY ts DESC))[1], sum(volume), count(*)
	FROM md.prices
	WHERE symbol = 'QBENCH' AND ts >= lo AND ts < hi
	GROUP BY 1 ORDER BY 1
$$;

CREATE TABLE bench.query_runs (run text NOT NULL, seconds double precision NOT NULL);

-- times one run of query (all its rows fetched) into bench.query_runs
CREATE PROCEDURE bench.time_query(run text, query text)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE 'SELECT count(*) FROM (' || query || ') q';
	INSERT INTO bench.query_runs VALUES (run, extract(epoch FROM clock_timestamp() - t0));
	COMMIT;
END
$$;

-- Write cost: the sink's rows/s with bars on (the default levels) and off
-- (marketdata.bar_intervals = ''), with bench.sink of bench/setup.sql.
CREATE PROCEDURE bench.reset_bars()
LANGUAGE sql AS $$
	TRUNCATE md.prices, md.latest_prices, md.symbol_averages;
	DELETE FROM md.bars WHERE symbol <> 'QBENCH';
$$;
