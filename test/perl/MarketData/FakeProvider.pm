# test/perl/MarketData/FakeProvider.pm
#	Start and stop the fake provider (test/fake_provider) for a test, and
#	point md.providers at it.
#
#	my $fake = MarketData::FakeProvider->new(latency_ms => 20, key => 'k',
#		redirect_to => $other->url);     # where REDIRECT* symbols are sent
#	$fake->point_providers($node, 'md');     # every HTTP provider -> the fake
#	$fake->requests;                          # provider requests served so far
#	$fake->stop;                              # also done when it goes out of scope
package MarketData::FakeProvider;

use strict;
use warnings;
use Carp;
use HTTP::Tiny;
use IPC::Run;
use Time::HiRes qw(time sleep);

sub top
{
	return $ENV{MD_TOP} if $ENV{MD_TOP};
	my $dir = __FILE__;
	$dir =~ s{/test/perl/MarketData/FakeProvider\.pm$}{};
	return $dir;
}

sub binary
{
	my $bin = top() . '/test/fake_provider/fake_provider';
	croak "fake provider not built: run make -C test/fake_provider" unless -x $bin;
	return $bin;
}

sub new
{
	my ($class, %opts) = @_;
	my @cmd = (binary(), '--fixtures', $opts{fixtures} // top() . '/test/fixtures/providers', '--port', 0);
	push @cmd, '--latency-ms', $opts{latency_ms} if $opts{latency_ms};
	push @cmd, '--key', $opts{key} if defined $opts{key};
	push @cmd, '--redirect-to', $opts{redirect_to} if defined $opts{redirect_to};
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(\@cmd, \$in, \$out, \$err);
	my $deadline = time() + 10;
	while ($out !~ /^PORT (\d+)$/m)
	{
		croak "fake provider did not start: $err" if time() > $deadline || !$h->pumpable;
		$h->pump_nb;
		sleep(0.02);
	}
	my ($port) = $out =~ /^PORT (\d+)$/m;
	return bless { handle => $h, port => $port, out => \$out, err => \$err }, $class;
}

sub port { return $_[0]->{port} }

sub url { return 'http://127.0.0.1:' . $_[0]->{port} }

# number of provider requests the fake has answered (or is answering)
sub requests
{
	my ($self) = @_;
	my $r = HTTP::Tiny->new(timeout => 5)->get($self->url . '/_count');
	croak "fake provider /_count failed: $r->{status}" unless $r->{success};
	return $r->{content} + 0;
}

# point every HTTP provider of md.providers in $db at the fake; the fake
# has no quota, so our request budget is lifted too (a test of the budget
# sets rate_limit_per_minute after this)
sub point_providers
{
	my ($self, $node, $db) = @_;
	$node->safe_psql($db, "UPDATE md.providers SET base_url = '" . $self->url
		  . "', rate_limit_per_minute = 100000 WHERE name <> 'sandbox'");
}

sub stop
{
	my ($self) = @_;
	return unless $self->{handle};
	$self->{handle}->signal('TERM');
	eval { $self->{handle}->finish; };
	delete $self->{handle};
}

sub DESTROY { $_[0]->stop }

1;
