use strict;
use warnings;
use Test::More;
use POSIX ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "THREADS AND FORK": after fork the child creates and uses its own
# clients (put, get, watch, EV::run returning by itself); objects inherited
# from the parent croak with a clear message instead of hanging; the parent's
# clients and watches keep working while and after children run, including
# children that exit at once.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();

my $c = EV::Etcd->new(endpoints => [@eps], timeout => 10);
my $caller = EtcdTest::Caller->new($c);
my $rec = EtcdTest::watch_recorder($c, "${P}f/", { prefix => 1 }, sub { $_[0]{kv}{key} });
my ($w, $events, $werrs) = @$rec{qw(w events errs)};
ok(EtcdTest::run_until(5, sub { $rec->{created} }), 'parent watch created');

# the other handle kinds, where this build has them
my ($obs, $ka, $ka_lost);
if (EV::Etcd->can('election_observe')) {
    $obs = $c->election_observe("${P}elect", sub { });
}
if (EV::Etcd->can('lease_keepalive_start')) {
    my $lease = $caller->lease(30);
    $ka = $c->lease_keepalive_start($lease, { on_lost => sub { $ka_lost++ } }, sub { });
}

my $n_put = 0;
sub parent_put {
    my $k = sprintf '%sf/%04d', $P, $n_put++;
    $caller->ok_call("parent put $k", 'put', $k, "v$k");
}
parent_put() for 1 .. 3;

# Runs $child->() in a child (under an alarm; the child reports "name\tok" or
# "name\tdetail" lines through a pipe) while the parent keeps writing and
# watching. Returns the child's exit status and its report lines.
sub in_child {
    my ($child) = @_;
    pipe(my $r, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        alarm 30;
        my @report = $child->();
        print {$wr} map { "$_\n" } @report;
        close $wr;
        exit 0;
    }
    close $wr;
    my $status = reap_while_writing($pid);
    my @lines = <$r>;
    chomp @lines;
    return ($status, @lines);
}

# EV's default loop reaps children itself (SIGCHLD): ask it for the status.
# Keeps writing through the parent's client until the child has gone.
sub reap_while_writing {
    my ($pid) = @_;
    my $status;
    my $cw = EV::child($pid, 0, sub { $status = $_[0]->rstatus });
    parent_put() until defined $status;
    return $status;
}

sub report_ok {
    my ($what, @lines) = @_;
    for my $l (@lines) {
        my ($name, $res) = split /\t/, $l, 2;
        is($res, 'ok', "child: $name");
    }
}

# ---------------------------------------------------------------------------
# a child with inherited objects and its own client

