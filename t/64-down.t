use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# A member that dies (SIGKILL) and one that stops answering (SIGSTOP: the
# kernel still accepts connections, nobody reads them). Meanwhile: requests
# fail within their timeout, a watch reports nothing spurious and resumes
# once the member is back (no event lost or repeated), and the client
# process stays idle: under 0.05 s of CPU per second of downtime.

my $DOWN    = $ENV{EV_ETCD_DOWN_SECONDS} // 4;
my $TIMEOUT = 2;

my $srv = EtcdTest->start;
my $P   = EtcdTest::prefix();
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => $TIMEOUT);
my $caller = EtcdTest::Caller->new($c);

my $rec = EtcdTest::watch_recorder($c, "${P}d/", { prefix => 1 }, sub { $_[0]{kv}{value} });
my ($w, $events, $werrs) = @$rec{qw(w events errs)};
ok(EtcdTest::run_until(5, sub { $rec->{created} }), 'watch created');

my $n = 0;
sub put_seen {
    my ($what) = @_;
    my $v = 'v' . $n++;
    $caller->ok_call("$what: put $v", 'put', "${P}d/$v", $v);
    ok(EtcdTest::run_until(10, sub { grep { $_ eq $v } @$events }), "$what: the watch saw $v");
}

sub cpu { my ($u, $s) = times; $u + $s }

# While the member is down: one get and one put per second, each timed.
# Returns (CPU seconds used per second of downtime, [late callbacks]).
sub while_down {
    my ($what) = @_;
    my @late;
    my ($issued, $answered) = (0, 0);
    my $cpu0 = cpu();
    my $t0   = Time::HiRes::time();
    my $tick = EV::timer(0, 1, sub {
        for my $m ([ get => "${P}d/x" ], [ put => "${P}down", "x" ]) {
            my ($method, @args) = @$m;
            my $at = Time::HiRes::time();
            $issued++;
            $c->$method(@args, sub {
                my ($r, $e) = @_;
                $answered++;
                my $took = Time::HiRes::time() - $at;
                push @late, sprintf('%s answered after %.2f s', $method, $took) if $took > $TIMEOUT + 1;
                push @late, "$method succeeded while the member was down" if $r && $method eq 'get';
            });
        }
    });
    EtcdTest::run_until($DOWN, sub { 0 });
    undef $tick;
    EtcdTest::run_until($TIMEOUT + 1, sub { $answered >= $issued });
    my $elapsed = Time::HiRes::time() - $t0;
    my $per_s = (cpu() - $cpu0) / $elapsed;
    is($answered, $issued, "$what: all $issued requests called back");
    diag(sprintf '%s: %.4f s CPU per second over %.1f s (%d requests)', $what, $per_s, $elapsed, $issued);
    return ($per_s, \@late);
}

put_seen('before');

# ---------------------------------------------------------------------------
# killed, then stopped (a peer that accepts but never answers)

for my $mode ([ killed => 'kill', 'restart', 'after the restart' ],
              [ stopped => 'pause', 'resume', 'after SIGCONT' ]) {
    my ($what, $down, $up, $after) = @$mode;
    $srv->$down;
    my $seen = @$events;
    my ($cpu, $late) = while_down($what);
    cmp_ok($cpu, '<', 0.05, "$what: under 0.05 s CPU per second of downtime");
    is_deeply($late, [], "$what: every request failed within timeout ($TIMEOUT s) + 1 s");
    if ($what eq 'stopped') {
        my $e = $caller->err_call('stopped: a get fails', 'get', "${P}d/x");
        is($e->{status}, 'DEADLINE_EXCEEDED', 'stopped: with DEADLINE_EXCEEDED');
    }
    is(scalar @$events, $seen, "$what: the watch delivered nothing meanwhile");
    is_deeply($werrs, [], "$what: and reported no error");
    $srv->$up;
    put_seen($after);
    put_seen('again');
}

# ---------------------------------------------------------------------------

my @want = map { "v$_" } 0 .. $n - 1;
is_deeply($events, \@want, 'the watch saw every acknowledged write once, in order');
is_deeply($werrs, [], 'the watch never reported an error');
my $cancelled;
$w->cancel(sub { $cancelled = 1 });
ok(EtcdTest::run_until(5, sub { $cancelled }), 'watch cancelled');
EtcdTest::Caller->exactly_once($caller);

done_testing;
