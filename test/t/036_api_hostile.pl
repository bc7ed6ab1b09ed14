# Hostile and careless requests: each gets an answer in the one error
# shape, and none can make an API worker exit (the same processes serve
# before and after, and a keep-alive connection opened before survives).
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::Redis;
use MarketData::Services;

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('w', 'writer')");
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_RATE_LIMIT_WRITER => 0, MD_API_RATE_LIMIT_IP => 0 });
# the workers Kore is still forking when /health first answers count too
my @pids;
for (1 .. 100)
{
	@pids = $api->worker_pids;
	last if @pids >= 2;
	select(undef, undef, undef, 0.1);
}

# a keep-alive connection opened before the hostile requests
my $kept = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $api->port, Proto => 'tcp')
  or die "connect: $!";
$kept->autoflush(1);
sub kept_health
{
	print $kept "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	my $sel = IO::Select->new($kept);
	my $got = '';
	while ($sel->can_read(5))
	{
		my $n = sysread($kept, my $buf, 65536);
		last unless $n;
		$got .= $buf;
		last if MarketData::API::responses($got) >= 1;
	}
	my ($r) = MarketData::API::responses($got);
	return $r ? $r->[0] : 0;
}
is(kept_health(), 200, 'keep-alive connection answers');

# one request, raw; its answer as [status, headers, decoded body or undef]
sub one
{
	my ($bytes) = @_;
	my ($r) = MarketData::API::responses($api->raw($bytes, responses => 1));
	return [ 0, '', undef ] unless $r;
	return [ $r->[0], $r->[1], eval { decode_json($r->[2]) } ];
}

