use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# The `namespace` option: every key a namespaced client sends is moved under
# the prefix, every key it gets back comes without it, and nothing outside
# the namespace is read, written, deleted or watched. Keys outside are seeded
# and checked with a second client that has no namespace.

my @eps   = EtcdTest::endpoints();
my $P     = EtcdTest::prefix();
my $NS    = "${P}ns/";
my $plain = EV::Etcd->new(endpoints => [@eps], timeout => 10);
my $n     = EV::Etcd->new(endpoints => [@eps], timeout => 10, namespace => $NS);
my $pc    = EtcdTest::Caller->new($plain);
my $nc    = EtcdTest::Caller->new($n);

sub keys_of { [ map { $_->{key} } @{ $_[0]{kvs} || [] } ] }

# Keys just outside the namespace on both sides, and one far away: after
# every step they must still hold exactly these values.
my %outside = (
    "${P}ns"   => 'before the namespace',
    "${P}ns."  => 'sorts before the slash',
    "${P}ns0"  => 'the end of the namespace range',
    "${P}nt"   => 'after',
    "${P}out"  => 'far away',
);
$pc->ok_call("seed $_", 'put', $_, $outside{$_}) for sort keys %outside;

sub outside_untouched {
    my ($what) = @_;
    my $r = $pc->ok_call("$what: read the outside keys", 'get', $P, { prefix => 1 });
    my %seen = map { $_->{key} => $_->{value} } @{ $r->{kvs} || [] };
    delete @seen{ grep { index($_, $NS) == 0 } keys %seen };
    is_deeply(\%seen, \%outside, "$what: keys outside the namespace untouched");
}

# ---------------------------------------------------------------------------------
# put / get: prefixed on the way in, stripped on the way out

$nc->ok_call("put $_", 'put', $_, "v$_") for qw(a b c/d);
my $r = $pc->ok_call('plain get of the prefixed key', 'get', "${NS}a");
is($r->{kvs}[0]{value}, 'va', 'put wrote under the namespace');
$r = $pc->ok_call('plain get of the bare key', 'get', 'a');
is($r->{count}, 0, 'nothing written outside the namespace');

$r = $nc->ok_call('put with prev_kv', 'put', 'a', 'va2', { prev_kv => 1 });
is($r->{prev_kv}{key}, 'a', 'prev_kv key unprefixed');
is($r->{prev_kv}{value}, 'va', 'prev_kv value');

$r = $nc->ok_call('get a', 'get', 'a');
is_deeply(keys_of($r), ['a'], 'get: key unprefixed');
is($r->{kvs}[0]{value}, 'va2', 'get: value');

$r = $nc->ok_call('get the whole namespace', 'get', '', { prefix => 1 });
is_deeply(keys_of($r), [qw(a b c/d)], 'empty key with prefix: exactly the namespace');
is($r->{count}, 3, 'count of the namespace');

$r = $nc->ok_call('get from a to the end', 'get', 'a', { range_end => "\0" });
is_deeply(keys_of($r), [qw(a b c/d)], 'range_end "\0" stops at the namespace edge');

$r = $nc->ok_call('get [b, c)', 'get', 'b', { range_end => 'c' });
is_deeply(keys_of($r), ['b'], 'explicit range_end is prefixed');

$r = $nc->ok_call('get c prefix', 'get', 'c', { prefix => 1, keys_only => 1 });
is_deeply(keys_of($r), ['c/d'], 'prefix get inside the namespace');

