use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(int_ok croaks);
use EV::Etcd;

# POD "CLUSTER METHODS" (member hashes, cluster membership) and "move_leader",
# on a private 3-member cluster.

my @members = EtcdTest->start_cluster(3);
can_ok('EV::Etcd', qw(member_list member_add member_remove member_update member_promote move_leader));
my %by_name = map { $_->name => $_ } @members;
my $client  = EV::Etcd->new(endpoints => [ map { $_->endpoint } @members ], timeout => 10);
my $caller  = EtcdTest::Caller->new($client, timeout => 20);

sub member_ok {
    my ($m, $name) = @_;
    int_ok($m, 'id', $name, 1);
    ok(exists $m->{is_learner} && ($m->{is_learner} eq '0' || $m->{is_learner} eq '1'),
       "$name: is_learner is 0 or 1");
    is(ref $m->{peer_urls},   'ARRAY', "$name: peer_urls is an array");
    is(ref $m->{client_urls}, 'ARRAY', "$name: client_urls is an array");
}

sub ids_of { map { "$_->{id}" } @{ $_[0]{members} || [] } }

# --- member_list -------------------------------------------------------------

my $list = $caller->ok_call('member_list', 'member_list');
is_deeply([ sort keys %$list ], [qw(header members)], 'member_list keys');
is(scalar @{ $list->{members} || [] }, 3, 'three members');
int_ok($list->{header}, $_, 'member_list header', 1) for qw(cluster_id member_id raft_term);
is($list->{header}{revision}, 0, 'cluster header revision is 0');
my %id_of;
for my $m (@{ $list->{members} || [] }) {
    my $name = $m->{name} // '(none)';
    member_ok($m, "member $name");
    is_deeply([ sort keys %$m ], [qw(client_urls id is_learner name peer_urls)], "member $name: keys");
    my $srv = $by_name{$name};
    ok($srv, "member $name is one we started") or next;
    is_deeply($m->{peer_urls},   [ $srv->peer_url ], "member $name: peer_urls");
    is_deeply($m->{client_urls}, [ $srv->url ],      "member $name: client_urls");
    is($m->{is_learner}, 0, "member $name: not a learner");
    $id_of{$name} = "$m->{id}";
}
ok((grep { $_ eq "$list->{header}{member_id}" } ids_of($list)), 'header member_id is one of the member ids');

# each member's own id, as it reports it in its headers, is the listed id
my (%leader_seen, %client_of);
for my $srv (@members) {
    my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
    $client_of{ $srv->name } = $c;
    my $st = EtcdTest::Caller->new($c)->ok_call('status of ' . $srv->name, 'status');
    is("$st->{header}{member_id}", $id_of{ $srv->name }, $srv->name . ': status member_id equals the listed id');
    $leader_seen{"$st->{leader}"}++;
}
is(scalar keys %leader_seen, 1, 'all members agree on the leader');
my ($leader_id) = keys %leader_seen;
my ($leader_name) = grep { $id_of{$_} eq $leader_id } keys %id_of;
ok($leader_name, 'the leader is a listed member');

# --- member_add (learner), promote, update, remove ----------------------------

my $learner_url = 'http://127.0.0.1:' . EtcdTest::free_port();
# etcd accepts membership changes only once every member has been connected
# for 5 s ("unhealthy cluster" until then): retry that one error for a while.
my ($added, $add_err);
for (1 .. 40) {
    ($added, $add_err) = $caller->call('member_add', [$learner_url], { is_learner => 1 });
    last unless $add_err && $add_err->{message} =~ /unhealthy cluster/;
    EtcdTest::run_until(0.5, sub { 0 });
}
ok(ref $added eq 'HASH' && !$add_err, 'member_add learner') or diag(explain($add_err));
$added ||= {};
is_deeply([ sort keys %$added ], [qw(header member members)], 'member_add keys');
my $new = $added->{member} || {};
member_ok($new, 'added member');
ok(!exists $new->{name}, 'a never-started member has no name');
is($new->{is_learner}, 1, 'added as a learner');
is_deeply($new->{peer_urls},   [$learner_url], 'added member peer_urls');
is_deeply($new->{client_urls}, [],             'added member has no client_urls');
is(scalar @{ $added->{members} || [] }, 4, 'member_add returns the full list (4)');
my $new_id = "$new->{id}";
ok((grep { $_ eq $new_id } ids_of($added)), 'the new member is in the list');
ok($new_id ne '0', 'the new member has an id');

my $e = $caller->err_call('promote a learner that is not in sync', 'member_promote', $new_id);
is($e->{code}, 9, 'promote: FAILED_PRECONDITION');
is($e->{status}, 'FAILED_PRECONDITION', 'promote: status name');
like($e->{message}, qr/in sync with leader/, 'promote: server message');
is($e->{source}, 'member_promote', 'promote: source');

my $url2 = 'http://127.0.0.1:' . EtcdTest::free_port();
my $upd = $caller->ok_call('member_update peer URLs', 'member_update', $new_id, [$url2]);
is_deeply([ sort keys %$upd ], [qw(header members)], 'member_update keys');
my ($updated) = grep { "$_->{id}" eq $new_id } @{ $upd->{members} || [] };
is_deeply($updated && $updated->{peer_urls}, [$url2], 'member_update changed the peer URLs');

my $listed = $caller->ok_call('member_list after update', 'member_list');
my ($again) = grep { "$_->{id}" eq $new_id } @{ $listed->{members} || [] };
is_deeply($again && $again->{peer_urls}, [$url2], 'member_list shows the new peer URL');
# etcd 3.4 rewrites the raft attributes on update (is_learner may read 0
# afterwards); what matters here is that both answers agree.
is($updated && $updated->{is_learner}, $again && $again->{is_learner}, 'is_learner agrees between update and list');

