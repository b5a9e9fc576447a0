use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EtcdTest::Shape qw(croaks starts_with);
use EV::Etcd;

# POD "new" (auto_sync_interval), "endpoints", "set_endpoints": a client
# given one member of a cluster learns the others, follows a member added
# later, and carries on (writes, an open watch) when the member it was
# given is removed from the cluster.

EtcdTest::need_etcd();

my @m = EtcdTest->start_cluster(3);
my $P = EtcdTest::prefix();
my $c = EV::Etcd->new(endpoints => [ $m[0]->endpoint ], timeout => 5, auto_sync_interval => 1);
my $k = EtcdTest::Caller->new($c);

is_deeply([ $c->endpoints ], [ $m[0]->endpoint ], 'endpoints: the list the client was given');
my $want = join ' ', sort map { $_->endpoint } @m;
ok(EtcdTest::run_until(5, sub { join(' ', sort $c->endpoints) eq $want }),
   'auto_sync_interval: every member of the cluster')
    or diag(join ' ', $c->endpoints);

my $rec = EtcdTest::watch_recorder($c, $P, { prefix => 1 }, sub { $_[0]{kv}{value} });
ok(EtcdTest::run_until(5, sub { $rec->{created} }), 'watch created');
my @written;
my $n = 0;
my $write = sub { my $v = ++$n; $k->ok_call("put $v", 'put', "${P}k", $v); push @written, $v };
$write->() for 1 .. 3;

# A fourth member joins.
my $new = do {
    my $spec = { name => 'm' . $$ . '-added', client_port => EtcdTest::free_port(),
                 peer_port => EtcdTest::free_port() };
    my $added = $k->ok_call('member_add', 'member_add', [ "http://127.0.0.1:$spec->{peer_port}" ]);
    ok($added->{member}{id}, 'member added');
    my $initial = join ',', (map { $_->name . '=' . $_->peer_url } @m),
                            "$spec->{name}=http://127.0.0.1:$spec->{peer_port}";
    EtcdTest->start(%$spec, initial_cluster => $initial, initial_cluster_state => 'existing');
};
ok(EtcdTest::run_until(10, sub { grep { $_ eq $new->endpoint } $c->endpoints }),
   'the added member is among the endpoints')
    or diag(join ' ', $c->endpoints);
$write->() for 1 .. 3;

# The member the client was given leaves the cluster.
my ($st) = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $m[0]->endpoint ], timeout => 5))->call('status');
my $gone_id = $st->{header}{member_id};
ok($gone_id, 'id of the member the client was given');
# Asked of another member: the member removed may answer its own removal
# with "etcdserver: server stopped" (it stops as it applies it).
my $admin = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $m[1]->endpoint ], timeout => 5));
$admin->ok_call('member_remove of that member', 'member_remove', $gone_id);
ok(EtcdTest::run_until(10, sub { !grep { $_ eq $m[0]->endpoint } $c->endpoints }),
   'the removed member is no longer among the endpoints')
    or diag(join ' ', $c->endpoints);
is(scalar(() = $c->endpoints), 3, 'three endpoints left');
$write->() for 1 .. 3;
ok(EtcdTest::run_until(10, sub { @{ $rec->{events} } >= @written }), 'the watch delivers every write');
EtcdTest::run_until(0.3, sub { 0 });
is_deeply($rec->{events}, \@written, 'each write exactly once, in order, across the changes');
is_deeply($rec->{errs}, [], 'no watch error');

# set_endpoints
{
    my $other = $m[1]->endpoint;
    croaks('set_endpoints: an empty list', sub { $c->set_endpoints([]) },
           starts_with('EV::Etcd::set_endpoints: endpoints must be a non-empty array reference of strings'));
    croaks('set_endpoints: not an array reference', sub { $c->set_endpoints($other) },
           starts_with('EV::Etcd::set_endpoints: endpoints must be a non-empty array reference of strings'));
    croaks('set_endpoints: https endpoints for a client without TLS', sub { $c->set_endpoints([ "https://$other" ]) },
           starts_with('EV::Etcd::set_endpoints: the client was created without TLS'));
    croaks('set_endpoints: usage', sub { $c->set_endpoints() },
           starts_with('Usage: EV::Etcd::set_endpoints(client, endpoints)'));
    my $plain = EV::Etcd->new(endpoints => [$other], timeout => 5);
    $plain->set_endpoints([ $other, $m[2]->endpoint, $other ]);
    is_deeply([ $plain->endpoints ], [ $other, $m[2]->endpoint ], 'set_endpoints: the new list at once, duplicates dropped');
    EtcdTest::Caller->new($plain)->ok_call('a put through the new list', 'put', "${P}x", 1);
}

$rec->{w}->cancel(sub {});
EtcdTest::Caller->exactly_once($k, $admin);
$_->stop for @m, $new;
done_testing;
