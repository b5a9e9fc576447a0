use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "ENVIRONMENT" (EV_ETCD_WAIT_US): while one request is outstanding, the
# Perl thread and the engine thread wait for its answer before they sleep,
# but only until the request is EV_ETCD_WAIT_US old; the loop's other
# watchers still run, and a request whose answer never comes costs no CPU
# after that.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();

# The process's CPU time (both threads), in seconds.
sub cpu { my @t = times; $t[0] + $t[1] }

# Requests back to back, each from the previous one's callback (the case
# the wait is for): every answer reaches its callback, in order, with the
# value the request before it wrote.
{
    my $c = EV::Etcd->new(endpoints => \@eps, timeout => 10);
    my ($i, $n, @wrong, $err) = (0, 200);
    my $next;
    $next = sub {
        my $k = "${P}seq" . (int($i / 2) % 7);
        if ($i % 2 == 0) {
            $c->put($k, "v$i", sub {
                $err //= $_[1];
                $i++;
                $next->() if $i < $n;
            });
        } else {
            my $want = 'v' . ($i - 1);
            $c->get($k, sub {
                my ($r, $e) = @_;
                $err //= $e;
                my $got = $r && $r->{kvs}[0] ? $r->{kvs}[0]{value} : undef;
                push @wrong, "$i: " . ($got // 'undef') unless defined $got && $got eq $want;
                $i++;
                $next->() if $i < $n;
            });
        }
    };
    $next->();
    ok(EtcdTest::run_until(60, sub { $i >= $n }), "$n requests one after the other all completed")
        or diag("completed $i");
    is($err, undef, 'none failed');
    is_deeply(\@wrong, [], 'every get read the put before it');
    is($i, $n, 'no callback ran twice');
}

# An endpoint that accepts the connection and never answers: the one
# request outstanding is waited for only EV_ETCD_WAIT_US (at most 10 ms).
# It is made back to back with an answer, as the requests the wait is for.
{
    my $silent = IO::Socket::INET->new(
        Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', ReuseAddr => 1,
    ) or die "cannot listen: $!";
    my $c = EV::Etcd->new(endpoints => ['127.0.0.1:' . $silent->sockport], timeout => 3);
    my $live = EV::Etcd->new(endpoints => \@eps, timeout => 10);
    my ($resp, $err, $calls, $sent) = (undef, undef, 0, 0);
    # Answers first come quickly, so the next request is waited for.
    my $chain;
    my $left = 20;
    $chain = sub {
        if (--$left > 0) {
            $live->get("${P}seq0", $chain);
            return;
        }
        $c->get("${P}never", sub { $calls++; ($resp, $err) = @_ });
        $sent = 1;
    };
    $live->get("${P}seq0", $chain);
    ok(EtcdTest::run_until(15, sub { $sent }), 'the request to the silent endpoint is made');

    # A timer every 10 ms keeps running while the request is outstanding,
    # and the two threads do not spin: the wait ended long ago.
    my $ticks = 0;
    my $tick  = EV::timer(0.01, 0.01, sub { $ticks++ });
    my ($t0, $c0) = (Time::HiRes::time, cpu());
    my $stop = EV::timer(0.6, 0, sub { EV::break });
    EV::run;
    my ($wall, $used) = (Time::HiRes::time - $t0, cpu() - $c0);
    undef $tick;
    is($calls, 0, 'the request is still outstanding after 0.6 s');
    cmp_ok($ticks, '>=', 30, "the loop ran a 10 ms timer meanwhile ($ticks times in ${\ sprintf '%.2f', $wall} s)");
    cmp_ok($used, '<', 0.3, sprintf 'and the process used %.2f s of CPU in it: nobody spins on the answer', $used);

    ok(EtcdTest::run_until(10, sub { $calls }), 'the request fails at its deadline');
    is($calls, 1, 'its callback ran once');
    is($resp, undef, 'without a response');
    is($err && $err->{code}, 4, 'with DEADLINE_EXCEEDED') or diag(explain($err));
}

done_testing;
