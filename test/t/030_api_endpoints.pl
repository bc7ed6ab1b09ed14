# The REST API over real HTTP against a real PostgreSQL and Redis: every
# endpoint and its statuses, the auth matrix (API keys and JWTs), and the
# OpenAPI document against the routes and statuses really answered.
# Ends with PostgreSQL stopped: 503 with the error shape.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MarketData::API;
use MarketData::JWT;
use MarketData::Redis;
use MarketData::Services qw(wait_for);

my $secret = 'test-secret-of-at-least-32-bytes-0123456789';
my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my %key;
$key{$_} = $node->safe_psql('md', "SELECT md_create_api_key('$_', '$_')")
  for qw(reader writer admin);
my $revoked = $node->safe_psql('md', "SELECT md_create_api_key('gone', 'admin')");
$node->safe_psql('md', q{
	SELECT md_ingest_prices(ARRAY['AAPL', 'AAPL', 'AAPL', 'MSFT'],
		ARRAY['yahoo_finance', 'finnhub', 'yahoo_finance', 'finnhub'],
		ARRAY[187.42, 187.50, 188.10, 410.5]::numeric[],
		ARRAY[now() - interval '2 minutes', now() - interval '2 minutes',
			  now() - interval '1 minute', now()]);
});

my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_JWT_SECRET => $secret, MD_API_KEY_CACHE_TTL => 1,
		MD_API_RATE_LIMIT_READER => 40, MD_API_RATE_LIMIT_IP => 100000,
		MD_API_RATE_WINDOW => 3600, MD_API_BODY_MAX => 4096, MD_API_CACHE_TTL => 600 });

# every answer is recorded: "METHOD /route/template STATUS"
my %seen;
sub call
{
	my ($method, $tmpl, $path, %o) = @_;
	my $r = $api->request($method, $path, %o);
	$seen{"$method $tmpl $r->{status}"}++;
	return $r;
}

# --- /prices/latest ---------------------------------------------------------
my $r = call('GET', '/prices/latest', '/prices/latest?symbol=aapl', key => $key{reader});
is($r->{status}, 200, 'latest: 200');
is($r->{headers}{'x-cache'}, 'MISS', 'latest: first answer from the database');
is_deeply([ @{ $r->{json} }{qw(symbol price provider)} ], [ 'AAPL', 188.10, 'yahoo_finance' ],
	'latest: symbol upper-cased, newest price of the preferred provider');
like($r->{json}{timestamp}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/, 'latest: ISO-8601 UTC time');
ok(defined $r->{headers}{'ratelimit-remaining'}, 'latest: RateLimit headers');
$r = call('GET', '/prices/latest', '/prices/latest?symbol=AAPL', key => $key{reader});
is($r->{headers}{'x-cache'}, 'HIT', 'latest: second answer from Redis');
ok(defined $redis->command('GET', 'md:price:_:AAPL'), 'latest: cached under md:price:_:AAPL');
$r = call('GET', '/prices/latest', '/prices/latest?symbol=AAPL&provider=finnhub', key => $key{reader});
is($r->{json}{price}, 187.50, 'latest: a named provider');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=A..B', key => $key{reader}),
	400, 'invalid_argument', 'latest: bad symbol 400');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest', key => $key{reader}),
	400, 'invalid_argument', 'latest: no symbol 400');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=AAPL&provider=Bad-Name',
	key => $key{reader}), 400, 'invalid_argument', 'latest: bad provider name 400');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=AAPL&provider=nosuch',
	key => $key{reader}), 400, 'invalid_argument', 'latest: unknown provider 400');
# provider failures: every provider points at a closed local port (no
# network); finnhub has no API key configured
$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://127.0.0.1:1'");
$r = call('GET', '/prices/latest', '/prices/latest?symbol=ZZZZ', key => $key{reader});
MarketData::API::error_ok($r, 503, 'provider_unavailable', 'latest: providers unreachable 503 (MD104)');
is($r->{headers}{'retry-after'}, 1, 'latest: 503 with Retry-After');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=ZZZZ&provider=yahoo_finance',
	key => $key{reader}), 503, 'provider_unavailable', 'latest: a named provider unreachable 503');
