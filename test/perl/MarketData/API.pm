# MarketData::API: the Kore REST API (api/api.so) started for a test against
# a PostgreSQL::Test::Cluster node and a MarketData::Redis, on a free
# loopback port, with HTTP helpers. Stopped when the test ends.
package MarketData::API;

use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);

my @running;
our $TOP = $ENV{MD_TOP} // '.';

# new(node => $node, db => 'md', redis => $redis, workers => 1, env => {...})
sub new
{
	my ($class, %args) = @_;
	my $self = bless {
		node => $args{node}, db => $args{db} // 'md', redis => $args{redis},
		workers => $args{workers} // 1, env => $args{env} // {},
		port => PostgreSQL::Test::Cluster::get_free_port(),
	}, $class;
	$self->{dir} = PostgreSQL::Test::Utils::tempdir('api');
	grant_api_role($self->{node}, $self->{db});
	$self->{http} = HTTP::Tiny->new(timeout => 30, keep_alive => 0);
	$self->start;
	push @running, $self;
	return $self;
}

# The API connects as this role, which md_api_grant() lets run the
# md._api_* functions and nothing else, as in docker and make run: every
# API test then also proves the API needs no more.
our $API_ROLE = 'md_api';

sub grant_api_role
{
	my ($node, $db) = @_;
	$node->safe_psql($db, qq{
DO \$\$BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$API_ROLE') THEN
		CREATE ROLE $API_ROLE LOGIN;
	END IF;
END\$\$;
SELECT md_api_grant('$API_ROLE');});
}

sub port { return shift->{port}; }
sub url { my $self = shift; return "http://127.0.0.1:$self->{port}"; }
sub log_file { return shift->{dir} . '/kore.log'; }

sub start
{
	my $self = shift;
	my $conf = "$self->{dir}/kore.conf";
	open(my $fh, '>', $conf) or die "$conf: $!";
	print $fh <<"CONF";
server api {
	bind 127.0.0.1 $self->{port}
	tls no
}
workers $self->{workers}
worker_set_affinity 0
pidfile $self->{dir}/kore.pid
load $TOP/api/api.so
include $TOP/api/conf/api.conf
CONF
	close $fh;

	my %env = (
		MD_API_DATABASE_URL => $self->{node}->connstr($self->{db}) . " user=$API_ROLE",
		REDIS_URL => $self->{redis} ? $self->{redis}->url : 'redis://127.0.0.1:1',
		%{ $self->{env} });
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		chdir $self->{dir};
		$ENV{$_} = $env{$_} for keys %env;
		open(STDOUT, '>>', "$self->{dir}/kore.log");
		open(STDERR, '>&', \*STDOUT);
		exec('kore', '-f', '-n', '-r', '-c', $conf) or die "exec kore: $!";
	}
	$self->{pid} = $pid;
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $r = $self->{http}->get($self->url . '/health');
		return 1 if $r->{status} == 200;
		die "kore exited at start: " . slurp_file($self->log_file)
		  if waitpid($pid, 1) == $pid;
		usleep(20_000);
	}
	die "the API did not answer /health";
}

