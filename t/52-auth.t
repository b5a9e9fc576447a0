use strict;
use warnings;
use Test::More;
use IO::Socket::INET ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "AUTH METHODS" and "AUTHENTICATION": users, roles, permissions, auth_enable/disable,
# authenticate and the stored token, user/password clients that log in by
# themselves and renew a stale token (single-flight), recovery after
# auth_disable, and no secret in any error. A private member: auth changes
# the whole server.

my $srv = EtcdTest->start;
can_ok('EV::Etcd', qw(authenticate auth_enable auth_disable user_add user_delete user_change_password
                       user_get user_list user_grant_role user_revoke_role role_add role_delete role_get
                       role_list role_grant_permission role_revoke_permission));
my $P   = EtcdTest::prefix();
my @ep  = (endpoints => [ $srv->endpoint ], timeout => 10);
my $cb  = sub { };

my @callers;
sub caller_for {
    my $c = EtcdTest::Caller->new($_[0], timeout => 15);
    push @callers, $c;
    return $c;
}
my $admin_client = EV::Etcd->new(@ep);
my $admin = caller_for($admin_client);

sub croaks_like {
    my ($name, $code, $re) = @_;
    eval { $code->(); 1 } and return fail("$name: croaks");
    like($@, $re, $name);
}

# Number of Authenticate RPCs the member has started (its Prometheus metrics).
sub auth_count {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $srv->client_port, Timeout => 5)
        or return undef;
    print {$s} "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    local $/;
    my $body = <$s> // '';
    my ($n) = $body =~ /^grpc_server_started_total\{grpc_method="Authenticate",[^}]*\}\s+(\d+)/m;
    return $n;
}

# --- users and roles (auth off) ---------------------------------------------------

my $ul = $admin->ok_call('user_list (empty)', 'user_list');
is_deeply([ sort keys %$ul ], [qw(header users)], 'user_list keys');
is_deeply($ul->{users}, [], 'no users yet');
my $rl = $admin->ok_call('role_list (empty)', 'role_list');
is_deeply($rl->{roles}, [], 'no roles yet');

my $r = $admin->ok_call('user_add root', 'user_add', 'root', 'rootpw');
is_deeply([ keys %$r ], ['header'], 'user_add: header only');
$admin->ok_call('role_add root', 'role_add', 'root');
$admin->ok_call('user_grant_role root root', 'user_grant_role', 'root', 'root');
my $ug = $admin->ok_call('user_get root', 'user_get', 'root');
is_deeply([ sort keys %$ug ], [qw(header roles)], 'user_get keys');
is_deeply($ug->{roles}, ['root'], 'root has the root role');

$admin->ok_call('user_add alice', 'user_add', 'alice', 'alicepw');
$admin->ok_call('user_change_password alice', 'user_change_password', 'alice', 'alicepw2');
$admin->ok_call('user_add tmp', 'user_add', 'tmp', 'tmppw');
$admin->ok_call('role_add app', 'role_add', 'app');
$admin->ok_call('role_add tmp', 'role_add', 'tmp');

# permissions: perm type words, single key (undef), "\0" and explicit ends
my $app = "${P}app/";
(my $app_end = $app) =~ s{/\z}{0};
$admin->ok_call('grant READWRITE on the app prefix', 'role_grant_permission', 'app', 'readwrite', $app, $app_end);
$admin->ok_call('grant WRITE on one key', 'role_grant_permission', 'tmp', 'WRITE', "${P}w", undef);
$admin->ok_call('grant (unknown word) on all keys from', 'role_grant_permission', 'tmp', 'bogus', "${P}z", "\0");
my $rg = $admin->ok_call('role_get app', 'role_get', 'app');
is_deeply([ sort keys %$rg ], [qw(header perm)], 'role_get keys');
is_deeply($rg->{perm}, [ { perm_type => 'READWRITE', key => $app, range_end => $app_end } ], 'app permission');
my $rt = $admin->ok_call('role_get tmp', 'role_get', 'tmp');
my %perm = map { $_->{key} => $_ } @{ $rt->{perm} || [] };
is_deeply($perm{"${P}w"}, { perm_type => 'WRITE', key => "${P}w" }, 'single-key WRITE permission has no range_end');
is_deeply($perm{"${P}z"}, { perm_type => 'READ', key => "${P}z", range_end => "\0" }, 'unknown word means READ; "\\0" range end');

