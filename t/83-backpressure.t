use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV;
use EV::Etcd;
use POSIX ();
use Time::HiRes ();

# POD "BACKPRESSURE": a watch whose callback is slower than the writes it
# receives. With max_pending => 20 the completions waiting for the loop
# stay at 20 (the watch stream stops reading beyond it), on_event sees
# backpressure_on and backpressure_off in turn, and every event still
# arrives, in revision order. With high limits the same run lets the
# queue grow past 40: the limit is what holds it. max_pending_bytes holds
# it the same way, by the bytes of keys and values waiting.

EtcdTest::need_etcd();

my $m = EtcdTest->start;
my $N = 3000;

# One run: a writer process puts $N keys as fast as it can while this
# process watches them with a callback that takes 0.5 ms per response.
sub slow_watch {
    my ($label, %opt) = @_;
    my $P = EtcdTest::prefix() . "$label/";
    my @ev;
    my $c = EV::Etcd->new(endpoints => [ $m->endpoint ], %opt, on_event => sub { push @ev, $_[0] });
    my ($n, $last, $disorder, $max_queued, $created, $err) = (0, 0, 0, 0);
    my $w = $c->watch($P, { prefix => 1 }, sub {
        my ($r, $e) = @_;
        return $err = $e if $e;
        $created = 1 if $r->{created};
        for my $ev (@{ $r->{events} || [] }) {
            my $rev = $ev->{kv}{mod_revision};
            $disorder++ if $rev <= $last;
            $last = $rev;
            $n++;
        }
        my $q = $c->stats->{queued};
        $max_queued = $q if $q > $max_queued;
        Time::HiRes::sleep(0.0005);
    });
    ok(EtcdTest::run_until(5, sub { $created }), "$label: watch created");
    # The loop reaps children itself: the writer reports through a pipe.
    pipe(my $from_writer, my $to_parent) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $from_writer;
        my $wc = EV::Etcd->new(endpoints => [ $m->endpoint ]);
        my ($acked, $failed) = (0, 0);
        $wc->put("$P$_", 'x' x 200, sub { $_[1] ? $failed++ : $acked++ }) for 1 .. $N;
        EtcdTest::run_until(60, sub { $acked + $failed == $N });
        syswrite $to_parent, "$acked\n";
        POSIX::_exit(0);
    }
    close $to_parent;
    ok(EtcdTest::run_until(120, sub { $n >= $N || $err }), "$label: the watch gets to the end");
    my $acked = <$from_writer>;
    waitpid $pid, 0;
    is($acked, "$N\n", "$label: the writer's puts all succeeded");
    is($err, undef, "$label: no watch error");
    is($n, $N, "$label: every event arrived");
    is($disorder, 0, "$label: in revision order");
    $w->cancel(sub {});
    EtcdTest::run_until(5, sub { $c->stats->{watches} == 0 });
    return ($max_queued, \@ev);
}

my ($held, $ev) = slow_watch('held', max_pending => 20);
cmp_ok($held, '<=', 22, "max_pending 20: the queue stayed at it (at most $held waited)");
my @types = map { $_->{type} } @$ev;
cmp_ok(scalar(grep { $_ eq 'backpressure_on' } @types), '>=', 1, 'backpressure_on seen');
my $alternating = 1;
for my $i (0 .. $#types) {
    my $want = $i % 2 ? 'backpressure_off' : 'backpressure_on';
    $alternating = 0 if $types[$i] ne $want;
}
ok($alternating, 'on and off in turn') or diag "@types[0 .. 9]";
my @on = grep { $_->{type} eq 'backpressure_on' } @$ev;
ok(!(grep { $_->{pending} <= 20 } @on), 'on: more than max_pending were waiting');
my @off = grep { $_->{type} eq 'backpressure_off' } @$ev;
ok(!(grep { $_->{pending} > 10 } @off), 'off: half of max_pending or fewer were waiting');
ok(!(grep { !defined $_->{bytes} } @$ev), 'every event has bytes');

# 200-byte values under a 3-byte prefix and an 8-digit key: about 20 of
# them fill 4 KiB.
my ($by_bytes, $bev) = slow_watch('bytes', max_pending => 1_000_000, max_pending_bytes => 4096);
cmp_ok($by_bytes, '<=', 40, "max_pending_bytes 4096: the queue stayed small (at most $by_bytes waited)");
my @bon = grep { $_->{type} eq 'backpressure_on' } @$bev;
cmp_ok(scalar @bon, '>=', 1, 'max_pending_bytes: backpressure_on seen');
ok(!(grep { $_->{bytes} <= 4096 } @bon), 'on: more than max_pending_bytes were waiting');

my ($free) = slow_watch('free', max_pending => 1_000_000, max_pending_bytes => 1 << 30);
cmp_ok($free, '>', 40, "high limits: the queue grew to $free");

done_testing;
