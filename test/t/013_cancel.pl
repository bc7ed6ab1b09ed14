# A hanging provider never holds a backend: statement_timeout and
# pg_cancel_backend both end a fetch within a second, and the backend is
# usable afterwards (no handle left behind).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use IPC::Run;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $fake = MarketData::FakeProvider->new;
my $node = MarketData::TestDb->node('cancel', conf => "marketdata.http_timeout = '60s'\n");
$fake->point_providers($node, 'md');

# statement_timeout
my $start = time();
my ($ret, $out, $err) = $node->psql('md', q{SET statement_timeout = '300ms';
	SELECT md_price('HANG1', 'yahoo_finance')});
my $elapsed = time() - $start;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels a hanging fetch');
cmp_ok($elapsed, '<', 1.3, "within a second of the timeout ($elapsed s)");

# pg_cancel_backend from another session, with many hanging requests in
# flight; then the same session fetches again (every transfer was freed)
my ($in, $psql_out, $psql_err) = ('', '', '');
my $psql = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('md') ],
	'<', \$in, '>', \$psql_out, '2>', \$psql_err);
$in .= "SELECT pg_backend_pid();\n";
$psql->pump until $psql_out =~ /^(\d+)$/m;
my ($pid) = $psql_out =~ /^(\d+)$/m;
$in .= "SELECT count(*) FROM md_fetch_many(ARRAY(SELECT 'HANG' || g FROM generate_series(1, 20) g), 'yahoo_finance');\n";
$psql->pump_nb;
ok($node->poll_query_until('md', "SELECT query LIKE '%md_fetch_many%' AND state = 'active' FROM pg_stat_activity WHERE pid = $pid"),
	'fetch of 20 hanging symbols running');
ok($node->poll_query_until('md', "SELECT " . $fake->requests . " >= 1"), 'requests reached the provider');
$start = time();
$node->safe_psql('md', "SELECT pg_cancel_backend($pid)");
$psql->pump until $psql_err =~ /canceling statement due to user request/ || time() - $start > 10;
$elapsed = time() - $start;
like($psql_err, qr/canceling statement due to user request/, 'pg_cancel_backend cancels the fetch');
cmp_ok($elapsed, '<', 1.0, "within 1 s ($elapsed s)");
$in .= "SELECT price FROM md_fetch('AAPL', 'yahoo_finance');\n";
$psql->pump until $psql_out =~ /220\.003/ || time() - $start > 20;
like($psql_out, qr/220\.003/, 'the same backend fetches again after the cancel');
$in .= "\\q\n";
$psql->finish;

# a timeout shorter than the hang: unavailable, not an error of ours
is($node->safe_psql('md', q{SET marketdata.http_timeout = '200ms';
	SELECT error_class || ': ' || message FROM md_fetch('HANG2', 'finnhub')}),
	'auth_failed: no API key configured for provider finnhub', 'keys are checked before a request');
is($node->safe_psql('md', q{SET marketdata.http_timeout = '200ms';
	SELECT error_class || ': ' || message FROM md_fetch('HANG3', 'yahoo_finance')}),
	'unavailable: provider yahoo_finance unavailable: no answer within 200 ms', 'the http timeout');

$node->stop;
$fake->stop;
done_testing();
