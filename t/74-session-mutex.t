use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use Scalar::Util ();
use lib 't/lib';
use EtcdTest qw(rec wait_rec call new_session);
use EV;
use EV::Etcd;

# EV::Etcd::Session and EV::Etcd::Mutex against a real etcd: sessions
# (grant, close, adopted lease), lock/unlock, contention in order, timeout,
# cancel, try_lock, a session lost while holding (on_lost, fenced writes
# refused), croaks.

my $P = EtcdTest::prefix();
my ($c, $other) = EtcdTest::clients(2, timeout => 10);

sub get_kv {
    my ($key, $opts) = @_;
    my ($resp, $err) = call("get $key", sub { $c->get($key, $opts || {}, $_[0]) });
    ok(!$err, "get $key") or diag explain $err;
    return $resp;
}

# ---------------------------------------------------------------------------
# session: grant, keys on the lease, close revokes

{
    my @lost;
    my $s = new_session($c, { ttl => 4, on_lost => sub { push @lost, @_ } });
    ok($s->lease > 0, 'session has a lease id');
    is($s->ttl, 4, 'ttl granted');
    is($s->client, $c, 'client');
    ok(!$s->is_lost, 'not lost');
    my ($ttl) = call('ttl', sub { $c->lease_time_to_live($s->lease, $_[0]) });
    is($ttl->{granted_ttl}, 4, 'lease exists on the server with the ttl');

    # keepalive runs: after more than the ttl the lease is still there
    EtcdTest::run_loop(5);
    ($ttl) = call('ttl later', sub { $c->lease_time_to_live($s->lease, $_[0]) });
    cmp_ok($ttl->{ttl}, '>', 0, 'lease kept alive past its ttl');

    my $m = $s->mutex("${P}sess");
    my ($mm, $err) = call('lock', sub { $m->lock($_[0]) });
    is($mm, $m, 'lock calls back with the mutex');
    is(get_kv($m->key)->{count}, 1, 'lock key exists');

    my @closed = call('close', sub { $s->close($_[0]) });
    is($closed[0], $s, 'close calls back with the session');
    ok(!$m->is_held, 'mutex not held after close');
    is(get_kv($m->key)->{count}, 0, 'session key gone at once after close');
    ($ttl) = call('ttl after close', sub { $c->lease_time_to_live($s->lease, $_[0]) });
    is($ttl->{ttl}, -1, 'lease revoked');
    EtcdTest::run_loop(0.3);
    is(scalar @lost, 0, 'close is not a loss: on_lost not called');
    my $late = 0;
    $s->on_lost(sub { $late++ });
    EtcdTest::run_loop(0.3);
    is($late, 0, 'listener added after close is never called');
    @closed = call('close again', sub { $s->close($_[0]) });
    is($closed[0], $s, 'closing again succeeds');
    my @l = call('lock on closed session', sub { $m->lock($_[0]) });
    is($l[1]{status}, 'FAILED_PRECONDITION', 'lock on a closed session fails');
    is($l[1]{message}, 'mutex: session closed', '... saying so');
}

# ---------------------------------------------------------------------------
# adopted lease

{
    my ($g) = call('grant', sub { $c->lease_grant(9, $_[0]) });
    my $s = new_session($c, { lease => $g->{id} });
    is($s->lease, $g->{id}, 'adopted lease id');
    is($s->ttl, 9, 'adopted lease ttl from the server');
    my @c = call('close adopted', sub { $s->close($_[0]) });
    my ($ttl) = call('ttl', sub { $c->lease_time_to_live($g->{id}, $_[0]) });
    is($ttl->{ttl}, -1, 'adopted lease revoked by close');
    my ($none, $err) = call('adopt unknown', sub { $c->session({ lease => $g->{id} }, $_[0]) });
    ok(!$none, 'adopting an unknown lease fails');
    is($err->{status}, 'NOT_FOUND', '... NOT_FOUND');
    is($err->{source}, 'session', '... source session');
}

# ---------------------------------------------------------------------------
# lock / unlock, contention in order

