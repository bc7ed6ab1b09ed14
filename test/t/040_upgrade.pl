# Upgrades: a database at 0.1.0 (extension/marketdata--0.1.0.sql) with data in
# every kind of table, under the current library. Before the upgrade the
# library refuses to run against the old tables and says what to do; ALTER
# EXTENSION marketdata UPDATE loses nothing, the workers carry on, and the
# upgraded schema dumps exactly as a fresh install of the current version.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;
use MarketData::FakeProvider;

my $current = do {
	open(my $fh, '<', top_dir() . '/marketdata.control') or die "marketdata.control: $!";
	my ($v) = map { /^default_version\s*=\s*'(.*)'/ ? $1 : () } <$fh>;
	$v;
};

my $fake = MarketData::FakeProvider->new(latency_ms => 5);
my $broker = start_kafka_broker('price-events');

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', "CREATE EXTENSION marketdata VERSION '0.1.0'");
$fake->point_providers($node, 'md');

# the library is newer than the tables: workers wait, entry points refuse
ok($node->poll_query_until('md',
		"SELECT count(*) = 3 AND bool_and(state = 'waiting for ALTER EXTENSION marketdata UPDATE') "
		  . "FROM md.worker_status WHERE worker IN ('scheduler', 'relay', 'consumer')"),
	'at 0.1.0 the workers wait for ALTER EXTENSION UPDATE');
ok($node->log_contains(
		qr/marketdata scheduler waits: the library is version \Q$current\E but the extension in database "md" is version 0\.1\.0/),
	'and say why in the log');
my ($rc, $out, $err) = $node->psql('md', "SELECT md_price('AAPL', 'sandbox')");
like($err, qr/marketdata library is version \Q$current\E but the extension in this database is version 0\.1\.0/,
	'md_price refuses at 0.1.0');
like($err, qr/HINT:  Run ALTER EXTENSION marketdata UPDATE/, 'naming the fix');
($rc, $out, $err) = $node->psql('md', "SELECT md_ingest_price('AAPL', 'finnhub', 1, now())");
like($err, qr/ALTER EXTENSION marketdata UPDATE/, 'md_ingest_price refuses too');

# data of every kind, written as 0.1.0 wrote it
$node->safe_psql('md', q{
	SELECT md._ensure_price_partition(ts) FROM (VALUES ('2024-01-02'::timestamptz), ('2024-02-03')) v(ts);
	INSERT INTO md.raw_responses (provider, symbol, url, http_status, latency_ms, body)
		VALUES ('finnhub', 'AAPL', 'http://x/quote', 200, 12.5, '{"c":187.42}');
	INSERT INTO md.prices (symbol, provider, price, ts, volume, currency, raw_response_id)
		SELECT 'AAPL', 'finnhub', 180 + g, '2024-01-02'::timestamptz + g * interval '1 day', g, 'USD',
			(SELECT max(id) FROM md.raw_responses)
		FROM generate_series(0, 40) g;
	INSERT INTO md.latest_prices (symbol, provider, price, ts, raw_response_id)
		VALUES ('AAPL', 'finnhub', 220, '2024-02-11', 1);
	INSERT INTO md.symbol_averages (symbol, "window", average, points, last_ts)
		VALUES ('AAPL', 5, 218, 5, '2024-02-11');
	INSERT INTO md.providers (name, base_url, priority) VALUES ('my_feed', 'http://127.0.0.1:1', 500);
	INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SYNA, SYNB}', 1, 'yahoo_finance');
	INSERT INTO md.job_runs (job_id, status, finished_at, symbols_ok)
		VALUES (1, 'succeeded', now(), 2);
	INSERT INTO md.outbox (symbol, payload)
		SELECT 'OUTB', json_build_object('symbol', 'OUTB', 'price', g, 'timestamp', '2024-03-01T00:00:00Z',
			'source', 'finnhub', 'raw_response_id', null)
		FROM generate_series(1, 25) g;
	INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('other-feed', 'g2');
	INSERT INTO md.kafka_offsets (topic, group_id, partition, next_offset, high_watermark)
		VALUES ('other-feed', 'g2', 0, 1234, 1300);
	INSERT INTO md.dead_letters (source, topic, partition, "offset", payload, reason)
		VALUES ('kafka', 'other-feed', 0, 17, 'not json', 'invalid JSON');
});

my $old_key = $node->safe_psql('md', "SELECT md_create_api_key('upgrader', 'admin')");

# what 0.1.0 holds, by the columns 0.1.0 had (an upgrade may add columns)
my @tables = split /\n/, $node->safe_psql('md',
	"SELECT c.oid::regclass FROM pg_class c JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'e' "
	  . "WHERE c.relkind IN ('r', 'p') AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'marketdata') ORDER BY 1");
my %columns;
for my $t (@tables)
{
	$columns{$t} = $node->safe_psql('md',
		"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
		  . "WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped");
}
# one query: every table's row count and digest, by those columns
my $contents_sql = join(' UNION ALL ',
	map { "SELECT '$_', count(*) || ' ' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM (SELECT $columns{$_} FROM $_) r" }
	  @tables);
sub contents
{
	my ($sql) = @_;
	return { map { split /\|/ } split /\n/, $node->safe_psql('md', $sql) };
}
my $before = contents($contents_sql);
ok(scalar(@tables) >= 12, scalar(@tables) . ' tables of the extension hold data at 0.1.0');
my $pids_before = $node->safe_psql('md',
	"SELECT string_agg(backend_type || ' ' || pid, ', ' ORDER BY backend_type) FROM pg_stat_activity "
	  . "WHERE backend_type IN ('marketdata scheduler', 'marketdata relay', 'marketdata consumer')");

