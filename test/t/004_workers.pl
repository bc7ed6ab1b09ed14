# Background workers: started per database by the launcher, absent on a
# standby and started on promotion, back after a crash, and quick to stop.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MarketData::Services;

my $broker = start_kafka_broker('price-events');

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
restart_after_crash = on
# 1 launcher + 4 workers per database (docs/configuration.md), + PostgreSQL's own
max_worker_processes = 16
marketdata.databases = 'md, md2'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE md');
$primary->safe_psql('md', 'CREATE EXTENSION marketdata');

ok($primary->poll_query_until('md',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'marketdata relay' AND datname = 'md'"),
	'the relay runs in md, with its own backend type');
ok($primary->poll_query_until('md',
		"SELECT count(*) = 2 FROM md.worker_status WHERE worker IN ('launcher', 'relay')"),
	'md.worker_status lists the launcher and the relay');

# a database without the extension: its worker idles, it does not crash-loop
$primary->safe_psql('postgres', 'CREATE DATABASE md2');
ok($primary->poll_query_until('md',
		"SELECT count(*) >= 3 AND bool_and(state = 'waiting for CREATE EXTENSION') FROM md.worker_status WHERE database = 'md2'"),
	'the workers of a database without the extension wait for CREATE EXTENSION');
$primary->safe_psql('md2', 'CREATE EXTENSION marketdata');
ok($primary->poll_query_until('md',
		"SELECT count(*) >= 3 AND bool_and(state NOT IN ('starting', 'waiting for CREATE EXTENSION')) FROM md.worker_status WHERE database = 'md2'"),
	'and start working once it exists');

# a streaming standby runs no workers
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->safe_psql('md', "SELECT md_ingest_price('REPL', 'finnhub', 1, now())");
$primary->wait_for_catchup($standby);
is($standby->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'REPL'"), '1',
	'the standby has the data');
is($standby->safe_psql('md',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'marketdata%'"),
	'0', 'but runs no marketdata worker');

# promotion starts them
$primary->stop;
$standby->promote;
ok($standby->poll_query_until('md',
		"SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type IN ('marketdata launcher', 'marketdata relay') AND coalesce(datname, 'md') = 'md'"),
	'after promotion the launcher and the relay run');

# kill -9 of a worker: the postmaster restarts everything, the workers return
my $pid = $standby->safe_psql('md',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'marketdata relay' AND datname = 'md'");
kill9_and_wait_restart($standby, $pid);
ok($standby->poll_query_until('md',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'marketdata relay' AND datname = 'md' AND pid <> $pid"),
	'a killed relay is back after the crash restart');

# fast shutdown with Kafka down and events in flight: every worker stops at once
kafka_down($broker);
$standby->safe_psql('md', q{
	SELECT md_ingest_prices(array_fill('STOP'::text, ARRAY[100]), array_fill('finnhub'::text, ARRAY[100]),
		array_fill(1::numeric, ARRAY[100]),
		ARRAY(SELECT '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, 100) g));
});
ok($standby->poll_query_until('md', "SELECT state = 'publishing' FROM md.worker_status WHERE worker = 'relay' AND database = 'md'"),
	'relay has events in flight to a dead broker');
my $t0 = time();
$standby->stop('fast');
my $took = time() - $t0;
ok($took < 2, sprintf('fast shutdown took %.2f s', $took));

done_testing();
