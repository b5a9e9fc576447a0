use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV;
use EV::Etcd;

# EV::Etcd::Mutex under faults. A 3-member cluster; three clients, each
# with its own session (TTL 5 s), increment one counter $N times each under
# the mutex: lock, read the counter, then one fenced transaction
#
#   if   the own lock key still has its creation revision (is_owner)
#   and  the counter's mod_revision is the one read
#   then counter = n+1, hist/<n+1> = "<client> <lock revision> <lease>",
#        op/<client>-<seq> = n+1
#
# and unlock. Meanwhile members are killed (SIGTERM where SIGKILL may lose
# acknowledged writes, see EtcdTest::crash_safe) and restarted, or stopped
# (SIGSTOP) and resumed, one at a time, so a quorum stays; now and then
# a worker's session lease is revoked under it (as if it had expired).
#
# An increment counts when its transaction answered succeeded, or when its
# answer was lost and its op/ record is found afterwards (also at the end,
# for a late commit). At the end:
#   - the counter equals the number of counted increments, hist/ holds
#     exactly the values 1..counter, each acknowledged by its recorder;
#   - the holder history shows one holder at a time: along the counter's
#     values the records' revisions increase and their lock revisions never
#     decrease (a lock revision, once left, never comes back), and at each
#     record's revision the oldest key under the lock prefix - the owner -
#     is the recorder's own key with the recorded creation revision (read
#     from etcd's history at that revision). Two clients believing to hold
#     the lock at once would break the last check.
#   - every callback ran exactly once, every member is back.
#
#   EV_ETCD_FAULTS_N=200 EV_ETCD_FAULTS_SEED=7 prove -b t/76-mutex-faults.t

my $N = $ENV{EV_ETCD_FAULTS_N} // 200;
my $DEADLINE = $ENV{EV_ETCD_FAULTS_DEADLINE} // 150;
EtcdTest::seeded(EV_ETCD_FAULTS_SEED => $$);

my @members = EtcdTest->start_cluster(3, extra_args => [ '--grpc-keepalive-min-time' => '1s' ]);
my $crash = EtcdTest::crash_safe();
diag('this etcd may lose acknowledged writes on SIGKILL: stopping members with SIGTERM') unless $crash;

# Every exit path leaves the members running (EtcdTest's own END then
# ends them): resume the stopped ones.
END { for my $m (@members) { eval { $m->resume if $m->{paused} } } }
local $SIG{ALRM} = sub { die "t/76-mutex-faults.t: hard deadline\n" };
alarm($DEADLINE + 60);

my @eps  = map { $_->endpoint } @members;
my $P    = EtcdTest::prefix();
my $LOCK = "${P}lock";
my $CTR  = "${P}counter";
my $admin = EV::Etcd->new(endpoints => [@eps], timeout => 5);

sub later {
    my ($t, $f) = @_;
    my $tm;
    $tm = EV::timer($t, 0, sub { undef $tm; $f->() });
}

# callbacks that must run exactly once
my (%open, @twice);
my $cb_seq = 0;
sub once {
    my ($what, $f) = @_;
    my $id = ++$cb_seq;
    $open{$id} = $what;
    return sub {
        push(@twice, $what), return unless delete $open{$id};
        $f->(@_);
    };
}

