use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(:all);
use EV::Etcd;

# POD "ELECTION METHODS": election_campaign / _proclaim / _leader / _resign, the
# leader-key hash, election errors, a blocked campaign bounded by timeout
# ("election_campaign"); POD "CALLING CONVENTIONS": usage and size croaks.
# Two real clients campaign for the same election.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();
my $a   = EV::Etcd->new(endpoints => [@eps], timeout => 20);
my $b   = EV::Etcd->new(endpoints => [@eps], timeout => 20);
my $ca  = EtcdTest::Caller->new($a, timeout => 25);
my $cb_ = EtcdTest::Caller->new($b, timeout => 25);

sub leader_key_of { sprintf '%s/%x', @_ }

my $name = "${P}election1";
my $la   = $ca->lease(60);
my $lb   = $ca->lease(60);

# ---------------------------------------------------------------------------------
# campaign, leader, proclaim

my $c = $ca->ok_call('campaign', 'election_campaign', $name, $la, 'v1');
keys_are($c, [qw(header leader)], 'campaign');
header_ok($c->{header}, 'campaign');
my $leader = $c->{leader} || {};
leader_key_ok($leader, 'campaign leader', name => $name, key => leader_key_of($name, $la),
              lease => $la, rev => $c->{header}{revision});

my $l = $ca->ok_call('leader', 'election_leader', $name);
keys_are($l, [qw(header kv)], 'leader');
header_ok($l->{header}, 'leader');
kv_ok($l->{kv}, 'leader kv', key => $leader->{key}, value => 'v1', lease => $la,
      create_revision => $leader->{rev}, mod_revision => $leader->{rev}, version => 1);
$l = $cb_->ok_call('leader seen by the other client', 'election_leader', $name);
is($l->{kv}{value}, 'v1', 'the other client sees the same leader value');

my $p = $ca->ok_call('proclaim', 'election_proclaim', $leader, 'v2');
keys_are($p, ['header'], 'proclaim');
header_ok($p->{header}, 'proclaim');
$l = $ca->ok_call('leader after proclaim', 'election_leader', $name);
kv_ok($l->{kv}, 'leader kv after proclaim', key => $leader->{key}, value => 'v2', version => 2,
      mod_revision => $p->{header}{revision}, create_revision => $leader->{rev});

# the leader hash is read by field: string copies of the numbers work as well
$ca->ok_call('proclaim with a copied leader hash',
             'election_proclaim', { map { $_ => "$leader->{$_}" } keys %$leader }, "v3\0bin\xff");
$l = $ca->ok_call('leader after second proclaim', 'election_leader', $name);
is($l->{kv}{value}, "v3\0bin\xff", 'proclaimed bytes come back verbatim');

# ---------------------------------------------------------------------------------
# a second campaigner waits until the first resigns, then wins

my $wait = $cb_->start('election_campaign', $name, $lb, 'b1');
EtcdTest::run_until(1, sub { $wait->{n} });
is($wait->{n}, 0, 'second campaigner waits while the first leads');
$l = $ca->ok_call('leader while the second waits', 'election_leader', $name);
is($l->{kv}{key}, $leader->{key}, 'the first is still the leader');

