#!/usr/bin/env perl
# KV benchmark: EV::Etcd beside two pure-Rust clients, against the same
# etcd in the same run: a hand-written client on the module's own
# tonic/prost stack (bench/kv_baseline.rs) and the etcd-client crate run as
# its users run it, on a tokio runtime with one worker (bench/etcd-client/).
#
#   perl -Mblib bench/kv.pl [--ops 20000] [--inflight 100] [--rounds 5]
#                           [--seq 600] [--seq-rounds 15] [--on-event]
#
# Uses EV_ETCD_ENDPOINTS (first endpoint) when set, otherwise starts a
# throwaway etcd (t/lib/EtcdTest.pm: --unsafe-no-fsync when etcd has it, so
# the server is bound by the CPU it shares with the client, not by the
# disk). Phases: pipelined put and get (--inflight requests in flight) and
# sequential put and get (one request in flight, the next sent from the
# previous one's callback). Prints ops/s and the client's own CPU in
# microseconds per operation for each client, the ratios of this module's
# rate to each baseline's, and the round trip of the sequential phases;
# then where the time went: the module's CPU split between its engine
# thread and the Perl thread, the server's CPU per operation (when this
# script started the server) and the share of the machine's CPU left idle.
# The etcd-client baseline needs protoc to build: on PATH, in $PROTOC, or
# the one the module's build fetched. Run it by hand; it is not a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use Time::HiRes qw(time clock_gettime CLOCK_PROCESS_CPUTIME_ID);
use EV;
use EV::Etcd;

my ($ops, $inflight, $seq, $rounds, $seq_rounds, $on_event) = (20_000, 100, 600, 5, 15, 0);
GetOptions('ops=i' => \$ops, 'inflight=i' => \$inflight, 'seq=i' => \$seq, 'rounds=i' => \$rounds,
           'seq-rounds=i' => \$seq_rounds, 'on-event' => \$on_event)
    or die "bad options\n";

my ($endpoint, $server, $server_pid);
if ($ENV{EV_ETCD_ENDPOINTS}) {
    ($endpoint) = split /,/, $ENV{EV_ETCD_ENDPOINTS};
} else {
    require EtcdTest;
    $server = EtcdTest->start;
    $endpoint = $server->endpoint;
    $server_pid = $server->pid;
}

my $root = "$FindBin::Bin/..";
system("cd '$root' && cargo build --release --quiet --example kv_baseline") == 0
    or die "cannot build the baseline (cargo build --release --example kv_baseline)\n";

# protoc for etcd-client's build script: PATH, $PROTOC, or the binary of
# the protoc-bin-vendored crate that the module's own build downloaded.
unless ($ENV{PROTOC} || grep { -x "$_/protoc" } split /:/, $ENV{PATH} // '') {
    my $home = $ENV{CARGO_HOME} || "$ENV{HOME}/.cargo";
    require POSIX;
    my %arch = (x86_64 => 'x86_64', aarch64 => 'aarch_64', i686 => 'x86_32',
                ppc64le => 'ppcle_64', s390x => 's390_64');
    my $arch = $arch{ (POSIX::uname())[4] } // '';
    my ($vendored) = sort glob("$home/registry/src/*/protoc-bin-vendored-linux-$arch-*/bin/protoc");
    $ENV{PROTOC} = $vendored if $vendored;
}
my $crate_dir = "$FindBin::Bin/etcd-client";
system("cd '$crate_dir' && cargo build --release --locked --quiet") == 0
    or die "cannot build the etcd-client baseline (cd bench/etcd-client && cargo build --release)\n";
my %baseline = (
    tonic => "$root/target/release/examples/kv_baseline",
    crate => "$crate_dir/target/release/etcd-client-baseline",
);

# Process CPU time (both threads), to the nanosecond; the baseline measures
# itself the same way.
sub cpu { clock_gettime(CLOCK_PROCESS_CPUTIME_ID) }

