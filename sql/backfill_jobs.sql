-- Backfill jobs: md_backfill and INSERT into md.backfill_jobs.
SET timezone = 'UTC';

SELECT md_backfill(ARRAY['aapl', ' msft '], '1 day', '2021-01-01', '2026-01-01', 'sandbox') AS job \gset
SELECT symbols, provider, "interval", "from", "to", state, cursor_symbol, cursor_from,
	   created_by = current_user AS mine
FROM md.backfill_jobs WHERE id = :job;
-- no provider named: the first enabled failover provider by priority
SELECT md_backfill('{IBM}', '1 minute', '2026-01-05', '2026-01-06') AS job2 \gset
SELECT provider = (SELECT name FROM md.providers WHERE enabled AND failover
				   ORDER BY priority, name LIMIT 1) AS first_provider
FROM md.backfill_jobs WHERE id = :job2;
INSERT INTO md.backfill_jobs (symbols, provider, "interval", "from", "to")
VALUES ('{eurusd=x}', 'finnhub', '1 hour', '2026-01-01', '2026-02-01');

-- progress as people watch it
UPDATE md.backfill_jobs SET state = 'running', requests_total = 10, requests_done = 4,
	bars_stored = 1000, started_at = now() - interval '8 seconds' WHERE id = :job;
SELECT id = :job AS job, state, requests_done, requests_total, bars_stored, percent,
	   requests_per_second BETWEEN 0.4 AND 0.5 AS rate_ok,
	   time_left BETWEEN interval '11 seconds' AND interval '15 seconds' AS time_left_ok
FROM md.backfill_status WHERE id = :job;
-- pause is an UPDATE; a started job's request is fixed
UPDATE md.backfill_jobs SET state = 'paused' WHERE id = :job;
SELECT state FROM md.backfill_status WHERE id = :job;
UPDATE md.backfill_jobs SET "to" = '2026-06-01' WHERE id = :job;
-- a queued job can still change, through the same checks
UPDATE md.backfill_jobs SET "to" = '2026-03-01', symbols = '{ eurusd=x, gbpusd=x }'
WHERE provider = 'finnhub';
SELECT symbols, "to" FROM md.backfill_jobs WHERE provider = 'finnhub';
-- cancel is a DELETE
DELETE FROM md.backfill_jobs WHERE provider = 'finnhub';
SELECT count(*) FROM md.backfill_status;

-- 500 symbols are fine, 501 are not
SELECT md_backfill(ARRAY(SELECT 'S' || g FROM generate_series(1, 500) g), '1 day', '2025-01-01', '2026-01-01', 'sandbox') AS big \gset
SELECT cardinality(symbols) FROM md.backfill_jobs WHERE id = :big;
\set VERBOSITY terse
SELECT md_backfill(ARRAY(SELECT 'S' || g FROM generate_series(1, 501) g), '1 day', '2025-01-01', '2026-01-01', 'sandbox');

-- bad jobs
SELECT md_backfill('{}', '1 day', '2025-01-01', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day', '2025-01-01', '2026-01-01', 'nosuch');
SELECT md_backfill('{A}', '1 day', '2026-01-01', '2025-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day', '2026-01-01', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day', '-infinity', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day', '2025-01-01', 'infinity', 'sandbox');
SELECT md_backfill('{A}', '1 day', NULL, '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day', '1900-01-01', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '5 minutes', '2025-01-01', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '-1 day', '2025-01-01', '2026-01-01', 'sandbox');
SELECT md_backfill('{A}', '1 day 1 hour', '2025-01-01', '2026-01-01', 'sandbox');
INSERT INTO md.backfill_jobs (symbols, provider, "interval", "from", "to", state)
VALUES ('{A}', 'sandbox', '1 day', '2025-01-01', '2026-01-01', 'done');
INSERT INTO md.backfill_jobs (symbols, provider, "interval", "from", "to", cursor_symbol)
VALUES ('{A}', 'sandbox', '1 day', '2025-01-01', '2026-01-01', 3);
BEGIN;
UPDATE md.providers SET enabled = false WHERE failover;
SELECT md_backfill('{A}', '1 day', '2025-01-01', '2026-01-01');
ROLLBACK;
\set VERBOSITY default
RESET ALL;

-- Steps against the sandbox: each request is recorded, bars land once
SET timezone = 'UTC';
DELETE FROM md.backfill_jobs;
SELECT md_backfill('{BFA, BFB}', '1 day', '2024-01-01', '2026-01-01', 'sandbox') AS job \gset
SELECT requests_total FROM md.backfill_jobs WHERE id = :job;
SELECT md._backfill_step() >= 0 AS stepped;
SELECT state, requests_done, cursor_symbol, cursor_from, bars_stored > 0 AS stored
FROM md.backfill_jobs WHERE id = :job;
SELECT md._backfill_step() >= 0, md._backfill_step() >= 0, md._backfill_step() >= 0;
SELECT state, requests_done, requests_total, percent, time_left, finished_at IS NOT NULL AS finished
FROM md.backfill_status WHERE id = :job;
SELECT md._backfill_step() AS nothing_to_do;
-- the bars stored are the sandbox's own, once each
SELECT symbol, count(*) = (SELECT bars_stored FROM md.backfill_jobs WHERE id = :job) / 2 AS half,
	   count(DISTINCT bucket) = count(*) AS once, min(source), max(source)
FROM md.bars WHERE symbol IN ('BFA', 'BFB') AND "interval" = '1 day' GROUP BY symbol ORDER BY symbol;
SELECT (SELECT count(*) FROM md.bars WHERE symbol = 'BFA' AND "interval" = '1 day')
	 = (SELECT count(*) FROM md_fetch_history('BFA', '1 day', '2024-01-01', '2026-01-01', 'sandbox') h
		WHERE h.kind = 'bar') AS as_many_as_history;
SELECT count(*) = 0 AS same_as_history
FROM (SELECT bucket, open, high, low, close FROM md.bars WHERE symbol = 'BFA' AND "interval" = '1 day'
	  EXCEPT
	  SELECT md._bar_bucket(h.ts, '1 day', md._bar_kind('1 day'), md._bar_time_zone('BFA')), h.open, h.high, h.low, h.close
	  FROM md_fetch_history('BFA', '1 day', '2024-01-01', '2026-01-01', 'sandbox') h WHERE h.kind = 'bar') d;
-- a paused job takes no step
SELECT md_backfill('{BFC}', '1 day', '2025-01-01', '2026-01-01', 'sandbox') AS job3 \gset
UPDATE md.backfill_jobs SET state = 'paused' WHERE id = :job3;
SELECT md._backfill_step() AS paused_skipped;
UPDATE md.backfill_jobs SET state = 'queued' WHERE id = :job3;
SELECT md._backfill_step() >= 0 AS resumed;
SELECT state FROM md.backfill_jobs WHERE id = :job3;
RESET ALL;
-- leave the database as found: the bars test compares md.bars with its rebuild
DELETE FROM md.backfill_jobs;
DELETE FROM md.bars WHERE symbol IN ('BFA', 'BFB', 'BFC');
