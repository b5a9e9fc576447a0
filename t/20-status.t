use strict;
use warnings;
use Test::More;
use B ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "status"; POD "RESPONSES": header, uint conversion.

my @eps    = EtcdTest::endpoints();
my $srv    = EtcdTest::server();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);

sub status_of {
    my ($c) = @_;
    my ($n, $argc, $resp, $err) = (0);
    $c->status(sub { $n++; $argc = @_; ($resp, $err) = @_ if $n == 1 });
    ok(EtcdTest::run_until(15, sub { $n }), 'status called back within 15 s') or return {};
    is($argc, 2, 'status callback got two arguments');
    ok(ref $resp eq 'HASH' && !defined $err, 'status succeeded') or diag(explain($err));
    return { resp => $resp, calls => \$n };
}

sub is_int_sv {
    my ($h, $k) = @_;
    return exists $h->{$k} && defined $h->{$k} && !ref $h->{$k}
        && (B::svref_2object(\$h->{$k})->FLAGS & B::SVf_IOK) ? 1 : 0;
}

my $st = status_of($client);
my $s  = $st->{resp} || {};

# types first (before anything converts the values)
my %type_ok = map { $_ => is_int_sv($s, $_) } qw(db_size leader raft_index raft_term raft_applied_index db_size_in_use is_learner);
my %htype_ok = map { $_ => is_int_sv($s->{header} || {}, $_) } qw(cluster_id member_id revision raft_term);
ok($type_ok{$_}, "$_ is a Perl integer") for sort keys %type_ok;
ok($htype_ok{$_}, "header $_ is a Perl integer") for sort keys %htype_ok;

is_deeply([ sort keys %$s ],
          [ sort qw(header version db_size leader raft_index raft_term raft_applied_index db_size_in_use is_learner) ],
          'status keys are exactly the documented ones (no errors key on a healthy node)');
ok(!exists $s->{errors}, 'errors is absent on a healthy node');

my $h = $s->{header} || {};
is_deeply([ sort keys %$h ], [ sort qw(cluster_id member_id revision raft_term) ], 'header keys');

# uint fields stringify as unsigned decimals
for my $k (qw(leader raft_index raft_term raft_applied_index)) {
    like($s->{$k}, qr/^\d+\z/, "$k stringifies as an unsigned decimal");
}
for my $k (qw(cluster_id member_id raft_term)) {
    like($h->{$k}, qr/^\d+\z/, "header $k stringifies as an unsigned decimal");
}
like($h->{revision}, qr/^\d+\z/, 'header revision is a decimal');
like($s->{db_size},        qr/^\d+\z/, 'db_size is a decimal');
like($s->{db_size_in_use}, qr/^\d+\z/, 'db_size_in_use is a decimal');

# values
like($s->{version}, qr/^\d+\.\d+\.\d+/, 'version looks like x.y.z');
ok(defined $s->{version} && !ref $s->{version}, 'version is a plain string');
cmp_ok($s->{db_size}, '>', 0, 'db_size > 0');
cmp_ok($s->{db_size_in_use}, '>', 0, 'db_size_in_use > 0');
cmp_ok($s->{db_size_in_use}, '<=', $s->{db_size}, 'db_size_in_use <= db_size');
ok($s->{leader} != 0, 'leader is set');
cmp_ok($s->{raft_index}, '>', 0, 'raft_index > 0');
cmp_ok($s->{raft_applied_index}, '>', 0, 'raft_applied_index > 0');
cmp_ok($s->{raft_term}, '>', 0, 'raft_term > 0');
is($s->{raft_term}, $h->{raft_term}, 'raft_term equals the header raft_term');
is($s->{is_learner}, 0, 'is_learner is 0');
ok($h->{cluster_id} != 0, 'cluster_id is set');
ok($h->{member_id} != 0, 'member_id is set');
cmp_ok($h->{revision}, '>', 0, 'header revision > 0');

SKIP: {
    skip 'external endpoints may be a multi-member cluster', 1 unless $srv;
    is($s->{leader}, $h->{member_id}, 'single node: leader is the answering member');
}

# the same numbers as etcdctl reports (exact unsigned 64-bit values)
SKIP: {
    skip 'external endpoints: not comparing with etcdctl', 3 unless $srv;
    my ($etcdctl) = grep { -x "$_/etcdctl" } split /:/, $ENV{PATH} // '';
    skip 'etcdctl not found in PATH', 3 unless $etcdctl;
    my $ep = $srv->endpoint;
    local $ENV{ETCDCTL_API} = 3;
    my $json = `"$etcdctl/etcdctl" --endpoints=$ep endpoint status -w json 2>/dev/null`;
    my ($cid) = $json =~ /"cluster_id":(\d+)/;
    my ($mid) = $json =~ /"member_id":(\d+)/;
    my ($lid) = $json =~ /"leader":(\d+)/;
    skip 'could not parse etcdctl output', 3 unless defined $cid && defined $mid && defined $lid;
    is("$h->{cluster_id}", $cid, 'cluster_id is exactly what etcdctl reports');
    is("$h->{member_id}",  $mid, 'member_id is exactly what etcdctl reports');
    is("$s->{leader}",     $lid, 'leader is exactly what etcdctl reports');
}

# status follows writes: the revision moves on, raft_index too
{
    my ($n, $resp) = (0);
    $client->put(EtcdTest::prefix() . 'status', 'x', sub { $n++; $resp = $_[0] });
    EtcdTest::run_until(15, sub { $n });
    my $put_rev = $resp ? $resp->{header}{revision} : 0;
    my $again = status_of($client)->{resp} || {};
    cmp_ok($again->{header}{revision}, '>=', $put_rev, 'status header revision includes the write');
    cmp_ok($again->{raft_index}, '>', $s->{raft_index}, 'raft_index advanced after a write');
    is($again->{header}{cluster_id}, $h->{cluster_id}, 'cluster_id is stable');
    $n = 0;
    $client->delete(EtcdTest::prefix(), { prefix => 1 }, sub { $n++ });
    EtcdTest::run_until(15, sub { $n });
}

# exactly one callback
EtcdTest::run_until(0.3, sub { 0 });
is(${ $st->{calls} }, 1, 'status callback called exactly once');

done_testing;
