# Unauthenticated load on the database is bounded (issue 16, finding 5):
# 10,000 made-up API keys cost at most the per-IP limit's look-ups; a key
# the database said does not exist is remembered apart from good keys, so
# a flood of them neither repeats look-ups nor evicts a good key; the
# public /health/ready asks the database once per MD_API_READY_CACHE_MS.
# Database calls are counted by PostgreSQL (pg_stat_user_functions).
use strict;
use warnings;
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for);

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'sandbox', 187.42, now())");

my $calls = sub {
	my ($f) = @_;
	$node->safe_psql('md', "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = '$f'");
};
# statistics reach pg_stat_user_functions when a backend exits
my $stop_api = sub {
	my ($api) = @_;
	$api->stop;
	wait_for('API backends gone', sub { $node->safe_psql('md',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") eq '0' });
};
my $n = 0;
sub made_up_key { return sprintf('mdk_%048x', ++$n + 0xbad00000); }

# flood(api, count, key_sub, address): statuses of count requests
sub flood
{
	my ($api, $count, $key_of, $address) = @_;
	my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 10,
		$address ? (local_address => $address) : ());
	my %status;
	for my $i (1 .. $count)
	{
		my $r = $http->get($api->url . '/prices/latest?symbol=AAPL&provider=sandbox',
			{ headers => { 'X-API-Key' => $key_of->($i) } });
		$status{ $r->{status} }++;
	}
	return \%status;
}

# --- 10,000 made-up keys from one IP: at most the IP's limit of look-ups ---
my $before = $calls->('_api_key_role');
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 100, MD_API_RATE_WINDOW => 3600, MD_API_RATE_LIMIT_READER => 0 });
is($api->get('/prices/latest?symbol=AAPL&provider=sandbox', key => $key)->{status}, 200, 'the good key works');
my $t0 = time();
my $s = flood($api, 10_000, sub { made_up_key() });
note(sprintf('10,000 made-up keys in %.1f s', time() - $t0));
is(($s->{401} // 0) + ($s->{429} // 0), 10_000, 'every made-up key is refused');
ok(($s->{401} // 0) <= 99, "at most the IP's limit get a 401 ($s->{401})");
my $other = HTTP::Tiny->new(local_address => '127.0.0.2', keep_alive => 0);
is($other->get($api->url . '/prices/latest?symbol=AAPL&provider=sandbox', { headers => { 'X-API-Key' => $key } })->{status},
	200, 'the good key still works from another IP');
$stop_api->($api);
my $lookups = $calls->('_api_key_role') - $before;
ok($lookups >= 2 && $lookups <= 101, "10,000 made-up keys: $lookups database look-ups (at most the IP limit + 1)");

# --- no IP limit: a known-bad key is looked up once, good keys stay cached -
$before = $calls->('_api_key_role');
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_KEY_CACHE_TTL => 3600 });
is($api->get('/prices/latest?symbol=AAPL&provider=sandbox', key => $key)->{status}, 200, 'no IP limit: the good key works');
my $bad = made_up_key();
$s = flood($api, 10_000, sub { $bad });
is($s->{401}, 10_000, 'one made-up key 10,000 times: 401 each time');
# 5,000 different made-up keys: with one cache for both kinds, one of them
# would take the good key's slot (1,024 slots) with a chance over 99%
$s = flood($api, 5_000, sub { made_up_key() });
is($s->{401}, 5_000, '5,000 other made-up keys: 401 each');
is($api->get('/prices/latest?symbol=AAPL&provider=sandbox', key => $key)->{status}, 200, 'the good key after the flood');
$stop_api->($api);
$lookups = $calls->('_api_key_role') - $before;
is($lookups, 1 + 1 + 5_000,
	'look-ups: the good key once, the repeated bad key once, each other bad key once; the good key was not evicted');

# --- /health/ready: one database call per worker per MD_API_READY_CACHE_MS -
$before = $calls->('_api_ready');
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_READY_CACHE_MS => 2000 });
my $http = HTTP::Tiny->new(keep_alive => 1);
my $first = $http->get($api->url . '/health/ready');
is($first->{headers}{'x-cache'}, 'MISS', 'ready: the first answer asks the database');
$t0 = time();
my %ready;
for (1 .. 2000)
{
	my $r = $http->get($api->url . '/health/ready');
	$ready{"$r->{status} " . ($r->{headers}{'x-cache'} // '')}++;
}
my $elapsed = time() - $t0;
is(($ready{'200 HIT'} // 0) + ($ready{'200 MISS'} // 0), 2000, 'ready: 2,000 probes answered 200');
like($http->get($api->url . '/health/ready')->{content}, qr/"status":"ok"/, 'ready: the kept answer is the whole answer');
$stop_api->($api);
my $ready_calls = $calls->('_api_ready') - $before;
ok($ready_calls <= 1 + int($elapsed / 2) + 1,
	sprintf('ready: 2,000 probes in %.1f s cost %d database call(s)', $elapsed, $ready_calls));

# MD_API_READY_CACHE_MS=0: every probe asks, so a change shows at once
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_READY_CACHE_MS => 0 });
is($api->get('/health/ready')->{headers}{'x-cache'}, 'MISS', 'ready cache off: a miss');
is($api->get('/health/ready')->{headers}{'x-cache'}, 'MISS', 'ready cache off: a miss again');
$api->stop;

# --- readiness reads md.raw_responses through its indexes ------------------
$node->safe_psql('md', q{INSERT INTO md.raw_responses (provider, symbol, http_status, body, received_at)
	SELECT 'yahoo_finance', 'S' || (g % 100), 200, '{}', now() - g * interval '1 ms'
	FROM generate_series(1, 200000) g;
	ANALYZE md.raw_responses});
my $plan = $node->safe_psql('md', 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM md.provider_status');
unlike($plan, qr/Rows Removed by Filter: \d{4,}/, 'md.provider_status: no scan past thousands of rows');
like($plan, qr/raw_responses_ok_idx/, 'md.provider_status: newest success by its index');
like($plan, qr/raw_responses_errors_idx/, 'md.provider_status: newest error by its index');

done_testing();
