use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# Memory stays flat (RSS growth under 8 MB after a warm-up) across 100k
# pipelined put+get pairs and across 10k watch create/cancel cycles, plus
# the other handle kinds where this build has them. EV_ETCD_MEM_PAIRS and
# EV_ETCD_MEM_WATCHES change the counts. See xt/valgrind.sh for a leak check
# under valgrind.

plan skip_all => 'needs /proc/self/status (Linux)' unless -r '/proc/self/status';

my $PAIRS   = $ENV{EV_ETCD_MEM_PAIRS}   // 100_000;
my $WATCHES = $ENV{EV_ETCD_MEM_WATCHES} // 10_000;
my $LIMIT_KB = 8 * 1024;

sub rss_kb {
    open my $fh, '<', '/proc/self/status' or die "/proc/self/status: $!";
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)\s+kB/ }
    die 'no VmRSS';
}

my $srv = EtcdTest->start;
my $P   = EtcdTest::prefix();
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 30);

# Runs $n put+get pairs with up to $window pairs in flight; returns the
# number of callbacks that reported an error or a wrong value.
sub pairs {
    my ($n, $window) = @_;
    my ($issued, $done, $bad) = (0, 0, 0);
    my $next;
    $next = sub {
        return if $issued >= $n;
        my $i = $issued++;
        my $key = "${P}m/" . ($i % 100);
        $c->put($key, "value $i", sub {
            my ($r, $e) = @_;
            $bad++ if $e || !$r;
            $c->get($key, sub {
                my ($r, $e) = @_;
                $bad++ if $e || !$r || !@{ $r->{kvs} };
                $done++;
                $next->();
            });
        });
    };
    $next->() for 1 .. $window;
    EtcdTest::run_until(300, sub { $done >= $n }) or diag("only $done of $n pairs done");
    undef $next;
    return $bad + ($n - $done);
}

{
    is(pairs(10_000, 200), 0, 'warm-up: 10k put+get pairs, all answered correctly');
    my $before = rss_kb();
    my $t0 = Time::HiRes::time();
    is(pairs($PAIRS, 200), 0, "$PAIRS put+get pairs, all answered correctly");
    my $took = Time::HiRes::time() - $t0;
    my $growth = rss_kb() - $before;
    diag(sprintf 'put+get: RSS %d kB -> %+d kB after %d pairs (%.1f s, %.0f pairs/s)',
         $before, $growth, $PAIRS, $took, $PAIRS / $took);
    cmp_ok($growth, '<', $LIMIT_KB, "RSS growth under 8 MB across $PAIRS put+get pairs");
}

# Watch (and observe) handles created and cancelled one after another, in
# batches of 100 open at once.
sub cycles {
    my ($n, $open) = @_;
    my ($done, $bad) = (0, 0);
    while ($done < $n) {
        my ($created, $cancelled) = (0, 0);
        my @h = map {
            my $i = $_;
            $c->watch("${P}w/$i", { prefix => $i % 2 }, sub {
                my ($r, $e) = @_;
                $e ? $bad++ : $created++;
            });
        } 1 .. $open;
        EtcdTest::run_until(30, sub { $created >= $open }) or $bad++;
        $_->cancel(sub { $cancelled++ }) for @h;
        EtcdTest::run_until(30, sub { $cancelled >= $open }) or $bad++;
        $done += $open;
    }
    return $bad;
}

{
    is(cycles(1_000, 100), 0, 'warm-up: 1k watch create/cancel cycles');
    my $before = rss_kb();
    my $t0 = Time::HiRes::time();
    is(cycles($WATCHES, 100), 0, "$WATCHES watch create/cancel cycles without an error");
    my $took = Time::HiRes::time() - $t0;
    my $growth = rss_kb() - $before;
    diag(sprintf 'watch cycles: RSS %d kB -> %+d kB after %d cycles (%.1f s)', $before, $growth, $WATCHES, $took);
    cmp_ok($growth, '<', $LIMIT_KB, "RSS growth under 8 MB across $WATCHES watch cycles");
}

SKIP: {
    skip 'no election_observe/lease_keepalive_start in this build', 1
        unless EV::Etcd->can('election_observe') && EV::Etcd->can('lease_keepalive_start');
    my $caller = EtcdTest::Caller->new($c);
    my $lease = $caller->lease(60);
    my $run = sub {
        my ($n) = @_;
        for (1 .. $n / 100) {
            my $cancelled = 0;
            my @o = map { $c->election_observe("${P}e/$_", sub { }) } 1 .. 100;
            my @k = map { $c->lease_keepalive_start($lease, sub { }) } 1 .. 100;
            EtcdTest::run_until(0.05, sub { 0 });
            $_->cancel(sub { $cancelled++ }) for @o;
            $_->stop for @k;
            EtcdTest::run_until(30, sub { $cancelled >= 100 });
        }
    };
    $run->(500);
    my $before = rss_kb();
    $run->(3_000);
    my $growth = rss_kb() - $before;
    diag(sprintf 'observe+keepalive cycles: RSS %+d kB after 3000 of each', $growth);
    cmp_ok($growth, '<', $LIMIT_KB, 'RSS growth under 8 MB across 3000 observe and keepalive cycles');
    $caller->revoke_leases;
}

done_testing;
