#!/usr/bin/env perl
# Leases, a lock and a leader election: two workers contend for one lock,
# then campaign for leadership; the second is elected when the first resigns.
#
#   perl -Mblib eg/lock_and_elect.pl
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

my @endpoints = EtcdTest::example_endpoints();

my $base = "/ev-etcd-lock-example/$$";
my $failed = 0;
sub check {
    my ($what, $err) = @_;
    return 1 unless $err;
    print STDERR "$what failed: $err->{status}: $err->{message}\n";
    $failed = 1;
    EV::break;
    return 0;
}

# Runs $cb once after $seconds.
my (%timers, $timer_seq);
sub later {
    my ($seconds, $cb) = @_;
    my $id = ++$timer_seq;
    $timers{$id} = EV::timer($seconds, 0, sub { delete $timers{$id}; $cb->() });
}

# A worker: its own client and its own lease. The lease ties the worker's lock
# and candidacy to its life: if it crashed, both would go when the lease ran out.
sub worker {
    my ($name, $then) = @_;
    my $w = { name => $name, etcd => EV::Etcd->new(endpoints => \@endpoints, timeout => 10) };
    $w->{etcd}->lease_grant(30, sub {
        my ($resp, $err) = @_;
        check("$name lease_grant", $err) or return;
        $w->{lease} = $resp->{id};
        printf "%s: lease %x (%d s)\n", $name, $resp->{id}, $resp->{ttl};
        $then->($w);
    });
    return $w;
}

my $safety = EV::timer(30, 0, sub { check(wait => { status => 'TIMEOUT', message => 'no progress in 30 s' }) });
my (%w, $stage);

# 1. Both workers ask for the same lock: the second waits until the first unlocks.
sub take_lock {
    my ($w) = @_;
    print "$w->{name}: waiting for the lock\n";
    $w->{etcd}->lock("$base/lock", $w->{lease}, sub {
        my ($resp, $err) = @_;
        check("$w->{name} lock", $err) or return;
        print "$w->{name}: holds the lock ($resp->{key})\n";
        later(0.5, sub {
            print "$w->{name}: releasing the lock\n";
            $w->{etcd}->unlock($resp->{key}, sub {
                check("$w->{name} unlock", $_[1]) or return;
                campaign($w);
            });
        });
    });
}

# 2. Both campaign: the first to be elected proclaims, then resigns after a
# second, which elects the other.
sub campaign {
    my ($w) = @_;
    print "$w->{name}: campaigning\n";
    $w->{etcd}->election_campaign("$base/election", $w->{lease}, "$w->{name} leads", sub {
        my ($resp, $err) = @_;
        check("$w->{name} campaign", $err) or return;
        my $leader = $resp->{leader};
        print "$w->{name}: elected ($leader->{key})\n";
        $w->{etcd}->election_proclaim($leader, "$w->{name} leads, proclaimed", sub {
            check("$w->{name} proclaim", $_[1]) or return;
            $w->{etcd}->election_leader("$base/election", sub {
                my ($resp, $err) = @_;
                check("$w->{name} leader", $err) or return;
                print "$w->{name}: the leader's value is now '$resp->{kv}{value}'\n";
                later(1, sub {
                    print "$w->{name}: resigning\n";
                    $w->{etcd}->election_resign($leader, sub {
                        check("$w->{name} resign", $_[1]) or return;
                        $w->{etcd}->lease_revoke($w->{lease}, sub {
                            check("$w->{name} lease_revoke", $_[1]) or return;
                            EV::break if ++$stage == 2;
                        });
                    });
                });
            });
        });
    });
}

$w{$_} = worker($_, \&take_lock) for qw(alice bob);

EV::run;
exit($failed || ($stage // 0) != 2 ? 1 : 0);
