#!/usr/bin/perl
# test/layers.pl: the layers call downwards only (STYLE.md "Layout").
#
# Reads the sources' #include lines and the symbols of the built objects
# (nm): extension/ includes no header of worker/ and references no symbol
# that a worker/ object defines; no file includes through "../" (the
# Makefile's -Iextension -Iworker say where headers are); and within one
# directory (extension/, worker/, api/src/) no files call each other in a
# circle. Prints TAP lines ("ok N - ...", "not ok N - ..."); exits 1 on a
# failure. Run after "make" and "make api" (the objects must exist).
#
#   perl test/layers.pl [TOP]
use strict;
use warnings;

my $top = shift // '.';
my @dirs = (
	{ name => 'extension', src => "$top/extension", obj => sub { "$top/extension/$_[0].o" } },
	{ name => 'worker',    src => "$top/worker",    obj => sub { "$top/worker/$_[0].o" } },
	{ name => 'api/src',   src => "$top/api/src",   obj => sub { "$top/api/.objs/$_[0].c.o" } },
);
my $n = 0;
my $failed = 0;

sub check
{
	my ($ok, $what, @why) = @_;
	$n++;
	print(($ok ? 'ok' : 'not ok') . " $n - $what\n");
	print "#   $_\n" for @why;
	$failed++ unless $ok;
}

sub files
{
	my ($dir, $ext) = @_;
	opendir(my $d, $dir) or die "cannot read $dir: $!";
	my @f = sort grep { /\.\Q$ext\E$/ } readdir $d;
	closedir $d;
	return @f;
}

# "name.c" -> quoted includes
sub includes
{
	my ($path) = @_;
	open(my $fh, '<', $path) or die "cannot read $path: $!";
	my @inc;
	while (<$fh>)
	{
		push @inc, $1 if /^\s*#\s*include\s+"([^"]+)"/;
	}
	close $fh;
	return @inc;
}

# object -> (defined => {sym=>1}, undefined => {sym=>1})
sub symbols
{
	my ($obj) = @_;
	die "missing object $obj: run make and make api first\n" unless -f $obj;
	my (%def, %undef);
	for (`nm -P $obj`)
	{
		my ($sym, $type) = split ' ';
		next unless defined $type;
		if ($type eq 'U') { $undef{$sym} = 1 }
		elsif ($type =~ /^[TDBRC]$/) { $def{$sym} = 1 }
	}
	return (\%def, \%undef);
}

# 1. includes
my %worker_headers = map { $_ => 1 } files("$top/worker", 'h');
my %ext_headers = map { $_ => 1 } files("$top/extension", 'h');
my (@up, @dotdot);
for my $d (@dirs)
{
	for my $f (files($d->{src}, 'c'), files($d->{src}, 'h'))
	{
		for my $inc (includes("$d->{src}/$f"))
		{
			push @dotdot, "$d->{name}/$f includes \"$inc\"" if $inc =~ m{\.\./};
			push @up, "extension/$f includes \"$inc\""
			  if $d->{name} eq 'extension'
			  && ($inc =~ m{worker/} || ($worker_headers{$inc} && !$ext_headers{$inc}));
		}
	}
}
check(!@up, 'extension/ includes no header of worker/', @up);
check(!@dotdot, 'no include through ../', @dotdot);

# 2. symbols: per directory, which file defines what
my %objs;		# dir name -> { file => [def, undef] }
for my $d (@dirs)
{
	for my $f (files($d->{src}, 'c'))
	{
		(my $base = $f) =~ s/\.c$//;
		$objs{ $d->{name} }{$f} = [ symbols($d->{obj}->($base)) ];
	}
}

my %worker_def;
for my $f (keys %{ $objs{worker} })
{
	$worker_def{$_} = $f for keys %{ $objs{worker}{$f}[0] };
}
my @calls_up;
for my $f (sort keys %{ $objs{extension} })
{
	for my $sym (sort keys %{ $objs{extension}{$f}[1] })
	{
		push @calls_up, "extension/$f references $sym of worker/$worker_def{$sym}"
		  if $worker_def{$sym};
	}
}
check(!@calls_up, 'extension/ references no symbol of worker/', @calls_up);

# 3. no circle of calls between the files of one directory (Tarjan's
# strongly connected components; a component of two or more is a circle)
for my $d (@dirs)
{
	my $files = $objs{ $d->{name} };
	my %def_by;
	for my $f (keys %$files)
	{
		$def_by{$_} = $f for keys %{ $files->{$f}[0] };
	}
	my %edges;
	for my $f (keys %$files)
	{
		for my $sym (keys %{ $files->{$f}[1] })
		{
			my $g = $def_by{$sym};
			$edges{$f}{$g}{$sym} = 1 if defined $g && $g ne $f;
		}
	}
	my ($index, @stack, %on, %idx, %low, @circles) = (0);
	my $visit;
	$visit = sub {
		my ($v) = @_;
		$idx{$v} = $low{$v} = $index++;
		push @stack, $v;
		$on{$v} = 1;
		for my $w (sort keys %{ $edges{$v} // {} })
		{
			if (!defined $idx{$w})
			{
				$visit->($w);
				$low{$v} = $low{$w} if $low{$w} < $low{$v};
			}
			elsif ($on{$w})
			{
				$low{$v} = $idx{$w} if $idx{$w} < $low{$v};
			}
		}
		if ($low{$v} == $idx{$v})
		{
			my @scc;
			my $w;
			do { $w = pop @stack; $on{$w} = 0; push @scc, $w } while ($w ne $v);
			push @circles, [ sort @scc ] if @scc > 1;
		}
	};
	$visit->($_) for grep { !defined $idx{$_} } sort keys %$files;
	my @why;
	for my $c (@circles)
	{
		my %in = map { $_ => 1 } @$c;
		push @why, 'circle: ' . join(' ', @$c);
		for my $f (@$c)
		{
			for my $g (sort grep { $in{$_} } keys %{ $edges{$f} // {} })
			{
				push @why, "  $f -> $g: " . join(' ', sort keys %{ $edges{$f}{$g} });
			}
		}
	}
	check(!@circles, "no circle of calls between the files of $d->{name}/", @why);
}

print "1..$n\n";
exit($failed ? 1 : 0);
