# Every provider against the fake provider: each case of its format gives
# the right price and market time, or the right error class, and every
# response is kept in md.raw_responses.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::MD5 qw(md5_hex);
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'fake-key-010';
my $fake = MarketData::FakeProvider->new(key => $key);
my $node = MarketData::TestDb->node('providers',
	env => {
		MARKETDATA_FINNHUB_KEY => $key,
		MARKETDATA_POLYGON_KEY => $key,
		MARKETDATA_ALPHA_VANTAGE_KEY => $key,
	});
$fake->point_providers($node, 'md');
$node->safe_psql('md', 'ALTER DATABASE md SET marketdata.circuit_breaker_failures = 0');

# fetch one symbol: "price|ts|currency|class" (ts as epoch seconds)
sub fetch
{
	my ($symbol, $provider, $set) = @_;
	return $node->safe_psql('md', ($set // '') . qq{
		SELECT coalesce(price::text, '') || '|' || coalesce(extract(epoch FROM ts)::bigint::text, '')
			|| '|' || coalesce(currency, '') || '|' || coalesce(error_class, '')
		FROM md_fetch('$symbol', '$provider')});
}

# Yahoo Finance
is(fetch('AAPL', 'yahoo_finance'), '220.003|1742824293|USD|',
	'yahoo: meta.regularMarketPrice at regularMarketTime, not the 2022 bar');
is(fetch('OCDO.L', 'yahoo_finance'), '3.053|1740051143|GBP|', 'yahoo: GBp pence become GBP');
is(fetch('^GSPC', 'yahoo_finance'), '6117.52|1740085200|USD|', 'yahoo: ^ percent-encoded in the path');
is(fetch('EURUSD=X', 'yahoo_finance'), '1.0421|1740052200|USD|', 'yahoo: FX symbol with =');
is(fetch('BTC-USD', 'yahoo_finance'), '96512.36|1740052680|USD|', 'yahoo: crypto');
is(fetch('WKND', 'yahoo_finance'), '244.87|1739998801|USD|', 'yahoo: no bars, but meta has the price');
is(fetch('CAPIO.ST', 'yahoo_finance'), '|||no_data', 'yahoo: delisted, no regularMarketPrice');
is(fetch('GRND3.SA', 'yahoo_finance'), '|||no_data', 'yahoo: empty timestamp and quote arrays');
is(fetch('NOPE', 'yahoo_finance'), '|||unknown_symbol', 'yahoo: 404 is an unknown symbol');
is(fetch('BIGEXP', 'yahoo_finance'), '|||malformed',
	'yahoo: a number beyond numeric (1e999999) is malformed, not an error');

# Alpha Vantage
my $close = $node->safe_psql('md',
	"SELECT extract(epoch FROM '2018-10-05 16:00 America/New_York'::timestamptz)::bigint");
is(fetch('MSFT', 'alpha_vantage'), "112.1300|$close||",
	'alpha_vantage: string price, date-only time is the US close');
is(fetch('NOPE', 'alpha_vantage'), '|||unknown_symbol', 'alpha_vantage: empty Global Quote');
is(fetch('BADCALL', 'alpha_vantage'), '|||unknown_symbol', 'alpha_vantage: Error Message');
is(fetch('ZERO', 'alpha_vantage'), '|||no_data', 'alpha_vantage: price 0 is no data');
is(fetch('BADDATE', 'alpha_vantage'), '|||malformed', 'alpha_vantage: impossible date');
is(fetch('PREMIUM', 'alpha_vantage'), '|||auth_failed', 'alpha_vantage: premium Information');
like($node->safe_psql('md', "SELECT message FROM md_fetch('SYNAV', 'alpha_vantage')"), qr/^$/,
	'alpha_vantage: synthetic success');

# Finnhub
is(fetch('SPY', 'finnhub'), '376.66|1672261200||', 'finnhub: c at t');
is(fetch('AAPL', 'finnhub'), '300.35|1590177600||', 'finnhub: 2020 shape without d/dp');
is(fetch('TSLA', 'finnhub'), '816.88|1590177600||', 'finnhub: valid c with zero h/l/o/pc');
is(fetch('NOPE', 'finnhub'), '|||unknown_symbol', 'finnhub: c 0 with null d/dp');
is(fetch('SQ', 'finnhub'), '|||no_data', 'finnhub: c 0 pre-market');
is(fetch('^DJI', 'finnhub'), '|||no_data', 'finnhub: every field 0');
is(fetch('NOACCESS', 'finnhub'), '|||auth_failed', 'finnhub: 401 no access');
is(fetch('^GSPC', 'finnhub'), '|||auth_failed', 'finnhub: 403 subscription required');
is(fetch('BIGEXP', 'finnhub'), '|||malformed', 'finnhub: a price of 1e999999 is malformed');