$admin->ok_call('role_revoke_permission single key', 'role_revoke_permission', 'tmp', "${P}w", undef);
my $e = $admin->err_call('revoke a permission not granted', 'role_revoke_permission', 'tmp', "${P}w", undef);
is($e->{code}, 9, 'revoke not granted: FAILED_PRECONDITION');
is($e->{source}, 'rpc', 'revoke not granted: source rpc');
$admin->ok_call('role_revoke_permission with "\0"', 'role_revoke_permission', 'tmp', "${P}z", "\0");
my $rt2 = $admin->ok_call('role_get tmp after revokes', 'role_get', 'tmp');
is_deeply($rt2->{perm}, [], 'no permissions left');

$admin->ok_call('user_grant_role alice app', 'user_grant_role', 'alice', 'app');
$admin->ok_call('user_grant_role alice tmp', 'user_grant_role', 'alice', 'tmp');
$admin->ok_call('user_revoke_role alice tmp', 'user_revoke_role', 'alice', 'tmp');
is_deeply($admin->ok_call('user_get alice', 'user_get', 'alice')->{roles}, ['app'], 'alice has role app only');
is_deeply([ sort @{ $admin->ok_call('role_list', 'role_list')->{roles} || [] } ], [qw(app root tmp)], 'role_list');
is_deeply([ sort @{ $admin->ok_call('user_list', 'user_list')->{users} || [] } ], [qw(alice root tmp)], 'user_list');

$admin->ok_call('role_delete tmp', 'role_delete', 'tmp');
$e = $admin->err_call('role_get of a deleted role', 'role_get', 'tmp');
is($e->{code}, 9, 'deleted role: FAILED_PRECONDITION');
like($e->{message}, qr/role name not found/, 'deleted role: message');
is($e->{source}, 'rpc', 'deleted role: source rpc');
$admin->ok_call('user_delete tmp', 'user_delete', 'tmp');
$e = $admin->err_call('user_get of a deleted user', 'user_get', 'tmp');
like($e->{message}, qr/user name not found/, 'deleted user: message');
$e = $admin->err_call('duplicate role', 'role_add', 'app');
is($e->{code}, 9, 'duplicate role: FAILED_PRECONDITION');

# --- argument checks -------------------------------------------------------------------

croaks_like('user name too large', sub { $admin_client->user_add('u' x 257, 'p', $cb) },
            qr/^username too large: 257 bytes \(max 256\)/);
croaks_like('password too large', sub { $admin_client->user_add('u', 'p' x 4097, $cb) },
            qr/^password too large: 4097 bytes \(max 4096\)/);
croaks_like('role name too large', sub { $admin_client->role_add('r' x 257, $cb) },
            qr/too large: 257 bytes \(max 256\)/);
croaks_like('permission key too large', sub { $admin_client->role_grant_permission('r', 'READ', 'k' x 1048577, undef, $cb) },
            qr/^key too large: 1048577 bytes \(max 1048576\)/);
croaks_like('authenticate password too large', sub { $admin_client->authenticate('u', 'p' x 4097, $cb) },
            qr/^password too large/);
croaks_like('role_grant_permission usage', sub { $admin_client->role_grant_permission('r', 'READ', 'k', $cb) },
            qr/^Usage: EV::Etcd::role_grant_permission\(client, role_name, perm_type, key, range_end, callback\)/);
croaks_like('role_revoke_permission usage', sub { $admin_client->role_revoke_permission('r', 'k', $cb) },
            qr/^Usage: EV::Etcd::role_revoke_permission\(client, role_name, key, range_end, callback\)/);
