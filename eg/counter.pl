#!/usr/bin/env perl
# A shared counter with compare-and-swap: several clients increment one key
# at the same time; each increment is a txn that only writes if the key has
# not changed since it was read (same mod_revision), and retries otherwise.
# No increment is lost.
#
#   perl -Mblib eg/counter.pl [workers] [increments-each]
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

my ($workers, $each) = (@ARGV, 4, 10)[0, 1];
my @endpoints = EtcdTest::example_endpoints();
my $key = "/ev-etcd-counter-example/$$";

my ($running, $conflicts) = ($workers, 0);
sub check { EtcdTest::example_ok(@_) }    # reports an error, stops the loop
my $deadline = EtcdTest::example_deadline(60);

# One increment: read, then write value+1 only if the key is unchanged
# (mod_revision 0 compares "does not exist yet").
sub increment {
    my ($etcd, $done) = @_;
    $etcd->get($key, sub {
        my ($resp, $err) = @_;
        check(get => $err) or return;
        my $kv  = $resp->{kvs}[0];
        my $rev = $kv ? $kv->{mod_revision} : 0;
        my $new = ($kv ? $kv->{value} : 0) + 1;
        $etcd->txn(
            [ { key => $key, target => 'mod', mod_revision => $rev } ],
            [ { put => { key => $key, value => $new } } ],
            [],
            sub {
                my ($resp, $err) = @_;
                check(txn => $err) or return;
                return $done->($new) if $resp->{succeeded};
                $conflicts++;              # someone was faster: read again
                increment($etcd, $done);
            });
    });
}

for my $w (1 .. $workers) {
    my $etcd = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
    my $left = $each;
    my $next; $next = sub {
        return increment($etcd, sub { $left--; $next->() }) if $left > 0;
        undef $next;                       # this worker is done
        undef $etcd;
        EV::break unless --$running;
    };
    $next->();
}
EV::run;
exit 1 if EtcdTest::example_failed();

my $etcd = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
my $final;
$etcd->get($key, sub {
    my ($resp, $err) = @_;
    check(get => $err) or return;
    $final = $resp->{kvs}[0]{value};
    $etcd->delete($key, sub { check(delete => $_[1]) and EV::break });
});
EV::run;
exit 1 if EtcdTest::example_failed();
printf "%d workers x %d increments: counter = %d (%d conflicts retried)\n",
    $workers, $each, $final, $conflicts;
exit($final == $workers * $each ? 0 : 1);
