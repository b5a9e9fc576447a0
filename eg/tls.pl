#!/usr/bin/env perl
# Mutual TLS: a client that verifies the server with a CA bundle and
# authenticates itself with a client certificate.
#
#   perl -Mblib eg/tls.pl
#
# Makes a throwaway CA and certificates with the openssl command and starts
# an etcd that serves https and demands client certificates.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV::Etcd;
use EtcdTest;

EtcdTest::etcd_binary()    or die "no etcd found: install etcd-server\n";
EtcdTest::openssl_binary() or die "no openssl found: install openssl\n";

my $pki = EtcdTest::make_pki();
my $server = EtcdTest->start(tls => {
    cert_file        => $pki->{server_cert},
    key_file         => $pki->{server_key},
    ca_file          => $pki->{ca},
    client_cert_auth => 1,
    client_cert      => $pki->{client_cert},
    client_key       => $pki->{client_key},
});
print "etcd serving ", $server->url, " (client certificates required)\n";

my $etcd = EV::Etcd->new(
    endpoints => [ $server->endpoint ],
    timeout   => 5,
    tls       => {
        ca_file   => $pki->{ca},             # verifies the server
        cert_file => $pki->{client_cert},    # authenticates this client
        key_file  => $pki->{client_key},
    },
);

my $key = "/ev-etcd-tls-example/$$";
$etcd->put($key, 'over TLS', sub {
    my (undef, $err) = @_;
    die "put failed: $err->{message}\n" if $err;
    $etcd->get($key, sub {
        my ($resp, $err) = @_;
        die "get failed: $err->{message}\n" if $err;
        print "read back: $resp->{kvs}[0]{value}\n";
    });
});
EV::run;

# Without a client certificate the server refuses the connection.
my $anonymous = EV::Etcd->new(endpoints => [ $server->endpoint ], timeout => 5,
                              tls => { ca_file => $pki->{ca} });
$anonymous->get($key, sub {
    my (undef, $err) = @_;
    print "without a client certificate: $err->{status}: $err->{message}\n";
});
EV::run;
