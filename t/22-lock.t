use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(:all);
use EV::Etcd;

# POD "LOCK METHODS": lock / unlock, a blocked lock is bounded by timeout, lock
# errors; POD "RETRIES AND FAILOVER": a lock is never replayed -- two and three
# real clients contending.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();
my $a   = EV::Etcd->new(endpoints => [@eps], timeout => 20);
my $b   = EV::Etcd->new(endpoints => [@eps], timeout => 20);
my $ca  = EtcdTest::Caller->new($a, timeout => 25);
my $cb_ = EtcdTest::Caller->new($b, timeout => 25);


# ---------------------------------------------------------------------------------
# lock returns an ownership key that exists while the lock is held

my $la   = $ca->lease(60);
my $name = "${P}lock1";
my $l    = $ca->ok_call('lock', 'lock', $name, $la);
keys_are($l, [qw(header key)], 'lock');
header_ok($l->{header}, 'lock');
bytes_ok($l, 'key', 'lock');
like($l->{key} // '', qr/^\Q$name\E\/[0-9a-f]+\z/, 'lock key is name/<hex lease id>');
is($l->{key}, sprintf('%s/%x', $name, $la), 'lock key ends with the lease id in hex');
my $r = $ca->ok_call('get the lock key', 'get', $l->{key});
is($r->{count}, 1, 'lock key exists');
kv_ok($r->{kvs}[0], 'lock key kv', key => $l->{key}, value => '', lease => $la,
      create_revision => $l->{header}{revision});

# ---------------------------------------------------------------------------------
# a second client gets the lock only after the first unlocks

my $lb = $ca->lease(60);
my $wait_b = $cb_->start('lock', $name, $lb);
EtcdTest::run_until(1, sub { $wait_b->{n} });
is($wait_b->{n}, 0, 'second client is still waiting while the first holds the lock');
my $unlock_sent = Time::HiRes::time();
my $u = $ca->ok_call('unlock', 'unlock', $l->{key});
keys_are($u, ['header'], 'unlock');
header_ok($u->{header}, 'unlock');
ok(EtcdTest::run_until(10, sub { $wait_b->{n} }), 'second client acquired the lock after the unlock');
ok($wait_b->{resp} && !$wait_b->{err}, 'second lock succeeded') or diag(explain($wait_b->{err}));
cmp_ok($wait_b->{at} // 0, '>=', $unlock_sent, 'acquired only after the unlock was sent');
cmp_ok($wait_b->{resp}{header}{revision} // 0, '>=', $u->{header}{revision} // 1e18,
       'the grant is at or after the unlock revision');
is($wait_b->{resp}{key}, sprintf('%s/%x', $name, $lb), 'second holder has its own key');
$r = $ca->ok_call('get first lock key after unlock', 'get', $l->{key});
is($r->{count}, 0, 'unlock deleted the first ownership key');

# and a lock held by the second client blocks the first in turn
my $again = $ca->start('lock', $name, $la);
EtcdTest::run_until(0.5, sub { $again->{n} });
is($again->{n}, 0, 'first client now waits for the second');
$cb_->ok_call('second client unlocks', 'unlock', $wait_b->{resp}{key});
ok(EtcdTest::run_until(10, sub { $again->{n} }), 'first client re-acquired after the second unlocked');
$ca->ok_call('first client unlocks again', 'unlock', $again->{resp}{key}) if $again->{resp};

# ---------------------------------------------------------------------------------
# a holder whose lease is revoked, or expires, releases the lock

{
    my $n2  = "${P}lock2";
    my $la2 = $ca->lease(60);
    my $h   = $ca->ok_call('lock for revoke', 'lock', $n2, $la2);
    my $w   = $cb_->start('lock', $n2, $lb);
    EtcdTest::run_until(0.5, sub { $w->{n} });
    is($w->{n}, 0, 'waiting behind a holder with a live lease');
    my $rv = $ca->ok_call('revoke the holder lease', 'lease_revoke', $la2);
    ok(EtcdTest::run_until(10, sub { $w->{n} }), 'waiter acquired after the holder lease was revoked');
    ok($w->{resp} && !$w->{err}, 'lock after revoke succeeded') or diag(explain($w->{err}));
    cmp_ok($w->{resp}{header}{revision} // 0, '>=', $rv->{header}{revision} // 1e18,
           'granted at or after the revoke revision');
    $r = $ca->ok_call('holder key after revoke', 'get', $h->{key} // "${P}none");
    is($r->{count}, 0, 'revoke deleted the holder key');
    $cb_->ok_call('unlock after revoke test', 'unlock', $w->{resp}{key}) if $w->{resp};
}
{
    my $n3    = "${P}lock3";
    my $short = $ca->lease(2);    # never kept alive
    my $h     = $ca->ok_call('lock with a short lease', 'lock', $n3, $short);
    my $t0    = Time::HiRes::time();
    my $w     = $cb_->start('lock', $n3, $lb);
    EtcdTest::run_until(0.5, sub { $w->{n} });
    is($w->{n}, 0, 'waiting behind a holder whose lease has not expired yet');
    ok(EtcdTest::run_until(15, sub { $w->{n} }), 'waiter acquired once the holder lease expired');
    ok($w->{resp} && !$w->{err}, 'lock after expiry succeeded') or diag(explain($w->{err}));
    cmp_ok(($w->{at} // 0) - $t0, '>=', 0.5, 'the waiter really waited');
    my $ttl = $ca->ok_call('holder lease after acquisition', 'lease_time_to_live', $short);
    is($ttl->{ttl}, -1, 'the holder lease had expired');
    $r = $ca->ok_call('expired holder key', 'get', $h->{key} // "${P}none");
    is($r->{count}, 0, 'expiry deleted the holder key');
    $cb_->ok_call('unlock after expiry test', 'unlock', $w->{resp}{key}) if $w->{resp};
}

# ---------------------------------------------------------------------------------
# a lock held longer than the waiter's timeout: DEADLINE_EXCEEDED, and the
# abandoned waiter does not stay queued

{
    my $n4 = "${P}lock4";
    my $h  = $ca->ok_call('lock held past the timeout', 'lock', $n4, $la);
    my $c  = EV::Etcd->new(endpoints => [@eps], timeout => 1);
    my $lc = $ca->lease(60);
    my $t0 = Time::HiRes::time();
    my $cc = EtcdTest::Caller->new($c);
    my $w  = $cc->start('lock', $n4, $lc);
    ok(EtcdTest::run_until(5, sub { $w->{n} }), 'timed-out lock called back');
    my $took = ($w->{at} // 99) - $t0;
    cmp_ok($took, '>=', 0.9, 'not before the 1 s timeout');
    cmp_ok($took, '<', 3, 'within 3 s');
    ok(!defined $w->{resp}, 'no response with the error');
    error_ok($w->{err}, 'lock timeout', code => 4, status => 'DEADLINE_EXCEEDED',
             message => 'Deadline Exceeded', source => 'lock');
    $ca->ok_call('unlock after the timeout', 'unlock', $h->{key});
    # if the timed-out waiter were still queued, this would wait behind it
    my $next = $cb_->start('lock', $n4, $lb);
    ok(EtcdTest::run_until(5, sub { $next->{n} }), 'next locker is not blocked by the timed-out waiter');
    ok($next->{resp} && !$next->{err}, 'next lock succeeded') or diag(explain($next->{err}));
    $r = $ca->ok_call('no key left by the timed-out waiter', 'get', sprintf('%s/%x', $n4, $lc));
    is($r->{count}, 0, 'the timed-out waiter left no key behind');
    $cb_->ok_call('unlock the next holder', 'unlock', $next->{resp}{key}) if $next->{resp};
    EtcdTest::run_until(0.3, sub { 0 });
    is_deeply([ map { $_->{n} } $cc->records ], [1], 'timed-out lock called back once');
}

# ---------------------------------------------------------------------------------
# unlock of a missing key, lock with an unknown lease

$u = $ca->ok_call('unlock a missing key', 'unlock', "${P}no-such-lock/123");
keys_are($u, ['header'], 'unlock of a missing key');
header_ok($u->{header}, 'unlock missing');

my $e = $ca->err_call('lock with an unknown lease', 'lock', "${P}lock5", 1234567890123);
error_ok($e, 'lock unknown lease', code => 2, status => 'UNKNOWN',
         message => 'etcdserver: requested lease not found', source => 'lock');
$r = $ca->ok_call('nothing under the lock name', 'get', "${P}lock5/", { prefix => 1 });
is($r->{count}, 0, 'lock with an unknown lease left no key');

# ---------------------------------------------------------------------------------
# source labels on transport errors; usage croaks

{
    my $port = EtcdTest::closed_port();
    my $down = EV::Etcd->new(endpoints => ["127.0.0.1:$port"], timeout => 2);
    my $dc   = EtcdTest::Caller->new($down, timeout => 5);
    error_ok($dc->err_call('lock on a closed port', 'lock', 'n', 1), 'lock unreachable',
             code => 14, status => 'UNAVAILABLE', source => 'lock');
    error_ok($dc->err_call('unlock on a closed port', 'unlock', 'n/1'), 'unlock unreachable',
             code => 14, status => 'UNAVAILABLE', source => 'unlock');
}

my $cb_calls = 0;
my $cb = sub { $cb_calls++ };
my $BIG = 'k' x 1048577;
my $not_code = qr/^callback must be a code reference/;
my $u_lock   = starts_with('Usage: EV::Etcd::lock(client, name, lease_id, callback)');
my $u_unlock = starts_with('Usage: EV::Etcd::unlock(client, key, callback)');
my $big      = qr/^\Qkey too large: 1048577 bytes (max 1048576)\E/;
croaks('lock()',                 sub { $a->lock() },                  $u_lock);
croaks('lock(n, $cb)',           sub { $a->lock('n', $cb) },          $u_lock);
croaks('lock(n, 1, $cb, 1)',     sub { $a->lock('n', 1, $cb, 1) },    $u_lock);
croaks('lock(n, 1, "x")',        sub { $a->lock('n', 1, 'x') },       $not_code);
croaks('lock(big, 1, "x")',      sub { $a->lock($BIG, 1, 'x') },      $not_code);
croaks('lock(big, 1, $cb)',      sub { $a->lock($BIG, 1, $cb) },      $big);
croaks('unlock()',               sub { $a->unlock() },                $u_unlock);
croaks('unlock($cb)',            sub { $a->unlock($cb) },             $u_unlock);
croaks('unlock(k, 1, $cb)',      sub { $a->unlock('k', 1, $cb) },     $u_unlock);
croaks('unlock(k, {})',          sub { $a->unlock('k', {}) },         $not_code);
croaks('unlock(big, $cb)',       sub { $a->unlock($BIG, $cb) },       $big);
croaks('class method lock',      sub { EV::Etcd->lock('n', 1, $cb) }, qr/client is not of type EV::Etcd/);
{
    my $max = 'k' x 1048576;
    my ($resp, $err) = $ca->call('unlock', $max);
    ok($resp && !$err, 'unlock with a key of exactly 1048576 bytes is accepted') or diag(explain($err));
}

# ---------------------------------------------------------------------------------
# cleanup and exactly-once

$ca->revoke_leases;
EtcdTest::cleanup($a);
EtcdTest::Caller->exactly_once($ca, $cb_);
is($cb_calls, 0, 'croaked calls never called back');

done_testing;
