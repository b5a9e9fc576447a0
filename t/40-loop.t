use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "CALLING CONVENTIONS" (asynchronous callbacks, $EV::DIED), "DESTRUCTION"
# (lifecycle, destroy inside a callback), "THE EVENT LOOP" (the loop; EV::run
# returns when nothing is outstanding).

my @eps    = EtcdTest::endpoints();
my $P      = EtcdTest::prefix();
my $CLOSED = '127.0.0.1:' . EtcdTest::closed_port();

sub new_client { EV::Etcd->new(endpoints => [ @_ ? @_ : @eps ], timeout => 10) }

# one request, waited for; returns (resp, err)
sub sync_call {
    my ($client, $method, @args) = @_;
    my ($n, @res) = (0);
    $client->$method(@args, sub { $n++; @res = @_ if $n == 1 });
    EtcdTest::run_until(15, sub { $n }) or fail("$method: callback within 15 s");
    return @res;
}

sub value_of {
    my ($client, $key) = @_;
    my ($resp) = sync_call($client, 'get', $key);
    return $resp && @{ $resp->{kvs} } ? $resp->{kvs}[0]{value} : undef;
}

my $client = new_client();
is((sync_call($client, 'put', "${P}k", 'v'))[1], undef, 'setup put');

# ---------------------------------------------------------------------------------
# POD "CALLING CONVENTIONS": callbacks are never synchronous, success or error

{
    my $dead = new_client($CLOSED);
    my @cases = (
        [ 'get',              $client, get     => "${P}k" ],
        [ 'put',              $client, put     => "${P}k", 'v' ],
        [ 'delete',           $client, delete  => "${P}nothing" ],
        [ 'txn',              $client, txn     => [], [], [] ],
        [ 'status',           $client, status  => () ],
        [ 'get, closed port',    $dead, get    => "${P}k" ],
        [ 'put, closed port',    $dead, put    => "${P}k", 'v' ],
        [ 'status, closed port', $dead, status => () ],
        [ 'txn, closed port',    $dead, txn    => [], [], [] ],
        [ 'compact, closed port', $dead, compact => 1 ],
        [ 'delete, closed port',  $dead, delete  => "${P}k" ],
    );
    for my $case (@cases) {
        my ($name, $c, $method, @args) = @$case;
        my $returned = 0;
        my ($ran, $seen_returned, $got_resp, $got_err) = (0);
        $c->$method(@args, sub { $ran++; $seen_returned = $returned; ($got_resp, $got_err) = @_ });
        is($ran, 0, "$name: callback not run inside the call");
        $returned = 1;
        ok(EtcdTest::run_until(15, sub { $ran }), "$name: callback ran from the loop");
        is($seen_returned, 1, "$name: the call had returned before the callback ran");
        ok(defined($got_resp) != defined($got_err), "$name: exactly one of response and error");
    }
}

# POD "THE EVENT LOOP": callbacks run only while the loop runs
{
    my $ran = 0;
    $client->get("${P}k", sub { $ran++ });
    Time::HiRes::sleep(0.5);
    is($ran, 0, 'no callback while the loop is not running (even after 0.5 s)');
    ok(EtcdTest::run_until(15, sub { $ran }), 'the callback runs once the loop runs');
    is($ran, 1, 'exactly once');
}

# ---------------------------------------------------------------------------------
# POD "THE EVENT LOOP": EV::run keeps running while requests are outstanding,
# returns when idle

