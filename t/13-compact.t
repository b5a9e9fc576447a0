use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "compact"; reads at compacted and future revisions (POD "get", option
# revision) and their OUT_OF_RANGE errors (POD "ERRORS").
# Compaction is store-wide and cannot be undone, so it runs against a private member
# of its own (never against the shared member or EV_ETCD_TEST_ENDPOINTS, where other
# test files may be reading history at the same time).

my $srv    = EtcdTest->start;
my $P      = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 20);

# ok_call / err_call: t/lib/EtcdTest.pm (EtcdTest::Caller); 30 s per callback
my $caller = EtcdTest::Caller->new($client, timeout => 30, check_argc => 0);
sub keys_are {
    my ($h, $expected, $name) = @_;
    is_deeply([ sort keys %{ $h || {} } ], [ sort @$expected ], "$name: keys are exactly (@{[ sort @$expected ]})");
}
sub out_of_range_ok {
    my ($e, $source, $message, $name) = @_;
    keys_are($e, [qw(code status message source retryable)], "$name error");
    is($e->{code},      11,             "$name: code 11");
    is($e->{status},    'OUT_OF_RANGE', "$name: status OUT_OF_RANGE");
    is($e->{message},   $message,       "$name: message");
    is($e->{source},    $source,        "$name: source $source");
    is($e->{retryable}, 0,              "$name: not retryable");
}

my $COMPACTED = 'etcdserver: mvcc: required revision has been compacted';
my $FUTURE    = 'etcdserver: mvcc: required revision is a future revision';
my $K         = "${P}c/key";

my @rev;
for my $i (1 .. 4) {
    my $r = $caller->ok_call("put v$i", 'put', $K, "v$i");
    push @rev, $r->{header}{revision};
}
cmp_ok($rev[$_], '>', $rev[ $_ - 1 ], "revision $_ is higher than revision " . ($_ - 1)) for 1 .. 3;

# before compaction every historical revision is readable
for my $i (0 .. 3) {
    my $r = $caller->ok_call("get at revision of v" . ($i + 1), 'get', $K, { revision => $rev[$i] });
    is($r->{kvs}[0]{value}, 'v' . ($i + 1), "historical value v" . ($i + 1) . " before compaction");
}

# compact at the revision of v2
my $r = $caller->ok_call('compact', 'compact', $rev[1]);
keys_are($r, ['header'], 'compact response');
keys_are($r->{header}, [qw(cluster_id member_id revision raft_term)], 'compact header');
cmp_ok($r->{header}{revision}, '>=', $rev[3], 'compact header revision is the current revision');

{
    my $e = $caller->err_call('get below the compaction revision', 'get', $K, { revision => $rev[0] });
    out_of_range_ok($e, 'range', $COMPACTED, 'read at compacted revision');
}
$r = $caller->ok_call('get at the compaction revision', 'get', $K, { revision => $rev[1] });
is($r->{kvs}[0]{value}, 'v2', 'the compaction revision itself is still readable');
$r = $caller->ok_call('get after the compaction revision', 'get', $K, { revision => $rev[2] });
is($r->{kvs}[0]{value}, 'v3', 'later revisions are still readable');
$r = $caller->ok_call('get latest', 'get', $K);
is($r->{kvs}[0]{value}, 'v4', 'latest value unaffected');
is($r->{kvs}[0]{version}, 4, 'version count unaffected by compaction');

# compacting at or below the current compaction revision fails
{
    my $e = $caller->err_call('compact at the same revision again', 'compact', $rev[1]);
    out_of_range_ok($e, 'compact', $COMPACTED, 'repeated compaction');
    $e = $caller->err_call('compact below the compaction revision', 'compact', $rev[0]);
    out_of_range_ok($e, 'compact', $COMPACTED, 'compaction below the compaction revision');
    $e = $caller->err_call('compact below with options', 'compact', $rev[0], { physical => 1 });
    out_of_range_ok($e, 'compact', $COMPACTED, 'physical compaction below the compaction revision');
}

# physical compaction waits until it is applied; afterwards the old revision is gone
$r = $caller->ok_call('physical compact', 'compact', $rev[2], { physical => 1 });
keys_are($r, ['header'], 'physical compact response');
{
    my $e = $caller->err_call('get at the old compaction revision', 'get', $K, { revision => $rev[1] });
    out_of_range_ok($e, 'range', $COMPACTED, 'read at the previous compaction revision');
}
$r = $caller->ok_call('get at the new compaction revision', 'get', $K, { revision => $rev[2] });
is($r->{kvs}[0]{value}, 'v3', 'the new compaction revision is readable');

# physical => 0 is a plain compaction
$r = $caller->ok_call('compact with physical => 0', 'compact', $rev[3], { physical => 0 });
keys_are($r, ['header'], 'compact with physical => 0');

# future revisions
{
    my $cur = $caller->ok_call('get current revision', 'get', $K)->{header}{revision};
    my $e = $caller->err_call('get at a future revision', 'get', $K, { revision => $cur + 1000 });
    out_of_range_ok($e, 'range', $FUTURE, 'read at a future revision');
    $e = $caller->err_call('compact at a future revision', 'compact', $cur + 1000);
    out_of_range_ok($e, 'compact', $FUTURE, 'compaction at a future revision');
}

# deletes and compaction: a deleted key is gone at the latest revision, history before is compacted
{
    my $d = $caller->ok_call('delete key', 'delete', $K);
    is($d->{deleted}, 1, 'deleted the key');
    $caller->ok_call('compact at the delete', 'compact', $d->{header}{revision}, { physical => 1 });
    my $g = $caller->ok_call('get deleted key', 'get', $K);
    is($g->{count}, 0, 'deleted key is gone after compaction');
    my $e = $caller->err_call('read before the delete', 'get', $K, { revision => $rev[3] });
    out_of_range_ok($e, 'range', $COMPACTED, 'read before the delete after compaction');
}

$caller->ok_call('cleanup', 'delete', $P, { prefix => 1 });
EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { "$_->{what}:$_->{n}" } grep { $_->{n} != 1 } $caller->records ], [], 'every callback was called exactly once');
undef $client;
$srv->stop;

done_testing;
