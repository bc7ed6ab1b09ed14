# GET /prices/stream under faults: a client that reads nothing is conflated
# then closed while a normal client on the same worker receives every
# price on time; heartbeats, and a WebSocket that does not answer pings is
# closed; Redis killed and back (the streams stay open, say so, and replay
# what they missed); a graceful shutdown tells every client to reconnect.
use strict;
use warnings;
use IO::Socket::INET;
use Protocol::WebSocket::Frame;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Socket qw(SOL_SOCKET SO_RCVBUF);
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
my %auth = (headers => { 'X-API-Key' => $key });
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0,
		MD_API_STREAM_BUFFER => 4096, MD_API_STREAM_SLOW_MS => 500,
		MD_API_STREAM_HEARTBEAT => 1, MD_API_STREAM_IDLE_TIMEOUT => 3 });

sub connected { my $s = shift; return $s->wait_for(sub { grep { exists $_->{retry} || ($_->{event} // '') eq 'subscribed' } $_[0]->events }, 10); }
sub named { my ($s, $name) = @_; return grep { ($_->{event} // '') eq $name } $s->events; }

# --- a client that reads nothing ------------------------------------------------------
my $slow = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
setsockopt($slow, SOL_SOCKET, SO_RCVBUF, 4096) or die "setsockopt: $!";
$slow->connect(Socket::pack_sockaddr_in($api->port, Socket::inet_aton('127.0.0.1'))) or die "connect: $!";
print $slow "GET /prices/stream?symbols=SLOW HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: $key\r\n\r\n";
my $normal = MarketData::Stream->sse($api, 'symbols=SLOW', %auth);
ok(connected($normal), 'a normal client on the same worker');
ok(wait_for('two streams', sub { $api->metric('md_api_streams_open') == 2 }), 'two streams open');

my $count = 1500;
my $t0 = time;
$node->safe_psql('md', qq{
	DO \$\$
	BEGIN
		FOR i IN 1..$count LOOP
			PERFORM md_ingest_price('SLOW', 'finnhub', 100 + i / 1000.0,
				'2024-05-01 12:00:00+00'::timestamptz + i * interval '1 ms');
			COMMIT;
		END LOOP;
	END
	\$\$});
my $t1 = time;
ok($normal->wait_for(sub { scalar($_[0]->prices) >= $count }, 10), "the normal client receives all $count prices");
my $late = time - $t1;
ok($late < 1, sprintf('on time: the last %.0f ms after the last commit (%d prices in %.1f s)',
	$late * 1000, $count, $t1 - $t0));
my @p = map { $_->{data}{price} } $normal->prices;
is_deeply(\@p, [ map { 100 + $_ / 1000 } 1 .. $count ], 'every price once, in order');
ok($api->metric('md_api_stream_conflated_total') > 0, 'the slow client\'s prices were conflated');
ok(wait_for('the slow client closed', sub { $api->metric('md_api_stream_slow_closed_total') == 1 }),
	'then the slow client is closed');
ok(wait_for('one stream', sub { $api->metric('md_api_streams_open') == 1 }), 'its stream is gone');
ok($api->metric('md_api_stream_events_total') >= $count, 'events sent are counted');
close($slow);

# --- heartbeats; a WebSocket that does not answer is closed -----------------------------
ok($normal->wait_for(sub { ($_[0]->{heartbeats} // 0) >= 2 }, 5), 'SSE heartbeats (comments) every MD_API_STREAM_HEARTBEAT');
my $silent = MarketData::Stream->ws($api, 'symbols=IDLE', %auth);
my $alive = MarketData::Stream->ws($api, 'symbols=IDLE', %auth);
ok($alive->wait_for(sub { grep { $_->{event} eq 'subscribed' } $_[0]->events }, 10), 'two WebSockets');
my $deadline = time + 5;
while (time < $deadline)
{
	$alive->pump;
	$silent->pump;
	# what a browser does on each ping: a pong
	my $pong = Protocol::WebSocket::Frame->new(type => 'pong', masked => 1, buffer => '')->to_bytes;
	syswrite($alive->{sock}, $pong);
	usleep(300_000);
}
ok($silent->closed, 'the WebSocket that did not answer for MD_API_STREAM_IDLE_TIMEOUT is closed');
ok(!$alive->closed, 'the one that answers stays open');
$alive->close;
$silent->close;

# --- Redis killed and back ------------------------------------------------------------
my $red = MarketData::Stream->sse($api, 'symbols=RED', %auth);
ok(connected($red), 'a stream');
$node->safe_psql('md', "SELECT md_ingest_price('RED', 'finnhub', 1, '2024-05-01 12:00:00+00')");
ok($red->wait_for(sub { scalar $_[0]->prices }, 5), 'a price');
$redis->stop;
ok($red->wait_for(sub { grep { $_->{data}{redis} eq 'down' } named($_[0], 'status') }, 5),
	'Redis down: the stream stays open and says so');
MarketData::API::error_ok($api->post('/stream/token', %auth), 503, 'redis_unavailable',
	'no stream token without Redis');
my $during = MarketData::Stream->sse($api, 'symbols=RED', %auth);
ok(connected($during) && $during->{status} == 200, 'a stream opens without Redis (MD_API_RATE_LIMIT_FAIL=open)');
ok(grep({ $_->{data}{redis} eq 'down' } named($during, 'status')), 'and is told Redis is down');
$during->close;
$node->safe_psql('md', "SELECT md_ingest_price('RED', 'finnhub', 2, '2024-05-01 12:00:01+00')");
$node->safe_psql('md', "SELECT md_ingest_price('RED', 'finnhub', 3, '2024-05-01 12:00:02+00')");
$redis->start;
ok($red->wait_for(sub { grep { $_->{data}{redis} eq 'up' } named($_[0], 'status') }, 10), 'Redis back: it says so');
ok($red->wait_for(sub { scalar($_[0]->prices) == 3 }, 10), 'and replays what was missed');
ok(wait_for('a live price', sub {
	$node->safe_psql('md', "SELECT md_ingest_price('RED', 'finnhub', (4 + random())::numeric, now())");
	return $red->wait_for(sub { scalar($_[0]->prices) >= 4 }, 1);
}, 40), 'then goes on live');
is(join(',', map { int $_->{data}{price} } ($red->prices)[0 .. 3]), '1,2,3,4', 'every price once');
ok(!$red->closed, 'the same stream all along');

# --- graceful shutdown ------------------------------------------------------------------
my $ws = MarketData::Stream->ws($api, 'symbols=BYE', %auth);
ok($ws->wait_for(sub { grep { $_->{event} eq 'subscribed' } $_[0]->events }, 10), 'a WebSocket too');
$api->signal('TERM');
ok($red->wait_for(sub { named($_[0], 'reconnect') }, 10), 'SIGTERM: the SSE client is told to reconnect');
ok($ws->wait_for(sub { named($_[0], 'reconnect') }, 10), 'and the WebSocket client');
ok($red->wait_for(sub { $_[0]->closed }, 10), 'then its connection is closed');
ok($ws->wait_for(sub { $_[0]->closed }, 10), 'both');
is($api->stop, 0, 'the API exits cleanly');

done_testing();
