# Bars kept by the sink equal a recomputation from md.prices after a
# shuffled replay of 50,000 prices plus duplicates, fed by two sessions at
# once in batches: late prices, duplicates inside and across batches and
# sessions, three time zones around their DST changes.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::TestDb;

my $node = MarketData::TestDb->node('bars');

# the stream: 50,000 distinct prices of 3 symbols x 2 providers between
# 2026-03-06 and 2026-03-31 (DST: New York 03-08, Berlin 03-29), then 5,000
# repeats of some of their keys with other prices and volumes, all shuffled
$node->safe_psql('md', q{
	INSERT INTO md.symbols (symbol, time_zone) VALUES
		('SAP.DE', 'Europe/Berlin'), ('IBM', 'America/New_York');
	SELECT setseed(0.17);
	CREATE TABLE stream AS
	WITH keys AS (
		SELECT DISTINCT ON (symbol, provider, ts) *
		FROM (SELECT (ARRAY['SAP.DE', 'IBM', 'BTC-USD'])[1 + floor(random() * 3)::int] AS symbol,
					 (ARRAY['finnhub', 'polygon'])[1 + floor(random() * 2)::int] AS provider,
					 timestamptz '2026-03-06 00:00+00'
						+ (random() * 25 * 86400)::int * interval '1 second' AS ts
			  FROM generate_series(1, 52000)) k
		ORDER BY symbol, provider, ts),
	distinct_keys AS (SELECT * FROM keys LIMIT 50000)
	SELECT symbol, provider, ts, round((50 + random() * 50)::numeric, 2) AS price,
		   CASE WHEN random() < 0.3 THEN NULL ELSE (random() * 100)::int::numeric END AS volume
	FROM distinct_keys
	UNION ALL
	SELECT symbol, provider, ts, round((50 + random() * 50)::numeric, 2), 1
	FROM (SELECT * FROM distinct_keys ORDER BY random() LIMIT 5000) d;
	ALTER TABLE stream ADD COLUMN ord bigint;
	UPDATE stream SET ord = (random() * 1e12)::bigint;
	CREATE PROCEDURE replay(session int, batch int) LANGUAGE plpgsql AS $$
	DECLARE
		n int := 0;
		r record;
	BEGIN
		FOR r IN
			SELECT array_agg(symbol ORDER BY ord) s, array_agg(provider ORDER BY ord) p,
				   array_agg(price ORDER BY ord) pr, array_agg(ts ORDER BY ord) t,
				   array_agg(volume ORDER BY ord) v
			FROM (SELECT *, row_number() OVER (ORDER BY ord) AS i FROM stream
				  WHERE ord % 2 = session) x
			GROUP BY (i - 1) / batch ORDER BY (i - 1) / batch
		LOOP
			PERFORM md_ingest_prices(r.s, r.p, r.pr, r.t, r.v);
			COMMIT;
		END LOOP;
	END
	$$;
});
is($node->safe_psql('md', 'SELECT count(*) FROM stream'), '55000', '55,000 prices to replay');

# two sessions at once, batches of different sizes so they interleave
my @runs;
for my $session (0, 1)
{
	my ($out, $err) = ('', '');
	my $batch = $session ? 700 : 300;
	push @runs, [ IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('md'),
		  '-c', "CALL replay($session, $batch)" ],
		'>', \$out, '2>', \$err), \$err ];
}
for my $run (@runs)
{
	$run->[0]->finish;
	is(${ $run->[1] }, '', 'replay session ended without error');
}

is($node->safe_psql('md', 'SELECT count(*) FROM md.prices'), '50000',
	'every distinct price stored once');

# the recomputation, independent of md._bar_bucket
my $mismatches = q{
	WITH recomputed AS (
		SELECT p.symbol, p.provider, l.level AS "interval",
			   CASE l.level WHEN '1 minute' THEN date_trunc('minute', p.ts)
							WHEN '1 hour' THEN date_trunc('hour', p.ts)
							ELSE date_trunc('day', p.ts, coalesce(s.time_zone, 'UTC')) END AS bucket,
			   (array_agg(p.price ORDER BY p.ts))[1] AS open, max(p.price) AS high,
			   min(p.price) AS low, (array_agg(p.price ORDER BY p.ts DESC))[1] AS close,
			   sum(p.volume) AS volume, count(*)::int AS prices,
			   min(p.ts) AS first_ts, max(p.ts) AS last_ts
		FROM md.prices p LEFT JOIN md.symbols s ON s.symbol = p.symbol
		CROSS JOIN (VALUES (interval '1 minute'), ('1 hour'), ('1 day')) l(level)
		GROUP BY 1, 2, 3, 4),
	stored AS (
		SELECT symbol, provider, "interval", bucket, open, high, low, close, volume,
			   prices, first_ts, last_ts FROM md.bars)
	SELECT (SELECT count(*) FROM (SELECT * FROM recomputed EXCEPT SELECT * FROM stored) a)
		|| '/' || (SELECT count(*) FROM (SELECT * FROM stored EXCEPT SELECT * FROM recomputed) b)
};
is($node->safe_psql('md', $mismatches), '0/0', 'every bar equals its recomputation (missing/extra)');
is($node->safe_psql('md', q{SELECT count(*) > 40000 AND sum(prices) = 50000
	FROM md.bars WHERE "interval" = '1 minute'}), 't', 'minute bars hold every price once');
# Berlin's day of 2026-03-29 lasts 23 hours, New York's of 03-08 too
is($node->safe_psql('md', q{
	SELECT string_agg(symbol || ' ' || to_char(bucket, 'MM-DD HH24'), ', ' ORDER BY symbol, bucket)
	FROM md.bars WHERE "interval" = '1 day' AND provider = 'finnhub'
	  AND ((symbol = 'SAP.DE' AND bucket IN ('2026-03-28 23:00+00', '2026-03-29 22:00+00'))
		OR (symbol = 'IBM' AND bucket IN ('2026-03-08 05:00+00', '2026-03-09 04:00+00')))}),
	'IBM 03-08 05, IBM 03-09 04, SAP.DE 03-28 23, SAP.DE 03-29 22',
	'daily bars start at local midnight across DST changes');

# replaying the whole stream again changes nothing
$node->safe_psql('md', 'CALL replay(0, 5000); CALL replay(1, 5000)');
is($node->safe_psql('md', $mismatches), '0/0', 'a second replay changes no bar');

# md_rebuild_bars from scratch gives the same bars
$node->safe_psql('md', q{UPDATE md.bars SET close = 1 WHERE bucket < '2026-03-10'});
isnt($node->safe_psql('md', $mismatches), '0/0', 'damaged bars are seen');
$node->safe_psql('md', 'SELECT md_rebuild_bars()');
is($node->safe_psql('md', $mismatches), '0/0', 'md_rebuild_bars restores them');

$node->stop;
done_testing();