# Polygon
is(fetch('AAPL', 'polygon'), '156.8|1651003200||', 'polygon prev: results[0].c, t in ms');
is(fetch('NOPE', 'polygon'), '|||unknown_symbol', 'polygon: resultsCount 0');
is(fetch('NOTPLAN', 'polygon'), '|||auth_failed', 'polygon: 403 NOT_AUTHORIZED');
is($node->safe_psql('md', q{SET marketdata.polygon_endpoint = 'last_trade';
	SELECT price || '|' || extract(epoch FROM ts) FROM md_fetch('AAPL', 'polygon')}),
	'129.8473|1617901342.969834', 'polygon last trade: results.p, t in ns (exact to the microsecond)');

# every transport failure, for every HTTP provider
foreach my $p ('yahoo_finance', 'alpha_vantage', 'finnhub', 'polygon')
{
	is(fetch('DOWN1', $p), '|||unavailable', "$p: 503 is unavailable");
	is(fetch('GARBAGE1', $p), '|||malformed', "$p: HTML instead of JSON is malformed");
	is(fetch('HUGE1', $p), '|||malformed', "$p: a body over the size cap is malformed");
	is(fetch('TRUNC1', $p), '|||unavailable', "$p: a truncated body is unavailable");
	is(fetch('RESET1', $p), '|||unavailable', "$p: a connection closed without answer");
	is(fetch('HANG1', $p, "SET marketdata.http_timeout = '300ms';"), '|||unavailable',
		"$p: no answer within the timeout");
	like(fetch('SYN1', $p), qr/^\d+\.\d+\|\d+\|/, "$p: synthetic success");
}

# the raw responses: every answer kept, with status, class and latency
is($node->safe_psql('md', q{
	SELECT count(*) FILTER (WHERE error_class IS NULL) || '/' ||
		count(*) FILTER (WHERE error_class = 'unknown_symbol') || '/' ||
		count(*) FILTER (WHERE error_class = 'no_data') || '/' ||
		count(*) FILTER (WHERE error_class = 'auth_failed') || '/' ||
		count(*) FILTER (WHERE error_class = 'unavailable') || '/' ||
		count(*) FILTER (WHERE error_class = 'malformed') || '/' ||
		count(*) FILTER (WHERE latency_ms IS NULL)
	FROM md.raw_responses}), '17/5/5/4/16/11/0', 'every response kept with its class');
is($node->safe_psql('md', q{SELECT http_status || ' ' || length(body) FROM md.raw_responses
	WHERE symbol = 'HUGE1' AND provider = 'finnhub'}), '200 1048576',
	'an oversize body is kept up to the cap');
is($node->safe_psql('md', q{SELECT md5(body) FROM md.raw_responses
	WHERE symbol = 'NOPE' AND provider = 'yahoo_finance'}),
	md5_hex(slurp_file(MarketData::FakeProvider::top() . '/test/fixtures/providers/yahoo/_unknown.404.json')),
	'an error body is kept byte for byte');
# prices carry their raw response
is($node->safe_psql('md', q{SELECT count(*) FROM md.latest_prices l
	JOIN md.raw_responses r ON r.id = l.raw_response_id
	WHERE r.provider = l.provider AND r.symbol = l.symbol AND r.error_class IS NULL}),
	$node->safe_psql('md', 'SELECT count(*) FROM md.latest_prices'),
	'every latest price points at its raw response');

# md_price on a miss fetches, stores and answers; then it is fresh
is($node->safe_psql('md', "SELECT md_price('SPY', 'finnhub', '1 second')"), '376.66',
	'md_price on a miss fetches');
my $before = $fake->requests;
is($node->safe_psql('md', "SELECT md_price('SPY', 'finnhub')"), '376.66', 'then answers from storage');
is($fake->requests, $before, 'without a request');
is($node->safe_psql('md', q{SELECT provider || ' ' || price FROM md_quote('OCDO.L', 'yahoo_finance', '0')}),
	'yahoo_finance 3.053', 'md_quote on a miss');

# md_price raises each class with its SQLSTATE
my %sqlstate = (
	'NOPE|yahoo_finance' => 'MD100', 'CAPIO.ST|yahoo_finance' => 'MD101',
	'NOTPLAN|polygon' => 'MD103', 'DOWN2|finnhub' => 'MD104',
	'GARBAGE2|alpha_vantage' => 'MD105');
foreach my $case (sort keys %sqlstate)
{
	my ($sym, $p) = split /\|/, $case;
	my ($ret, $out, $err) = $node->psql('md', qq{\\set VERBOSITY verbose
		SELECT md_price('$sym', '$p')});
	like($err, qr/ERROR:  $sqlstate{$case}:/, "md_price $sym at $p raises $sqlstate{$case}");
}

# concurrency: one provider's requests share its max_concurrency
$node->safe_psql('md', "UPDATE md.providers SET max_concurrency = 4 WHERE name = 'finnhub'");
is($node->safe_psql('md', q{SELECT count(*) FILTER (WHERE error_class IS NULL)
	FROM md_fetch_many(ARRAY(SELECT 'SYNC' || g FROM generate_series(1, 50) g), 'finnhub')}),
	'50', 'md_fetch_many of 50 symbols');

$node->stop;
$fake->stop;
done_testing();
