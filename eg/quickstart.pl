#!/usr/bin/env perl
# Quick start: put, get, compare-and-swap, status and delete.
#
#   perl -Mblib eg/quickstart.pl
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

my $client = EV::Etcd->new(endpoints => \@endpoints, timeout => 5);
my $key    = "/ev-etcd-quickstart/$$";

# Every callback gets ($resp, $err); on failure $resp is undef and $err is a
# hash with code, status and message.  A failure stops the loop.
my ($done, $failed) = (0, 0);
sub failed {
    my ($what, $err) = @_;
    return 0 unless $err;
    print STDERR "$what failed: $err->{message}\n";
    $failed = 1;
    EV::break;
    return 1;
}

my $safety = EV::timer(30, 0, sub { failed(wait => { message => 'no answer within 30 s' }) });

$client->put($key, 'v1', sub {
    my ($resp, $err) = @_;
    return if failed(put => $err);
    print "put $key = v1 at revision $resp->{header}{revision}\n";

    $client->get($key, sub {
        my ($resp, $err) = @_;
        return if failed(get => $err);
        print "get $key: $resp->{kvs}[0]{value}\n";

        # Compare-and-swap: replace v1 with v2 only if the value is still v1.
        $client->txn(
            compare => [ { key => $key, target => 'value', value => 'v1' } ],
            success => [ { request_put => { key => $key, value => 'v2' } } ],
            failure => [],
            sub {
                my ($resp, $err) = @_;
                return if failed(txn => $err);
                print 'compare-and-swap v1 -> v2: ',
                    ($resp->{succeeded} ? 'swapped' : 'value had changed'), "\n";

                $client->status(sub {
                    my ($resp, $err) = @_;
                    return if failed(status => $err);
                    printf "server version %s, db size %d bytes\n",
                        $resp->{version} // '?', $resp->{db_size};

                    $client->delete($key, sub {
                        my ($resp, $err) = @_;
                        return if failed(delete => $err);
                        print "deleted $resp->{deleted} key\n";
                        $done = 1;
                        EV::break;
                    });
                });
            });
    });
});

EV::run;
exit($failed || !$done ? 1 : 0);
