# The API behind make run's HAProxy (api/conf/haproxy/, MarketData::LB):
# requests pipelined in one write each get their answer, in order (Kore
# 4.1 alone answers the first and drops the rest), and the errors Kore
# answers itself with an empty body, and HAProxy's own, come in the API's
# error shape (docs/errors.md).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use MarketData::API;
use MarketData::Redis;
use MarketData::LB;

plan skip_all => 'haproxy is not installed' unless system('which haproxy >/dev/null 2>&1') == 0;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('w', 'writer')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())");
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_TRUSTED_PROXIES => '127.0.0.2', MD_API_RATE_LIMIT_IP => 1000 });
my $lb = MarketData::LB->new(api => $api);
my @api_before = $api->worker_pids;

my $get = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
my $latest = "GET /prices/latest?symbol=AAPL HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n";
my $missing = "GET /nope HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n";

# --- pipelining --------------------------------------------------------------
my @r = MarketData::API::responses($lb->raw($get . $latest . $missing, timeout => 5, responses => 3));
is(scalar @r, 3, 'three pipelined requests in one write: three answers');
is(join(',', map { $_->[0] } @r), '200,200,404', 'in the order asked');
like($r[1][2] // '', qr/187\.42/, 'the second is the price asked for');
my $close = "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
@r = MarketData::API::responses($lb->raw($latest x 5 . $close, timeout => 5));
is(scalar @r, 6, 'six pipelined, the last with Connection: close: six answers, then the close');

# --- errors in our shape -----------------------------------------------------
sub shaped
{
	my ($bytes, $status, $code, $name) = @_;
	my ($r) = MarketData::API::responses($lb->raw($bytes, timeout => 5, responses => 1));
	my $got = $r ? $r->[0] : 'no answer';
	my $json = $r ? eval { decode_json($r->[2]) } : undef;
	my $ok = $r && $r->[0] == $status && $r->[1] =~ m{^content-type:\s*application/json}mi
	  && ref $json eq 'HASH' && ($json->{error}{code} // '') eq $code
	  && length($json->{error}{message} // '');
	ok($ok, "$name: $status $code") or diag("got $got: " . ($r ? $r->[1] . $r->[2] : ''));
	return $r;
}
shaped('GET /prices/latest?symbol=AAPL&pad=' . ('a' x 2100) . " HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	414, 'uri_too_long', 'a request line over 2,000 bytes (Kore)');
shaped("GET /health HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n",
	400, 'malformed_request', 'an empty header value (Kore)');
shaped("POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nContent-Length: 2000000\r\n\r\n{}",
	413, 'body_too_large', 'a Content-Length over Kore\'s http_body_max (Kore)');
# Kore's body buffer follows MD_API_BODY_MAX (64 KB), not the 1 MB of
# api.conf: a larger body is refused from its headers, before Kore waits
# for it and buffers it
shaped("POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nContent-Length: 70000\r\n\r\n{}",
	413, 'body_too_large', 'a Content-Length over MD_API_BODY_MAX, the body not sent (Kore)');
shaped("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " . ('p' x 20000) . "\r\n\r\n",
	431, 'headers_too_large', 'a 20 KB header (HAProxy, before Kore would reset)');
shaped("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " . ('p' x 65536) . "\r\n\r\n",
	431, 'headers_too_large', 'a 64 KB header');
# what HAProxy cannot parse gets its own built-in 400 (not our shape:
# HAProxy 2.6 answers it before any setting applies), never a reset
for my $bad ("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " . ('p' x 140000) . "\r\n\r\n",
	"NOT A REQUEST\r\n\r\n")
{
	my ($r) = MarketData::API::responses($lb->raw($bad, timeout => 5, responses => 1));
	is($r ? $r->[0] : 'no answer', 400, 'HAProxy refuses ' . substr($bad, 0, 20) =~ s/\r\n.*//sr . '...: 400');
}
shaped("GET /prices/latest?symbol=AAPL HTTP/1.1\r\nHost: x\r\n\r\n", 401, 'unauthorized',
	'an answer of ours passes unchanged');

# headers between Kore's old limit (8 KB: a reset) and HAProxy's: answered
($r[0]) = MarketData::API::responses($lb->raw("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " . ('p' x 13000) . "\r\n\r\n",
		timeout => 5, responses => 1));
is($r[0] ? $r[0][0] : 'no answer', 200, 'a 13 KB header is served');
($r[0]) = MarketData::API::responses($lb->raw("GET /health HTTP/1.0\r\nHost: x\r\n\r\n", timeout => 5, responses => 1));
is($r[0] ? $r[0][0] : 'no answer', 200, 'an HTTP/1.0 request is served');

is(join(',', $api->worker_pids), join(',', @api_before), 'every API worker is the process it was');

# --- no API instance ---------------------------------------------------------
$api->stop;
my $r = shaped($get, 503, 'api_unavailable', 'the API stopped (HAProxy)');
like($r ? $r->[1] : '', qr/^retry-after:\s*1/mi, 'with Retry-After');
$lb->stop;
done_testing();
