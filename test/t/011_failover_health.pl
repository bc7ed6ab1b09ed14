# Failover by priority, the circuit breaker, rate limits and
# md.provider_status, against the fake provider.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'fake-key-011';
my $fake = MarketData::FakeProvider->new(key => $key);
my $node = MarketData::TestDb->node('failover',
	conf => "marketdata.circuit_breaker_failures = 3\nmarketdata.circuit_breaker_cooldown = 2\n",
	env => { MARKETDATA_FINNHUB_KEY => $key, MARKETDATA_POLYGON_KEY => $key });
$fake->point_providers($node, 'md');

sub attempts
{
	my ($sql) = @_;
	return $node->safe_psql('md', qq{SELECT string_agg(provider || ':' || coalesce(error_class, 'ok'), ' ')
		FROM ($sql) a});
}

# yahoo unreachable: failover to finnhub, price stored from finnhub
$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://127.0.0.1:1' WHERE name = 'yahoo_finance'");
is(attempts("SELECT * FROM md_fetch('SYNF1')"), 'yahoo_finance:unavailable finnhub:ok',
	'unavailable fails over to the next provider by priority');
like($node->safe_psql('md', "SELECT provider FROM md_quote('SYNF2')"), qr/^finnhub$/,
	'md_price on a miss fails over too');

# an unknown symbol stops failover: the next providers are not asked
$node->safe_psql('md', "UPDATE md.providers SET base_url = '" . $fake->url . "' WHERE name = 'yahoo_finance'");
is(attempts("SELECT * FROM md_fetch('NOPE')"), 'yahoo_finance:unknown_symbol',
	'unknown symbol does not fail over');
my ($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('NOPE')");
like($err, qr/ERROR:  MD100: unknown symbol "NOPE" at provider yahoo_finance/, 'md_price raises MD100');

# a provider without a key is skipped as auth_failed (alpha_vantage has none here)
$node->safe_psql('md', "UPDATE md.providers SET enabled = false WHERE name IN ('yahoo_finance', 'finnhub', 'polygon')");
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('SYNF3')");
like($err, qr/ERROR:  MD103: no API key configured for provider alpha_vantage/, 'no key: MD103');
$node->safe_psql('md', "UPDATE md.providers SET enabled = true");

# md_fetch_many fails over per symbol, concurrently
is(attempts(q{SELECT * FROM md_fetch_many(ARRAY['SYNM1', 'DOWNM1', 'NOPE2'])}),
	'yahoo_finance:ok yahoo_finance:unavailable yahoo_finance:unknown_symbol '
	  . 'finnhub:unavailable polygon:unavailable alpha_vantage:auth_failed',
	'md_fetch_many: each symbol fails over on its own');

# the circuit breaker: three failures in a row open it for 2 s
$node->safe_psql('md', "SELECT * FROM md_fetch('SYNOK', 'polygon')");
for my $i (1 .. 3)
{
	$node->safe_psql('md', "SELECT * FROM md_fetch('DOWNC$i', 'polygon')");
}
is($node->safe_psql('md', "SELECT state || ' ' || consecutive_failures FROM md.provider_status WHERE provider = 'polygon'"),
	'circuit_open 3', 'three failures open the circuit');
my $before = $fake->requests;
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('SYNC1', 'polygon')");
like($err, qr/ERROR:  MD104: provider polygon unavailable: circuit breaker open after 3 failures in a row/,
	'open circuit: MD104 without a request');
is($fake->requests, $before, 'no request reached the provider');
is(attempts("SELECT * FROM md_fetch('SYNC2')"), 'yahoo_finance:ok', 'failover is unaffected when the first provider answers');
# after the cool-down one trial goes through; success closes the circuit
ok($node->poll_query_until('md', q{SELECT error_class IS NULL FROM md_fetch('SYNC3', 'polygon')}),
	'after the cool-down a trial request is let through');
is($node->safe_psql('md', "SELECT state || ' ' || consecutive_failures FROM md.provider_status WHERE provider = 'polygon'"),
	'ok 0', 'success closes the circuit');

# status: latency percentiles and last error
is($node->safe_psql('md', q{SELECT p50_latency_ms > 0 AND p99_latency_ms >= p50_latency_ms
	AND last_error_class = 'unavailable' AND last_success_at > last_error_at
	FROM md.provider_status WHERE provider = 'polygon'}), 't', 'provider_status: latency and last error');

# rate limits: the provider's wait is honoured, then the provider is skipped
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('RETRY1', 'finnhub')");
like($err, qr/ERROR:  MD102: provider finnhub rate limited, retry after 7 s/, 'Retry-After header honoured');
like($err, qr/DETAIL:  Retry after 7 s\./, 'DETAIL says the wait');
$before = $fake->requests;
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('SYNR1', 'finnhub')");
like($err, qr/ERROR:  MD102: .*DETAIL:  Retry after [1-7] s\./s, 'while waiting, no request and MD102');
is($fake->requests, $before, 'no request while rate limited');
is(attempts("SELECT * FROM md_fetch('SYNR2')"), 'yahoo_finance:ok', 'failover starts at yahoo');
$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://127.0.0.1:1' WHERE name = 'yahoo_finance'");
is(attempts("SELECT * FROM md_fetch('SYNR3')"), 'yahoo_finance:unavailable finnhub:rate_limited polygon:ok',
	'rate limited fails over');
# every provider rate limited: MD102 with the soonest wait
$node->safe_psql('md', "UPDATE md.providers SET enabled = (name IN ('yahoo_finance', 'polygon'))");
$node->safe_psql('md', "UPDATE md.providers SET base_url = '" . $fake->url . "' WHERE name = 'yahoo_finance'");
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('RATELIMIT')");
like($err, qr/ERROR:  MD102: every provider rate limited the fetch of "RATELIMIT", the soonest retry is after 60 s.*DETAIL:  Retry after 60 s\./s,
	'all rate limited: MD102 with the soonest retry');
is($node->safe_psql('md', "SELECT state FROM md.provider_status WHERE provider = 'yahoo_finance'"),
	'rate_limited', 'status shows the rate limit');

$node->stop;
$fake->stop;
done_testing();
