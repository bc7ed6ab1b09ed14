# Fuzzing through the real servers, for the code that needs the PostgreSQL
# backend or Kore: zzuf (Debian) mutates inputs taken from the tests'
# fixtures, for FUZZ_SECONDS (default 20) seconds per target:
#   providers  each provider's parser: the fake provider serves mutated
#              copies of test/fixtures/providers, md_fetch_many reads them
#   kafka      the price-event decoder: the test broker carries mutated
#              events to the consumer
#   secrets    the secrets file reader: a mutated secrets file per fetch
#   api        the API's query strings, headers and JSON bodies: mutated
#              raw HTTP requests
# Each target must leave no crash, no sanitizer report, no lost worker and
# no server log line of a terminated process; every fetch and every message
# is accounted for. Prints "fuzz <target>: N executions".
use strict;
use warnings;
use File::Copy;
use File::Path qw(make_path);
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use MarketData::API;
use MarketData::FakeProvider;
use MarketData::Redis;
use MarketData::Services;

my $seconds = $ENV{FUZZ_SECONDS} // 20;
my $top = MarketData::FakeProvider::top();
my $work = PostgreSQL::Test::Utils::tempdir('fuzz');
my $seed = $ENV{FUZZ_SEED} // int(time());
note("zzuf seeds from $seed (FUZZ_SEED)");
my $next_seed = $seed;

# mutate($file): a zzuf-mutated copy of the file's bytes
sub mutate
{
	my ($file) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'zzuf', '-s', $next_seed++, '-r', '0.001:0.03', 'cat', $file ],
		'>', \$out, '2>', \$err);
	return $out;
}

sub slurp { my ($f) = @_; open(my $fh, '<:raw', $f) or die "$f: $!"; local $/; return <$fh>; }
sub spew { my ($f, $d) = @_; open(my $fh, '>:raw', $f) or die "$f: $!"; print $fh $d; close $fh; }

# polygon's key comes from the secrets file (fuzzed below), the others'
# from the environment
my $secrets = "$work/secrets.conf";
my $secrets_seed = "$work/secrets.seed";
spew($secrets_seed, "# provider = key\npolygon = fuzz-key\n  polygon=  k-2 \nalpha_vantage = x=y=z\n\nyahoo_finance\n");
spew($secrets, slurp($secrets_seed));
chmod 0600, $secrets;
my $broker = start_kafka_broker('price-events', 'relay-events');
my $node = PostgreSQL::Test::Cluster->new('fuzz');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
# the relay publishes elsewhere: its own topic is never consumed back (issue 12)
marketdata.kafka_topic = 'relay-events'
marketdata.consumer_batch_ms = 50
marketdata.circuit_breaker_failures = 0
marketdata.secrets_file = '$secrets'
});
{
	local %ENV = (%ENV, MARKETDATA_FINNHUB_KEY => 'fuzz-key', MARKETDATA_ALPHA_VANTAGE_KEY => 'fuzz-key');
	delete $ENV{MARKETDATA_POLYGON_KEY};
	$node->start;
}
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');
$node->safe_psql('md', 'UPDATE md.providers SET rate_limit_per_minute = 1000000, max_concurrency = 32');

# the server log since $offset holds nothing of a crash
sub log_clean
{
	my ($offset, $name) = @_;
	my $log = slurp($node->logfile);
	$log = substr($log, $offset);
	my @bad = $log =~ /^.*(?:terminated by signal|PANIC|TRAP:|was terminated|AddressSanitizer|runtime error:).*$/mg;
	ok(!@bad, "$name: no crash in the server log") or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
}

