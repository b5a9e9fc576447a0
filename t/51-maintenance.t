use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(int_ok croaks);
use EV::Etcd;

# POD "MAINTENANCE METHODS": alarm, defragment, hash_kv, auth_status. A
# private member: alarms and auth change the whole server's behaviour.

my $srv    = EtcdTest->start;
can_ok('EV::Etcd', qw(alarm defragment hash hash_kv move_leader auth_status));
my $client = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
my $caller = EtcdTest::Caller->new($client, timeout => 15);
my $P      = EtcdTest::prefix();
my $cb     = sub { };

# int_ok, croaks: t/lib/EtcdTest/Shape.pm

my $st = $caller->ok_call('status', 'status');
my $me = "$st->{header}{member_id}";
ok($me ne '' && $me ne '0', 'member id known');

# --- alarm ----------------------------------------------------------------------

my $get = $caller->ok_call('alarm GET', 'alarm', 'GET');
is_deeply($get->{alarms}, [], 'no alarms at first');
ok(!grep({ $_ ne 'alarms' && $_ ne 'header' } keys %$get), 'alarm keys: alarms (and header where the server sends one)');

my $act = $caller->ok_call('alarm ACTIVATE NOSPACE', 'alarm', 'ACTIVATE', { member_id => $me, alarm => 'NOSPACE' });
is_deeply($act->{alarms}, [ { member_id => $me, alarm => 1, alarm_type => 'NOSPACE' } ],
          'activate: answers with the raised alarm');

my $now = $caller->ok_call('alarm get (lower case)', 'alarm', 'get');
is(scalar @{ $now->{alarms} || [] }, 1, 'one alarm raised');
my $a = $now->{alarms}[0] || {};
is_deeply([ sort keys %$a ], [qw(alarm alarm_type member_id)], 'alarm entry keys');
is("$a->{member_id}", $me, 'alarm member_id is this member');
int_ok($a, 'member_id', 'alarm entry');
int_ok($a, 'alarm', 'alarm entry');
is($a->{alarm}, 1, 'alarm 1');
is($a->{alarm_type}, 'NOSPACE', 'alarm_type NOSPACE');

# the alarm is real: writes are refused
my $full = $caller->err_call('put under NOSPACE', 'put', "${P}nospace", 'x');
is($full->{code}, 8, 'put under NOSPACE: RESOURCE_EXHAUSTED');
like($full->{message}, qr/database space exceeded/, 'put under NOSPACE: message');

$caller->ok_call('alarm Deactivate NOSPACE', 'alarm', 'Deactivate', { member_id => $me, alarm => 'nospace' });
my $clear = $caller->ok_call('alarm GET after deactivate', 'alarm', 'GET');
is_deeply($clear->{alarms}, [], 'no alarms after deactivate');
$caller->ok_call('put works again', 'put', "${P}nospace", 'x');

croaks('alarm bad action', sub { $client->alarm('LIST', $cb) },
            qr/^Invalid alarm action: LIST \(expected GET, ACTIVATE, or DEACTIVATE\)/);
croaks('alarm bad action with options', sub { $client->alarm('', {}, $cb) },
            qr/^Invalid alarm action:  \(expected GET, ACTIVATE, or DEACTIVATE\)/);
croaks('alarm: callback checked first', sub { $client->alarm('LIST', 'nocb') },
            qr/^callback must be a code reference/);
