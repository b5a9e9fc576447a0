use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "PARTITIONS AND LEADER LOSS", "new" (require_leader): a member whose
# peers are all gone is up and answers, but has no leader.
# - With require_leader (the default) it refuses what needs a leader: calls
#   fail with "etcdserver: no leader" after being tried until their timeout
#   (a write refused so was never applied); a new watch fails; an open watch
#   stream is ended by the member and re-created once the cluster is back,
#   delivering what follows exactly once.
# - With require_leader => 0 it serves serializable reads and keeps its
#   watch stream open all along.
# - Maintenance calls (status) answer either way.

EtcdTest::need_etcd();

my @m = EtcdTest->start_cluster(3);
my $ep = $m[0]->endpoint;
my $P = EtcdTest::prefix();

my $strict = EV::Etcd->new(endpoints => [$ep], timeout => 2, max_retries => 1);
my $loose  = EV::Etcd->new(endpoints => [$ep], timeout => 2, require_leader => 0);
my $s = EtcdTest::Caller->new($strict);
my $l = EtcdTest::Caller->new($loose);

$s->ok_call('put before the loss', 'put', "${P}k", 'v1');
my %rec = map {
    my $c = $_ eq 'strict' ? $strict : $loose;
    ($_ => EtcdTest::watch_recorder($c, "${P}k", {}, sub { $_[0]{kv}{value} }))
} qw(strict loose);
ok(EtcdTest::run_until(5, sub { $rec{strict}{created} && $rec{loose}{created} }), 'both watches created');

# The two other members die: the survivor loses its leader.
$_->kill for @m[1, 2];
my $leaderless = EtcdTest::run_until(10, sub {
    my ($r) = $l->call('status');
    $r && !$r->{leader};
});
ok($leaderless, 'the surviving member reports no leader');
# etcd ends leader-bound streams after three election timeouts without a
# leader (1.5 s with the test members' 500 ms); let that pass.
EtcdTest::run_until(2.5, sub { 0 });

{
    my $t0 = Time::HiRes::time();
    my $e = $s->err_call('require_leader: get refused', 'get', "${P}k");
    my $took = Time::HiRes::time() - $t0;
    is($e->{message}, 'etcdserver: no leader', 'the refusal is "no leader"');
    is($e->{code}, 14, '... with UNAVAILABLE');
    # max_retries 1 would allow one retry (50 ms): a refusal before raft is
    # tried again for as long as the timeout allows (the backoff's next step
    # may not fit in what is left: at least 0.5 s of the 2 s).
    cmp_ok($took, '>=', 0.5, '... after being tried again beyond max_retries, within the timeout')
        or diag("took $took s");
    cmp_ok($took, '<', 3, '... and not after it') or diag("took $took s");

    $e = $s->err_call('require_leader: put refused', 'put', "${P}refused", 'x');
    is($e->{message}, 'etcdserver: no leader', 'the write is refused before it enters raft');

    $e = $s->err_call('require_leader: a new watch fails', 'watch', "${P}other");
    is($e->{message}, 'Watch setup failed', '... with the setup error');

    my $st = $s->ok_call('require_leader: status still answers', 'status');
    is($st->{leader}, 0, '... and reports no leader');

    my $r = $l->ok_call('require_leader => 0: a serializable get is served', 'get', "${P}k", { serializable => 1 });
    is($r->{kvs}[0]{value}, 'v1', '... with the value from before the loss');
}
is_deeply($rec{$_}{errs}, [], "$_ watch: no error while the leader is gone") for qw(strict loose);

# The cluster comes back.
$_->restart for @m[1, 2];
my $back = EtcdTest::run_until(15, sub {
    my ($r) = $l->call('status');
    $r && $r->{leader};
});
ok($back, 'a leader again');
my $put = $s->ok_call('put after the return', 'put', "${P}k", 'v2');
ok(EtcdTest::run_until(10, sub { grep({ $_ eq 'v2' } @{ $rec{strict}{events} }) && grep({ $_ eq 'v2' } @{ $rec{loose}{events} }) }),
   'both watches deliver the write after the return');
EtcdTest::run_until(0.5, sub { 0 });
is_deeply($rec{$_}{events}, ['v2'], "$_ watch: the write exactly once, nothing else") for qw(strict loose);
is_deeply($rec{$_}{errs}, [], "$_ watch: no error") for qw(strict loose);
cmp_ok($rec{strict}{created}, '>=', 2, 'the leader-bound watch stream was ended and its watch re-created');
is($rec{loose}{created}, 1, 'the other watch stream stayed open');
my $r = $s->ok_call('get of the refused write', 'get', "${P}refused");
is(scalar @{ $r->{kvs} || [] }, 0, 'the refused write was not applied');

$rec{$_}{w}->cancel(sub {}) for qw(strict loose);
EtcdTest::Caller->exactly_once($s, $l);
$_->stop for @m;
done_testing;
