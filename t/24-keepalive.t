use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "lease_keepalive" (one-shot) and "lease_keepalive_start".

my $srv = EtcdTest->start;
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 5);
my $kv  = EtcdTest::Caller->new($c);
my $P   = EtcdTest::prefix();

sub grant { $kv->ok_call("grant $_[0]", 'lease_grant', $_[0])->{id} }
sub ttl_of { ($kv->call('lease_time_to_live', $_[0]))[0]{ttl} }

# ---------------------------------------------------------------------------
# one-shot

{
    my $id = grant(5);
    my (@calls);
    $c->lease_keepalive($id, sub { push @calls, [@_] });
    ok(EtcdTest::run_until(5, sub { @calls }), 'lease_keepalive called back');
    is(EtcdTest::run_loop(3), 1, 'then nothing stays outstanding: EV::run returns');
    is(scalar @calls, 1, 'exactly one callback');
    my ($r, $e) = @{ $calls[0] || [] };
    ok(!$e, 'no error');
    is_deeply([ sort keys %{ $r || {} } ], [qw(header id ttl)], 'response keys');
    is($r->{id}, $id, 'id');
    cmp_ok($r->{ttl}, '>', 0, 'refreshed ttl > 0');
    cmp_ok($r->{ttl}, '<=', 5, 'ttl at most the granted one');

    for my $bad (0, 1234567) {
        my @got;
        $c->lease_keepalive($bad, sub { push @got, [@_] });
        ok(EtcdTest::run_until(5, sub { @got }), "keepalive of lease $bad called back");
        EtcdTest::run_until(0.3, sub { 0 });
        is(scalar @got, 1, 'once');
        is_deeply([ @{ $got[0][1] || {} }{qw(code status message source)} ],
                  [ 13, 'INTERNAL', 'Lease expired', 'internal' ], "lease $bad: Lease expired");
        ok(!defined $got[0][0], 'no response');
    }

    my $dead = EV::Etcd->new(endpoints => [ '127.0.0.1:' . EtcdTest::closed_port() ]);
    my @got;
    $dead->lease_keepalive(1, sub { push @got, [@_] });
    ok(EtcdTest::run_until(5, sub { @got }), 'keepalive on a refused port called back');
    is_deeply([ @{ $got[0][1] || {} }{qw(code status message source)} ],
              [ 13, 'INTERNAL', 'Keepalive setup failed', 'keepalive' ], 'setup failure');

    eval { $c->lease_keepalive(1) };
    like($@, qr/^Usage: EV::Etcd::lease_keepalive\(client, lease_id, callback\)/, 'usage croak');
    eval { $c->lease_keepalive(1, 'x') };
    like($@, qr/callback must be a code reference/, 'callback croak');
}

# ---------------------------------------------------------------------------
# managed: a 3-second lease kept alive for 10 seconds

{
    my $id = grant(3);
    $kv->ok_call('put with lease', 'put', "${P}ka", 'alive', { lease => $id });
    my (@renewals, @lost, @bad);
    my $ka = $c->lease_keepalive_start($id, { on_lost => sub { push @lost, [@_] } },
                                       sub { $_[1] ? push @bad, $_[1] : push @renewals, $_[0] });
    isa_ok($ka, 'EV::Etcd::Keepalive', 'lease_keepalive_start returns a handle');
    EtcdTest::run_until(10, sub { 0 });
    my $ttl = ttl_of($id);
    cmp_ok($ttl, '>', 0, "after 10 s the 3 s lease is alive (ttl $ttl)");
    my ($r) = $kv->call('get', "${P}ka");
    is($r && $r->{kvs}[0]{value}, 'alive', 'its key still exists');
    cmp_ok(scalar @renewals, '>=', 8, 'renewed about every TTL/3 (' . scalar(@renewals) . ' renewals)');
    cmp_ok(scalar @renewals, '<=', 16, 'and not much more often');
    is_deeply([ sort keys %{ $renewals[0] || {} } ], [qw(header id ttl)], 'renewal response keys');
    is($renewals[0]{id}, $id, 'renewal id');
    is_deeply(\@lost, [], 'on_lost not called');
    is_deeply(\@bad, [], 'no error');

    # revoked by another client: on_lost exactly once
    my $other = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $srv->endpoint ]));
    $other->ok_call('revoke from another client', 'lease_revoke', $id);
    ok(EtcdTest::run_until(5, sub { @lost }), 'on_lost called after the revoke');
    my $n = @renewals;
    EtcdTest::run_until(2, sub { 0 });
    is(scalar @lost, 1, 'on_lost exactly once');
    is(scalar @renewals, $n, 'no renewal after the loss');
    my ($e, @extra) = @{ $lost[0] || [] };
    is(scalar @extra, 0, 'on_lost gets one argument');
    is($e->{code}, 5, 'NOT_FOUND');
    is($e->{source}, 'keepalive', 'source keepalive');
    like($e->{message}, qr/expired or was revoked/, 'message');
    $ka->stop;    # after the loss: harmless
}