# read in the upgrading transaction: the workers start on its commit
my $after = contents("BEGIN; ALTER EXTENSION marketdata UPDATE; $contents_sql; COMMIT");
is($node->safe_psql('md', "SELECT extversion FROM pg_extension WHERE extname = 'marketdata'"),
	$current, "updated to $current");
is_deeply($after, $before, 'every row of every table is still there, unchanged');

# the same worker processes carry on with the upgraded tables
ok($node->poll_query_until('md',
		"SELECT count(*) >= 2 FROM md.job_runs WHERE job_id = 1 AND status = 'succeeded' AND symbols_ok = 2 AND started_at > now() - interval '1 minute'"),
	'the scheduler runs the 0.1.0 job')
  or diag($node->safe_psql('md', 'SELECT * FROM md.job_runs ORDER BY id DESC LIMIT 3'));
ok($node->poll_query_until('md', "SELECT count(*) = 0 FROM md.outbox_pending"),
	'the relay publishes the outbox kept at 0.1.0');
is(scalar(grep { $_->[0] eq 'OUTB' } @{ kafka_consume($broker, 'price-events') }), 25,
	'all 25 events of 0.1.0 are in Kafka');
is($node->safe_psql('md',
		"SELECT string_agg(backend_type || ' ' || pid, ', ' ORDER BY backend_type) FROM pg_stat_activity "
		  . "WHERE backend_type IN ('marketdata scheduler', 'marketdata relay', 'marketdata consumer')"),
	$pids_before, 'by the same processes: no worker restarted or crashed');
# the prices of 0.1.0 have their bars (41 daily prices: one bar each at each level)
is($node->safe_psql('md', q{SELECT string_agg("interval" || ' ' || n || ' ' || p, ', ' ORDER BY "interval")
	FROM (SELECT "interval", count(*) n, sum(prices) p FROM md.bars WHERE symbol = 'AAPL' GROUP BY 1) b}),
	'00:01:00 41 41, 01:00:00 41 41, 1 day 41 41', 'the update built the bars of the stored prices');
is($node->safe_psql('md', q{SELECT count(*) FROM md.bars b JOIN md.prices p ON p.symbol = b.symbol
	AND p.provider = b.provider AND p.ts = b.first_ts AND p.price = b.open AND p.price = b.close
	WHERE b."interval" = '1 day' AND b.symbol = 'AAPL'}), '41', 'each equal to its price');
is($node->safe_psql('md', q{SELECT count(*) FROM pg_depend d JOIN pg_inherits i ON i.inhrelid = d.objid
	WHERE i.inhparent = 'md.bars'::regclass AND d.deptype = 'e'}), '0',
	'their partitions are not members of the extension (pg_dump keeps them)');
like($node->safe_psql('md', "SELECT md_price('AAPL', 'sandbox')"), qr/^\d/, 'md_price works after the update');
my $new_key = $node->safe_psql('md', "SELECT md_create_api_key('after', 'reader')");
is($node->safe_psql('md', "SELECT md_api_key_role('$old_key') || ' ' || md_api_key_role('$new_key')"),
	'admin reader', 'API keys of both versions work');

# the upgraded schema equals a fresh install, object for object: the
# binary-upgrade dump spells out every member of the extension (a plain
# dump shows only CREATE EXTENSION); oids and relfilenodes differ by nature
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION marketdata');
# the same monthly partitions (created on demand) in both
my $months = $node->safe_psql('md',
	"SELECT string_agg(quote_literal(m), ', ') FROM (SELECT DISTINCT date_trunc('month', ts) m FROM md.prices) s");
$node->safe_psql('fresh', "SELECT md._ensure_price_partition(m::timestamptz) FROM unnest(ARRAY[$months]) m");
# and of md.bars (the upgrade built bars from the prices it found; the
# sink makes the month before a price's too, where a day in a time zone
# west of UTC can start)
my $bar_months = $node->safe_psql('md',
	"SELECT string_agg(quote_literal(to_date(right(c.relname, 6), 'YYYYMM')::timestamp AT TIME ZONE 'UTC'), ', ') "
	  . "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'md.bars'::regclass");
$node->safe_psql('fresh', "SELECT md._ensure_bar_partition(m::timestamptz) FROM unnest(ARRAY[$bar_months]) m");
sub schema_dump
{
	my ($db) = @_;
	my ($dump) = run_command([ 'pg_dump', '--schema-only', '--binary-upgrade', '-d', $node->connstr($db) ]);
	# what differs between any two databases: oids, relfilenodes, frozen
	# xids, sequence positions (data), psql's random \restrict keys
	my @lines = grep {
		!/binary_upgrade_set_(next_|missing_value)|^SELECT pg_catalog.setval\(|^SET relfrozenxid = |^WHERE oid = '\d+';$|^\\(un)?restrict /
	} split /\n/, $dump;
	s/(binary_upgrade_create_empty_extension\(.*?, ')\{([0-9,]*)\}'/$1 . '{' . ($2 =~ tr{,}{,}) . ' commas}\''/e for @lines;
	my $text = join("\n", @lines) . "\n";
	PostgreSQL::Test::Utils::append_to_file("$PostgreSQL::Test::Utils::log_path/040_schema_$db.sql", $text);
	return $text;
}
my $upgraded = schema_dump('md');
my $fresh = schema_dump('fresh');
like($fresh, qr/CREATE TABLE md\.polling_jobs/, 'the dump shows the extension\'s objects');
my $same = $upgraded eq $fresh;
ok($same, "pg_dump --schema-only of the upgraded database equals a fresh $current install");
if (!$same)
{
	my $dir = $PostgreSQL::Test::Utils::log_path;
	my ($diff) = run_command([ 'diff', '-u', "$dir/040_schema_fresh.sql", "$dir/040_schema_md.sql" ]);
	diag($diff);
}

done_testing();
