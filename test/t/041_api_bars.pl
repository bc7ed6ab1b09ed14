# GET /prices/bars: bars equal md_bars(), pages with a next link, fills,
# the cache (a closed page HIT, a page with the current bucket fresh after
# a new price), every error status with the one error shape.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for);

my $node = MarketData::API::node_with_extension('bars');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0 });

# AAPL: 10:00 to 12:59 on 2026-11-20, one price a minute, none 11:00-11:59
$node->safe_psql('md', q{
	SELECT md_ingest_prices(array_agg('AAPL'::text), array_agg('finnhub'::text),
		array_agg(100 + g * 0.25), array_agg('2026-11-20 10:00+00'::timestamptz + g * interval '1 minute'),
		array_agg(g::numeric))
	FROM generate_series(0, 179) g WHERE g NOT BETWEEN 60 AND 119;
	SELECT md_ingest_price('AAPL', 'yahoo_finance', 99, '2026-11-20 12:30:30+00');
});

sub bars { my ($q) = @_; return $api->get("/prices/bars?$q", key => $key); }

# how many Redis keys match a pattern
sub keys_like
{
	my ($pattern) = @_;
	my $n = $redis->command('EVAL', "return #redis.call('KEYS', ARGV[1])", '0', $pattern) // '';
	return $n =~ /^:(\d+)$/ ? $1 : -1;
}

# the same bars as md_bars(), as JSON of the database's numbers
sub md_bars_json
{
	my ($args) = @_;
	return decode_json($node->safe_psql('md', qq{
		SELECT coalesce(jsonb_agg(jsonb_build_object('bucket', md._iso_utc(bucket), 'open', open,
			'high', high, 'low', low, 'close', close, 'volume', volume, 'prices', prices,
			'source', source) ORDER BY bucket), '[]') FROM md_bars($args)}));
}

# --- 200: values, intervals, providers --------------------------------------------------
my $r = bars('symbol=aapl&interval=1h&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z');
is($r->{status}, 200, '1h: 200');
is_deeply($r->{json}{bars},
	md_bars_json(q{'AAPL', '1 hour', '2026-11-20 10:00+00', '2026-11-20 13:00+00'}),
	'1h: the bars of md_bars');
is_deeply([ map { $_->{bucket} } @{ $r->{json}{bars} } ],
	[ '2026-11-20T10:00:00Z', '2026-11-20T12:00:00Z' ], '1h: ISO-8601 UTC buckets, only those with data');
is($r->{json}{bars}[1]{source}, 'yahoo_finance', '1h: one provider per bar, by priority');
is($r->{json}{symbol}, 'AAPL', 'symbol normalised');
ok(!defined $r->{json}{next_from} && !defined $r->{json}{next}, 'one page');

$r = bars('symbol=AAPL&interval=1h&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&provider=finnhub');
is_deeply($r->{json}{bars},
	md_bars_json(q{'AAPL', '1 hour', '2026-11-20 10:00+00', '2026-11-20 13:00+00', 'finnhub'}),
	'provider=finnhub: that provider\'s bars');
for my $iv ([ '5m', '5 minutes' ], [ '15%20minutes', '15 minutes' ], [ '7%20minutes', '7 minutes' ],
	[ '4h', '4 hours' ], [ '1d', '1 day' ], [ '1w', '1 week' ], [ '1mo', '1 month' ])
{
	$r = bars("symbol=AAPL&interval=$iv->[0]&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&limit=1000");
	is($r->{status}, 200, "$iv->[0]: 200");
	is_deeply($r->{json}{bars},
		md_bars_json(qq{'AAPL', '$iv->[1]', '2026-11-20 10:00+00', '2026-11-20 13:00+00'}),
		"$iv->[0]: the bars of md_bars");
}

# --- pagination: a page covers limit buckets; next until done ------------------------------
my @all;
my $path = '/prices/bars?symbol=AAPL&interval=30m&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&limit=2&provider=finnhub';
my $pages = 0;
while (defined $path && $pages < 10)
{
	$r = $api->get($path, key => $key);
	is($r->{status}, 200, "page $pages: 200");
	ok(@{ $r->{json}{bars} } <= 2, "page $pages: at most limit bars");
	push @all, @{ $r->{json}{bars} };
	$path = $r->{json}{next};
	$pages++;
}
is($pages, 3, 'three pages of two buckets (one of them empty)');
is_deeply(\@all,
	md_bars_json(q{'AAPL', '30 minutes', '2026-11-20 10:00+00', '2026-11-20 13:00+00', 'finnhub'}),
	'the pages hold every bar once');

# --- fills ------------------------------------------------------------------------------
$r = bars('symbol=AAPL&interval=30m&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&fill=null&provider=finnhub');
is(scalar @{ $r->{json}{bars} }, 6, 'fill=null: every bucket');
ok(!defined $r->{json}{bars}[2]{close} && $r->{json}{bars}[2]{prices} == 0, 'fill=null: an empty bucket has null prices');
$r = bars('symbol=AAPL&interval=30m&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&fill=previous&provider=finnhub');
is_deeply([ $r->{json}{bars}[2]{close}, $r->{json}{bars}[2]{volume} ], [ $r->{json}{bars}[1]{close}, 0 ],
	'fill=previous: the last close carried, volume 0');

