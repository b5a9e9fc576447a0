package EtcdTest::Examples;

# What the eg/ scripts use when t/73-examples.t runs them
# (EtcdTest::example_ok, example_failed, example_deadline; example_endpoints
# stays in EtcdTest.pm, beside the shared member).

use strict;
use warnings;

# For the eg/ scripts: true when $err is empty; otherwise reports it on
# STDERR, marks the run failed (example_failed) and stops the loop.
my $EXAMPLE_FAILED = 0;
sub example_ok {
    my ($what, $err) = @_;
    return 1 unless $err;
    print STDERR "$what failed: ", ($err->{status} // 'ERROR'), ": $err->{message}\n";
    $EXAMPLE_FAILED = 1;
    require EV;
    EV::break();
    return 0;
}

sub example_failed { $EXAMPLE_FAILED }

# For the eg/ scripts: a timer that fails the run after $seconds.
sub example_deadline {
    my ($seconds) = @_;
    require EV;
    return EV::timer($seconds, 0, sub {
        example_ok(wait => { status => 'TIMEOUT', message => "no end within $seconds s" });
    });
}

1;
