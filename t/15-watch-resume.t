use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "WATCHES", "Resuming after a lost stream": a watch survives its server
# being killed and restarted, and resumes exactly where delivery stopped.

my $srv = EtcdTest->start;
my $P   = EtcdTest::prefix();

# ---------------------------------------------------------------------------
# every acknowledged write exactly once and in order across SIGKILL + restart

{
    my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 2);
    my (@events, @errs, $created);
    my $w = $c->watch("${P}r/", { prefix => 1 }, sub {
        my ($r, $e) = @_;
        return push @errs, $e if $e;
        $created++ if $r->{created};
        push @events, @{ $r->{events} };
    });
    ok(EtcdTest::run_until(5, sub { $created }), 'watch created');

    # One writer, one write at a time, each retried until acknowledged; the
    # member is killed after 30 writes and restarted 1 s later.
    my $total = 120;
    my ($i, $acked, $attempts, $busy) = (0, 0, 0, 0);
    my %acked_rev;
    my $next;
    $next = sub {
        return if $i >= $total;
        $busy = 1;
        $attempts++;
        my $n = $i;
        $c->put(sprintf('%sr/%04d', $P, $n), "v$n", sub {
            my ($r, $e) = @_;
            $busy = 0;
            if ($r) { $acked_rev{$n} = $r->{header}{revision}; $acked++; $i++ }
            my $t; $t = EV::timer($e ? 0.1 : 0, 0, sub { undef $t; $next->() });
        });
    };
    $next->();
    ok(EtcdTest::run_until(20, sub { $i >= 30 }), '30 writes before the kill');
    $srv->kill;
    my $down_at = Time::HiRes::time();
    EtcdTest::run_until(1, sub { 0 });
    $srv->restart;
    ok(EtcdTest::run_until(60, sub { $i >= $total }), "all $total writes acknowledged after the restart");
    my $want = $acked;
    ok(EtcdTest::run_until(20, sub { @events >= $want }), 'the watch delivered them');
    EtcdTest::run_until(1, sub { 0 });
    cmp_ok($attempts, '>', $total, 'some writes failed while the member was down (and were retried)');

    my @keys = map { $_->{kv}{key} } grep { $_->{type} eq 'PUT' } @events;
    my %count;
    $count{$_}++ for @keys;
    my @dups = grep { $count{$_} > 1 } sort keys %count;
    is_deeply(\@dups, [], 'no event delivered twice');
    my @missing = grep { !$count{ sprintf('%sr/%04d', $P, $_) } } 0 .. $total - 1;
    is_deeply(\@missing, [], 'no acknowledged write missed');
    my @revs = map { $_->{kv}{mod_revision} } @events;
    is_deeply(\@revs, [ sort { $a <=> $b } @revs ], 'events in revision order');
    is_deeply(\@keys, [ map { sprintf('%sr/%04d', $P, $_) } 0 .. $total - 1 ], 'keys in write order');
    is_deeply(\@errs, [], 'the watch reported no error');
    cmp_ok($created, '>=', 2, 'a new created response after the reconnect');
    $w->cancel(sub {});
    undef $c;
}

# ---------------------------------------------------------------------------
# a watch with nothing delivered yet resumes from its creation revision

{
    my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 2);
    my (@events, @errs, $created);
    my $w = $c->watch("${P}quiet", sub {
        my ($r, $e) = @_;
        return push @errs, $e if $e;
        $created++ if $r->{created};
        push @events, @{ $r->{events} };
    });
    ok(EtcdTest::run_until(5, sub { $created }), 'quiet watch created');
    $srv->kill;
    EtcdTest::run_until(0.5, sub { 0 });
    $srv->restart;
    # written by another client before the watch is back
    my $other = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 5);
    my $done;
    $other->put("${P}quiet", 'while-away', sub { $done = 1 });
    ok(EtcdTest::run_until(10, sub { $done }), 'write while the watch reconnects');
    ok(EtcdTest::run_until(10, sub { @events }), 'the write is delivered after the reconnect');
    is(join(',', map { $_->{kv}{value} } @events), 'while-away', 'exactly that event');
    is_deeply(\@errs, [], 'no error');
    $w->cancel(sub {});
}

# ---------------------------------------------------------------------------
# auto_reconnect => 0: one "Watch stream ended" error; max_retries => 0 too

for my $case ([ 'auto_reconnect => 0', {}, { auto_reconnect => 0 } ],
              [ 'max_retries => 0',    { max_retries => 0 }, {} ]) {
    my ($name, $copts, $wopts) = @$case;
    my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 2, %$copts);
    my (@errs, $created);
    $c->watch("${P}noreco", { %$wopts }, sub {
        my ($r, $e) = @_;
        return push @errs, $e if $e;
        $created++ if $r->{created};
    });
    ok(EtcdTest::run_until(5, sub { $created }), "$name: watch created");
    $srv->kill;
    ok(EtcdTest::run_until(5, sub { @errs }), "$name: an error after the kill");
    $srv->restart;
    EtcdTest::run_until(1, sub { 0 });
    is(scalar @errs, 1, "$name: exactly one error");
    is_deeply([ @{ $errs[0] || {} }{qw(code status message source retryable)} ],
              [ 14, 'UNAVAILABLE', 'Watch stream ended', 'watch', 1 ], "$name: the stream-ended error");
    is($created, 1, "$name: no reconnect");
}

# ---------------------------------------------------------------------------
# a server that is down for a while: the client backs off instead of spinning

{
    my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 2);
    my ($created, @errs) = (0);
    $c->watch("${P}down", sub { $_[1] ? push @errs, $_[1] : $_[0]{created} && $created++ });
    ok(EtcdTest::run_until(5, sub { $created }), 'watch created');
    my @t0 = times;
    $srv->kill;
    EtcdTest::run_until(3, sub { 0 });
    my @t1 = times;
    my $cpu = ($t1[0] - $t0[0]) + ($t1[1] - $t0[1]);
    cmp_ok($cpu, '<', 0.5, sprintf('3 s with the server down cost %.2f s of CPU', $cpu));
    is_deeply(\@errs, [], 'no error callbacks while reconnecting');
    $srv->restart;
    ok(EtcdTest::run_until(10, sub { $created >= 2 }), 'reconnected after the restart');
}

$srv->stop;
done_testing;
