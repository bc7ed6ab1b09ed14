# test/perl/MarketData/Services.pm
#	Real servers for the TAP tests, on 127.0.0.1 and free ports: the Kafka
#	test broker (test/kafka_broker) and Redis. Each is stopped when the test
#	ends, whatever happens.
package MarketData::Services;

use strict;
use warnings;
use Carp;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);
use Exporter 'import';

our @EXPORT = qw(start_kafka_broker kafka_down kafka_up kafka_consume
  start_redis stop_redis redis_cli wait_until top_dir kill9_and_wait_restart);
our @EXPORT_OK = qw(wait_for);

my @children;

END
{
	kill 'TERM', @children if @children;
}

sub top_dir
{
	return $ENV{MD_TOP} // '.';
}

# wait_until(sub { ... }, timeout_s): poll a condition every 50 ms
sub wait_until
{
	my ($cond, $timeout) = @_;
	$timeout //= 10;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		return 1 if $cond->();
		usleep(50_000);
	}
	return $cond->();
}

# wait_for(what, sub { ... }, timeout_s): wait_until, saying what timed out
sub wait_for
{
	my ($what, $cond, $timeout) = @_;
	return 1 if wait_until($cond, $timeout // 15);
	Test::More::diag("timed out waiting for $what");
	return 0;
}

# kill9_and_wait_restart(node, pid): kill -9 a server process and wait for
# the postmaster's crash restart, so that no query races it
sub kill9_and_wait_restart
{
	my ($node, $pid) = @_;
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
}

# start_kafka_broker(topics...): returns { pid, bootstrap }
sub start_kafka_broker
{
	my @topics = @_;
	my $dir = tempdir(CLEANUP => 1);
	my $file = "$dir/bootstrap";
	my $bin = top_dir() . '/test/kafka_broker';
	croak "$bin is missing: run make test/kafka_broker" unless -x $bin;
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/stdout");
		open(STDERR, '>', "$dir/stderr");
		exec($bin, '-p', '4', '-f', $file, @topics) or exit 127;
	}
	push @children, $pid;
	wait_until(sub { -s $file }, 10) or croak "kafka_broker did not start";
	open(my $fh, '<', $file) or croak "$file: $!";
	my $bootstrap = <$fh>;
	chomp $bootstrap;
	close $fh;
	return { pid => $pid, bootstrap => $bootstrap };
}

# an outage with the log and the ports kept: connections dropped and refused
sub kafka_down { kill 'USR1', $_[0]->{pid}; }
sub kafka_up { kill 'USR2', $_[0]->{pid}; }

# kafka_consume(broker, topic): every message as [key, value, partition, offset]
sub kafka_consume
{
	my ($broker, $topic) = @_;
	my ($out, $err) = run_command(
		[
			'kcat', '-C', '-b', $broker->{bootstrap}, '-t', $topic,
			'-o', 'beginning', '-e', '-q', '-f', "%k\t%s\t%p\t%o\n"
		]);
	return [ map { [ split /\t/ ] } grep { length } split /\n/, $out ];
}

# start_redis(): returns { pid, port, dir }
sub start_redis
{
	my ($port) = @_;
	$port //= PostgreSQL::Test::Cluster::get_free_port();
	my $dir = tempdir(CLEANUP => 1);
	my $pid = fork();
	croak "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/redis.log");
		open(STDERR, '>&', \*STDOUT);
		exec('redis-server', '--port', $port, '--bind', '127.0.0.1',
			'--save', '', '--appendonly', 'no', '--dir', $dir) or exit 127;
	}
	push @children, $pid;
	my $redis = { pid => $pid, port => $port, dir => $dir };
	wait_until(sub { redis_cli($redis, 'PING') eq 'PONG' }, 10)
	  or croak "redis-server did not start";
	return $redis;
}

sub stop_redis
{
	my ($redis) = @_;
	kill 'KILL', $redis->{pid};
	waitpid($redis->{pid}, 0);
}

# redis_cli(redis, args...): the reply, trimmed ('' when Redis is down)
sub redis_cli
{
	my ($redis, @args) = @_;
	my ($out, $err) = run_command([ 'redis-cli', '-h', '127.0.0.1', '-p', $redis->{port}, @args ]);
	$out //= '';
	chomp $out;
	return $out;
}

1;
