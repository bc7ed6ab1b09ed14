# Everything at once: every hostile input of issue 12, and the class each
# stands for, thrown at a running stack (PostgreSQL with its workers,
# Kafka, Redis, the API with two workers). Then: every worker and every API
# process is the one from before, md.worker_status is healthy, and
# nothing stored before is missing.
use strict;
use warnings;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::FakeProvider;
use MarketData::Redis;
use MarketData::Services;
use MarketData::TestDb;

my $fake = MarketData::FakeProvider->new(latency_ms => 5);
my $broker = start_kafka_broker('price-events', 'relay-events', 'fx-events');
my $node = MarketData::TestDb->node('everywhere', conf => qq{
restart_after_crash = on
max_connections = 60
track_functions = 'all'
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.kafka_topic = 'relay-events'
});
$fake->point_providers($node, 'md');
my $redis = MarketData::Redis->new;
my $key = $node->safe_psql('md', "SELECT md_create_api_key('w', 'writer')");
my $api = MarketData::API->new(node => $node, redis => $redis, workers => 2,
	env => { MD_API_RATE_LIMIT_IP => 200, MD_API_RATE_LIMIT_WRITER => 0, MD_API_RATE_WINDOW => 3600,
		MD_API_TRUSTED_PROXIES => '127.0.0.1' });

# --- what is there before -------------------------------------------------------
$node->safe_psql('md', q{
	SELECT md_ingest_prices(ARRAY(SELECT 'KEEP' || g FROM generate_series(1, 50) g),
		array_fill('finnhub'::text, ARRAY[50]), ARRAY(SELECT g + 0.5 FROM generate_series(1, 50) g)::numeric[],
		array_fill('2024-06-03 14:00+00'::timestamptz, ARRAY[50]))});
$node->safe_psql('md',
	"INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{SYNKEEP}', 1, 'yahoo_finance')");
my $healthy = q{
	SELECT count(*) = 4 FROM md.worker_status
	WHERE (worker = 'consumer' AND state IN ('caught up', 'consuming'))
	   OR (worker = 'relay' AND state IN ('caught up', 'publishing'))
	   OR (worker = 'scheduler' AND state IN ('waiting for the next job', 'fetching', 'storing'))
	   OR (worker = 'launcher' AND state = 'running')};
ok($node->poll_query_until('md', $healthy), 'the workers run')
  or diag($node->safe_psql('md', 'SELECT worker, state FROM md.worker_status'));
ok($node->poll_query_until('md', "SELECT count(*) > 0 FROM md.prices WHERE symbol = 'SYNKEEP'"),
	'the good job runs');
my $stored = $node->safe_psql('md', "SELECT string_agg(symbol || '=' || price, ',' ORDER BY symbol) FROM md.prices WHERE symbol LIKE 'KEEP%'");
my $worker_pids = sub {
	return $node->safe_psql('md',
		"SELECT string_agg(worker || ':' || pid, ',' ORDER BY worker) FROM md.worker_status");
};
my $workers_before = $worker_pids->();
my @api_before = $api->worker_pids;
my $started = $node->safe_psql('md', 'SELECT pg_postmaster_start_time()');

# --- SQL: each statement must fail with a clear error, nothing else -----------
my @sql = (
	# bad rows of the configuration tables (findings 1 and 3, and their class)
	[ "INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('fx-events', '')", '23514' ],
	[ "INSERT INTO md.kafka_subscriptions (topic, group_id) VALUES ('fx-events', repeat('g', 300))", '23514' ],
	[ "INSERT INTO md.kafka_subscriptions (topic) VALUES ('')", '23514' ],
	[ "INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at) VALUES ('{X}', 60, 'sandbox', '-infinity')", '22023' ],
	[ "INSERT INTO md.polling_jobs (symbols, interval, provider, next_run_at) VALUES ('{X}', 60, 'sandbox', 'infinity')", '22023' ],
	[ "INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{X}', 0, 'sandbox')", '22023' ],
	[ "INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{}', 60, 'sandbox')", '22023' ],
	[ "INSERT INTO md.polling_jobs (symbols, interval, provider) VALUES ('{X}', 60, 'nope')", '22023' ],
	[ "UPDATE md.polling_jobs SET next_run_at = '-infinity'", '22023' ],
	# functions: arrays without bound, values out of range (finding 6 and its class)
	[ "SELECT count(*) FROM md_fetch_many(ARRAY(SELECT 'S' || g FROM generate_series(1, 100000) g), 'sandbox')", '22023' ],
	[ "SELECT md_poll(ARRAY(SELECT 'S' || g FROM generate_series(1, 501) g), 60, 'sandbox')", '22023' ],
	[ "SELECT md_ingest_price('GOOD', 'finnhub', 'NaN', now())", '22\\w{3}' ],
	[ "SELECT md_ingest_price('GOOD', 'finnhub', 1, '-infinity')", '22\\w{3}' ],
	[ "SELECT md_ingest_price(repeat('A', 100000), 'finnhub', 1, now())", '22023' ],
	[ "SELECT md_price(E'\\u00e9\\u00e9')", '22023' ],
	[ "SELECT md_price('AAPL', 'nasdaq_magic')", '22023' ],
);
for my $case (@sql)
{
	my ($q, $state) = @$case;
	my ($rc, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\n$q", timeout => 30);
	ok($rc != 0 && $err =~ /ERROR:  $state:/, "SQL refused with $state: " . substr($q, 0, 70))
	  or diag("rc $rc: $err");
}

# --- Kafka: messages that are not price events -----------------------------------
my $junk = join("\n", 'not json', '{"symbol":"","price":1,"timestamp":"2024-06-03T14:00:00Z","source":"finnhub"}',
	'{"symbol":"JUNK","price":"NaN","timestamp":"2024-06-03T14:00:00Z","source":"finnhub"}',
	'{"symbol":"JUNK","price":1,"timestamp":"-infinity","source":"finnhub"}',
	"\xff\xfe", '{"symbol":"GOODK","price":3,"timestamp":"2024-06-03T14:00:00Z","source":"finnhub"}') . "\n";
my ($out, $err);
IPC::Run::run([ 'kcat', '-P', '-b', $broker->{bootstrap}, '-t', 'price-events' ],
	'<', \$junk, '>', \$out, '2>', \$err) or die "kcat failed: $err";
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.prices WHERE symbol = 'GOODK'"),
	'Kafka: the good message is stored');
