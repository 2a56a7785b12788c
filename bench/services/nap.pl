# nap.pl IN OUT: sleeps for the seconds written in IN, then copies IN to OUT (see nap.conf).
# Prints when it started and ended (ms since the epoch), for the benchmark to see where time went.
use strict;
use warnings;
use Time::HiRes qw(sleep time);

$| = 1;
printf("nap: start %.1f\n", time() * 1000);

my ($in, $out) = @ARGV;
die "usage: nap.pl IN OUT\n" unless defined $out;
open(my $r, '<', $in) or die "nap: $in: $!\n";
my $text = do { local $/; <$r> };
close($r);
my ($seconds) = $text =~ /([0-9]+(?:\.[0-9]+)?)/;
sleep($seconds // 0);
open(my $w, '>', $out) or die "nap: $out: $!\n";
print $w $text;
close($w) or die "nap: $out: $!\n";
printf("nap: end %.1f\n", time() * 1000);