croaks_like('authenticate usage', sub { $admin_client->authenticate('u', $cb) },
            qr/^Usage: EV::Etcd::authenticate\(client, username, password, callback\)/);
croaks_like('user_list usage', sub { $admin_client->user_list(1, $cb) },
            qr/^Usage: EV::Etcd::user_list\(client, callback\)/);
croaks_like('user_grant_role usage', sub { $admin_client->user_grant_role('u', $cb) },
            qr/^Usage: EV::Etcd::user_grant_role\(client, username, role_name, callback\)/);
croaks_like('auth_enable bad callback', sub { $admin_client->auth_enable('x') },
            qr/^callback must be a code reference/);
croaks_like('callback checked before sizes', sub { $admin_client->user_add('u' x 300, 'p', 'nocb') },
            qr/^callback must be a code reference/);
croaks_like('role_grant_permission bad callback', sub { $admin_client->role_grant_permission('r', 'READ', 'k', undef, {}) },
            qr/^callback must be a code reference/);
croaks_like('user_get as a class method', sub { EV::Etcd->user_get('u', $cb) },
            qr/client is not of type EV::Etcd/);

# --- authenticate while auth is off ---------------------------------------------------------

$e = $admin->err_call('authenticate while auth is disabled', 'authenticate', 'root', 'rootpw');
is($e->{code}, 9, 'auth disabled: FAILED_PRECONDITION');
like($e->{message}, qr/authentication is not enabled/, 'auth disabled: message');
is($e->{source}, 'authenticate', 'auth disabled: source authenticate');

# --- auth on ----------------------------------------------------------------------------------

$admin->ok_call('auth_enable', 'auth_enable');

my $anon = caller_for(EV::Etcd->new(@ep));
$e = $anon->err_call('get without a token', 'get', "${app}k");
is($e->{code}, 3, 'no token: INVALID_ARGUMENT');
like($e->{message}, qr/user name is empty/, 'no token: message');

$e = $admin->err_call('authenticate with a wrong password', 'authenticate', 'root', 'wrongpw');
is($e->{code}, 3, 'wrong password: INVALID_ARGUMENT');
like($e->{message}, qr/authentication failed/, 'wrong password: message');
is($e->{source}, 'authenticate', 'wrong password: source');
$e = $admin->err_call('still no token after a failed authenticate', 'user_list');
like($e->{message}, qr/user name is empty/, 'the failed authenticate stored nothing');

my $tok = $admin->ok_call('authenticate root', 'authenticate', 'root', 'rootpw');
is_deeply([ sort keys %$tok ], [qw(header token)], 'authenticate keys');
ok(defined $tok->{token} && length $tok->{token}, 'a token came back');
my @tokens = ($tok->{token});
is_deeply([ sort @{ $admin->ok_call('user_list with the stored token', 'user_list')->{users} || [] } ],
          [qw(alice root)], 'the token is used from then on');
$admin->err_call('authenticate root with a wrong password again', 'authenticate', 'root', 'wrongpw');
$admin->ok_call('a failed authenticate keeps the previous token', 'user_list');

# a restricted user
my $alice = caller_for(EV::Etcd->new(@ep));
my $at = $alice->ok_call('authenticate alice', 'authenticate', 'alice', 'alicepw2');
push @tokens, $at->{token};
$alice->ok_call('alice writes inside her range', 'put', "${app}a", '1');
$e = $alice->err_call('alice writes outside her range', 'put', "${P}elsewhere", '1');
is($e->{code}, 7, 'outside the range: PERMISSION_DENIED');
is($e->{status}, 'PERMISSION_DENIED', 'outside the range: status');
is($e->{source}, 'put', 'outside the range: source put');
$e = $alice->err_call('alice may not list users', 'user_list');
is($e->{code}, 7, 'user_list as alice: PERMISSION_DENIED');

