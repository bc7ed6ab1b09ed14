-- md_history and md_moving_average.
SET timezone = 'UTC';

SELECT md_ingest_prices(
	array_fill('NVDA'::text, ARRAY[7]),
	ARRAY['finnhub', 'finnhub', 'finnhub', 'finnhub', 'finnhub', 'finnhub', 'polygon'],
	ARRAY[10, 11, 12, 13, 14, 15, 16]::numeric[],
	ARRAY['2024-01-01 00:00+00', '2024-01-02 00:00+00', '2024-01-03 00:00+00',
		  '2024-01-04 00:00+00', '2024-01-05 00:00+00', '2024-02-01 00:00+00',
		  '2024-02-02 00:00+00']::timestamptz[]);

-- across a partition boundary, oldest first
SELECT * FROM md_history('NVDA', '2024-01-02', '2024-02-01');
SELECT * FROM md_history('nvda', '2024-01-01', '2024-12-31', 'polygon');
SELECT count(*) FROM md_history('NVDA', '2024-01-01', '2024-12-31', "limit" => 3);
-- no rows is an empty answer, not an error
SELECT count(*) FROM md_history('NVDA', '2030-01-01', '2030-02-01');

-- the kept 5-point average: 12..16 -> 14
SELECT md_moving_average('NVDA');
-- other windows are computed on the fly
SELECT md_moving_average('NVDA', 2), md_moving_average('NVDA', 100);

SELECT md_history('NVDA', '2024-02-01', '2024-01-01');
SELECT md_history('NVDA', NULL, '2024-01-01');
SELECT md_history('NVDA', '2024-01-01', '2024-02-01', "limit" => 0);
SELECT md_moving_average('NVDA', 0);
SELECT md_moving_average('NOPE');
