package EtcdTest::Loop;

# Event-loop waits that always end (EtcdTest::run_until, run_loop).

use strict;
use warnings;

sub run_until {
    my ($timeout, $done) = @_;
    require EV;
    return 1 if $done->();
    EV::now_update();    # the cached loop time may be stale after blocking work
    my $expired = 0;
    my $timer = EV::timer($timeout, 0, sub { $expired = 1 });
    until ($done->()) {
        return 0 if $expired;
        EV::run(EV::RUN_ONCE());
    }
    return 1;
}

sub run_loop {
    my ($timeout) = @_;
    require EV;
    EV::now_update();
    my $fired = 0;
    my $timer = EV::timer($timeout, 0, sub { $fired = 1; EV::break() });
    $timer->keepalive(0);    # the loop may still end by itself
    EV::run();
    return $fired ? 0 : 1;
}

1;