$r = call('GET', '/prices/latest', '/prices/latest?symbol=ZZZZ&provider=finnhub', key => $key{reader});
MarketData::API::error_ok($r, 502, 'provider_auth_failed', 'latest: provider without credentials 502 (MD103)');
like($r->{json}{error}{message}, qr/no API key configured for provider finnhub/, 'latest: the message names the fix');
$node->safe_psql('md', "UPDATE md.providers SET enabled = false");
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=ZZZZ', key => $key{reader}),
	404, 'no_price', 'latest: no price and no provider to ask: 404');

# --- history and average ------------------------------------------------------
$r = call('GET', '/prices/history', '/prices/history?symbol=AAPL&limit=2', key => $key{reader});
is($r->{status}, 200, 'history: 200');
ok(scalar @{ $r->{json}{points} } <= 2, 'history: at most limit points');
ok(defined $r->{json}{next_from}, 'history: next page announced');
my $page2 = call('GET', '/prices/history',
	"/prices/history?symbol=AAPL&limit=2&from=$r->{json}{next_from}", key => $key{reader});
is(scalar @{ $r->{json}{points} } + scalar @{ $page2->{json}{points} }, 3,
	'history: two pages hold all three AAPL prices once');
ok(!defined $page2->{json}{next_from}, 'history: last page');
MarketData::API::error_ok(call('GET', '/prices/history', '/prices/history?symbol=AAPL&from=2026-13-45',
	key => $key{reader}), 400, 'invalid_argument', 'history: bad time 400');
MarketData::API::error_ok(call('GET', '/prices/history', '/prices/history?symbol=AAPL&limit=0',
	key => $key{reader}), 400, 'invalid_argument', 'history: bad limit 400');
# bars: their own test is 041_api_bars.pl; here the statuses the document lists
$r = call('GET', '/prices/bars', '/prices/bars?symbol=AAPL&interval=1m', key => $key{reader});
is($r->{status}, 200, 'bars: 200');
ok(@{ $r->{json}{bars} } >= 1, 'bars: the newest minute bars');
MarketData::API::error_ok(call('GET', '/prices/bars', '/prices/bars?symbol=AAPL&interval=90%20seconds',
	key => $key{reader}), 400, 'invalid_argument', 'bars: no multiple of a stored interval 400');
$r = call('GET', '/prices/average', '/prices/average?symbol=AAPL&window=3', key => $key{reader});
is_deeply([ $r->{status}, $r->{json}{window}, sprintf('%.2f', $r->{json}{average}) ],
	[ 200, 3, '187.67' ], 'average: 200 with the average');
MarketData::API::error_ok(call('GET', '/prices/average', '/prices/average?symbol=ZZZZ', key => $key{reader}),
	404, 'no_price', 'average: no price 404');
MarketData::API::error_ok(call('GET', '/prices/average', '/prices/average?symbol=AAPL&window=x',
	key => $key{reader}), 400, 'invalid_argument', 'average: bad window 400');

# --- polling jobs ---------------------------------------------------------------
$r = call('POST', '/prices/poll', '/prices/poll', key => $key{writer},
	body => { symbols => [ 'AAPL', 'msft' ], interval => 60, provider => 'finnhub' });
is($r->{status}, 202, 'poll: 202');
like($r->{json}{job_id}, qr/^poll_\d+$/, 'poll: job id poll_N');
is_deeply($r->{json}{config}, { symbols => [ 'AAPL', 'MSFT' ], interval => 60, provider => 'finnhub' },
	'poll: config echoed, symbols normalised');
my $job = $r->{json}{job_id};
(my $id = $job) =~ s/poll_//;
is($node->safe_psql('md', "SELECT interval FROM md.polling_jobs WHERE id = $id"), '60',
	'poll: the job is a row of md.polling_jobs');
