use strict;
use warnings;
use Test::More;
use B ();
use POSIX ();
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "new" (health_interval, on_health_change), "HEALTH MONITORING" (health
# monitoring and failover), "DESTRUCTION" (the timer stops with the client),
# "RETRIES AND FAILOVER", "THE EVENT LOOP" and "THREADS AND FORK" (an enabled
# monitor keeps EV::run alive; fork).

EtcdTest::need_etcd();
my $P = EtcdTest::prefix();

sub is_int { my ($v) = @_; defined $v && !ref $v && (B::svref_2object(\$v)->FLAGS & B::SVf_IOK) ? 1 : 0 }

# A client with a health monitor, recording every change with its time.
sub monitored {
    my (%opt) = @_;
    my @changes;
    my $t0 = Time::HiRes::time();
    my $c = EV::Etcd->new(timeout => 5, health_interval => 1, %opt,
        on_health_change => sub {
            push @changes, { argc => scalar @_, healthy => $_[0], endpoint => $_[1],
                             at => Time::HiRes::time() - $t0 };
        });
    return ($c, \@changes);
}

# Writes every 100 ms while the loop runs; counts outcomes.
sub writer {
    my ($c, $stats) = @_;
    my $n = 0;
    return EV::timer(0, 0.1, sub {
        my $i = ++$n;
        $stats->{sent}++;
        $c->put("${P}w", "v$i", sub { $_[1] ? $stats->{err}++ : $stats->{ok}++; $stats->{calls}++ });
    });
}

# Writes keep succeeding for $secs; then the writer stops and every write
# must have called back.
sub writes_go_on {
    my ($name, $stats, $wref, $secs, $min) = @_;
    my $mark = $stats->{ok} // 0;
    EtcdTest::run_loop($secs);
    cmp_ok(($stats->{ok} // 0) - $mark, '>', $min, "$name: requests keep working");
    undef $$wref;
    EtcdTest::run_until(10, sub { ($stats->{calls} // 0) == $stats->{sent} });
    is($stats->{calls}, $stats->{sent}, "$name: every write called back");
}

sub changes_are {
    my ($changes, $want, $name) = @_;
    is_deeply([ map { [ $_->{healthy}, $_->{endpoint} ] } @$changes ], $want, $name)
        or diag(explain($changes));
}

# ---------------------------------------------------------------------------
# two endpoints: killing the current member moves to the next one

{
    my $m1 = EtcdTest->start;
    my $m2 = EtcdTest->start;
    my ($c, $changes) = monitored(endpoints => [ $m1->endpoint, $m2->endpoint ]);
    my %stats;
    my $w = writer($c, \%stats);
    EtcdTest::run_loop(2.5);
    is_deeply($changes, [], 'two endpoints: nothing reported while healthy (initial state is healthy)');
    my $before = $stats{ok} // 0;
    cmp_ok($before, '>', 5, 'two endpoints: writes succeed before the kill');

    $m1->kill;
    EtcdTest::run_until(10, sub { @$changes >= 2 });
    changes_are($changes, [ [ 0, $m2->endpoint ], [ 1, $m2->endpoint ] ],
                'two endpoints: (0, next endpoint) then (1, next endpoint)');
    ok(!grep({ $_->{argc} != 2 } @$changes), 'two endpoints: the callback gets two arguments');
    ok(is_int($changes->[0]{healthy}) && is_int($changes->[1]{healthy}), 'two endpoints: $is_healthy is an integer');
    if (@$changes >= 2) {
        my $gap = $changes->[1]{at} - $changes->[0]{at};
        cmp_ok($gap, '>', 0.5, 'two endpoints: recovery reported on a later tick');
        cmp_ok($gap, '<', 1.5, 'two endpoints: ... one tick later');
    }
    writes_go_on('two endpoints, after the kill', \%stats, \$w, 1.5, 5);
    cmp_ok($stats{err} // 0, '<=', 2, 'two endpoints: at most the writes in flight at the kill failed');

    my $r;
    $c->get("${P}w", sub { $r = [@_] });
    EtcdTest::run_until(10, sub { $r });
    ok($r && $r->[0] && $r->[0]{header}{member_id}, 'two endpoints: a read is answered by the remaining member');
    EtcdTest::run_loop(1.5);
    is(scalar @$changes, 2, 'two endpoints: no further change while healthy');
}

# ---------------------------------------------------------------------------
# one endpoint: (0, ep) when it dies, (1, ep) after a restart

{
    my $m = EtcdTest->start;
    my ($c, $changes) = monitored(endpoints => [ $m->endpoint ]);
    my %stats;
    my $w = writer($c, \%stats);
    EtcdTest::run_loop(1.5);
    is_deeply($changes, [], 'one endpoint: nothing reported while healthy');

    $m->kill;
    EtcdTest::run_until(5, sub { @$changes >= 1 });
    changes_are($changes, [ [ 0, $m->endpoint ] ], 'one endpoint: (0, ep) when the member dies');
    # (the report may come before the first write issued after the kill
    # has called back)
    ok(EtcdTest::run_until(3, sub { $stats{err} }), 'one endpoint: requests fail meanwhile');

    $m->restart;
    EtcdTest::run_until(10, sub { @$changes >= 2 });
    changes_are($changes, [ [ 0, $m->endpoint ], [ 1, $m->endpoint ] ], 'one endpoint: (1, ep) after the restart');
    writes_go_on('one endpoint, after the restart', \%stats, \$w, 1, 3);

    # recovery is noticed without any request: the monitor probes a down endpoint
    @$changes = ();
    $m->kill;
    my $r;
    $c->get("${P}w", sub { $r = [@_] });
    EtcdTest::run_until(10, sub { $r });
    ok($r && $r->[1], 'one endpoint, idle: a request finds the member down');
    EtcdTest::run_until(5, sub { @$changes >= 1 });
    $m->restart;
    EtcdTest::run_until(10, sub { @$changes >= 2 });
    changes_are($changes, [ [ 0, $m->endpoint ], [ 1, $m->endpoint ] ],
                'one endpoint, idle: recovery reported without any request (probe)');
}

# ---------------------------------------------------------------------------
# idle client: a member dying while no request runs is noticed (its
# connection closes), without any request

{
    my $m1 = EtcdTest->start;
    my $m2 = EtcdTest->start;
    my ($c, $changes) = monitored(endpoints => [ $m1->endpoint, $m2->endpoint ]);
    my $r;
    $c->get("${P}w", sub { $r = [@_] });
    EtcdTest::run_until(10, sub { $r });
    ok($r && $r->[0], 'idle: a first request connects');
    EtcdTest::run_loop(1.2);
    is_deeply($changes, [], 'idle: nothing reported while connected');
    $m1->kill;
    EtcdTest::run_until(5, sub { @$changes >= 2 });
    changes_are($changes, [ [ 0, $m2->endpoint ], [ 1, $m2->endpoint ] ],
                'idle: the lost connection is reported and the client moves on, without a request');
    $r = undef;
    $c->get("${P}w", sub { $r = [@_] });
    EtcdTest::run_until(10, sub { $r });
    ok($r && $r->[0] && $r->[0]{header}{member_id}, 'idle: the next request is answered by the other member');
}

# ---------------------------------------------------------------------------
# option decoding

my $CLOSED = '127.0.0.1:' . EtcdTest::closed_port();
{
    # off: fractional, negative, zero, junk; EV::run returns by itself
    for my $v (0.5, 0.99, -1, -3.5, 0, 'abc', undef) {
        my $name = defined $v ? "health_interval '$v'" : 'health_interval undef';
        my $called = 0;
        my $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => $v,
                              on_health_change => sub { $called++ });
        is(EtcdTest::run_loop(3), 1, "$name: monitor off, EV::run returns by itself");
        is($called, 0, "$name: callback never called");
    }

    # on: 1.9 truncates to 1; an enabled monitor keeps EV::run alive
    {
        my @got;
        my $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1.9,
                              on_health_change => sub { push @got, [@_] });
        my $t0 = Time::HiRes::time();
        $c->get("${P}x", sub { });    # fails at once: the endpoint is down
        is(EtcdTest::run_loop(2.5), 0, 'health_interval 1.9: an enabled monitor keeps EV::run running');
        is_deeply(\@got, [ [ 0, $CLOSED ] ], 'health_interval 1.9: ticks every second (reported after the first)');
    }

    # a non-code on_health_change is ignored; the monitor still runs
    for my $cb ('main::nope', [], {}, 1) {
        my $c = eval { EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1, on_health_change => $cb) };
        ok($c, 'on_health_change ' . (ref $cb || "'$cb'") . ': ignored, no croak');
        $c->get("${P}x", sub { }) if $c;
        is(EtcdTest::run_loop(1.5), 0, 'on_health_change ' . (ref $cb || "'$cb'") . ': the monitor runs');
    }

    # destroying the client stops the timer
    {
        my $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1);
        undef $c;
        is(EtcdTest::run_loop(3), 1, 'destroyed client: its health timer no longer keeps EV::run alive');
    }

    # destroying a client leaves $@ alone (DESTROY right after a failed eval)
    {
        my $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1);
        $c->get("${P}x", sub { });
        EtcdTest::run_loop(0.5);
        $c = eval { die "kept\n" };
        is($@, "kept\n", 'destroying a monitored client does not clobber $@');
    }

    # destroying the client inside its own health callback
    {
        my $c;
        my $n = 0;
        $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1,
                           on_health_change => sub { $n++; undef $c });
        $c->get("${P}x", sub { });
        is(EtcdTest::run_loop(5), 1, 'destroyed inside on_health_change: EV::run returns by itself');
        is($n, 1, 'destroyed inside on_health_change: called once');
    }

    # a client created without a monitor is not watched
    {
        my $c = EV::Etcd->new(endpoints => [$CLOSED]);
        $c->get("${P}x", sub { });
        is(EtcdTest::run_loop(3), 1, 'no health_interval: EV::run returns once the request called back');
    }
}

# ---------------------------------------------------------------------------
# fork: an inherited monitor stops itself in the child and never calls back there

{
    my $n = 0;
    my $c = EV::Etcd->new(endpoints => [$CLOSED], health_interval => 1, on_health_change => sub { $n++ });
    $c->get("${P}x", sub { });
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        EV::default_loop()->loop_fork;
        my $ended = EtcdTest::run_loop(4);
        print {$w} "ended=$ended calls=$n\n";
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    my $line = <$r> // '';
    waitpid($pid, 0);
    like($line, qr/^ended=1 /, 'fork: in the child EV::run returns by itself (inherited timer stopped)');
    like($line, qr/ calls=0$/, 'fork: the inherited callback is not called in the child');
    is(EtcdTest::run_loop(1.5), 0, 'fork: the parent\'s monitor still runs');
    is($n, 1, 'fork: the parent got its change');
}

done_testing;