# stop($signal): signal the parent and wait until it exits; its exit status
sub stop
{
	my ($self, $sig) = @_;
	return unless $self->{pid};
	kill($sig // 'TERM', $self->{pid});
	waitpid($self->{pid}, 0);
	my $rc = $?;
	delete $self->{pid};
	return $rc;
}

# worker_pids(): the PIDs of Kore's processes under the parent, sorted
sub worker_pids
{
	my $self = shift;
	my @pids;
	for my $stat (glob('/proc/[0-9]*/stat'))
	{
		open(my $fh, '<', $stat) or next;
		my $line = <$fh> // '';
		close $fh;
		# pid (comm) state ppid ...: comm may hold spaces and parentheses
		push @pids, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $self->{pid};
	}
	return sort { $a <=> $b } @pids;
}

# raw($bytes, timeout => 5): write the bytes on one new connection as they
# are, read until the server closes or nothing comes for the timeout; the
# bytes received. With half_close => 1 our side is shut after writing.
sub raw
{
	my ($self, $bytes, %o) = @_;
	require IO::Socket::INET;
	require IO::Select;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
		Proto => 'tcp') or die "connect: $!";
	$s->autoflush(1);
	# the server may close before it read everything (a header too large)
	local $SIG{PIPE} = 'IGNORE';
	print $s $bytes;
	shutdown($s, 1) if $o{half_close};
	my $sel = IO::Select->new($s);
	my $got = '';
	while ($sel->can_read($o{timeout} // 5))
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$got .= $buf;
		last if defined $o{responses} && responses($got) >= $o{responses};
	}
	close $s;
	return $got;
}

# responses($bytes): how many complete HTTP responses the bytes hold; in
# list context the responses as [status, headers text, body]
sub responses
{
	my $text = shift;
	my @r;
	while ($text =~ s{^(HTTP/1\.[01] (\d{3})[^\r\n]*\r\n((?:[^\r\n]+\r\n)*)\r\n)}{}s)
	{
		my ($status, $headers) = ($2, $3);
		my $len = $headers =~ /^content-length:\s*(\d+)/mi ? $1 : 0;
		last if length($text) < $len;
		push @r, [ $status, $headers, substr($text, 0, $len, '') ];
	}
	return wantarray ? @r : scalar @r;
}

sub signal { my ($self, $sig) = @_; die "no API process" unless $self->{pid}; kill($sig, $self->{pid}); }
sub pid { return shift->{pid}; }

# request($method, $path, key => ..., bearer => ..., body => ..., headers => {})
# returns the HTTP::Tiny response with ->{json} decoded when possible
sub request
{
	my ($self, $method, $path, %o) = @_;
	my %h = %{ $o{headers} // {} };
	$h{'X-API-Key'} = $o{key} if defined $o{key};
	$h{'Authorization'} = "Bearer $o{bearer}" if defined $o{bearer};
	my %opt = (headers => \%h);
	if (defined $o{body})
	{
		$opt{content} = ref $o{body} ? encode_json($o{body}) : $o{body};
		$h{'Content-Type'} //= 'application/json';
	}
	my $r = $self->{http}->request($method, $self->url . $path, \%opt);
	$r->{json} = eval { decode_json($r->{content}) } if length($r->{content} // '');
	return $r;
}

sub get { my ($self, $path, %o) = @_; return $self->request('GET', $path, %o); }
sub post { my ($self, $path, %o) = @_; return $self->request('POST', $path, %o); }
sub delete { my ($self, $path, %o) = @_; return $self->request('DELETE', $path, %o); }

# metric($name_with_labels): the value of one line of /metrics (0 if absent)
sub metric
{
	my ($self, $name) = @_;
	my $r = $self->get('/metrics');
	for my $line (split /\n/, $r->{content})
	{
		return $1 if index($line, "$name ") == 0 && $line =~ / (\S+)$/;
	}
	return 0;
}

# is_error_shape($res, $status, $code): the one error shape
sub error_ok
{
	my ($res, $status, $code, $name) = @_;
	my $ok = $res->{status} == $status && ref $res->{json} eq 'HASH'
	  && ref $res->{json}{error} eq 'HASH'
	  && defined $res->{json}{error}{message}
	  && (!defined $code || ($res->{json}{error}{code} // '') eq $code);
	Test::More::ok($ok, $name)
	  or Test::More::diag("got $res->{status}: " . ($res->{content} // ''));
	return $ok;
}

# node_with_extension(): a started node with the extension, database md,
# and track_functions so tests can count database calls
sub node_with_extension
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'marketdata'
track_functions = 'all'
max_connections = 60
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE DATABASE md');
	$node->safe_psql('md', 'CREATE EXTENSION marketdata');
	return $node;
}

END
{
	local $?;
	$_->stop('TERM') for @running;
}

1;
