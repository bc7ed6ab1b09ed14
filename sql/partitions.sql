-- Monthly partitions of md.prices, created as prices arrive.
SET timezone = 'UTC';

-- a price from 1999 creates its month
SELECT md_ingest_price('PART', 'finnhub', 1, '1999-12-31 23:59:59+00');
SELECT md_ingest_price('PART', 'finnhub', 2, '2000-01-01 00:00:00+00');
SELECT tableoid::regclass, price FROM md.prices WHERE symbol = 'PART' ORDER BY ts;
SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = 'md.prices_199912'::regclass;

-- a batch spanning many months creates each of them once
SELECT md_ingest_prices(array_fill('PART'::text, ARRAY[24]), array_fill('finnhub'::text, ARRAY[24]),
	array_fill(3::numeric, ARRAY[24]),
	ARRAY(SELECT '2001-01-15 00:00+00'::timestamptz + g * interval '1 month' FROM generate_series(0, 23) g));
SELECT count(*) FROM pg_inherits WHERE inhparent = 'md.prices'::regclass
	AND inhrelid::regclass::text ~ '^md\.prices_200[12]';

-- a dropped partition is created again when a price for its month arrives
DROP TABLE md.prices_199912;
SELECT md_ingest_price('PART', 'finnhub', 1, '1999-12-31 23:59:59+00');
SELECT to_regclass('md.prices_199912') IS NOT NULL AS recreated;

-- the partitions hold the history; the parent holds nothing itself
SELECT count(*) FROM ONLY md.prices;
SELECT count(*) FROM md.prices WHERE symbol = 'PART';
