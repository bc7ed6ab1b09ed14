# Backfill jobs run by the backfill worker: a job of many requests
# completes with the history's own bars, a kill -9 mid-job resumes at the
# cursor (no request that succeeded is sent again, no bar doubled), and a
# provider error fails the job with a clear message, keeping what was
# stored.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $fake = MarketData::FakeProvider->new(key => 'fake-key-046');
my $node = MarketData::TestDb->node('backfill', conf => "marketdata.databases = 'md'\nrestart_after_crash = on\n");
$fake->point_providers($node, 'md');

sub sql { return $node->safe_psql('md', $_[0]) }

ok($node->poll_query_until('md',
		"SELECT count(*) = 1 FROM md.worker_status WHERE worker = 'backfill' AND database = 'md'"),
	'the launcher starts a backfill worker');

# --- a job of many requests, killed mid-way -----------------------------------

# 200 ms a request (600 a minute, half of it ours): time to kill it mid-job
sql("UPDATE md.providers SET rate_limit_per_minute = 600 WHERE name = 'sandbox'");
my $job = sql("SELECT md_backfill('{BF1, BF2}', '1 minute', '2026-01-05', '2026-01-15', 'sandbox')");
is(sql("SELECT requests_total FROM md.backfill_jobs WHERE id = $job"), '20', 'a request a symbol and day');

ok($node->poll_query_until('md', "SELECT requests_done >= 4 FROM md.backfill_jobs WHERE id = $job"),
	'the job makes progress');
my $pid = sql("SELECT pid FROM md.worker_status WHERE worker = 'backfill' AND database = 'md'");
my $done_before = sql("SELECT requests_done FROM md.backfill_jobs WHERE id = $job");
kill 'KILL', $pid;
# the postmaster restarts every backend; the launcher starts the workers again
ok($node->poll_query_until('md', "SELECT state = 'succeeded' FROM md.backfill_jobs WHERE id = $job"),
	'the job completes after the worker was killed');
isnt($done_before, '20', "killed mid-job ($done_before of 20 requests done)");

is(sql("SELECT requests_done || ' ' || percent FROM md.backfill_status WHERE id = $job"), '20 100.0',
	'every request done once');
is(sql(q{SELECT count(*) FROM md.raw_responses WHERE provider = 'sandbox' AND symbol IN ('BF1', 'BF2')}),
	'20', 'no request that succeeded was sent again');
my $history = sql(q{SELECT count(*) FROM md_fetch_history('BF1', '1 minute', '2026-01-05', '2026-01-15', 'sandbox')
	WHERE kind = 'bar'});
cmp_ok($history, '>', 0, 'the sandbox has minute bars for the range');
is(sql(q{SELECT count(*) FROM md.bars WHERE symbol = 'BF1' AND "interval" = '1 minute' AND source = 'sandbox'}),
	$history, 'the bars of the history, once each');
is(sql(qq{SELECT bars_stored = (SELECT count(*) FROM md.bars WHERE symbol IN ('BF1', 'BF2')
		AND "interval" = '1 minute') FROM md.backfill_jobs WHERE id = $job}), 't', 'bars_stored counts them');
is(sql(q{SELECT count(*) FROM (
		SELECT bucket, open, high, low, close, volume FROM md.bars WHERE symbol = 'BF1' AND "interval" = '1 minute'
		EXCEPT
		SELECT ts, open, high, low, close, volume
		FROM md_fetch_history('BF1', '1 minute', '2026-01-05', '2026-01-15', 'sandbox') WHERE kind = 'bar') d}),
	'0', 'each bar equals the history bar');

# --- a provider error -----------------------------------------------------------

my $bad = sql(q{SELECT md_backfill('{AAPL, NOPE}', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')});
ok($node->poll_query_until('md', "SELECT state = 'failed' FROM md.backfill_jobs WHERE id = $bad"),
	'an unknown symbol fails the job');
like(sql("SELECT last_error FROM md.backfill_status WHERE id = $bad"), qr/^NOPE \[.*\): unknown_symbol: /,
	'its last error names the symbol, the range and the class');
is(sql(q{SELECT count(*) FROM md.bars WHERE symbol = 'AAPL' AND "interval" = '1 day' AND source = 'yahoo_finance'}),
	'10', 'the bars stored before the error are kept');
is(sql("SELECT requests_done FROM md.backfill_jobs WHERE id = $bad"), '1', 'the request that succeeded is counted');

# --- a provider that keeps refusing: retried with a growing pause, then given up

sql("ALTER SYSTEM SET marketdata.backfill_max_retries = 3");
sql('SELECT pg_reload_conf()');
my $t0 = time();
my $limited = sql(q{SELECT md_backfill('{RATELIMIT}', '1 day', '2024-09-30', '2024-10-12', 'yahoo_finance')});
ok($node->poll_query_until('md', "SELECT retries >= 1 AND state = 'running' FROM md.backfill_jobs WHERE id = $limited"),
	'a rate-limited request is retried');
ok($node->poll_query_until('md', "SELECT state = 'failed' FROM md.backfill_jobs WHERE id = $limited"),
	'three rate-limited answers in a row fail the job');
my $took = time() - $t0;
cmp_ok($took, '>=', 14, "after pauses of 5 and 10 s ($took s)");
like(sql("SELECT last_error FROM md.backfill_jobs WHERE id = $limited"),
	qr/^RATELIMIT \[.*\): gave up after 3 answers in a row without data: rate_limited/,
	'its last error says it gave up, and why');
is(sql("SELECT requests_done || ' ' || retries FROM md.backfill_jobs WHERE id = $limited"), '0 3',
	'no request done, three tries');

$node->stop;
$fake->stop;
done_testing();
