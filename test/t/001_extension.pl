# The extension in a real server: preloaded, created, data kept across a
# restart, and a pg_dump / restore round trip keeps what users stored.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'marketdata'");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');
is($node->safe_psql('md', "SHOW marketdata.average_windows"), '5',
	'settings are defined when preloaded');

$node->safe_psql('md', q{
	SELECT md_ingest_prices(
		ARRAY['AAPL', 'AAPL', 'MSFT'], ARRAY['yahoo_finance', 'yahoo_finance', 'finnhub'],
		ARRAY[187.42, 188.10, 410.5]::numeric[],
		ARRAY[now() - interval '2 minutes', now() - interval '1 minute', now()]);
	SELECT md_poll(ARRAY['AAPL', 'MSFT'], 60, 'yahoo_finance');
	SELECT md_create_api_key('tap', 'writer');
});
is($node->safe_psql('md', "SELECT md_price('AAPL')"), '188.10', 'price stored');

$node->restart;
is($node->safe_psql('md', "SELECT md_price('MSFT', max_age => '1 hour')"), '410.5',
	'prices survive a restart');
is($node->safe_psql('md', "SELECT round(md_moving_average('AAPL'), 2)"), '187.76',
	'averages survive a restart');

# pg_dump of the database, restored into a fresh one
my $dump = $node->basedir . '/md.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('md'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');

my $q = q{SELECT (SELECT count(*) FROM md.prices) || '/' ||
	(SELECT count(*) FROM md.latest_prices) || '/' ||
	(SELECT count(*) FROM md.polling_jobs) || '/' ||
	(SELECT count(*) FROM md.api_keys) || '/' ||
	(SELECT count(*) FROM md.providers) || '/' ||
	(SELECT count(*) FROM md.kafka_subscriptions)};
is($node->safe_psql('restored', $q), $node->safe_psql('md', $q),
	'restore keeps prices, jobs, keys and built-in rows once');
is($node->safe_psql('restored', "SELECT md_price('AAPL', max_age => '1 day')"), '188.10',
	'restored database answers md_price');
# the restored sequences go on where they were
is($node->safe_psql('restored', "SELECT md_poll(ARRAY['IBM'], 60, 'finnhub')"), '2',
	'job ids continue after restore');

$node->stop;
done_testing();
