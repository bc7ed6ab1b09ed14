# marketdata.kafka_config_file: librdkafka properties (TLS, SASL...) for
# every Kafka client, from a file only its owner may read; a bad file is
# refused with a clear error that never shows a value, and nothing waiting
# in the outbox is lost meanwhile.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::Services;
use MarketData::TestDb;

my $broker = start_kafka_broker('price-events');

my $dir = PostgreSQL::Test::Utils::tempdir();
my $good = "$dir/kafka-good.properties";
my $bad = "$dir/kafka-bad.properties";
my $open = "$dir/kafka-open.properties";
PostgreSQL::Test::Utils::append_to_file($good, <<'PROPS');
# what a TLS or SASL set-up would put here; the mock broker speaks plaintext
security.protocol = plaintext
linger.ms = 1
PROPS
chmod 0600, $good;
PostgreSQL::Test::Utils::append_to_file($bad, "sasl.password = s3cret-value\nsecurity.protocol = s3cret-value\n");
chmod 0600, $bad;
PostgreSQL::Test::Utils::append_to_file($open, "linger.ms = 1\n");
chmod 0644, $open;

my $node = MarketData::TestDb->node('kafka_config', conf => qq{
marketdata.databases = 'md'
marketdata.kafka_bootstrap_servers = '$broker->{bootstrap}'
marketdata.kafka_config_file = '$good'
});

$node->safe_psql('md', "SELECT md_ingest_price('CONF', 'finnhub', 1, '2024-01-01 00:00+00')");
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'published with the properties of the file');

sub use_file
{
	my ($file) = @_;
	$node->append_conf('postgresql.conf', "marketdata.kafka_config_file = '$file'");
	$node->reload;
}

# a file others may read is refused
my $offset = -s $node->logfile;
use_file($open);
ok($node->wait_for_log(qr/secrets file ".*kafka-open.properties" is accessible by group or others/, $offset),
	'a file group or others may read is refused');
$node->safe_psql('md', "SELECT md_ingest_price('CONF', 'finnhub', 2, '2024-01-01 00:01+00')");

# a bad value: the error names the property, never a value of the file
$offset = -s $node->logfile;
use_file($bad);
ok($node->wait_for_log(qr/invalid Kafka setting security.protocol in ".*kafka-bad.properties"/, $offset),
	'the bad property is named');
like(slurp_file($node->logfile), qr/DETAIL:  librdkafka: Invalid value "\*\*\*" for configuration property "security.protocol"/,
	'with librdkafka\'s reason, the value masked');
unlike(slurp_file($node->logfile), qr/s3cret-value/, 'no value of the file in the log');
is($node->safe_psql('md', 'SELECT count(*) FROM md.outbox_pending'), '1',
	'the new event waits in the outbox');

# the good file again: the waiting event goes out, once
use_file($good);
ok($node->poll_query_until('md', 'SELECT count(*) = 0 FROM md.outbox_pending'),
	'the waiting event is published once the file is good');
my $msgs = kafka_consume($broker, 'price-events');
is(scalar(grep { $_->[0] eq 'CONF' } @$msgs), 2, 'both events exactly once');

$node->stop;
done_testing();
