use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "ERRORS" (source labels) and "RETRIES AND FAILOVER" (nothing listening):
# every cluster, maintenance and auth method against a port nobody listens on
# calls back exactly once, promptly, with an UNAVAILABLE error hash carrying
# the method's source label. Also for a client with user/password (its login
# fails the same way) and without a server at all.

my $port = EtcdTest::closed_port();
my @ep   = (endpoints => ["127.0.0.1:$port"], timeout => 1, max_retries => 0);

my @calls = (
    [ member_list            => 'member_list' ],
    [ member_add             => 'member_add', ['http://127.0.0.1:1'] ],
    [ member_add             => 'member_add', ['http://127.0.0.1:1'], { is_learner => 1 } ],
    [ member_remove          => 'member_remove', '1' ],
    [ member_update          => 'member_update', '1', ['http://127.0.0.1:1'] ],
    [ member_promote         => 'member_promote', '1' ],
    [ alarm                  => 'alarm', 'GET' ],
    [ alarm                  => 'alarm', 'activate', { alarm => 'NOSPACE' } ],
    [ defragment             => 'defragment' ],
    [ hash_kv                => 'hash_kv' ],
    [ hash_kv                => 'hash_kv', 5 ],
    [ move_leader            => 'move_leader', '18446744073709551615' ],
    [ auth_status            => 'auth_status' ],
    [ authenticate           => 'authenticate', 'u', 'secret-pw' ],
    [ rpc                    => 'auth_enable' ],
    [ rpc                    => 'auth_disable' ],
    [ rpc                    => 'user_add', 'u', 'secret-pw' ],
    [ rpc                    => 'user_delete', 'u' ],
    [ rpc                    => 'user_change_password', 'u', 'secret-pw' ],
    [ rpc                    => 'user_get', 'u' ],
    [ rpc                    => 'user_list' ],
    [ rpc                    => 'user_grant_role', 'u', 'r' ],
    [ rpc                    => 'user_revoke_role', 'u', 'r' ],
    [ rpc                    => 'role_add', 'r' ],
    [ rpc                    => 'role_delete', 'r' ],
    [ rpc                    => 'role_get', 'r' ],
    [ rpc                    => 'role_list' ],
    [ rpc                    => 'role_grant_permission', 'r', 'READ', 'k', undef ],
    [ rpc                    => 'role_revoke_permission', 'r', 'k', "\0" ],
);

for my $setup ([ 'plain client', [] ], [ 'user/password client', [ user => 'u', password => 'secret-pw' ] ]) {
    my ($what, $extra) = @$setup;
    my $client = EV::Etcd->new(@ep, @$extra);
    my $caller = EtcdTest::Caller->new($client, timeout => 5);
    for my $c (@calls) {
        my ($source, $method, @args) = @$c;
        my $t0 = Time::HiRes::time();
        my $e = $caller->err_call("$what: $method fails", $method, @args);
        my $took = Time::HiRes::time() - $t0;
        cmp_ok($took, '<', 3, "$what: $method called back within 3 s");
        is_deeply([ sort keys %$e ], [qw(code message retryable source status)], "$what: $method error keys");
        is($e->{code}, 14, "$what: $method UNAVAILABLE");
        is($e->{retryable}, 1, "$what: $method retryable");
        is($e->{source}, $source, "$what: $method source $source");
        unlike($e->{message} // '', qr/secret-pw/, "$what: $method message has no password");
    }
    EtcdTest::run_until(0.3, sub { 0 });
    is_deeply([ map { $_->{what} } grep { $_->{n} != 1 } $caller->records ], [], "$what: every callback ran exactly once");
}

done_testing;
