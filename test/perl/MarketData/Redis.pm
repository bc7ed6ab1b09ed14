# MarketData::Redis: a private redis-server for a test, on a free loopback
# port, without persistence; stopped when the test ends.
package MarketData::Redis;

use strict;
use warnings;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

my @running;

sub new
{
	my ($class, %args) = @_;
	my $self = bless { port => $args{port} // PostgreSQL::Test::Cluster::get_free_port() }, $class;
	$self->{dir} = PostgreSQL::Test::Utils::tempdir('redis');
	$self->start;
	push @running, $self;
	return $self;
}

sub url { my $self = shift; return "redis://127.0.0.1:$self->{port}"; }
sub port { return shift->{port}; }

sub start
{
	my $self = shift;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', "$self->{dir}/redis.log");
		open(STDERR, '>&', \*STDOUT);
		exec('redis-server', '--port', $self->{port}, '--bind', '127.0.0.1',
			'--save', '', '--appendonly', 'no', '--dir', $self->{dir},
			'--daemonize', 'no', '--protected-mode', 'no')
		  or die "exec redis-server: $!";
	}
	$self->{pid} = $pid;
	for (1 .. 500)
	{
		return 1 if $self->ping;
		usleep(10_000);
	}
	die "redis-server did not start on port $self->{port}";
}

# stop: SIGKILL by default (a crash), so clients see the connection drop
sub stop
{
	my ($self, $sig) = @_;
	return unless $self->{pid};
	kill($sig // 'KILL', $self->{pid});
	waitpid($self->{pid}, 0);
	delete $self->{pid};
}

# command(@words): one command over a fresh connection, the raw reply line(s)
sub command
{
	my ($self, @words) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
		Proto => 'tcp', Timeout => 2) or return undef;
	my $cmd = '*' . scalar(@words) . "\r\n";
	$cmd .= '$' . length($_) . "\r\n$_\r\n" for @words;
	print $s $cmd;
	my $line = <$s>;
	if (defined $line && $line =~ /^\$(-?\d+)/)
	{
		return undef if $1 < 0;
		my $data = '';
		read($s, $data, $1 + 2);
		$line = substr($data, 0, $1);
	}
	elsif (defined $line)
	{
		$line =~ s/\r\n$//;
	}
	close $s;
	return $line;
}

sub ping { my $r = shift->command('PING'); return defined $r && $r eq '+PONG'; }

END
{
	local $?;
	$_->stop for @running;
}

1;