MarketData::API::error_ok(call('POST', '/prices/poll', '/prices/poll', key => $key{reader},
	body => { symbols => ['AAPL'], interval => 60, provider => 'finnhub' }),
	403, 'forbidden', 'poll: a reader gets 403');
MarketData::API::error_ok(call('POST', '/prices/poll', '/prices/poll', key => $key{writer},
	body => { symbols => ['AAPL'], interval => 60, provider => 'nosuch' }),
	400, 'invalid_argument', 'poll: unknown provider 400');
# over MD_API_BODY_MAX Kore answers itself (its 413 has our shape behind
# HAProxy: TAP 046)
is(call('POST', '/prices/poll', '/prices/poll', key => $key{writer},
	body => '{"symbols":["' . ('A' x 5000) . '"]}')->{status}, 413, 'poll: oversize body 413');
$r = call('GET', '/prices/poll/{job_id}', "/prices/poll/$job", key => $key{writer});
is_deeply([ $r->{status}, $r->{json}{job_id}, $r->{json}{status}, ref $r->{json}{runs} ],
	[ 200, $job, 'active', 'ARRAY' ], 'poll get: the job and its runs');
MarketData::API::error_ok(call('GET', '/prices/poll/{job_id}', "/prices/poll/$job", key => $key{reader}),
	403, 'forbidden', 'poll get: a reader gets 403');
MarketData::API::error_ok(call('GET', '/prices/poll/{job_id}', '/prices/poll/poll_99999', key => $key{writer}),
	404, 'no_such_job', 'poll get: unknown job 404');
MarketData::API::error_ok(call('GET', '/prices/poll/{job_id}', '/prices/poll/42', key => $key{writer}),
	404, 'no_such_job', 'poll get: malformed job id 404');
MarketData::API::error_ok(call('DELETE', '/prices/poll/{job_id}', "/prices/poll/$job", key => $key{reader}),
	403, 'forbidden', 'poll delete: a reader gets 403');
$r = call('DELETE', '/prices/poll/{job_id}', "/prices/poll/$job", key => $key{writer});
is_deeply([ $r->{status}, $r->{json}{status} ], [ 200, 'stopped' ], 'poll delete: stopped');
is($node->safe_psql('md', "SELECT count(*) FROM md.polling_jobs WHERE id = $id"), '0',
	'poll delete: the row is gone');
MarketData::API::error_ok(call('DELETE', '/prices/poll/{job_id}', "/prices/poll/$job", key => $key{writer}),
	404, 'no_such_job', 'poll delete: twice 404');

# --- public routes, metrics -------------------------------------------------------
$r = call('GET', '/health', '/health');
is($r->{status}, 200, 'health: public 200');
$r = call('GET', '/health/ready', '/health/ready');
is_deeply([ $r->{status}, $r->{json}{status}, $r->{json}{database}{status}, $r->{json}{redis}{status} ],
	[ 200, 'ok', 'ok', 'ok' ], 'ready: database and Redis ok');
is(ref $r->{json}{providers}, 'ARRAY', 'ready: providers listed');
ok(exists $r->{json}{kafka}{status}, 'ready: Kafka reported');
$r = call('GET', '/metrics', '/metrics');
is($r->{status}, 200, 'metrics: a local client without a key');
like($r->{content}, qr/^md_api_requests_total\{route="\/prices\/latest",status="200"\} \d+$/m,
	'metrics: requests by route and status');
like($r->{content}, qr/^md_api_request_duration_seconds_bucket\{route="\/prices\/latest",le="\+Inf"\}/m,
	'metrics: latency histogram');
like($r->{content}, qr/^md_api_cache_hits_total [1-9]/m, 'metrics: cache hits counted');
like($r->{content}, qr/^process_resident_memory_bytes\{worker="\d+"\} [1-9]/m, 'metrics: memory');
# a local caller may scrape whatever credentials it sends (it needs none)
is(call('GET', '/metrics', '/metrics', key => $key{reader})->{status}, 200,
	'metrics: a local client with a reader key too');
