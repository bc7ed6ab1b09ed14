-- md._outbox_snapshot_through: the relay's record of a tick delivered up
-- to a transaction. prev = 100:105:102,104 (100,101,103 done; 102, 104 running)
-- cur = 104:110:104,108 (102 done since, 105-107 and 109 done, 104 and 108 running)
SELECT md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', '107');
-- through 107: 102 (done, below 107) and 105, 106 are visible; 107, 109 are not
SELECT x, pg_visible_in_snapshot(x::text::xid8,
		md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', '107')) AS visible
FROM generate_series(100, 111) x;
-- x inside prev's range: the late 102 is in, what prev had not seen above x stays out
SELECT md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', '103');
SELECT md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', '102');
-- through cur's end: cur itself
SELECT md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', '110');
-- everything visible in prev stays visible, whatever x
SELECT bool_and(NOT pg_visible_in_snapshot(x::text::xid8, '100:105:102,104')
				OR pg_visible_in_snapshot(x::text::xid8,
					md._outbox_snapshot_through('100:105:102,104', '104:110:104,108', y::text::xid8)))
	AS monotone
FROM generate_series(95, 112) x, generate_series(100, 110) y;
-- the Kafka price event, as the design shows it: compact, in its field order
SELECT md._price_event('AAPL', 'yahoo_finance', 187.42, '2026-11-20 15:30:00+00', 17);
SELECT md._price_event('BRK.B', 'finnhub', 1.5, '2026-11-20 15:30:00.25+00', NULL);
