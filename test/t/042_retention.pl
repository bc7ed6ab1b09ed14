# Retention: rows older than each table's setting go, newer ones stay, old
# months of md.prices are dropped whole, md.retention_status says what was
# removed; md_retention_run() by hand and the retention worker alike. A
# concurrent writer never waits on a lock for 50 ms (log_lock_waits with
# deadlock_timeout = 50ms logs every wait that long).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use MarketData::Services;

my $node = PostgreSQL::Test::Cluster->new('retention');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.retention_interval = '1h'
marketdata.raw_response_retention = '1h'
marketdata.raw_response_error_retention = '1d'
marketdata.job_run_retention = '1h'
marketdata.dead_letter_retention = '1h'
marketdata.price_retention = '30d'
marketdata.bar_retention = '30d'
marketdata.kafka_gap_retention = '1h'
marketdata.retention_batch_size = 2000
log_lock_waits = on
deadlock_timeout = '50ms'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');
ok($node->poll_query_until('md', "SELECT state = 'waiting for the next run' FROM md.worker_status WHERE worker = 'retention'"),
	'the retention worker runs');

# old and new rows of every table
sub load
{
	$node->safe_psql('md', q{
		INSERT INTO md.raw_responses (provider, symbol, http_status, error_class, body, received_at)
			SELECT 'finnhub', 'OLD', 200, NULL, repeat('x', 200), now() - interval '2 hours' - g * interval '1 ms'
			FROM generate_series(1, 30000) g;
		INSERT INTO md.raw_responses (provider, symbol, http_status, error_class, received_at) VALUES
			('finnhub', 'ERRKEPT', 503, 'unavailable', now() - interval '2 hours'),
			('finnhub', 'ERRGONE', 503, 'unavailable', now() - interval '2 days'),
			('finnhub', 'NEW', 200, NULL, now() - interval '10 minutes');
		INSERT INTO md.job_runs (job_id, status, started_at, finished_at) VALUES
			(1, 'succeeded', now() - interval '2 hours', now() - interval '2 hours'),
			(1, 'running', now() - interval '2 hours', NULL),
			(1, 'failed', now() - interval '10 minutes', now());
		INSERT INTO md.dead_letters (source, reason, received_at) VALUES
			('kafka', 'old', now() - interval '2 hours'), ('kafka', 'new', now());
		INSERT INTO md.kafka_gaps (topic, group_id, partition, first_offset, last_offset, detected_at) VALUES
			('t', 'g', 0, 0, 9, now() - interval '2 hours'), ('t', 'g', 0, 10, 19, now());
		SELECT md_ingest_price('RETA', 'finnhub', 1, '2024-01-15'),
			   md_ingest_price('RETA', 'finnhub', 2, now());
	});
}
load();

# a writer of prices and responses meanwhile, at full speed for 6 s
my $script = PostgreSQL::Test::Utils::tempdir() . '/writer.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set p random(1, 1000000)
INSERT INTO md.raw_responses (provider, symbol, http_status, body) VALUES ('finnhub', 'W', 200, 'x');
SELECT md_ingest_price('WRIT', 'finnhub', :p, clock_timestamp());
});
my ($out, $err) = ('', '');
my $writer = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '2', '-T', '6', '-f', $script, $node->connstr('md') ],
	'>', \$out, '2>', \$err);
sleep(1);
my $status = $node->safe_psql('md',
	"SELECT string_agg(table_name || ' ' || (rows_removed + partitions_removed), ', ' ORDER BY table_name) FROM md_retention_run()");
ok($writer->finish, 'the writer ran throughout') or diag($err);
like($out, qr/number of transactions actually processed: \d+/, 'and wrote');
diag($out =~ /(latency average = .*)/ ? $1 : $out);

is($status, 'md.bars 1, md.dead_letters 1, md.job_runs 1, md.kafka_gaps 1, md.prices 1, md.raw_responses 30001',
	'md_retention_run removed the old rows of each table and one month of prices and of bars');
