#!/usr/bin/env perl
# A mutex with fencing: two workers, each with its own client and session,
# take turns on one mutex and increment a shared counter with a fenced
# transaction - it applies only while the worker's lock key still exists
# with the revision it was granted (is_owner) and the counter is unchanged.
# Then a worker's lease is revoked while it holds the lock (as if the
# worker had stalled past its TTL): its mutex hears of the loss, and its
# fenced write is refused.
#
#   perl -Mblib eg/mutex_fencing.pl [increments-per-worker]
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

my $per_worker = $ARGV[0] // 5;
my @endpoints  = EtcdTest::example_endpoints();
my $base       = "/ev-etcd-fencing-example/$$";
my $counter    = "$base/counter";
sub check { EtcdTest::example_ok(@_) }
my $deadline = EtcdTest::example_deadline(60);

# One fenced increment under a held mutex: read, then write only if the
# lock and the counter are as they were.
sub fenced_increment {
    my ($etcd, $m, $done) = @_;
    $etcd->get($counter, sub {
        my ($r, $err) = @_;
        check(get => $err) or return;
        my $kv  = $r->{kvs}[0];
        my $old = $kv ? $kv->{value} : 0;
        $etcd->txn(
            [ $m->is_owner,
              { key => $counter, target => 'mod', result => '=', mod_revision => $kv ? $kv->{mod_revision} : 0 } ],
            [ { put => { key => $counter, value => $old + 1 } } ], [],
            sub {
                my ($t, $err) = @_;
                check(txn => $err) or return;
                $done->($t->{succeeded}, $old + 1);
            });
    });
}

my $running = 2;
my ($total, %client) = (0);
for my $name (qw(alice bob)) {
    my $etcd = $client{$name} = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
    $etcd->session({ ttl => 10 }, sub {
        my ($session, $err) = @_;
        check("$name session", $err) or return;
        my $m = $session->mutex("$base/lock");
        my $left = $per_worker;
        my $round; $round = sub {
            $m->lock({ timeout => 20 }, sub {
                my (undef, $err) = @_;
                check("$name lock", $err) or return;
                fenced_increment($etcd, $m, sub {
                    my ($ok, $value) = @_;
                    print "$name: counter -> $value\n" if $ok;
                    $total++ if $ok;
                    $m->unlock(sub {
                        check("$name unlock", $_[1]) or return;
                        return $round->() if --$left > 0;
                        undef $round;
                        $session->close(sub { check("$name close", $_[1]); stale_holder() unless --$running });
                    });
                });
            });
        };
        $round->();
    });
}

# A holder whose lease ends under it: another client revokes it.
sub stale_holder {
    my $etcd = $client{alice};
    $etcd->get($counter, sub {
        my ($r, $err) = @_;
        check(get => $err) or return;
        print "2 workers x $per_worker fenced increments: counter = $r->{kvs}[0]{value}\n";
        $etcd->session({ ttl => 6 }, sub {
            my ($session, $err) = @_;
            check(session => $err) or return;
            my $m = $session->mutex("$base/lock", {
                on_lost => sub { print "stale holder: lock lost ($_[0]{status})\n" },
            });
            $m->lock(sub {
                my (undef, $err) = @_;
                check(lock => $err) or return;
                my $fence = $m->is_owner;    # taken while held
                $client{bob}->lease_revoke($session->lease, sub {
                    check(lease_revoke => $_[1]) or return;
                    my $t; $t = EV::timer(0, 1, sub {
                        return if $m->is_held;    # until the keepalive reports the loss
                        undef $t;
                        $etcd->txn([ $fence ], [ { put => { key => $counter, value => -1 } } ], [], sub {
                            my ($r, $err) = @_;
                            check(txn => $err) or return;
                            print "stale holder's fenced write: succeeded = $r->{succeeded}\n";
                            $etcd->delete("$base/", { prefix => 1 }, sub {
                                check(cleanup => $_[1]);
                                undef $deadline;
                            });
                        });
                    });
                });
            });
        });
    });
}

EV::run;
exit 1 if EtcdTest::example_failed();
print "done\n";