my $s1 = new_session($c, { ttl => 30 });
my $s2 = new_session($c, { ttl => 30 });
my $s3 = new_session($c, { ttl => 30 });
{
    my $name = "${P}m1";
    my ($m1, $m2, $m3) = map { $_->mutex($name) } $s1, $s2, $s3;
    is($m1->key, sprintf('%s/%x', $name, $s1->lease), 'key is name/<hex lease>');
    my ($res, $err) = call('lock m1', sub { $m1->lock($_[0]) });
    is($res, $m1, 'm1 locked');
    ok($m1->is_held, 'm1 held');
    my $kv = get_kv($m1->key)->{kvs}[0];
    is($m1->revision, $kv->{create_revision}, 'revision is the key\'s create revision');
    is($kv->{lease}, $s1->lease, 'key on the session lease');
    is_deeply($m1->is_owner, { key => $m1->key, target => 'create', result => '=',
                               create_revision => $kv->{create_revision} }, 'is_owner compare');

    my ($r2, $cb2) = rec('lock m2');
    my $h2 = $m2->lock($cb2);
    can_ok($h2, 'cancel');
    EtcdTest::run_loop(0.3);
    my ($r3, $cb3) = rec('lock m3');
    $m3->lock($cb3);
    EtcdTest::run_loop(0.7);
    is($r2->{n} + $r3->{n}, 0, 'm2 and m3 wait while m1 holds');
    ok(!$m2->is_held, 'm2 not held while waiting');

    my $t_unlock = Time::HiRes::time();
    my @u = call('unlock m1', sub { $m1->unlock($_[0]) });
    is($u[0], $m1, 'unlock calls back with the mutex');
    ok(!$m1->is_held, 'm1 not held after unlock');
    ok(!eval { $m1->is_owner; 1 }, 'is_owner croaks when not held');
    like($@, qr/^EV::Etcd::Mutex::is_owner: the mutex is not held/, '... message');
    wait_rec($r2);
    is($r2->{args}[0], $m2, 'm2 gets the lock after the unlock');
    cmp_ok($r2->{at}, '>=', $t_unlock, '... not before');
    EtcdTest::run_loop(0.5);
    is($r3->{n}, 0, 'm3 (came later) still waits');
    call('unlock m2', sub { $m2->unlock($_[0]) });
    wait_rec($r3);
    is($r3->{args}[0], $m3, 'm3 gets the lock after m2: order kept');
    call('unlock m3', sub { $m3->unlock($_[0]) });
    is(get_kv("$name/", { prefix => 1 })->{count}, 0, 'no key left');
}

# ---------------------------------------------------------------------------
# timeout, cancel, try_lock

{
    my $name = "${P}m2";
    my ($m1, $m2) = map { $_->mutex($name) } $s1, $s2;
    call('lock m1', sub { $m1->lock($_[0]) });
    my $t0 = Time::HiRes::time();
    my ($res, $err) = call('lock with timeout', sub { $m2->lock({ timeout => 0.8 }, $_[0]) });
    my $took = Time::HiRes::time() - $t0;
    ok(!$res, 'timed out lock has no result');
    is($err->{status}, 'DEADLINE_EXCEEDED', 'timeout: DEADLINE_EXCEEDED');
    is($err->{code}, 4, '... code 4');
    is($err->{source}, 'mutex', '... source mutex');
    cmp_ok($took, '>=', 0.75, '... after the timeout');
    cmp_ok($took, '<', 5, '... not much later');
    is(get_kv($m2->key)->{count}, 0, 'timed out lock left no key');
    ok(!$m2->is_held, 'not held');

    my ($rc, $cbc) = rec('lock to cancel');
    my $h = $m2->lock($cbc);
    EtcdTest::run_loop(0.5);
    is(get_kv($m2->key)->{count}, 1, 'waiting lock has its key');
    $h->cancel;
    is($rc->{n}, 0, 'cancel does not call back before returning');
    wait_rec($rc);
    is($rc->{args}[1]{status}, 'CANCELLED', 'cancelled lock: CANCELLED');
    is($rc->{args}[1]{source}, 'mutex', '... source mutex');
    is(get_kv($m2->key)->{count}, 0, 'cancelled lock left no key');
    $h->cancel;
    EtcdTest::run_loop(0.3);
    is($rc->{n}, 1, 'cancelling again calls nothing');

    my @t = call('try_lock held', sub { $m2->try_lock($_[0]) });
    is_deeply($t[1], { code => 9, status => 'FAILED_PRECONDITION', message => 'mutex: locked by another session',
                       source => 'mutex', retryable => 0, locked => 1 }, 'try_lock on a held mutex: the locked error');
    is(get_kv($m2->key)->{count}, 0, 'failed try_lock left no key');
    ok(!$m2->is_held, 'not held');

    call('unlock m1', sub { $m1->unlock($_[0]) });
    @t = call('try_lock free', sub { $m2->try_lock($_[0]) });
    is($t[0], $m2, 'try_lock on a free mutex succeeds');
    ok($m2->is_held, 'held');
    is(get_kv($m2->key)->{count}, 1, 'key exists');
    # re-lock while held: at once
    my @again = call('lock while held', sub { $m2->lock($_[0]) });
    is($again[0], $m2, 'lock of a held mutex succeeds at once');
    call('unlock m2', sub { $m2->unlock($_[0]) });
    is(get_kv("$name/", { prefix => 1 })->{count}, 0, 'no key left');
}

