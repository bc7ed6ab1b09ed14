-- md_price without a provider: which provider's row answers. The look-up
-- reads every provider's row of the symbol and picks the newest in C
-- (extension/md_price.c), so each rule of the choice is checked here.
SET timezone = 'UTC';

SELECT md_ingest_price('NEWEST', 'finnhub', 10, '2024-05-01 20:00:00+00');
SELECT md_ingest_price('NEWEST', 'polygon', 20, '2024-05-01 19:00:00+00');
SELECT md_ingest_price('NEWEST', 'alpha_vantage', 30, '2024-05-01 18:00:00+00');

-- the newest market time wins, whatever the order of the rows
SELECT md_price('NEWEST', max_age => '1 hour');

-- the same market time: the later fetch wins
UPDATE md.latest_prices SET ts = '2024-05-01 20:00:00+00',
	fetched_at = now() - interval '1 second' WHERE symbol = 'NEWEST';
UPDATE md.latest_prices SET fetched_at = now() WHERE symbol = 'NEWEST' AND provider = 'polygon';
SELECT md_price('NEWEST', max_age => '1 hour');

-- the same market time and fetch: the first provider by name, every time
UPDATE md.latest_prices SET fetched_at = now() WHERE symbol = 'NEWEST';
SELECT md_price('NEWEST', max_age => '1 hour');
SELECT provider, price FROM md_quote('NEWEST', max_age => '1 hour');

-- a provider named: only its row counts, even when it is not the newest
SELECT md_price('NEWEST', 'finnhub', '1 hour');
UPDATE md.latest_prices SET ts = ts - interval '1 day' WHERE symbol = 'NEWEST' AND provider = 'finnhub';
SELECT md_price('NEWEST', 'finnhub', '1 hour');
SELECT md_price('NEWEST', max_age => '1 hour');
