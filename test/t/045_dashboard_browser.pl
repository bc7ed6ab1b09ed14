# The dashboard (GET /) in a real browser: Debian's chromium, headless,
# driven by playwright-core (test/browser/dashboard.mjs), loads the page
# from the API, finds the expected number of one-minute candles of a seeded
# symbol, sees a price ingested by SQL move the last candle and the price
# table within 1 s (over the stream, opened with a stream token), loads
# nothing from anywhere else, and leaves a screenshot (dashboard.png in the
# test's log directory).
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use MarketData::API;
use MarketData::Redis;

plan skip_all => 'chromium is not installed (make deps)' unless -x '/usr/bin/chromium';

my $redis = MarketData::Redis->new;
my $node = MarketData::API::node_with_extension('main');
$node->safe_psql('postgres', "ALTER SYSTEM SET marketdata.redis_url = '" . $redis->url . "'");
$node->reload;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('browser', 'reader')");
# 30 prices one minute apart, the newest now: 30 one-minute candles
$node->safe_psql('md', q{SELECT md_ingest_price('DASH', 'finnhub', 100 + k, now() - (29 - k) * interval '1 minute')
	FROM generate_series(0, 29) k});
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
	env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0 });

for my $f ([ '/', qr{text/html} ], [ '/dashboard.js', qr{javascript} ], [ '/dashboard.css', qr{text/css} ],
	[ '/lightweight-charts.js', qr{javascript} ], [ '/favicon.svg', qr{image/svg\+xml} ])
{
	my $r = $api->get($f->[0]);
	is($r->{status}, 200, "GET $f->[0]");
	like($r->{headers}{'content-type'}, $f->[1], 'its content type');
}
like($api->get('/')->{headers}{'content-security-policy'}, qr/default-src 'none'/,
	'a Content-Security-Policy: nothing from elsewhere');

my $out = $PostgreSQL::Test::Utils::log_path;
my ($in, $got, $err) = ('', '', '');
my $browser = IPC::Run::start(
	[ 'node', "$MarketData::API::TOP/test/browser/dashboard.mjs", $api->url, $key, 'DASH', 30, $out ],
	'<', \$in, '>', \$got, '2>', \$err, IPC::Run::timeout(90));
sub wait_line
{
	my ($re) = @_;
	my $deadline = time + 60;
	while (time < $deadline)
	{
		return $1 if $got =~ $re;
		last if $got =~ /^ERROR/m || !$browser->pumpable;
		$browser->pump_nb;
		usleep(10_000);
	}
	return $got =~ $re ? $1 : undef;
}
is(wait_line(qr/^CANDLES (\d+)$/m), 30, 'the chart has one candle per minute of the seeded prices');
ok(defined wait_line(qr/^(READY)$/m), 'the page is live: stream open, price table filled')
	or diag("browser: $got $err");
$node->safe_psql('md', "SELECT md_ingest_price('DASH', 'finnhub', 142.5, now())");
$in .= "INGESTED 142.5\n";
my $ms = wait_line(qr/^UPDATED (\d+)$/m);
ok(defined $ms && $ms < 1000, "a price ingested by SQL moves the last candle and the table within 1 s ("
	. ($ms // 'never') . ' ms)') or diag("browser: $got $err");
my $after = wait_line(qr/^UPDATED \d+\nCANDLES (\d+)$/m);
ok(defined $after && ($after == 30 || $after == 31), 'the last candle moved (or the minute turned: one more)');
my $shot = wait_line(qr/^SCREENSHOT (\S+)$/m);
ok(defined $shot && -s $shot > 10_000, "a screenshot: " . ($shot // 'none'));
$browser->finish;
ok(!$browser->result, 'the browser script ends cleanly') or diag("browser: $got $err");
unlike($got, qr/^EXTERNAL/m, 'nothing is loaded from another host (no CDN)');
unlike($got, qr/^CONSOLE/m, 'no error in the page\'s console') or diag($got);

done_testing();
