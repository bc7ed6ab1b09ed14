-- md_ingest_price / md_ingest_prices: the idempotent sink.
SET timezone = 'UTC';

-- a new price is stored and normalised
SELECT md_ingest_price(' ibm ', 'finnhub', 140.25, '2024-03-01 15:00:00+00', 1200, 'USD', NULL);
SELECT symbol, provider, price, ts, volume, currency FROM md.prices WHERE symbol = 'IBM';

-- the same price again is not new and changes nothing
SELECT md_ingest_price('IBM', 'finnhub', 140.25, '2024-03-01 15:00:00+00');
SELECT count(*) FROM md.prices WHERE symbol = 'IBM';

-- latest follows the newest market time, not the newest call
SELECT md_ingest_price('IBM', 'finnhub', 141.00, '2024-03-01 16:00:00+00');
SELECT md_ingest_price('IBM', 'finnhub', 139.00, '2024-03-01 14:00:00+00');
SELECT symbol, provider, price, ts FROM md.latest_prices WHERE symbol = 'IBM';

-- the 5-point average counts each price once: (140.25 + 141 + 139) / 3
SELECT symbol, "window", round(average, 4) AS average, points, last_ts
FROM md.symbol_averages WHERE symbol = 'IBM';

-- a batch: duplicates inside it and of stored rows are not new
SELECT md_ingest_prices(
	ARRAY['IBM', 'IBM', 'IBM', 'ORCL', 'orcl'],
	ARRAY['finnhub', 'finnhub', 'finnhub', 'polygon', 'polygon'],
	ARRAY[142, 142, 140.25, 100, 101]::numeric[],
	ARRAY['2024-03-01 17:00+00', '2024-03-01 17:00+00', '2024-03-01 15:00+00',
		  '2024-03-01 15:00+00', '2024-03-01 15:01+00']::timestamptz[],
	ARRAY[10, 10, NULL, NULL, 5]::numeric[],
	NULL,
	ARRAY[NULL, NULL, NULL, 7, 8]::bigint[]);
SELECT symbol, provider, price, ts, volume, raw_response_id
FROM md.prices WHERE symbol IN ('IBM', 'ORCL') ORDER BY symbol, ts;
SELECT symbol, provider, price, ts FROM md.latest_prices
WHERE symbol IN ('IBM', 'ORCL') ORDER BY symbol;
-- IBM's newest five: 142, 141, 140.25, 139 -> 140.5625
SELECT symbol, "window", round(average, 4) AS average, points
FROM md.symbol_averages WHERE symbol IN ('IBM', 'ORCL') ORDER BY symbol;

-- the same price from two providers is two observations
SELECT md_ingest_price('ORCL', 'finnhub', 101, '2024-03-01 15:01+00');
SELECT provider, price FROM md.latest_prices WHERE symbol = 'ORCL' ORDER BY provider;

-- several windows; a back-filled old price does not move a 2-point average
SET marketdata.average_windows = '2, 5';
SELECT md_ingest_price('ORCL', 'polygon', 50, '2024-01-01 00:00+00');
SELECT "window", round(average, 4) AS average, points
FROM md.symbol_averages WHERE symbol = 'ORCL' ORDER BY "window";
RESET marketdata.average_windows;

-- an empty batch is fine
SELECT md_ingest_prices('{}', '{}', '{}', '{}');

-- real tickers of every shape
SELECT md_ingest_prices(
	ARRAY['BRK.B', '^GSPC', 'eurusd=x', 'GC=F', 'BTC-USD', 'OCDO.L', 'BF_B', 'A/B'],
	array_fill('yahoo_finance'::text, ARRAY[8]),
	array_fill(1.5::numeric, ARRAY[8]),
	array_fill('2024-02-01 00:00+00'::timestamptz, ARRAY[8]));
SELECT symbol FROM md.prices WHERE ts = '2024-02-01 00:00+00' AND provider = 'yahoo_finance' ORDER BY symbol;
