use strict;
use warnings;
use Test::More;
use File::Spec ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "TLS": TLS and mutual TLS. Certificates are made with the openssl
# command; two etcd members serve https (one also demands client certificates).

EtcdTest::need_etcd();
EtcdTest::need_openssl();

my $pki = EtcdTest::make_pki();
my $P   = EtcdTest::prefix();

my $srv = EtcdTest->start(tls => {
    cert_file => $pki->{server_cert}, key_file => $pki->{server_key}, ca_file => $pki->{ca},
});
my $mtls = EtcdTest->start(tls => {
    cert_file => $pki->{server_cert}, key_file => $pki->{server_key}, ca_file => $pki->{ca},
    client_cert_auth => 1, client_cert => $pki->{client_cert}, client_key => $pki->{client_key},
});
like($srv->url, qr{^https://127\.0\.0\.1:\d+$}, 'a TLS member advertises an https URL');
ok($srv->healthy, 'the TLS member answers /health over TLS');

my @records;
sub client_ok {
    my ($name, %opt) = @_;
    my $c = eval { EV::Etcd->new(timeout => 5, %opt) };
    is($@, '', "$name: new does not croak");
    return $c;
}

sub call {
    my ($client, $method, @args) = @_;
    my $caller = EtcdTest::Caller->new($client, timeout => 20);
    my ($resp, $err, $rec) = $caller->call($method, @args);
    push @records, $rec if $rec;
    return ($resp, $err);
}

sub put_get_ok {
    my ($name, $client) = @_;
    my $key = "${P}$name";
    my ($r, $e) = call($client, 'put', $key, "value of $name");
    ok($r && !$e && $r->{header}{revision} > 0, "$name: put over TLS")
        or diag(explain($e));
    ($r, $e) = call($client, 'get', $key);
    is($r && $r->{kvs}[0]{value}, "value of $name", "$name: get over TLS reads the value back")
        or diag(explain($e));
}

sub tls_error_ok {
    my ($name, $client, $like) = @_;
    my ($r, $e) = call($client, 'get', "${P}x");
    ok(!defined $r && ref $e eq 'HASH', "$name: the request fails");
    $e = {} unless ref $e eq 'HASH';
    is($e->{code}, 14, "$name: UNAVAILABLE");
    is($e->{source}, 'range', "$name: source label of the method");
    like($e->{message} // '', $like, "$name: the message says why")
        or diag($e->{message});
    my ($r2, $e2) = call($client, 'put', "${P}x", 'v');
    ok(!defined $r2 && $e2 && $e2->{code} == 14, "$name: a write fails the same way");
}

# ---------------------------------------------------------------------------
# server authentication with a CA bundle

{
    my $c = client_ok('ca_file', endpoints => [ $srv->endpoint ], tls => { ca_file => $pki->{ca} });
    put_get_ok('ca_file', $c);

    $c = client_ok('https:// endpoint', endpoints => [ $srv->url ], tls => { ca_file => $pki->{ca} });
    put_get_ok('https_endpoint', $c);

    $c = client_ok('server_name localhost',
                   endpoints => [ $srv->endpoint ],
                   tls => { ca_file => $pki->{ca}, server_name => 'localhost' });
    put_get_ok('server_name_localhost', $c);

    # a client certificate is harmless where the server does not ask for one
    $c = client_ok('unasked client cert', endpoints => [ $srv->endpoint ],
                   tls => { ca_file => $pki->{ca}, cert_file => $pki->{client_cert},
                            key_file => $pki->{client_key} });
    put_get_ok('unasked_client_cert', $c);
}

# ---------------------------------------------------------------------------
# verification failures reach the callbacks, with the reason

{
    my $c = client_ok('unrelated CA', endpoints => [ $srv->endpoint ],
                      tls => { ca_file => $pki->{other_ca} });
    tls_error_ok('unrelated CA', $c, qr/certificate verification failed.*UnknownIssuer/);

    $c = client_ok('server_name mismatch', endpoints => [ $srv->endpoint ],
                   tls => { ca_file => $pki->{ca}, server_name => 'etcd.example.com' });
    tls_error_ok('server_name mismatch', $c,
                 qr/certificate verification failed.*not valid for name "etcd\.example\.com"/);

    # the client still works afterwards with a right configuration: nothing is cached globally
    $c = client_ok('after failures', endpoints => [ $srv->endpoint ], tls => { ca_file => $pki->{ca} });
    put_get_ok('after_failures', $c);
}

# ---------------------------------------------------------------------------
# mutual TLS

{
    my %mtls_opt = (ca_file => $pki->{ca}, cert_file => $pki->{client_cert},
                    key_file => $pki->{client_key});
    my $c = client_ok('mTLS', endpoints => [ $mtls->endpoint ], tls => \%mtls_opt);
    put_get_ok('mtls', $c);

    my ($r, $e) = call($c, 'status');
    ok($r && $r->{version} =~ /^\d+\.\d+/, 'mTLS: status answers with the server version');

    $c = client_ok('mTLS server, no client cert', endpoints => [ $mtls->endpoint ],
                   tls => { ca_file => $pki->{ca} });
    tls_error_ok('mTLS server without a client certificate', $c,
                 qr/(?:BadCertificate|CertificateRequired|client certificates)/);

    # a certificate from another CA is refused by the server
    my $other = EtcdTest::make_pki();
    $c = client_ok('mTLS, foreign client cert', endpoints => [ $mtls->endpoint ],
                   tls => { ca_file => $pki->{ca}, cert_file => $other->{client_cert},
                            key_file => $other->{client_key} });
    tls_error_ok('mTLS server, client certificate of another CA', $c,
                 qr/(?:TLS handshake failed|broken pipe|reset|connection closed)/);
}

# ---------------------------------------------------------------------------
# plain client against a TLS member, TLS client against a plain member

{
    my $c = client_ok('plaintext to TLS', endpoints => [ $srv->endpoint ]);
    my ($r, $e) = call($c, 'get', "${P}x");
    ok(!defined $r && $e && $e->{code} == 14, 'a plaintext client cannot talk to a TLS member');

    my $plain = EtcdTest->start;
    $c = client_ok('TLS to plaintext', endpoints => [ $plain->endpoint ], tls => { ca_file => $pki->{ca} });
    ($r, $e) = call($c, 'get', "${P}x");
    ok(!defined $r && $e && $e->{code} == 14, 'a TLS client cannot talk to a plaintext member');
    like($e && $e->{message}, qr/\S/, 'TLS to plaintext: the message is not empty');
}

# ---------------------------------------------------------------------------
# bad options croak at once, naming the option and the file

{
    my $missing = File::Spec->catfile(File::Spec->tmpdir, "ev-etcd-no-such-file-$$.pem");
    my @cases = (
        [ 'missing ca_file', { ca_file => $missing },
          qr/^EV::Etcd->new: tls ca_file '\Q$missing\E': No such file or directory at \Q${\ __FILE__}\E line/ ],
        [ 'missing key file', { ca_file => $pki->{ca}, cert_file => $pki->{client_cert}, key_file => $missing },
          qr/^EV::Etcd->new: tls key_file '\Q$missing\E': No such file or directory/ ],
        [ 'missing cert file', { cert_file => $missing, key_file => $pki->{client_key} },
          qr/^EV::Etcd->new: tls cert_file '\Q$missing\E': No such file or directory/ ],
        [ 'cert_file without key_file', { ca_file => $pki->{ca}, cert_file => $pki->{client_cert} },
          qr/^EV::Etcd->new: tls cert_file given without key_file/ ],
        [ 'key_file without cert_file', { ca_file => $pki->{ca}, key_file => $pki->{client_key} },
          qr/^EV::Etcd->new: tls key_file given without cert_file/ ],
        [ 'ca_file that is a key', { ca_file => $pki->{client_key} },
          qr/^EV::Etcd->new: tls ca_file '.*': no PEM certificate found/ ],
        [ 'key_file that is a certificate', { cert_file => $pki->{client_cert}, key_file => $pki->{ca} },
          qr/^EV::Etcd->new: tls key_file '.*': no PEM private key found/ ],
        [ 'key of another certificate', { cert_file => $pki->{client_cert}, key_file => $pki->{server_key} },
          qr/^EV::Etcd->new: tls key_file '\Q$pki->{server_key}\E' does not belong to cert_file '\Q$pki->{client_cert}\E'/ ],
        [ 'misspelt option', { cafile => $pki->{ca} }, qr/^EV::Etcd->new: unknown tls option 'cafile'/ ],
        [ 'not a hash', 'yes', qr/^EV::Etcd->new: tls must be a hash reference/ ],
    );
    for my $case (@cases) {
        my ($name, $tls, $like) = @$case;
        my $c = eval { EV::Etcd->new(endpoints => [ $srv->endpoint ], tls => $tls) };
        ok(!$c, "$name: no client");
        like($@, $like, "$name: croaks with a clear message");
    }
    eval { EV::Etcd->new(endpoints => [ 'http://127.0.0.1:1' ], tls => { ca_file => $pki->{ca} }) };
    like($@, qr/^EV::Etcd->new: endpoint 'http:\/\/127\.0\.0\.1:1' is plain http but the tls option is set/,
         'an http:// endpoint with the tls option croaks');
    eval { EV::Etcd->new(endpoints => [ '127.0.0.1:1', 'https://127.0.0.1:2' ]) };
    like($@, qr/^EV::Etcd->new: endpoints mix https and plain http/, 'mixing https and plain endpoints croaks');
    # https:// without the tls option: the system's roots, which do not know the test CA
    my $c = eval { EV::Etcd->new(endpoints => [ $srv->url ], timeout => 5) };
    if ($c) {
        my ($r, $e) = call($c, 'get', "${P}x");
        like($e && $e->{message}, qr/certificate verification failed.*UnknownIssuer/,
             'https:// endpoint without the tls option: verified against the system roots');
    }
    else {
        like($@, qr/^EV::Etcd->new: tls: no ca_file given and no system CA certificates found/,
             'https:// endpoint without the tls option and no system roots: croaks');
    }
    local $ENV{SSL_CERT_FILE} = File::Spec->devnull;
    local $ENV{SSL_CERT_DIR}  = File::Spec->catdir(File::Spec->tmpdir, "ev-etcd-no-such-dir-$$");
    $c = eval { EV::Etcd->new(endpoints => [ $srv->url ]) };
    like($@, qr/^EV::Etcd->new: tls: no ca_file given and no system CA certificates found/,
         'no ca_file and no system roots: croaks in new');
}

is_deeply([ map { "$_->{what}: $_->{n}" } grep { $_->{n} != 1 } @records ], [],
          'every request called back exactly once');

done_testing;
