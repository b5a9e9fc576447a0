use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use Scalar::Util ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "PER-CALL OPTIONS": a `timeout` of the call's own, shorter or longer
# than the client's, for every request method; and "Cancelling a lock or a
# campaign": the handle lock and election_campaign return.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();

# A short client timeout, so that a call waiting longer than it can only be
# bounded by its own.
my $short = EV::Etcd->new(endpoints => [@eps], timeout => 1);
my $long  = EV::Etcd->new(endpoints => [@eps], timeout => 30);
my $cs    = EtcdTest::Caller->new($short, timeout => 40);
my $cl    = EtcdTest::Caller->new($long,  timeout => 40);

sub croaks {
    my ($name, $code, $re) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(!eval { $code->(); 1 }, "$name croaks");
    like($@, $re, "$name: message");
}

# --- option checks -------------------------------------------------------------------
my $cb = sub { };
croaks('get timeout 0',   sub { $short->get('k', { timeout => 0 }, $cb) },
       qr/^get: timeout must be a positive number of seconds/);
croaks('put timeout -1',  sub { $short->put('k', 'v', { timeout => -1 }, $cb) },
       qr/^put: timeout must be a positive number of seconds/);
croaks('lock timeout "soon"', sub { $short->lock('n', 1, { timeout => 'soon' }, $cb) },
       qr/^lock: timeout must be a positive number of seconds/);
croaks('status timeout nan', sub { $short->status({ timeout => 'nan' }, $cb) },
       qr/^status: timeout must be a positive number of seconds/);
croaks('lock with a non-hash before the callback', sub { $short->lock('n', 1, 'x', $cb) },
       qr/^Usage: EV::Etcd::lock\(client, name, lease_id, callback\)/);
croaks('lock with two option hashes', sub { $short->lock('n', 1, {}, {}, $cb) },
       qr/^Usage: EV::Etcd::lock\(client, name, lease_id, callback\)/);
croaks('status with a non-hash', sub { $short->status(1, $cb) },
       qr/^Usage: EV::Etcd::status\(client, callback\)/);

