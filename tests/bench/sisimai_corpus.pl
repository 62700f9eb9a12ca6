#!/usr/bin/perl
# The peer for bench_detector: Sisimai (Debian's libsisimai-perl) on the same files, read into
# memory first and parsed from memory (Sisimai->make(\$data)), one pass, CPU time from times().
# Prints: sisimai messages=N cpu_seconds=C messages_per_s=X version=V
# usage: sisimai_corpus.pl [--seconds S] PATH...   (S caps the run; only finished files count)
use strict;
use warnings;
use File::Find;
use Sisimai;

my $cap = 60;
my @paths;
while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--seconds') { $cap = shift @ARGV; next }
    push @paths, $a;
}
my @files;
find({ wanted => sub { push @files, $File::Find::name if -f $_ }, no_chdir => 1 }, @paths);
@files = sort @files;
my (@data, @names);
for my $f (@files) {
    open(my $fh, '<:raw', $f) or next;
    local $/;
    push @data, scalar <$fh>;
    push @names, $f;
    close $fh;
}

my ($u0, $s0) = times();
my ($messages, $cpu) = (0, 0);
for my $i (0 .. $#data) {
    my $copy = $data[$i];  # Sisimai may modify what it reads
    # Messages counted as bench_detector counts them: an mbox (starts with "From ", name not
    # ending in .eml) holds one per separator line after an empty line.
    my $n = 1;
    if ($copy =~ /\AFrom / && $names[$i] !~ /\.eml\z/i) {
        $n = 1 + (() = $copy =~ /\n\r?\n(?=From )/g);
    }
    eval { my $r = Sisimai->make(\$copy, 'delivered' => 1, 'vacation' => 1); };
    $messages += $n;
    my ($u, $s) = times();
    $cpu = ($u - $u0) + ($s - $s0);
    last if $cpu >= $cap;
}
$cpu = 0.001 if $cpu <= 0;
printf("sisimai messages=%d cpu_seconds=%.3f messages_per_s=%.0f version=%s\n",
       $messages, $cpu, $messages / $cpu, $Sisimai::VERSION);
