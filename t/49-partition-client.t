use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EtcdTest::Netns;
use EV::Etcd;

# POD "PARTITIONS AND LEADER LOSS": the member a client uses is cut off from
# its two peers (t/lib/EtcdTest/Netns.pm) while its client port still
# answers. With the client's defaults, and etcd's default timing (heartbeat
# 100 ms, election 1 s):
# - the watch moves to another member: the first write acknowledged by the
#   rest of the cluster after the cut is delivered within 6 s, and every
#   acknowledged write exactly once, in order;
# - a lease of TTL 6 kept alive by a managed keepalive survives (no on_lost);
# - gets, and puts through the client, succeed again within 6 s;
# - the client spends under 0.5 s of CPU over the whole run (no spinning).

my $net = EtcdTest::Netns->start_cluster(3,
    extra_args => [ '--heartbeat-interval' => 100, '--election-timeout' => 1000 ]);
my @m = $net->members;
my $P = EtcdTest::prefix();

# The member to cut: a follower (cutting the leader also makes the others
# elect a new one, which is not what this test is about).
my $leader = $net->wait_leader(timeout => 20);
ok($leader, 'the cluster has a leader');
my ($cut) = grep { !$leader || $_ != $leader } @m;
my @rest = grep { $_ != $cut } @m;

# The client under test talks to the member to cut first; the writer only
# to the others.
my $c = EV::Etcd->new(endpoints => [ map { $_->endpoint } $cut, @rest ], timeout => 2);
my $w = EV::Etcd->new(endpoints => [ map { $_->endpoint } @rest ], timeout => 2);
my $k = EtcdTest::Caller->new($c);

my $rec = EtcdTest::watch_recorder($c, $P, { prefix => 1 }, sub { $_[0]{kv}{value} });
ok(EtcdTest::run_until(10, sub { $rec->{created} }), 'watch created on the member to cut');
my $lease = $k->ok_call('lease_grant 6', 'lease_grant', 6)->{id};
my ($renewals, @lost, @kerrs) = (0);
my $ka = $c->lease_keepalive_start($lease, { on_lost => sub { push @lost, $_[0] } },
    sub { $_[1] ? push @kerrs, $_[1] : $renewals++ });
ok(EtcdTest::run_until(5, sub { $renewals }), 'the managed keepalive renews');

# The writer: one put at a time, 50 ms apart, recording when each was acknowledged.
my ($n, $stop, $busy, @acked, %acked_at) = (0, 0, 0);
my $write; $write = sub {
    return if $stop;
    $busy = 1;
    my $v = ++$n;
    $w->put("${P}k", $v, sub {
        $busy = 0;
        if ($_[0]) { push @acked, $v; $acked_at{$v} = Time::HiRes::time() }
        my $t; $t = EV::timer(0.05, 0, sub { undef $t; $write->() });
    });
};
$write->();
ok(EtcdTest::run_until(5, sub { @acked >= 10 }), 'writes acknowledged before the cut');

# Every event's arrival time, for the first delivery after the cut.
my %seen_at;
my $check; $check = EV::timer(0.01, 0.01, sub {
    $seen_at{$_} //= Time::HiRes::time() for @{ $rec->{events} };
});

my $cpu0 = do { my @t = times; $t[0] + $t[1] };
$net->partition($cut);
my $cut_at = Time::HiRes::time();

# Gets through the client: when do they succeed again?
my $get_ok_at;
my $getter; $getter = sub {
    my $t0 = Time::HiRes::time();
    $c->get("${P}k", sub {
        if ($_[0] && $t0 > $cut_at + 0.5) { $get_ok_at //= Time::HiRes::time() }
        my $t; $t = EV::timer(0.2, 0, sub { undef $t; $getter->() unless $get_ok_at });
    });
};
$getter->();

# Writes through the client (keys outside the watched prefix): a write the
# cut member refuses before raft goes to another member.
my $put_ok_at;
my $putter; $putter = sub {
    my $t0 = Time::HiRes::time();
    $c->put("outside-$$", $t0, sub {
        if ($_[0] && $t0 > $cut_at + 0.5) { $put_ok_at //= Time::HiRes::time() }
        my $t; $t = EV::timer(0.2, 0, sub { undef $t; $putter->() unless $put_ok_at });
    });
};
$putter->();

EtcdTest::run_until(12, sub { 0 });
$stop = 1;
EtcdTest::run_until(5, sub { !$busy });
my $cpu = do { my @t = times; $t[0] + $t[1] } - $cpu0;
undef $check;

my ($first_after) = grep { $acked_at{$_} > $cut_at } @acked;
ok($first_after, 'writes were acknowledged after the cut');
my $delay = defined $first_after && $seen_at{$first_after} ? $seen_at{$first_after} - $cut_at : undef;
ok(defined $delay && $delay < 6, 'the first write acknowledged after the cut is delivered within 6 s of it')
    or diag(defined $delay ? "after $delay s" : 'never delivered');
ok(EtcdTest::run_until(10, sub { @{ $rec->{events} } >= @acked }), 'every acknowledged write delivered');
is_deeply($rec->{events}, [ @acked ], 'each exactly once, in order');
is_deeply($rec->{errs}, [], 'no watch error');
is_deeply(\@lost, [], 'the lease was never lost');
is_deeply(\@kerrs, [], 'no keepalive error');
my $ttl = $k->ok_call('lease_time_to_live', 'lease_time_to_live', $lease);
cmp_ok($ttl->{ttl} // 0, '>', 0, 'the lease is alive');
my $get_after = defined $get_ok_at ? $get_ok_at - $cut_at : undef;
ok(defined $get_after && $get_after < 6, 'gets succeed again within 6 s of the cut')
    or diag(defined $get_after ? "after $get_after s" : 'never');
my $put_after = defined $put_ok_at ? $put_ok_at - $cut_at : undef;
ok(defined $put_after && $put_after < 6, 'puts through the client succeed again within 6 s of the cut')
    or diag(defined $put_after ? "after $put_after s" : 'never');
cmp_ok($cpu, '<', 0.5, 'the process used under 0.5 s of CPU over the run');
note(sprintf 'first delivery after the cut %.2f s, gets again after %.2f s, puts after %.2f s, CPU %.2f s, %d writes, %d renewals, %d creations',
     $delay // -1, $get_after // -1, $put_after // -1, $cpu, scalar @acked, $renewals, $rec->{created});

$net->heal($cut);
$ka->stop;
$rec->{w}->cancel(sub {});
EtcdTest::Caller->exactly_once($k);
$net->cleanup;
done_testing;