# --- every unary method takes the option, and succeeds with it -------------------------
{
    my $k = "${P}opt";
    my $o = { timeout => 7.5 };
    $cl->ok_call('put with timeout',    'put', $k, 'v1', $o);
    my $g = $cl->ok_call('get with timeout', 'get', $k, $o);
    is($g->{kvs}[0]{value}, 'v1', 'get with timeout: the value');
    my $t = $cl->ok_call('txn (positional) with timeout', 'txn',
        [ { key => $k, value => 'v1' } ], [ { put => { key => $k, value => 'v2' } } ], [], $o);
    is($t->{succeeded}, 1, 'txn with timeout: succeeded');
    my ($resp, $err);
    $long->txn(compare => [ { key => $k, value => 'v2' } ],
               success => [ { range => { key => $k } } ], timeout => 3,
               callback => sub { ($resp, $err) = @_ });
    EtcdTest::run_until(10, sub { $resp || $err });
    is($resp && $resp->{responses}[0]{response_range}{kvs}[0]{value}, 'v2',
       'txn (keywords) with timeout: the read inside') or diag(explain($err));
    my $st = $cl->ok_call('status with timeout', 'status', $o);
    like($st->{version} // '', qr/^\d+\.\d+/, 'status with timeout: a version');
    my $ls = $cl->ok_call('lease_grant with timeout', 'lease_grant', 30, $o);
    ok($ls->{id}, 'lease_grant with timeout: an id');
    my $ttl = $cl->ok_call('lease_time_to_live with timeout', 'lease_time_to_live', $ls->{id}, $o);
    is($ttl->{granted_ttl}, 30, 'lease_time_to_live with timeout: the TTL');
    $cl->ok_call('lease_revoke with timeout', 'lease_revoke', $ls->{id}, $o);
    my $h = $cl->ok_call('hash_kv with revision and timeout', 'hash_kv', 0, $o);
    ok(defined $h->{hash}, 'hash_kv with timeout: a hash');
    $h = $cl->ok_call('hash_kv with timeout only', 'hash_kv', $o);
    ok(defined $h->{hash}, 'hash_kv with options only: a hash');
    $cl->ok_call('delete with timeout', 'delete', $k, $o);
}

# --- a timeout shorter than the client's -----------------------------------------------
{
    my $t0 = Time::HiRes::time();
    my $e  = $cl->err_call('get with a 1 us timeout', 'get', "${P}x", { timeout => 0.000001 });
    is($e->{status}, 'DEADLINE_EXCEEDED', 'the call ran out of its own time');
    is($e->{source}, 'range', 'source range');
    cmp_ok(Time::HiRes::time() - $t0, '<', 5, 'long before the client timeout of 30 s');
}

# A held lock; a second lock with a short timeout of its own gives up.
my $la   = $cl->lease(60);
my $lb   = $cl->lease(60);
my $name = "${P}lock";
my $held = $cl->ok_call('first client locks', 'lock', $name, $la);
is($held->{key}, sprintf('%s/%x', $name, $la), 'the first holder');
{
    my $t0 = Time::HiRes::time();
    my $e  = $cl->err_call('lock with timeout 0.5 while held', 'lock', $name, $lb, { timeout => 0.5 });
    my $dt = Time::HiRes::time() - $t0;
    is($e->{status}, 'DEADLINE_EXCEEDED', 'lock ran out of its own time');
    cmp_ok($dt, '>=', 0.45, "not before its timeout ($dt s)");
    cmp_ok($dt, '<', 5, 'long before the client timeout of 30 s');
}

# --- a timeout longer than the client's --------------------------------------------------
{
    my $t0   = Time::HiRes::time();
    my $wait = $cs->start('lock', $name, $lb, { timeout => 20 });
    ok(Scalar::Util::blessed($wait->{ret}) && $wait->{ret}->isa('EV::Etcd::Request'),
       'lock returns an EV::Etcd::Request');
    EtcdTest::run_until(2.5, sub { $wait->{n} });
    is($wait->{n}, 0, 'still waiting after 2.5 s, past the client timeout of 1 s');
    $cl->ok_call('first holder unlocks', 'unlock', $held->{key});
    ok(EtcdTest::run_until(10, sub { $wait->{n} }), 'the waiting lock was answered');
    is($wait->{resp} && $wait->{resp}{key}, sprintf('%s/%x', $name, $lb),
       'and acquired the lock') or diag(explain($wait->{err}));
    cmp_ok(Time::HiRes::time() - $t0, '>=', 2.5, 'after waiting longer than the client timeout');
    is($wait->{ret}->cancel, 0, 'cancel after the answer: 0');
    EtcdTest::run_until(0.3, sub { $wait->{n} > 1 });
    is($wait->{n}, 1, 'and the callback is not called again');
    $cl->ok_call('second holder unlocks', 'unlock', $wait->{resp}{key});
}

# --- cancelling a waiting lock ------------------------------------------------------------
sub keys_under {
    my ($prefix) = @_;
    my $r = $cl->ok_call("get $prefix/", 'get', "$prefix/", { prefix => 1 });
    return [ map { $_->{key} } @{ $r->{kvs} || [] } ];
}
{
    $held = $cl->ok_call('first client locks again', 'lock', $name, $la);
    my $wait = $cl->start('lock', $name, $lb);
    EtcdTest::run_until(0.5, sub { $wait->{n} });
    is($wait->{n}, 0, 'the second lock waits');
    is_deeply(keys_under($name), [ sprintf('%s/%x', $name, $la), sprintf('%s/%x', $name, $lb) ],
              'both keys exist while it waits');
    is($wait->{ret}->cancel, 1, 'cancel while waiting: 1');
    is($wait->{ret}->cancel, 0, 'a second cancel: 0');
    ok(EtcdTest::run_until(10, sub { $wait->{n} }), 'the cancelled lock is called back');
    is($wait->{err} && $wait->{err}{status}, 'CANCELLED', 'with CANCELLED');
    is($wait->{err} && $wait->{err}{code}, 1, 'code 1');
    is($wait->{err} && $wait->{err}{source}, 'lock', 'source lock');
    ok(!defined $wait->{resp}, 'and no response');
    is_deeply(keys_under($name), [ sprintf('%s/%x', $name, $la) ], 'its key is gone');
    $cl->ok_call('unlock', 'unlock', $held->{key});
    EtcdTest::run_until(0.5, sub { $wait->{n} > 1 });
    is($wait->{n}, 1, 'called back once, also after the holder unlocked');
    is_deeply(keys_under($name), [], 'nobody holds the lock');
}

# --- cancelling at once: whatever the server did, nothing stays held ------------------
for my $round (1 .. 5) {
    my $wait = $cl->start('lock', $name, $lb);
    is($wait->{ret}->cancel, 1, "round $round: cancelled at once");
    ok(EtcdTest::run_until(10, sub { $wait->{n} }), "round $round: called back");
    is($wait->{err} && $wait->{err}{status}, 'CANCELLED', "round $round: CANCELLED");
    # a release sent after a late grant is answered shortly after
    my $gone = EtcdTest::run_until(5, sub { !@{ keys_under($name) } });
    ok($gone, "round $round: no key is left under the lock");
}
{
    # a lock granted before the cancel reaches the runtime: let the answer
    # arrive (no loop run in between), then cancel before it is delivered
    my $wait = $cl->start('lock', $name, $lb);
    Time::HiRes::sleep(0.5);
    is($wait->{ret}->cancel, 1, 'cancel with the grant already on its way: 1');
    ok(EtcdTest::run_until(10, sub { $wait->{n} }), 'called back');
    is($wait->{err} && $wait->{err}{status}, 'CANCELLED', 'CANCELLED, although the lock was granted');
    ok(EtcdTest::run_until(5, sub { !@{ keys_under($name) } }), 'and the granted lock was released');
}

# --- cancelling a standby campaign ----------------------------------------------------------
{
    my $el = "${P}election";
    my $lead = $cl->ok_call('first campaign', 'election_campaign', $el, $la, 'one');
    my $wait = $cl->start('election_campaign', $el, $lb, 'two');
    ok(Scalar::Util::blessed($wait->{ret}) && $wait->{ret}->isa('EV::Etcd::Request'),
       'election_campaign returns an EV::Etcd::Request');
    EtcdTest::run_until(0.5, sub { $wait->{n} });
    is($wait->{n}, 0, 'the standby campaign waits');
    is($wait->{ret}->cancel, 1, 'cancel the standby campaign');
    ok(EtcdTest::run_until(10, sub { $wait->{n} }), 'called back');
    is($wait->{err} && $wait->{err}{status}, 'CANCELLED', 'with CANCELLED');
    is($wait->{err} && $wait->{err}{source}, 'campaign', 'source campaign');
    is_deeply(keys_under($el), [ sprintf('%s/%x', $el, $la) ], 'only the leader key is left');
    $cl->ok_call('the leader resigns', 'election_resign', $lead->{leader});
    my $e = $cl->err_call('no leader after the resignation', 'election_leader', $el);
    like($e->{message} // '', qr/no leader/, 'the cancelled campaign did not become leader');
}

# --- the Future form: cancelling the future cancels the lock ------------------------------
SKIP: {
    skip 'Future is not installed', 3 unless !$ENV{CI} || eval { require Future; 1 };
    require EV::Etcd::Future;
    my $f = EV::Etcd::Future->new($long);
    $held = $cl->ok_call('lock for the future test', 'lock', $name, $la);
    my $fut = $f->lock($name, $lb);
    EtcdTest::run_until(0.5, sub { $fut->is_ready });
    ok(!$fut->is_ready, 'the lock future waits');
    $fut->cancel;
    ok(EtcdTest::run_until(5, sub { @{ keys_under($name) } == 1 }), 'cancelling it withdrew the lock');
    $cl->ok_call('unlock', 'unlock', $held->{key});
}

# --- a forged handle -------------------------------------------------------------------------
{
    my $w = $long->watch("${P}w", sub { });
    my $forged = bless \(my $id = $$w), 'EV::Etcd::Request';
    ok(!eval { $forged->cancel; 1 }, 'a request handle naming a watch croaks');
    like($@, qr/request is not of type EV::Etcd::Request/, 'as not being a request');
    my $none = bless \(my $n = 1e9), 'EV::Etcd::Request';
    is($none->cancel, 0, 'a handle of no outstanding request: 0');
    my $done = 0;
    $w->cancel(sub { $done++ });
    EtcdTest::run_until(5, sub { $done });
}

for my $c ($cs, $cl) {
    for my $rec ($c->records) {
        next if $rec->{n} == 1;
        fail("$rec->{what}: called back $rec->{n} times");
    }
}
$cl->revoke_leases;
EtcdTest::run_until(5, sub { 0 });
done_testing;
