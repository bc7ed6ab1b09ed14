# md.raw_responses keeps every provider response, also those of an md_price
# call that fails: its error rolls back the statement, so the responses are
# kept in shared memory and stored by the scheduler with the same ids.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $fake = MarketData::FakeProvider->new();
my $node = MarketData::TestDb->node('kept', conf => "marketdata.databases = 'md'\n");
$fake->point_providers($node, 'md');

my ($ret, $out, $err) = $node->psql('md', "SELECT md_price('NOSUCHSYM', 'yahoo_finance')");
like($err, qr/NOSUCHSYM/, 'md_price fails for an unknown symbol');
ok($node->poll_query_until('md',
		"SELECT count(*) = 1 FROM md.raw_responses WHERE symbol = 'NOSUCHSYM' AND error_class = 'unknown_symbol' AND http_status = 404"),
	'its response is stored anyway');
like($node->safe_psql('md', "SELECT body FROM md.raw_responses WHERE symbol = 'NOSUCHSYM'"),
	qr/No data found/, 'with the body the provider sent');

# failover: every provider tried is kept
$node->safe_psql('md', "UPDATE md.providers SET base_url = 'http://127.0.0.1:1' WHERE name = 'yahoo_finance'");
($ret, $out, $err) = $node->psql('md', "SELECT md_price('DOWNSYM')");
like($err, qr/no provider could give a price/, 'md_price fails over and fails');
ok($node->poll_query_until('md',
		"SELECT count(*) >= 1 FROM md.raw_responses WHERE symbol = 'DOWNSYM' AND error_class = 'unavailable' AND provider = 'yahoo_finance'"),
	'the transport failure is stored too');

# a failure caught by the caller: still stored once
$node->safe_psql('md', q{
	DO $$ BEGIN PERFORM md_price('CAUGHT', 'yahoo_finance');
	EXCEPTION WHEN OTHERS THEN NULL; END $$;
});
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.raw_responses WHERE symbol = 'CAUGHT'"),
	'a caught failure is stored once');

is($node->safe_psql('md', 'SELECT count(*) = count(DISTINCT id) FROM md.raw_responses'), 't',
	'no response stored twice');

# a database without a scheduler (not in marketdata.databases) keeps its
# responses in the ring too; they must not hold up another database's
$node->safe_psql('postgres', 'CREATE DATABASE noworker');
$node->safe_psql('noworker', 'CREATE EXTENSION marketdata');
$fake->point_providers($node, 'noworker');
($ret, $out, $err) = $node->psql('noworker', "SELECT md_price('STUCK', 'yahoo_finance')");
like($err, qr/STUCK/, 'a failure in a database without a scheduler');
($ret, $out, $err) = $node->psql('md', "SELECT md_price('NOTSTUCK', 'yahoo_finance')");
like($err, qr/ERROR/, 'then one in the scheduler\'s database');
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.raw_responses WHERE symbol = 'NOTSTUCK'"),
	'stored although an entry of the other database came first');
is($node->safe_psql('noworker', 'SELECT count(*) FROM md.raw_responses'), '0',
	'the other database\'s entry waits for its own scheduler');

# marketdata.raw_response_bodies = errors: a success keeps its metadata,
# its price points at that row; an error keeps its body
$fake->point_providers($node, 'md');
my $meta = sub {
	my ($bodies, $symbol) = @_;
	my ($ret, $out, $err) = $node->psql('md', "SET marketdata.raw_response_bodies = '$bodies';
		SELECT md_price('$symbol', 'yahoo_finance', '0')");
	return $node->safe_psql('md', qq{SELECT r.body IS NULL, r.body_bytes, encode(r.body_sha256, 'hex'),
			r.http_status, r.latency_ms IS NOT NULL, coalesce(r.error_class, ''),
			coalesce(encode(sha256(convert_to(r.body, 'UTF8')), 'hex'), '')
		FROM md.raw_responses r WHERE r.symbol = '$symbol' ORDER BY r.id DESC LIMIT 1});
};
my @all = split /\|/, $meta->('all', 'AAPL'), -1;
my @errors = split /\|/, $meta->('errors', 'AAPL'), -1;
is($all[0], 'f', 'bodies all: a success keeps its body');
is($all[2], $all[6], 'bodies all: body_sha256 is the SHA-256 of the stored body');
is_deeply([ @errors[0 .. 5] ], [ 't', $all[1], $all[2], 200, 't', '' ],
	'bodies errors: a success keeps status, latency, size and SHA-256, not the body');
ok($all[1] > 100, "the size is the body's ($all[1] bytes)");
# the id a fetch gives its price row (md_fetch_many's, as the scheduler stores)
is($node->safe_psql('md', q{SET marketdata.raw_response_bodies = 'errors';
		CREATE TEMP TABLE f AS SELECT * FROM md_fetch('AAPL', 'yahoo_finance');
		SELECT r.body IS NULL AND r.body_bytes > 0 AND f.price IS NOT NULL
		FROM f JOIN md.raw_responses r ON r.id = f.raw_response_id}), 't',
	'bodies errors: the price\'s raw_response_id points at the metadata row');
my @bad = split /\|/, $meta->('errors', 'NOBODY'), -1;
is_deeply([ $bad[0], $bad[5] ], [ 'f', 'unknown_symbol' ], 'bodies errors: an error keeps its body');
is($bad[2], $bad[6], 'bodies errors: and its SHA-256');

$node->stop;
done_testing();