sub wait_call {
    my ($what, $code) = @_;
    my @res;
    $code->(once($what, sub { @res = (1, @_) }));
    EtcdTest::run_until(20, sub { @res }) or return;
    return @res[ 1 .. $#res ];
}

my ($init) = wait_call('init', sub { $admin->put($CTR, 0, $_[0]) });
ok($init, 'counter initialised');

# ---------------------------------------------------------------------------
# workers

my @workers = map {
    { id => "w$_", acked => 0, acks => {}, seq => 0, absent => [], violations => 0,
      uncertain => 0, lock_lost => 0, errors => {}, sessions => 0,
      client => EV::Etcd->new(endpoints => [ @eps[ $_ % 3, ($_ + 1) % 3, ($_ + 2) % 3 ] ],
                              timeout => 2, keepalive_time => 1, keepalive_timeout => 1) }
} 0 .. 2;
my $finished = 0;

sub err_note { my ($w, $what, $e) = @_; $w->{errors}{"$what $e->{status}"}++ }

sub ack {
    my ($w, $value, $how) = @_;
    $w->{acks}{$value} = $how;
    $w->{acked}++;
}

sub w_session {
    my ($w) = @_;
    if ($w->{acked} >= $N) {
        $w->{done} = 1;
        $finished++;
        return $w->{s}->close(once('close', sub { })) if $w->{s};
        return;
    }
    return w_lock($w) if $w->{s} && !$w->{s}->is_lost;
    $w->{client}->session({ ttl => 5 }, once('session', sub {
        my ($s, $e) = @_;
        if ($e) { err_note($w, 'session', $e); return later(0.2, sub { w_session($w) }) }
        $w->{sessions}++;
        $w->{s} = $s;
        $w->{m} = $s->mutex($LOCK);
        w_lock($w);
    }));
}

sub w_lock {
    my ($w) = @_;
    $w->{m}->lock({ timeout => 20 }, once('lock', sub {
        my ($m, $e) = @_;
        if ($e) { err_note($w, 'lock', $e); return later(0.1, sub { w_session($w) }) }
        w_read($w);
    }));
}

sub w_read {
    my ($w) = @_;
    return w_session($w) unless $w->{m}->is_held;
    $w->{client}->get($CTR, once('get', sub {
        my ($r, $e) = @_;
        if ($e) { err_note($w, 'get', $e); return later(0.1, sub { w_read($w) }) }
        my $kv = $r->{kvs}[0];
        # a little time under the lock, for faults to land in
        later(rand(0.01), sub { w_txn($w, $kv->{value}, $kv->{mod_revision}) });
    }));
}

sub w_txn {
    my ($w, $cur, $mod) = @_;
    return w_session($w) unless $w->{m}->is_held;
    my $next    = $cur + 1;
    my $op      = "$w->{id}-" . ++$w->{seq};
    my $lockrev = $w->{m}->revision;
    $w->{client}->txn(
        [ $w->{m}->is_owner, { key => $CTR, target => 'mod', result => '=', mod_revision => $mod } ],
        [ { put => { key => $CTR, value => $next } },
          { put => { key => sprintf('%shist/%06d', $P, $next),
                     value => "$w->{id} $lockrev " . $w->{s}->lease } },
          { put => { key => "${P}op/$op", value => $next } } ],
        [],
        once('txn', sub {
            my ($r, $e) = @_;
            if ($e) {
                err_note($w, 'txn', $e);
                $w->{uncertain}++;
                return w_resolve($w, $op, $next);
            }
            if ($r->{succeeded}) { ack($w, $next, 'txn'); return w_unlock($w) }
            w_refused($w, $lockrev);
        }));
}

# The outcome of a transaction is unknown: its op/ record says.
sub w_resolve {
    my ($w, $op, $next) = @_;
    $w->{client}->get("${P}op/$op", once('resolve', sub {
        my ($r, $e) = @_;
        if ($e) { err_note($w, 'resolve', $e); return later(0.1, sub { w_resolve($w, $op, $next) }) }
        if ($r->{kvs}[0]) { ack($w, $next, 'resolved') }
        else              { push @{ $w->{absent} }, [ $op, $next ] }
        w_unlock($w);
    }));
}

# The fence refused: the lock key is gone (the session's lease ended) - or
# the counter moved while the lock was held, which must never happen.
sub w_refused {
    my ($w, $lockrev) = @_;
    $w->{client}->get($w->{m}->key, once('refused', sub {
        my ($r, $e) = @_;
        if ($e) { err_note($w, 'refused', $e); return later(0.1, sub { w_refused($w, $lockrev) }) }
        my $kv = $r->{kvs}[0];
        if ($kv && $kv->{create_revision} == $lockrev) { $w->{violations}++ }
        else                                           { $w->{lock_lost}++ }
        w_unlock($w);
    }));
}

sub w_unlock {
    my ($w) = @_;
    $w->{m}->unlock(once('unlock', sub {
        my (undef, $e) = @_;
        err_note($w, 'unlock', $e) if $e;    # the key stays: the next lock is ours at once
        w_session($w);
    }));
}

# ---------------------------------------------------------------------------
# chaos: one member at a time is killed and restarted, or stopped and resumed

my $chaos_on = 1;
my (@chaos_log, $chaos_busy);
sub chaos_step {
    later(0.3 + rand(1), sub {
        return unless $chaos_on;
        my $m = $members[ int rand @members ];
        my $dice = rand();
        if ($dice < 0.2) {
            # a session's lease ends under its worker (as an expiry would)
            # mostly the holder of the moment, so that fenced writes get refused
            my @holding = grep { $_->{m} && $_->{m}->is_held && !$_->{done} } @workers;
            my ($w) = @holding && rand() < 0.8 ? @holding
                    : grep { $_->{s} && !$_->{done} } $workers[ int rand @workers ];
            if ($w) {
                push @chaos_log, "revoke $w->{id}";
                $admin->lease_revoke($w->{s}->lease, once('revoke', sub { }));
            }
            return chaos_step();
        }
        $chaos_busy = 1;
        if ($dice < 0.6) {
            $m->pause;
            push @chaos_log, 'pause ' . $m->name;
            later(0.5 + rand(2.5), sub { $m->resume; $chaos_busy = 0; chaos_step() });
        }
        else {
            $crash ? $m->kill : $m->stop;
            push @chaos_log, ($crash ? 'kill ' : 'stop ') . $m->name;
            later(0.3 + rand(1.5), sub { $m->restart; $chaos_busy = 0; chaos_step() });
        }
    });
}

my $t0 = Time::HiRes::time();
chaos_step();
w_session($_) for @workers;
my $in_time = EtcdTest::run_until($DEADLINE, sub { $finished == @workers });
$chaos_on = 0;
my $took = Time::HiRes::time() - $t0;
ok($in_time, "all workers done within $DEADLINE s") or diag("acked: @{[ map { $_->{acked} } @workers ]}");
EtcdTest::run_until(10, sub { !$chaos_busy });
ok(!$chaos_busy, 'the last fault was undone');
for my $m (@members) {
    $m->resume if $m->{paused};
    $m->restart unless $m->is_running;
}
ok(!grep({ $_->{paused} || !$_->is_running } @members), 'every member running');
# a member just resumed or restarted may answer /health false for a moment
# (no leader yet, catching up): wait for all of them, within reason
my $healthy_by = Time::HiRes::time() + 20;
Time::HiRes::sleep(0.2) while grep({ !$_->healthy(2) } @members) && Time::HiRes::time() < $healthy_by;
ok(!grep({ !$_->healthy(2) } @members), 'every member healthy');
diag(sprintf('%.1f s, %d faults: %s', $took, scalar @chaos_log, join(', ', @chaos_log)));
diag(join '; ', map {
    my $w = $_;
    "$w->{id}: $w->{acked} acked, $w->{sessions} sessions, $w->{uncertain} uncertain, "
    . "$w->{lock_lost} lock lost, errors " . join(',', map { "$_=$w->{errors}{$_}" } sort keys %{ $w->{errors} })
} @workers);

# Increments whose answer was lost and whose record was not found at once:
# a late commit is counted now (the cluster is quiet).
EtcdTest::run_loop(1);
for my $w (@workers) {
    for my $a (@{ $w->{absent} }) {
        my ($r) = wait_call('late', sub { $admin->get("${P}op/$a->[0]", $_[0]) });
        ack($w, $a->[1], 'late') if $r && $r->{kvs}[0];
    }
}

# ---------------------------------------------------------------------------
# verdict

my ($ctr) = wait_call('counter', sub { $admin->get($CTR, $_[0]) });
my $final = $ctr->{kvs}[0]{value};
my $acked = 0;
$acked += $_->{acked} for @workers;
is($final, $acked, "counter ($final) == acknowledged increments");
cmp_ok($acked, '>=', 3 * $N, 'every worker reached its increments');
is(scalar(grep { $_->{violations} } @workers), 0, 'the counter never moved under a held lock');

my ($hist) = wait_call('hist', sub { $admin->get("${P}hist/", { prefix => 1 }, $_[0]) });
my @recs = map {
    my ($who, $lockrev, $lease) = split / /, $_->{value};
    { n => 0 + substr($_->{key}, length "${P}hist/"), who => $who, lockrev => $lockrev,
      lease => $lease, rev => $_->{mod_revision} }
} @{ $hist->{kvs} };
is_deeply([ map { $_->{n} } @recs ], [ 1 .. $final ], 'history holds exactly the values 1..counter');
my %by = map { $_->{id} => $_ } @workers;
is_deeply([ map { "$_->{n} by $_->{who}" } grep { !$by{ $_->{who} }{acks}{ $_->{n} } } @recs ], [],
          'every history record was acknowledged to its recorder');
my @unrecorded;
for my $w (@workers) {
    my %mine = map { $_->{n} => 1 } grep { $_->{who} eq $w->{id} } @recs;
    push @unrecorded, map { "$w->{id}: $_" } grep { !$mine{$_} } sort { $a <=> $b } keys %{ $w->{acks} };
}
is_deeply(\@unrecorded, [], 'every acknowledged increment is in the history under its client');

my @order;
for my $i (1 .. $#recs) {
    my ($p, $q) = @recs[ $i - 1, $i ];
    push @order, "$q->{n}: revision $q->{rev} <= $p->{rev}" if $q->{rev} <= $p->{rev};
    push @order, "$q->{n}: lock revision $q->{lockrev} < $p->{lockrev}" if $q->{lockrev} < $p->{lockrev};
    push @order, "$q->{n}: lock revision $q->{lockrev} shared by $p->{who} and $q->{who}"
        if $q->{lockrev} == $p->{lockrev} && $q->{who} ne $p->{who};
}
is_deeply(\@order, [], 'records are sequential, one tenure after another');

# the owner at each record's revision, from etcd's history
my %owner;
for my $rec (@recs) {
    $admin->get("$LOCK/", { prefix => 1, revision => $rec->{rev}, sort_order => 'ascend',
                            sort_target => 'create', limit => 1 },
        once('owner', sub { $owner{ $rec->{n} } = [@_] }));
}
EtcdTest::run_until(30, sub { keys %owner == @recs });
my @overlap;
for my $rec (@recs) {
    my ($r, $e) = @{ $owner{ $rec->{n} } || [ undef, { message => 'no answer' } ] };
    if ($e) { push @overlap, "$rec->{n}: $e->{message}"; next }
    my $kv = $r->{kvs}[0];
    my $want = sprintf '%s/%x', $LOCK, $rec->{lease};
    push @overlap, "$rec->{n} by $rec->{who} at $rec->{rev}: owner "
        . ($kv ? "$kv->{key}\@$kv->{create_revision}" : 'none') . ", recorded $want\@$rec->{lockrev}"
        unless $kv && $kv->{key} eq $want && $kv->{create_revision} == $rec->{lockrev};
}
is_deeply(\@overlap, [], 'at every record the recorder was the one owner of the lock');

EtcdTest::run_loop(0.5);
is_deeply([ sort values %open ], [], 'every callback ran');
is_deeply(\@twice, [], 'no callback ran twice');
EtcdTest::cleanup($admin);
alarm 0;
done_testing;
