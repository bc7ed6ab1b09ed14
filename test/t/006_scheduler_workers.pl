# Several scheduler processes (marketdata.scheduler_workers = 2): they
# share the due jobs, never run one job twice at once, draw from one
# request budget per provider and split its concurrency, and a scheduler
# that dies has its own runs failed while the other's runs go on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;
use MarketData::FakeProvider;

my $fake = MarketData::FakeProvider->new(latency_ms => 5);

my $node = PostgreSQL::Test::Cluster->new('scheduler_workers');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.scheduler_workers = 2
marketdata.http_timeout = '8s'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');
$fake->point_providers($node, 'md');
$node->safe_psql('md',
	"UPDATE md.providers SET rate_limit_per_minute = 100000 WHERE name = 'yahoo_finance'");
ok($node->poll_query_until('md',
		"SELECT count(*) = 2 FROM md.worker_status
		 WHERE worker = 'scheduler' AND state = 'idle: no enabled job'"),
	'two schedulers wait for jobs');

# no more running runs (a job deleted mid-run still finishes its run)
sub quiet
{
	$node->safe_psql('md', 'DELETE FROM md.polling_jobs');
	ok($node->poll_query_until('md', "SELECT count(*) = 0 FROM md.job_runs WHERE status = 'running'"),
		'no run under way');
}

# $n jobs j = 1..$n of yahoo_finance every second; $symbols: job j's, in SQL
sub add_jobs
{
	my ($n, $symbols) = @_;
	$node->safe_psql('md', "INSERT INTO md.polling_jobs (symbols, interval, provider)
		SELECT $symbols, 1, 'yahoo_finance' FROM generate_series(1, $n) j");
}

# Runs that take 1.5 s (SLOW*) every second: each job overruns, so a free
# scheduler would take it again while the other still runs it.
add_jobs(6, "ARRAY['SLOWW' || j]");
ok($node->poll_query_until('md',
		"SELECT count(*) >= 18 FROM md.job_runs WHERE status = 'succeeded'"),
	'overrunning jobs keep running');
is($node->safe_psql('md', 'SELECT count(DISTINCT worker_pid) FROM md.job_runs'), '2',
	'both schedulers ran jobs');
is($node->safe_psql('md', q{
	SELECT count(*) FROM md.job_runs a JOIN md.job_runs b
	  ON a.job_id = b.job_id AND a.id < b.id
	 AND b.started_at < coalesce(a.finished_at, 'infinity')
	 AND a.started_at < coalesce(b.finished_at, 'infinity')}), '0',
	'no job ran twice at once');
is($node->safe_psql('md', q{
	SELECT count(*) FROM md.job_runs r JOIN md.polling_jobs j ON j.id = r.job_id
	WHERE r.status = 'succeeded'
	GROUP BY j.id ORDER BY count(*) LIMIT 1}) >= 2, 1,
	'every job ran again and again');
quiet();

# A scheduler killed mid-run (SIGTERM: it exits, the server goes on, the
# launcher starts it again): its run is failed, the other's is not.
$node->safe_psql('md', q{
	INSERT INTO md.polling_jobs (symbols, interval, provider)
	VALUES ('{HANGK1}', 60, 'yahoo_finance'), ('{HANGK2}', 60, 'yahoo_finance')});
ok($node->poll_query_until('md',
		"SELECT count(DISTINCT worker_pid) = 2 FROM md.job_runs WHERE status = 'running'"),
	'each scheduler runs one of the hanging jobs');
my ($victim, $victim_run, $other_run) = split /\|/, $node->safe_psql('md', q{
	SELECT a.worker_pid, a.id, b.id FROM md.job_runs a JOIN md.job_runs b
	  ON b.status = 'running' AND b.worker_pid <> a.worker_pid
	WHERE a.status = 'running' ORDER BY a.id LIMIT 1});
kill 'TERM', $victim;
ok($node->poll_query_until('md',
		"SELECT count(*) = 2 FROM md.worker_status
		 WHERE worker = 'scheduler' AND pid <> $victim AND state NOT LIKE 'starting%'"),
	'the launcher started the killed scheduler again');
ok($node->poll_query_until('md',
		"SELECT status = 'failed' AND message LIKE 'interrupted%' FROM md.job_runs WHERE id = $victim_run"),
	"the killed scheduler's run is marked failed");
is($node->safe_psql('md', "SELECT status FROM md.job_runs WHERE id = $other_run"), 'running',
	"the other scheduler's run, still under way, is left alone");
ok($node->poll_query_until('md',
		"SELECT status <> 'running' AND message NOT LIKE 'interrupted%' FROM md.job_runs WHERE id = $other_run"),
	'and its scheduler finishes it (the provider timed out)');
quiet();

# One request budget per provider for both schedulers: 4 a minute, while
# the jobs ask for 8 a second; a budget per process would let 8 through.
$node->safe_psql('md',
	"UPDATE md.providers SET rate_limit_per_minute = 4 WHERE name = 'yahoo_finance'");
my $before = $fake->requests;
add_jobs(4, "ARRAY['SYNBUDA' || j, 'SYNBUDB' || j]");
ok($node->poll_query_until('md', q{
	SELECT count(DISTINCT worker_pid) = 2 AND count(*) >= 12
	FROM md.job_runs WHERE 'rate_limited' = ANY (error_classes)}),
	'both schedulers run the jobs, and find the budget spent');
my $sent = $fake->requests - $before;
ok($sent >= 4 && $sent <= 5, "requests sent within the shared budget: $sent (4 a minute)");
like($node->safe_psql('md',
		"SELECT message FROM md.job_runs WHERE 'rate_limited' = ANY (error_classes) LIMIT 1"),
	qr/budget of 4 requests a minute is spent/, 'the runs say why');
quiet();

# max_concurrency 1 cannot be split: only the first scheduler takes the
# provider's jobs, and the second does not spin on them.
$node->safe_psql('md',
	"UPDATE md.providers SET rate_limit_per_minute = 100000, max_concurrency = 1 WHERE name = 'yahoo_finance'");
my $first_run = $node->safe_psql('md', 'SELECT coalesce(max(id), 0) FROM md.job_runs');
add_jobs(4, "ARRAY['SYNONE' || j]");
ok($node->poll_query_until('md',
		"SELECT count(*) >= 12 FROM md.job_runs WHERE status = 'succeeded' AND id > $first_run"),
	'jobs of a provider with max_concurrency 1 run');
is($node->safe_psql('md', "SELECT count(DISTINCT worker_pid) FROM md.job_runs WHERE id > $first_run"),
	'1', 'all by one scheduler');
like($node->safe_psql('md', q{
	SELECT string_agg(state, ',') FROM md.worker_status WHERE worker = 'scheduler'}),
	qr/waiting for the next job/, 'the other waits');

# fewer schedulers: the launcher stops the second one
$node->append_conf('postgresql.conf', 'marketdata.scheduler_workers = 1');
$node->reload;
ok($node->poll_query_until('md',
		"SELECT count(*) = 1 FROM md.worker_status WHERE worker = 'scheduler'"),
	'marketdata.scheduler_workers = 1: one scheduler left');

$node->stop('fast');
done_testing();
