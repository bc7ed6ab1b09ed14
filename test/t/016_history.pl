# md_fetch_history against the fake provider serving each provider's
# history format: daily and intraday paths, Yahoo's intraday depth split,
# null entries, minor currencies, events, Polygon's next_url on our own
# base URL, no data, errors, and bad pages rejected whole.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'fake-key-016';
my $fake = MarketData::FakeProvider->new(key => $key);
my $node = MarketData::TestDb->node('history',
	env => {
		MARKETDATA_FINNHUB_KEY => $key,
		MARKETDATA_POLYGON_KEY => $key,
		MARKETDATA_ALPHA_VANTAGE_KEY => $key,
	});
$fake->point_providers($node, 'md');

sub sql { return $node->safe_psql('md', $_[0]) }

# the pages of a history: "page:bars:class" joined by ","
sub pages
{
	my ($symbol, $interval, $from, $to, $provider) = @_;
	return sql(qq{SELECT string_agg(page || ':' || value || ':' || coalesce(error_class, ''), ',' ORDER BY page)
		FROM md_fetch_history('$symbol', '$interval', '$from', '$to', '$provider') WHERE kind = 'page'});
}

# its bars: "epoch open high low close volume" joined by ","
sub bars
{
	my ($symbol, $interval, $from, $to, $provider) = @_;
	return sql(qq{SELECT string_agg(concat_ws(' ', extract(epoch FROM ts)::bigint, open, high, low, close,
			coalesce(volume::text, 'null')), ',' ORDER BY page, ts)
		FROM md_fetch_history('$symbol', '$interval', '$from', '$to', '$provider') WHERE kind = 'bar'});
}

# the URLs asked for a symbol, in order
sub urls
{
	my ($symbol) = @_;
	return sql(qq{SELECT string_agg(url, ' ' ORDER BY id) FROM md.raw_responses WHERE symbol = '$symbol'});
}

# --- Yahoo Finance ----------------------------------------------------------

