# The Kafka consumer stores 10,000 price events exactly once through a
# kill -9 of the consumer, a PostgreSQL restart and a broker outage:
# duplicates count once, every malformed message is a dead letter with its
# reason, averages equal a recomputation, lag ends at 0.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;

# the relay publishes elsewhere: its own topic is never consumed back
my $broker = start_kafka_broker('price-events', 'fx-events', 'relay-events');

my $node = PostgreSQL::Test::Cluster->new('consumer');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.kafka_topic = 'relay-events'
marketdata.consumer_batch_size = 400
marketdata.consumer_batch_ms = 50
marketdata.consumer_max_message_size = 1kB
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE md');
$node->safe_psql('md', 'CREATE EXTENSION marketdata');

sub consumer_state
{
	return $node->safe_psql('md', "SELECT state FROM md.worker_status WHERE worker = 'consumer'");
}

ok($node->poll_query_until('md',
		"SELECT state = 'caught up' FROM md.worker_status WHERE worker = 'consumer'"),
	'consumer assigned the default subscription') or diag(consumer_state());
is($node->safe_psql('md',
		"SELECT count(*) FROM md.kafka_status WHERE topic = 'price-events' AND stored_offset = 0 AND lag = 0"),
	'4', 'start offsets of the 4 partitions stored at once');

# produce(topic, lines): each line "key\tvalue", through kcat
sub produce
{
	my ($topic, $lines) = @_;
	my $input = join('', map { "$_\n" } @$lines);
	my ($out, $err);
	IPC::Run::run([ 'kcat', '-P', '-b', $broker->{bootstrap}, '-t', $topic, '-K', "\t" ],
		'<', \$input, '>', \$out, '2>', \$err)
	  or die "kcat failed: $err";
}

