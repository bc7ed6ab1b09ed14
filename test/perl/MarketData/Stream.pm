# MarketData::Stream: clients of GET /prices/stream for tests.
#   sse($api, $query, headers => {...}): curl -N, its output parsed into
#     Server-Sent Events ({id, event, data (decoded JSON)})
#   ws($api, $query, headers => {...}): a WebSocket (Protocol::WebSocket)
#     whose messages are decoded JSON ({event, id, data})
# Both: ->pump (read what arrived), ->events, ->wait_for(sub, timeout)
# (pumping every millisecond, for latency checks), ->close.
package MarketData::Stream;

use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use Protocol::WebSocket::Client;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);

sub sse
{
	my ($class, $api, $query, %o) = @_;
	my $self = bless { kind => 'sse', events => [], raw => '', off => 0 }, $class;
	# curl writes to a file, not a pipe: it reads the stream at once
	# whatever the test is doing, as a client that keeps up would
	$self->{file} = PostgreSQL::Test::Utils::tempdir('sse') . '/out';
	my @cmd = ('curl', '-sS', '-N', '--no-buffer', '-D', '-');
	push @cmd, '-H', "$_: $o{headers}{$_}" for keys %{ $o{headers} // {} };
	push @cmd, $api->url . "/prices/stream?$query";
	$self->{h} = IPC::Run::start(\@cmd, '<', \undef, '>', $self->{file}, '2>', \$self->{err});
	return $self;
}

sub ws
{
	my ($class, $api, $query, %o) = @_;
	my $self = bless { kind => 'ws', events => [], raw => '' }, $class;
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $api->port, Proto => 'tcp')
	  or die "connect: $!";
	$sock->blocking(0);
	$self->{sock} = $sock;
	my $first = 1;
	my $client = Protocol::WebSocket::Client->new(url => 'ws://127.0.0.1:' . $api->port . "/prices/stream?$query");
	$client->on(write => sub {
		my ($c, $bytes) = @_;
		if ($first)
		{
			# the handshake: our headers before its blank line
			my $extra = join('', map { "$_: $o{headers}{$_}\r\n" } keys %{ $o{headers} // {} });
			$bytes =~ s/\r\n\r\n$/\r\n$extra\r\n/;
			$first = 0;
		}
		my $off = 0;
		while ($off < length $bytes)
		{
			my $n = syswrite($sock, $bytes, length($bytes) - $off, $off);
			if (!defined $n) { usleep(1000); next; }
			$off += $n;
		}
	});
	$client->on(read => sub {
		my ($c, $bytes) = @_;
		push @{ $self->{events} }, eval { decode_json($bytes) } // { raw => $bytes };
	});
	$client->on(connect => sub { $self->{connected} = 1; });
	$client->on(eof => sub { $self->{eof} = 1; });
	$self->{client} = $client;
	$client->connect;
	return $self;
}

# the HTTP status of an SSE stream (once its headers arrived)
sub status
{
	my $self = shift;
	$self->pump;
	return $self->{status};
}

sub pump
{
	my $self = shift;
	if ($self->{kind} eq 'sse')
	{
		eval { $self->{h}->pump_nb };
		if (open(my $fh, '<', $self->{file}))
		{
			seek($fh, $self->{off}, 0);
			local $/;
			my $more = <$fh> // '';
			$self->{off} += length $more;
			$self->{raw} .= $more;
			close $fh;
		}
		if (!defined $self->{status} && $self->{raw} =~ s/^HTTP\/1\.[01] (\d+)[^\n]*\n(.*?)\r?\n\r?\n//s)
		{
			$self->{status} = $1;
			$self->{headers} = $2;
		}
		return unless defined $self->{status};
		while ($self->{raw} =~ s/^(.*?)\n\n//s)
		{
			my $block = $1;
			my %e;
			for my $line (split /\n/, $block)
			{
				next if $line =~ /^:/;	# a comment: the heartbeat
				$e{$1} = $2 if $line =~ /^(\w+): ?(.*)$/;
			}
			if ($block =~ /^: heartbeat/) { $self->{heartbeats}++; next; }
			next unless %e;
			$e{event} //= 'message';
			$e{data} = eval { decode_json($e{data}) } // $e{data} if defined $e{data};
			push @{ $self->{events} }, \%e;
		}
		return;
	}
	my $buf;
	while (1)
	{
		my $n = sysread($self->{sock}, $buf, 65536);
		if (defined $n && $n == 0) { $self->{eof} = 1; last; }
		last unless defined $n;
		$self->{client}->read($buf);
	}
}

sub events { my $self = shift; $self->pump; return @{ $self->{events} }; }
sub prices { my $self = shift; return grep { ($_->{event} // '') eq 'price' } $self->events; }
sub last_id { my @p = shift->prices; return @p ? $p[-1]{id} : undef; }

# wait_for(sub { ... }, timeout_s): pump every millisecond until true
sub wait_for
{
	my ($self, $cond, $timeout) = @_;
	my $deadline = time() + ($timeout // 10);
	while (time() < $deadline)
	{
		$self->pump;
		return 1 if $cond->($self);
		usleep(1000);
	}
	$self->pump;
	return $cond->($self);
}

sub send_json
{
	my ($self, $msg) = @_;
	$self->{client}->write(ref $msg ? encode_json($msg) : $msg);
}

# closed by the server?
sub closed
{
	my $self = shift;
	$self->pump;
	return $self->{eof} if $self->{kind} eq 'ws';
	return !$self->{h}->pumpable;
}

sub close
{
	my $self = shift;
	if ($self->{kind} eq 'sse') { $self->{h}->kill_kill if $self->{h}->pumpable; }
	else { close($self->{sock}); }
}

sub DESTROY { my $self = shift; local $@; eval { $self->close }; }

1;
