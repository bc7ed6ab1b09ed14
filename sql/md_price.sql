-- md_price and md_quote: the latest fresh price.
SET timezone = 'UTC';

-- the circuit breaker is tested in providers.sql
SET marketdata.circuit_breaker_failures = 0;

-- With no provider enabled, md_price answers only from what is stored.
UPDATE md.providers SET enabled = false;

SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, '2024-05-01 19:59:00+00');
SELECT md_ingest_price('AAPL', 'finnhub', 187.40, '2024-05-01 20:00:00+00');

-- any provider: the newest market time wins
SELECT md_price('AAPL');
SELECT md_price('aapl');
-- one provider
SELECT md_price('AAPL', 'yahoo_finance');
SELECT md_price('AAPL', provider => 'finnhub', max_age => '1 hour');

-- the quote: market time, provider and how old our knowledge is
SELECT symbol, price, ts, provider, age < interval '1 minute' AS fresh
FROM md_quote('AAPL');
SELECT to_jsonb(q) - 'fetched_at' - 'age' FROM md_quote('AAPL', 'yahoo_finance') q;

-- freshness is judged by fetched_at: make the stored prices old
UPDATE md.latest_prices SET fetched_at = '2024-05-01 20:00:05+00' WHERE symbol = 'AAPL';
SELECT md_price('AAPL', max_age => '100 years');
SELECT md_price('AAPL');

-- nothing stored for the symbol, or at that provider
SELECT md_price('NOPE');
SELECT md_price('AAPL', 'polygon');
SELECT * FROM md_quote('NOPE');

-- the SQLSTATE is MD001, so callers can catch it
DO $$
BEGIN
	PERFORM md_price('NOPE');
EXCEPTION WHEN SQLSTATE 'MD001' THEN
	RAISE NOTICE 'caught %', SQLSTATE;
END
$$;

-- A miss asks the providers. A provider that cannot be reached is
-- unavailable (MD104); failover goes on to the next one.
UPDATE md.providers SET enabled = true, base_url = 'http://127.0.0.1:1'
	WHERE name = 'yahoo_finance';
SELECT md_price('NOPE');
SELECT md_price('AAPL');
DO $$
BEGIN
	PERFORM md_price('NOPE');
EXCEPTION WHEN SQLSTATE 'MD104' THEN
	RAISE NOTICE 'caught %', SQLSTATE;
END
$$;
-- the failed attempts are kept with their class
SELECT provider, symbol, url, http_status, error_class, body
FROM md.raw_responses WHERE symbol IN ('NOPE', 'AAPL') ORDER BY id;

-- the sandbox answers a miss when asked by name, and the price is stored
UPDATE md.providers SET enabled = true WHERE name = 'sandbox';
SELECT md_price('SBXP', 'sandbox') > 0 AS priced;
SELECT provider, currency, fetched_at = now() AS just_fetched,
	   raw_response_id IS NOT NULL AS has_raw
FROM md.latest_prices WHERE symbol = 'SBXP';
-- now it is fresh: answered from md.latest_prices, no new fetch
SELECT md_price('SBXP', 'sandbox') = (SELECT price FROM md.latest_prices WHERE symbol = 'SBXP') AS same;
SELECT count(*) AS sandbox_responses FROM md.raw_responses WHERE symbol = 'SBXP';
SELECT symbol, provider, price > 0 AS priced, age = '0'::interval AS fetched_now
FROM md_quote('SBXQ', 'sandbox');
-- the sandbox is never a failover choice
UPDATE md.providers SET enabled = false WHERE name = 'yahoo_finance';
SELECT md_price('SBXR');

UPDATE md.providers p SET enabled = true,
	base_url = CASE p.name WHEN 'yahoo_finance' THEN 'https://query1.finance.yahoo.com'
		ELSE p.base_url END;