{
    my $t0 = Time::HiRes::time();
    ok(EtcdTest::run_loop(5), 'EV::run returns by itself with an idle client (after use)');
    cmp_ok(Time::HiRes::time() - $t0, '<', 1, 'and it returns at once');

    my $fresh = new_client();
    ok(EtcdTest::run_loop(5), 'EV::run returns by itself with a fresh, never-used client');

    my $got;
    $client->get("${P}k", sub { $got = $_[0] });
    ok(EtcdTest::run_loop(15), 'EV::run with a request outstanding ends by itself');
    is($got && $got->{kvs}[0]{value}, 'v', 'the loop stayed alive until the request completed');

    my $dead = new_client($CLOSED);
    my $err;
    $dead->get("${P}k", sub { $err = $_[1] });
    ok(EtcdTest::run_loop(15), 'EV::run with a failing request ends by itself');
    is($err && $err->{code}, 14, 'the loop stayed alive until the error was delivered');

    my ($n, @got) = (0);
    $client->put("${P}multi$_", $_, sub { $n++ }) for 1 .. 5;
    ok(EtcdTest::run_loop(15), 'EV::run with five outstanding puts ends by itself');
    is($n, 5, 'all five callbacks ran before EV::run returned');

    # an idle client causes no wakeups: a 1 s timer alone drives the loop
    my $iterations = 0;
    my $prepare = EV::prepare(sub { $iterations++ });
    $prepare->keepalive(0);
    my $timer = EV::timer(1, 0, sub { EV::break });
    EV::run;
    cmp_ok($iterations, '<=', 5, "an idle client adds no loop wakeups ($iterations iterations in 1 s)");

    # ... nor any of its engine thread (no timer runs while nothing is
    # outstanding and no stream is open): its context switches, from /proc
    my ($engine) = grep {
        open my $fh, '<', "$_/comm" or next;
        (<$fh> // '') eq "ev-etcd-runtime\n";
    } glob "/proc/$$/task/*";
    SKIP: {
        skip 'no /proc/PID/task here (not Linux)', 2 if !$engine && !-d "/proc/$$/task";
        ok($engine, 'the engine thread is found in /proc');
        my $switches = sub {
            open my $fh, '<', "$engine/status" or return -1;
            my $n = 0;
            /ctxt_switches:\s+(\d+)/ and $n += $1 while <$fh>;
            return $n;
        };
        my $before = $switches->();
        my $idle = EV::timer(2, 0, sub { EV::break });
        EV::run;
        my $woke = $switches->() - $before;
        is($woke, 0, "the engine thread of idle clients sleeps: $woke wakeups in 2 s");
    }
}

# ---------------------------------------------------------------------------------
# POD "CALLING CONVENTIONS": exceptions in callbacks go to $EV::DIED; the other
# callbacks still run

for my $which ([ 'live', $client ], [ 'closed port', new_client($CLOSED) ]) {
    my ($label, $c) = @$which;
    my @died;
    local $EV::DIED = sub { push @died, $@ };
    my $n = 0;
    my @seen;
    for my $i (1 .. 4) {
        $c->get("${P}k", sub { $n++; push @seen, $i; die "boom from callback $n\n" if $n == 1 });
    }
    my $ok = eval { EtcdTest::run_until(15, sub { $n == 4 }); 1 };
    ok($ok, "$label: the exception did not propagate out of EV::run") or diag($@);
    is($n, 4, "$label: all four callbacks ran");
    is_deeply([ sort @seen ], [ 1 .. 4 ], "$label: each callback ran once");
    is(scalar @died, 1, "$label: \$EV::DIED was called once");
    like($died[0] // '', qr/^boom from callback 1$/, "$label: \$EV::DIED saw the exception in \$@");
}
is(value_of($client, "${P}k"), 'v', 'the client is usable after a callback died');

# ---------------------------------------------------------------------------------
# POD "DESTRUCTION": destroying the client inside its own callback

for my $which ([ 'live', @eps ], [ 'closed port', $CLOSED ]) {
    my ($label, @ep) = @$which;
    my $c = new_client(@ep);
    my @calls;
    $c->get("${P}k", sub { push @calls, 'get1'; undef $c });
    $c->get("${P}k", sub { push @calls, 'get2'; undef $c });
    $c->put("${P}k2", 'x', sub { push @calls, 'put'; undef $c });
    $c->status(sub { push @calls, 'status'; undef $c });
    $c->txn([], [], [], sub { push @calls, 'txn'; undef $c });
    ok(EtcdTest::run_until(15, sub { @calls }), "$label: a first callback ran");
    ok(!defined $c, "$label: the client was destroyed inside its callback");
    ok(EtcdTest::run_loop(5), "$label: EV::run returns after the client died in its own callback");
    is(scalar @calls, 1, "$label: no further callback of the destroyed client ran (@calls)");
}
{
    my $c = new_client();
    my $done = 0;
    $c->put("${P}self", 'kept', sub {
        undef $c;
        $done = 1;
    });
    EtcdTest::run_until(15, sub { $done });
    ok($done, 'destroy inside a put callback: callback completed');
    is(value_of($client, "${P}self"), 'kept', 'the put that was answered is stored');
}
is(value_of($client, "${P}k"), 'v', 'other clients are unaffected by the destruction');

# ---------------------------------------------------------------------------------
# POD "DESTRUCTION": destroying a client with requests in flight calls none of them

for my $which ([ 'live', @eps ], [ 'closed port', $CLOSED ]) {
    my ($label, @ep) = @$which;
    my $c = new_client(@ep);
    my $called = 0;
    $c->get("${P}k", sub { $called++ });
    $c->put("${P}inflight", 'x', sub { $called++ });
    $c->delete("${P}nothing", sub { $called++ });
    $c->status(sub { $called++ });
    $c->txn([], [], [], sub { $called++ });
    undef $c;
    ok(EtcdTest::run_loop(5), "$label: EV::run returns after destroying a busy client");
    is($called, 0, "$label: no callback ran for the destroyed client's requests");
}
{
    my $c = new_client();
    undef $c;
    pass('a client destroyed right after creation');
    $c = new_client();
    sync_call($c, 'put', "${P}after-put", 'x');
    undef $c;
    pass('a client destroyed after a completed put');
}

# ---------------------------------------------------------------------------------
# five clients at once (POD "DESTRUCTION": other clients are not affected)

{
    my @five = map { new_client() } 1 .. 5;
    my $n = 0;
    for my $i (0 .. 4) {
        $five[$i]->put("${P}five/$i", "from client $i", sub { $n++ unless $_[1] });
    }
    ok(EtcdTest::run_until(15, sub { $n == 5 }), 'five clients: five puts succeeded');
    my %got;
    for my $i (0 .. 4) {
        $five[$i]->get("${P}five/" . ((($i + 1) % 5)), sub { $got{$i} = $_[0] ? $_[0]{kvs}[0]{value} : 'error' });
    }
    ok(EtcdTest::run_until(15, sub { keys(%got) == 5 }), 'five clients: five gets answered');
    is_deeply(\%got, { map { $_ => 'from client ' . (($_ + 1) % 5) } 0 .. 4 }, 'five clients see each other\'s writes');
    @five = ();
    pass('five clients destroyed together');

    my $called = 0;
    @five = map { new_client() } 1 .. 5;
    $_->get("${P}k", sub { $called++ }) for @five;
    @five = ();
    ok(EtcdTest::run_loop(5), 'five busy clients destroyed together: EV::run returns');
    is($called, 0, 'five busy clients destroyed together: no callbacks');
}

# a client created right after another was destroyed works
{
    my $first = new_client();
    sync_call($first, 'put', "${P}succession", 'one');
    $first->get("${P}k", sub { fail('callback of a destroyed client ran') });
    undef $first;
    my $second = new_client();
    is(value_of($second, "${P}succession"), 'one', 'a client created right after another was destroyed works');
}

# a dozen clients one after the other
{
    my $ok = 0;
    for my $i (1 .. 12) {
        my $c = new_client();
        my ($resp) = sync_call($c, 'put', "${P}dozen", $i);
        $ok++ if $resp && $resp->{header};
    }
    is($ok, 12, 'a dozen clients in sequence');
    is(value_of($client, "${P}dozen"), 12, 'the last of them wrote last');
}

# ---------------------------------------------------------------------------------
# 100 sequential put + EV::run cycles, each callback calling EV::break

{
    my $t0 = Time::HiRes::time();
    my ($ended, $ok) = (0, 0);
    for my $i (1 .. 100) {
        my $done = 0;
        $client->put("${P}seq", $i, sub { $done = 1; $ok++ unless $_[1]; EV::break });
        $ended++ if EtcdTest::run_loop(5) && $done;
    }
    my $elapsed = Time::HiRes::time() - $t0;
    is($ended, 100, '100 put + EV::run cycles: every EV::run ended with its callback');
    is($ok, 100, '100 put + EV::run cycles: every put succeeded');
    cmp_ok($elapsed, '<', 30, sprintf('100 cycles finished quickly (%.2f s)', $elapsed));
    my ($resp) = sync_call($client, 'get', "${P}seq");
    is($resp && $resp->{kvs}[0]{value}, 100, 'the last put is stored');
    is($resp && $resp->{kvs}[0]{version}, 100, 'all 100 puts were applied');
}

# many concurrent requests on one client
{
    my %done;
    $client->put("${P}conc/$_", "v$_", sub { $done{$_[1] ? 'err' : 'ok'}++ }) for 1 .. 50;
    ok(EtcdTest::run_until(30, sub { ($done{ok} // 0) + ($done{err} // 0) == 50 }), '50 concurrent puts answered');
    is($done{ok}, 50, '50 concurrent puts succeeded');
    my %vals;
    for my $i (1 .. 50) {
        $client->get("${P}conc/$i", sub { $vals{$i} = $_[0] ? $_[0]{kvs}[0]{value} : 'error' });
    }
    ok(EtcdTest::run_until(30, sub { keys(%vals) == 50 }), '50 concurrent gets answered');
    is_deeply(\%vals, { map { $_ => "v$_" } 1 .. 50 }, 'each concurrent get got its own key');
}

sync_call($client, 'delete', $P, { prefix => 1 });
ok(EtcdTest::run_loop(5), 'EV::run returns at the end: nothing left outstanding');

done_testing;