# ---------------------------------------------------------------------------
# a session lost while holding: revoked from another client

{
    my (@slost, @mlost);
    my $s = new_session($c, { ttl => 6, on_lost => sub { push @slost, [@_] } });
    my $m = $s->mutex("${P}m3", { on_lost => sub { push @mlost, [@_] } });
    call('lock', sub { $m->lock($_[0]) });
    ok($m->is_held, 'held');
    my $fence = $m->is_owner;
    my $k = "${P}fenced";
    my ($tx) = call('fenced write while held', sub {
        $c->txn([ $fence ], [ { put => { key => $k, value => 'v1' } } ], [], $_[0]) });
    is($tx->{succeeded}, 1, 'fenced write while held succeeds');

    # a waiter on another session
    my $mw = $s2->mutex("${P}m3");
    my ($rw, $cbw) = rec('waiter');
    $mw->lock($cbw);
    EtcdTest::run_loop(0.3);
    is($rw->{n}, 0, 'waiter waits');

    my @rv = call('revoke from another client', sub { $other->lease_revoke($s->lease, $_[0]) });
    ok(!$rv[1], 'revoked');
    ok(EtcdTest::run_until(10, sub { @mlost && @slost }), 'loss reported');
    is(scalar @mlost, 1, 'mutex on_lost called once');
    is($mlost[0][0]{status}, 'NOT_FOUND', '... with the keepalive error');
    is(scalar @slost, 1, 'session on_lost called once');
    ok($s->is_lost, 'session is_lost');
    ok(!$m->is_held, 'not held after the loss');
    ($tx) = call('fenced write after the loss', sub {
        $c->txn([ $fence ], [ { put => { key => $k, value => 'v2' } } ], [], $_[0]) });
    is($tx->{succeeded}, 0, 'fenced write after the loss does not succeed');
    is(get_kv($k)->{kvs}[0]{value}, 'v1', 'key unchanged');
    wait_rec($rw);
    is($rw->{args}[0], $mw, 'the waiter got the lock');
    call('unlock waiter', sub { $mw->unlock($_[0]) });

    my $late;
    $s->on_lost(sub { $late = $_[0] });
    is($late, undef, 'late listener not called at once');
    ok(EtcdTest::run_until(2, sub { $late }), 'late listener called from the loop');
    is($late->{status}, 'NOT_FOUND', '... with the error');
    my @l = call('lock on lost session', sub { $m->lock($_[0]) });
    is($l[1]{status}, 'NOT_FOUND', 'lock on a lost session fails');
    is($l[1]{message}, "mutex: session lost", "... saying so");
    my @cl = call('close lost session', sub { $s->close($_[0]) });
    is($cl[0], $s, 'closing a lost session succeeds');
    EtcdTest::run_loop(0.3);
    is(scalar @mlost + scalar @slost, 2, 'nothing called twice');
}

# ---------------------------------------------------------------------------
# a session lost while waiting: the lock fails, no key left

{
    my $s = new_session($c, { ttl => 6 });
    my $m1 = $s1->mutex("${P}m4");
    call('lock', sub { $m1->lock($_[0]) });
    my $m = $s->mutex("${P}m4");
    my ($rw, $cbw) = rec('waiting lock');
    $m->lock($cbw);
    EtcdTest::run_loop(0.3);
    call('revoke', sub { $other->lease_revoke($s->lease, $_[0]) });
    wait_rec($rw);
    ok(!$rw->{args}[0], 'lock of a lost session fails');
    is($rw->{args}[1]{status}, 'NOT_FOUND', '... NOT_FOUND');
    ok(!$m->is_held, 'not held');
    call('unlock', sub { $m1->unlock($_[0]) });
}

# ---------------------------------------------------------------------------
# nothing keeps sessions, mutexes or finished waits alive

