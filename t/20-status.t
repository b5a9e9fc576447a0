use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(int_ok bool_ok keys_are header_ok);
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

# int_ok, bool_ok, keys_are, header_ok: t/lib/EtcdTest/Shape.pm

my $st = status_of($client);
my $s  = $st->{resp} || {};

# types first (before anything converts the values): each int_ok checks the
# integer flag before it stringifies the value; the uint fields (and the sizes)
# stringify as unsigned decimals
int_ok($s, $_, 'status', 1) for qw(db_size leader raft_index raft_term raft_applied_index db_size_in_use);
bool_ok($s, 'is_learner', 'status');
# the four header keys, integer ids (unsigned decimals), revision > 0, ids set
my $h = $s->{header} || {};
header_ok($h, 'status');

keys_are($s, [qw(header version db_size leader raft_index raft_term raft_applied_index db_size_in_use is_learner)],
         'status (no errors key on a healthy node)');
ok(!exists $s->{errors}, 'errors is absent on a healthy node');

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
