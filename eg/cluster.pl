#!/usr/bin/env perl
# Cluster overview: members, each member's status (leader, raft index), the
# alarms and each member's KV hash.
#
#   perl -Mblib eg/cluster.pl
#
# Starts a throwaway 3-member cluster on loopback ports.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV;
use EV::Etcd;
use EtcdTest;

EtcdTest::etcd_binary() or die "no etcd found: install etcd-server\n";
my @servers   = EtcdTest->start_cluster(3);
my @endpoints = map { $_->endpoint } @servers;
print "started a throwaway cluster on @endpoints\n";

my $client = EV::Etcd->new(endpoints => \@endpoints, timeout => 5);

$client->member_list(sub {
    my ($resp, $err) = @_;
    die "member_list: $err->{message}\n" if $err;
    for my $m (@{ $resp->{members} }) {
        printf "member %s %-12s learner=%d clients=%s\n", $m->{id}, $m->{name} // '(unstarted)',
            $m->{is_learner}, join(',', @{ $m->{client_urls} }) || '-';
        # ask each started member directly
        for my $url (@{ $m->{client_urls} }) {
            (my $ep = $url) =~ s{^\w+://}{};
            my $one = EV::Etcd->new(endpoints => [$ep], timeout => 5);
            $one->status(sub {
                my ($st, $err) = @_;
                return warn "status $ep: $err->{message}\n" if $err;
                printf "  %s: version %s, leader %s%s, raft index %s\n", $ep, $st->{version},
                    $st->{leader}, ($st->{leader} eq $m->{id} ? ' (itself)' : ''), $st->{raft_index};
                $one->hash_kv(sub {
                    my ($h, $err) = @_;
                    return warn "hash_kv $ep: $err->{message}\n" if $err;
                    printf "  %s: kv hash %s at revision %s\n", $ep, $h->{hash}, $h->{header}{revision};
                    undef $one;
                });
            });
        }
    }
});
$client->alarm('GET', sub {
    my ($resp, $err) = @_;
    die "alarm: $err->{message}\n" if $err;
    print "alarms: ", (join(', ', map { "$_->{alarm_type} on $_->{member_id}" } @{ $resp->{alarms} }) || 'none'), "\n";
});
EV::run;
