#!/usr/bin/env perl
# Health monitoring and failover: two etcd members, a client writing to
# them, and the member in use killed after two seconds. on_event shows what
# the client did on its own meanwhile, and stats counts it.
#
#   perl -Mblib eg/health.pl
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV::Etcd;
use EtcdTest;
use Time::HiRes ();

EtcdTest::etcd_binary() or die "no etcd found: install etcd-server\n";
my @members = (EtcdTest->start, EtcdTest->start);
EV::now_update();    # starting the members took a while
my $t0 = Time::HiRes::time();
sub say_at { printf "%5.2f s  %s\n", Time::HiRes::time() - $t0, "@_" }

my $etcd = EV::Etcd->new(
    endpoints        => [ map { $_->endpoint } @members ],
    timeout          => 5,
    health_interval  => 1,
    on_health_change => sub {
        my ($is_healthy, $endpoint) = @_;
        say_at($is_healthy ? "healthy, using $endpoint" : "unhealthy, moving to $endpoint");
    },
    on_event => sub {
        my ($e) = @_;
        my $what = $e->{type} eq 'failover' ? "from $e->{from} to $e->{to} ($e->{why})"
                 : $e->{type} eq 'retry'    ? "$e->{method}, attempt $e->{attempt}: $e->{error}{status}"
                 : $e->{endpoint} // '';
        say_at("event: $e->{type} $what");
    },
);

my ($ok, $failed) = (0, 0);
my $writer = EV::timer(0, 0.05, sub {
    $etcd->put("/ev-etcd-health-example/$$", 'v', sub { $_[1] ? $failed++ : $ok++ });
});
my $kill = EV::timer(2, 0, sub { say_at('killing', $members[0]->endpoint); $members[0]->kill });
my $stats;
my $stop = EV::timer(5, 0, sub { $stats = $etcd->stats; undef $writer; undef $etcd; EV::break });
EV::run;
say_at(sprintf 'stats: %d requests, %d retries, %d failovers, %d bytes in, %d bytes out',
       @$stats{qw(requests retries failovers bytes_in bytes_out)});
# A write in flight on the connection that died may fail (it may have been
# applied, so it is not replayed); every later one goes to the next member.
say_at("done: $ok writes succeeded, $failed failed");
