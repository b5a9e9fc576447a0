#!/usr/bin/env perl
# Where one round trip goes: sequential puts and gets (one request in
# flight), each stage's share of the time from the call to its callback.
#
#   EV_ETCD_FEATURES=trace perl Makefile.PL && make
#   perl -Mblib bench/latency.pl [--ops 5000] [--rounds 3] [--chain]
#
# Each request is made from the top level and waited for with EV::run;
# with --chain each is made from the previous one's callback instead, in
# one EV::run (as bench/kv.pl's sequential phases do).
#
# The stages (src/trace.rs): submit (the Perl thread hands the job
# over) -> pickup (the runtime thread has it) -> send (the call starts) ->
# wire (its bytes are written to the connection) -> reply (the last bytes
# read before its answer: the server's time is wire to reply) -> answer
# (its reply is decoded) -> queued (the completion is in the queue)
# -> signal (the notify fd is written) -> wakeup (the loop woke and the
# drain started) -> callback (the callback is about to run). A build without
# the trace feature prints the round trip only. Uses EV_ETCD_ENDPOINTS
# (first endpoint) when set, otherwise starts a throwaway etcd. Run it by
# hand; it is not a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use Time::HiRes qw(time);
use EV;
use EV::Etcd;

my ($ops, $rounds, $chain) = (5000, 3, 0);
GetOptions('ops=i' => \$ops, 'rounds=i' => \$rounds, 'chain' => \$chain) or die "bad options\n";

use EtcdTest;

my ($endpoint) = EtcdTest::example_endpoints();
my $c = EV::Etcd->new(endpoints => [$endpoint], timeout => 30);

sub phase {
    my ($put) = @_;
    return chained($put) if $chain;
    my $t0 = time;
    for my $i (1 .. $ops) {
        my $k = '/bench/latency/' . ($i % 100);
        my $ok;
        my $cb = sub { die "request failed: $_[1]{message}\n" if $_[1]; $ok = 1 };
        $put ? $c->put($k, 'v', $cb) : $c->get($k, $cb);
        EV::run;
        die "request $i incomplete\n" unless $ok;
    }
    return (time - $t0) / $ops;
}

sub chained {
    my ($put) = @_;
    my ($i, $next) = (0);
    my $cb = sub {
        die "request failed: $_[1]{message}\n" if $_[1];
        $next->() if ++$i < $ops;
    };
    $next = sub {
        my $k = '/bench/latency/' . ($i % 100);
        $put ? $c->put($k, 'v', $cb) : $c->get($k, $cb);
    };
    my $t0 = time;
    $next->();
    EV::run;
    die "only $i of $ops completed\n" unless $i == $ops;
    return (time - $t0) / $ops;
}

phase(1) for 1 .. 2;    # warm-up
EV::Etcd::_trace();
my $traced;
for my $round (1 .. $rounds) {
    for my $p ([put => 1], [get => 0]) {
        my $rt = phase($p->[1]);
        my ($n, @gaps) = @{ EV::Etcd::_trace() };
        printf "round %d %-4s %7.1f us per round trip", $round, $p->[0], 1e6 * $rt;
        if ($n) {
            $traced = 1;
            my $sum = 0;
            $sum += $_->[1] for @gaps;
            print join '', map { sprintf ' | %s %.1f', $_->[0], $_->[1] / 1e3 } @gaps;
            printf ' | outside %.1f', 1e6 * $rt - $sum / 1e3;
        }
        print "\n";
    }
}
print "(build with EV_ETCD_FEATURES=trace for the stages)\n" unless $traced;
print "us between the stage named and the one before it; outside: from the callback to the next call\n"
    if $traced;
