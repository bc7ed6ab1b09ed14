-- bench/setup.sql: the benchmarks' data, in schema bench (not the extension's).
-- psql variables: batches, batch_rows, symbols.

-- Benchmark 1: one fresh row; fetched_at is now() of this ingest. Around
-- it, latest prices of 2,000 other symbols, so that both sides find the row
-- through md.latest_prices' primary key as they would in real use (with one
-- row the planner scans the table).
SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now(), 1000, 'USD');
SELECT md_ingest_prices(array_agg('OTHER' || i), array_agg('yahoo_finance'::text),
						array_agg(10 + i * 0.01), array_agg(now() - interval '1 hour'))
FROM generate_series(1, 2000) i;

-- Benchmark 2: :batches batches of :batch_rows rows over :symbols symbols,
-- kept as the parallel arrays md_ingest_prices takes. Rows are ticks of
-- every symbol in turn, one second apart, the ticks increasing from batch
-- to batch (with 1,000 rows and 250 symbols a batch is 4 ticks of each
-- symbol), so no two rows share a key. The batches
-- end a minute before now (the sink refuses prices from the future).
CREATE SCHEMA bench;
CREATE TABLE bench.batches (
	batch		integer PRIMARY KEY,
	symbols		text[] NOT NULL,
	providers	text[] NOT NULL,
	prices		numeric[] NOT NULL,
	ts			timestamptz[] NOT NULL
);
INSERT INTO bench.batches
SELECT b, array_agg(sym ORDER BY i), array_agg('yahoo_finance'::text ORDER BY i),
	   array_agg(price ORDER BY i), array_agg(ts ORDER BY i)
FROM (
	SELECT b, i,
		   'BENCH' || (g % :symbols) AS sym,
		   round((100 + (g % :symbols) + random())::numeric, 4) AS price,
		   date_trunc('second', now()) - interval '1 minute'
			 - (g / :symbols) * interval '1 second' AS ts
	FROM generate_series(1, :batches) b, generate_series(0, :batch_rows - 1) i,
		 -- g counts rows back from the newest: g / symbols is the tick
		 LATERAL (SELECT (:batches - b) * :batch_rows + (:batch_rows - 1 - i) AS g) x
) r
GROUP BY b;
-- batch 0: a warm-up, a day before the others (its own rows, never measured)
INSERT INTO bench.batches
SELECT 0, symbols, providers, prices,
	   (SELECT array_agg(t - interval '1 day' ORDER BY o) FROM unnest(ts) WITH ORDINALITY u(t, o))
FROM bench.batches WHERE batch = 1;

-- Every month the batches touch has its partition before anything is
-- measured (both sides insert into the same existing partitions).
SELECT md._ensure_price_partition(t)
FROM (SELECT DISTINCT date_trunc('month', t, 'UTC') AS t
	  FROM bench.batches, unnest(ts) t) m;

-- Timed runs: each batch is its own transaction (COMMIT per batch), timed
-- by the server's clock, so no client round trip is in either number.
CREATE TABLE bench.runs (
	run			text NOT NULL,
	rows_in		bigint NOT NULL,
	rows_new	bigint NOT NULL,
	seconds		double precision NOT NULL
);

-- the baseline: a plain INSERT ... ON CONFLICT DO NOTHING of the same arrays
CREATE PROCEDURE bench.plain(run text, first integer, last integer)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
	total bigint := 0;
	new_rows bigint := 0;
BEGIN
	FOR k IN first..last LOOP
		INSERT INTO md.prices AS p (symbol, provider, price, ts)
		SELECT u.* FROM bench.batches b,
			 unnest(b.symbols, b.providers, b.prices, b.ts) u
		WHERE b.batch = k
		ON CONFLICT DO NOTHING;
		GET DIAGNOSTICS n = ROW_COUNT;
		new_rows := new_rows + n;
		SELECT total + cardinality(symbols) INTO total FROM bench.batches WHERE batch = k;
		COMMIT;
	END LOOP;
	INSERT INTO bench.runs VALUES (run, total, new_rows,
		extract(epoch FROM clock_timestamp() - t0));
	COMMIT;
END
$$;

-- the sink: md_ingest_prices of the same arrays (prices, latest prices, averages)
CREATE PROCEDURE bench.sink(run text, first integer, last integer)
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
	n bigint;
	total bigint := 0;
	new_rows bigint := 0;
BEGIN
	FOR k IN first..last LOOP
		SELECT md_ingest_prices(b.symbols, b.providers, b.prices, b.ts), cardinality(b.symbols) + total
		INTO n, total
		FROM bench.batches b WHERE b.batch = k;
		new_rows := new_rows + n;
		COMMIT;
	END LOOP;
	INSERT INTO bench.runs VALUES (run, total, new_rows,
		extract(epoch FROM clock_timestamp() - t0));
	COMMIT;
END
$$;

-- empty tables, partitions kept
CREATE PROCEDURE bench.reset()
LANGUAGE sql AS $$
	TRUNCATE md.prices, md.latest_prices, md.symbol_averages;
$$;
