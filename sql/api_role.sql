-- The REST API's database role (md_api_grant): the md._api_* functions,
-- nothing on any table. Connected as that role, what the API needs works
-- and what a stolen password would want is refused.
SET timezone = 'UTC';
SELECT current_user AS admin_user \gset
CREATE ROLE regress_md_api LOGIN;
SELECT md_api_grant('regress_md_api') > 0 AS granted;
SELECT md_ingest_price('ROLE', 'finnhub', 12.5, '2026-01-05 10:00+00');
SELECT md_create_api_key('role-test', 'writer') AS key \gset
SELECT encode(sha256(convert_to(:'key', 'UTF8')), 'hex') AS key_sha256 \gset

\c - regress_md_api
SELECT current_user;
-- what the API does
SELECT md._api_key_role(:'key_sha256');
SELECT md._api_key_role(repeat('0', 64));
SELECT md._api_latest('ROLE', 'finnhub', '100 years')::jsonb ->> 'price' AS price;
SELECT md._api_history('ROLE', '2026-01-05', '2026-01-06', NULL, 10)::jsonb -> 'points' AS points;
SELECT md._api_poll_create(ARRAY['ROLE'], 60, 'sandbox')::jsonb ->> 'status' AS created;
SELECT md._api_ready() IS NOT NULL AS ready;

-- what it must not do
\set VERBOSITY terse
SELECT key_hash FROM md.api_keys;
SELECT md_api_key_role(:'key');
UPDATE md.providers SET base_url = 'http://attacker.example' WHERE name = 'finnhub';
DELETE FROM md.prices;
DELETE FROM md.latest_prices;
INSERT INTO md.polling_jobs (symbols, "interval", provider) VALUES ('{X}', 1, 'sandbox');
SELECT md_create_api_key('mine', 'admin');
SELECT md_ingest_price('ROLE', 'finnhub', 0.01, '2026-01-05 11:00+00');
SELECT md_api_grant('regress_md_api');
SET marketdata.allow_private_provider_urls = on;

\c - :admin_user
SELECT base_url NOT LIKE '%attacker%' AS base_url_kept FROM md.providers WHERE name = 'finnhub';
SELECT count(*) AS prices_kept FROM md.prices WHERE symbol = 'ROLE';
DELETE FROM md.polling_jobs;
DROP OWNED BY regress_md_api;
DROP ROLE regress_md_api;
