# The worker's own cache of /prices/latest and the rate-limit token
# leases: a price ingested in the database is served within a second (the
# sink's PUBLISH drops the workers' cached answers); the worker cache is
# flushed and bypassed while Redis is down, and a Redis that stops
# answering counts as down (MD_API_REDIS_TIMEOUT_MS); leased tokens never
# pass more than the limit across two workers, RateLimit-Remaining counts
# them, and two keys sharing a lease slot are both charged exactly.
use strict;
use warnings;
use Digest::SHA qw(sha1 sha256_hex);
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for wait_until);

my $redis = MarketData::Redis->new;
my $node = MarketData::API::node_with_extension('main');
# the sink writes through to the same Redis as the API reads
$node->safe_psql('postgres', "ALTER SYSTEM SET marketdata.redis_url = '" . $redis->url . "'");
$node->reload;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
$node->safe_psql('md', q{SELECT md_ingest_price(s, 'yahoo_finance', 100, now())
	FROM unnest(ARRAY['INVL', 'DOWN', 'HANG', 'LEAS']) s});

my $api;
sub latest
{
	my ($symbol, $provider) = @_;
	return $api->get("/prices/latest?symbol=$symbol" . ($provider ? "&provider=$provider" : ''), key => $key);
}
sub level { return latest(@_)->{headers}{'x-cache-level'} // 'none'; }

# --- a new price reaches the API at once; the cache sits in front of Redis ---------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 600,
		MD_API_LOCAL_CACHE_MS => 60000 });
is(latest('INVL')->{headers}{'x-cache'}, 'MISS', 'first answer from the database');
ok(wait_for('a worker cache hit', sub { level('INVL') eq 'local' }),
	'then from the worker cache: X-Cache: HIT, X-Cache-Level: local');
my $r = latest('INVL');
is($r->{headers}{'x-cache'}, 'HIT', 'a worker cache hit says X-Cache: HIT');
my $cached = $r->{content};

# Redis changed behind the API's back (no PUBLISH): the worker keeps its
# answer; a PUBLISH of the symbol drops it
$redis->command('SET', 'md:price:_:INVL', '{"symbol" : "INVL", "price" : 1}');
is(latest('INVL')->{content}, $cached, 'without a PUBLISH the worker keeps its answer');
my $inval = $api->metric('md_api_cache_invalidations_total');
$redis->command('PUBLISH', 'md:prices:INVL', 'x');
ok(wait_for('the PUBLISH heard', sub { ($r = latest('INVL'))->{content} =~ /"price" : 1\}/ }),
	'a PUBLISH of the symbol drops the worker\'s answer: the next comes from Redis');
is($r->{headers}{'x-cache-level'}, 'redis', 'X-Cache-Level: redis');
ok($api->metric('md_api_cache_invalidations_total') > $inval, 'invalidations counted');

# a price ingested with SQL: both the any-provider and the provider answer
# move within a second
is(level('INVL', 'yahoo_finance'), 'redis', 'the provider\'s answer from Redis (the sink\'s key)');
is(level('INVL', 'yahoo_finance'), 'local', 'then from the worker cache');
is(level('INVL'), 'local', 'the any-provider answer from the worker cache');
$node->safe_psql('md', "SELECT md_ingest_price('INVL', 'yahoo_finance', 101.5, now())");
my $t0 = time;
my $seen = wait_until(sub {
	(latest('INVL')->{json}{price} // 0) == 101.5 && (latest('INVL', 'yahoo_finance')->{json}{price} // 0) == 101.5
}, 1);
ok($seen, sprintf('a price ingested in the database is served within 1 s (%.3f s)', time - $t0));
is($redis->command('EXISTS', 'md:price:_:INVL'), ':1', 'the any-provider answer is cached again (from the database)');
$api->stop;

# --- the maximum age bounds what a missed PUBLISH can cost -------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 600,
		MD_API_LOCAL_CACHE_MS => 300 });
ok(wait_for('a worker cache hit', sub { level('INVL') eq 'local' }), 'max age 300 ms: cached');
$redis->command('SET', 'md:price:_:INVL', '{"symbol" : "INVL", "price" : 2}');
$t0 = time;
ok(wait_for('the maximum age', sub { latest('INVL')->{content} =~ /"price" : 2\}/ }, 3),
	sprintf('without a PUBLISH, the answer is renewed after the maximum age (%.3f s)', time - $t0));
$api->stop;

# --- Redis down: the worker cache is flushed and not used --------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 600,
		MD_API_LOCAL_CACHE_MS => 60000 });
ok(wait_for('a worker cache hit', sub { level('DOWN') eq 'local' }), 'Redis up: a worker cache hit');
$redis->stop('KILL');
my $local_hits = $api->metric('md_api_cache_local_hits_total');
$r = latest('DOWN');
is_deeply([ $r->{status}, $r->{headers}{'x-cache'} ], [ 200, 'MISS' ],
	'Redis killed: the database answers, not the worker cache');
is($api->metric('md_api_cache_local_hits_total'), $local_hits, 'Redis killed: no worker cache hit');
$redis->start;
ok(wait_for('resubscribed', sub { level('DOWN') eq 'local' }), 'Redis back: the worker cache is used again');
$api->stop;