croaks('alarm()', sub { $client->alarm($cb) }, qr/^Usage: \$client->alarm\(/);
croaks('alarm 4 args', sub { $client->alarm('GET', {}, {}, $cb) }, qr/^Usage: \$client->alarm\(/);

# --- defragment -------------------------------------------------------------------

my $defrag = $caller->ok_call('defragment', 'defragment');
ok(!grep({ $_ ne 'header' } keys %$defrag), 'defragment: at most a header');
croaks('defragment(1, $cb)', sub { $client->defragment(1, $cb) },
            qr/^Usage: EV::Etcd::defragment\(client, callback\)/);

# --- hash -------------------------------------------------------------------------

my $hb = $caller->ok_call('hash', 'hash');
is_deeply([ sort keys %$hb ], [qw(hash header)], 'hash keys');
int_ok($hb, 'hash', 'hash');
like($hb->{hash}, qr/^\d+\z/, 'hash: an unsigned decimal');
cmp_ok($hb->{hash}, '<=', 4294967295, 'hash: fits 32 bits');
is("$hb->{header}{member_id}", $me, 'hash: header of this member');
croaks('hash(1, $cb)', sub { $client->hash(1, $cb) },
            qr/^Usage: EV::Etcd::hash\(client, callback\)/);

# --- hash_kv ----------------------------------------------------------------------

my $r1 = $caller->ok_call('put k1', 'put', "${P}k1", 'one');
my $rev1 = $r1->{header}{revision};
my $r2 = $caller->ok_call('put k2', 'put', "${P}k2", 'two');
my $rev2 = $r2->{header}{revision};

my $h = $caller->ok_call('hash_kv (latest)', 'hash_kv');
# (newer servers add hash_revision)
is_deeply([ sort grep { $_ ne 'hash_revision' } keys %$h ], [qw(compact_revision hash header)],
          'hash_kv keys');
int_ok($h, 'hash', 'hash_kv');
int_ok($h, 'compact_revision', 'hash_kv');
like($h->{hash}, qr/^\d+\z/, 'hash is an unsigned decimal');
cmp_ok($h->{hash}, '<=', 4294967295, 'hash fits 32 bits');
is($h->{header}{revision}, $rev2, 'hash_kv header revision is the latest');

my $h2 = $caller->ok_call('hash_kv at the latest revision', 'hash_kv', $rev2);
is("$h2->{hash}", "$h->{hash}", 'hash at the latest revision equals hash_kv()');
my $h1 = $caller->ok_call('hash_kv at an older revision', 'hash_kv', $rev1);
isnt("$h1->{hash}", "$h->{hash}", 'an older revision hashes differently');
my $h0 = $caller->ok_call('hash_kv(0)', 'hash_kv', 0);
is("$h0->{hash}", "$h->{hash}", 'revision 0 means the latest');

$caller->ok_call('compact', 'compact', $rev2);
my $old = $caller->err_call('hash_kv at a compacted revision', 'hash_kv', $rev1);
is($old->{code}, 11, 'compacted: OUT_OF_RANGE');
is($old->{status}, 'OUT_OF_RANGE', 'compacted: status');
like($old->{message}, qr/compacted/, 'compacted: message');
is($old->{source}, 'hash_kv', 'compacted: source');
my $hc = $caller->ok_call('hash_kv after compaction', 'hash_kv');
is($hc->{compact_revision}, $rev2, 'compact_revision is the compaction revision');

croaks('hash_kv()', sub { $client->hash_kv() },
            qr/^Usage: \$client->hash_kv\(\[\$revision,\] \$callback\)/);
croaks('hash_kv(1, 2, $cb)', sub { $client->hash_kv(1, 2, $cb) },
            qr/^Usage: \$client->hash_kv\(\[\$revision,\] \$callback\)/);
croaks('hash_kv(1, "x")', sub { $client->hash_kv(1, 'x') }, qr/^callback must be a code reference/);

# --- auth_status ------------------------------------------------------------------

my $as = $caller->ok_call('auth_status (auth off)', 'auth_status');
is_deeply([ sort keys %$as ], [qw(auth_revision enabled header)], 'auth_status keys');
is($as->{enabled}, 0, 'auth is off');
int_ok($as, 'enabled', 'auth_status');
int_ok($as, 'auth_revision', 'auth_status');
is("$as->{header}{member_id}", $me, 'auth_status header is this member');
croaks('auth_status(1, $cb)', sub { $client->auth_status(1, $cb) },
            qr/^Usage: EV::Etcd::auth_status\(client, callback\)/);

$caller->ok_call('user_add root', 'user_add', 'root', 'rootpw');
$caller->ok_call('user_grant_role root root', 'user_grant_role', 'root', 'root');
$caller->ok_call('auth_enable', 'auth_enable');

my $fresh = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10));
my $on = $fresh->ok_call('auth_status (auth on, no token)', 'auth_status');
is($on->{enabled}, 1, 'auth is on');
my $root = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10,
                                               user => 'root', password => 'rootpw'));
my $on2 = $root->ok_call('auth_status (auth on, as root)', 'auth_status');
is($on2->{enabled}, 1, 'auth is on for root too');
$root->ok_call('auth_disable', 'auth_disable');
my $off = $fresh->ok_call('auth_status after auth_disable', 'auth_status');
is($off->{enabled}, 0, 'auth is off again');

EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { $_->{what} } grep { $_->{n} != 1 } $caller->records, $fresh->records, $root->records ],
          [], 'every callback ran exactly once');

done_testing;