# --- providers: mutated fixtures served by the fake provider ----------------
{
	my $dir = "$work/providers";
	my %seeds;
	for my $p ('yahoo', 'alphavantage', 'finnhub', 'polygon')
	{
		make_path("$dir/$p");
		$seeds{$p} = [ glob("$top/test/fixtures/providers/$p/*.[0-9][0-9][0-9].*") ];
	}
	my $fake = MarketData::FakeProvider->new(fixtures => $dir);
	$fake->point_providers($node, 'md');
	my %name = (yahoo => 'yahoo_finance', alphavantage => 'alpha_vantage',
		finnhub => 'finnhub', polygon => 'polygon');
	my $offset = -s $node->logfile;
	my ($execs, $rows) = (0, 0);
	my $deadline = time() + $seconds;
	my $round = 0;
	while (time() < $deadline)
	{
		for my $p (sort keys %seeds)
		{
			my @syms;
			for my $i (1 .. 25)
			{
				my $s = $seeds{$p}[ ($round + $i) % @{ $seeds{$p} } ];
				my ($status, $ext) = $s =~ /\.(\d{3})\.(\w+)$/;
				my $sym = "F$round" . "X$i";
				spew("$dir/$p/$sym.$status.$ext", mutate($s));
				push @syms, $sym;
			}
			my $list = join(',', map { "'$_'" } @syms);
			$rows += $node->safe_psql('md',
				"SELECT count(*) FROM md_fetch_many(ARRAY[$list], '$name{$p}')");
			$execs += @syms;
		}
		unlink glob("$dir/*/F$round" . 'X*');
		$round++;
	}
	diag("fuzz providers: $execs executions");
	is($rows, $execs, 'providers: every mutated answer gave a row');
	my $served = $fake->requests;
	cmp_ok($node->safe_psql('md', "SELECT count(*) FROM md.raw_responses WHERE symbol LIKE 'F%X%'"),
		'>=', $served, "providers: every answer served ($served) is kept in md.raw_responses");
	log_clean($offset, 'providers');
	$fake->stop;
}

# --- kafka: mutated price events through the broker to the consumer ---------
{
	ok($node->poll_query_until('md',
			"SELECT state = 'caught up' FROM md.worker_status WHERE worker = 'consumer'"),
		'kafka: the consumer is assigned');
	my $seedfile = "$work/events";
	spew($seedfile, join('', map {
		my $t = 1711915200 + $_;
		(qq({"symbol":"FZ$_","price":187.$_,"timestamp":"2024-03-31T20:00:${\ sprintf('%02d', $_ % 60)}Z","source":"yahoo_finance","raw_response_id":"$_"}\n),
		 qq({"symbol":"FE$_","price":"12.5","timestamp":$t,"volume":100,"source":"finnhub"}\n))
	} 1 .. 50));
	my $offset = -s $node->logfile;
	my $execs = 0;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		my $batch = mutate($seedfile);
		$batch =~ s/\n\n+/\n/g;
		$batch =~ s/^\n//;
		my @lines = grep { length } split /\n/, $batch;
		next unless @lines;
		my ($out, $err);
		IPC::Run::run([ 'kcat', '-P', '-b', $broker->{bootstrap}, '-t', 'price-events' ],
			'<', \(join("\n", @lines) . "\n"), '>', \$out, '2>', \$err)
		  or die "kcat failed: $err";
		$execs += @lines;
	}
	diag("fuzz kafka: $execs executions");
	ok($node->poll_query_until('md',
			"SELECT coalesce(sum(lag), 0) = 0 FROM md.kafka_status WHERE topic = 'price-events'"),
		'kafka: every mutated message consumed');
	# kcat's line count is not exactly what the broker got (about 0.3%
	# fewer): the broker's high watermarks are what counts, and lag 0 above
	# says every one of them is stored
	my $held = $node->safe_psql('md', q{SELECT coalesce(sum(stored_offset + lag), 0)
		FROM md.kafka_status WHERE topic = 'price-events'});
	cmp_ok($held, '>', 0.9 * $execs, "kafka: the broker got the messages ($held)");
	cmp_ok($node->safe_psql('md', 'SELECT count(*) FROM md.dead_letters'), '>', 0,
		'kafka: broken messages are dead letters, not lost');
	is($node->safe_psql('md', "SELECT count(*) FROM md.worker_status WHERE worker = 'consumer'"), '1',
		'kafka: the consumer is still there');
	log_clean($offset, 'kafka');
}

