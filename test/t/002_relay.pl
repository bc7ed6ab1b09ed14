# The outbox relay publishes new prices to Kafka exactly once, keyed and
# ordered by symbol, through a broker outage; without Kafka it writes nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;

my $broker = start_kafka_broker('price-events');

my $node = PostgreSQL::Test::Cluster->new('relay');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
restart_after_crash = on
marketdata.databases = 'md'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');

# Kafka not configured: the relay idles and the outbox stays empty
ok($node->poll_query_until('md',
		"SELECT state = 'idle: Kafka not configured' FROM md.worker_status WHERE worker = 'relay'"),
	'relay idles without Kafka');
$node->safe_psql('md', "SELECT md_ingest_price('IDLE', 'finnhub', 1, now())");
is($node->safe_psql('md', 'SELECT count(*) FROM md.outbox'), '0', 'no outbox rows without Kafka');

# configure Kafka: a reload is enough
$node->append_conf('postgresql.conf', "marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'");
$node->reload;
ok($node->poll_query_until('md',
		"SELECT state IN ('caught up', 'publishing') FROM md.worker_status WHERE worker = 'relay'"),
	'relay connects after reload');

# one transaction of new prices: each symbol at minutes from..to of day,
# priced base + minute
sub ingest_minutes
{
	my ($symbols, $from, $to, $base, $day) = @_;
	my $syms = join(', ', map { "'$_'" } @$symbols);
	my $n = @$symbols * ($to - $from + 1);
	$node->safe_psql('md', qq{
		SELECT md_ingest_prices(
			ARRAY(SELECT s FROM unnest(ARRAY[$syms]) s, generate_series($from, $to)),
			array_fill('finnhub'::text, ARRAY[$n]),
			ARRAY(SELECT $base + g FROM unnest(ARRAY[$syms]) s, generate_series($from, $to) g)::numeric[],
			ARRAY(SELECT '$day'::timestamptz + g * interval '1 minute'
				  FROM unnest(ARRAY[$syms]) s, generate_series($from, $to) g))});
}

# ingest a batch: every new price becomes one event
ingest_minutes([ 'AAPL', 'MSFT', 'IBM' ], 1, 20, 100, '2024-01-01');
# a replay is not new and publishes nothing
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'finnhub', 101, '2024-01-01 00:01+00')");
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'outbox drained');
my $msgs = kafka_consume($broker, 'price-events');
is(scalar(@$msgs), 60, '60 events for 60 new prices');

sub check_order
{
	my ($msgs) = @_;
	my (%last, %partition, $ok);
	$ok = 1;
	for my $m (@$msgs)
	{
		my ($key, $value, $part) = @$m;
		my ($sym) = $value =~ /"symbol"\s*:\s*"([^"]+)"/;
		my ($ts) = $value =~ /"timestamp"\s*:\s*"([^"]+)"/;
		$ok = 0 unless defined $sym && $sym eq $key;
		$partition{$key} //= $part;
		$ok = 0 if $partition{$key} != $part;
		$ok = 0 if defined $last{$key} && $last{$key} ge $ts;
		$last{$key} = $ts;
	}
	return $ok;
}
ok(check_order($msgs), 'keyed by symbol, one partition per symbol, in time order');
like($msgs->[0][1], qr/"source"\s*:\s*"finnhub"/, 'event names its source');
like($msgs->[0][1], qr/"timestamp"\s*:\s*"2024-01-01T00:0\d:00Z"/, 'ISO-8601 UTC timestamp');

# broker outage: events wait in the outbox, nothing is lost or doubled
kafka_down($broker);
ingest_minutes([ 'AAPL', 'MSFT', 'IBM' ], 21, 40, 100, '2024-01-01');
ok($node->poll_query_until('md',
		"SELECT backlog = 60 FROM md.worker_status WHERE worker = 'relay'"),
	'backlog visible while Kafka is down');
is($node->safe_psql('md', 'SELECT count(*) FROM md.outbox_pending'), '60',
	'outbox holds the events');
kafka_up($broker);
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'backlog drains after the outage');
$msgs = kafka_consume($broker, 'price-events');
is(scalar(@$msgs), 120, 'every event exactly once');
ok(check_order($msgs), 'still in order per symbol');
my %seen;
$seen{"$_->[0] $_->[1]"}++ for @$msgs;
is(scalar(grep { $_ > 1 } values %seen), 0, 'no duplicates');

# a backlog of many transactions is published and recorded in parts of
# about relay_batch_size rows, cut between transactions
$node->append_conf('postgresql.conf', "marketdata.relay_batch_size = 10");
$node->reload;
kafka_down($broker);
ingest_minutes([ 'PARTS' ], 1, 10, 0, '2024-01-03');
ok($node->poll_query_until('md', "SELECT state = 'publishing' AND backlog = 10 FROM md.worker_status WHERE worker = 'relay'"),
	'a full window waits for Kafka');
for my $g (11 .. 40)
{
	$node->safe_psql('md', "SELECT md_ingest_price('PARTS', 'finnhub', $g, '2024-01-03'::timestamptz + $g * interval '1 minute')");
}
my $records = $node->safe_psql('md', 'SELECT last_value FROM md.outbox_published_id_seq');
kafka_up($broker);
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'), 'the backlog drains');
cmp_ok($node->safe_psql('md', 'SELECT last_value FROM md.outbox_published_id_seq') - $records, '>=', 4,
	'recorded in parts');