is($node->safe_psql('md', "SELECT string_agg(symbol, ',' ORDER BY symbol) FROM md.raw_responses WHERE symbol <> 'W'"),
	'ERRKEPT,NEW', 'raw responses: old successes go, errors stay a day');
is($node->safe_psql('md', "SELECT string_agg(status, ',' ORDER BY status) FROM md.job_runs"),
	'failed,running', 'job runs: old finished runs go, a running one stays');
is($node->safe_psql('md', "SELECT string_agg(reason, ',') FROM md.dead_letters"), 'new', 'dead letters: the old one goes');
is($node->safe_psql('md',
		"SELECT count(*) FROM pg_inherits WHERE inhparent = 'md.prices'::regclass AND inhrelid::regclass::text = 'md.prices_202401'"),
	'0', 'the month of January 2024 is dropped');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'RETA'"), '1', 'this month\'s price stays');
is($node->safe_psql('md',
		"SELECT count(*) FROM pg_inherits WHERE inhparent = 'md.bars'::regclass AND inhrelid::regclass::text = 'md.bars_202401'"),
	'0', 'the bars of January 2024 are dropped');
is($node->safe_psql('md', "SELECT count(DISTINCT \"interval\") FROM md.bars WHERE symbol = 'RETA'"), '3',
	'this month\'s bars stay, at every level');
is($node->safe_psql('md', "SELECT string_agg(first_offset::text, ',') FROM md.kafka_gaps"), '10', 'kafka gaps: the old one goes');
is($node->safe_psql('md',
		"SELECT rows_removed || ' ' || (oldest_kept > now() - interval '1 hour') || ' ' || retention FROM md.retention_status WHERE table_name = 'md.raw_responses'"),
	'30001 true 01:00:00', 'md.retention_status: removed, oldest success kept, the setting');
ok(!$node->log_contains(qr/still waiting for/), 'no session waited 50 ms for a lock');

# the worker does the same on its own, in steps of 2,000 rows
load();
$node->safe_psql('md', "ALTER SYSTEM SET marketdata.retention_interval = '1s'; SELECT pg_reload_conf()");
ok($node->poll_query_until('md', "SELECT count(*) = 0 FROM md.raw_responses WHERE symbol = 'OLD'"),
	'the worker removes old responses');
ok($node->poll_query_until('md', "SELECT rows_removed = 60002 FROM md.retention_status WHERE table_name = 'md.raw_responses'"),
	'and records them');
ok($node->poll_query_until('md',
		"SELECT count(*) = 0 FROM pg_inherits WHERE inhparent = 'md.prices'::regclass AND inhrelid::regclass::text = 'md.prices_202401'"),
	'and drops the old month again');
is($node->safe_psql('md', "SELECT count(*) FROM md.job_runs WHERE status = 'running'"), '2', 'running runs stay');

# a non-admin may not
$node->safe_psql('md', 'CREATE ROLE somebody LOGIN');
my ($rc, $o, $e) = $node->psql('md', 'SELECT md_retention_run()', extra_params => [ '-U', 'somebody' ]);
like($e, qr/permission denied for function md_retention_run/, 'md_retention_run is for admins');

# what an operator alerts on
my $alerts = $node->safe_psql('md', 'SELECT measure, subject, value FROM md.alerts');
my %alerts = map { my ($m, $s, $v) = split /\|/; ("$m $s" => $v) } split /\n/, $alerts;
ok($alerts{'table_bytes md.raw_responses'} >= 8192, 'md.alerts: the size of md.raw_responses')
  or diag($alerts);
ok($alerts{'table_bytes md.prices'} > 0, 'and of md.prices, all its partitions');
is($alerts{'retention_lag_seconds md.raw_responses'} . ' ' . $alerts{'retention_lag_seconds md.job_runs'},
	'0 0', 'no retention lag once the worker ran');
ok($alerts{'oldest_running_job_run_seconds md.job_runs'} > 7000, 'the oldest run under way, two hours old');
ok(exists $alerts{'outbox_backlog_age_seconds md.outbox'}, 'the age of the outbox backlog');

done_testing();
