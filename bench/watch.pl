#!/usr/bin/env perl
# Watch benchmark.
#
#   perl -Mblib bench/watch.pl [--watches 100000] [--latency 2000] [--down 6]
#
# 1. Scale: one client creates --watches watches on distinct keys, then
#    writes each key once (pipelined puts); reports the time until every
#    watch is created and every event delivered, and the client's RSS growth.
# 2. Latency: one watch, sequential puts; the time from issuing a put to its
#    event reaching the watch callback (p50, p99).
# 3. Outage: a watch open while etcd is down for --down seconds; the CPU the
#    client process uses meanwhile and how many error callbacks it got.
#
# Starts its own throwaway etcd (the outage part kills and restarts it),
# with its data directory on /dev/shm where that exists (set TMPDIR to
# choose another place): etcd fsyncs every write, and on a disk that fsync,
# not the client, would dominate the latency figures.
# Run it by hand; it is not a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use Time::HiRes qw(time);
use EV;
use EV::Etcd;
use EtcdTest;

my ($watches, $latency_n, $down, $inflight) = (100_000, 2_000, 6, 1_000);
GetOptions('watches=i' => \$watches, 'latency=i' => \$latency_n, 'down=i' => \$down,
           'inflight=i' => \$inflight) or die "bad options\n";

$ENV{TMPDIR} //= '/dev/shm' if -d '/dev/shm' && -w _;
my $server = EtcdTest->start(extra_args => ['--quota-backend-bytes=4294967296']);
my $ep = $server->endpoint;

sub rss_kb {
    open my $fh, '<', "/proc/$$/status" or return 0;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}
sub cpu { my @t = times; $t[0] + $t[1] }

# ---------------------------------------------------------------------------
# 1. scale

{
    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 60);
    my $rss0 = rss_kb();
    my ($created, $events, $errors) = (0, 0, 0);
    my @handles;
    my $t0 = time;
    for my $i (1 .. $watches) {
        push @handles, $c->watch("/bench/w/$i", sub {
            my ($r, $e) = @_;
            return $errors++ if $e;
            $created++ if $r->{created};
            $events += @{ $r->{events} };
            EV::break if $events == $watches;
        });
    }
    my ($issued, $acked) = (0, 0);
    my $next;
    my $put_cb = sub {
        die "put failed: $_[1]{message}\n" if $_[1];
        $acked++;
        $next->() if $issued < $watches;
    };
    $next = sub { $issued++; $c->put("/bench/w/$issued", 'x', $put_cb) };
    $next->() for 1 .. ($inflight < $watches ? $inflight : $watches);
    my $guard = EV::timer(120, 0, sub { EV::break });
    EV::run;
    my $t = time - $t0;
    my $rss = rss_kb();
    printf "scale: %d watches created (%d), %d events delivered, %d errors in %.2f s; RSS growth %.0f MB\n",
        $watches, $created, $events, $errors, $t, ($rss - $rss0) / 1024;
    printf "       target: all in < 10 s, RSS growth < 300 MB: %s\n",
        ($created == $watches && $events == $watches && $t < 10 && ($rss - $rss0) < 300 * 1024) ? 'met' : 'NOT met';
    my $cancelled = 0;
    $_->cancel(sub { $cancelled++ }) for @handles;
    EV::run;
    @handles = ();
    undef $c;
}

# ---------------------------------------------------------------------------
# 2. latency

{
    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 10);
    my ($sent, $got, @lat);
    my $w = $c->watch('/bench/lat', sub {
        my ($r, $e) = @_;
        die "watch failed: $e->{message}\n" if $e;
        return EV::break if $r->{created};
        if (@{ $r->{events} }) { push @lat, time - $sent; EV::break }
    });
    EV::run;    # created
    for my $i (1 .. $latency_n + 100) {
        $sent = time;
        $c->put('/bench/lat', $i, sub { die "put failed\n" if $_[1] });
        EV::run;
    }
    splice @lat, 0, 100;    # warm-up
    @lat = sort { $a <=> $b } @lat;
    my ($p50, $p99) = map { $lat[ int($_ * $#lat) ] * 1000 } 0.50, 0.99;
    printf "latency: %d sequential puts, put-to-event p50 %.3f ms, p99 %.3f ms (targets 0.3 / 1.2): %s\n",
        scalar @lat, $p50, $p99, ($p50 <= 0.3 && $p99 <= 1.2) ? 'met' : 'NOT met';
    $w->cancel(sub {});
    EV::run;
    undef $c;
}

# ---------------------------------------------------------------------------
# 3. outage

{
    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 10);
    my ($created, $errors, $events) = (0, 0, 0);
    my $w = $c->watch('/bench/down', sub {
        my ($r, $e) = @_;
        return $errors++ if $e;
        $created++ if $r->{created};
        $events += @{ $r->{events} };
    });
    my $t = EV::timer(5, 0, sub { EV::break });
    EV::run until $created;
    $server->kill;
    my $c0 = cpu();
    my $stop = EV::timer($down, 0, sub { EV::break });
    EV::run;
    my $used = cpu() - $c0;
    $server->restart;
    my $ok;
    $c->put('/bench/down', 'back', sub { $ok = !$_[1] });
    my $limit = EV::timer(20, 0, sub { EV::break });
    my $poll = EV::timer(0.05, 0.05, sub { EV::break if $events });
    EV::run;
    printf "outage: etcd down %d s with a watch open: client CPU %.3f s, %d error callbacks; "
         . "after restart: %s (target < 0.3 s CPU): %s\n",
        $down, $used, $errors, ($events ? 'event delivered' : 'NO event'),
        ($used < 0.3 && $events) ? 'met' : 'NOT met';
    $w->cancel(sub {});
}

$server->stop;