# a client with user and password logs in by itself
my $creds = caller_for(EV::Etcd->new(@ep, user => 'alice', password => 'alicepw2'));
$creds->ok_call('user/password client writes without authenticate()', 'put', "${app}b", '2');
my $got = $creds->ok_call('user/password client reads', 'get', "${app}b");
is($got->{kvs}[0]{value}, '2', 'value read back');

# wrong credentials: the request fails with the login error, no secret in it
my $bad = caller_for(EV::Etcd->new(@ep, user => 'alice', password => 'not-her-password'));
$e = $bad->err_call('wrong credentials', 'get', "${app}b");
like($e->{message}, qr/authentication failed/, 'wrong credentials: the login error');

# an auth change while tokens are out: simple tokens (etcd 3.4's default)
# take the store's current auth revision, so both kinds of client go on
$admin->ok_call('bump the auth revision', 'role_grant_permission', 'app', 'READ', "${P}ro", undef);
$alice->ok_call('a token-only client after an auth change', 'get', "${app}a");
$creds->ok_call('a user/password client after an auth change', 'get', "${app}a");

# single flight: 20 requests at once on a fresh credentialed client, one login
SKIP: {
    my $before = auth_count();
    skip 'no Authenticate metric on this server', 3 unless defined $before;
    my $many = EV::Etcd->new(@ep, user => 'alice', password => 'alicepw2');
    my @res;
    for my $i (1 .. 20) {
        $many->get("${app}a", sub { push @res, [@_] });
    }
    ok(EtcdTest::run_until(20, sub { @res == 20 }), 'all 20 requests called back');
    is(scalar(grep { $_->[0] && !$_->[1] && $_->[0]{kvs}[0]{value} eq '1' } @res), 20, 'all 20 succeeded');
    is(auth_count() - $before, 1, 'one Authenticate served all 20 (single-flight)');
}

# --- tokens invalidated by a restart (simple tokens live in memory) --------------------------

$srv->restart;
$creds->ok_call('the user/password client survives the restart', 'put', "${app}c", '3');
$e = $admin->err_call('a token-only client after the restart', 'user_list');
like($e->{message}, qr/user name is empty|invalid auth token/, 'its token is gone');
$at = $alice->ok_call('authenticate while holding a token the server forgot', 'authenticate', 'alice', 'alicepw2');
push @tokens, $at->{token};
$alice->ok_call('alice works with her new token', 'get', "${app}a");
my $t2 = $admin->ok_call('authenticate root again', 'authenticate', 'root', 'rootpw');
push @tokens, $t2->{token};

# --- auth_disable: token holders recover ---------------------------------------------------

my $d = $admin->ok_call('auth_disable', 'auth_disable');
is_deeply([ keys %$d ], ['header'], 'auth_disable: header only');
$alice->ok_call('a token-holding client recovers after auth_disable', 'put', "${P}elsewhere", 'free');
$alice->ok_call('and keeps working', 'get', "${P}elsewhere");
$creds->ok_call('the user/password client too', 'get', "${P}elsewhere");
$anon->ok_call('a client without a token works', 'get', "${P}elsewhere");
$admin->ok_call('auth_disable again succeeds', 'auth_disable');

# --- nothing secret in any error --------------------------------------------------------------

EtcdTest::run_until(0.3, sub { 0 });
my @records = map { $_->records } @callers;
my @messages = map { $_->{err}{message} } grep { ref $_->{err} eq 'HASH' } @records;
cmp_ok(scalar @messages, '>', 10, 'errors were collected');
my @secrets = (qw(rootpw alicepw2 wrongpw not-her-password tmppw), grep { defined && length } @tokens);
my @leaks = grep { my $m = $_; grep { index($m, $_) >= 0 } @secrets } @messages;
is_deeply(\@leaks, [], 'no password or token appears in any error message');
is_deeply([ map { $_->{what} } grep { $_->{n} != 1 } @records ], [], 'every callback ran exactly once');

done_testing;