is(call('GET', '/metrics', '/metrics', key => $key{admin})->{status}, 200, 'metrics: admin 200');
is(call('GET', '/metrics', '/metrics', key => 'mdk_' . ('0' x 48))->{status}, 200,
	'metrics: a local client with an unknown key too');
$r = call('GET', '/openapi.json', '/openapi.json');
is($r->{status}, 200, 'openapi: served');
MarketData::API::error_ok($api->get('/no/such/route'), 404, 'not_found', 'unknown route: 404 error shape');
MarketData::API::error_ok($api->request('PUT', '/prices/latest?symbol=AAPL', key => $key{reader}),
	405, 'method_not_allowed', 'wrong method: 405 error shape');

# --- auth matrix ---------------------------------------------------------------------
my $now = time();
my %jwt = (
	reader => MarketData::JWT::token($secret, { sub => 'r', role => 'reader', exp => int($now) + 300 }),
	writer => MarketData::JWT::token($secret, { sub => 'w', role => 'writer', exp => int($now) + 300 }),
	expired => MarketData::JWT::token($secret, { sub => 'e', role => 'admin', exp => int($now) - 10 }),
	noexp => MarketData::JWT::token($secret, { sub => 'n', role => 'admin' }),
	none => MarketData::JWT::token($secret, { sub => 'x', role => 'admin', exp => int($now) + 300 }, alg => 'none'),
	hs512 => MarketData::JWT::token($secret, { sub => 'x', role => 'admin', exp => int($now) + 300 }, alg => 'HS512'),
	wrongkey => MarketData::JWT::token('another-secret-of-at-least-32-bytes-xxxx', { sub => 'x', role => 'admin', exp => int($now) + 300 }),
	norole => MarketData::JWT::token($secret, { sub => 'x', role => 'root', exp => int($now) + 300 }),
);
# the reader's signature over an admin's claims
require MIME::Base64;
(my $tampered = $jwt{reader}) =~ s/^([^.]+)\.[^.]+\./$1 . '.' . MIME::Base64::encode_base64url(JSON::PP->new->canonical->encode({ sub => 'r', role => 'admin', exp => int($now) + 300 })) . '.'/e;
my $L = '/prices/latest?symbol=AAPL';
my @matrix = (
	[ 'no credentials', {}, 401 ],
	[ 'malformed key', { key => 'secret' }, 401 ],
	[ 'unknown key', { key => 'mdk_' . ('a' x 48) }, 401 ],
	[ 'reader key', { key => $key{reader} }, 200 ],
	[ 'reader JWT', { bearer => $jwt{reader} }, 200 ],
	[ 'expired JWT', { bearer => $jwt{expired} }, 401 ],
	[ 'JWT without exp', { bearer => $jwt{noexp} }, 401 ],
	[ 'tampered JWT', { bearer => $tampered }, 401 ],
	[ 'alg none JWT', { bearer => $jwt{none} }, 401 ],
	[ 'HS512 JWT', { bearer => $jwt{hs512} }, 401 ],
	[ 'JWT signed with another secret', { bearer => $jwt{wrongkey} }, 401 ],
	[ 'JWT with an unknown role', { bearer => $jwt{norole} }, 401 ],
	[ 'Basic authorization', { headers => { Authorization => 'Basic YTpi' } }, 401 ],
);
for my $m (@matrix)
{
	my ($name, $cred, $status) = @$m;
	$r = call('GET', '/prices/latest', $L, %$cred);
	is($r->{status}, $status, "auth: $name -> $status");
	MarketData::API::error_ok($r, 401, 'unauthorized', "auth: $name error shape") if $status == 401;
}
MarketData::API::error_ok(call('POST', '/prices/poll', '/prices/poll', bearer => $jwt{reader},
	body => { symbols => ['AAPL'], interval => 60, provider => 'finnhub' }), 403, 'forbidden',
	'auth: reader JWT on a writer route 403');
