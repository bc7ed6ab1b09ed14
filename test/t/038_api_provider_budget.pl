# Readers cannot spend the providers' quotas: a cache miss of the API takes
# a token of the provider's request budget like the scheduler does (spent:
# 503 + Retry-After, no request), and answers that there is nothing to be
# had (unknown symbol) are cached for MD_API_NEGATIVE_TTL.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::FakeProvider;
use MarketData::Redis;

my $node = MarketData::API::node_with_extension('budget');
my $redis = MarketData::Redis->new;
my $fake = MarketData::FakeProvider->new;
# the sink writes through to the same Redis as the API reads
$node->safe_psql('postgres', "ALTER SYSTEM SET marketdata.redis_url = '" . $redis->url . "'");
$node->reload;
$fake->point_providers($node, 'md');
$node->safe_psql('md', q{ALTER DATABASE md SET marketdata.circuit_breaker_failures = 0;
	UPDATE md.providers SET rate_limit_per_minute = 3 WHERE name = 'yahoo_finance'});
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_NEGATIVE_TTL => 2 });

# five different unknown symbols against a budget of 3 a minute
my (%status, $refused);
for my $i (1 .. 5)
{
	my $r = $api->get("/prices/latest?symbol=ZZB$i&provider=yahoo_finance", key => $key);
	$status{ $r->{status} }++;
	$refused //= $r if $r->{status} == 503;
}
is($status{404}, 3, 'the budget\'s 3 requests answer unknown symbol');
is($status{503}, 2, 'then 503');
is($fake->requests, 3, 'the provider got 3 requests, not 5');
MarketData::API::error_ok($refused, 503, 'provider_rate_limited', 'a spent budget is provider_rate_limited');
cmp_ok($refused->{headers}{'retry-after'} // 0, '>=', 1, 'with Retry-After');
like($refused->{json}{error}{message}, qr/budget of 3 requests a minute is spent/, 'saying why');

# negative answers are cached: one database call and one provider request
$node->safe_psql('md', "UPDATE md.providers SET rate_limit_per_minute = 100000 WHERE name = 'yahoo_finance'");
$node->safe_psql('md', "SELECT pg_sleep(1)");    # the budget refills
my $requests = $fake->requests;
my $queries = $api->metric('md_api_price_queries_total');
my @cache;
for (1 .. 10)
{
	my $r = $api->get('/prices/latest?symbol=ZZNEG&provider=yahoo_finance', key => $key);
	MarketData::API::error_ok($r, 404, 'unknown_symbol', 'unknown symbol, every time') if $_ <= 2;
	push @cache, $r->{headers}{'x-cache'} // '';
}
isnt($cache[0], 'HIT', 'the first is a miss');
is("@cache[1 .. 9]", join(' ', ('HIT') x 9), 'the others are hits');
is($fake->requests - $requests, 1, 'one provider request for 10 GETs');
is($api->metric('md_api_price_queries_total') - $queries, 1, 'one database call for 10 GETs');
my ($ttl) = ($redis->command('TTL', 'md:price:yahoo_finance:ZZNEG') // '') =~ /(-?\d+)/;
ok($ttl >= 1 && $ttl <= 2, "cached for MD_API_NEGATIVE_TTL (ttl $ttl)");
# after the TTL the provider is asked again
$node->safe_psql('md', "SELECT pg_sleep(2.2)");
$api->get('/prices/latest?symbol=ZZNEG&provider=yahoo_finance', key => $key);
is($fake->requests - $requests, 2, 'asked again once the negative answer expired');

# a price that arrives replaces the negative answer at once
$node->safe_psql('md', "SELECT md_ingest_price('ZZNEG', 'yahoo_finance', 42, now())");
my $r = $api->get('/prices/latest?symbol=ZZNEG&provider=yahoo_finance', key => $key);
is($r->{status}, 200, 'a new price is served at once');
is($r->{json}{price}, 42, 'the new price');
done_testing();
