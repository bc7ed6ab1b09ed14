# Redis in the API: the rate limit holds across two Kore workers, per IP
# (another IP unaffected, X-Forwarded-For believed only from a trusted
# proxy); the cache (hit, miss, TTL 0); single flight (100 concurrent
# misses, one database call, counted by PostgreSQL); Redis killed.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for);

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
my $key2 = $node->safe_psql('md', "SELECT md_create_api_key('r2', 'reader')");
$node->safe_psql('md', q{SELECT md_ingest_price(s, 'yahoo_finance', 100 + i, now())
	FROM unnest(ARRAY['AAPL', 'MSFT', 'IBM', 'ORCL', 'SAP']) WITH ORDINALITY AS t(s, i)});


# --- rate limit: per IP 5 per window, two workers ------------------------------
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_RATE_LIMIT_IP => 5, MD_API_RATE_LIMIT_READER => 0, MD_API_RATE_WINDOW => 3600,
		MD_API_TRUSTED_PROXIES => '127.0.0.3' });
my %count;
my $last;
for (1 .. 12)
{
	# a new connection per request: the two workers share the load
	my $r = $api->get('/prices/latest?symbol=AAPL', key => $key);
	$count{ $r->{status} }++;
	$last = $r if $r->{status} == 429;
}
is($count{200}, 5, 'rate limit: exactly the limit passes, across both workers');
is($count{429}, 7, 'rate limit: the rest gets 429');
is_deeply([ $last->{headers}{'ratelimit-limit'}, $last->{headers}{'ratelimit-remaining'} ], [ 5, 0 ],
	'rate limit: RateLimit-Limit and -Remaining');
ok($last->{headers}{'retry-after'} >= 1, 'rate limit: Retry-After');
# each worker reports its own memory use in the shared metrics
ok(wait_for('two workers in metrics', sub {
	my @w = ($api->get('/metrics')->{content} =~ /^process_resident_memory_bytes\{worker="(\d+)"\}/mg);
	return @w == 2; }), 'two Kore workers run');

my $other = HTTP::Tiny->new(local_address => '127.0.0.2', keep_alive => 0);
my $r = $other->get($api->url . '/prices/latest?symbol=AAPL', { headers => { 'X-API-Key' => $key } });
is($r->{status}, 200, 'rate limit: another IP is unaffected');
$r = $api->get('/prices/latest?symbol=AAPL', key => $key, headers => { 'X-Forwarded-For' => '10.9.9.9' });
is($r->{status}, 429, 'rate limit: X-Forwarded-For from an untrusted peer is ignored');
my $proxy = HTTP::Tiny->new(local_address => '127.0.0.3', keep_alive => 0);
$r = $proxy->get($api->url . '/prices/latest?symbol=AAPL',
	{ headers => { 'X-API-Key' => $key, 'X-Forwarded-For' => '10.9.9.9, 127.0.0.3' } });
is($r->{status}, 200, 'rate limit: a trusted proxy\'s X-Forwarded-For names the client');
ok(defined $redis->command('GET', 'md:rl:ip:10.9.9.9'), 'rate limit: counted for the forwarded address');
like($api->get('/metrics')->{content}, qr/^md_api_rate_limited_total (\d+)$/m, 'rate limit: counted in metrics');
$api->stop;

# --- per key: the key runs out, another key is unaffected ------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 3, MD_API_RATE_WINDOW => 3600,
		MD_API_CACHE_TTL => 30 });
my @st = map { $api->get('/prices/latest?symbol=MSFT', key => $key)->{status} } 1 .. 5;
is_deeply(\@st, [ 200, 200, 200, 429, 429 ], 'rate limit per key: 3 then 429');
is($api->get('/prices/latest?symbol=MSFT', key => $key2)->{status}, 200, 'rate limit per key: another key unaffected');