# --- cache: a closed page is a HIT ------------------------------------------------------------
my $closed = 'symbol=AAPL&interval=1h&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z&fill=none';
# the closed pages asked for above are cached already, each under its own key
my $cached = keys_like('md:bars:AAPL:*');
ok($cached >= 1, "closed pages above: $cached cached");
$r = bars($closed);
is($r->{headers}{'x-cache'}, 'MISS', 'closed page: MISS first');
ok(wait_for('the cache write', sub { keys_like('md:bars:AAPL:*') == $cached + 1 }), 'closed page: stored in Redis');
my $hit = bars($closed);
is_deeply([ $hit->{headers}{'x-cache'}, $hit->{content} ], [ 'HIT', $r->{content} ], 'closed page: HIT, same body');

# --- the current bucket: never cached, fresh after a new price -----------------------------------
$node->safe_psql('md', q{SELECT md_ingest_price('LIVE', 'finnhub', 10, now() - interval '1 second')});
my $live = "symbol=LIVE&interval=1h&from=" . $node->safe_psql('md',
	q{SELECT md._iso_utc(date_trunc('hour', now()))}) . '&to=' . $node->safe_psql('md',
	q{SELECT md._iso_utc(date_trunc('hour', now()) + interval '1 hour')});
$r = bars($live);
is_deeply([ $r->{status}, $r->{headers}{'x-cache'}, $r->{json}{bars}[0]{prices} ], [ 200, 'MISS', 1 ],
	'current bucket: answered from the database');
$node->safe_psql('md', q{SELECT md_ingest_price('LIVE', 'finnhub', 11, now())});
$r = bars($live);
is_deeply([ $r->{headers}{'x-cache'}, $r->{json}{bars}[0]{prices}, $r->{json}{bars}[0]{close} ], [ 'MISS', 2, 11 ],
	'current bucket: fresh after a new price');
is(keys_like('md:bars:LIVE:*'), 0, 'current bucket: nothing in Redis');
# without "to" the page moves with the clock: not cached either
$r = bars('symbol=LIVE&interval=1h');
is_deeply([ $r->{status}, $r->{headers}{'x-cache'} ], [ 200, 'MISS' ], 'no to: MISS');
ok(@{ $r->{json}{bars} } >= 1, 'no to: the newest bars');

# --- errors -----------------------------------------------------------------------------------
for my $bad (
	[ 'interval=1h', 'symbol missing' ],
	[ 'symbol=A..B&interval=1h', 'bad symbol' ],
	[ 'symbol=AAPL', 'interval missing' ],
	[ 'symbol=AAPL&interval=abc', 'interval dropped by its validator' ],
	[ 'symbol=AAPL&interval=5%20parsecs', 'interval text PostgreSQL cannot read' ],
	[ 'symbol=AAPL&interval=1%20day%202%20hours', 'interval mixing days and time' ],
	[ 'symbol=AAPL&interval=1h&from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z', 'from after to' ],
	[ 'symbol=AAPL&interval=1h&from=yesterday', 'bad time' ],
	[ 'symbol=AAPL&interval=1h&fill=zero', 'bad fill' ],
	[ 'symbol=AAPL&interval=1h&limit=0', 'limit 0' ],
	[ 'symbol=AAPL&interval=1h&limit=5000', 'limit above 1000' ],
	[ 'symbol=AAPL&interval=1h&provider=nosuch', 'unknown provider' ],
	[ 'symbol=AAPL&interval=1h&provider=Bad-Name', 'bad provider name' ])
{
	MarketData::API::error_ok(bars($bad->[0]), 400, 'invalid_argument', "400: $bad->[1]");
}
$r = bars('symbol=AAPL&interval=90%20seconds');
MarketData::API::error_ok($r, 400, 'invalid_argument', '400: 90 seconds is no multiple of a stored interval');
like($r->{json}{error}{message}, qr/1 minute, 1 hour, 1 day/, '400 names the stored intervals');
MarketData::API::error_ok($api->get('/prices/bars?symbol=AAPL&interval=1h'), 401, undef, '401 without a key');
MarketData::API::error_ok($api->get('/prices/bars?symbol=AAPL&interval=1h', key => 'mdk_wrong'), 401, undef,
	'401 with a wrong key');
MarketData::API::error_ok($api->post('/prices/bars?symbol=AAPL&interval=1h', key => $key, body => '{}'), 405,
	'method_not_allowed', '405 for POST');
like($api->get('/metrics')->{content}, qr{route="/prices/bars"}, 'the route in metrics');

# the database gone: 503 with Retry-After (a cached closed page still answers)
$node->stop;
$r = bars('symbol=AAPL&interval=4h&from=2026-11-20T10:00:00Z&to=2026-11-20T13:00:00Z');
MarketData::API::error_ok($r, 503, 'database_unavailable', '503 when the database is down');
is(bars($closed)->{headers}{'x-cache'}, 'HIT', 'a cached page answers without the database');

$api->stop;
done_testing();
