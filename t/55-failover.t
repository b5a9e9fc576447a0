use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "RETRIES AND FAILOVER" (failover always on, writes never replayed unless
# never sent): a client given a whole 3-member cluster keeps writing when the
# member it uses is killed.
#
# 1. The member in use is a follower: the client alone must recover: writes go
#    on through another member within 2 s, at most 5% of those issued in the
#    2 s after the kill fail.
# 2. The member in use is the leader: writes forwarded by a follower to the
#    dead leader before the election are lost inside the cluster and wait for
#    the request's timeout (the client cannot replay a write that may have
#    been applied). Checked: no write is lost or doubled, failures are only
#    timeouts or UNAVAILABLE, and writing resumes within timeout + 2 s.
# 3. The member in use is stopped (SIGSTOP: alive, connection open, silent,
#    as behind a network partition): the writes waiting on it time out, and
#    the client then moves on, so writing resumes within timeout + 1 s.

EtcdTest::need_etcd();

my $IN_FLIGHT = 8;      # writes outstanding at once
my $PER_TICK  = 4;      # at most this many issued per 10 ms: ~400 writes/s
my $RUN       = 5;      # seconds of writing
my $KILL_AT   = 1.5;    # seconds into the run

# Starts a cluster and returns (client, members by id, victim) with the
# client's first endpoint being the leader ($on_leader) or a follower.
sub cluster_client {
    my ($on_leader, $timeout) = @_;
    my @members = EtcdTest->start_cluster(3);
    my (%by_id, $leader);
    for my $m (@members) {
        my $c = EV::Etcd->new(endpoints => [ $m->endpoint ], timeout => 5);
        my ($r) = EtcdTest::Caller->new($c)->call('status');
        next unless $r && $r->{header};
        $by_id{ $r->{header}{member_id} } = $m;
        $leader = $r->{leader};
    }
    is(scalar keys %by_id, 3, 'three members with distinct ids');
    my $is_leader = sub { $by_id{$leader} && $_[0] == $by_id{$leader} ? 1 : 0 };
    my @order = ((grep { $is_leader->($_) == $on_leader } @members),
                 (grep { $is_leader->($_) != $on_leader } @members));
    my $client = EV::Etcd->new(endpoints => [ map { $_->endpoint } @order ], timeout => $timeout);
    return ($client, \%by_id, \@members);
}

# Writes to $P$i for $RUN seconds, $IN_FLIGHT at a time; kills (or with
# $action 'pause', stops) the member answering them (identified by the reply
# header's member_id) at $KILL_AT.
sub run_writes {
    my ($client, $by_id, $P, $action) = @_;
    $action //= 'kill';
    my (@writes, $t_kill, $victim_id);
    my $outstanding = 0;
    my $t0 = Time::HiRes::time();
    my $issue = sub {
        my $i   = @writes;
        my $rec = { i => $i, issued => Time::HiRes::time() - $t0, n => 0 };
        push @writes, $rec;
        $outstanding++;
        $client->put("$P$i", "value $i", sub {
            my ($resp, $err) = @_;
            $rec->{n}++;
            return if $rec->{n} > 1;
            $outstanding--;
            $rec->{done}   = Time::HiRes::time() - $t0;
            $rec->{err}    = $err;
            $rec->{member} = $resp->{header}{member_id} if $resp && $resp->{header};
        });
    };
    my $pump = EV::timer(0, 0.01, sub {
        return if Time::HiRes::time() - $t0 > $RUN;
        for (1 .. $PER_TICK) {
            last if $outstanding >= $IN_FLIGHT;
            $issue->();
        }
    });
    my $killer = EV::timer($KILL_AT, 0, sub {
        my ($last) = grep { $_->{member} } reverse @writes;
        $victim_id = $last ? $last->{member} : undef;
        my $victim = defined $victim_id ? $by_id->{$victim_id} : undef;
        $t_kill = Time::HiRes::time() - $t0;
        $victim->$action if $victim;
    });
    EtcdTest::run_until($RUN + 30, sub { Time::HiRes::time() - $t0 > $RUN && !$outstanding });
    ok(defined $victim_id && $by_id->{$victim_id}, "the member in use was identified by the reply header (${action}ed)");
    is_deeply([ map { $_->{i} } grep { $_->{n} != 1 } @writes ], [], 'every write called back exactly once');
    return (\@writes, $t_kill // $KILL_AT, $victim_id // '');
}

# What the cluster holds: every acknowledged write, plus possibly failed ones
# that had been applied; a write from before the kill reads back.
sub stored_ok {
    my ($client, $P, $writes, $name) = @_;
    my $ok_n  = grep { !$_->{err} } @$writes;
    my $err_n = grep { $_->{err} } @$writes;
    my $caller = EtcdTest::Caller->new($client, timeout => 20);
    my $r = $caller->ok_call("$name: count the written keys", 'get', $P, { prefix => 1, count_only => 1 });
    cmp_ok($r->{count} // -1, '>=', $ok_n, "$name: every acknowledged write is stored");
    cmp_ok($r->{count} // 1e9, '<=', $ok_n + $err_n, "$name: nothing stored that was not written");
    $r = $caller->ok_call("$name: read an early key", 'get', $P . 10);
    is($r->{kvs} && $r->{kvs}[0]{value}, 'value 10', "$name: a write from before the kill reads back");
}

sub first_success_elsewhere {
    my ($writes, $t_kill, $victim_id) = @_;
    my ($first) = sort { $a->{done} <=> $b->{done} }
                  grep { !$_->{err} && $_->{member} && $_->{member} ne $victim_id && $_->{issued} >= $t_kill }
                  @$writes;
    return $first ? $first->{done} - $t_kill : undef;
}

# ---------------------------------------------------------------------------
# 1. the member in use (a follower) is killed

{
    my $P = EtcdTest::prefix() . 'follower/';
    my ($client, $by_id, $members) = cluster_client(0, 5);
    my ($writes, $t_kill, $victim_id) = run_writes($client, $by_id, $P);

    my @before = grep { $_->{issued} < $t_kill } @$writes;
    cmp_ok(scalar @before, '>', 100, 'writes flowed before the kill');
    is(scalar(grep { $_->{err} } @before[0 .. $#before - $IN_FLIGHT]), 0, 'no failures well before the kill');

    my $recovery = first_success_elsewhere($writes, $t_kill, $victim_id);
    ok(defined $recovery, 'writes succeed through another member after the kill');
    $recovery //= 99;
    cmp_ok($recovery, '<', 2, 'writes continue through another member within 2 s');

    my @window = grep { $_->{issued} >= $t_kill && $_->{issued} < $t_kill + 2 } @$writes;
    my @failed = grep { $_->{err} } @window;
    my $ratio  = @window ? @failed / @window : 1;
    cmp_ok(scalar @window, '>', 100, 'writes kept being issued in the 2 s after the kill');
    cmp_ok($ratio, '<=', 0.05, 'at most 5% of the writes issued in the 2 s after the kill fail');
    is_deeply([ grep { $_ != 14 } map { $_->{err}{code} } grep { $_->{err} } @$writes ], [],
              'failed writes (in flight at the kill) report UNAVAILABLE');
    is(scalar(grep { $_->{err} } grep { $_->{issued} >= $t_kill + 2 } @$writes), 0,
       'no write fails once the client has moved on');
    stored_ok($client, $P, $writes, 'follower killed');

    diag(sprintf 'failover (member in use, a follower, killed): %d writes, %.0f/s; first write through '
               . 'another member %.0f ms after the kill; %d of %d writes issued in the next 2 s failed (%.1f%%); '
               . '%d failures in all',
         scalar @$writes, @$writes / $RUN, $recovery * 1000, scalar @failed, scalar @window,
         $ratio * 100, scalar grep { $_->{err} } @$writes);
}

# ---------------------------------------------------------------------------
# 2. the member in use is the leader

{
    my $P = EtcdTest::prefix() . 'leader/';
    my $timeout = 2;
    my ($client, $by_id, $members) = cluster_client(1, $timeout);
    my ($writes, $t_kill, $victim_id) = run_writes($client, $by_id, $P);

    my $recovery = first_success_elsewhere($writes, $t_kill, $victim_id);
    ok(defined $recovery, 'leader killed: writes succeed through another member');
    $recovery //= 99;
    cmp_ok($recovery, '<', $timeout + 2, 'leader killed: writing resumes within timeout + 2 s');
    my @bad = grep { $_ != 14 && $_ != 4 } map { $_->{err}{code} } grep { $_->{err} } @$writes;
    is_deeply(\@bad, [], 'leader killed: failures are only UNAVAILABLE or DEADLINE_EXCEEDED');
    my ($slowest) = sort { $b <=> $a } map { $_->{done} - $_->{issued} } @$writes;
    cmp_ok($slowest // 99, '<', $timeout + 1, 'leader killed: no write waits longer than its timeout');
    my @late = grep { $_->{err} } grep { $_->{issued} >= $t_kill + $timeout + 2 } @$writes;
    is(scalar @late, 0, 'leader killed: no write fails once a new leader serves');
    stored_ok($client, $P, $writes, 'leader killed');

    diag(sprintf 'failover (member in use, the leader, killed; timeout %d s): %d writes; first write through '
               . 'another member %.0f ms after the kill; %d failures (%d timeouts)',
         $timeout, scalar @$writes, $recovery * 1000, scalar(grep { $_->{err} } @$writes),
         scalar(grep { $_->{err} && $_->{err}{code} == 4 } @$writes));
}

# ---------------------------------------------------------------------------
# 3. the member in use (a follower) is stopped, its connection left open

{
    my $P = EtcdTest::prefix() . 'paused/';
    my $timeout = 2;
    my ($client, $by_id, $members) = cluster_client(0, $timeout);
    my ($writes, $t_pause, $victim_id) = run_writes($client, $by_id, $P, 'pause');

    my $recovery = first_success_elsewhere($writes, $t_pause, $victim_id);
    ok(defined $recovery, 'member stopped: writes succeed through another member');
    $recovery //= 99;
    cmp_ok($recovery, '<', $timeout + 1, 'member stopped: writing resumes within timeout + 1 s');
    my @failed = grep { $_->{err} } @$writes;
    is_deeply([ grep { $_ != 4 } map { $_->{err}{code} } @failed ], [],
              'member stopped: failures are only DEADLINE_EXCEEDED');
    cmp_ok(scalar @failed, '<=', $IN_FLIGHT, 'member stopped: only the writes waiting on it fail');
    is(scalar(grep { $_->{err} } grep { $_->{issued} >= $t_pause + $timeout + 0.5 } @$writes), 0,
       'member stopped: no write fails once the client has moved on');
    stored_ok($client, $P, $writes, 'member stopped');
    $by_id->{$victim_id}->resume if $by_id->{$victim_id};

    diag(sprintf 'failover (member in use stopped; timeout %d s): %d writes; first write through another '
               . 'member %.0f ms after the stop; %d failures',
         $timeout, scalar @$writes, $recovery * 1000, scalar @failed);
}

done_testing;
