# test/perl/MarketData/TestDb.pm
#	A PostgreSQL node with marketdata preloaded and created in database md.
#
#	my $node = MarketData::TestDb->node('name', conf => "...", env => {...});
package MarketData::TestDb;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;

sub node
{
	my ($class, $name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'marketdata'\n" . ($opts{conf} // ''));
	# the postmaster's environment is what backends see (API keys)
	local %ENV = (%ENV, %{ $opts{env} // {} });
	$node->start;
	$node->safe_psql('postgres', 'CREATE DATABASE md');
	$node->safe_psql('md', 'CREATE EXTENSION marketdata');
	return $node;
}

1;
