package EtcdTest::PKI;

# Certificates for the TLS tests (EtcdTest::make_pki, need_openssl).

use strict;
use warnings;

use Carp qw(croak);
use File::Spec ();
use File::Temp ();

sub openssl_binary { EtcdTest::_find_program('openssl') }

# Like need_etcd, for the openssl command.
sub need_openssl {
    return 1 if defined openssl_binary();
    require Test::More;
    Test::More::BAIL_OUT('openssl not found (CI is set): install openssl') if EtcdTest::_ci();
    my $why = 'openssl not available';
    my $tb  = Test::More->builder;
    die "$why\n" if $tb->has_plan || $tb->current_test;
    Test::More::plan(skip_all => $why);
}

# Creates in $dir (default: a temporary directory living as long as the
# process) a test CA, a server certificate for 127.0.0.1 and localhost, a
# client certificate, and a second CA unrelated to the first.  Returns a
# hash of file names: ca, ca_key, server_cert, server_key, client_cert,
# client_key, other_ca.
my @PKI_DIRS;
sub make_pki {
    my ($dir) = @_;
    my $openssl = openssl_binary() // croak 'EtcdTest: openssl not found';
    unless (defined $dir) {
        push @PKI_DIRS, File::Temp->newdir('ev-etcd-pki-XXXXXX', TMPDIR => 1, CLEANUP => 1);
        $dir = "$PKI_DIRS[-1]";
    }
    my %f = map { $_ => File::Spec->catfile($dir, "$_.pem") }
        qw(ca ca_key server_cert server_key server_csr client_cert client_key client_csr
           other_ca other_ca_key);
    my $ext = File::Spec->catfile($dir, 'ext.cnf');
    open my $fh, '>', $ext or croak "EtcdTest: $ext: $!";
    print {$fh} "[server]\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n"
              . "extendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
              . "[client]\nextendedKeyUsage = clientAuth\nbasicConstraints = CA:FALSE\n";
    close $fh;
    my @key = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes');
    my $run = sub {
        my $out = EtcdTest::_capture($openssl, @_);
        croak "EtcdTest: openssl @_[0..1] failed: $out" if $?;
    };
    for my $ca ([ 'ca', 'EV-Etcd test CA' ], [ 'other_ca', 'EV-Etcd unrelated CA' ]) {
        my ($n, $cn) = @$ca;
        $run->('req', '-x509', @key, '-days', 30, '-subj', "/CN=$cn",
               '-keyout', $f{"${n}_key"}, '-out', $f{$n});
    }
    for my $leaf ([ 'server', 'etcd test server' ], [ 'client', 'ev-etcd test client' ]) {
        my ($n, $cn) = @$leaf;
        $run->('req', '-new', @key, '-subj', "/CN=$cn",
               '-keyout', $f{"${n}_key"}, '-out', $f{"${n}_csr"});
        $run->('x509', '-req', '-in', $f{"${n}_csr"}, '-CA', $f{ca}, '-CAkey', $f{ca_key},
               '-CAcreateserial', '-days', 30, '-extfile', $ext, '-extensions', $n,
               '-out', $f{"${n}_cert"});
    }
    delete @f{qw(server_csr client_csr other_ca_key)};
    return \%f;
}

1;