my $rm = $caller->ok_call('member_remove the learner', 'member_remove', $new_id);
is_deeply([ sort keys %$rm ], [qw(header members)], 'member_remove keys');
is(scalar @{ $rm->{members} || [] }, 3, 'three members after the removal');
ok(!(grep { $_ eq $new_id } ids_of($rm)), 'the removed member is gone');

# --- unknown ids --------------------------------------------------------------

my $unknown = '18446744073709551557';    # a large unsigned id nobody has
ok(!(grep { $_ eq $unknown } ids_of($list)), 'the unknown id is really unknown');
for my $case (['member_remove'], ['member_update', ['http://127.0.0.1:1']], ['member_promote']) {
    my ($m, @rest) = @$case;
    my $err = $caller->err_call("$m of an unknown id", $m, $unknown, @rest);
    is($err->{code}, 5, "$m: NOT_FOUND");
    is($err->{message}, 'etcdserver: member not found', "$m: message");
    is($err->{source}, $m, "$m: source");
}

# --- argument checks ----------------------------------------------------------

my $cb = sub { };
croaks('member_add with a string', sub { $client->member_add('http://x', $cb) },
            qr/^peer_urls must be an array reference/);
croaks('member_add with a hash', sub { $client->member_add({}, {}, $cb) },
            qr/^peer_urls must be an array reference/);
croaks('member_update with a string', sub { $client->member_update(1, 'http://x', $cb) },
            qr/^peer_urls must be an array reference/);
croaks('member_update with no URL (etcd 3.4 would crash)', sub { $client->member_update(1, [], $cb) },
            qr/^member_update: peer_urls must not be empty/);
croaks('member_add URL too large', sub { $client->member_add(['x' x 2049], $cb) },
            qr/^peer URL too large: 2049 bytes \(max 2048\)/);
croaks('member_update URL too large', sub { $client->member_update(1, ['x' x 2049], $cb) },
            qr/^peer URL too large: 2049 bytes \(max 2048\)/);
croaks('member_add: type checked before sizes', sub { $client->member_add('x' x 3000, $cb) },
            qr/^peer_urls must be an array reference/);
croaks('member_add()', sub { $client->member_add() }, qr/^Usage: \$client->member_add\(/);
croaks('member_add 4 args', sub { $client->member_add([], {}, $cb, $cb) }, qr/^Usage: \$client->member_add\(/);
croaks('member_add bad callback', sub { $client->member_add([], {}) }, qr/^callback must be a code reference/);
croaks('member_list(1, $cb)', sub { $client->member_list(1, $cb) },
            qr/^Usage: EV::Etcd::member_list\(client, callback\)/);
croaks('member_remove($cb)', sub { $client->member_remove($cb) },
            qr/^Usage: EV::Etcd::member_remove\(client, member_id, callback\)/);
croaks('member_update(1, $cb)', sub { $client->member_update(1, $cb) },
            qr/^Usage: EV::Etcd::member_update\(client, member_id, peer_urls, callback\)/);
croaks('member_promote()', sub { $client->member_promote() },
            qr/^Usage: EV::Etcd::member_promote\(client, member_id, callback\)/);
croaks('member_remove bad callback', sub { $client->member_remove(1, 'x') },
            qr/^callback must be a code reference/);
croaks('move_leader()', sub { $client->move_leader($cb) },
            qr/^Usage: EV::Etcd::move_leader\(client, target_id, callback\)/);
croaks('member_list as a class method', sub { EV::Etcd->member_list($cb) },
            qr/client is not of type EV::Etcd/);

# --- move_leader ----------------------------------------------------------------

SKIP: {
    skip 'no leader found', 9 unless $leader_name;
    my ($target_name) = grep { $_ ne $leader_name } sort keys %id_of;
    my ($other_name)  = grep { $_ ne $leader_name && $_ ne $target_name } sort keys %id_of;
    my $target_id = $id_of{$target_name};

    my $from_follower = EtcdTest::Caller->new($client_of{$other_name}, timeout => 20);
    my $ne = $from_follower->err_call('move_leader from a follower', 'move_leader', $target_id);
    is($ne->{code}, 9, 'from a follower: FAILED_PRECONDITION');
    like($ne->{message}, qr/not leader/, 'from a follower: "not leader"');
    is($ne->{source}, 'move_leader', 'from a follower: source');

    my $at_leader = EtcdTest::Caller->new($client_of{$leader_name}, timeout => 20);
    my $bad = $at_leader->err_call('move_leader to an unknown member', 'move_leader', $unknown);
    is($bad->{code}, 9, 'unknown transferee: FAILED_PRECONDITION');

    my $moved = $at_leader->ok_call('move_leader from the leader', 'move_leader', $target_id);
    ok(!grep({ $_ ne 'header' } keys %$moved), 'move_leader response has at most a header');

    # the new leader, as every member sees it
    my $now;
    my $status = EtcdTest::Caller->new($client_of{$other_name}, timeout => 20);
    for (1 .. 50) {
        my ($st) = $status->call('status');
        $now = $st && "$st->{leader}";
        last if defined $now && $now eq $target_id;
        EtcdTest::run_until(0.1, sub { 0 });
    }
    is($now, $target_id, 'status shows the target as the new leader');
    my ($st_target) = EtcdTest::Caller->new($client_of{$target_name})->call('status');
    is($st_target && "$st_target->{leader}", $target_id, 'the target sees itself as leader');
    is($st_target && "$st_target->{header}{member_id}", $target_id, 'and answers with its own id');
}

# exactly one callback per request
EtcdTest::run_until(0.3, sub { 0 });
is_deeply([ map { $_->{what} } grep { $_->{n} != 1 } $caller->records ], [], 'every callback ran exactly once');

done_testing;
