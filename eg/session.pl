#!/usr/bin/env perl
# A lease-backed session: a service registers itself under /services/ with a
# key tied to a 3-second lease, and lease_keepalive_start keeps that lease
# alive for as long as the service runs. Another client watches the
# registry. When the service ends (here: it revokes its lease; a crashed
# service would simply stop renewing) the key disappears and the watcher
# sees it go.
#
#   perl -Mblib eg/session.pl [seconds-to-run]
#
# Uses the cluster in EV_ETCD_ENDPOINTS (comma-separated host:port list) when
# set; otherwise starts a throwaway etcd on a free loopback port.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV;
use EV::Etcd;
use EtcdTest;

my $run_for   = $ARGV[0] // 5;
my @endpoints = EtcdTest::example_endpoints();
my $registry  = "/ev-etcd-session-example/$$/services/";
my $me        = "${registry}web-1";
sub check { EtcdTest::example_ok(@_) }
my $deadline = EtcdTest::example_deadline($run_for + 30);

my $service = EV::Etcd->new(endpoints => \@endpoints, timeout => 5);
my $watcher = EV::Etcd->new(endpoints => \@endpoints, timeout => 5);

my ($renewals, $ka, $watch) = (0);
$watch = $watcher->watch($registry, { prefix => 1 }, sub {
    my ($resp, $err) = @_;
    check(watch => $err) or return;
    for my $ev (@{ $resp->{events} }) {
        print "watcher: $ev->{type} $ev->{kv}{key}\n";
        if ($ev->{type} eq 'DELETE') {
            $watch->cancel(sub { EV::break });
        }
    }
});

$service->lease_grant(3, sub {
    my ($resp, $err) = @_;
    check(lease_grant => $err) or return;
    my $lease = $resp->{id};
    $service->put($me, 'http://127.0.0.1:8080', { lease => $lease }, sub {
        check(put => $_[1]) or return;
        print "registered $me with lease $lease (ttl $resp->{ttl} s)\n";
        $ka = $service->lease_keepalive_start($lease, {
            on_lost => sub { check(keepalive => $_[0]) },
        }, sub { $renewals++ });
        my $t; $t = EV::timer($run_for, 0, sub {
            undef $t;
            $service->get($me, sub {
                my ($r, $e) = @_;
                check(get => $e) or return;
                printf "after %d s: %s (renewed %d times)\n", $run_for,
                    ($r->{kvs}[0] ? 'still registered' : 'GONE'), $renewals;
                $ka->stop;
                $service->lease_revoke($lease, sub { check(lease_revoke => $_[1]) });
            });
        });
    });
});

EV::run;
exit 1 if EtcdTest::example_failed();
print "session over\n";