# --- the 10,000 events ----------------------------------------------------
# Valid prices are distinct (symbol, provider, ts); duplicates repeat one
# exactly; malformed ones come in several kinds, each with the reason the
# dead letter must give.
my $base = 1711915200;	# 2024-03-31 20:00 UTC: the events cross into April
my @providers = ('yahoo_finance', 'finnhub', 'polygon');
my (@events, %expected, %malformed_by_kind);
my @kinds = (
	[ 'not_json', sub { 'not json {' }, qr/not valid JSON/ ],
	[ 'array', sub { '[1, 2, 3]' }, qr/not a JSON object/ ],
	[ 'no_symbol', sub { qq({"price": 10.5, "timestamp": "2024-03-01T00:00:00Z", "source": "finnhub"}) },
		qr/symbol is missing/ ],
	[ 'no_price', sub { qq({"symbol": "T$_[0]", "timestamp": "2024-03-01T00:00:00Z", "source": "finnhub"}) },
		qr/price is missing/ ],
	[ 'no_time', sub { qq({"symbol": "T$_[0]", "price": 1.5, "source": "finnhub"}) },
		qr/timestamp is missing/ ],
	[ 'bad_symbol', sub { qq({"symbol": "BAD SYMBOL!", "price": 1.5, "timestamp": 1700000000, "source": "finnhub"}) },
		qr/invalid symbol/ ],
	[ 'nonpositive', sub { qq({"symbol": "T$_[0]", "price": -$_[0], "timestamp": 1700000000, "source": "finnhub"}) },
		qr/greater than 0/ ],
	[ 'unknown_source', sub { qq({"symbol": "T$_[0]", "price": 2.5, "timestamp": 1700000000, "source": "nobody"}) },
		qr/unknown source "nobody"/ ],
	[ 'bad_time', sub { qq({"symbol": "T$_[0]", "price": 2.5, "timestamp": "yesterday", "source": "finnhub"}) },
		qr/not ISO-8601 or epoch seconds/ ],
	[ 'future', sub { qq({"symbol": "T$_[0]", "price": 2.5, "timestamp": "2999-01-01T00:00:00Z", "source": "finnhub"}) },
		qr/in the future/ ],
	[ 'oversize', sub { qq({"symbol": "T$_[0]", "price": 2.5, "timestamp": 1700000000, "source": "finnhub", "pad": ") . ('x' x 1100) . '"}' },
		qr/larger than marketdata\.consumer_max_message_size/ ],
	[ 'price_text', sub { qq({"symbol": "T$_[0]", "price": "abc", "timestamp": 1700000000, "source": "finnhub"}) },
		qr/price must be a number/ ],
	[ 'not_utf8', sub { qq({"symbol": "T$_[0]\xff\xfe", "price": 2.5, "timestamp": 1700000000, "source": "finnhub"}) },
		qr/not valid UTF-8/ ],
);
my ($nvalid, $ndup, $nbad) = (0, 0, 0);
for my $i (0 .. 9999)
{
	my $sym = sprintf('T%02d', $i % 40);
	if ($i % 20 == 7)
	{
		# 5% malformed, the kinds in turn
		my $kind = $kinds[ ($i / 20) % @kinds ];
		push @events, "$sym\t" . $kind->[1]->($i);
		$malformed_by_kind{ $kind->[0] }++;
		$nbad++;
	}
	elsif ($i % 20 == 13 && $nvalid > 0)
	{
		# a duplicate of an earlier valid event
		push @events, $events[ $i - 13 + 1 ];
		$ndup++;
	}
	else
	{
		my $ts = $base + $i * 3;
		my $provider = $providers[ $i % 3 ];
		my $price = sprintf('%.2f', 10 + ($i * 7919 % 100000) / 100);
		# ISO-8601 or epoch seconds, as number or text; some symbols in lower case
		my $time = $i % 3 == 0 ? $ts : $i % 3 == 1 ? qq("$ts") : '"' . iso($ts) . '"';
		my $shown = $i % 5 == 0 ? lc($sym) : $sym;
		push @events, qq($sym\t{"symbol": "$shown", "price": $price, "timestamp": $time, "source": "$provider", "raw_response_id": null, "extra": {"a": [1]}});
		$expected{"$sym|$provider|$ts"} = $price;
		$nvalid++;
	}
}
die "the duplicate picked a malformed event" if grep { !/"symbol": "[^"]*", "price": [0-9.]+, "timestamp"/ }
	@events[ grep { $_ % 20 == 13 } 0 .. 9999 ];

sub iso
{
	my @t = gmtime($_[0]);
	return sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ', $t[5] + 1900, $t[4] + 1, @t[ 3, 2, 1, 0 ]);
}

sub consumed
{
	return $node->safe_psql('md',
		"SELECT coalesce(sum(stored_offset), 0) FROM md.kafka_status WHERE topic = 'price-events'");
}

sub consumer_pid
{
	return $node->safe_psql('md', "SELECT pid FROM md.worker_status WHERE worker = 'consumer'");
}

# part 1, with a kill -9 of the consumer while it works
produce('price-events', [ @events[ 0 .. 2999 ] ]);
ok(wait_until(sub { consumed() > 0 }, 30), 'consumption started');
my $pid = consumer_pid();
kill9_and_wait_restart($node, $pid);
ok($node->poll_query_until('md',
		"SELECT count(*) = 1 FROM md.worker_status WHERE worker = 'consumer' AND pid <> $pid"),
	'consumer back after kill -9 (crash restart)');
ok($node->poll_query_until('md',
		"SELECT sum(stored_offset) = 3000 FROM md.kafka_status WHERE topic = 'price-events'"),
	'part 1 consumed');

# part 2, with a PostgreSQL restart while the consumer works
produce('price-events', [ @events[ 3000 .. 5999 ] ]);
ok(wait_until(sub { consumed() > 3000 }, 30), 'part 2 started');
$node->restart;
ok($node->poll_query_until('md',
		"SELECT sum(stored_offset) = 6000 FROM md.kafka_status WHERE topic = 'price-events'"),
	'part 2 consumed after the restart');

# a broker outage: the worker says so and consumes again afterwards
kafka_down($broker);
ok($node->poll_query_until('md',
		"SELECT state = 'Kafka unreachable' FROM md.worker_status WHERE worker = 'consumer'"),
	'status shows the outage') or diag(consumer_state());
kafka_up($broker);
produce('price-events', [ @events[ 6000 .. 9999 ] ]);
ok($node->poll_query_until('md',
		"SELECT sum(stored_offset) = 10000 FROM md.kafka_status WHERE topic = 'price-events'"),
	'part 3 consumed after the outage');
ok($node->poll_query_until('md',
		"SELECT state = 'caught up' FROM md.worker_status WHERE worker = 'consumer'"),
	'status back to caught up') or diag(consumer_state());

# --- what was stored ------------------------------------------------------
my $want = join("\n", map { my ($s, $p, $t) = split /\|/; "$s|$p|$t|$expected{$_}" } sort keys %expected);
my $got = $node->safe_psql('md', q{
	SELECT string_agg(symbol || '|' || provider || '|' || extract(epoch FROM ts)::bigint || '|' || price,
					  E'\n' ORDER BY (symbol || '|' || provider || '|' || extract(epoch FROM ts)::bigint) COLLATE "C")
	FROM md.prices WHERE symbol LIKE 'T%'});
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol LIKE 'T%'"), $nvalid,
	"exactly the $nvalid distinct valid prices ($ndup duplicates)");
ok($got eq $want, 'the very prices, symbols normalised, ISO and epoch times');

is($node->safe_psql('md', "SELECT count(*) FROM md.dead_letters WHERE topic = 'price-events'"), $nbad,
	"$nbad dead letters");
is($node->safe_psql('md',
		q{SELECT count(DISTINCT (partition, "offset")) FROM md.dead_letters WHERE topic = 'price-events' AND reason <> '' AND payload IS NOT NULL AND key IS NOT NULL}),
	$nbad, 'each once, with reason, key and payload');
my %reasons;
for my $row (split /\n/, $node->safe_psql('md',
		"SELECT reason FROM md.dead_letters WHERE topic = 'price-events'"))
{
	for my $kind (@kinds)
	{
		if ($row =~ $kind->[2]) { $reasons{ $kind->[0] }++; last; }
	}
}
is_deeply(\%reasons, \%malformed_by_kind, 'every kind of malformed message with its reason');
is($node->safe_psql('md',
		q{SELECT convert_from(payload, 'UTF8') FROM md.dead_letters WHERE reason LIKE 'not valid JSON%' LIMIT 1}),
	'not json {', 'the payload is kept as it came');

is($node->safe_psql('md', q{
	SELECT count(*) FROM md.symbol_averages a
	WHERE a.symbol LIKE 'T%' AND a."window" = 5
	  AND a.average = (SELECT avg(t.price) FROM (SELECT p.price FROM md.prices p
						WHERE p.symbol = a.symbol ORDER BY p.ts DESC, p.provider LIMIT 5) t)}),
	scalar(keys %{ { map { (split /\|/)[0] => 1 } keys %expected } }),
	'moving averages of every symbol equal a recomputation')
  or diag($node->safe_psql('md', q{
	SELECT a.symbol, a.average, a.points, a.last_ts, a.updated_at, x.*
	FROM md.symbol_averages a, LATERAL (SELECT avg(t.price), max(t.ts), count(*) FROM (SELECT p.price, p.ts FROM md.prices p
						WHERE p.symbol = a.symbol ORDER BY p.ts DESC, p.provider LIMIT 5) t) x
	WHERE a.symbol LIKE 'T%' AND a."window" = 5 AND a.average <> x.avg}));
is($node->safe_psql('md',
		"SELECT sum(lag) || ' ' || sum(high_watermark) || ' ' || count(*) FROM md.kafka_status WHERE topic = 'price-events'"),
	'0 10000 4', 'lag 0 on every partition');
ok($node->safe_psql('md',
		"SELECT bool_and(last_message_at > now() - interval '10 minutes') FROM md.kafka_status WHERE topic = 'price-events'"),
	'last message time per partition');
is($node->safe_psql('md', 'SELECT count(*) FROM md.outbox'), '0',
	'consumed prices are not published again');

# --- two subscriptions side by side ----------------------------------------
$node->safe_psql('md', "INSERT INTO md.kafka_subscriptions (topic) VALUES ('fx-events')");
ok($node->poll_query_until('md', "SELECT count(*) = 4 FROM md.kafka_status WHERE topic = 'fx-events'"),
	'a new subscription is assigned within seconds');
my (@fx, @more);
for my $i (0 .. 299)
{
	push @fx, qq(EURUSD=X\t{"symbol": "EURUSD=X", "price": 1.0$i, "timestamp": ) . ($base + $i) . qq(, "source": "yahoo_finance"});
	push @more, qq(U1\t{"symbol": "U1", "price": 5$i, "timestamp": ) . ($base + $i) . qq(, "source": "finnhub"});
}
produce('fx-events', \@fx);
produce('price-events', \@more);
ok($node->poll_query_until('md', q{
	SELECT (SELECT count(*) FROM md.prices WHERE symbol = 'EURUSD=X') = 300
	   AND (SELECT count(*) FROM md.prices WHERE symbol = 'U1') = 300
	   AND (SELECT sum(lag) FROM md.kafka_status) = 0}),
	'both topics consumed side by side, lag 0');

# disabling stops it; enabling goes on from the stored offsets
$node->safe_psql('md', "UPDATE md.kafka_subscriptions SET enabled = false WHERE topic = 'fx-events'");
ok($node->poll_query_until('md', "SELECT count(*) = 0 FROM md.kafka_status WHERE topic = 'fx-events' AND enabled"),
	'disabled');
my $log_offset = -s $node->logfile;
$node->wait_for_log(qr/unsubscribed from topic "fx-events"/, $log_offset);
produce('fx-events', [ map { qq(GBPUSD=X\t{"symbol": "GBPUSD=X", "price": 1.2$_, "timestamp": ) . ($base + $_) . qq(, "source": "yahoo_finance"}) } 0 .. 9 ]);
$node->safe_psql('md', "UPDATE md.kafka_subscriptions SET enabled = true WHERE topic = 'fx-events'");
ok($node->poll_query_until('md', "SELECT count(*) = 10 FROM md.prices WHERE symbol = 'GBPUSD=X'"),
	'enabled again: the rest, from the stored offsets');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'EURUSD=X'"), '300',
	'nothing consumed twice');