$msgs = kafka_consume($broker, 'price-events');
is(scalar(grep { $_->[0] eq 'PARTS' } @$msgs), 40, 'every event of the backlog exactly once');
ok(check_order($msgs), 'in order per symbol');
$node->append_conf('postgresql.conf', "marketdata.relay_batch_size = 10000");
$node->reload;

# the relay killed with events in flight: restarted, it sends again from
# the recorded snapshot, so every event reaches Kafka (some may twice)
kafka_down($broker);
ingest_minutes([ 'CRASH' ], 1, 30, 0, '2024-01-04');
ok($node->poll_query_until('md', "SELECT state = 'publishing' AND backlog = 30 FROM md.worker_status WHERE worker = 'relay'"),
	'the events are in flight');
kill9_and_wait_restart($node, $node->safe_psql('md', "SELECT pid FROM md.worker_status WHERE worker = 'relay'"));
kafka_up($broker);
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'), 'drained after the crash');
$msgs = kafka_consume($broker, 'price-events');
my %crashed;
$crashed{$_->[1]}++ for grep { $_->[0] eq 'CRASH' } @$msgs;
is(scalar(keys %crashed), 30, 'every event of the killed relay is in Kafka');

# a transaction that took its outbox ids first but commits last is not
# skipped: the relay publishes by snapshots, not by id
# (a month whose partition exists, and a symbol of another bucket of the
# sink's average locks, so that neither waits for the other)
my $early = $node->safe_psql('md', q{
	SELECT s FROM unnest(ARRAY['EARLY', 'EARLYB', 'EARLYC', 'EARLYD']) s
	WHERE (hashtext(s) & 2147483647) % 64 <> (hashtext('LATE') & 2147483647) % 64 LIMIT 1});
my $slow = $node->background_psql('md');
$slow->query_safe(q{BEGIN; SELECT md_ingest_price('LATE', 'finnhub', 1, '2024-01-02 00:00+00')});
$node->safe_psql('md', "SELECT md_ingest_price('$early', 'finnhub', 1, '2024-01-02 00:00+00')");
ok($node->poll_query_until('md', "SELECT count(*) = 0 FROM md.outbox_pending"),
	'the later commit is published while the earlier transaction runs');
$msgs = kafka_consume($broker, 'price-events');
is(join(',', sort grep { $_ eq 'LATE' || $_ eq $early } map { $_->[0] } @$msgs), $early,
	'the later commit is in Kafka, the earlier transaction not yet');
$slow->query_safe('COMMIT');
$slow->quit;
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'the earlier transaction is published after its commit');
$msgs = kafka_consume($broker, 'price-events');
is(join(',', sort grep { $_ eq 'LATE' || $_ eq $early } map { $_->[0] } @$msgs), "$early,LATE",
	'each exactly once');
cmp_ok($node->safe_psql('md', "SELECT min(id) FROM md.outbox WHERE symbol = 'LATE'"), '<',
	$node->safe_psql('md', "SELECT min(id) FROM md.outbox WHERE symbol = '$early'"),
	'the late row has the lower id');
my $before_restore = scalar(@$msgs);

# a restore into another cluster: what that cluster published stays
# published, the rest goes out once (the relay takes the outbox over)
kafka_down($broker);
$node->safe_psql('md', "SELECT md_ingest_price('MOVED', 'finnhub', 1, '2024-03-01 00:00+00')");
my $dump = $node->basedir . '/relay.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('md') ], 'dump');
my $other = PostgreSQL::Test::Cluster->new('relay_restored');
$other->init;
$other->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
});
$other->start;
$other->safe_psql('postgres', 'CREATE DATABASE md');
# in one transaction, as docs/operations.md says: the relay sees the
# outbox and its progress together
$other->command_ok([ 'pg_restore', '--single-transaction', '-d', $other->connstr('md'), $dump ],
	'restore');
$node->stop;
kafka_up($broker);
ok($other->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'the restored outbox drains');
$msgs = kafka_consume($broker, 'price-events');
is(scalar(@$msgs), $before_restore + 1, 'the restored cluster sent only the unpublished event');
is(scalar(grep { $_->[0] eq 'MOVED' } @$msgs), 1, 'MOVED exactly once');
$other->stop;
$node->start;

# the relay's own topic is not consumed back into the database it came from
ok($node->poll_query_until('md',
		"SELECT error LIKE 'not consumed: %' FROM md.kafka_status WHERE topic = 'price-events' AND partition IS NULL"),
	'the default subscription of the relay\'s own topic says it is not consumed')
  or diag($node->safe_psql('md', 'SELECT * FROM md.kafka_status'));
is($node->safe_psql('md', "SELECT count(*) FROM md.kafka_offsets WHERE topic = 'price-events'"), '0',
	'nothing of the relay\'s own topic was consumed');
is($node->safe_psql('md', "SELECT state FROM md.worker_status WHERE worker = 'consumer'"),
	'idle: no subscription to consume', 'the consumer says it has nothing to consume');

# published rows are deleted after the retention
$node->append_conf('postgresql.conf', "marketdata.outbox_retention = 0");
$node->reload;
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox'), 'retention deletes published rows');

$node->stop;
done_testing();