# Linux only (undef elsewhere): CPU seconds of the given threads, from the
# nanosecond run times in /proc/PID/task/TID/schedstat.
sub tasks_cpu {
    my @files = @_;
    return undef unless @files;
    my $ns = 0;
    for my $f (@files) {
        open my $fh, '<', $f or return undef;
        my ($run) = split ' ', scalar <$fh>;
        $ns += $run;
    }
    return $ns / 1e9;
}
# All threads of the server.
sub server_cpu { defined $server_pid ? tasks_cpu(glob "/proc/$server_pid/task/*/schedstat") : undef }
# The client's engine (runtime) thread.
my $engine_stat;
sub engine_cpu {
    unless ($engine_stat) {
        for my $t (glob "/proc/$$/task/*") {
            open my $fh, '<', "$t/comm" or next;
            chomp(my $comm = <$fh> // '');
            $engine_stat = "$t/schedstat" if $comm eq 'ev-etcd-runtime';
        }
    }
    return $engine_stat ? tasks_cpu($engine_stat) : undef;
}
# (idle, total) jiffies of the whole machine.
sub machine {
    open my $fh, '<', '/proc/stat' or return;
    my (undef, @t) = split ' ', scalar <$fh>;
    @t = @t[0 .. 7];
    my $total = 0;
    $total += $_ for @t;
    return ($t[3] + $t[4], $total);
}

# Snapshot before a phase; `around_end` turns it into
# [server cpu seconds, idle share, engine cpu seconds] (undef where unknown).
sub around_start { [server_cpu(), engine_cpu(), machine()] }
sub around_end {
    my ($a) = @_;
    my ($s0, $e0, $i0, $t0) = @$a;
    my ($s1, $e1) = (server_cpu(), engine_cpu());
    my ($i1, $t1) = machine();
    return [
        (defined $s0 && defined $s1 ? $s1 - $s0 : undef),
        (defined $t0 && defined $t1 && $t1 > $t0 ? ($i1 - $i0) / ($t1 - $t0) : undef),
        (defined $e0 && defined $e1 ? $e1 - $e0 : undef),
    ];
}

# --on-event: the module's client has an event listener (POD "EVENTS AND
# COUNTERS"); without it nothing listens, and events cost nothing.
my $events = 0;
my $c = EV::Etcd->new(endpoints => [$endpoint], timeout => 30,
                      ($on_event ? (on_event => sub { $events++ }) : ()));
my $value = 'some-value-of-32-bytes-length...';

sub pipelined {
    my ($n, $put) = @_;
    my ($issued, $done) = (0, 0);
    my $next;
    my $cb = sub {
        die "request failed: $_[1]{message}\n" if $_[1];
        $done++;
        $next->() if $issued < $n;
    };
    $next = sub {
        my $k = "/bench/perl/" . ($issued++ % 1000);
        $put ? $c->put($k, $value, $cb) : $c->get($k, $cb);
    };
    my ($t0, $c0, $a) = (time, cpu(), around_start());
    $next->() for 1 .. ($inflight < $n ? $inflight : $n);
    EV::run;
    die "only $done of $n completed\n" unless $done == $n;
    return (time - $t0, cpu() - $c0, @{ around_end($a) });
}

sub sequential {
    my ($n, $put) = @_;
    my ($done, $i) = (0, 0);
    my $next;
    my $cb = sub {
        die "request failed: $_[1]{message}\n" if $_[1];
        $done++;
        $next->() if ++$i < $n;
    };
    $next = sub {
        my $k = "/bench/perl/seq" . ($i % 100);
        $put ? $c->put($k, 'v', $cb) : $c->get($k, $cb);
    };
    my ($t0, $c0, $a) = (time, cpu(), around_start());
    $next->();
    EV::run;
    die "only $done of $n completed\n" unless $done == $n;
    return (time - $t0, cpu() - $c0, @{ around_end($a) });
}

pipelined(1000, 1);    # warm-up: connection, allocator
sequential(200, 1);

my @PHASES = qw(put get seqput seqget);
my %NAME = (put => "pipelined put ($inflight)", get => "pipelined get ($inflight)",
            seqput => 'sequential put', seqget => 'sequential get');

# The clients take turns phase by phase, round after round (each baseline
# runs one phase per start, after its own warm-up), and the order in which
# they take their turns rotates from round to round, so that drift of the
# server (database growth, compaction, page cache) and of the machine hits
# all alike; each figure reported is the median over the rounds. A
# sequential round trip moves with the machine's scheduling from one
# second to the next, by 20% and more on a small virtual machine: the
# sequential phases are shorter and have more rounds (--seq-rounds), and
# each ratio is the median of the rounds' own ratios, each taken between
# runs a second or so apart.
my %RUN = (put => sub { pipelined($ops, 1) }, get => sub { pipelined($ops, 0) },
           seqput => sub { sequential($seq, 1) }, seqget => sub { sequential($seq, 0) });
my %N = (put => $ops, get => $ops, seqput => $seq, seqget => $seq);
my (%perl, %base);
sub take_turns {
    my ($round, @phases) = @_;
    my @clients = ('perl', sort keys %baseline);
    push @clients, shift @clients for 1 .. ($round - 1) % @clients;
    for my $p (@phases) {
        for my $who (@clients) {
            if ($who eq 'perl') {
                push @{ $perl{$p} }, [$N{$p}, $RUN{$p}->()];
                next;
            }
            my $pid = $server_pid // '';
            local $ENV{KV_PHASES} = $p;
            my $got = 0;
            for (`'$baseline{$who}' $endpoint $ops $inflight $seq $pid`) {
                my ($phase, $n, $s, $cpu, $scpu, $idle) = split;
                next unless defined $phase && $phase eq $p;
                push @{ $base{$who}{$phase} }, [$n, $s, $cpu, ($scpu < 0 ? undef : $scpu), ($idle < 0 ? undef : $idle)];
                $got++;
            }
            die "the $who baseline produced no figures for $p\n" unless $got == 1;
        }
    }
}
take_turns($_, qw(put get)) for 1 .. $rounds;
take_turns($_, qw(seqput seqget)) for 1 .. $seq_rounds;

sub median {
    my @v = sort { $a <=> $b } @_;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}
# ops/s and us/op medians over the rounds
sub figures {
    my ($runs) = @_;
    return (median(map { $_->[0] / $_->[1] } @$runs), median(map { 1e6 * $_->[2] / $_->[0] } @$runs));
}
# This module's rate over a baseline's, round by round (each round's runs
# against each other), in ascending order; `ratio` is their median.
sub ratios {
    my ($mine, $theirs) = @_;
    return sort { $a <=> $b }
        map { ($mine->[$_][0] / $mine->[$_][1]) / ($theirs->[$_][0] / $theirs->[$_][1]) } 0 .. $#$mine;
}
sub ratio { median(ratios(@_)) }
# Median of field $i over the rounds, per operation (us) or as a percentage;
# '-' when unknown.
sub per_op {
    my ($runs, $i) = @_;
    my @v = map { defined $_->[$i] ? 1e6 * $_->[$i] / $_->[0] : () } @$runs;
    return @v == @$runs ? sprintf('%.1f', median(@v)) : '-';
}
sub pct {
    my ($runs, $i) = @_;
    my @v = map { defined $_->[$i] ? 100 * $_->[$i] : () } @$runs;
    return @v == @$runs ? sprintf('%.0f%%', median(@v)) : '-';
}

printf "%d rounds of %d ops per pipelined phase, %d in flight; %d rounds of %d ops per sequential phase;\n"
    . "medians over the rounds (p/tonic, p/crate: of the rounds' own ratios)\n",
    $rounds, $ops, $inflight, $seq_rounds, $seq;
print "ops/s and client CPU us/op; perl: this module, tonic: bench/kv_baseline.rs, crate: etcd-client\n";
printf "%-20s %10s %8s %10s %8s %10s %8s %8s %8s\n", 'phase', 'perl ops/s', 'us/op',
    'tonic', 'us/op', 'crate', 'us/op', 'p/tonic', 'p/crate';
for my $p (@PHASES) {
    my ($pr, $pc) = figures($perl{$p});
    my ($tr, $tc) = figures($base{tonic}{$p});
    my ($cr, $cc) = figures($base{crate}{$p});
    printf "%-20s %10.0f %8.1f %10.0f %8.1f %10.0f %8.1f %8.3f %8.3f\n",
        $NAME{$p}, $pr, $pc, $tr, $tc, $cr, $cc, ratio($perl{$p}, $base{tonic}{$p}), ratio($perl{$p}, $base{crate}{$p});
}
print "\nthe rounds' own ratios to the crate: lowest, lower quartile, median, upper quartile, highest\n";
for my $p (@PHASES) {
    my @r = ratios($perl{$p}, $base{crate}{$p});
    printf "%-20s %s\n", $NAME{$p}, join('  ', map { sprintf '%.3f', $r[int($_ * $#r + 0.5)] } 0, 0.25, 0.5, 0.75, 1);
}
print "\nsequential round trip (us, median)\n";
for my $p (qw(seqput seqget)) {
    printf "%-20s perl %7.1f   tonic %7.1f   crate %7.1f\n", $NAME{$p},
        map { 1e6 / (figures($_))[0] } $perl{$p}, $base{tonic}{$p}, $base{crate}{$p};
}
# Each Perl run is [ops, seconds, cpu, server cpu, idle, engine cpu]; each
# baseline run [ops, seconds, cpu, server cpu, idle].
print "\nwhere the time went (us/op; idle: share of the machine's CPU left unused)\n";
printf "%-20s %11s %11s %11s %11s %11s %7s %7s %7s\n", 'phase', 'perl engine', 'perl thread',
    'server/perl', 'server/tonic', 'server/crate', 'idle/p', 'idle/t', 'idle/c';
for my $p (@PHASES) {
    my $engine = per_op($perl{$p}, 5);
    my $thread = $engine eq '-' ? '-' : sprintf('%.1f', median(map { 1e6 * ($_->[2] - $_->[5]) / $_->[0] } @{ $perl{$p} }));
    printf "%-20s %11s %11s %11s %11s %11s %7s %7s %7s\n", $NAME{$p}, $engine, $thread,
        per_op($perl{$p}, 3), per_op($base{tonic}{$p}, 3), per_op($base{crate}{$p}, 3),
        pct($perl{$p}, 4), pct($base{tonic}{$p}, 4), pct($base{crate}{$p}, 4);
}