is(call('POST', '/prices/poll', '/prices/poll', bearer => $jwt{writer},
	body => { symbols => ['IBM'], interval => 30, provider => 'finnhub' })->{status}, 202,
	'auth: writer JWT 202');
MarketData::API::error_ok(call('POST', '/prices/poll', '/prices/poll',
	body => { symbols => ['IBM'], interval => 30, provider => 'finnhub' }), 401, 'unauthorized',
	'poll: no credentials 401');
for my $route ([ 'GET', '/prices/poll/{job_id}', '/prices/poll/poll_1' ],
	[ 'DELETE', '/prices/poll/{job_id}', '/prices/poll/poll_1' ],
	[ 'GET', '/prices/history', '/prices/history?symbol=AAPL' ],
	[ 'GET', '/prices/bars', '/prices/bars?symbol=AAPL&interval=1h' ],
	[ 'GET', '/prices/average', '/prices/average?symbol=AAPL' ])
{
	MarketData::API::error_ok(call(@$route), 401, 'unauthorized', "$route->[0] $route->[1]: 401");
}

# a revoked key stops working within the key cache time (1 s here)
is(call('GET', '/prices/latest', $L, key => $revoked)->{status}, 200, 'revocable key works');
$node->safe_psql('md', "SELECT md_revoke_api_key('gone')");
my $deadline = time() + 10;
my $st;
while (time() < $deadline)
{
	$st = call('GET', '/prices/latest', $L, key => $revoked)->{status};
	last if $st == 401;
	usleep(100_000);
}
is($st, 401, 'auth: a revoked key gets 401 within the cache time');

# --- rate limit on every gated route (per-key limit 40/hour for readers) -----------
my $limited = 0;
for (1 .. 45)
{
	$r = call('GET', '/prices/latest', $L, key => $key{reader});
	if ($r->{status} == 429) { $limited = $r; last; }
}
ok($limited, 'rate limit: the reader key runs out');
MarketData::API::error_ok($limited, 429, 'rate_limited', 'rate limit: 429 error shape') if $limited;
like($limited->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/, 'rate limit: Retry-After') if $limited;
for my $route ([ 'GET', '/prices/history', '/prices/history?symbol=AAPL' ],
	[ 'GET', '/prices/bars', '/prices/bars?symbol=AAPL&interval=1h' ],
	[ 'GET', '/prices/average', '/prices/average?symbol=AAPL' ])
{
	is(call(@$route, key => $key{reader})->{status}, 429, "$route->[1]: 429 once the key is out");
}
# writers' own limit
my $wl = 0;
for (1 .. 320)
{
	$r = call('GET', '/prices/poll/{job_id}', '/prices/poll/poll_1', key => $key{writer});
	if ($r->{status} == 429) { $wl = 1; last; }
}
ok($wl, 'rate limit: writer routes limited too');
for my $route ([ 'POST', '/prices/poll', '/prices/poll' ], [ 'DELETE', '/prices/poll/{job_id}', '/prices/poll/poll_1' ])
{
	is(call(@$route, key => $key{writer}, body => { symbols => ['X'], interval => 1, provider => 'finnhub' })->{status},
		429, "$route->[0] $route->[1]: 429");
}

# --- PostgreSQL stopped: 503 with the error shape -------------------------------------------
$node->stop('fast');
MarketData::API::error_ok(call('GET', '/prices/latest', '/prices/latest?symbol=MSFT', key => $key{admin}),
	503, 'database_unavailable', 'PostgreSQL stopped: latest (cache miss) 503');
# a JWT needs no database: cached prices still answer
my $admin_jwt = MarketData::JWT::token($secret, { sub => 'a', role => 'admin', exp => int(time()) + 300 });
is(call('GET', '/prices/latest', '/prices/latest?symbol=AAPL', bearer => $admin_jwt)->{headers}{'x-cache'},
	'HIT', 'PostgreSQL stopped: cached prices still answer');
