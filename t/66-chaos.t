use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# Chaos: one writer (sequential puts, each retried until acknowledged) and
# one prefix watcher run while the etcd member is killed, stopped, resumed
# and restarted at random (seeded) moments. At the end every acknowledged
# write was seen by the watcher exactly once and in order, every request
# was called back exactly once, and nothing crashed.
#
# CI runs 8 seconds. The full run (30 s), or another seed:
#
#   EV_ETCD_CHAOS_SECONDS=30 EV_ETCD_CHAOS_SEED=7 prove -b t/66-chaos.t
#
# A write whose callback reported an error may still have been applied
# (the member died after committing it); it is retried under a new value,
# and the watcher may see the first attempt too. Such events are allowed,
# but only for attempts that were in fact made, and never twice.

my $SECONDS = $ENV{EV_ETCD_CHAOS_SECONDS} // 8;
diag("chaos for $SECONDS s");
EtcdTest::seeded(EV_ETCD_CHAOS_SEED => 66);

my $srv = EtcdTest->start;
# A member that may lose acknowledged writes when killed (etcd 3.5.0-3.5.2,
# see EtcdTest::crash_safe) is stopped with SIGTERM instead of SIGKILL.
my $crash = EtcdTest::crash_safe();
diag('this etcd may lose acknowledged writes on SIGKILL: killing with SIGTERM instead') unless $crash;
my $down = sub { $crash ? $srv->kill : $srv->stop };
my $P   = EtcdTest::prefix();
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 2);

my $rec = EtcdTest::watch_recorder($c, "${P}c/", { prefix => 1 },
    sub { [ $_[0]{kv}{key}, $_[0]{kv}{value}, $_[0]{kv}{mod_revision} ] });
ok(EtcdTest::run_until(5, sub { $rec->{created} }), 'watch created');

# ---------------------------------------------------------------------------
# the writer

my (@acked, %attempted, %failed_attempt, %calls);
my ($i, $attempt, $stop, $busy) = (0, 0, 0, 0);
my $write;
$write = sub {
    return if $stop;
    $busy = 1;
    my $key = sprintf '%sc/%06d', $P, $i;
    my $val = "$i.$attempt";
    $attempted{$val} = 1;
    my $id = "put $val";
    $calls{$id} = 0;
    $c->put($key, $val, sub {
        my ($r, $e) = @_;
        $calls{$id}++;
        $busy = 0;
        if ($r) {
            push @acked, [ $key, $val, $r->{header}{revision} ];
            ($i, $attempt) = ($i + 1, 0);
        } else {
            $failed_attempt{$val} = $e->{status};
            $attempt++;
        }
        my $t; $t = EV::timer($e ? 0.05 : 0, 0, sub { undef $t; $write->() });
    });
};

# ---------------------------------------------------------------------------
# the chaos: kill, stop, resume, restart at random moments

my $state = 'up';    # up, killed, stopped
my @log;
my $chaos; $chaos = sub {
    my $t; $t = EV::timer(0.2 + rand(1.2), 0, sub {
        undef $t;
        # A step due after the chaos ended must not take the member down
        # again while the verdict below runs.
        return if $stop;
        my $r = rand;
        if ($state eq 'up') {
            if ($r < 0.45)    { $down->();   $state = 'killed' }
            elsif ($r < 0.9)  { $srv->pause; $state = 'stopped' }
        }
        elsif ($state eq 'stopped') {
            if ($r < 0.7) { $srv->resume; $state = 'up' }
            else          { $down->();    $state = 'killed' }    # SIGKILL a stopped process
        }
        else { $srv->restart; $state = 'up' }
        push @log, sprintf '%.1f %s', Time::HiRes::time() - $^T, $state;
        $chaos->() unless $stop;
    });
};

$write->();
$chaos->();
EtcdTest::run_until($SECONDS, sub { 0 });
$stop = 1;
undef $chaos;
$srv->resume  if $state eq 'stopped';
$srv->restart if $state eq 'killed';
$srv->wait_ready(30);
diag('chaos: ' . join ', ', @log);
cmp_ok(scalar(grep { /killed|stopped/ } @log), '>=', 2, 'the member went down at least twice');

# the write in flight when the chaos stopped gets its callback; no new one starts
ok(EtcdTest::run_until(10, sub { !$busy }), 'the writer finished its last request');
my $n = @acked;
cmp_ok($n, '>', 10, "$n writes acknowledged");
diag(sprintf '%d writes acknowledged, %d attempts failed', $n, scalar keys %failed_attempt);
my $last_rev = @acked ? $acked[-1][2] : 0;
ok(EtcdTest::run_until(30, sub { @{ $rec->{events} } && $rec->{events}[-1][2] >= $last_rev }),
   'the watcher caught up with the last acknowledged write');
EtcdTest::run_until(0.5, sub { 0 });

# ---------------------------------------------------------------------------
# the verdict

my @events = @{ $rec->{events} };
diag(sprintf 'watcher saw %d events for %d acknowledged writes (%d created responses)',
     scalar @events, $n, $rec->{created});
my %seen_rev;
my @dup = grep { $seen_rev{ $_->[2] }++ } @events;
is_deeply(\@dup, [], 'no event delivered twice');
my @revs = map { $_->[2] } @events;
is_deeply(\@revs, [ sort { $a <=> $b } @revs ], 'events in revision order');
my %event_at = map { ($_->[2] => $_) } @events;
my @missing = grep { !$event_at{ $_->[2] } || $event_at{ $_->[2] }[1] ne $_->[1] } @acked;
is_deeply([ map { $_->[1] } @missing ], [], 'every acknowledged write seen (same revision and value)');
my %acked_val = map { ($_->[1] => 1) } @acked;
my @unexplained = grep { !$acked_val{ $_->[1] } && !$failed_attempt{ $_->[1] } } @events;
is_deeply([ map { $_->[1] } @unexplained ], [], 'every other event is an attempt that reported an error');
my %seen_val;
is_deeply([ grep { $seen_val{ $_->[1] }++ } @events ], [], 'no value seen twice');
is_deeply([ map { $_->[1] } grep { $_->[1] =~ /^(\d+)\./ && !$attempted{ $_->[1] } } @events ], [],
          'no event for an attempt that was never made');
my @ordered = map { $_->[1] } grep { $acked_val{ $_->[1] } } @events;
is_deeply(\@ordered, [ map { $_->[1] } @acked ], 'acknowledged writes seen in write order');
is_deeply($rec->{errs}, [], 'the watch reported no error');
is_deeply([ grep { $calls{$_} != 1 } sort keys %calls ], [], 'every put called back exactly once');

# the client still works
my $caller = EtcdTest::Caller->new($c);
my $g = $caller->ok_call('get after the chaos', 'get', "${P}c/", { prefix => 1, count_only => 1 });
cmp_ok($g->{count}, '>=', $n, 'every acknowledged key is there');
my $done;
$rec->{w}->cancel(sub { $done = 1 });
ok(EtcdTest::run_until(5, sub { $done }), 'watch cancelled');
undef $write;

done_testing;