# --- secrets: a mutated secrets file for each fetch -------------------------
{
	$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://127.0.0.1:1'");
	my $offset = -s $node->logfile;
	my $execs = 0;
	my $deadline = time() + $seconds;
	my $psql = $node->background_psql('md');
	while (time() < $deadline)
	{
		spew($secrets, mutate($secrets_seed));
		# polygon has no environment key: the file is read at every fetch
		$psql->query(q{SELECT count(*) FROM md_fetch_many(ARRAY['S1'], 'polygon')});
		$execs++;
	}
	$psql->quit;
	diag("fuzz secrets: $execs executions");
	log_clean($offset, 'secrets');
}

# --- api: mutated HTTP requests --------------------------------------------
{
	my $redis = MarketData::Redis->new;
	my $reader = $node->safe_psql('md', "SELECT md_create_api_key('fz-r', 'reader')");
	my $writer = $node->safe_psql('md', "SELECT md_create_api_key('fz-w', 'writer')");
	$node->safe_psql('md', "UPDATE md.providers SET enabled = false WHERE name <> 'sandbox'");
	my $api = MarketData::API->new(node => $node, redis => $redis, workers => 1,
		env => { MD_API_RATE_LIMIT_IP => 0, MD_API_RATE_LIMIT_READER => 0, MD_API_RATE_LIMIT_WRITER => 0,
			MD_API_JWT_SECRET => 'a-fuzzing-secret-of-at-least-32-bytes-long' });
	my $port = $api->port;
	my $body = '{"symbols":["AAPL","MSFT"],"interval":3600,"provider":"sandbox"}';
	my @seeds = (
		"GET /prices/latest?symbol=AAPL&provider=sandbox HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: $reader\r\nConnection: close\r\n\r\n",
		"GET /prices/history?symbol=AAPL&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z&limit=10 HTTP/1.1\r\nHost: x\r\nX-API-Key: $reader\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\nConnection: close\r\n\r\n",
		"POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $writer\r\nContent-Type: application/json\r\nContent-Length: "
		  . length($body) . "\r\nConnection: close\r\n\r\n$body",
		"GET /prices/average?symbol=AAPL&window=5 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjQxMDI0NDQ4MDAsInJvbGUiOiJyZWFkZXIiLCJzdWIiOiJmIn0.x\r\nConnection: close\r\n\r\n",
		"DELETE /prices/poll/poll_1 HTTP/1.1\r\nHost: x\r\nX-API-Key: $writer\r\nConnection: close\r\n\r\n",
	);
	my @files;
	for my $i (0 .. $#seeds) { spew("$work/req$i", $seeds[$i]); push @files, "$work/req$i"; }
	# one request, its answer's status ('none': no answer)
	my $send = sub {
		my ($req) = @_;
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 3)
		  or die "connect to the API: $!";
		$s->print($req);
		$s->shutdown(1);
		my $answer = '';
		eval {
			local $SIG{ALRM} = sub { die "timeout\n" };
			alarm 5;
			while (my $n = $s->sysread(my $chunk, 65536)) { $answer .= $chunk; }
			alarm 0;
		};
		close $s;
		return $answer =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 'none';
	};
	# the inputs of past findings first: none may cost a worker (Kore may
	# drop a request it cannot read without an answer)
	for my $f (sort glob("$top/test/fuzz/regressions/api/*"))
	{
		my $name = $f =~ s{.*/}{}r;
		$send->(slurp($f));
		is($api->get('/health')->{status}, 200, "api: regression $name: still answering");
		unlike(slurp($api->log_file), qr/exited with status/, "api: regression $name: no worker lost");
	}
	my $offset = -s $node->logfile;
	my ($execs, %status) = (0);
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		$status{ $send->(mutate($files[ $execs % @files ])) }++;
		$execs++;
	}
	diag("fuzz api: $execs executions; statuses: "
		  . join(' ', map { "$_=$status{$_}" } sort keys %status));
	ok(!$status{500}, 'api: no 500 answers') or diag("500s: $status{500}");
	is($api->get('/health')->{status}, 200, 'api: still answering');
	my $klog = slurp($api->log_file);
	my @bad = $klog =~ /^.*(?:exited|signal|AddressSanitizer|runtime error:|fatal).*$/mgi;
	ok(!@bad, 'api: no worker lost, no sanitizer report') or diag(join("\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]));
	log_clean($offset, 'api');
}

done_testing();