{
    my ($ws, $wm, $wh, $wu);
    {
        my $done;
        my $s;
        $c->session({ ttl => 10 }, sub { $s = $_[0]; $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        my $m = $s->mutex("${P}leak");
        $done = undef; $m->lock(sub { $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        my $m2 = $s2->mutex("${P}leak");
        $done = undef; my $h = $m2->lock({ timeout => 0.2 }, sub { $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        $done = undef; $m->unlock(sub { $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        # a session that is dropped without close
        my $u;
        $done = undef; $c->session({ ttl => 10 }, sub { $u = $_[0]; $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        $done = undef; $s->close(sub { $done = 1 });
        EtcdTest::run_until(10, sub { $done });
        ($ws, $wm, $wh, $wu) = ($s, $m, $h, $u);
        Scalar::Util::weaken($_) for $ws, $wm, $wh, $wu;
    }
    EtcdTest::run_loop(0.3);
    ok(!$ws, 'a closed session is freed');
    ok(!$wm, 'its mutex is freed');
    ok(!$wh, 'a finished wait handle is freed');
    ok(!$wu, 'a session dropped without close is freed');
}

# ---------------------------------------------------------------------------
# futures

SKIP: {
    skip 'Future not installed', 3 unless eval { require EV::Etcd::Future; 1 };
    my $s = $c->future->session({ ttl => 20 })->get;
    isa_ok($s, 'EV::Etcd::Session', 'future session');
    my $m = $s->mutex("${P}f");
    is($m->lock_f({ timeout => 5 })->get, $m, 'lock_f');
    is($m->unlock_f->get, $m, 'unlock_f');
    $s->close_f->get;
}

# ---------------------------------------------------------------------------
# croaks

{
    my $cb = sub { };
    my $m = $s1->mutex("${P}croak");
    my @bad = (
        [ sub { $c->session({}, 'x') }, qr/^EV::Etcd::session: callback must be a code reference/ ],
        [ sub { $c->session([], $cb) }, qr/^EV::Etcd::session: options must be a hash reference/ ],
        [ sub { $c->session({ ttl => 0 }, $cb) }, qr/^EV::Etcd::session: ttl must be a positive integer/ ],
        [ sub { $c->session({ ttl => 'x' }, $cb) }, qr/^EV::Etcd::session: ttl must be a positive integer/ ],
        [ sub { $c->session({ lease => -1 }, $cb) }, qr/^EV::Etcd::session: lease must be a positive integer/ ],
        [ sub { $c->session({ on_lost => 1 }, $cb) }, qr/^EV::Etcd::session: on_lost must be a code reference/ ],
        [ sub { $c->session({ nope => 1 }, $cb) }, qr/^EV::Etcd::session: unknown option 'nope'/ ],
        [ sub { $s1->on_lost('x') }, qr/^EV::Etcd::Session::on_lost: listener must be a code reference/ ],
        [ sub { $s1->close('x') }, qr/^EV::Etcd::Session::close: callback must be a code reference/ ],
        [ sub { $s1->mutex('') }, qr/^EV::Etcd::Session::mutex: name must be a non-empty string/ ],
        [ sub { $s1->mutex(undef) }, qr/^EV::Etcd::Session::mutex: name must be a non-empty string/ ],
        [ sub { $s1->mutex([]) }, qr/^EV::Etcd::Session::mutex: name must be a non-empty string/ ],
        [ sub { $s1->mutex('n', { on_lost => 'x' }) }, qr/^EV::Etcd::Session::mutex: on_lost must be a code reference/ ],
        [ sub { $s1->mutex('n', { x => 1 }) }, qr/^EV::Etcd::Session::mutex: unknown option 'x'/ ],
        [ sub { $m->lock('x') }, qr/^EV::Etcd::Mutex::lock: callback must be a code reference/ ],
        [ sub { $m->lock({ timeout => 0 }, $cb) }, qr/^EV::Etcd::Mutex::lock: timeout must be a positive number/ ],
        [ sub { $m->lock({ timeout => -1 }, $cb) }, qr/^EV::Etcd::Mutex::lock: timeout must be a positive number/ ],
        [ sub { $m->lock({ timeout => 'soon' }, $cb) }, qr/^EV::Etcd::Mutex::lock: timeout must be a positive number/ ],
        [ sub { $m->lock({ wait => 1 }, $cb) }, qr/^EV::Etcd::Mutex::lock: unknown option 'wait'/ ],
        [ sub { $m->lock(1, $cb) }, qr/^EV::Etcd::Mutex::lock: options must be a hash reference/ ],
        [ sub { $m->try_lock() }, qr/^EV::Etcd::Mutex::try_lock: callback must be a code reference/ ],
        [ sub { $m->unlock('x') }, qr/^EV::Etcd::Mutex::unlock: callback must be a code reference/ ],
    );
    for my $b (@bad) {
        my ($code, $re) = @$b;
        ok(!eval { $code->(); 1 }, "croaks: $re");
        like($@, $re, '... message');
        like($@, qr/ at \Q$0\E line \d+\.$/, '... at the caller\'s line');
    }
    # in progress
    my ($r, $cb1) = rec('lock in progress');
    $m->lock($cb1);
    ok(!eval { $m->lock($cb); 1 }, 'second lock while one is in progress croaks');
    like($@, qr/already in progress/, '... message');
    ok(!eval { $m->unlock; 1 }, 'unlock while locking croaks');
    wait_rec($r);
    call('unlock', sub { $m->unlock($_[0]) });
}

call("close $_", sub { $_->close($_[0]) }) for grep { $_ } $s1, $s2, $s3;
EtcdTest::rec_exactly_once();
EtcdTest::cleanup($c);
done_testing;
