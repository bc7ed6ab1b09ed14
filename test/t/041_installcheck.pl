# PGXS conventions: make installcheck runs every sql/*.sql (pg_regress) and
# test/isolation/specs/*.spec against a running server, like a contrib
# module, with the lists found by the Makefile from the files.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;

my $top = top_dir();
my $node = PostgreSQL::Test::Cluster->new('installcheck');
$node->init;
# the settings the temporary instance of make test has
$node->append_conf('postgresql.conf', slurp_file("$top/test/regress.conf"));
$node->start;

my $out = PostgreSQL::Test::Utils::tempdir();
sub installcheck
{
	my (@vars) = @_;
	# TAP_TESTS empty: not the TAP tests again from inside one
	my ($stdout, $stderr) = run_command(
		[
			'make', '-s', '-C', $top, 'installcheck', 'TAP_TESTS=',
			"EXTRA_REGRESS_OPTS=--outputdir=$out", 'PGHOST=' . $node->host,
			'PGPORT=' . $node->port, @vars
		]);
	return $stdout . $stderr;
}

my @regress = map { m{([^/]+)\.sql$} } glob("$top/sql/*.sql");
my $log = installcheck('ISOLATION=');
my $ran = () = $log =~ /^test \S+ +\.\.\. /mg;
is($ran, scalar(@regress), 'make installcheck runs every sql/*.sql: ' . scalar(@regress));
unlike($log, qr/FAILED|failed \(ignored\)/, 'and they pass against the running server')
  or diag($log);
ok(-d "$out/results", 'results where EXTRA_REGRESS_OPTS said');

my @specs = map { m{([^/]+)\.spec$} } glob("$top/test/isolation/specs/*.spec");
$log = installcheck('REGRESS=');
$ran = () = $log =~ /^test \S+ +\.\.\. /mg;
is($ran, scalar(@specs), 'and every isolation spec: ' . scalar(@specs));
unlike($log, qr/FAILED/, 'which pass too') or diag($log);

done_testing();