is(pages('AAPL', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance'), '1:10:', 'yahoo: one page of 10 daily bars');
is(sql(q{SELECT count(*) FROM md_fetch_history('AAPL', '1 day', '2024-10-01', '2024-10-08', 'yahoo_finance')
	WHERE kind = 'bar' AND (ts < '2024-10-01' OR ts >= '2024-10-08')}), '0', 'yahoo: no bar outside the range');
is(pages('AAPL', '1 day', '2024-10-01', '2024-10-08', 'yahoo_finance'), '1:5:',
	'yahoo: the bars outside the asked range are dropped');
like(bars('AAPL', '1 day', '2024-09-30', '2024-10-01', 'yahoo_finance'),
	qr/^1727703000 230\.0399932861328 233(\.0*)? 229\.64999389648438 233(\.0*)? \d+$/,
	'yahoo: a bar at its epoch-seconds start with its OHLCV');
like(urls('AAPL'), qr{/v8/finance/chart/AAPL\?period1=1727654400&period2=1728691200&interval=1d&.*events=div%2Csplits},
	'yahoo: period1, period2, interval and events asked');

is(pages('NULLS', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance'), '1:9:', 'yahoo: an all-null entry is no bar');
is(sql(q{SELECT count(*) FROM md_fetch_history('NULLS', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')
	WHERE kind = 'bar' AND volume IS NULL}), '1', 'yahoo: a null volume stays null, not zero');

is(bars('OCDO.L', '1 day', '2020-01-01', '2020-01-04', 'yahoo_finance'),
	'1577952000 12.795 12.865699462890625 12.58 12.595 728520', 'yahoo: GBp bars become GBP');
is(sql(q{SELECT DISTINCT currency FROM md_fetch_history('OCDO.L', '1 day', '2020-01-01', '2020-01-04', 'yahoo_finance')}),
	'GBP', 'yahoo: the currency is the major one');

is(sql(q{SELECT string_agg(extract(epoch FROM ts)::bigint || '=' || value, ',' ORDER BY ts)
	FROM md_fetch_history('MSFT', '1 day', '2021-02-01', '2022-01-29', 'yahoo_finance') WHERE kind = 'dividend'}),
	'1613572200=0.56,1621431000=0.56,1629293400=0.56,1637159400=0.62', 'yahoo: events.dividends kept');
is(pages('MSFT', '1 day', '2021-02-01', '2022-01-29', 'yahoo_finance'), '1:252:', 'yahoo: a year of daily bars');
is(sql(q{SELECT kind || '=' || value FROM md_fetch_history('SPLIT', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')
	WHERE kind = 'split'}), 'split=4', 'yahoo: events.splits kept as new shares per old');

is(pages('TSLA', '30 minutes', '2021-11-22', '2021-11-23', 'yahoo_finance'), '1:30:', 'yahoo: intraday 30m bars');
is(pages('WKND', '1 minute', '2025-02-01', '2025-02-03', 'yahoo_finance'), '1:0:', 'yahoo: no timestamp key is no bars');
is(pages('EARLY', '1 day', '1970-01-02', '1971-01-01', 'yahoo_finance'), '1:0:no_data',
	'yahoo: 400 "Data doesn\'t exist" is no data');
is(pages('NOPE', '1 day', '2024-01-01', '2024-02-01', 'yahoo_finance'), '1:0:unknown_symbol', 'yahoo: 404 unknown');
is(pages('RETRYH', '1 day', '2024-01-01', '2024-02-01', 'yahoo_finance'), '1:0:rate_limited', 'yahoo: 429 rate limit');
is(pages('DOWNH', '1 day', '2024-01-01', '2024-02-01', 'yahoo_finance'), '1:0:unavailable', 'yahoo: 503 unavailable');

# intraday depth: 1m 7 days, other minutes 60 days, 60m 730 days a request
is(pages('TSLA', '1 minute', '2021-11-01', '2021-11-21', 'yahoo_finance'), '1:0:,2:0:,3:0:',
	'yahoo: 20 days of 1m bars are 3 requests');
my $cuts = sql(q{SELECT string_agg(substring(url FROM 'period1=(\d+)') || '-' || substring(url FROM 'period2=(\d+)'), ',' ORDER BY id)
	FROM md.raw_responses WHERE symbol = 'TSLA' AND url LIKE '%interval=1m&%'});
my ($d1, $d8, $d15, $d21) = map { sql("SELECT extract(epoch FROM '$_'::timestamptz)::bigint") }
	('2021-11-01', '2021-11-08', '2021-11-15', '2021-11-21');
is($cuts, "$d1-$d8,$d8-$d15,$d15-$d21", 'yahoo: the 1m requests cut at 7 days, back to back');
is(pages('TSLA', '5 minutes', '2021-01-01', '2021-04-11', 'yahoo_finance'), '1:0:,2:0:',
	'yahoo: 100 days of 5m bars are 2 requests');
is(pages('TSLA', '60 minutes', '2019-01-01', '2021-11-23', 'yahoo_finance'), '1:0:,2:30:',
	'yahoo: 1057 days of 60m bars are 2 requests');
is(pages('MSFT', '1 day', '2017-01-01', '2022-01-29', 'yahoo_finance'), '1:252:',
	'yahoo: five years of daily bars are one request');

# bad pages: rejected whole, kept as malformed with the reason
foreach my $bad (['HILO', qr/high below its low/], ['NEGVOL', qr/negative volume/],
	['SHORT', qr/not an array as long as timestamp/], ['BADNUM', qr/not a number/],
	['CUT', qr/not JSON/])
{
	my ($sym, $why) = @$bad;
	is(sql(qq{SELECT count(*) FILTER (WHERE kind = 'bar') || ':' || max(error_class)
		FROM md_fetch_history('$sym', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')}),
		'0:malformed', "yahoo: $sym page rejected with no bar");
	like(sql(qq{SELECT message FROM md_fetch_history('$sym', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')
		WHERE kind = 'page'}), $why, "yahoo: $sym says why");
}
is(pages('TRUNCAAPL', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance'), '1:0:unavailable',
	'yahoo: a transfer cut short is unavailable (asked again later), not a page');
is(sql(q{SELECT error_class FROM md.raw_responses WHERE symbol = 'HILO' ORDER BY id DESC LIMIT 1}), 'malformed',
	'a rejected page is kept in md.raw_responses as malformed');

# --- Polygon ----------------------------------------------------------------

is(bars('AAPL', '1 day', '2005-04-01', '2005-04-05', 'polygon'),
	'1112331600 1.5032 1.5064 1.4489 1.4604 642646396.0,1112587200 1.4639 1.4754 1.4343 1.4675 578172308.0',
	'polygon: results with t in ms');
like(urls('AAPL'), qr{/v2/aggs/ticker/AAPL/range/1/day/1112313600000/1112659199999\?adjusted=false&sort=asc&limit=50000},
	'polygon: aggs range in ms, to inclusive, unadjusted');
is(pages('PAGED', '1 day', '2020-01-01', '2020-01-11', 'polygon'), '1:2:,2:2:', 'polygon: next_url followed');
my $fake_url = $fake->url;
like(urls('PAGED'), qr{^\Q$fake_url\E/v2/aggs/ticker/PAGED/range/1/day/\S+ \Q$fake_url\E/v2/aggs/ticker/PAGED/range/1/day/1578114000000/2020-01-10\?cursor=bGltaXQ9MiZzb3J0PWFzYw$},
	'polygon: the next page asked of our base_url (with our key: the fake accepted it), not api.polygon.io');
is(bars('DESC', '1 day', '2005-04-01', '2005-04-05', 'polygon') =~ tr/,//, 1, 'polygon: newest-first results');
like(bars('DESC', '1 day', '2005-04-01', '2005-04-05', 'polygon'), qr/^1112331600 .*,1112587200 /,
	'polygon: come back oldest first');
is(pages('LOOP', '1 day', '2020-01-01', '2020-01-11', 'polygon'), '1:2:,2:0:malformed',
	'polygon: a next_url naming the same page again stops as malformed');
is(pages('EVIL', '1 day', '2020-01-01', '2020-01-11', 'polygon'), '1:0:malformed',
	'polygon: a next_url that is no page of aggregates is malformed');
is(pages('NOPE', '1 day', '2020-01-01', '2020-01-11', 'polygon'), '1:0:', 'polygon: resultsCount 0 is no bars');
is(pages('NOTPLAN', '1 day', '2020-01-01', '2020-01-11', 'polygon'), '1:0:auth_failed', 'polygon: 403 not entitled');

# --- Finnhub ----------------------------------------------------------------

is(bars('AAPL', '60 minutes', '2020-07-02', '2020-07-03', 'finnhub'),
	'1593714600 366.95 367.31 366.21 366.5698 2113793,1593718200 366.59 367 365.93 366.19 656192',
	'finnhub: candles as parallel arrays');
like(urls('AAPL'), qr{/api/v1/stock/candle\?symbol=AAPL&resolution=60&from=1593648000&to=1593734399},
	'finnhub: resolution, from and to (inclusive)');
is(pages('NOPE', '1 minute', '2025-11-04', '2025-11-05', 'finnhub'), '1:0:no_data', 'finnhub: s=no_data is no data');
is(pages('NOACCESS', '1 day', '2020-01-01', '2020-02-01', 'finnhub'), '1:0:auth_failed', 'finnhub: 401 refused');

# --- Alpha Vantage ----------------------------------------------------------

is(bars('IBM', '1 day', '2020-05-01', '2020-05-09', 'alpha_vantage'),
	sql(q{SELECT extract(epoch FROM '2020-05-07 00:00 America/New_York'::timestamptz)::bigint})
	. ' 122.9800 123.2600 120.8500 121.2300 4412047,'
	. sql(q{SELECT extract(epoch FROM '2020-05-08 00:00 America/New_York'::timestamptz)::bigint})
	. ' 122.6700 122.8000 121.0600 121.7900 2538547',
	'alpha_vantage: daily bars at the local midnight of their date, string numbers');
like(urls('IBM'), qr{function=TIME_SERIES_DAILY&symbol=IBM&outputsize=full&apikey=\*+}, 'alpha_vantage: the key masked in the kept URL');
is(pages('MSFT', '1 minute', '2017-12-18', '2017-12-19', 'alpha_vantage'), '1:100:', 'alpha_vantage: intraday bars');
is(sql(q{SELECT min(ts) = '2017-12-18 13:17 America/New_York' AND max(ts) = '2017-12-18 14:56 America/New_York'
	FROM md_fetch_history('MSFT', '1 minute', '2017-12-18', '2017-12-19', 'alpha_vantage') WHERE kind = 'bar'}),
	't', 'alpha_vantage: intraday times are New York local times');
is(pages('MSFT', '1 minute', '2017-10-15', '2017-12-19', 'alpha_vantage'), '1:0:,2:0:,3:100:',
	'alpha_vantage: intraday a month a request');
like(urls('MSFT'), qr{month=2017-10.*month=2017-11.*month=2017-12}, 'alpha_vantage: month=YYYY-MM asked');
is(pages('NOTE', '1 day', '2020-01-01', '2020-02-01', 'alpha_vantage'), '1:0:rate_limited', 'alpha_vantage: Note is a rate limit');
is(pages('RATELIMIT', '1 day', '2020-01-01', '2020-02-01', 'alpha_vantage'), '1:0:rate_limited',
	'alpha_vantage: Information about the daily limit is a rate limit');
is(pages('PREMIUM', '1 day', '2020-01-01', '2020-02-01', 'alpha_vantage'), '1:0:auth_failed',
	'alpha_vantage: Information about a premium feature is not entitled');
is(pages('NOPE', '1 day', '2020-01-01', '2020-02-01', 'alpha_vantage'), '1:0:unknown_symbol',
	'alpha_vantage: Error Message invalid call is an unknown symbol');

# --- sandbox ----------------------------------------------------------------

is(pages('AAPL', '1 day', '2024-01-01', '2024-01-11', 'sandbox'), '1:10:', 'sandbox: ten daily bars');
is(bars('AAPL', '1 day', '2024-01-01', '2024-01-11', 'sandbox'), bars('AAPL', '1 day', '2024-01-01', '2024-01-11', 'sandbox'),
	'sandbox: the same bars every time');
is(sql(q{WITH d AS (SELECT * FROM md_fetch_history('AAPL', '1 day', '2024-01-02', '2024-01-03', 'sandbox') WHERE kind = 'bar'),
	m AS (SELECT * FROM md_fetch_history('AAPL', '1 minute', '2024-01-02', '2024-01-03', 'sandbox') WHERE kind = 'bar')
	SELECT (SELECT count(*) FROM m) = 1440
		AND d.open = (SELECT open FROM m ORDER BY ts LIMIT 1)
		AND d.close = (SELECT close FROM m ORDER BY ts DESC LIMIT 1)
		AND d.high = (SELECT max(high) FROM m) AND d.low = (SELECT min(low) FROM m)
		AND d.volume = (SELECT sum(volume) FROM m)
	FROM d}), 't', 'sandbox: a day bar is its minutes rolled up');
is(sql(q{SELECT bool_and(close = next_open) FROM (SELECT close, lead(open) OVER (ORDER BY ts) AS next_open
	FROM md_fetch_history('AAPL', '15 minutes', '2024-01-02', '2024-01-04', 'sandbox') WHERE kind = 'bar') b
	WHERE next_open IS NOT NULL}), 't', 'sandbox: each bar closes where the next opens');
is(sql(q{SELECT count(*) FROM md_fetch_history('AAPL', '1 day', now() - interval '3 days', now() + interval '3 days', 'sandbox')
	WHERE kind = 'bar' AND ts + interval '1 day' > now()}), '0', 'sandbox: no bar that has not ended');
is(pages('AAPL', '1 week', '2024-01-01', '2024-02-01', 'sandbox'), '1:4:', 'sandbox: weeks from Monday');
is(sql(q{SELECT string_agg(to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ',' ORDER BY ts)
	FROM md_fetch_history('AAPL', '1 month', '2024-01-01', '2024-04-01', 'sandbox') WHERE kind = 'bar'}),
	'2024-01-01,2024-02-01,2024-03-01', 'sandbox: months');
is(pages('AAPL', '1 day', '2019-12-25', '2020-01-03', 'sandbox'), '1:2:', 'sandbox: nothing before the walk starts');

# --- arguments --------------------------------------------------------------

my ($rc, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch_history('AAPL', '90 seconds', '2024-01-01', '2024-01-02', 'sandbox')");
like($err, qr/interval must be a whole number of minutes/, 'a bad interval is refused');
($rc, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch_history('AAPL', '3 minutes', '2024-01-01', '2024-01-02', 'yahoo_finance')");
like($err, qr/provider yahoo_finance has no bars at that interval/, 'an interval the provider lacks is refused');
($rc, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch_history('AAPL', '1 day', '2024-01-02', '2024-01-01', 'sandbox')");
like($err, qr/must end after it starts/, 'a range backwards is refused');
($rc, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch_history('AAPL', '1 day', '2024-01-01', '2024-01-02', 'nosuch')");
like($err, qr/unknown provider/, 'an unknown provider is refused');
is(sql(q{SELECT count(*) FROM md.prices}), '0', 'md_fetch_history stores no prices');

$fake->stop;
$node->stop;
done_testing();