ok($node->poll_query_until('md', "SELECT count(*) >= 5 FROM md.dead_letters WHERE source = 'kafka'"),
	'Kafka: the others are dead letters');

# --- REST: raw requests ---------------------------------------------------------
my $body40 = '{"symbols":["' . ('A' x 39) . "\xc3\xa9" . '"],"interval":60,"provider":"finnhub"}';
my @raw = (
	"GET /nope\xff HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /" . ("\xc3\xa9" x 100) . " HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nContent-Type: application/json\r\n"
	  . "Content-Length: " . length($body40) . "\r\n\r\n$body40",
	"GET /prices/latest?symbol=AAPL HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /prices/latest?" . ('a=1&' x 2100) . "symbol=AAPL HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " . ('b' x 65536) . "\r\n\r\n",
	"GET /health HTTP/1.1\r\nHost: x\r\n" . join('', map { "X-H$_: v\r\n" } 1 .. 40) . "\r\n",
	"POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nContent-Length: 99999999999\r\n\r\n",
	"POST /prices/poll HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
	"GARBAGE\r\n\r\n",
	"GET /health HTTP/1.1\r\n\r\n",
	"\x00\x01\x02\x03\r\n\r\n",
	"GET /prices/latest?symbol=%ff%fe HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"GET /prices/latest?symbol=AAPL&symbol=MSFT HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"GET /prices/history?symbol=AAPL&from=-infinity&to=infinity HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"GET /prices/history?symbol=AAPL&limit=99999999999999999999 HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"GET /prices/latest?symbol=AAPL HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " . join(', ', ('192.0.2.1') x 300) . "\r\n\r\n",
	"GET /prices/poll/poll_99999999999999999999 HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"DELETE /prices/poll/poll_\xff HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
	"HEAD /prices/latest?symbol=AAPL HTTP/1.1\r\nHost: x\r\nX-API-Key: $key\r\n\r\n",
);
for my $i (0 .. $#raw)
{
	my $got = $api->raw($raw[$i], timeout => 2, responses => 1);
	my ($r) = MarketData::API::responses($got);
	# Kore's own refusals (400, 413, 414 ...) have no body; ours have the error shape
	my $ok = !$r || $r->[0] < 400 || $r->[2] eq '' || eval { decode_json($r->[2])->{error}{code} };
	ok($ok, "raw request $i: " . ($r ? $r->[0] : 'closed') . ', no broken body');
}
# bodies that are not what the route wants
for my $b ('', '{', '[]', '{"symbols":' . ('[' x 5000) . ('null' . (']' x 5000)) . '}',
	'{"symbols":["AAPL"],"interval":1e308,"provider":"finnhub"}',
	encode_json({ symbols => [ map { "S$_" } 1 .. 600 ], interval => 60, provider => 'sandbox' }),
	encode_json({ symbols => ['AAPL'], interval => 60, provider => "fin\x{e9}hub" }))
{
	my $r = $api->post('/prices/poll', key => $key, body => $b);
	ok($r->{status} >= 400 && $r->{status} < 500 && ref $r->{json} eq 'HASH',
		"bad body: $r->{status} in the error shape");
}
# random keys: limited, not each a database look-up beyond the limit
my %status;
$status{ $api->get('/prices/latest?symbol=AAPL',
		key => 'mdk_' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 24))->{status} }++ for 1 .. 250;
ok(($status{429} // 0) > 0, 'random keys end in 429s');

# --- afterwards ---------------------------------------------------------------
is($worker_pids->(), $workers_before, 'every worker is the process it was');
is(join(',', $api->worker_pids), join(',', @api_before), 'every API worker is the process it was');
is($node->safe_psql('md', 'SELECT pg_postmaster_start_time()'), $started, 'no crash restart of the server');
ok($node->poll_query_until('md', $healthy), 'md.worker_status: every worker healthy')
  or diag($node->safe_psql('md', 'SELECT worker, state, last_error FROM md.worker_status'));
my $last_run = $node->safe_psql('md', 'SELECT coalesce(max(id), 0) FROM md.job_runs');
ok($node->poll_query_until('md', qq{
	SELECT count(*) >= 2 FROM md.job_runs r JOIN md.polling_jobs j ON j.id = r.job_id
	WHERE j.symbols = '{SYNKEEP}' AND r.status = 'succeeded' AND r.id > $last_run}),
	'the good job still runs');
is($node->safe_psql('md', "SELECT string_agg(symbol || '=' || price, ',' ORDER BY symbol) FROM md.prices WHERE symbol LIKE 'KEEP%'"),
	$stored, 'every price stored before is still there, unchanged');
is($node->safe_psql('md', "SELECT count(*) FROM md.polling_jobs"), '1', 'no job was added by a refused input');
is($api->get('/health')->{status}, 200, 'the API answers');

$api->stop;
$node->stop;
done_testing();
