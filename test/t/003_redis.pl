# Redis write-through: a new latest price is SET and PUBLISHed at commit;
# a rolled-back one never reaches Redis; Redis down does not harm ingestion.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;

my $redis = start_redis();

my $node = PostgreSQL::Test::Cluster->new('redis');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.redis_url = 'redis://127.0.0.1:$redis->{port}/0'
marketdata.redis_ttl = 120
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');

$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 187.42, '2024-05-01 19:59:00+00')");
is(redis_cli($redis, 'GET', 'md:price:yahoo_finance:AAPL'),
	'{"symbol" : "AAPL", "price" : 187.42, "timestamp" : "2024-05-01T19:59:00Z", "provider" : "yahoo_finance"}',
	'new price written through as the API serves it');
my $ttl = redis_cli($redis, 'TTL', 'md:price:yahoo_finance:AAPL');
ok($ttl > 100 && $ttl <= 120, "with the configured TTL ($ttl)");

# an older price does not move the latest, so Redis keeps the newer one
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 100, '2024-05-01 10:00:00+00')");
like(redis_cli($redis, 'GET', 'md:price:yahoo_finance:AAPL'), qr/187\.42/, 'back-filled price not cached');

# rolled back, or in a rolled-back subtransaction: nothing reaches Redis
$node->safe_psql('md', q{
	BEGIN;
	SELECT md_ingest_price('ROLL', 'finnhub', 5, '2024-05-01 19:59:00+00');
	ROLLBACK;
	BEGIN;
	SELECT md_ingest_price('KEEP', 'finnhub', 6, '2024-05-01 19:59:00+00');
	SAVEPOINT s;
	SELECT md_ingest_price('SUB', 'finnhub', 7, '2024-05-01 19:59:00+00');
	ROLLBACK TO SAVEPOINT s;
	COMMIT;
});
is(redis_cli($redis, 'EXISTS', 'md:price:finnhub:ROLL'), '0', 'rolled-back price not cached');
is(redis_cli($redis, 'EXISTS', 'md:price:finnhub:SUB'), '0', 'rolled-back subtransaction not cached');
is(redis_cli($redis, 'EXISTS', 'md:price:finnhub:KEEP'), '1', 'committed price cached');

# the REST API's any-provider answer of a symbol goes with each new price
# (the API fills it again from the database)
redis_cli($redis, 'SET', 'md:price:_:KEEP', 'old');
$node->safe_psql('md', "SELECT md_ingest_price('KEEP', 'finnhub', 6.5, '2024-05-01 20:00:00+00')");
is(redis_cli($redis, 'EXISTS', 'md:price:_:KEEP'), '0', 'a new price drops md:price:_:{symbol}');

# subscribers hear new prices on md:prices:{symbol}
my $sub = IPC::Run::start(
	[ 'redis-cli', '-h', '127.0.0.1', '-p', $redis->{port}, 'SUBSCRIBE', 'md:prices:MSFT' ],
	'>', \my $heard, '2>', \my $ignored);
wait_until(sub { $sub->pump_nb; ($heard // '') =~ /subscribe/ }, 5);
$node->safe_psql('md', "SELECT md_ingest_price('MSFT', 'finnhub', 410.5, '2024-05-01 19:59:00+00')");
ok(wait_until(sub { $sub->pump_nb; ($heard // '') =~ /410\.5/ }, 5), 'PUBLISH reaches subscribers');
$sub->kill_kill;

# Redis down: ingestion goes on, failures are counted, nothing is lost
stop_redis($redis);
my $t0 = time();
$node->safe_psql('md', q{
	SELECT md_ingest_price('DOWN', 'finnhub', g, '2024-05-01 19:00:00+00'::timestamptz + g * interval '1 s')
	FROM generate_series(1, 20) g;
});
ok(time() - $t0 < 10, 'ingestion is not held up by a dead Redis');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'DOWN'"), '20',
	'prices stored while Redis is down');
my $status = $node->safe_psql('md', 'SELECT enabled, failures > 0, last_error IS NOT NULL FROM md.cache_status');
is($status, 't|t|t', 'md.cache_status counts the failures');

# Redis back: writes resume after the back-off
$redis = start_redis($redis->{port});
ok(wait_until(sub {
		$node->safe_psql('md', "SELECT md_ingest_price('BACK', 'finnhub', 1, now())");
		redis_cli($redis, 'EXISTS', 'md:price:finnhub:BACK') eq '1';
	}, 40), 'cache writes resume when Redis is back');

$node->stop;
done_testing();
