use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "AUTHENTICATION": with auth on, the token goes with the streams too
# (watch, lease keepalives, observe), and a client with credentials keeps
# its streams across a restart that invalidates every token.

my $srv   = EtcdTest->start;
my $ep    = $srv->endpoint;
my $P     = EtcdTest::prefix();
my $app   = "${P}app/";
my $end   = "${P}app0";
my $admin = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [$ep], timeout => 5));

$admin->ok_call("user_add $_->[0]", 'user_add', @$_) for [ root => 'rootpw' ], [ app => 'apppw' ];
$admin->ok_call('role_add root', 'role_add', 'root');
$admin->ok_call('role_add app', 'role_add', 'app');
$admin->ok_call('grant root', 'user_grant_role', 'root', 'root');
$admin->ok_call('grant app', 'user_grant_role', 'app', 'app');
$admin->ok_call('app may use its prefix', 'role_grant_permission', 'app', 'READWRITE', $app, $end);
$admin->ok_call('auth_enable', 'auth_enable');

my $c  = EV::Etcd->new(endpoints => [$ep], timeout => 5, user => 'app', password => 'apppw');
my $kv = EtcdTest::Caller->new($c);

# watch
my (@events, @werrs, $created);
my $w = $c->watch($app, { prefix => 1 }, sub {
    my ($r, $e) = @_;
    return push @werrs, $e if $e;
    $created++ if $r->{created};
    push @events, map { $_->{kv}{value} } @{ $r->{events} };
});
ok(EtcdTest::run_until(5, sub { $created }), 'a watch with a token is created');
$kv->ok_call('put 1', 'put', "${app}k", 'one');
ok(EtcdTest::run_until(5, sub { @events }), 'and delivers');

# a watch outside the user's range is refused: one CANCELLED error
my @denied;
$c->watch("${P}other", sub { push @denied, $_[1] if $_[1] });
ok(EtcdTest::run_until(5, sub { @denied }), 'a watch outside the permitted range fails');
is($denied[0] && $denied[0]{code}, 1, 'as a CANCELLED error');
like($denied[0] && $denied[0]{message}, qr/permission denied/i, 'saying permission denied');

# leases: grant, one-shot keepalive, managed keepalive
my $lease = $kv->ok_call('lease_grant', 'lease_grant', 6)->{id};
my ($once) = $kv->call('lease_keepalive', $lease);
cmp_ok($once && $once->{ttl}, '>', 0, 'one-shot keepalive with a token');
my ($renewals, @lost) = (0);
my $ka = $c->lease_keepalive_start($lease, { on_lost => sub { push @lost, $_[0] } }, sub { $renewals++ });
ok(EtcdTest::run_until(5, sub { $renewals }), 'managed keepalive renews with a token');

# the member restarts: every simple token is gone; streams re-authenticate
$srv->kill;
EtcdTest::run_until(0.5, sub { 0 });
$srv->restart;
my $n = $renewals;
ok(EtcdTest::run_until(15, sub { $renewals > $n }), 'renewals go on after the restart (new token)');
$kv->ok_call('put 2 after the restart', 'put', "${app}k", 'two');
ok(EtcdTest::run_until(10, sub { @events >= 2 }), 'the watch resumed after the restart');
is(join(',', @events), 'one,two', 'every event once');
is_deeply(\@werrs, [], 'the watch reported no error');
is_deeply(\@lost, [], 'the lease was not lost');
cmp_ok($created, '>=', 2, 'the watch was re-created');
$ka->stop;
$w->cancel(sub {});

# no secret in any error
my $bad = EV::Etcd->new(endpoints => [$ep], timeout => 5, user => 'app', password => 'wrong-secret-pw');
my @errs;
$bad->watch($app, sub { push @errs, $_[1] if $_[1] });
$bad->lease_keepalive(1, sub { push @errs, $_[1] if $_[1] });
ok(EtcdTest::run_until(10, sub { @errs >= 2 }), 'streams with a wrong password fail');
like($errs[0] && $errs[0]{message}, qr/authentication failed/, 'with the login error');
is(scalar(grep { ($_->{message} // '') =~ /wrong-secret-pw/ } @errs), 0, 'the password appears in no error');

$admin = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [$ep], timeout => 5, user => 'root', password => 'rootpw'));
$admin->ok_call('auth_disable', 'auth_disable');
undef $c;
undef $bad;
$srv->stop;
done_testing;
