# /metrics carries the database's alerts (md.alerts through
# md._api_alerts(), which the API's role may call though it reads no
# table): table sizes, retention lag, outbox backlog age, consumer lag,
# the oldest running job run. Asked at most every 5 s per worker.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MarketData::API;
use MarketData::Redis;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $admin = $node->safe_psql('md', "SELECT md_create_api_key('ops', 'admin')");
my $reader = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'sandbox', 187.42, now())");
# a run that has been running for an hour
my $job = $node->safe_psql('md', q{INSERT INTO md.polling_jobs (symbols, interval, provider, enabled)
	VALUES ('{AAPL}', 60, 'sandbox', false) RETURNING id});
$node->safe_psql('md', qq{INSERT INTO md.job_runs (job_id, started_at, worker_pid) VALUES ($job, now() - interval '1 hour', 1)});
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1);

sub alerts
{
	my $r = $api->get('/metrics', key => $admin);
	my %a;
	for (split /\n/, $r->{content} // '')
	{
		$a{"$1 $2"} = $3 if /^md_alert\{measure="([^"]+)",subject="([^"]+)"\} (\S+)$/;
		$a{up} = $1 if /^md_alerts_up (\d)$/;
	}
	return ($r, \%a);
}
my $calls = sub {
	$node->safe_psql('md', "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = '_api_alerts'");
};

my ($r, $a) = alerts();
is($r->{status}, 200, '/metrics for an admin');
is($a->{up}, 1, 'md_alerts_up 1: the database answered');
ok(($a->{'table_bytes md.prices'} // 0) > 0, 'the size of md.prices');
ok(exists $a->{'table_bytes md.raw_responses'} && exists $a->{'table_bytes md.bars'}
	  && exists $a->{'table_bytes md.kafka_gaps'}, 'the sizes of the other growing tables');
ok(($a->{'oldest_running_job_run_seconds md.job_runs'} // 0) >= 3500, 'the run running for an hour');
ok(exists $a->{'outbox_backlog_age_seconds md.outbox'}, 'the outbox backlog age');
# the measures are the view's
my $view = $node->safe_psql('md', q{SELECT count(*) FROM md.alerts});
is(scalar(grep { $_ ne 'up' } keys %$a), $view, 'every row of md.alerts, once');

# scrapes in a burst: one database call per 5 s, not one per scrape
my $before = $calls->();
my $t0 = time();
alerts() for 1 .. 20;
my $n = $calls->() - $before;
ok($n <= (time() - $t0) / 5 + 1, "20 scrapes in a row: $n database call(s)");

# the API's role reads no table: only through the function
my ($ok) = $node->psql('md', 'SELECT count(*) FROM md.alerts', extra_params => [ '-U', 'md_api' ]);
isnt($ok, 0, 'the API role cannot read md.alerts itself');
is($node->safe_psql('md', q{SET ROLE md_api; SELECT md._api_alerts() <> '[]'}), 't',
	'but md._api_alerts() answers it');

# the database gone: md_alerts_up 0 after the cached answer ages
$node->stop('fast');
usleep(5_200_000);
($r, $a) = alerts();
is($r->{status}, 200, '/metrics answers with the database down (the key is cached)')
  or diag($r->{content});
is($a->{up}, 0, 'md_alerts_up 0');
is(scalar(grep { $_ ne 'up' } keys %$a), 0, 'and no stale alert values');
$api->stop;
done_testing();
