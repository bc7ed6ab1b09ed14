# MarketData::LB: HAProxy in front of a MarketData::API, started from the
# configuration make run uses (api/conf/haproxy/marketdata.cfg + local.cfg),
# plain HTTP and HTTPS (a throwaway CA from test/tls_ca.sh) on free loopback
# ports. The request helpers of MarketData::API work on it. Stopped when
# the test ends.
package MarketData::LB;

use strict;
use warnings;
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);
use MarketData::API;

my @running;

# new(api => $api)
sub new
{
	my ($class, %args) = @_;
	my $self = bless {
		api => $args{api},
		port => PostgreSQL::Test::Cluster::get_free_port(),
		https_port => PostgreSQL::Test::Cluster::get_free_port(),
		dir => PostgreSQL::Test::Utils::tempdir('lb'),
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 0),
	}, $class;
	my $top = $MarketData::API::TOP;
	system("$top/test/tls_ca.sh", $self->{dir}) == 0 or die 'tls_ca.sh failed';
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$self->{dir}/haproxy.log");
		open(STDERR, '>&', \*STDOUT);
		$ENV{MD_LB_HTTP} = "127.0.0.1:$self->{port}";
		$ENV{MD_LB_HTTPS} = "127.0.0.1:$self->{https_port}";
		$ENV{MD_LB_TLS_PEM} = "$self->{dir}/server.pem";
		$ENV{MD_LB_API} = '127.0.0.1:' . $self->{api}->port;
		exec('haproxy', '-db', '-f', "$top/api/conf/haproxy/marketdata.cfg",
			'-f', "$top/api/conf/haproxy/local.cfg") or die "exec haproxy: $!";
	}
	$self->{pid} = $pid;
	push @running, $self;
	my $deadline = time() + 15;
	while (time() < $deadline)
	{
		my $r = $self->{http}->get($self->url . '/health');
		return $self if $r->{status} == 200;
		usleep(50_000);
	}
	die "HAProxy did not start: see $self->{dir}/haproxy.log";
}

sub port { return shift->{port}; }
sub https_port { return shift->{https_port}; }
sub ca { return shift->{dir} . '/ca.pem'; }
sub url { my $self = shift; return "http://127.0.0.1:$self->{port}"; }
sub https_url { my $self = shift; return "https://localhost:$self->{https_port}"; }
sub raw { my $self = shift; return MarketData::API::raw($self, @_); }
sub request { my $self = shift; return MarketData::API::request($self, @_); }
sub get { my ($self, $path, %o) = @_; return $self->request('GET', $path, %o); }
sub post { my ($self, $path, %o) = @_; return $self->request('POST', $path, %o); }

sub stop
{
	my $self = shift;
	return unless $self->{pid};
	kill('TERM', $self->{pid});
	waitpid($self->{pid}, 0);
	$self->{pid} = undef;
}

END { local $?; $_->stop for @running; }

1;