my $e = $nc->err_call('get of the empty key', 'get', '');
like($e->{message} // '', qr/key is not provided/, 'the empty key alone is still an error');

outside_untouched('after put/get');

# ---------------------------------------------------------------------------------
# txn: compares and operations prefixed, sub-responses stripped

$r = $nc->ok_call('txn', 'txn',
    [ { key => 'a', value => 'va2' }, { key => 'a', range_end => "\0", version => 0, result => '>' } ],
    [ { put => { key => 't', value => 'vt' } },
      { range => { key => 'a', range_end => "\0" } },
      { delete => { key => 'b' } } ],
    [ { put => { key => 'failed', value => 'x' } } ]);
is($r->{succeeded}, 1, 'txn compares saw the namespaced keys');
is_deeply(keys_of($r->{responses}[1]{response_range}), [qw(a b c/d t)],
    'txn range sub-response: unprefixed keys, namespace only');
is($r->{responses}[2]{response_delete_range}{deleted}, 1, 'txn delete deleted one key');
$r = $pc->ok_call('plain get of txn put', 'get', "${NS}t");
is($r->{kvs}[0]{value}, 'vt', 'txn put went under the namespace');
$r = $pc->ok_call('plain get of the bare txn key', 'get', 't');
is($r->{count}, 0, 'txn wrote nothing outside');

# Options and nested txns inside (POD "txn"): a prefix of the empty key is
# the whole namespace; a nested txn's operations and results are namespaced.
$r = $nc->ok_call('txn with a prefix range and a nested txn', 'txn', [],
    [ { range => { key => '', prefix => 1, keys_only => 1 } },
      { request_txn => { compare => [ { key => 't', value => 'vt' } ],
                         success => [ { put => { key => 'nested', value => 'vn', prev_kv => 1 } },
                                      { range => { key => 't' } } ] } } ], []);
is_deeply(keys_of($r->{responses}[0]{response_range}), [qw(a c/d t)],
    'txn range with prefix on the empty key: the whole namespace (b was deleted above), unprefixed');
my $nested = $r->{responses}[1]{response_txn} || {};
is($nested->{succeeded}, 1, 'nested txn compare saw the namespaced key');
is_deeply(keys_of($nested->{responses}[1]{response_range}), ['t'], 'nested txn range: unprefixed key');
$r = $pc->ok_call('plain get of the nested txn put', 'get', "${NS}nested");
is($r->{kvs}[0]{value}, 'vn', 'nested txn put went under the namespace');
$nc->ok_call('delete the nested key', 'delete', 'nested');

$r = $nc->ok_call('txn on a key outside', 'txn',
    [ { key => "${P}out", value => $outside{"${P}out"} } ], [], []);
is($r->{succeeded}, 0, 'a compare cannot see a key outside the namespace');

outside_untouched('after txn');

# ---------------------------------------------------------------------------------
# watch: only events of the namespace, keys stripped

my (@events, @werr);
my $w = $n->watch('', { prefix => 1, prev_kv => 1 }, sub {
    my ($resp, $err) = @_;
    return push @werr, $err if $err;
    push @events, @{ $resp->{events} };
});
my @from_a;
my $w2 = $n->watch('a', { range_end => "\0" }, sub {
    my ($resp, $err) = @_;
    push @from_a, map { $_->{kv}{key} } @{ $resp->{events} || [] };
});
$pc->ok_call('plain put outside', 'put', "${P}ns0", 'touched');
$pc->ok_call('plain put before', 'put', "${P}ns", 'touched');
$nc->ok_call('put w1', 'put', 'w1', 'one');
$nc->ok_call('put w1 again', 'put', 'w1', 'two');
$nc->ok_call('delete w1', 'delete', 'w1');
$pc->ok_call('plain put inside', 'put', "${NS}zz", 'from outside');
ok(EtcdTest::run_until(10, sub { @events >= 4 && @from_a >= 4 }), 'watch events arrived')
    or diag explain \@events;
EtcdTest::run_loop(0.3);
is_deeply([ map { [ $_->{type}, $_->{kv}{key} ] } @events ],
    [ [ PUT => 'w1' ], [ PUT => 'w1' ], [ DELETE => 'w1' ], [ PUT => 'zz' ] ],
    'watch saw only namespace events, keys unprefixed');
is($events[1]{prev_kv}{key}, 'w1', 'prev_kv of a watch event unprefixed');
is($events[1]{prev_kv}{value}, 'one', 'prev_kv value');
is_deeply(\@from_a, [qw(w1 w1 w1 zz)], 'range_end "\0" watch stops at the namespace edge');
is_deeply(\@werr, [], 'no watch error');
my $cancelled = 0;
$_->cancel(sub { $cancelled++ }) for $w, $w2;
EtcdTest::run_until(5, sub { $cancelled == 2 });
$pc->ok_call('restore', 'put', $_, $outside{$_}) for "${P}ns0", "${P}ns";

# ---------------------------------------------------------------------------------
# lease time_to_live lists only (and unprefixed) keys of the namespace

my $lease = $nc->lease(60);
$nc->ok_call('put with lease', 'put', 'leased', 'x', { lease => $lease });
$pc->ok_call('plain put with the lease', 'put', "${P}leased-out", 'x', { lease => $lease });
$r = $nc->ok_call('time_to_live keys', 'lease_time_to_live', $lease, { keys => 1 });
is_deeply($r->{keys}, ['leased'], 'lease keys: namespace only, unprefixed');
$r = $pc->ok_call('plain time_to_live keys', 'lease_time_to_live', $lease, { keys => 1 });
is_deeply([ sort @{ $r->{keys} } ], [ sort "${P}leased-out", "${NS}leased" ], 'both keys are there');

# ---------------------------------------------------------------------------------
# lock and election names live in the namespace

my $l = $nc->ok_call('lock', 'lock', 'mylock', $lease);
is($l->{key}, sprintf('mylock/%x', $lease), 'lock key unprefixed');
$r = $pc->ok_call('plain get of the lock key', 'get', "${NS}$l->{key}");
is($r->{count}, 1, 'lock key exists under the namespace');
$nc->ok_call('unlock', 'unlock', $l->{key});
$r = $pc->ok_call('plain get after unlock', 'get', "${NS}$l->{key}");
is($r->{count}, 0, 'unlock deleted the namespaced key');

my @seen;
my $obs = $n->election_observe('el', sub {
    my ($resp, $err) = @_;
    push @seen, $err ? "error: $err->{message}" : [ $resp->{kv}{key}, $resp->{kv}{value} ];
});
my $c = $nc->ok_call('campaign', 'election_campaign', 'el', $lease, 'v1');
is($c->{leader}{name}, 'el', 'leader name unprefixed');
is($c->{leader}{key}, sprintf('el/%x', $lease), 'leader key unprefixed');
$r = $nc->ok_call('leader', 'election_leader', 'el');
is($r->{kv}{key}, $c->{leader}{key}, 'election_leader kv key unprefixed');
is($r->{kv}{value}, 'v1', 'leader value');
$r = $pc->ok_call('plain leader', 'election_leader', "${NS}el");
is($r->{kv}{value}, 'v1', 'the election lives under the namespace');
$nc->ok_call('proclaim', 'election_proclaim', $c->{leader}, 'v2');
$r = $pc->ok_call('plain leader after proclaim', 'election_leader', "${NS}el");
is($r->{kv}{value}, 'v2', 'proclaim reached the namespaced election');
ok(EtcdTest::run_until(10, sub { @seen >= 2 }), 'observe saw the leader and the proclamation');
is_deeply(\@seen, [ [ $c->{leader}{key}, 'v1' ], [ $c->{leader}{key}, 'v2' ] ],
    'observe: namespaced election, leader key unprefixed');
my $oc = 0;
$obs->cancel(sub { $oc++ });
EtcdTest::run_until(5, sub { $oc });
$nc->ok_call('resign', 'election_resign', $c->{leader});
$e = $pc->err_call('plain leader after resign', 'election_leader', "${NS}el");
like($e->{message} // '', qr/no leader/, 'resign reached the namespaced election');

# ---------------------------------------------------------------------------------
# delete of the whole namespace deletes nothing else

$r = $nc->ok_call('delete the namespace', 'delete', '', { prefix => 1, prev_kv => 1 });
is_deeply([ sort map { $_->{key} } @{ $r->{prev_kvs} } ], [qw(a c/d leased t zz)],
    'delete prev_kvs unprefixed, namespace only');
$r = $pc->ok_call('plain get of the namespace', 'get', $NS, { prefix => 1 });
is($r->{count}, 0, 'namespace empty');
$pc->ok_call('delete the leased outside key', 'delete', "${P}leased-out");
outside_untouched('after delete');
$nc->revoke_leases;

# ---------------------------------------------------------------------------------
# bad option; an empty namespace is no namespace

eval { EV::Etcd->new(endpoints => [@eps], namespace => []) };
like($@, qr/^EV::Etcd->new: namespace must be a string/, 'a reference as namespace croaks');
my $none = EV::Etcd->new(endpoints => [@eps], namespace => '');
$r = EtcdTest::Caller->new($none)->ok_call('get without namespace', 'get', "${P}out");
is($r->{kvs}[0]{value}, 'far away', 'an empty namespace changes nothing');

EtcdTest::cleanup($plain);
done_testing;
