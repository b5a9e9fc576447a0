use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "One member at a time": status, defragment, hash, hash_kv, alarm and
# snapshot with { endpoint => ... } ask that member and no other, on a
# private 3-member cluster; a member that is down is reported, not
# replaced.

my @members = EtcdTest->start_cluster(3);
my @eps     = map { $_->endpoint } @members;
my $client  = EV::Etcd->new(endpoints => [@eps], timeout => 5);
my $caller  = EtcdTest::Caller->new($client, timeout => 20);

# the member id behind each endpoint, from the cluster's own list
my $list = $caller->ok_call('member_list', 'member_list');
my %id_of;
for my $m (@{ $list->{members} || [] }) {
    for my $url (@{ $m->{client_urls} || [] }) {
        (my $ep = $url) =~ s{^https?://}{};
        $id_of{$ep} = "$m->{id}";
    }
}
is(scalar(grep { $id_of{$_} } @eps), 3, 'every endpoint has a member id');

$caller->ok_call('a write to hash over', 'put', '/per-member/k', 'v');

# --- each call answers for the member asked -------------------------------------------
my (%hash_kv_of, %hash_of);
for my $i (0 .. $#eps) {
    my $ep = $eps[$i];
    my $s = $caller->ok_call("status of $ep", 'status', { endpoint => $ep });
    is("$s->{header}{member_id}", $id_of{$ep}, "status of $ep: answered by that member");
    # (their responses carry no member id: see the stopped member below)
    $caller->ok_call("defragment $ep", 'defragment', { endpoint => $ep });
    my $a = $caller->ok_call("alarm GET at $ep", 'alarm', 'GET', { endpoint => $ep });
    is_deeply($a->{alarms}, [], "alarm at $ep: no alarms");
    # the scheme may be given too
    my $h = $caller->ok_call("hash_kv of http://$ep", 'hash_kv', $s->{header}{revision},
                             { endpoint => "http://$ep" });
    is("$h->{header}{member_id}", $id_of{$ep}, "hash_kv of $ep: answered by that member");
    $hash_kv_of{$ep} = [ $h->{hash}, $s->{header}{revision} ];
    my $hh = $caller->ok_call("hash of $ep", 'hash', { endpoint => $ep });
    is("$hh->{header}{member_id}", $id_of{$ep}, "hash of $ep: answered by that member");
    my $bytes = 0;
    my $snap = $caller->ok_call("snapshot of $ep", 'snapshot', sub { $bytes += length $_[0] },
                                { endpoint => $ep });
    cmp_ok($snap->{size}, '>', 0, "snapshot of $ep: data");
    is($bytes, $snap->{size}, "snapshot of $ep: every chunk delivered");
    # etcd 3.4 sends no header with a snapshot
    is("$snap->{header}{member_id}", $id_of{$ep}, "snapshot of $ep: answered by that member")
        if $snap->{header};
}
ok(!eval { $client->snapshot(sub { }, [], sub { }); 1 }, 'snapshot with a non-hash options croaks');
like($@, qr/^Usage: EV::Etcd::snapshot\(client, file_or_callback, callback\)/, '... with its usage');
# every member holds the same data at the same revision
my %hashes;
my $rev = $hash_kv_of{ $eps[0] }[1];
for my $ep (@eps) {
    my $h = $caller->ok_call("hash_kv of $ep at $rev", 'hash_kv', $rev, { endpoint => $ep });
    $hashes{ $h->{hash} }++;
}
is(scalar keys %hashes, 1, 'the members agree on hash_kv at one revision');

# --- an endpoint that is not the client's -------------------------------------------
my $stranger = '127.0.0.1:' . EtcdTest::closed_port();
my $e = $caller->err_call('status of a stranger', 'status', { endpoint => $stranger });
is($e->{status}, 'NOT_FOUND', 'NOT_FOUND');
like($e->{message} // '', qr/endpoint \Q$stranger\E is not one of the client's endpoints/,
     'names the endpoint');

# --- croaks ----------------------------------------------------------------------------
ok(!eval { $client->get('/k', { endpoint => $eps[0] }, sub { }); 1 }, 'get with endpoint croaks');
like($@, qr/^get: endpoint is an option of status, defragment, hash, hash_kv, alarm, snapshot only/,
     'naming the methods that take it');

# --- a member that is down: an error, not another member's answer ---------------------
$members[2]->stop;
my $t0 = Time::HiRes::time();
$e = $caller->err_call('status of the stopped member', 'status', { endpoint => $eps[2] });
is($e->{status}, 'UNAVAILABLE', 'UNAVAILABLE');
cmp_ok(Time::HiRes::time() - $t0, '<', 5.5, 'within the timeout');
for my $m (qw(defragment hash)) {
    $e = $caller->err_call("$m of the stopped member", $m, { endpoint => $eps[2] });
    is($e->{status}, 'UNAVAILABLE', "$m of the stopped member: UNAVAILABLE, not done elsewhere");
}
$e = $caller->err_call('alarm GET at the stopped member', 'alarm', 'GET', { endpoint => $eps[2] });
is($e->{status}, 'UNAVAILABLE', 'alarm at the stopped member: UNAVAILABLE');
$e = $caller->err_call('snapshot of the stopped member', 'snapshot', sub { }, { endpoint => $eps[2] });
is($e->{status}, 'UNAVAILABLE', 'snapshot of the stopped member: UNAVAILABLE, not taken elsewhere');
is($e->{source}, 'snapshot', '... from snapshot');
$e = $caller->err_call('snapshot of a stranger', 'snapshot', sub { }, { endpoint => $stranger });
is($e->{status}, 'NOT_FOUND', 'snapshot of a stranger: NOT_FOUND');
my $s = $caller->ok_call('status without endpoint fails over', 'status');
isnt("$s->{header}{member_id}", $id_of{ $eps[2] }, 'answered by a running member');
$s = $caller->ok_call('status of a running member', 'status', { endpoint => $eps[1] });
is("$s->{header}{member_id}", $id_of{ $eps[1] }, 'answered by it');

EtcdTest::Caller->exactly_once($caller);
done_testing;
