-- md_price and md_quote: the latest fresh price.
SET timezone = 'UTC';

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
