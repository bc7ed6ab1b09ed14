-- Polling jobs: md_poll and INSERT into md.polling_jobs.
SET timezone = 'UTC';

SELECT md_poll(ARRAY['aapl', ' msft '], 60, 'yahoo_finance') > 0 AS scheduled;
INSERT INTO md.polling_jobs (symbols, interval, provider)
VALUES ('{GC=F, eurusd=x}', 1, 'finnhub');
SELECT symbols, interval, provider, enabled, next_run_at <= now() AS due, last_status
FROM md.polling_jobs ORDER BY id;

-- UPDATE goes through the same checks
UPDATE md.polling_jobs SET symbols = '{ibm}', interval = 86400 WHERE provider = 'finnhub';
SELECT symbols, interval FROM md.polling_jobs WHERE provider = 'finnhub';

-- 500 symbols are fine, 501 are not
SELECT md_poll(ARRAY(SELECT 'S' || g FROM generate_series(1, 500) g), 10, 'polygon') AS big_job \gset
SELECT cardinality(symbols) FROM md.polling_jobs WHERE id = :big_job;
SELECT md_poll(ARRAY(SELECT 'S' || g FROM generate_series(1, 501) g), 10, 'polygon');

-- bad jobs
SELECT md_poll('{}', 60, 'yahoo_finance');
SELECT md_poll(ARRAY['AAPL', 'aapl'], 60, 'yahoo_finance');
SELECT md_poll(ARRAY['AAPL', NULL], 60, 'yahoo_finance');
SELECT md_poll(ARRAY['AAPL'], 0, 'yahoo_finance');
SELECT md_poll(ARRAY['AAPL'], 86401, 'yahoo_finance');
SELECT md_poll(ARRAY['AAPL'], 60, 'nasdaq_magic');
SELECT md_poll(ARRAY['AAPL'], NULL, 'yahoo_finance');
SELECT md_poll(NULL, 60, 'yahoo_finance');
SELECT md_poll(ARRAY['AA PL'], 60, 'yahoo_finance');
SELECT md_poll(ARRAY[['AAPL'], ['MSFT']], 60, 'yahoo_finance');
UPDATE md.polling_jobs SET interval = -5 WHERE provider = 'finnhub';
UPDATE md.polling_jobs SET provider = 'nope' WHERE provider = 'finnhub';

-- none of the bad ones left a trace
SELECT count(*) FROM md.polling_jobs;

-- DELETE stops a job
DELETE FROM md.polling_jobs WHERE provider = 'polygon';
SELECT count(*) FROM md.polling_jobs;
