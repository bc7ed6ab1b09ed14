-- Providers: md_fetch, md_fetch_many, keys, unreachable providers, the
-- sandbox and md.provider_status, without any network (HTTP providers are
-- pointed at a closed local port; the TAP tests use the fake provider).
SET timezone = 'UTC';
SET marketdata.circuit_breaker_failures = 0;
UPDATE md.providers SET base_url = 'http://127.0.0.1:1' WHERE name <> 'sandbox';

-- the sandbox: a price in USD, stored with its raw response
SELECT symbol, provider, price > 0 AS priced, currency, volume > 0 AS has_volume,
	   error_class, http_status, raw_response_id IS NOT NULL AS has_raw
FROM md_fetch('sbx1', 'sandbox');
SELECT r.provider, r.symbol, r.url, r.http_status, r.error_class,
	   (r.body::jsonb ->> 'price')::numeric = l.price AS body_has_price
FROM md.latest_prices l JOIN md.raw_responses r ON r.id = l.raw_response_id
WHERE l.symbol = 'SBX1';
-- the price went through the sink: history and averages
SELECT count(*) FROM md.prices WHERE symbol = 'SBX1';
SELECT points FROM md.symbol_averages WHERE symbol = 'SBX1';

-- many symbols at once; a symbol asked twice is fetched once
SELECT symbol, provider, price > 0 AS priced, error_class
FROM md_fetch_many(ARRAY['SBX2', 'sbx3', 'SBX2'], 'sandbox') ORDER BY symbol;
SELECT count(*) FROM md_fetch_many('{}', 'sandbox');

-- an HTTP provider that cannot be reached: unavailable, and the attempt is kept
SELECT symbol, provider, price, error_class, message, http_status
FROM md_fetch('IBM', 'yahoo_finance');
SELECT provider, symbol, url, http_status, error_class, body
FROM md.raw_responses WHERE symbol = 'IBM' ORDER BY id;

-- providers that need a key fail as auth_failed without a request
SELECT symbol, provider, error_class, message, raw_response_id
FROM md_fetch_many(ARRAY['IBM'], 'finnhub');

-- failover: every enabled failover provider in priority order, never the sandbox
SELECT symbol, provider, error_class FROM md_fetch('PRVX');
-- md_price raises: one class for all attempts is that class, mixed is MD104
SELECT md_price('PRVX');
SELECT md_price('PRVX', 'finnhub');
SELECT md_price('PRVX', 'yahoo_finance');

-- provider status: the sandbox answered, yahoo_finance failed
SELECT provider, enabled, state, last_success_at IS NOT NULL AS succeeded,
	   last_error_class, consecutive_failures > 0 AS failing, requests > 0 AS asked
FROM md.provider_status ORDER BY priority;

-- the circuit breaker: after N failures in a row a provider is skipped
SET marketdata.circuit_breaker_failures = 2;
SET marketdata.circuit_breaker_cooldown = '1h';
SELECT provider, error_class, message, raw_response_id IS NOT NULL AS asked
FROM md_fetch('PRVY', 'yahoo_finance');
SELECT provider, error_class, message, raw_response_id IS NOT NULL AS asked
FROM md_fetch('PRVY', 'yahoo_finance');
SELECT state, circuit_open_until > now() + interval '59 minutes' AS open_an_hour
FROM md.provider_status WHERE provider = 'yahoo_finance';
-- failover goes past an open circuit
SELECT provider, error_class FROM md_fetch('PRVY');
-- turned off, the provider is asked again
SET marketdata.circuit_breaker_failures = 0;
SELECT provider, error_class, raw_response_id IS NOT NULL AS asked
FROM md_fetch('PRVY', 'yahoo_finance');

-- bad arguments
SELECT * FROM md_fetch(NULL);
SELECT * FROM md_fetch('bad symbol', 'sandbox');
SELECT * FROM md_fetch('IBM', 'nasdaq_magic');
SELECT * FROM md_fetch_many(NULL);
SELECT * FROM md_fetch_many(ARRAY['IBM', NULL], 'sandbox');
SELECT * FROM md_fetch_many(ARRAY[['IBM']], 'sandbox');
SELECT * FROM md_fetch_many(ARRAY['IBM', '..'], 'sandbox');
-- a bounded batch, refused before anything is fetched (and long before the timeout)
SET statement_timeout = '3s';
SELECT count(*) FROM md_fetch_many(ARRAY(SELECT 'S' || g FROM generate_series(1, 501) g), 'sandbox');
SELECT count(*) FROM md_fetch_many(ARRAY(SELECT 'S' || g FROM generate_series(1, 100000) g), 'sandbox');
RESET statement_timeout;

-- nobody to ask
UPDATE md.providers SET enabled = false WHERE name = 'sandbox';
SELECT * FROM md_fetch('IBM', 'sandbox');
UPDATE md.providers SET enabled = false;
SELECT * FROM md_fetch('IBM');

-- bad settings
SET marketdata.http_timeout = 0;
SET marketdata.http_max_response_size = 10;
SET marketdata.polygon_endpoint = 'latest';
SET marketdata.circuit_breaker_failures = -1;
SET marketdata.circuit_breaker_cooldown = 0;
SET marketdata.secrets_file = '/tmp/x';

UPDATE md.providers p SET enabled = true, base_url = CASE p.name
	WHEN 'yahoo_finance' THEN 'https://query1.finance.yahoo.com'
	WHEN 'finnhub' THEN 'https://finnhub.io'
	WHEN 'polygon' THEN 'https://api.polygon.io'
	WHEN 'alpha_vantage' THEN 'https://www.alphavantage.co'
	ELSE p.base_url END;