# ---------------------------------------------------------------------------
# stop ends renewals; EV::run returns afterwards

{
    my $id = grant(2);
    my ($renewals, $lost) = (0, 0);
    my $ka = $c->lease_keepalive_start($id, { on_lost => sub { $lost++ } }, sub { $renewals++ });
    ok(EtcdTest::run_until(5, sub { $renewals >= 2 }), 'renewals flow');
    is(EtcdTest::run_loop(1), 0, 'a managed keepalive keeps EV::run running');
    $ka->stop;
    my $n = $renewals;
    is(EtcdTest::run_loop(5), 1, 'after stop EV::run returns');
    EtcdTest::run_until(3, sub { 0 });
    is($renewals, $n, 'no renewal after stop');
    is($lost, 0, 'stop is not a loss');
    is(ttl_of($id), -1, 'the lease expired after stop');
    $ka->stop;
    pass('a second stop is harmless');

    # a keepalive without any callback, stopped from a timer
    my $id2 = grant(2);
    my $quiet = $c->lease_keepalive_start($id2);
    EtcdTest::run_until(3, sub { 0 });
    cmp_ok(ttl_of($id2), '>', 0, 'a callback-less keepalive keeps its lease');
    $quiet->stop;

    # managed keepalive of an unknown lease: lost at once
    my @l;
    $c->lease_keepalive_start(987654321, { on_lost => sub { push @l, $_[0] } });
    ok(EtcdTest::run_until(5, sub { @l }), 'unknown lease: on_lost');
    is($l[0] && $l[0]{code}, 5, 'NOT_FOUND');
}

# ---------------------------------------------------------------------------
# survives a server restart; a stopped server makes the lease lost in time

{
    my $id = grant(10);
    my ($renewals, @lost) = (0);
    my $ka = $c->lease_keepalive_start($id, { on_lost => sub { push @lost, $_[0] } }, sub { $renewals++ });
    ok(EtcdTest::run_until(5, sub { $renewals }), 'renewing');
    $srv->kill;
    EtcdTest::run_until(1, sub { 0 });
    $srv->restart;
    my $n = $renewals;
    ok(EtcdTest::run_until(15, sub { $renewals > $n }), 'renewals resume after the restart');
    is_deeply(\@lost, [], 'not lost across the restart');
    $ka->stop;

    my $short = grant(3);
    my @l;
    my $ka2 = $c->lease_keepalive_start($short, { on_lost => sub { push @l, $_[0] } }, sub {});
    EtcdTest::run_until(1.5, sub { 0 });
    $srv->pause;
    ok(EtcdTest::run_until(6, sub { @l }), 'renewals that cannot get through: lost within the TTL');
    $srv->resume;
    EtcdTest::run_until(1, sub { 0 });
    is(scalar @l, 1, 'exactly once');
    is($l[0] && $l[0]{code}, 4, 'DEADLINE_EXCEEDED');
    like($l[0] && $l[0]{message}, qr/no renewal got through/, 'message says why');
}

# ---------------------------------------------------------------------------
# argument checks

{
    eval { $c->lease_keepalive_start() };
    like($@, qr/^Usage: \$client->lease_keepalive_start/, 'no lease id');
    eval { $c->lease_keepalive_start(1, {}, sub {}, 1) };
    like($@, qr/^Usage: \$client->lease_keepalive_start/, 'too many arguments');
    eval { $c->lease_keepalive_start(1, { on_lost => 1 }) };
    like($@, qr/lease_keepalive_start: on_lost must be a code reference/, 'bad on_lost');
    eval { $c->lease_keepalive_start(1, 'x') };
    like($@, qr/callback must be a code reference/, 'bad callback');
    eval { $c->lease_keepalive_start(1, [], sub {}) };
    like($@, qr/options must be a hash reference/, 'bad options');
    eval { EV::Etcd::Keepalive::stop($c) };
    like($@, qr/keepalive is not of type EV::Etcd::Keepalive/, 'stop on a client croaks');
    eval { EV::Etcd::lease_keepalive_start('EV::Etcd', 1, sub {}) };
    like($@, qr/client is not of type EV::Etcd/, 'class-method call croaks');
}

undef $c;
$srv->stop;
done_testing;
