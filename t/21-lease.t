use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(:all);
use EV::Etcd;

# POD "LEASES AND KEEPALIVE" (lease_grant, lease_revoke, lease_time_to_live,
# lease_leases, and their errors), "ERRORS" (source labels), "CALLING CONVENTIONS"
# (usage croaks) -- against a real etcd, asserted by value.

my @eps    = EtcdTest::endpoints();
my $P      = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);
my $caller = EtcdTest::Caller->new($client, timeout => 15);

my %granted;    # leases this file created, revoked at the end if still alive
sub grant_ok {
    my ($name, $ttl) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $g = $caller->ok_call($name, 'lease_grant', $ttl);
    $granted{ $g->{id} } = 1 if $g->{id};
    return $g;
}

sub ttl_of {
    my ($name, @args) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return $caller->ok_call($name, 'lease_time_to_live', @args);
}

sub lease_ids {
    my $r = $caller->ok_call('lease_leases', 'lease_leases');
    return { map { $_->{id} => 1 } @{ $r->{leases} || [] } };
}

# ---------------------------------------------------------------------------------
# lease_grant

my $g = grant_ok('lease_grant 30', 30);
keys_are($g, [qw(header id ttl)], 'grant');
header_ok($g->{header}, 'grant');
int_ok($g, 'id', 'grant');
int_ok($g, 'ttl', 'grant');
cmp_ok($g->{id} // 0, '>', 0, 'grant: id > 0');
is($g->{ttl}, 30, 'grant: ttl is the requested 30 s');
my $id = $g->{id} // 0;

my $g2 = grant_ok('second lease_grant 30', 30);
cmp_ok($g2->{id} // 0, '>', 0, 'second grant: id > 0');
isnt($g2->{id}, $id, 'second grant: a different id');

# tiny, zero and negative TTLs are raised to the server's minimum
my $min = grant_ok('lease_grant 0', 0);
cmp_ok($min->{ttl} // 0, '>=', 1, 'grant 0: ttl raised to the server minimum (at least 1 s)');
cmp_ok($min->{ttl} // 99, '<=', 5, 'grant 0: the minimum is a few seconds, not the default');
my $neg = grant_ok('lease_grant -5', -5);
is($neg->{ttl}, $min->{ttl}, 'grant -5: raised to the same minimum');
my $one = grant_ok('lease_grant 1', 1);
is($one->{ttl}, $min->{ttl}, 'grant 1: raised to the same minimum') if ($min->{ttl} // 0) > 1;
is($one->{ttl}, 1, 'grant 1: 1 s is the minimum here') if ($min->{ttl} // 0) == 1;
SKIP: {
    skip 'external endpoints: election timeout unknown', 1 unless EtcdTest::server();
    # 1.5 election timeouts (500 ms in t/lib/EtcdTest.pm), rounded up to whole seconds
    is($min->{ttl}, 1, 'own member: minimum TTL is ceil(1.5 * 500 ms) = 1 s');
}
{
    my $t = ttl_of('time_to_live of the raised lease', $min->{id});
    is($t->{granted_ttl}, $min->{ttl}, 'raised lease: granted_ttl is the raised TTL');
}

# ---------------------------------------------------------------------------------
# lease_time_to_live

my $t = ttl_of('time_to_live', $id);
keys_are($t, [qw(header id ttl granted_ttl)], 'time_to_live without keys option');
header_ok($t->{header}, 'time_to_live');
int_ok($t, $_, 'time_to_live') for qw(id ttl granted_ttl);
is($t->{id}, $id, 'time_to_live: id');
is($t->{granted_ttl}, 30, 'time_to_live: granted_ttl 30');
cmp_ok($t->{ttl} // -9, '<=', 30, 'time_to_live: ttl <= granted');
cmp_ok($t->{ttl} // -9, '>=', 25, 'time_to_live: ttl close to granted');

$t = ttl_of('time_to_live keys => 1, nothing attached', $id, { keys => 1 });
keys_are($t, [qw(header id ttl granted_ttl)], 'keys option without attached keys: no keys entry');

# attach keys with put's lease option
my $put = $caller->ok_call('put with lease', 'put', "${P}la", 'v', { lease => $id });
my $r = $caller->ok_call('get the leased key', 'get', "${P}la");
kv_ok($r->{kvs}[0], 'leased key', key => "${P}la", value => 'v', lease => $id);
$put = $caller->ok_call('put a second key with lease', 'put', "${P}lb", 'w', { lease => $id });

$t = ttl_of('time_to_live keys => 1', $id, { keys => 1 });
keys_are($t, [qw(header id ttl granted_ttl keys)], 'time_to_live with keys');
is(ref $t->{keys}, 'ARRAY', 'keys is an array ref');
is_deeply([ sort @{ $t->{keys} || [] } ], [ "${P}la", "${P}lb" ], 'keys lists both attached keys');
ok(!grep({ utf8::is_utf8($_) } @{ $t->{keys} || [] }), 'keys are byte strings');

$t = ttl_of('time_to_live without option, keys attached', $id);
ok(!exists $t->{keys}, 'without the option keys is absent even with keys attached');
$t = ttl_of('time_to_live keys => 0', $id, { keys => 0 });
ok(!exists $t->{keys}, 'keys => 0: keys absent');
$t = ttl_of('time_to_live with an array ref as options', $id, [ keys => 1 ]);
ok(!exists $t->{keys}, 'non-hash options are ignored');
is($t->{id}, $id, 'non-hash options: still answered for the lease');
$t = ttl_of('time_to_live with undef options', $id, undef);
is($t->{granted_ttl}, 30, 'undef options: answered');

# ---------------------------------------------------------------------------------
# lease_leases

$r = $caller->ok_call('lease_leases', 'lease_leases');
keys_are($r, [qw(header leases)], 'leases');
header_ok($r->{header}, 'leases');
is(ref $r->{leases}, 'ARRAY', 'leases is an array ref');
my %listed = map { ($_->{id} // '') => $_ } @{ $r->{leases} || [] };
ok($listed{$id},       'leases lists the first granted id');
ok($listed{ $g2->{id} // 'none' }, 'leases lists the second granted id');
keys_are($listed{$id} || {}, ['id'], 'lease entry');
int_ok($listed{$id} || {}, 'id', 'lease entry');

# ---------------------------------------------------------------------------------
# lease_revoke

my $rev_before = $put->{header}{revision} // 0;
$r = $caller->ok_call('lease_revoke', 'lease_revoke', $id);
keys_are($r, ['header'], 'revoke');
header_ok($r->{header}, 'revoke');
cmp_ok($r->{header}{revision} // 0, '>', $rev_before, 'revoke: the deletion of attached keys moved the revision');
delete $granted{$id};

$r = $caller->ok_call('get after revoke', 'get', "${P}l", { prefix => 1 });
is_deeply($r->{kvs}, [], 'revoke deleted the attached keys');
ok(!lease_ids()->{$id}, 'revoked lease is no longer listed');

$t = ttl_of('time_to_live of the revoked lease', $id, { keys => 1 });
keys_are($t, [qw(header id ttl granted_ttl)], 'revoked lease: no keys entry');
is($t->{ttl}, -1, 'revoked lease: ttl -1');
is($t->{granted_ttl}, 0, 'revoked lease: granted_ttl 0');
is($t->{id}, $id, 'revoked lease: id echoed');

my $e = $caller->err_call('revoke again', 'lease_revoke', $id);
error_ok($e, 'revoke of a revoked lease', code => 5, status => 'NOT_FOUND',
         message => 'etcdserver: requested lease not found', source => 'lease_revoke');
$e = $caller->err_call('revoke an unknown lease', 'lease_revoke', 1234567890123);
error_ok($e, 'revoke unknown', code => 5, status => 'NOT_FOUND',
         message => 'etcdserver: requested lease not found', source => 'lease_revoke');

$t = ttl_of('time_to_live of an unknown lease', 1234567890123);
is($t->{ttl}, -1, 'unknown lease: ttl -1, not an error');
is($t->{granted_ttl}, 0, 'unknown lease: granted_ttl 0');

$e = $caller->err_call('put with the revoked lease', 'put', "${P}lc", 'v', { lease => $id });
error_ok($e, 'put with revoked lease', code => 5, status => 'NOT_FOUND',
         message => 'etcdserver: requested lease not found', source => 'put');
$r = $caller->ok_call('key with revoked lease was not written', 'get', "${P}lc");
is($r->{count}, 0, 'put with a revoked lease wrote nothing');

# ---------------------------------------------------------------------------------
# expiry: an unrenewed lease runs out and takes its keys with it

{
    my $short = $min;    # granted above with the minimum TTL
    $caller->ok_call('put with the short lease', 'put', "${P}exp", 'x', { lease => $short->{id} });
    my $gone = 0;
    my $deadline = time + 3 * ($short->{ttl} // 1) + 5;
    while (!$gone && time < $deadline) {
        my ($tr) = $caller->call('lease_time_to_live', $short->{id});
        $gone = 1 if $tr && ($tr->{ttl} // 0) == -1;
        EtcdTest::run_until(0.2, sub { 0 }) unless $gone;
    }
    ok($gone, 'short lease expired on its own (ttl -1)');
    delete $granted{ $short->{id} };
    $r = $caller->ok_call('get after expiry', 'get', "${P}exp");
    is($r->{count}, 0, 'expired lease deleted its key');
}

# ---------------------------------------------------------------------------------
# source labels on transport errors (closed port: fails at once)

{
    my $port = EtcdTest::closed_port();
    my $down = EV::Etcd->new(endpoints => ["127.0.0.1:$port"], timeout => 2);
    my $dc   = EtcdTest::Caller->new($down, timeout => 5);
    for my $case ([ lease_grant => 'lease_grant', 5 ], [ lease_revoke => 'lease_revoke', 1 ],
                  [ lease_time_to_live => 'lease_ttl', 1 ], [ lease_time_to_live => 'lease_ttl', 1, { keys => 1 } ],
                  [ lease_leases => 'lease_leases' ]) {
        my ($method, $source, @args) = @$case;
        my $err = $dc->err_call("$method on a closed port", $method, @args);
        error_ok($err, "$method unreachable", code => 14, status => 'UNAVAILABLE', source => $source);
    }
    is_deeply([ map { $_->{n} } $dc->records ], [ (1) x 5 ], 'closed port: every callback exactly once');
}

# ---------------------------------------------------------------------------------
# usage croaks (never call back)

my $cb_calls = 0;
my $cb = sub { $cb_calls++ };
my $not_code = qr/^callback must be a code reference/;
my $u_grant  = starts_with('Usage: EV::Etcd::lease_grant(client, ttl, callback)');
my $u_revoke = starts_with('Usage: EV::Etcd::lease_revoke(client, lease_id, callback)');
my $u_leases = starts_with('Usage: EV::Etcd::lease_leases(client, callback)');
my $u_ttl    = starts_with('Usage: $client->lease_time_to_live($lease_id, [\%opts,] $callback)');

croaks('lease_grant()',            sub { $client->lease_grant() },             $u_grant);
croaks('lease_grant($cb)',         sub { $client->lease_grant($cb) },          $u_grant);
croaks('lease_grant(5, $cb, 1)',   sub { $client->lease_grant(5, $cb, 1) },    $u_grant);
croaks('lease_grant(5, "x")',      sub { $client->lease_grant(5, 'x') },       $not_code);
croaks('lease_grant(5, {})',       sub { $client->lease_grant(5, {}) },        $not_code);
croaks('lease_grant(5, undef)',    sub { $client->lease_grant(5, undef) },     $not_code);
croaks('lease_revoke()',           sub { $client->lease_revoke() },            $u_revoke);
croaks('lease_revoke($cb)',        sub { $client->lease_revoke($cb) },         $u_revoke);
croaks('lease_revoke(1, 2, $cb)',  sub { $client->lease_revoke(1, 2, $cb) },   $u_revoke);
croaks('lease_revoke(1, {}, {}, $cb)', sub { $client->lease_revoke(1, {}, {}, $cb) }, $u_revoke);
croaks('lease_revoke(1, [])',      sub { $client->lease_revoke(1, []) },       $not_code);
croaks('lease_leases(1, $cb)',     sub { $client->lease_leases(1, $cb) },      $u_leases);
croaks('lease_leases()',           sub { $client->lease_leases() },            $u_leases);
croaks('lease_leases("x")',        sub { $client->lease_leases('x') },         $not_code);
croaks('lease_time_to_live()',     sub { $client->lease_time_to_live() },      $u_ttl);
croaks('lease_time_to_live($cb)',  sub { $client->lease_time_to_live($cb) },   $u_ttl);
croaks('lease_time_to_live(1, {}, {}, $cb)', sub { $client->lease_time_to_live(1, {}, {}, $cb) }, $u_ttl);
croaks('lease_time_to_live(1, "x")',         sub { $client->lease_time_to_live(1, 'x') },         $not_code);
croaks('lease_time_to_live(1, {}, "x")',     sub { $client->lease_time_to_live(1, {}, 'x') },     $not_code);
croaks('lease_time_to_live(1, $cb, {})',     sub { $client->lease_time_to_live(1, $cb, {}) },     $not_code);
croaks('class method lease_grant', sub { EV::Etcd->lease_grant(5, $cb) },       qr/client is not of type EV::Etcd/);
croaks('class method lease_leases', sub { EV::Etcd::lease_leases('EV::Etcd', $cb) }, qr/client is not of type EV::Etcd/);
{
    my @ret = $client->lease_leases(sub { $cb_calls++ });
    is(scalar @ret, 0, 'lease_leases returns nothing');
    is($cb_calls, 0, 'no callback before the loop runs');
    EtcdTest::run_until(10, sub { $cb_calls });
    is($cb_calls, 1, 'the accepted call called back once; croaked calls never did');
}

# ---------------------------------------------------------------------------------
# cleanup and exactly-once

for my $lid (sort keys %granted) {
    $caller->call('lease_revoke', $lid);
}
EtcdTest::cleanup($client);
EtcdTest::Caller->exactly_once($caller);
is($cb_calls, 1, 'still exactly one callback for the croak section');

done_testing;
