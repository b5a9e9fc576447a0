#!/usr/bin/env perl
# Two applications share one cluster, each in its own namespace, written
# with futures and async/await (EV::Etcd::Future, Future::AsyncAwait).
# Each sees only its own keys, without the prefix; a plain client sees both
# namespaces with their prefixes.
#
#   perl -Mblib eg/namespace_async.pl
#
# Needs Future and Future::AsyncAwait (libfuture-perl,
# libfuture-asyncawait-perl). Uses the cluster in EV_ETCD_ENDPOINTS
# (comma-separated host:port list) when set; otherwise starts a throwaway
# etcd on a free loopback port.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV;
use EV::Etcd;
use EV::Etcd::Future;
use Future::AsyncAwait;
use EtcdTest;

my @endpoints = EtcdTest::example_endpoints();
my $root = "/ev-etcd-namespace-example/$$/";

my %app = map {
    $_ => EV::Etcd->new(endpoints => \@endpoints, timeout => 10, namespace => "$root$_/")->future
} qw(billing search);
my $plain = EV::Etcd->new(endpoints => \@endpoints, timeout => 10)->future;

async sub configure {
    my ($name, %settings) = @_;
    my $etcd = $app{$name};
    await Future->needs_all(map { $etcd->put("config/$_", $settings{$_}) } sort keys %settings);
    my $resp = await $etcd->get('', { prefix => 1 });     # the whole namespace
    return { map { $_->{key} => $_->{value} } @{ $resp->{kvs} } };
}

async sub main {
    my ($billing, $search) = await Future->needs_all(
        configure(billing => currency => 'EUR', retries => 3),
        configure(search  => shards   => 8,     retries => 5),
    );
    for ([ billing => $billing ], [ search => $search ]) {
        my ($name, $conf) = @$_;
        print "$name sees: ", join(', ', map { "$_=$conf->{$_}" } sort keys %$conf), "\n";
    }
    my $all = await $plain->get($root, { prefix => 1, keys_only => 1 });
    print "a plain client sees:\n", map { "  $_->{key}\n" } @{ $all->{kvs} };

    # a failure is a failed future: (message, 'etcd', error hash)
    my $err = eval { await $app{billing}->lease_revoke(123456789); undef } // $@;
    my ($e) = ref $err ? $err->details : ();
    print "revoking an unknown lease fails: $e->{status} ($e->{message})\n" if $e;

    await $plain->delete($root, { prefix => 1 });
    return $billing->{'config/retries'} == 3 && $search->{'config/retries'} == 5
        && @{ $all->{kvs} } == 4 && $e && $e->{status} eq 'NOT_FOUND';
}

my $ok = eval { main()->get };
print STDERR "failed: $@" unless defined $ok;
exit($ok ? 0 : 1);
