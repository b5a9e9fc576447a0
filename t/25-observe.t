use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "election_observe": election_observe and its handle, across two clients
# and a server restart.

my $srv = EtcdTest->start;
my $ep  = $srv->endpoint;
my $a   = EV::Etcd->new(endpoints => [$ep], timeout => 5);
my $b   = EV::Etcd->new(endpoints => [$ep], timeout => 5);
my $ka  = EtcdTest::Caller->new($a);
my $kb  = EtcdTest::Caller->new($b);
my $P   = EtcdTest::prefix();
my $E   = "${P}election";

my (@seen, @errs);
my $obs = $b->election_observe($E, sub {
    my ($r, $e) = @_;
    return push @errs, $e if $e;
    push @seen, $r;
}, { auto_reconnect => 1 });
isa_ok($obs, 'EV::Etcd::Observe', 'election_observe returns a handle');
sub values_seen { join ',', map { $_->{kv}{value} } @seen }

EtcdTest::run_until(1, sub { 0 });
is(scalar @seen, 0, 'no callback while there is no leader');

my $lease_a = $ka->ok_call('grant a', 'lease_grant', 30)->{id};
my $leader_a = $ka->ok_call('campaign a', 'election_campaign', $E, $lease_a, 'a1')->{leader};
ok(EtcdTest::run_until(5, sub { @seen >= 1 }), 'the new leader is observed');
is(values_seen(), 'a1', 'first value');
is_deeply([ sort keys %{ $seen[0] } ], [qw(header kv)], 'response keys');
is($seen[0]{kv}{key}, $leader_a->{key}, 'kv key is the leader key');
is($seen[0]{kv}{lease}, $lease_a, 'kv lease is the leader lease');

$ka->ok_call('proclaim a2', 'election_proclaim', $leader_a, 'a2');
ok(EtcdTest::run_until(5, sub { @seen >= 2 }), 'the proclamation is observed');
is(values_seen(), 'a1,a2', 'values in order');

# b campaigns (waits), a resigns, b wins
my $lease_b = $kb->ok_call('grant b', 'lease_grant', 30)->{id};
my $won;
$b->election_campaign($E, $lease_b, 'b1', sub { $won = $_[0] });
EtcdTest::run_until(0.5, sub { 0 });
ok(!$won, 'b waits while a leads');
$ka->ok_call('resign a', 'election_resign', $leader_a);
ok(EtcdTest::run_until(5, sub { $won && @seen >= 3 }), 'b wins and is observed');
is(values_seen(), 'a1,a2,b1', 'the resignation itself produced no callback');

# a second observer joining now gets the current leader at once
my @late;
my $obs2 = $a->election_observe($E, sub { push @late, $_[0] if $_[0] });
ok(EtcdTest::run_until(5, sub { @late }), 'a late observer gets the current leader');
is($late[0] && $late[0]{kv}{value}, 'b1', 'current value');

# the server restarts: the observation resumes without repeating b1
$srv->kill;
EtcdTest::run_until(0.5, sub { 0 });
$srv->restart;
EtcdTest::run_until(2, sub { 0 });
$kb->ok_call('proclaim b2 after the restart', 'election_proclaim', $won->{leader}, 'b2');
ok(EtcdTest::run_until(10, sub { @seen >= 4 }), 'observed after the restart');
EtcdTest::run_until(0.5, sub { 0 });
is(values_seen(), 'a1,a2,b1,b2', 'no repeat, nothing missed');
is_deeply(\@errs, [], 'no error across the restart');

# cancel
my $n = 0;
my @args;
$obs->cancel(sub { $n++; @args = @_ });
is($n, 0, 'cancel callback deferred');
$kb->ok_call('proclaim b3', 'election_proclaim', $won->{leader}, 'b3');
ok(EtcdTest::run_until(5, sub { $n }), 'cancel called back');
ok(EtcdTest::run_until(5, sub { grep { $_->{kv}{value} eq 'b3' } @late }), 'the other observer sees b3');
is($n, 1, 'once');
is_deeply(\@args, [ {}, undef ], '({}, undef)');
is(values_seen(), 'a1,a2,b1,b2', 'nothing after cancel');
$obs2->cancel(sub {});
is(EtcdTest::run_loop(5), 1, 'EV::run returns once every observation is cancelled');

# setup failure, auto_reconnect => 0, argument checks
{
    my $dead = EV::Etcd->new(endpoints => [ '127.0.0.1:' . EtcdTest::closed_port() ]);
    my @got;
    $dead->election_observe($E, sub { push @got, [@_] });
    ok(EtcdTest::run_until(5, sub { @got }), 'observe on a refused port called back');
    EtcdTest::run_until(0.3, sub { 0 });
    is(scalar @got, 1, 'once');
    is_deeply([ @{ $got[0][1] || {} }{qw(code status message source)} ],
              [ 13, 'INTERNAL', 'Observe setup failed', 'observe' ], 'setup failure');

    my (@o, @oe);
    $b->election_observe($E, sub { $_[1] ? push @oe, $_[1] : push @o, $_[0] }, { auto_reconnect => 0 });
    ok(EtcdTest::run_until(5, sub { @o }), 'observing without reconnect');
    $srv->kill;
    ok(EtcdTest::run_until(5, sub { @oe }), 'an error once the server is gone');
    $srv->restart;
    EtcdTest::run_until(1, sub { 0 });
    is(scalar @oe, 1, 'exactly one');
    is_deeply([ @{ $oe[0] }{qw(code status message source)} ],
              [ 14, 'UNAVAILABLE', 'Observe stream ended', 'observe' ], 'stream ended');

    eval { $b->election_observe($E, {}, sub {}) };
    like($@, qr/callback must be a code reference/, 'options before the callback croak');
    eval { $b->election_observe($E) };
    like($@, qr/^Usage: EV::Etcd::election_observe\(client, name, callback, \[opts\]\)/, 'usage');
    eval { EV::Etcd::Observe::cancel($b, sub {}) };
    like($@, qr/observe is not of type EV::Etcd::Observe/, 'cancel on a client croaks');
}

undef $a;
undef $b;
$srv->stop;
done_testing;