# --- cache: miss, then hit; TTL ------------------------------------------------------
$redis->command('FLUSHALL');
$api->stop;
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 30 });
$r = $api->get('/prices/latest?symbol=IBM', key => $key);
is($r->{headers}{'x-cache'}, 'MISS', 'cache: miss first');
# the API answers before its SET reaches Redis: wait for it
ok(wait_for('the cache write', sub {
	($redis->command('TTL', 'md:price:_:IBM') // '') =~ /:(\d+)/ && $1 > 0 && $1 <= 30 }),
	'cache: stored with the TTL');
my $hit = $api->get('/prices/latest?symbol=IBM', key => $key);
is_deeply([ $hit->{headers}{'x-cache'}, $hit->{content} ], [ 'HIT', $r->{content} ], 'cache: hit, same body');
$api->get('/prices/latest?symbol=IBM&provider=yahoo_finance', key => $key);
ok(wait_for('the cache write', sub { defined $redis->command('GET', 'md:price:yahoo_finance:IBM') }),
	'cache: a named provider has its own key');

# --- single flight: 100 concurrent misses, one database call ------------------------------
# md_quote's read of md.latest_prices waits for a lock held here, so all
# 100 requests are in flight at once
my $calls = sub {
	$node->safe_psql('md', "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = 'md_quote'");
};
# statistics are flushed when a backend exits: restart the API and wait
# for its old connections to be gone before counting
my $api_backends_gone = sub {
	wait_for('API backends gone', sub { $node->safe_psql('md',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()") eq '0' });
};
$api->stop;
$api_backends_gone->();
my $before = $calls->();
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 30 });
$api->get('/prices/latest?symbol=NONE', key => $key);	# the key is now cached (an error: not counted)
my ($in, $out, $err) = ('', '', '');
my $locker = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('md') ], \$in, \$out, \$err);
$in = "BEGIN; LOCK TABLE md.latest_prices IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
IPC::Run::pump($locker) until $out =~ /locked/;
my $joins_before = $api->metric('md_api_flight_joins_total');
my @socks;
for (1 .. 100)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $api->port, Proto => 'tcp')
	  or die "connect: $!";
	print $s "GET /prices/latest?symbol=ORCL HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nConnection: close\r\n\r\n";
	push @socks, $s;
}
ok(wait_for('99 joins', sub { $api->metric('md_api_flight_joins_total') - $joins_before == 99 }),
	'single flight: 99 requests joined the first one\'s flight');
$in .= "COMMIT;\n";
IPC::Run::finish($locker);
my %bodies;
my $ok = 0;
for my $s (@socks)
{
	local $/;
	my $resp = <$s>;
	$ok++ if $resp =~ m{^HTTP/1.1 200};
	$bodies{ (split /\r\n\r\n/, $resp, 2)[1] // '' }++;
}
is($ok, 100, 'single flight: all 100 answered 200');
is(scalar keys %bodies, 1, 'single flight: all with the same body');
$api->stop;
$api_backends_gone->();
is($calls->() - $before, 1, 'single flight: exactly one database call (pg_stat_user_functions)');

# --- TTL 0: no caching, every request from the database ------------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 0 });
$redis->command('FLUSHALL');
@st = map { $api->get('/prices/latest?symbol=SAP', key => $key)->{headers}{'x-cache'} } 1 .. 3;
is_deeply(\@st, [ 'MISS', 'MISS', 'MISS' ], 'TTL 0: never cached');
ok(!defined $redis->command('GET', 'md:price:_:SAP'), 'TTL 0: nothing stored in Redis');
$api->stop;

# --- Redis killed: answers from the database, readiness degraded, limit fails open ------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 100, MD_API_CACHE_TTL => 30 });
is($api->get('/prices/latest?symbol=AAPL', key => $key)->{status}, 200, 'Redis up: 200');
$redis->stop('KILL');
$r = $api->get('/prices/latest?symbol=AAPL', key => $key);
is_deeply([ $r->{status}, $r->{headers}{'x-cache'}, $r->{json}{symbol} ], [ 200, 'MISS', 'AAPL' ],
	'Redis killed: the database answers');
ok(!defined $r->{headers}{'ratelimit-limit'}, 'Redis killed: the rate limit failed open');
$r = $api->get('/health/ready');
is_deeply([ $r->{status}, $r->{json}{status}, $r->{json}{redis}{status} ], [ 200, 'degraded', 'down' ],
	'Redis killed: ready says degraded');
like($api->get('/metrics')->{content}, qr/^md_api_rate_limit_fail_open_total [1-9]/m,
	'Redis killed: fail-open counted');
$api->get('/prices/latest?symbol=AAPL', key => $key) for 1 .. 20;
$redis->start;
ok(wait_for('ready ok', sub { ($api->get('/health/ready')->{json}{status} // '') eq 'ok' }),
	'Redis back: the worker reconnects, ready ok');
$api->stop;
# (Kore's log is complete once it exited)
my @lines = grep { /rate limiter unavailable \(Redis\)/ } split /\n/, slurp_file($api->log_file);
is(scalar @lines, 1, 'Redis killed: said in the log once for 20 requests, not once each');

# --- Redis down with MD_API_RATE_LIMIT_FAIL=closed: 503 ----------------------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 100, MD_API_RATE_LIMIT_FAIL => 'closed' });
$redis->stop('KILL');
MarketData::API::error_ok($api->get('/prices/latest?symbol=AAPL', key => $key), 503,
	'rate_limiter_unavailable', 'fail closed: 503 while Redis is down');
$api->stop;
done_testing();
