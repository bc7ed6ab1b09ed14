# md.symbols filled from what providers say: Yahoo's chart meta names the
# exchange, its time zone and the name, so a symbol's day bars start at
# its market's midnight without an operator typing it in. A row that is
# there already is never changed; what cannot be used is left out and
# the price is stored all the same.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'fake-key-047';
my $fake = MarketData::FakeProvider->new(key => $key);
my $node = MarketData::TestDb->node('symbols', env => { MARKETDATA_FINNHUB_KEY => $key },
	conf => "marketdata.databases = 'md'\n");
$fake->point_providers($node, 'md');

sub row
{
	my $symbol = shift;
	return $node->safe_psql('md', qq{SELECT concat_ws('|', exchange, time_zone, currency, name)
		FROM md.symbols WHERE symbol = '$symbol'});
}
sub stored
{
	my ($symbol, $provider) = @_;
	return $node->safe_psql('md', qq{SELECT count(*) FROM md.prices WHERE symbol = '$symbol' AND provider = '$provider'});
}

is(row('AAPL'), '', 'no row before the first fetch');
$node->safe_psql('md', q{SELECT * FROM md_fetch('AAPL', 'yahoo_finance')});
is(row('AAPL'), 'NasdaqGS|America/New_York|USD|Apple Inc.', 'AAPL: exchange, time zone, currency and name from Yahoo');
# 1742824293 is 2025-03-24 13:51 UTC: the day bar starts at midnight in New York (EDT)
is($node->safe_psql('md', q{SELECT bucket FROM md.bars WHERE symbol = 'AAPL' AND "interval" = '1 day'}),
	'2025-03-24 04:00:00+00', 'the day bar starts at New York midnight');
is($node->safe_psql('md', q{SELECT bucket FROM md.bars WHERE symbol = 'AAPL' AND "interval" = '1 hour'}),
	'2025-03-24 13:00:00+00', 'intraday bars stay aligned in UTC');

# an operator's row stays as written
$node->safe_psql('md', q{INSERT INTO md.symbols (symbol, time_zone) VALUES ('BTC-USD', 'UTC')});
$node->safe_psql('md', q{SELECT * FROM md_fetch('BTC-USD', 'yahoo_finance')});
is(row('BTC-USD'), 'UTC', 'a row that was there is not changed');
is(stored('BTC-USD', 'yahoo_finance'), '1', 'its price is stored');

# a time zone PostgreSQL does not know: no row, the price is stored
$node->safe_psql('md', q{SELECT * FROM md_fetch('BADTZ', 'yahoo_finance')});
is(row('BADTZ'), '', 'an unknown time zone is left out');
is(stored('BADTZ', 'yahoo_finance'), '1', 'and the price is stored all the same');

# a provider that says nothing of the symbol: no row (UTC when asked)
$node->safe_psql('md', q{SELECT * FROM md_fetch('SPY', 'finnhub')});
is(row('SPY'), '', 'finnhub says no time zone: no row');
is(stored('SPY', 'finnhub'), '1', 'its price is stored');

# the scheduler learns the same way, a symbol of several jobs once
$node->safe_psql('md', q{INSERT INTO md.polling_jobs (symbols, interval, provider)
	VALUES ('{OCDO.L,^GSPC}', 1, 'yahoo_finance'), ('{OCDO.L,EURUSD=X}', 1, 'yahoo_finance')});
ok($node->poll_query_until('md', q{SELECT count(*) = 3 FROM md.symbols WHERE symbol IN ('OCDO.L', '^GSPC', 'EURUSD=X')}),
	'the scheduler fills md.symbols');
is(row('OCDO.L'), 'LSE|Europe/London|GBP|Ocado Group plc', 'OCDO.L: London, in GBP (from pence)')
  or diag($node->safe_psql('md', 'SELECT * FROM md.symbols'));
is($node->safe_psql('md', q{SELECT count(*) FILTER (WHERE status = 'failed') || ' of ' || (count(*) > 0)
	FROM md.job_runs}), '0 of true', 'jobs ran, none failed');
$node->stop;
done_testing();
