-- The newest prices of a symbol, in the order the moving averages use
-- (ts DESC, provider), come straight from each partition's index: the
-- sink recomputes averages for every symbol of every batch, and a Sort
-- there reads the symbol's whole history each time.
SET timezone = 'UTC';

SELECT md_ingest_prices(array_agg('ORDERIDX'::text), array_agg(p), array_agg(100 + i),
						array_agg('2024-03-01 00:00:00+00'::timestamptz + i * interval '1 hour'))
FROM generate_series(1, 50) i,
	 unnest(ARRAY['finnhub', 'polygon']) p;

-- every partition has the index, whoever else created partitions
SELECT count(*) AS partitions_without_it
FROM pg_inherits i
WHERE i.inhparent = 'md.prices'::regclass
  AND NOT EXISTS (
	SELECT 1 FROM pg_index x
	WHERE x.indrelid = i.inhrelid
	  AND pg_get_indexdef(x.indexrelid) LIKE '%(symbol, ts DESC, provider)');

-- no Sort node in the plan of the averages' query (Merge Append's
-- "Sort Key" lines are fine: it merges the partitions' index orders)
CREATE FUNCTION pg_temp.plan_sorts(sql text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	line text;
	sorts boolean := false;
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
		sorts := sorts OR line ~ '^\s*(->\s+)?(Incremental )?Sort\M';
	END LOOP;
	RETURN sorts;
END
$$;
-- only an index in the right order avoids a Sort when scans must use indexes
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT pg_temp.plan_sorts($q$
	SELECT p.price, p.ts FROM md.prices p WHERE p.symbol = 'ORDERIDX'
	ORDER BY p.ts DESC, p.provider LIMIT 5 $q$) AS averages_sort;

-- and the averages are those of the 5 newest rows of both providers
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT md_moving_average('ORDERIDX', 5);
SELECT avg(price) FROM (SELECT price FROM md.prices WHERE symbol = 'ORDERIDX'
						ORDER BY ts DESC, provider LIMIT 5) t;
