package EtcdTest::Calls;

# The catalogue of one well-formed call per method (EtcdTest::method_calls,
# call_method), run by the fork, destroy and bad-input tests.

use strict;
use warnings;

# One well-formed argument list (without the callback) for every request
# method of EV::Etcd, keys under $prefix: [method, args...].  Methods that
# only exist on newer builds are included when EV::Etcd->can them.
sub method_calls {
    my ($p) = @_;
    my @calls = (
        [ get => "${p}k" ], [ get_all => "${p}k", { prefix => 1 } ],
        [ put => "${p}k", 'v' ], [ delete => "${p}k" ],
        [ compact => 1 ], [ txn => [], [], [] ], [ watch => "${p}w" ],
        [ lease_grant => 5 ], [ lease_revoke => 1 ], [ lease_time_to_live => 1 ],
        [ lease_leases => () ], [ lease_keepalive => 1 ], [ lease_keepalive_start => 1 ],
        [ lock => "${p}l", 0 ], [ unlock => "${p}l" ],
        [ election_campaign => "${p}e", 1, 'v' ],
        [ election_proclaim => { name => "${p}e", key => "${p}e/1", rev => 1, lease => 1 }, 'v' ],
        [ election_leader => "${p}e" ], [ election_observe => "${p}e" ],
        [ election_resign => { name => "${p}e", key => "${p}e/1", rev => 1, lease => 1 } ],
        [ member_list => () ], [ member_add => ['http://127.0.0.1:1'] ],
        [ member_remove => 1 ], [ member_update => 1, ['http://127.0.0.1:1'] ],
        [ member_promote => 1 ], [ status => () ], [ alarm => 'GET' ],
        [ defragment => () ], [ hash => () ], [ hash_kv => () ], [ move_leader => 1 ],
        [ downgrade => 'validate', '3.4' ],
        [ auth_status => () ], [ authenticate => 'u', 'p' ],
        [ auth_enable => () ], [ auth_disable => () ],
        [ user_add => 'u', 'p' ], [ user_delete => 'u' ],
        [ user_change_password => 'u', 'p' ], [ user_get => 'u' ], [ user_list => () ],
        [ user_grant_role => 'u', 'r' ], [ user_revoke_role => 'u', 'r' ],
        [ role_add => 'r' ], [ role_delete => 'r' ], [ role_get => 'r' ], [ role_list => () ],
        [ role_grant_permission => 'r', 'READ', "${p}k", undef ],
        [ role_revoke_permission => 'r', "${p}k", undef ],
        [ snapshot => sub { } ],
        [ stm => sub { $_[0]->commit } ],
    );
    require EV::Etcd;
    return grep { EV::Etcd->can($_->[0]) } @calls;
}

# Calls $client->$method(@args, $cb) for one method_calls entry; returns
# what the method returns (a handle for watch and the streaming methods).
sub call_method {
    my ($client, $call, $cb) = @_;
    my ($method, @args) = @$call;
    return $client->$method(@args, $cb);
}

1;