my $resign_sent = Time::HiRes::time();
my $rs = $ca->ok_call('resign', 'election_resign', $leader);
keys_are($rs, ['header'], 'resign');
header_ok($rs->{header}, 'resign');
ok(EtcdTest::run_until(10, sub { $wait->{n} }), 'second campaigner elected after the resignation');
ok($wait->{resp} && !$wait->{err}, 'second campaign succeeded') or diag(explain($wait->{err}));
cmp_ok($wait->{at} // 0, '>=', $resign_sent, 'elected only after the resign was sent');
my $leader_b = $wait->{resp}{leader} || {};
leader_key_ok($leader_b, 'second leader', name => $name, key => leader_key_of($name, $lb), lease => $lb);
cmp_ok($leader_b->{rev} // 0, '>', $leader->{rev} // 1e18, 'second leader key is newer than the first');
cmp_ok($leader_b->{rev} // 1e18, '<', $rs->{header}{revision} // 0,
       'second leader key was created before the resignation (it queued)');
$l = $cb_->ok_call('leader after the handover', 'election_leader', $name);
kv_ok($l->{kv}, 'new leader kv', key => leader_key_of($name, $lb), value => 'b1', lease => $lb);

# the old leader key is stale now
my $e = $ca->err_call('proclaim with a stale leader', 'election_proclaim', $leader, 'nope');
error_ok($e, 'stale proclaim', code => 2, status => 'UNKNOWN', message => 'election: not leader',
         source => 'proclaim');
$l = $cb_->ok_call('leader after the stale proclaim', 'election_leader', $name);
is($l->{kv}{value}, 'b1', 'a stale proclaim changed nothing');
$e = $ca->err_call('proclaim with an empty leader hash', 'election_proclaim', {}, 'nope');
# an empty hash is sent with an empty key: the server rejects that, no croak
error_ok($e, 'empty leader hash (fields default to empty/0)', code => 2, status => 'UNKNOWN',
         message => 'etcdserver: key is not provided', source => 'proclaim');

# ---------------------------------------------------------------------------------
# a campaign blocked past the client's timeout

{
    my $slow = EV::Etcd->new(endpoints => [@eps], timeout => 1);
    my $sc   = EtcdTest::Caller->new($slow);
    my $lc   = $ca->lease(60);
    my $t0   = Time::HiRes::time();
    my $w    = $sc->start('election_campaign', $name, $lc, 'c1');
    ok(EtcdTest::run_until(5, sub { $w->{n} }), 'timed-out campaign called back');
    my $took = ($w->{at} // 99) - $t0;
    cmp_ok($took, '>=', 0.9, 'not before the 1 s timeout');
    cmp_ok($took, '<', 3, 'within 3 s');
    error_ok($w->{err}, 'campaign timeout', code => 4, status => 'DEADLINE_EXCEEDED',
             message => 'Deadline Exceeded', source => 'campaign');
    $cb_->ok_call('second leader resigns', 'election_resign', $leader_b);
    # the abandoned campaign must not win once the election is free
    $e = $ca->err_call('leader after everybody left', 'election_leader', $name);
    error_ok($e, 'no leader after resignations', code => 2, status => 'UNKNOWN',
             message => 'election: no leader', source => 'leader');
    EtcdTest::run_until(0.3, sub { 0 });
    is_deeply([ map { $_->{n} } $sc->records ], [1], 'timed-out campaign called back once');
}

$e = $ca->err_call('leader of an election nobody joined', 'election_leader', "${P}nobody");
error_ok($e, 'no leader', code => 2, status => 'UNKNOWN', message => 'election: no leader', source => 'leader');

# a leader whose lease is revoked is gone
{
    my $n2 = "${P}election2";
    my $lr = $ca->lease(60);
    $ca->ok_call('campaign for revoke', 'election_campaign', $n2, $lr, 'r');
    $ca->ok_call('revoke the leader lease', 'lease_revoke', $lr);
    $e = $ca->err_call('leader after revoke', 'election_leader', $n2);
    is($e->{message}, 'election: no leader', 'revoking the lease ended the leadership');
}

# ---------------------------------------------------------------------------------
# source labels on transport errors; usage croaks

{
    my $port = EtcdTest::closed_port();
    my $down = EV::Etcd->new(endpoints => ["127.0.0.1:$port"], timeout => 2);
    my $dc   = EtcdTest::Caller->new($down, timeout => 5);
    my $lk   = { name => 'n', key => 'n/1', rev => 1, lease => 1 };
    for my $case ([ election_campaign => 'campaign', 'n', 1, 'v' ], [ election_proclaim => 'proclaim', $lk, 'v' ],
                  [ election_leader => 'leader', 'n' ], [ election_resign => 'resign', $lk ]) {
        my ($method, $source, @args) = @$case;
        error_ok($dc->err_call("$method on a closed port", $method, @args), "$method unreachable",
                 code => 14, status => 'UNAVAILABLE', source => $source);
    }
}

my $cb_calls = 0;
my $cb = sub { $cb_calls++ };
my $BIG      = 'k' x 1048577;
my $not_code = qr/^callback must be a code reference/;
my $not_hash = qr/^leader must be a hash reference/;
my $key_big  = qr/^\Qkey too large: 1048577 bytes (max 1048576)\E/;
my $val_big  = qr/^\Qvalue too large: 1048577 bytes (max 1048576)\E/;
my %usage = map { $_->[0] => starts_with("Usage: EV::Etcd::$_->[0]($_->[1])") }
    [ election_campaign => 'client, name, lease_id, value, callback' ],
    [ election_proclaim => 'client, leader, value, callback' ],
    [ election_leader   => 'client, name, callback' ],
    [ election_resign   => 'client, leader, callback' ];
my $lk = { %$leader };

croaks('campaign()',                 sub { $a->election_campaign() },                    $usage{election_campaign});
croaks('campaign(n, 1, $cb)',        sub { $a->election_campaign('n', 1, $cb) },         $usage{election_campaign});
croaks('campaign(n, 1, v, $cb, 1)',  sub { $a->election_campaign('n', 1, 'v', $cb, 1) }, $usage{election_campaign});
croaks('campaign(n, 1, v, "x")',     sub { $a->election_campaign('n', 1, 'v', 'x') },    $not_code);
croaks('campaign(big, 1, big, "x")', sub { $a->election_campaign($BIG, 1, $BIG, 'x') },  $not_code);
croaks('campaign(big, 1, v, $cb)',   sub { $a->election_campaign($BIG, 1, 'v', $cb) },   $key_big);
croaks('campaign(n, 1, big, $cb)',   sub { $a->election_campaign('n', 1, $BIG, $cb) },   $val_big);
croaks('proclaim()',                 sub { $a->election_proclaim() },                    $usage{election_proclaim});
croaks('proclaim($lk, $cb)',         sub { $a->election_proclaim($lk, $cb) },            $usage{election_proclaim});
croaks('proclaim($lk, v, "x")',      sub { $a->election_proclaim($lk, 'v', 'x') },       $not_code);
croaks('proclaim("x", v, $cb)',      sub { $a->election_proclaim('x', 'v', $cb) },       $not_hash);
croaks('proclaim([], v, $cb)',       sub { $a->election_proclaim([], 'v', $cb) },        $not_hash);
croaks('proclaim(undef, v, $cb)',    sub { $a->election_proclaim(undef, 'v', $cb) },     $not_hash);
croaks('proclaim("x", big, $cb): value size checked first',
       sub { $a->election_proclaim('x', $BIG, $cb) }, $val_big);
croaks('proclaim({name => big})',    sub { $a->election_proclaim({ name => $BIG }, 'v', $cb) }, $key_big);
croaks('proclaim({key => big})',     sub { $a->election_proclaim({ key => $BIG }, 'v', $cb) },  $key_big);
croaks('leader()',                   sub { $a->election_leader() },                      $usage{election_leader});
croaks('leader(n, $cb, 1)',          sub { $a->election_leader('n', $cb, 1) },           $usage{election_leader});
croaks('leader(n, {})',              sub { $a->election_leader('n', {}) },               $not_code);
croaks('leader(big, $cb)',           sub { $a->election_leader($BIG, $cb) },             $key_big);
croaks('resign()',                   sub { $a->election_resign() },                      $usage{election_resign});
croaks('resign($lk, v, $cb)',        sub { $a->election_resign($lk, 'v', $cb) },         $usage{election_resign});
croaks('resign($lk, "x")',           sub { $a->election_resign($lk, 'x') },              $not_code);
croaks('resign("x", $cb)',           sub { $a->election_resign('x', $cb) },              $not_hash);
croaks('resign(sub {}, $cb)',        sub { $a->election_resign(sub {}, $cb) },           $not_hash);
croaks('resign({key => big})',       sub { $a->election_resign({ key => $BIG }, $cb) },  $key_big);
croaks('class method campaign', sub { EV::Etcd->election_campaign('n', 1, 'v', $cb) }, qr/client is not of type EV::Etcd/);

# ---------------------------------------------------------------------------------
# cleanup and exactly-once

$ca->revoke_leases;
EtcdTest::cleanup($a);
EtcdTest::Caller->exactly_once($ca, $cb_);
is($cb_calls, 0, 'croaked calls never called back');

done_testing;
