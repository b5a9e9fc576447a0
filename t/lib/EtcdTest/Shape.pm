package EtcdTest::Shape;

# Shape assertions for response and error hashes (the POD of EV::Etcd,
# sections "RESPONSES" and "ERRORS"),
# and the synchronous-croak check, shared by the test files.

use strict;
use warnings;
use B ();
use Test::More ();

use Exporter 'import';
our @EXPORT_OK = qw(int_ok bool_ok bytes_ok keys_are header_ok kv_ok leader_key_ok
                    error_ok croaks starts_with);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

sub _flags { B::svref_2object($_[0])->FLAGS }

# $h->{$k} is a plain integer (IV, or UV for uint), checked before any numeric use.
sub int_ok {
    my ($h, $k, $name, $unsigned) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    unless (ref $h eq 'HASH' && exists $h->{$k}) {
        Test::More::fail("$name: $k present");
        return;
    }
    my $v = $h->{$k};
    my $is_int = !ref($v) && defined($v) && (_flags(\$h->{$k}) & B::SVf_IOK);
    Test::More::ok($is_int, "$name: $k is a Perl integer")
        or Test::More::diag('value: ' . (defined $v ? $v : 'undef'));
    Test::More::like($v, $unsigned ? qr/^\d+\z/ : qr/^-?\d+\z/,
                     "$name: $k stringifies as a decimal integer");
}

sub bool_ok {
    my ($h, $k, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $v = ref $h eq 'HASH' ? $h->{$k} : undef;
    Test::More::ok(defined $v && !ref $v && (_flags(\$h->{$k}) & B::SVf_IOK)
                   && ($v eq '0' || $v eq '1'), "$name: $k is the integer 0 or 1");
}

sub bytes_ok {
    my ($h, $k, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::ok(ref $h eq 'HASH' && defined $h->{$k} && !ref $h->{$k} && !utf8::is_utf8($h->{$k}),
                   "$name: $k is a byte string");
}

sub keys_are {
    my ($h, $expected, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is_deeply([ sort keys %{ ref $h eq 'HASH' ? $h : {} } ], [ sort @$expected ],
                          "$name: keys are exactly (@{[ sort @$expected ]})");
}

# The four-key header of POD "RESPONSES" with non-zero ids and a positive revision.
sub header_ok {
    my ($h, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $name .= ' header';
    keys_are($h, [qw(cluster_id member_id revision raft_term)], $name);
    int_ok($h, $_, $name, 1) for qw(cluster_id member_id raft_term);
    int_ok($h, 'revision', $name);
    Test::More::cmp_ok($h->{revision} // 0, '>', 0, "$name: revision > 0");
    Test::More::ok(($h->{cluster_id} // 0) != 0 && ($h->{member_id} // 0) != 0,
                   "$name: cluster_id and member_id are set");
}

# The six-key kv hash of POD "RESPONSES", then the expected values.
sub kv_ok {
    my ($kv, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    keys_are($kv, [qw(key value create_revision mod_revision version lease)], $name);
    bytes_ok($kv, $_, $name) for qw(key value);
    int_ok($kv, $_, $name) for qw(create_revision mod_revision version lease);
    Test::More::is($kv->{$_}, $want{$_}, "$name: $_") for sort keys %want;
}

# The leader-key hash of POD "ELECTION METHODS", then the expected values.
sub leader_key_ok {
    my ($lk, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    keys_are($lk, [qw(name key rev lease)], $name);
    bytes_ok($lk, $_, $name) for qw(name key);
    int_ok($lk, $_, $name) for qw(rev lease);
    Test::More::is($lk->{$_}, $want{$_}, "$name: $_") for sort keys %want;
}

# The five-key error hash of POD "ERRORS": code, status, source and retryable
# exactly; message equal to a string or matching a regex.
my %RETRYABLE = map { $_ => 1 } 4, 8, 10, 13, 14;
sub error_ok {
    my ($e, $name, %want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    keys_are($e, [qw(code status message source retryable)], $name);
    for my $k (qw(code status source)) {
        Test::More::is($e->{$k}, $want{$k}, "$name: $k") if exists $want{$k};
    }
    if (ref $want{message} eq 'Regexp') {
        Test::More::like($e->{message}, $want{message}, "$name: message");
    }
    elsif (exists $want{message}) {
        Test::More::is($e->{message}, $want{message}, "$name: message");
    }
    Test::More::is($e->{retryable}, $RETRYABLE{ $e->{code} // -1 } ? 1 : 0, "$name: retryable flag");
}

# $code->() must die with a message matching $re.
sub croaks {
    my ($name, $code, $re) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = eval { $code->(); 1 };
    Test::More::ok(!$ok, "$name croaks") or Test::More::diag('returned normally');
    Test::More::like($@, $re, "$name: message");
}

sub starts_with { my $text = shift; return qr/^\Q$text\E/ }

1;

__END__

=head1 NAME

EtcdTest::Shape - shape checks for EV::Etcd responses, errors and croaks

=head1 SYNOPSIS

    use EtcdTest::Shape qw(:all);
    header_ok($resp->{header}, 'put');
    kv_ok($resp->{kvs}[0], 'get', key => $k, value => 'v');
    error_ok($err, 'revoke unknown', code => 5, status => 'NOT_FOUND',
             message => 'etcdserver: requested lease not found', source => 'lease_revoke');
    croaks('lease_grant()', sub { $client->lease_grant() },
           starts_with('Usage: EV::Etcd::lease_grant(client, ttl, callback)'));

=head1 FUNCTIONS

C<int_ok($h, $key, $name, $unsigned)>, C<bool_ok>, C<bytes_ok>,
C<keys_are($h, \@keys, $name)>, C<header_ok($header, $name)>,
C<kv_ok($kv, $name, %expected)>, C<leader_key_ok($leader, $name, %expected)>,
C<error_ok($err, $name, %expected)> (C<message> may be a string or a regex;
C<retryable> is checked against C<code>), C<croaks($name, $code, $regex)>,
C<starts_with($text)> (a regex anchored at the start).

=cut
