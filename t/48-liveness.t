use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "new" (keepalive_time, keepalive_timeout): a member that stops
# answering while only an idle watch is open on it (SIGSTOP: the process is
# alive, its connection stays open, nothing comes back) is left within
# keepalive_time + keepalive_timeout, and the watch resumes on another
# member: the write made meanwhile is delivered exactly once.
#
# The members accept pings every second (--grpc-keepalive-min-time 1s;
# etcd's default of 5 s would close a connection pinged more often).

EtcdTest::need_etcd();

my ($TIME, $TIMEOUT) = (1, 1);
my @m = EtcdTest->start_cluster(3, extra_args => [ '--grpc-keepalive-min-time' => '1s' ]);
my $P = EtcdTest::prefix();

# The member to stop is a follower: writes forwarded to a stopped leader
# would be lost until the election (POD "RETRIES AND FAILOVER"), which is
# not what this test is about.
{
    my $probe = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $m[0]->endpoint ], timeout => 5));
    my $st = $probe->ok_call('status', 'status');
    my @by_id = map {
        my ($r) = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $_->endpoint ], timeout => 5))->call('status');
        [ $_, $r->{header}{member_id} // 0 ]
    } @m;
    my ($follower) = grep { $_->[1] ne $st->{leader} } @by_id;
    @m = ($follower->[0], grep { $_ != $follower->[0] } @m);
}

# The watcher's first endpoint is the member that will be stopped.
my $c = EV::Etcd->new(endpoints => [ map { $_->endpoint } @m ], timeout => 5,
                      keepalive_time => $TIME, keepalive_timeout => $TIMEOUT);
my $w = EV::Etcd->new(endpoints => [ map { $_->endpoint } @m[1, 2] ], timeout => 5);
my $writer = EtcdTest::Caller->new($w);

my $rec = EtcdTest::watch_recorder($c, "${P}k", {}, sub { $_[0]{kv}{value} });
ok(EtcdTest::run_until(5, sub { $rec->{created} }), 'watch created on the first member');
$writer->ok_call('a write before', 'put', "${P}k", 'v1');
ok(EtcdTest::run_until(5, sub { @{ $rec->{events} } }), 'delivered while the member answers');

# Idle for longer than keepalive_time, so the next ping is due soon.
EtcdTest::run_until($TIME + 0.5, sub { 0 });
$m[0]->pause;
my $paused_at = Time::HiRes::time();
$writer->ok_call('a write while the first member is stopped', 'put', "${P}k", 'v2');
my $got = EtcdTest::run_until(15, sub { grep { $_ eq 'v2' } @{ $rec->{events} } });
my $after = Time::HiRes::time() - $paused_at;
ok($got, 'the write made while the member is stopped is delivered');
# The ping goes out at most keepalive_time after the last traffic and is
# given keepalive_timeout; then the stream is reopened on the next member
# (one backoff step of at most 100 ms) and the watch re-created there.
cmp_ok($after, '<', $TIME + $TIMEOUT + 1.5, 'within keepalive_time + keepalive_timeout (and a reconnect)')
    or diag(sprintf 'after %.2f s', $after);
note(sprintf 'the write was delivered %.2f s after the stop', $after);
# A watch opened on the stopped member alone: its stream is never answered,
# so after the client's timeout the watch fails instead of waiting forever.
{
    my $only = EV::Etcd->new(endpoints => [ $m[0]->endpoint ], timeout => 2);
    my $t0 = Time::HiRes::time();
    my $e = EtcdTest::Caller->new($only)->err_call('a watch on the stopped member alone fails', 'watch', "${P}other");
    my $took = Time::HiRes::time() - $t0;
    is($e->{message}, 'Watch setup failed', '... with the setup error');
    cmp_ok($took, '>=', 1.9, '... once the timeout has passed') or diag("took $took s");
    cmp_ok($took, '<', 4, '... not much later') or diag("took $took s");
}
$m[0]->resume;
EtcdTest::run_until(0.5, sub { 0 });
is_deeply($rec->{events}, [qw(v1 v2)], 'each write exactly once, in order');
is_deeply($rec->{errs}, [], 'no watch error');
cmp_ok($rec->{created}, '>=', 2, 'the watch was re-created on another member');

$rec->{w}->cancel(sub {});
EtcdTest::Caller->exactly_once($writer);
$_->stop for @m;
done_testing;