# readiness is kept MD_API_READY_CACHE_MS (2 s) per worker
wait_for('ready 503', sub { $r = call('GET', '/health/ready', '/health/ready'); $r->{status} == 503 });
is_deeply([ $r->{status}, $r->{json}{status}, $r->{json}{database}{status} ], [ 503, 'down', 'down' ],
	'PostgreSQL stopped: ready 503');
for my $route ([ 'GET', '/prices/history', '/prices/history?symbol=AAPL' ],
	[ 'GET', '/prices/bars', '/prices/bars?symbol=AAPL&interval=1h' ],
	[ 'GET', '/prices/average', '/prices/average?symbol=AAPL' ],
	[ 'GET', '/prices/poll/{job_id}', '/prices/poll/poll_1' ],
	[ 'DELETE', '/prices/poll/{job_id}', '/prices/poll/poll_1' ],
	[ 'POST', '/prices/poll', '/prices/poll' ])
{
	MarketData::API::error_ok(call(@$route, key => $key{admin},
		body => { symbols => ['IBM'], interval => 30, provider => 'finnhub' }),
		503, 'database_unavailable', "PostgreSQL stopped: $route->[0] $route->[1] 503");
}
$node->start;
$deadline = time() + 20;
while (time() < $deadline)
{
	last if call('GET', '/prices/latest', '/prices/latest?symbol=MSFT', key => $key{admin})->{status} == 200;
	usleep(100_000);
}
is(call('GET', '/prices/latest', '/prices/latest?symbol=MSFT&provider=finnhub', key => $key{admin})->{status}, 200,
	'PostgreSQL back: answers again');

# --- the OpenAPI document against what was answered -----------------------------------------
my $doc = decode_json(slurp_file("$MarketData::API::TOP/api/assets/openapi.json"));
my %documented;
for my $path (keys %{ $doc->{paths} })
{
	for my $method (keys %{ $doc->{paths}{$path} })
	{
		$documented{ uc($method) . " $path $_" } = 1 for keys %{ $doc->{paths}{$path}{$method}{responses} };
	}
}
# statuses this file cannot cause; another test or a provider does
my %elsewhere = (
	'GET /health 503' => '033_api_shutdown.pl (draining)',
	map({ ("GET /prices/stream $_" => '048_api_stream.pl') } 101, 200, 400, 401, 429),
	map({ ("POST /stream/token $_" => '048_api_stream.pl') } 200, 401),
	'GET /prices/stream 503' => 'Redis down with MD_API_RATE_LIMIT_FAIL=closed',
	'POST /stream/token 429' => 'rate limited like every route',
	'POST /stream/token 503' => 'Redis down',
	map({ ("GET $_ 200" => '045_dashboard_browser.pl') } '/', '/dashboard.js', '/dashboard.css',
		'/lightweight-charts.js', '/favicon.svg'),
	'GET /metrics 401' => '036_api_hostile.pl (a caller that is not local)',
	'GET /metrics 403' => '036_api_hostile.pl (a caller that is not local)',
);
my @undocumented = grep { !$documented{$_} } sort keys %seen;
is_deeply(\@undocumented, [], 'openapi: every answered route and status is documented');
my @unseen = grep { !$seen{$_} && !$elsewhere{$_} } sort keys %documented;
is_deeply(\@unseen, [], 'openapi: every documented route and status was answered');
# and the document's routes are the configured ones
my $conf = slurp_file("$MarketData::API::TOP/api/conf/api.conf");
my @routes = sort map { my $p = $_; $p =~ s/^\^//; $p =~ s/\[\^\/\]\+\$$/{job_id}/; $p }
  grep { $_ ne '^/.*$' } ($conf =~ /^\s*route\s+(\S+)/mg);
is_deeply(\@routes, [ sort keys %{ $doc->{paths} } ], 'openapi: paths are the configured routes');

$api->stop;
done_testing();