{
    # something outstanding at fork time: the parent's watch (and a get)
    my $pending_get;
    $c->get("${P}f/0000", sub { $pending_get = [@_] });

    my ($status, @lines) = in_child(sub {
        my @rep;
        my $check = sub { push @rep, "$_[0]\t" . ($_[1] ? 'ok' : ($_[2] // 'failed')) };
        my $croaks = sub {
            my ($name, $code) = @_;
            my $ok = !eval { $code->(); 1 };
            my $msg = $@ // '';
            $check->($name, $ok && $msg =~ /another process|cannot be used after fork/, "no clear croak: '$msg'");
            return $msg;
        };
        my $called = 0;
        for my $call (EtcdTest::method_calls($P)) {
            $croaks->("inherited client: $call->[0] croaks",
                      sub { EtcdTest::call_method($c, $call, sub { $called++ }) });
        }
        my $msg = $croaks->('inherited watch: cancel croaks', sub { $w->cancel(sub { $called++ }) });
        $check->('the croak says what to do', $msg =~ /create a new client in the child/, $msg);
        $croaks->('inherited watch: request_progress croaks', sub { $w->request_progress });
        $croaks->('inherited observe: cancel croaks', sub { $obs->cancel(sub { $called++ }) }) if $obs;
        $croaks->('inherited keepalive: stop croaks', sub { $ka->stop }) if $ka;

        # the child's own client; EV::run (no timer) must return by itself
        my $cc = EV::Etcd->new(endpoints => [@eps], timeout => 10);
        my ($put, $got);
        $cc->put("${P}child", "from $$", sub {
            $put = [@_];
            $cc->get("${P}child", sub { $got = [@_] });
        });
        EV::run;
        $check->('child put acknowledged', $put && $put->[0] && !$put->[1]);
        $check->('child get sees its put', $got && $got->[0] && $got->[0]{kvs}[0]{value} eq "from $$");

        my $crec = EtcdTest::watch_recorder($cc, "${P}cw/", { prefix => 1 }, sub { $_[0]{kv}{value} });
        my $cw = $crec->{w};
        $cc->put("${P}cw/$_", "c$_", sub { }) for 1 .. 5;
        EtcdTest::run_until(10, sub { @{ $crec->{events} } >= 5 });
        my @cev = sort @{ $crec->{events} };
        $check->('child watch sees its puts', "@cev" eq 'c1 c2 c3 c4 c5', "@cev");
        my $cancelled;
        $cw->cancel(sub { $cancelled = [@_] });
        EV::run;
        $check->('child watch cancel called back', $cancelled && ref $cancelled->[0] eq 'HASH');

        # inherited objects still croak now that the child has its own runtime
        $croaks->('inherited client still croaks', sub { $c->get("${P}x", sub { $called++ }) });
        $croaks->('inherited watch still croaks', sub { $w->cancel(sub { $called++ }) });
        EtcdTest::run_until(0.3, sub { 0 });
        $check->('no callback of an inherited object ran in the child', $called == 0, "$called ran");
        undef $c;    # destroying the inherited client is quiet
        undef $cc;
        return @rep;
    });
    is($status, 0, 'child exited 0');
    cmp_ok(scalar @lines, '>', 30, 'child reported its checks');
    report_ok(@lines);
    ok(EtcdTest::run_until(5, sub { $pending_get }), 'the get outstanding at fork time completed in the parent');
    is($pending_get && $pending_get->[0]{kvs}[0]{key}, "${P}f/0000", 'with the right answer');
}

# ---------------------------------------------------------------------------
# children that do nothing: normal exit (END runs) and _exit

for my $how ('exit', '_exit', 'exec true') {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        exit 0 if $how eq 'exit';
        POSIX::_exit(0) if $how eq '_exit';
        exec 'true' or POSIX::_exit(1);
    }
    is(reap_while_writing($pid), 0, "idle child ($how) exited 0");
    parent_put() for 1 .. 2;
}

# ---------------------------------------------------------------------------
# the parent: its watch saw every write, in order, and still works

{
    my $want = $n_put;
    ok(EtcdTest::run_until(10, sub { @$events >= $want }), "parent watch delivered all $want writes");
    is_deeply($events, [ map { sprintf '%sf/%04d', $P, $_ } 0 .. $want - 1 ], 'in order, none twice');
    is_deeply($werrs, [], 'parent watch reported no error');
    is($rec->{created}, 1, 'parent watch was never re-created');
    my $r = $caller->ok_call('parent get after the children', 'get', "${P}child");
    like($r->{kvs}[0]{value} // '', qr/^from \d+$/, "the child's write is visible to the parent");
    my $cancelled;
    $w->cancel(sub { $cancelled = [@_] });
    ok(EtcdTest::run_until(5, sub { $cancelled }), 'parent watch cancels');
    if ($ka) {
        ok(!$ka_lost, "parent's managed keepalive was not lost");
        $ka->stop;
    }
    if ($obs) {
        my $oc;
        $obs->cancel(sub { $oc = [@_] });
        ok(EtcdTest::run_until(5, sub { $oc }), "parent's observe cancels");
    }
    $caller->revoke_leases;
    EtcdTest::Caller->exactly_once($caller);
}

EtcdTest::cleanup($c);
done_testing;
