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

$node->stop;
done_testing();
