#!/usr/bin/env perl
# KV benchmark: EV::Etcd against a pure-Rust client on the same tonic stack
# (examples/kv_baseline.rs), same etcd, same run.
#
#   perl -Mblib bench/kv.pl [--ops 20000] [--inflight 100] [--seq 2000]
#
# Uses EV_ETCD_ENDPOINTS (first endpoint) when set, otherwise starts a
# throwaway etcd. Prints ops/s and the client's own CPU in microseconds per
# operation for pipelined put, pipelined get and sequential put+get, the
# baseline's figures, and the ratios. Run it by hand; it is not a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use Time::HiRes qw(time);
use EV;
use EV::Etcd;

my ($ops, $inflight, $seq) = (20_000, 100, 2_000);
GetOptions('ops=i' => \$ops, 'inflight=i' => \$inflight, 'seq=i' => \$seq) or die "bad options\n";

my ($endpoint, $server);
if ($ENV{EV_ETCD_ENDPOINTS}) {
    ($endpoint) = split /,/, $ENV{EV_ETCD_ENDPOINTS};
} else {
    require EtcdTest;
    $server = EtcdTest->start;
    $endpoint = $server->endpoint;
}

my $root = "$FindBin::Bin/..";
system("cd '$root' && cargo build --release --quiet --example kv_baseline") == 0
    or die "cannot build the baseline (cargo build --release --example kv_baseline)\n";

sub cpu { my @t = times; $t[0] + $t[1] }

my $c = EV::Etcd->new(endpoints => [$endpoint], timeout => 30);
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
    my ($t0, $c0) = (time, cpu());
    $next->() for 1 .. ($inflight < $n ? $inflight : $n);
    EV::run;
    die "only $done of $n completed\n" unless $done == $n;
    return (time - $t0, cpu() - $c0);
}

sub sequential {
    my ($n) = @_;
    my ($t0, $c0) = (time, cpu());
    for my $i (1 .. $n) {
        my $k = "/bench/perl/seq" . ($i % 100);
        my $ok = 0;
        $c->put($k, 'v', sub { die $_[1]{message} if $_[1]; $ok++ });
        EV::run;
        $c->get($k, sub { die $_[1]{message} if $_[1]; $ok++ });
        EV::run;
        die "sequential step $i incomplete\n" unless $ok == 2;
    }
    return (time - $t0, cpu() - $c0);
}

pipelined(1000, 1);    # warm-up: connection, allocator
my %perl;
$perl{put} = [$ops, pipelined($ops, 1)];
$perl{get} = [$ops, pipelined($ops, 0)];
$perl{seq} = [$seq * 2, sequential($seq)];

my %base;
for (`'$root/target/release/examples/kv_baseline' $endpoint $ops $inflight $seq`) {
    my ($phase, $n, $s, $cpu) = split;
    $base{$phase} = [$n, $s, $cpu];
}
die "baseline produced no figures\n" unless keys %base == 3;

printf "%-22s %12s %12s %12s %12s %8s\n", 'phase', 'perl ops/s', 'perl us/op', 'rust ops/s', 'rust us/op', 'ratio';
for my $p (qw(put get seq)) {
    my ($n, $s, $cpu) = @{ $perl{$p} };
    my ($bn, $bs, $bcpu) = @{ $base{$p} };
    my $name = { put => "pipelined put ($inflight)", get => "pipelined get ($inflight)", seq => 'sequential put+get' }->{$p};
    printf "%-22s %12.0f %12.1f %12.0f %12.1f %8.2f\n", $name, $n / $s, 1e6 * $cpu / $n, $bn / $bs, 1e6 * $bcpu / $bn, ($n / $s) / ($bn / $bs);
}
