# The client's address behind a trusted proxy (here the test itself, on
# 127.0.0.1): an X-Forwarded-For entry that is not an address makes an
# opaque, non-local client with a bucket of its own, never the proxy's;
# IPv6 clients are counted by their /64 (MD_API_RATE_LIMIT_IPV6_PREFIX).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::Redis;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'sandbox', 187.42, now())");
my $api = MarketData::API->new(node => $node, redis => $redis,
	env => { MD_API_TRUSTED_PROXIES => '127.0.0.1', MD_API_RATE_LIMIT_IP => 1000, MD_API_METRICS_LOCAL => 1 });

sub via
{
	my ($xff, $path) = @_;
	return $api->get($path // '/prices/latest?symbol=AAPL&provider=sandbox', key => ($path ? undef : $key),
		headers => { 'X-Forwarded-For' => $xff });
}
sub bucket { return $redis->command('GET', "md:rl:ip:$_[0]"); }

$redis->command('FLUSHALL');
is(via('not-an-address')->{status}, 200, 'an unparsable X-Forwarded-For is served');
ok(defined bucket('invalid-xff'), 'in the bucket of unparsable clients');
ok(!defined bucket('127.0.0.1'), 'not in the proxy\'s bucket');
my $m = via('not-an-address', '/metrics');
isnt($m->{status}, 200, "/metrics: an unparsable client is not local ($m->{status})");
is(via('127.0.0.1', '/metrics')->{status}, 200, '/metrics: a local client through the proxy is');
is(via('10.0.0.1, bogus')->{status}, 200, 'garbage at the right end');
ok(!defined bucket('10.0.0.1'), 'nothing left of garbage is believed');

# IPv6 by /64
$redis->command('FLUSHALL');
via('2001:db8:1:2::5');
via('2001:db8:1:2:ffff::6');
via('2001:db8:1:3::5');
ok(defined bucket('2001:db8:1:2::/64'), 'an IPv6 client counted by its /64');
ok(defined bucket('2001:db8:1:3::/64'), 'another /64, another bucket');
ok(!defined bucket('2001:db8:1:2::5'), 'not by the host address');
via('192.0.2.7');
ok(defined bucket('192.0.2.7'), 'IPv4 by the address');
$api->stop;
done_testing();
