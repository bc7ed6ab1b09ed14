# HTTPS end to end: HAProxy terminates TLS (a throwaway CA and certificate
# made by test/tls_ca.sh) in front of the API, with make run's HAProxy
# configuration (MarketData::LB); curl
# trusts only that CA. The API believes HAProxy's X-Forwarded-For because
# HAProxy is its one trusted proxy.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MarketData::API;
use MarketData::Redis;
use MarketData::LB;

plan skip_all => 'haproxy is not installed' unless system('which haproxy >/dev/null 2>&1') == 0;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())");
my $api = MarketData::API->new(node => $node, redis => $redis,
	env => { MD_API_TRUSTED_PROXIES => '127.0.0.2', MD_API_RATE_LIMIT_IP => 1000 });

my $lb = MarketData::LB->new(api => $api);
my ($dir, $url) = ($lb->{dir}, $lb->https_url);
my $out;
my $deadline = time() + 15;
while (time() < $deadline)
{
	$out = `curl -s --cacert $dir/ca.pem $url/health 2>&1`;
	last if $out =~ /"ok"/;
	usleep(50_000);
}
like($out, qr/"status":"ok"/, 'HTTPS: /health through HAProxy');
$out = `curl -s --cacert $dir/ca.pem -H 'X-API-Key: $key' '$url/prices/latest?symbol=AAPL' -D -`;
like($out, qr/^HTTP\/1.1 200/m, 'HTTPS: latest price 200');
like($out, qr/"price" : 187.42/, 'HTTPS: the price');
my $rc = system("curl -s -o /dev/null $url/health 2>/dev/null") >> 8;
is($rc, 60, 'HTTPS: a client that does not trust the test CA refuses the certificate (curl 60)');
$out = `curl -s --cacert $dir/ca.pem -H 'X-API-Key: $key' -H 'X-Forwarded-For: 10.1.2.3' '$url/prices/latest?symbol=AAPL' -o /dev/null -w '%{http_code}'`;
is($out, '200', 'HTTPS: with a client X-Forwarded-For');
# the rate limit key is HAProxy's client (127.0.0.1), not the forged 10.1.2.3:
# HAProxy appends the real peer, the API takes the right-most untrusted one
ok(defined $redis->command('GET', 'md:rl:ip:127.0.0.1'), 'HTTPS: limited by the real client address');
ok(!defined $redis->command('GET', 'md:rl:ip:10.1.2.3'), 'HTTPS: a forged X-Forwarded-For entry is not believed');
ok(!defined $redis->command('GET', 'md:rl:ip:127.0.0.2'), 'HTTPS: the proxy itself is not the client');
$lb->stop;
$api->stop;
done_testing();
