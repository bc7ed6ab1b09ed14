# What a provider, or whoever changed md.providers.base_url, can do with
# our requests: no redirect is followed (the key never reaches a second
# host), loopback and private addresses are refused unless allowed, and
# the key is masked in bodies stored hex-encoded.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'fake-key-015-' . 'x' x 8;
my $other = MarketData::FakeProvider->new;
my $fake = MarketData::FakeProvider->new(key => $key, redirect_to => $other->url);
my $node = MarketData::TestDb->node('safety',
	env => { MARKETDATA_FINNHUB_KEY => $key, MARKETDATA_ALPHA_VANTAGE_KEY => $key });
$fake->point_providers($node, 'md');
$node->safe_psql('md', 'ALTER DATABASE md SET marketdata.circuit_breaker_failures = 0');

sub fetch
{
	my ($symbol, $provider, $set) = @_;
	return $node->safe_psql('md', ($set // '') . qq{
		SELECT coalesce(error_class, 'ok') || '|' || coalesce(message, '')
		FROM md_fetch('$symbol', '$provider')});
}

# redirects are the provider's error, never followed
for my $p ('finnhub', 'alpha_vantage', 'yahoo_finance')
{
	like(fetch('REDIRECT1', $p), qr/^unavailable\|.*redirected with HTTP status 302/,
		"$p: a redirect is unavailable");
}
is($other->requests, 0, 'the host redirected to never got a request, so never the key');
is($node->safe_psql('md', q{SELECT count(*) FROM md.raw_responses
	WHERE symbol = 'REDIRECT1' AND http_status = 302 AND error_class = 'unavailable'}),
	'3', 'the redirects are kept in md.raw_responses');

# a body that is not text is stored hex-encoded, with the key masked first
like(fetch('ECHOBIN', 'finnhub'), qr/^auth_failed\|/, 'binary error body');
# split, so the statement in the server log does not hold the key
my $key_sql = "convert_to('fake-key-015-' || '" . ('x' x 8) . "', 'UTF8')";
is($node->safe_psql('md', qq{SELECT body LIKE '\\\\x%'
	  AND position($key_sql IN decode(substr(body, 3), 'hex')) = 0
	  AND position('***'::bytea IN decode(substr(body, 3), 'hex')) > 0
	FROM md.raw_responses WHERE symbol = 'ECHOBIN'}), 't',
	'hex-encoded body: the key masked in its bytes');

# private addresses: refused by default, without a connection
is($node->safe_psql('md', q{SELECT boot_val FROM pg_settings
	WHERE name = 'marketdata.allow_private_provider_urls'}), 'off', 'refused by default');
my $off = 'SET marketdata.allow_private_provider_urls = off;';
my $before = $fake->requests;
like(fetch('AAPL', 'finnhub', $off),
	qr/^unavailable\|.*refused to connect to the private address 127\.0\.0\.1/,
	'a loopback base_url is refused');
my $port = $fake->port;
$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://localhost:$port' WHERE name = 'finnhub'");
like(fetch('AAPL', 'finnhub', $off), qr/^unavailable\|.*refused to connect to the private address/,
	'a host name resolving to loopback is refused too');
is($fake->requests, $before, 'no request reached the fake provider');
for my $url ('http://10.1.2.3', 'http://169.254.169.254', 'http://[::1]', 'http://192.168.0.1',
	'http://[fd00::1]', 'http://[::ffff:172.16.0.1]', 'http://100.64.0.1')
{
	$node->safe_psql('md', "UPDATE md.providers SET base_url = '$url' WHERE name = 'finnhub'");
	like(fetch('AAPL', 'finnhub', $off . 'SET marketdata.http_connect_timeout = 200;'),
		qr/refused to connect to the private address/, "$url refused");
}
$fake->point_providers($node, 'md');
like(fetch('AAPL', 'finnhub'), qr/^ok\|/, 'allowed: the fake provider on loopback answers');

my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$key\E/, 'the server log never shows the key');
done_testing();
