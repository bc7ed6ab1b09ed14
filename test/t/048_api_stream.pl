# GET /prices/stream (SSE and WebSocket) and POST /stream/token: a price
# ingested with SQL reaches both kinds of stream within 100 ms; WebSocket
# subscribe/unsubscribe; resume with Last-Event-ID (and since) after a
# forced disconnect delivers every price exactly once; stream tokens
# expire, are single-use and never authenticate anything else; open
# streams are limited per caller and IP across two API instances.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for);
use MarketData::Stream;

my $redis = MarketData::Redis->new;
my $node = MarketData::API::node_with_extension('main');
$node->safe_psql('postgres', "ALTER SYSTEM SET marketdata.redis_url = '" . $redis->url . "'");
$node->reload;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('r', 'reader')");
my $key2 = $node->safe_psql('md', "SELECT md_create_api_key('r2', 'reader')");

my %env = (MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0,
	MD_API_STREAM_MAX_PER_KEY => 3, MD_API_STREAM_MAX_PER_IP => 5,
	MD_API_STREAM_TOKEN_TTL => 2, MD_API_STREAM_MAX_SYMBOLS => 5);
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1, env => \%env);
my %auth = (headers => { 'X-API-Key' => $key });

my $n = 0;
sub ingest
{
	my ($symbol, $price) = @_;
	$n++;
	$node->safe_psql('md', "SELECT md_ingest_price('$symbol', 'finnhub', $price,"
		  . " '2024-05-01 12:00:00+00'::timestamptz + interval '$n s')");
}
sub connected { my $s = shift; return $s->wait_for(sub { grep { exists $_->{retry} || ($_->{event} // '') eq 'subscribed' } $_[0]->events }, 10); }

# --- SSE: a price ingested by SQL arrives within 100 ms ---------------------------
my $sse = MarketData::Stream->sse($api, 'symbols=SSEA,sseb', %auth);
ok(connected($sse), 'an SSE stream opens');
is($sse->{status}, 200, 'status 200');
like($sse->{headers}, qr/content-type: text\/event-stream/i, 'Content-Type: text/event-stream');
ingest('SSEA', 101.25);
my $t0 = time;
ok($sse->wait_for(sub { scalar $_[0]->prices }, 5), 'the price arrives');
my $lat = time - $t0;
ok($lat < 0.1, sprintf('within 100 ms of the commit (%.1f ms)', $lat * 1000));
my ($e) = $sse->prices;
is($e->{data}{symbol}, 'SSEA', 'the event\'s symbol');
is($e->{data}{price}, 101.25, 'its price');
is($e->{data}{source}, 'finnhub', 'its source (the design\'s price event)');
like($e->{data}{timestamp}, qr/^2024-05-01T12:00:0\dZ$/, 'its market time');
like($e->{id}, qr/^\d+:finnhub:SSEA$/, 'an id: market time, provider, symbol');
ingest('OTHER', 5);
ingest('SSEB', 7);
ok($sse->wait_for(sub { scalar($_[0]->prices) == 2 }, 5), 'the second symbol arrives');
is(join(',', map { $_->{data}{symbol} } $sse->prices), 'SSEA,SSEB', 'an unsubscribed symbol does not');

# --- WebSocket: prices, subscribe and unsubscribe ---------------------------------
my $ws = MarketData::Stream->ws($api, 'symbols=WSA', %auth);
ok($ws->wait_for(sub { grep { $_->{event} eq 'subscribed' } $_[0]->events }, 10), 'a WebSocket opens');
my ($sub) = grep { $_->{event} eq 'subscribed' } $ws->events;
is_deeply($sub->{data}{symbols}, ['WSA'], 'subscribed to the symbols of the URL');
ingest('WSA', 42.5);
$t0 = time;
ok($ws->wait_for(sub { scalar $_[0]->prices }, 5), 'a price arrives over the WebSocket');
$lat = time - $t0;
ok($lat < 0.1, sprintf('within 100 ms of the commit (%.1f ms)', $lat * 1000));
($e) = $ws->prices;
is($e->{data}{symbol}, 'WSA', 'its symbol');
is($e->{data}{price}, 42.5, 'its price');
like($e->{id}, qr/^\d+:finnhub:WSA$/, 'its id');

$ws->send_json({ action => 'subscribe', symbols => ['wsb'] });
ok($ws->wait_for(sub { grep { $_->{event} eq 'subscribed' && @{ $_->{data}{symbols} } == 2 } $_[0]->events }, 5),
	'subscribe adds a symbol');
ingest('WSB', 3);
ok($ws->wait_for(sub { grep { $_->{data}{symbol} eq 'WSB' } $_[0]->prices }, 5), 'its prices arrive');
$ws->send_json({ action => 'unsubscribe', symbols => ['WSA'] });
ok($ws->wait_for(sub { grep { $_->{event} eq 'subscribed' && "@{ $_->{data}{symbols} }" eq 'WSB' } $_[0]->events }, 5),
	'unsubscribe removes one');
ingest('WSA', 43);
ingest('WSB', 4);
ok($ws->wait_for(sub { grep { $_->{data}{price} == 4 } $_[0]->prices }, 5), 'the other still arrives');
is(scalar(grep { $_->{data}{symbol} eq 'WSA' } $ws->prices), 1, 'the unsubscribed symbol no longer does');
for my $bad ([ { action => 'subscribe', symbols => ['*'] }, qr/not allowed/, '"*" is refused' ],
	[ { action => 'subscribe', symbols => [ map { "S$_" } 1 .. 6 ] }, qr/at most 5 symbols/, 'more than MD_API_STREAM_MAX_SYMBOLS is refused' ],
	[ { action => 'dance' }, qr/subscribe or unsubscribe/, 'an unknown action is refused' ],
	[ 'not json', qr/JSON/, 'a message that is not JSON is refused' ])
{
	my $before = grep { $_->{event} eq 'error' } $ws->events;
	$ws->send_json($bad->[0]);
	ok($ws->wait_for(sub { grep({ $_->{event} eq 'error' } $_[0]->events) > $before }, 5), $bad->[2]);
	my @errors = grep { $_->{event} eq 'error' } $ws->events;
	like($errors[-1]{data}{message}, $bad->[1], 'with a reason');
}
ok(!$ws->closed, 'a bad message does not close the WebSocket');

# --- bad requests ------------------------------------------------------------------
MarketData::API::error_ok($api->get('/prices/stream', %auth), 400, 'missing_symbols', 'symbols is required');
MarketData::API::error_ok($api->get('/prices/stream?symbols=*', %auth), 400, undef, '"*" is refused');
MarketData::API::error_ok($api->get('/prices/stream?symbols=' . join(',', map { "S$_" } 1 .. 6), %auth),
	400, 'bad_symbols', 'too many symbols are refused');
MarketData::API::error_ok($api->get('/prices/stream?symbols=A&channels=bars_1h', %auth), 400, 'bad_channels',
	'an unknown channel is refused');
MarketData::API::error_ok($api->get('/prices/stream?symbols=A'), 401, 'unauthorized', 'no credentials: 401');
MarketData::API::error_ok($api->get("/prices/stream?symbols=A&api_key=$key"), 400, 'key_in_url',
	'an API key in the URL is refused');

# --- resume: Last-Event-ID after a forced disconnect -------------------------------
my $first = MarketData::Stream->sse($api, 'symbols=RES1,RES2', %auth);
ok(connected($first), 'a stream to resume');
ingest('RES1', 1);
ok($first->wait_for(sub { scalar $_[0]->prices }, 5), 'its first price');
my $last = $first->last_id;
$first->close;	# killed: a forced disconnect
ingest('RES1', 2);
ingest('RES2', 3);
ingest('RES1', 4);
my $again = MarketData::Stream->sse($api, 'symbols=RES1,RES2',
	headers => { 'X-API-Key' => $key, 'Last-Event-ID' => $last });
ok($again->wait_for(sub { grep { $_->{event} eq 'replay' } $_[0]->events }, 10), 'the replay ends with a replay event');
ingest('RES2', 5);
ok($again->wait_for(sub { grep { $_->{data}{price} == 5 } $_[0]->prices }, 5), 'then the stream goes on live');
is(join(',', map { $_->{data}{price} } $again->prices), '2,3,4,5', 'every price once, in order, none before the id');
my ($replay) = grep { $_->{event} eq 'replay' } $again->events;
is($replay->{data}{complete}, JSON::PP::true, 'the replay says it is complete');
$again->close;

# WebSocket: since=
my $wsr = MarketData::Stream->ws($api, "symbols=RES1,RES2&since=$last", %auth);
ok($wsr->wait_for(sub { grep { $_->{event} eq 'replay' } $_[0]->events }, 10), 'WebSocket since= replays');
is(join(',', map { $_->{data}{price} } $wsr->prices), '2,3,4,5', 'every price after the id once');
$wsr->close;
MarketData::API::error_ok($api->get('/prices/stream?symbols=A&since=nonsense', %auth), 400, undef,
	'a since that is no event id is refused');
my $unknown = MarketData::Stream->sse($api, 'symbols=RES1',
	headers => { 'X-API-Key' => $key, 'Last-Event-ID' => '1:finnhub:RES1' });
ok($unknown->wait_for(sub { grep { $_->{event} eq 'replay' } $_[0]->events }, 10), 'an unknown id replays the window');
($replay) = grep { $_->{event} eq 'replay' } $unknown->events;
is($replay->{data}{complete}, JSON::PP::false, 'and says the replay may be partial');
$unknown->close;

# --- stream tokens ------------------------------------------------------------------
my $r = $api->post('/stream/token', %auth);
is($r->{status}, 200, 'POST /stream/token');
my $token = $r->{json}{token};
like($token, qr/^mdst_[0-9a-f]{48}$/, 'a token');
is($r->{json}{expires_in}, 2, 'valid for MD_API_STREAM_TOKEN_TTL');
MarketData::API::error_ok($api->post('/stream/token'), 401, 'unauthorized', 'no token without credentials');
MarketData::API::error_ok($api->get("/prices/latest?symbol=SSEA&token=$token"), 401, 'unauthorized',
	'a stream token does not authenticate REST');
my $ts = MarketData::Stream->sse($api, "symbols=TOK&token=$token");
ok(connected($ts), 'the token opens a stream (no header, as EventSource)');
ingest('TOK', 9);
ok($ts->wait_for(sub { scalar $_[0]->prices }, 5), 'which receives prices');
$ts->close;
MarketData::API::error_ok($api->get("/prices/stream?symbols=TOK&token=$token"), 401, 'unauthorized',
	'a token is single-use');
$token = $api->post('/stream/token', %auth)->{json}{token};
sleep 3;
MarketData::API::error_ok($api->get("/prices/stream?symbols=TOK&token=$token"), 401, 'unauthorized',
	'an expired token is refused');
MarketData::API::error_ok($api->get('/prices/stream?symbols=TOK&token=mdst_' . ('0' x 48)), 401, 'unauthorized',
	'an unknown token is refused');
$token = $api->post('/stream/token', %auth)->{json}{token};
my $wst = MarketData::Stream->ws($api, "symbols=TOK&token=$token");
ok($wst->wait_for(sub { grep { $_->{event} eq 'subscribed' } $_[0]->events }, 10), 'a token opens a WebSocket');
$wst->close;

# --- limits per caller and IP, across two instances ----------------------------------
$sse->close;
$ws->close;
ok(wait_for('streams closed', sub { $api->metric('md_api_streams_open') == 0 }), 'closed streams are not counted');
my @open = map { MarketData::Stream->sse($api, 'symbols=LIM', %auth) } 1 .. 3;
ok(connected($_), 'stream within the per-key limit') for @open;
my $api2 = MarketData::API->new(node => $node, redis => $redis, workers => 1, env => \%env);
$r = $api2->get('/prices/stream?symbols=LIM', %auth);
MarketData::API::error_ok($r, 429, 'too_many_streams', 'the key\'s 4th stream, on another instance: 429');
like($r->{json}{error}{message}, qr/caller/, 'the caller\'s limit');
ok($r->{headers}{'retry-after'}, 'with Retry-After');
my @open2 = map { MarketData::Stream->sse($api2, 'symbols=LIM', headers => { 'X-API-Key' => $key2 }) } 1 .. 2;
ok(connected($_), 'another key\'s stream') for @open2;
$r = $api2->get('/prices/stream?symbols=LIM', headers => { 'X-API-Key' => $key2 });
MarketData::API::error_ok($r, 429, 'too_many_streams', 'the IP\'s 6th stream: 429');
like($r->{json}{error}{message}, qr/IP/, 'the IP\'s limit');
$open[0]->close;
ok(wait_for('the stream closed', sub { $api->metric('md_api_streams_open') == 2 }), 'one stream fewer');
my $more = MarketData::Stream->sse($api2, 'symbols=LIM', %auth);
ok(connected($more), 'a closed stream frees its place');
$_->close for @open, @open2, $more;
$api2->stop;

done_testing();
