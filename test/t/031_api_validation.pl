# Validation at the API's edge: the symbol rule agrees with the
# extension's, JSON bodies are checked field by field, and every refusal
# has the one error shape.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::Redis;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('w', 'writer')");
my $api = MarketData::API->new(node => $node, redis => $redis,
	env => { MD_API_BODY_MAX => 2048, MD_API_RATE_LIMIT_WRITER => 0, MD_API_RATE_LIMIT_IP => 0 });

sub escape { my $s = shift; utf8::encode($s); $s =~ s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge; return $s; }

# the API and the extension agree on every symbol (400 from the API exactly
# when md._symbol_ok() refuses the upper-cased symbol)
my @symbols = ('AAPL', 'aapl', 'BRK.B', '^GSPC', 'EURUSD=X', 'GC=F', 'BTC-USD', 'OCDO.L',
	'A/B', 'X_Y', '1234', 'A' x 32, 'A' x 33, '', ' ', 'A..B', '.A', '-A', '=A', 'A B',
	'A;B', "A'B", "\x{c4}", 'A%00', 'A..', 'A.B.C', '^', '^^', 'a-b.c');
for my $s (@symbols)
{
	my $bytes = $s;
	utf8::encode($bytes);
	my $sql_ok = $node->safe_psql('md',
		"SELECT coalesce(md._symbol_ok(upper(btrim(\$q\$$bytes\$q\$))), false)") eq 't' ? 1 : 0;
	my $path = '/prices/latest?symbol=' . escape($s);
	my $r = $api->get($path, key => $key);
	my $api_ok = $r->{status} == 400 ? 0 : 1;
	is($api_ok, $sql_ok, "symbol \"$s\": API and extension agree ($r->{status})");
}

sub poll { return $api->post('/prices/poll', key => $key, body => shift); }
my %good = (symbols => ['AAPL'], interval => 60, provider => 'finnhub');
is(poll({%good})->{status}, 202, 'a good body is accepted');
my @bad = (
	[ 'malformed JSON', '{"symbols": ["AAPL"], ', 'invalid_body' ],
	[ 'not an object', '["AAPL"]', 'invalid_body' ],
	[ 'empty body', '', 'invalid_body' ],
	[ 'trailing garbage', '{"symbols":["AAPL"],"interval":60,"provider":"finnhub"} x', 'invalid_body' ],
	[ 'symbols not an array', { %good, symbols => 'AAPL' }, 'invalid_body' ],
	[ 'a symbol not a string', { %good, symbols => [ 1 ] }, 'invalid_body' ],
	[ 'a bad symbol', { %good, symbols => [ 'A..B' ] }, 'invalid_body' ],
	[ 'no symbols', { %good, symbols => [] }, 'invalid_body' ],
	[ 'too many symbols', { %good, symbols => [ map { "S$_" } 1 .. 501 ] }, 'body_too_large' ],
	[ 'duplicate symbols', { %good, symbols => [ 'AAPL', 'aapl' ] }, 'invalid_argument' ],
	[ 'interval a string', { %good, interval => '60' }, 'invalid_body' ],
	[ 'interval fractional', '{"symbols":["AAPL"],"interval":60.5,"provider":"finnhub"}', 'invalid_body' ],
	[ 'interval 0', { %good, interval => 0 }, 'invalid_body' ],
	[ 'interval negative', { %good, interval => -5 }, 'invalid_body' ],
	[ 'interval too long', { %good, interval => 86401 }, 'invalid_body' ],
	[ 'interval huge', '{"symbols":["AAPL"],"interval":99999999999999999999,"provider":"finnhub"}', 'invalid_body' ],
	[ 'provider not a string', { %good, provider => 7 }, 'invalid_body' ],
	[ 'provider bad name', { %good, provider => 'Fin Hub' }, 'invalid_body' ],
	[ 'unknown provider', { %good, provider => 'nosuch' }, 'invalid_argument' ],
	[ 'unknown field', { %good, extra => 1 }, 'invalid_body' ],
	[ 'repeated field', '{"symbols":["AAPL"],"interval":60,"interval":61,"provider":"finnhub"}', 'invalid_body' ],
	[ 'missing provider', { symbols => ['AAPL'], interval => 60 }, 'invalid_body' ],
	[ 'oversize body', '{"symbols":["' . ('A' x 3000) . '"]}', 'body_too_large' ],
);
for my $b (@bad)
{
	my ($name, $body, $code) = @$b;
	my $r = poll($body);
	# a body over MD_API_BODY_MAX Kore refuses itself (our shape comes
	# from HAProxy: TAP 046)
	if ($code eq 'body_too_large') { is($r->{status}, 413, "body: $name -> 413"); next; }
	MarketData::API::error_ok($r, 400, $code, "body: $name -> 400 $code");
}
is($node->safe_psql('md', 'SELECT count(*) FROM md.polling_jobs'), '1',
	'only the good body made a job');

# query parameters: each has a validator, a bad one is refused
for my $q ('/prices/history?symbol=AAPL&from=yesterday', '/prices/history?symbol=AAPL&limit=-1',
	'/prices/history?symbol=AAPL&limit=1001', '/prices/average?symbol=AAPL&window=0',
	'/prices/history?symbol=A..B')
{
	MarketData::API::error_ok($api->get($q, key => $key), 400, 'invalid_argument', "query: $q -> 400");
}
# writers may read: a role includes the ones below it
is($api->get('/prices/history?symbol=AAPL&limit=5', key => $key)->{status}, 200, 'a writer reads history');

$api->stop;
done_testing();