# --- a batch that fails whole is retried message by message ---------------
# a constraint the decoder does not know of: only its offenders are dead
$node->safe_psql('md', 'ALTER TABLE md.prices ADD CONSTRAINT no_999 CHECK (price <> 999)');
my @mixed = map {
	my $price = $_ % 10 == 3 ? 999 : 100 + $_;
	qq(V1\t{"symbol": "V1", "price": $price, "timestamp": ) . ($base + $_) . qq(, "source": "finnhub"})
} 0 .. 99;
produce('price-events', \@mixed);
ok($node->poll_query_until('md', q{SELECT sum(lag) = 0 AND sum(stored_offset) = 10400 FROM md.kafka_status WHERE topic = 'price-events'}),
	'mixed batch consumed');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'V1'"), '90',
	'the 90 good prices stored');
is($node->safe_psql('md', q{SELECT count(*) FROM md.dead_letters WHERE reason LIKE '%no_999%'}), '10',
	'the 10 offenders are dead letters naming the constraint');
ok($node->log_contains(qr/retrying one by one/, $log_offset), 'the batch was retried one by one');

# --- a database problem is not the messages' fault -------------------------
# the sink cannot get its lock: the batch is not turned into dead letters;
# the worker stops without storing anything and starts again from the offsets
$node->safe_psql('md', "ALTER SYSTEM SET lock_timeout = '200ms'");
$node->reload;
my $locker = $node->background_psql('md');
$locker->query_safe('BEGIN; LOCK md.latest_prices IN ACCESS EXCLUSIVE MODE');
$log_offset = -s $node->logfile;
produce('price-events', [ map { qq(X1\t{"symbol": "X1", "price": 7, "timestamp": ) . ($base + $_) . qq(, "source": "finnhub"}) } 0 .. 19 ]);
$node->wait_for_log(qr/canceling statement due to lock timeout/, $log_offset);
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'X1'")
	. ' ' . $node->safe_psql('md', "SELECT count(*) FROM md.dead_letters WHERE position(convert_to('X1', 'UTF8') IN payload) > 0"),
	'0 0', 'a lock timeout stores nothing and makes no dead letters');
$locker->query_safe('COMMIT');
$locker->quit;
$node->safe_psql('md', 'ALTER SYSTEM RESET lock_timeout');
$node->reload;
ok($node->poll_query_until('md', "SELECT count(*) = 20 FROM md.prices WHERE symbol = 'X1'"),
	'the restarted consumer stores the batch once the lock is gone');
is($node->safe_psql('md', "SELECT count(*) FROM md.dead_letters WHERE position(convert_to('X1', 'UTF8') IN payload) > 0"),
	'0', 'still no dead letters');

$node->stop;
done_testing();
