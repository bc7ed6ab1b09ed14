# Rows a worker cannot use never make it exit: a subscription librdkafka
# refuses (an empty consumer group) is marked in md.kafka_status while the
# others go on, and jobs due at a time that is not finite are never due,
# while the other jobs run. The table's constraints (and its trigger)
# refuse such rows; they are set aside here to put the rows there anyway
# (as a database from before the constraints may hold).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;
use MarketData::TestDb;
use MarketData::FakeProvider;

my $fake = MarketData::FakeProvider->new(latency_ms => 5);
my $broker = start_kafka_broker('price-events', 'fx-events', 'relay-events');

my $node = MarketData::TestDb->node('bad_rows', conf => qq{
restart_after_crash = on
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.kafka_topic = 'relay-events'
});
$fake->point_providers($node, 'md');
ok($node->poll_query_until('md',
		"SELECT state = 'caught up' FROM md.worker_status WHERE worker = 'consumer'"),
	'the consumer consumes the default subscription');
my $started = $node->safe_psql('md', 'SELECT pg_postmaster_start_time()');
my $pids = sub {
	return $node->safe_psql('md',
		"SELECT string_agg(worker || ':' || pid, ',' ORDER BY worker) FROM md.worker_status WHERE worker <> 'launcher'");
};
my $before = $pids->();

# --- a subscription librdkafka cannot use ---------------------------------
$node->safe_psql('md', q{
	ALTER TABLE md.kafka_subscriptions DROP CONSTRAINT IF EXISTS kafka_subscriptions_group_id_check;
	INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('fx-events', '')});
ok($node->poll_query_until('md',
		"SELECT error LIKE '%group%' FROM md.kafka_status WHERE topic = 'fx-events' AND group_id = ''"),
	'the unusable subscription has its error in md.kafka_status')
  or diag($node->safe_psql('md', 'SELECT * FROM md.kafka_status'));
is($node->safe_psql('md', "SELECT count(*) FROM md.kafka_status WHERE topic = 'price-events' AND error IS NOT NULL"),
	'0', 'the usable subscription has none');

my $event = '{"symbol":"GOOD","price":12.5,"timestamp":"2024-06-03T14:00:00Z","source":"finnhub"}';
my ($out, $err);
IPC::Run::run([ 'kcat', '-P', '-b', $broker->{bootstrap}, '-t', 'price-events' ],
	'<', \"$event\n", '>', \$out, '2>', \$err) or die "kcat failed: $err";
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.prices WHERE symbol = 'GOOD'"),
	'the other subscription goes on consuming');

# --- jobs due at -infinity and infinity -----------------------------------
$node->safe_psql('md', q{
	ALTER TABLE md.polling_jobs DROP CONSTRAINT IF EXISTS polling_jobs_next_run_at_check;
	ALTER TABLE md.polling_jobs DISABLE TRIGGER polling_jobs_check;
	INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at)
	VALUES ('{SYNNEG}', 60, 'yahoo_finance', '-infinity'), ('{SYNPOS}', 60, 'yahoo_finance', 'infinity');
	ALTER TABLE md.polling_jobs ENABLE TRIGGER polling_jobs_check});
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SYNFINE}', 1, 'yahoo_finance')");
ok($node->poll_query_until('md',
		"SELECT count(*) >= 3 FROM md.job_runs r JOIN md.polling_jobs j ON j.id = r.job_id"
		  . " WHERE j.symbols = '{SYNFINE}' AND r.status = 'succeeded'"),
	'the good job runs every second beside them');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol IN ('SYNNEG', 'SYNPOS')"),
	'0', 'the jobs with no finite time never ran');

# --- nothing died -------------------------------------------------------------
is($pids->(), $before, 'every worker is the same process as before');
is($node->safe_psql('md', 'SELECT pg_postmaster_start_time()'), $started,
	'no crash restart of the server');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'GOOD'"), '1',
	'what was stored is still there');

$node->stop;
done_testing();
