use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "downgrade": validate, enable and cancel a cluster downgrade (etcd
# 3.5 and later); a clear error from servers without the call.

my @eps = EtcdTest::endpoints();
my $c   = EV::Etcd->new(endpoints => [@eps], timeout => 5);
my $cc  = EtcdTest::Caller->new($c);
my ($major, $minor) = EtcdTest::etcd_version();
ok(defined $minor, "the server's version is known ($major.$minor)");

ok(!eval { $c->downgrade('rollback', '3.4', sub { }); 1 }, 'an unknown action croaks');
like($@, qr/^downgrade: invalid action: rollback \(expected validate, enable or cancel\)/, 'naming it');
ok(!eval { $c->downgrade('validate', sub { }); 1 }, 'a missing version croaks');
like($@, qr/^Usage: EV::Etcd::downgrade\(client, action, version, callback\)/, 'with the usage');

my $st = $cc->ok_call('status', 'status');
(my $cluster = $st->{version} // '') =~ s/^(\d+\.\d+).*/$1.0/;
my $target = $major . '.' . ($minor - 1);

if ($major > 3 || ($major == 3 && $minor >= 5)) {
    my $v = $cc->ok_call("validate a downgrade to $target", 'downgrade', 'validate', $target);
    is($v->{version}, $cluster, "the answer names the cluster version ($cluster)");
    ok($v->{header}{revision}, 'with a header');
    my $e = $cc->err_call('validate a downgrade two minors down', 'downgrade', 'VALIDATE',
                          $major . '.' . ($minor - 2));
    is($e->{status}, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT');
    like($e->{message}, qr/invalid downgrade target version/, "etcd's reason");
    is($e->{source}, 'downgrade', 'source downgrade');
    $e = $cc->err_call('cancel without a downgrade in progress', 'downgrade', 'cancel', undef);
    is($e->{status}, 'FAILED_PRECONDITION', 'FAILED_PRECONDITION');
    like($e->{message}, qr/no inflight downgrade job/, "etcd's reason");
    # (enable is left out: etcd 3.5 records the job but times out the
    # request; cluster downgrades work from etcd 3.6 on)
}
else {
    for my $action (qw(validate enable cancel)) {
        my $e = $cc->err_call("$action on etcd $major.$minor", 'downgrade', $action, '3.3');
        is($e->{status}, 'UNIMPLEMENTED', 'UNIMPLEMENTED');
        like($e->{message}, qr/^downgrade needs etcd 3\.5 or later \(the server said: .*Downgrade/,
             'says what it needs');
        is($e->{source}, 'downgrade', 'source downgrade');
    }
}

EtcdTest::Caller->exactly_once($cc);
done_testing;
