# Graceful shutdown: on SIGTERM (and SIGQUIT) requests in flight finish,
# new ones are refused (503 or no connection), then Kore exits cleanly;
# the same while wrk is running: no answer but 200 or 503, no timeout.
use strict;
use warnings;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use MarketData::API;
use MarketData::Redis;
use MarketData::Services qw(wait_for);

my $node = MarketData::API::node_with_extension('main');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('w', 'writer')");
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, now())");


for my $sig ('TERM', 'QUIT')
{
	my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
		env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_WRITER => 0 });
	my $jobs_before = $node->safe_psql('md', 'SELECT count(*) FROM md.polling_jobs');

	# four requests in flight: their INSERT waits for a lock held here
	my ($in, $out, $err) = ('', '', '');
	my $locker = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('md') ], \$in, \$out, \$err);
	$in = "BEGIN; LOCK TABLE md.polling_jobs IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n";
	IPC::Run::pump($locker) until $out =~ /locked/;
	my @socks;
	for my $i (1 .. 4)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $api->port, Proto => 'tcp')
		  or die "connect: $!";
		my $body = qq({"symbols":["S$i"],"interval":60,"provider":"finnhub"});
		print $s "POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n"
		  . "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
		push @socks, $s;
	}
	ok(wait_for('4 waiting inserts', sub { $node->safe_psql('md',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") eq '4' }),
		"SIG$sig: four requests wait in the database");

	$api->signal($sig);
	ok(wait_for('refusal', sub {
		my $st = HTTP::Tiny->new(timeout => 2)->get($api->url . '/health')->{status};
		return $st == 503 || $st == 599; }), "SIG$sig: new requests are refused");
	ok(kill(0, $api->pid), "SIG$sig: Kore still runs while requests are in flight");

	$in .= "COMMIT;\n";
	IPC::Run::finish($locker);
	my $ok = 0;
	for my $s (@socks)
	{
		local $/;
		my $resp = <$s> // '';
		$ok++ if $resp =~ m{^HTTP/1.1 202};
		like($resp, qr/connection: close/i, "SIG$sig: the answer closes its connection");
	}
	is($ok, 4, "SIG$sig: all four in-flight requests finished with 202");
	is($node->safe_psql('md', 'SELECT count(*) FROM md.polling_jobs') - $jobs_before, 4,
		"SIG$sig: their jobs exist");
	my $exited = wait_for('exit', sub { waitpid($api->pid, 1) == $api->pid });
	ok($exited, "SIG$sig: Kore exited");
	is($? >> 8, 0, "SIG$sig: exit status 0") if $exited;
	delete $api->{pid} if $exited;
}

# --- under load: wrk runs while SIGTERM arrives --------------------------------------
SKIP:
{
	skip 'wrk is not installed', 3 unless system('which wrk >/dev/null 2>&1') == 0;
	my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
		env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_WRITER => 0, MD_API_CACHE_TTL => 0 });
	my ($out, $err) = ('', '');
	my $wrk = IPC::Run::start([ 'wrk', '-t2', '-c16', '-d3s', '--timeout', '5s',
		'-s', "$MarketData::API::TOP/test/wrk/statuses.lua", '-H', "X-API-Key: $key",
		$api->url . '/prices/latest?symbol=AAPL' ], '>', \$out, '2>', \$err);
	# let load build up, then stop the API under it
	wait_for('load', sub { $api->metric('md_api_requests_total{route="/prices/latest",status="200"}') > 200 });
	$api->signal('TERM');
	ok(wait_for('exit', sub { waitpid($api->pid, 1) == $api->pid }), 'under load: Kore exited');
	delete $api->{pid};
	IPC::Run::finish($wrk);
	my %st = ($out =~ /^status (\d+) (\d+)$/mg);
	ok($st{200} > 0, "under load: $st{200} requests answered 200");
	my @bad = grep { $_ != 200 && $_ != 503 } keys %st;
	is_deeply(\@bad, [], 'under load: no answer but 200 or 503 (shutting down)')
	  or diag($out);
	like($out, qr/timeout 0$/m, 'under load: no request timed out') or diag($out);
}

done_testing();
