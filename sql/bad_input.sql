-- Bad input: every case gets a clear error and changes nothing.
SET timezone = 'UTC';

SELECT md_ingest_price('GOOD', 'finnhub', 10, '2024-06-03 14:00+00');
CREATE TEMP TABLE before AS
	SELECT (SELECT count(*) FROM md.prices) AS prices,
		   (SELECT count(*) FROM md.latest_prices) AS latest,
		   (SELECT string_agg(symbol || ':' || "window" || ':' || average, ',' ORDER BY symbol, "window")
			FROM md.symbol_averages) AS averages;

-- NULLs
SELECT md_ingest_price(NULL, 'finnhub', 1, now());
SELECT md_ingest_price('GOOD', NULL, 1, now());
SELECT md_ingest_price('GOOD', 'finnhub', NULL, now());
SELECT md_ingest_price('GOOD', 'finnhub', 1, NULL);
SELECT md_price(NULL);
SELECT md_price('GOOD', NULL, NULL);
SELECT md_ingest_prices(NULL, '{finnhub}', '{1}', ARRAY[now()]);
SELECT md_ingest_prices('{GOOD, NULL}', '{finnhub, finnhub}', '{1, 2}', ARRAY[now(), now()]);

-- empty, blank and over-long symbols
SELECT md_ingest_price('', 'finnhub', 1, now());
SELECT md_ingest_price('   ', 'finnhub', 1, now());
SELECT md_ingest_price(repeat('A', 33), 'finnhub', 1, now());
SELECT md_ingest_price(repeat('A', 100000), 'finnhub', 1, now());
SELECT md_price('');
SELECT md_price(repeat('X', 33));
-- 32 characters are fine
SELECT length(_md_normalize_symbol(repeat('a', 32)));

-- injection-shaped and odd strings
SELECT md_ingest_price('AAPL''; DROP TABLE md.prices; --', 'finnhub', 1, now());
SELECT md_ingest_price('AAPL" OR 1=1', 'finnhub', 1, now());
SELECT md_ingest_price('../../etc/passwd', 'finnhub', 1, now());
SELECT md_ingest_price('A..B', 'finnhub', 1, now());
SELECT md_ingest_price('-AAPL', 'finnhub', 1, now());
SELECT md_ingest_price(E'AAPL\nMSFT', 'finnhub', 1, now());
SELECT md_ingest_price('AAPL%20', 'finnhub', 1, now());
SELECT md_ingest_price('ÄPFEL', 'finnhub', 1, now());
SELECT md_price('md:price:*');
SELECT md_ingest_price('AAPL', 'finnhub''; DROP TABLE md.prices; --', 1, now());
SELECT md_price('AAPL', 'x'' OR ''1''=''1');

-- prices that are not finite positive numbers
SELECT md_ingest_price('GOOD', 'finnhub', 'NaN', now());
SELECT md_ingest_price('GOOD', 'finnhub', 'Infinity', now());
SELECT md_ingest_price('GOOD', 'finnhub', '-Infinity', now());
SELECT md_ingest_price('GOOD', 'finnhub', -1, now());
SELECT md_ingest_price('GOOD', 'finnhub', 0, now());
SELECT md_ingest_price('GOOD', 'finnhub', 1, now(), -5);
SELECT md_ingest_price('GOOD', 'finnhub', 1, now(), 'NaN');
SELECT md_ingest_price('GOOD', 'finnhub', 1, now(), NULL, 'US Dollar');

-- absurd timestamps
SELECT md_ingest_price('GOOD', 'finnhub', 1, 'infinity');
SELECT md_ingest_price('GOOD', 'finnhub', 1, '-infinity');
SELECT md_ingest_price('GOOD', 'finnhub', 1, '1969-12-31 23:59:59+00');
SELECT md_ingest_price('GOOD', 'finnhub', 1, '2999-01-01 00:00+00');
SELECT md_ingest_price('GOOD', 'finnhub', 1, '294276-01-01 00:00+00');

-- unknown providers
SELECT md_ingest_price('GOOD', 'nasdaq_magic', 1, now());
SELECT md_ingest_price('GOOD', '', 1, now());
SELECT md_price('GOOD', 'nasdaq_magic');

-- one bad row refuses the whole batch, naming the row
SELECT md_ingest_prices('{GOOD, GOOD, GOOD}', '{finnhub, finnhub, finnhub}',
	'{11, -1, 12}', ARRAY['2024-06-03 15:00+00', '2024-06-03 16:00+00', '2024-06-03 17:00+00']::timestamptz[]);
SELECT md_ingest_prices('{GOOD, GOOD}', '{finnhub, nope}',
	'{11, 12}', ARRAY['2024-06-03 15:00+00', '2024-06-03 16:00+00']::timestamptz[]);
-- arrays of different lengths
SELECT md_ingest_prices('{GOOD, GOOD}', '{finnhub}', '{11, 12}', ARRAY[now(), now()]);
SELECT md_ingest_prices('{GOOD}', '{finnhub}', '{11}', ARRAY[now()], '{1, 2}');
SELECT md_ingest_prices('{{GOOD}}', '{{finnhub}}', '{{11}}', ARRAY[[now()]]);

-- direct writes are refused by the table's own constraints
\set VERBOSITY terse
INSERT INTO md.prices (symbol, provider, price, ts) VALUES ('bad symbol', 'finnhub', 1, '2024-06-03 18:00+00');
INSERT INTO md.prices (symbol, provider, price, ts) VALUES ('GOOD', 'finnhub', 'NaN', '2024-06-03 18:00+00');
INSERT INTO md.prices (symbol, provider, price, ts) VALUES ('GOOD', 'nope', 1, '2024-06-03 18:00+00');
INSERT INTO md.prices (symbol, provider, price, ts) VALUES ('..', 'finnhub', 1, '2024-06-03 18:00+00');
INSERT INTO md.prices (symbol, provider, price, ts) VALUES ('GOOD', 'finnhub', 1, '1960-01-01');
-- a consumer group librdkafka cannot use, times a schedule cannot reach
INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('t', '');
INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('t', 'a b');
INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('t', repeat('g', 250));
INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at) VALUES ('{X}', 60, 'sandbox', '-infinity');
INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at) VALUES ('{X}', 60, 'sandbox', 'infinity');
\set VERBOSITY default

-- duplicates: ingesting the same price many times counts it once
SELECT md_ingest_price('GOOD', 'finnhub', 10, '2024-06-03 14:00+00');
SELECT md_ingest_prices(array_fill('GOOD'::text, ARRAY[50]), array_fill('finnhub'::text, ARRAY[50]),
	array_fill(10::numeric, ARRAY[50]), array_fill('2024-06-03 14:00+00'::timestamptz, ARRAY[50]));

-- nothing changed
SELECT (SELECT count(*) FROM md.prices) = prices AS prices_unchanged,
	   (SELECT count(*) FROM md.latest_prices) = latest AS latest_unchanged,
	   (SELECT string_agg(symbol || ':' || "window" || ':' || average, ',' ORDER BY symbol, "window")
		FROM md.symbol_averages) = averages AS averages_unchanged
FROM before;

-- bad settings are refused
SET marketdata.average_windows = '0';
SET marketdata.average_windows = '5, x';
SET marketdata.average_windows = '';
SET marketdata.average_windows = '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17';
SET marketdata.max_future_skew = -1;
