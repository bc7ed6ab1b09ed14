# The scheduler: an INSERT starts polling at once, UPDATE and DELETE apply,
# runs are recorded, a crash mid-run loses nothing and doubles nothing, and
# a hanging provider does not hold up a fast shutdown.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MarketData::Services;
use MarketData::FakeProvider;

my $fake = MarketData::FakeProvider->new(latency_ms => 5);
my $broker = start_kafka_broker('price-events');
my $redis = start_redis();

my $node = PostgreSQL::Test::Cluster->new('scheduler');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
restart_after_crash = on
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.redis_url = 'redis://127.0.0.1:$redis->{port}'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');
$fake->point_providers($node, 'md');
ok($node->poll_query_until('md',
		"SELECT state = 'idle: no enabled job' FROM md.worker_status WHERE worker = 'scheduler'"),
	'the scheduler waits for jobs');

# an INSERT is polled at once: prices, latest, averages, Redis, outbox
my $t0 = time();
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SYNA, SYNB}', 1, 'yahoo_finance')");
ok($node->poll_query_until('md', "SELECT count(DISTINCT symbol) = 2 FROM md.latest_prices"),
	'the new job was polled');
my $took = time() - $t0;
ok($took < 2, sprintf('prices visible %.2f s after the INSERT', $took));
is($node->safe_psql('md', "SELECT count(*) FROM md.symbol_averages WHERE symbol IN ('SYNA', 'SYNB')"),
	'2', 'averages kept');
ok(wait_until(sub { redis_cli($redis, 'EXISTS', 'md:price:yahoo_finance:SYNA') eq '1' }, 2),
	'written through to Redis');
ok($node->poll_query_until('md', "SELECT count(*) > 0 FROM md.outbox WHERE symbol = 'SYNA'"),
	'price events in the outbox');
ok($node->poll_query_until('md',
		"SELECT count(*) >= 3 FROM md.job_runs WHERE status = 'succeeded' AND symbols_ok = 2"),
	'it runs every second, recorded as succeeded runs');
# no drift: next_run_at stays on the grid of the first due time
my $grid = $node->safe_psql('md', q{
	SELECT extract(epoch FROM next_run_at - created_at)::numeric % interval = 0
	    OR extract(epoch FROM next_run_at - created_at)::numeric % interval < 0.000002
	FROM md.polling_jobs});
is($grid, 't', 'next_run_at moves by whole intervals from the first due time');

# UPDATE: new symbols and interval take effect
$node->safe_psql('md', "UPDATE md.polling_jobs SET symbols = '{SYNC}', interval = 2");
ok($node->poll_query_until('md', "SELECT count(*) > 0 FROM md.latest_prices WHERE symbol = 'SYNC'"),
	'an UPDATE of symbols applies');

# failures are recorded with their class; a mixed run is partial
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SYND, NOSUCHSYM}', 1, 'yahoo_finance')");
ok($node->poll_query_until('md',
		"SELECT status = 'partial' AND error_classes = '{unknown_symbol}' AND symbols_ok = 1 AND symbols_failed = 1
		 FROM md.job_runs r JOIN md.polling_jobs j ON j.id = r.job_id
		 WHERE 'NOSUCHSYM' = ANY (j.symbols) AND r.status <> 'running' ORDER BY r.id DESC LIMIT 1"),
	'a run with an unknown symbol is partial, with its error class');
like($node->safe_psql('md', "SELECT last_error FROM md.polling_jobs WHERE 'NOSUCHSYM' = ANY (symbols)"),
	qr/NOSUCHSYM/, 'the job shows its last error');

# DELETE stops a job; a disabled job does not run
$node->safe_psql('md', "DELETE FROM md.polling_jobs");
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider, enabled) VALUES ('{SYNOFF}', 1, 'yahoo_finance', false)");
my $runs = $node->safe_psql('md', 'SELECT count(*) FROM md.job_runs');
sleep(2);
is($node->safe_psql('md', 'SELECT count(*) FROM md.job_runs'), $runs, 'deleted and disabled jobs do not run');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'SYNOFF'"), '0',
	'nothing polled for the disabled job');
$node->safe_psql('md', "DELETE FROM md.polling_jobs");

# kill -9 of the scheduler in the middle of a run (SLOW answers after 1.5 s)
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SLOWA, SYNE}', 1, 'yahoo_finance')");
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.job_runs WHERE status = 'running'"),
	'a run is in progress');
my $pid = $node->safe_psql('md', "SELECT pid FROM md.worker_status WHERE worker = 'scheduler'");
kill9_and_wait_restart($node, $pid);
ok($node->poll_query_until('md',
		"SELECT count(*) > 0 FROM md.job_runs WHERE message LIKE 'interrupted%' AND status = 'failed'"),
	'after the crash restart the interrupted run is marked failed');
ok($node->poll_query_until('md',
		"SELECT count(*) > 0 FROM md.job_runs r WHERE status = 'succeeded' AND symbols_ok = 2"),
	'and the job goes on');
is($node->safe_psql('md',
		'SELECT count(*) = count(DISTINCT (symbol, provider, ts)) FROM md.prices'), 't',
	'no duplicate prices');

# fast shutdown while a provider hangs
$node->safe_psql('md', "DELETE FROM md.polling_jobs");
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{HANG1, HANG2}', 1, 'yahoo_finance')");
ok($node->poll_query_until('md',
		"SELECT state = 'fetching' FROM md.worker_status WHERE worker = 'scheduler'"),
	'the scheduler waits on a hanging provider');
$t0 = time();
$node->stop('fast');
$took = time() - $t0;
ok($took < 2, sprintf('fast shutdown took %.2f s', $took));

done_testing();
