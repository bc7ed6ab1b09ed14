# Messages the broker deleted (retention) before the consumer read them are
# a recorded gap, not a silent jump: md.kafka_gaps and md.kafka_status say
# which offsets were lost, the log warns, and the rest is consumed. The
# test broker (librdkafka's mock cluster) keeps about 5 MB per partition.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;
use MarketData::TestDb;

my $broker = start_kafka_broker('gap-events', 'relay-events');
my $node = MarketData::TestDb->node('gaps', conf => qq{
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.kafka_topic = 'relay-events'
marketdata.consumer_max_message_size = 64kB
});
$node->safe_psql('md', "INSERT INTO md.kafka_subscriptions (topic) VALUES ('gap-events')");

# produce(from, to, pad): events GAP at minutes from..to, into partition 0
sub produce
{
	my ($from, $to, $pad) = @_;
	my $input = join('', map {
		sprintf('{"symbol":"GAP","price":%d,"timestamp":%d,"source":"finnhub","pad":"%s"}' . "\n",
			$_, 1717423200 + 60 * $_, 'x' x $pad) } $from .. $to);
	my ($out, $err);
	IPC::Run::run([ 'kcat', '-P', '-b', $broker->{bootstrap}, '-t', 'gap-events', '-p', '0' ],
		'<', \$input, '>', \$out, '2>', \$err) or die "kcat failed: $err";
}
my $stored = sub {
	return $node->safe_psql('md',
		"SELECT coalesce(max(stored_offset), -1) FROM md.kafka_status WHERE topic = 'gap-events' AND partition = 0");
};

produce(1, 5, 10);
ok($node->poll_query_until('md',
		"SELECT stored_offset = 5 FROM md.kafka_status WHERE topic = 'gap-events' AND partition = 0"),
	'the first 5 messages consumed');
$node->safe_psql('md', "UPDATE md.kafka_subscriptions SET enabled = false WHERE topic = 'gap-events'");
my $offset = -s $node->logfile;
ok($node->wait_for_log(qr/unsubscribed from topic "gap-events"/, 0), 'consumption stopped');

# 1,200 messages of 6 kB: more than the broker keeps
produce(6, 1205, 6000);
$node->safe_psql('md', "UPDATE md.kafka_subscriptions SET enabled = true WHERE topic = 'gap-events'");
ok($node->poll_query_until('md',
		"SELECT stored_offset = 1205 FROM md.kafka_status WHERE topic = 'gap-events' AND partition = 0"),
	'consumption resumed to the end') or diag($stored->());
my ($first, $last) = split /\|/, $node->safe_psql('md',
	"SELECT first_offset, last_offset FROM md.kafka_gaps WHERE topic = 'gap-events' AND partition = 0");
is($first, 5, 'the gap starts at the stored offset');
ok(defined $last && $last >= 5 && $last < 1205, "it ends before the oldest message kept ($last)");
is($node->safe_psql('md',
		"SELECT lost_messages FROM md.kafka_status WHERE topic = 'gap-events' AND partition = 0"),
	$last - $first + 1, 'md.kafka_status counts the lost messages');
is($node->safe_psql('md', "SELECT count(*) FROM md.prices WHERE symbol = 'GAP'")
	  + $node->safe_psql('md', "SELECT count(*) FROM md.dead_letters WHERE topic = 'gap-events'"),
	1205 - ($last - $first + 1), 'every message kept was consumed: consumed + lost = produced');
ok($node->log_contains(qr/offsets 5 to $last were deleted by the broker before they were consumed/, $offset),
	'the log warns of the gap');
is($node->safe_psql('md', "SELECT count(*) FROM md.kafka_gaps"), '1', 'one gap, recorded once');

$node->stop;
done_testing();
