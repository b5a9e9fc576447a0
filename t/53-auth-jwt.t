use strict;
use warnings;
use Test::More;
use File::Temp ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "AUTHENTICATION" with JWT tokens, which carry the auth revision and expire:
# a user/password client renews a token that went stale ("revision of auth
# store is old") or expired ("invalid auth token") and retries the call; a
# client holding a token it cannot renew reports the server's error.

EtcdTest::need_etcd();
my $openssl = EtcdTest::_find_program('openssl');
unless ($openssl) {
    # Under CI a missing tool is a broken setup, not a reason to skip.
    BAIL_OUT('openssl not found (needed to make the JWT signing key)') if $ENV{CI};
    plan skip_all => 'openssl not found (needed to make the JWT signing key)';
}

my $dir  = File::Temp->newdir('ev-etcd-jwt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $priv = "$dir/jwt.key";
my $pub  = "$dir/jwt.pub";
# (openssl's chatter is captured, not shown)
EtcdTest::_capture($openssl, 'genrsa', '-out', $priv, '2048');
EtcdTest::_capture($openssl, 'rsa', '-in', $priv, '-pubout', '-out', $pub);
ok(-s $priv && -s $pub, 'JWT key pair made') or BAIL_OUT('openssl could not make an RSA key pair');

my $ttl = 3;
my $srv = EtcdTest->start(extra_args => [
    '--auth-token' => "jwt,pub-key=$pub,priv-key=$priv,sign-method=RS256,ttl=${ttl}s",
]);
my $P  = EtcdTest::prefix();
my @ep = (endpoints => [ $srv->endpoint ], timeout => 10);

my $admin = EtcdTest::Caller->new(EV::Etcd->new(@ep));
$admin->ok_call('user_add root', 'user_add', 'root', 'rootpw');
$admin->ok_call('user_grant_role root root', 'user_grant_role', 'root', 'root');
$admin->ok_call('user_add bob', 'user_add', 'bob', 'bobpw');
$admin->ok_call('role_add rw', 'role_add', 'rw');
$admin->ok_call('grant rw on the test prefix', 'role_grant_permission', 'rw', 'READWRITE', $P, "${P}\xff");
$admin->ok_call('user_grant_role bob rw', 'user_grant_role', 'bob', 'rw');
$admin->ok_call('auth_enable', 'auth_enable');
my $tok = $admin->ok_call('authenticate root', 'authenticate', 'root', 'rootpw');
like($tok->{token} // '', qr/^[\w-]+\.[\w-]+\.[\w-]+\z/, 'a JWT came back');

my $creds = EtcdTest::Caller->new(EV::Etcd->new(@ep, user => 'bob', password => 'bobpw'));
my $plain = EtcdTest::Caller->new(EV::Etcd->new(@ep));
$plain->ok_call('authenticate bob', 'authenticate', 'bob', 'bobpw');
$creds->ok_call('user/password client: first write', 'put', "${P}a", '1');
$plain->ok_call('token client: first write', 'put', "${P}b", '1');

# an auth change makes every outstanding JWT stale
$admin->ok_call('change the auth store', 'role_grant_permission', 'rw', 'READ', "${P}x", undef);
my $e = $plain->err_call('token client after the auth change', 'put', "${P}b", '2');
like($e->{message}, qr/auth store is old|auth store revision is old|revision in header is old/,
     'stale token: the server says so (each version in its words)');
is($e->{source}, 'put', 'stale token: source put');
$creds->ok_call('user/password client renews the stale token and retries', 'put', "${P}a", '2');
my $got = $creds->ok_call('read back', 'get', "${P}a");
is($got->{kvs}[0]{value}, '2', 'the retried write landed once');
is($got->{kvs}[0]{version}, 2, 'exactly two writes of the key');

# expiry: after the TTL the token is invalid; credentials renew it
EtcdTest::run_until($ttl + 1.5, sub { 0 });
$creds->ok_call('user/password client after the token expired', 'get', "${P}a");
$e = $plain->err_call('token client after expiry', 'get', "${P}b");
ok($e->{code} == 16 || $e->{code} == 3, 'expired token without credentials: an auth error')
    or diag(explain($e));

EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { $_->{what} } grep { $_->{n} != 1 } map { $_->records } $admin, $creds, $plain ],
          [], 'every callback ran exactly once');

done_testing;