sub error_shape_ok
{
	my ($r, $status, $code, $name) = @_;
	my $ok = $r->[0] == $status && ref $r->[2] eq 'HASH' && ref $r->[2]{error} eq 'HASH'
	  && defined $r->[2]{error}{message}
	  && (!defined $code || ($r->[2]{error}{code} // '') eq $code);
	ok($ok, $name) or diag("got $r->[0]: " . encode_json([ $r->[2] // 'no JSON body' ]));
}

# --- bytes that are not UTF-8, and UTF-8 cut inside a character -----------
error_shape_ok(one("GET /nope\xff HTTP/1.1\r\nHost: x\r\n\r\n"), 400, 'invalid_path',
	'a path byte that is not UTF-8: 400');
error_shape_ok(one("GET /" . ("\xc3\xa9" x 100) . " HTTP/1.1\r\nHost: x\r\n\r\n"), 404, 'not_found',
	'a path of 100 x "é" (cut inside a character in the message): 404');
my $body = '{"symbols":["' . ('A' x 39) . "\xc3\xa9" . '"],"interval":60,"provider":"finnhub"}';
error_shape_ok(one("POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n"
	  . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body"),
	400, 'invalid_body', 'a body symbol of 39 characters and "é" (cut by the message): 400');
$body = '{"symbols":["AAPL"],"interval":60,"provider":"finnhub","x' . "\xff\xfe" . '":1}';
error_shape_ok(one("POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n"
	  . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body"),
	400, undef, 'a body field name that is not UTF-8: 400');
error_shape_ok(one("GET /prices/poll/poll_\xff\xff HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n"),
	404, undef, 'a job id that is not UTF-8: 404');

# --- query strings: a bounded number of parameters, none repeated -----------
my $many = join('&', map { "x$_=1" } 1 .. 19) . '&symbol=AAPL';
my $q = $api->get("/prices/latest?$many", key => $key);
ok($q->{status} == 400 && ($q->{json}{error}{message} // '') =~ /too many query parameters/,
	'20 parameters: 400, too many (not "symbol is missing")') or diag($q->{content});
$q = $api->get('/prices/average?' . join('&', map { "x$_=1" } 1 .. 15) . '&symbol=AAPL', key => $key);
isnt($q->{status}, 400, "16 parameters with a good symbol: not refused ($q->{status})");
for my $qs ('symbol=AAPL&symbol=MSFT', 'symbol=AAPL&provider=finnhub&provider=polygon')
{
	$q = $api->get("/prices/latest?$qs", key => $key);
	ok($q->{status} == 400 && ($q->{json}{error}{message} // '') =~ /repeated/, "$qs: 400, repeated")
	  or diag($q->{content});
}
is($api->get('/prices/history?symbol=AAPL&limit=5&limit=6', key => $key)->{status}, 400,
	'history: a repeated limit is a 400 too');

# --- methods: HEAD wherever GET, 405 with Allow ------------------------------
is($api->request('HEAD', '/health')->{status}, 200, 'HEAD /health: 200');
my $r = $api->request('HEAD', '/prices/average?symbol=AAPL', key => $key);
isnt($r->{status}, 405, "HEAD on a GET route is not a 405 ($r->{status})");
is($r->{content} // '', '', 'HEAD: no body');
$r = $api->request('PUT', '/prices/latest?symbol=AAPL', key => $key);
is_deeply([ $r->{status}, $r->{headers}{allow} ], [ 405, 'GET, HEAD' ], '405 names the allowed methods');
$r = $api->request('PUT', '/prices/poll/poll_1', key => $key);
is_deeply([ $r->{status}, $r->{headers}{allow} ], [ 405, 'GET, HEAD, DELETE' ], '405 on a job: GET, HEAD, DELETE');

# --- nothing died ------------------------------------------------------------
is(kept_health(), 200, 'the keep-alive connection opened before still answers');
is(join(',', $api->worker_pids), join(',', @pids), 'the same API worker processes as before');
is($api->get('/health')->{status}, 200, 'the API answers');

close $kept;
$api->stop;

# --- rate limits: 5 per IP; the test's peer 127.0.0.1 is a trusted proxy ----
my $limited = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_RATE_LIMIT_IP => 5, MD_API_RATE_LIMIT_READER => 0, MD_API_RATE_LIMIT_WRITER => 0,
		MD_API_RATE_WINDOW => 3600, MD_API_TRUSTED_PROXIES => '127.0.0.1' });
my $lookups = sub {
	return $node->safe_psql('md',
		"SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE funcname = '_api_key_role'");
};
my $lookups_before = $lookups->();
my (%status, $with_headers);
for my $i (1 .. 30)
{
	my $random = 'mdk_' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24);
	my $r = $limited->get('/prices/latest?symbol=AAPL', key => $random,
		headers => { 'X-Forwarded-For' => '10.4.4.4' });
	$status{ $r->{status} }++;
	$with_headers++ if defined $r->{headers}{'ratelimit-limit'};
}
is_deeply(\%status, { 401 => 5, 429 => 25 }, 'random keys: 5 answers 401, then the IP limit answers 429');
is($with_headers, 30, 'every answer carries RateLimit-* headers');
# function statistics reach the view when the API's backends next report them
ok(wait_until(sub { $lookups->() - $lookups_before >= 5 }, 20), 'the 5 look-ups are counted');
ok($lookups->() - $lookups_before <= 5, 'at most the IP limit of database look-ups')
  or diag('look-ups: ' . ($lookups->() - $lookups_before));
is($limited->get('/prices/latest?symbol=AAPL', headers => { 'X-Forwarded-For' => '10.4.4.4' })->{status},
	429, 'no credentials at all: the IP limit too');
MarketData::API::error_ok($limited->get('/metrics', headers => { 'X-Forwarded-For' => '10.6.6.6' }),
	401, 'unauthorized', '/metrics from a caller that is not local: credentials needed');
MarketData::API::error_ok($limited->get('/metrics', key => $key, headers => { 'X-Forwarded-For' => '10.6.6.7' }),
	403, 'forbidden', '/metrics from a caller that is not local: a writer key is not enough');

# an X-Forwarded-For over 1 KB still names the client, whose bucket is spent
for (1 .. 5)
{
	$limited->get('/prices/latest?symbol=AAPL', key => $key, headers => { 'X-Forwarded-For' => '10.5.5.5' });
}
is($limited->get('/prices/latest?symbol=AAPL', key => $key,
		headers => { 'X-Forwarded-For' => '10.5.5.5' })->{status}, 429, 'the client 10.5.5.5 spent its bucket');
my $long = join(', ', ('192.0.2.1') x 150) . ', 10.5.5.5';
is($limited->get('/prices/latest?symbol=AAPL', key => $key,
		headers => { 'X-Forwarded-For' => $long })->{status}, 429,
	'an X-Forwarded-For of ' . length($long) . ' bytes: still the client\'s spent bucket, not a fresh one');
is($limited->get('/prices/latest?symbol=AAPL', key => $key,
		headers => { 'X-Forwarded-For' => ('x' x 2000) . ', 10.5.5.5' })->{status}, 429,
	'junk before the client\'s address: still the client');
$limited->stop;
done_testing();