# --- Redis stops answering: a timeout counts as Redis down -------------------------
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 1000, MD_API_RATE_LIMIT_READER => 0, MD_API_CACHE_TTL => 600,
		MD_API_LOCAL_CACHE_MS => 60000, MD_API_REDIS_TIMEOUT_MS => 300 });
ok(wait_for('a worker cache hit', sub { level('DOWN') eq 'local' }), 'before: a worker cache hit');
kill 'STOP', $redis->{pid};
$t0 = time;
$r = latest('HANG');
my $took = time - $t0;
is_deeply([ $r->{status}, $r->{headers}{'x-cache'} ], [ 200, 'MISS' ],
	'Redis not answering: the database answers');
ok($took < 5, sprintf('... after the Redis timeout, not stuck (%.3f s)', $took));
ok(!defined $r->{headers}{'ratelimit-limit'}, 'the rate limit failed open');
ok($api->metric('md_api_redis_timeouts_total') >= 1, 'the timeout is counted');
ok($api->metric('md_api_rate_limit_fail_open_total') >= 1, 'the fail-open is counted');
is(latest('DOWN')->{headers}{'x-cache'}, 'MISS', 'the worker cache was flushed with the connection');
kill 'CONT', $redis->{pid};
ok(wait_for('ready ok', sub { ($api->get('/health/ready')->{json}{status} // '') eq 'ok' }),
	'Redis answering again: ready ok');
$api->stop;

# --- leases: RateLimit-Remaining counts leased tokens --------------------------------
# limit 5000: a lease of min(MD_API_RATE_LEASE, 5000 / 1000) = 5 tokens
$redis->command('FLUSHALL');
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 5000, MD_API_RATE_WINDOW => 3600,
		MD_API_RATE_LEASE => 10, MD_API_CACHE_TTL => 600 });
my $leased = $api->metric('md_api_rate_limit_leased_total');
my @rem = map { latest('LEAS')->{headers}{'ratelimit-remaining'} } 1 .. 6;
is_deeply(\@rem, [ 4999, 4998, 4997, 4996, 4995, 4994 ], 'RateLimit-Remaining counts down through a lease');
ok($api->metric('md_api_rate_limit_leased_total') - $leased >= 4, 'at least four of the five requests after the first passed on leased tokens');
$api->stop;

# --- two keys sharing a lease slot: the second is counted exactly, the first keeps its lease ---
# the worker's lease table has 1024 slots chosen by SHA-1 (api_slot): two
# client addresses whose keys md:rl:ip:{address} share one
my %slot;
my ($ip_a, $ip_b);
for my $i (2 .. 254)
{
	my $s = unpack('V', substr(sha1("md:rl:ip:127.0.0.$i"), 0, 4)) % 1024;
	if (defined $slot{$s}) { ($ip_a, $ip_b) = ("127.0.0.$slot{$s}", "127.0.0.$i"); last; }
	$slot{$s} = $i;
}
$api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 5000, MD_API_RATE_LIMIT_READER => 0, MD_API_RATE_WINDOW => 3600,
		MD_API_RATE_LEASE => 10, MD_API_CACHE_TTL => 600 });
my %last;
for (1 .. 5)
{
	for my $ip ($ip_a, $ip_b)
	{
		my $r = HTTP::Tiny->new(local_address => $ip, keep_alive => 0)
		  ->get($api->url . '/prices/latest?symbol=LEAS', { headers => { 'X-API-Key' => $key } });
		$last{$ip} = $r->{headers}{'ratelimit-remaining'};
	}
}
is_deeply([ $last{$ip_a}, $last{$ip_b} ], [ 4995, 4995 ],
	"colliding lease slots ($ip_a, $ip_b): each address charged exactly its 5 requests");
$api->stop;

# --- leases never pass more than the limit, across two workers -------------------------
# the caller's key is left 3 tokens (GCRA: its theoretical arrival time set
# to now + window - 3 intervals); workers lease up to 5 at a time
my $ident = 'md:rl:id:key:' . substr(sha256_hex($key), 0, 16);
$api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 5000, MD_API_RATE_WINDOW => 3600,
		MD_API_RATE_LEASE => 10, MD_API_CACHE_TTL => 600 });
my $interval = 3600 * 1000 / 5000;
my ($sec, $usec) = split /\n/, `redis-cli -p ${\ $redis->port} TIME`;
my $now_ms = $sec * 1000 + int($usec / 1000);
$redis->command('SET', $ident, $now_ms + 3600 * 1000 - 3 * $interval, 'PX', 3600 * 1000);
$t0 = time;
my %count;
for (1 .. 10)
{
	# a new connection per request: the two workers share the load
	$count{ latest('LEAS')->{status} }++;
}
my $refilled = int((time - $t0) * 1000 / $interval) + 1;
ok(($count{200} // 0) >= 1 && ($count{200} // 0) <= 3 + $refilled,
	"leases pass at most the tokens left (3, +$refilled refilled while testing): " . ($count{200} // 0));
ok(($count{429} // 0) >= 10 - 3 - $refilled, 'the rest is refused with 429');
$api->stop;

done_testing();
