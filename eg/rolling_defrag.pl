#!/usr/bin/env perl
# An operator's chore: defragment every member of a cluster, one at a time,
# and check each one before and after. Each call names the member it is for
# ({ endpoint => ... }), so it is answered by that member or fails - it
# never quietly goes to another. History is compacted first, so there is
# space to give back. A member that does not answer is reported
# and skipped; the next one is still done. At the end the members' kv hashes
# are compared (they agree on a healthy cluster).
#
#   perl -Mblib eg/rolling_defrag.pl
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
sub check { EtcdTest::example_ok(@_) }
my $deadline = EtcdTest::example_deadline(120);

my $etcd = EV::Etcd->new(endpoints => \@endpoints, timeout => 5);
my @todo = $etcd->endpoints;
my (%hash, $skipped);

sub mb { sprintf '%.2f MB', $_[0] / 1e6 }

# one member after the other: status, defragment (a long call: its own
# timeout), status again
sub next_member {
    my $ep = shift @todo;
    return compare_hashes() unless defined $ep;
    $etcd->status({ endpoint => $ep }, sub {
        my ($before, $err) = @_;
        if ($err) {
            print "$ep: not answering ($err->{status}), skipped\n";
            $skipped++;
            return next_member();
        }
        $etcd->defragment({ endpoint => $ep, timeout => 60 }, sub {
            my (undef, $err) = @_;
            check("defragment $ep" => $err) or return;
            $etcd->status({ endpoint => $ep }, sub {
                my ($after, $err) = @_;
                check("status $ep" => $err) or return;
                printf "%s: member %s, db %s -> %s, in use %s\n", $ep,
                    $after->{header}{member_id}, mb($before->{db_size}), mb($after->{db_size}),
                    mb($after->{db_size_in_use} // $after->{db_size});
                next_member();
            });
        });
    });
}

# every member's kv hash at its latest revision (nothing is written now, so
# they are at the same one)
sub compare_hashes {
    my @eps  = $etcd->endpoints;
    my $left = @eps;
    for my $ep (@eps) {
        $etcd->hash_kv({ endpoint => $ep }, sub {
            my ($r, $err) = @_;
            $hash{$ep} = $err ? "error $err->{status}" : "$r->{hash} at revision $r->{header}{revision}";
            return if --$left;
            my %distinct = map { $_ => 1 } values %hash;
            print 'kv hashes: ', (keys(%distinct) == 1 ? 'all members agree' : 'MEMBERS DIFFER'), "\n";
            print "$_: $hash{$_}\n" for sort keys %hash;
            print "skipped: $skipped member(s)\n" if $skipped;
            undef $deadline;
        });
    }
}

# some data to defragment: write keys, then delete them
my $prefix = "/ev-etcd-defrag-example/$$/";
my $n = 0;
for my $i (1 .. 200) {
    $etcd->put("$prefix$i", 'x' x 2000, sub {
        check(put => $_[1]) or return;
        return if ++$n < 200;
        $etcd->delete($prefix, { prefix => 1 }, sub {
            my ($del, $err) = @_;
            check(delete => $err) or return;
            # history before this revision goes (as operators compact before
            # they defragment), then etcd's backend commits (every 100 ms)
            $etcd->compact($del->{header}{revision}, { physical => 1 }, sub {
                check(compact => $_[1]) or return;
                my $t; $t = EV::timer(0.5, 0, sub { undef $t; next_member() });
            });
        });
    });
}

EV::run;
exit 1 if EtcdTest::example_failed();
print "done\n";
