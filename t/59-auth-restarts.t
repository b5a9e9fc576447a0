use strict;
use warnings;
use Test::More;
use File::Temp ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "AUTHENTICATION" and "WATCHES": a client with user and password keeps
# its watch, its managed keepalive, its election observer and its writes
# through kill -9 restarts of its member, in a row. With simple tokens every
# restart voids the token (etcd 3.4 refuses the watch's re-creation as
# "invalid auth token", 3.5 as "permission denied"); with JWT tokens the
# token survives restarts, but users added meanwhile make it stale (the auth
# revision moved). In both cases the client logs in again and re-creates its
# watch from where delivery stopped: every acknowledged write is delivered
# exactly once and in order, the watch and the observer report no error,
# and the lease is never lost.

EtcdTest::need_etcd();
my $RESTARTS = 6;
my $crash_safe = EtcdTest::crash_safe();

sub scenario {
    my ($label, $srv, $before_kill) = @_;
    my $ep  = $srv->endpoint;
    my $P   = EtcdTest::prefix() . "$label/";
    my $app = "${P}app/";

    my $admin = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [$ep], timeout => 5));
    $admin->ok_call("$label: user_add $_->[0]", 'user_add', @$_) for [ root => 'rootpw' ], [ app => 'apppw' ];
    $admin->ok_call("$label: role_add app", 'role_add', 'app');
    $admin->ok_call("$label: grant root", 'user_grant_role', 'root', 'root');
    $admin->ok_call("$label: grant app", 'user_grant_role', 'app', 'app');
    $admin->ok_call("$label: app may use its prefix", 'role_grant_permission', 'app', 'READWRITE',
                    $app, "${P}app0");
    $admin->ok_call("$label: auth_enable", 'auth_enable');
    my $root = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [$ep], timeout => 5,
                                                   user => 'root', password => 'rootpw'));

    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 2, user => 'app', password => 'apppw');
    my $kv = EtcdTest::Caller->new($c);

    my $rec = EtcdTest::watch_recorder($c, $app, { prefix => 1 },
        sub { $_[0]{kv}{key} eq "${app}k" ? $_[0]{kv}{value} : () });
    ok(EtcdTest::run_until(5, sub { $rec->{created} }), "$label: watch created");

    my $lease = $kv->ok_call("$label: lease_grant 6", 'lease_grant', 6)->{id};
    my ($renewals, @lost, @kerrs) = (0);
    my $ka = $c->lease_keepalive_start($lease, { on_lost => sub { push @lost, $_[0] } },
        sub { $_[1] ? push @kerrs, $_[1] : $renewals++ });
    ok(EtcdTest::run_until(5, sub { $renewals }), "$label: managed keepalive renews");

    # An election led under that lease, and an observer of it.
    my $led = $kv->ok_call("$label: campaign", 'election_campaign', "${app}el", $lease, 'v0');
    my (@leaders, @oerrs);
    my $obs = $c->election_observe("${app}el", sub {
        my ($r, $e) = @_;
        $e ? push @oerrs, $e : push @leaders, $r->{kv}{value};
    });
    ok(EtcdTest::run_until(5, sub { @leaders }), "$label: the observer sees the leader");

    # The writer: one put at a time, the next 20 ms after an answer.
    my ($n, $stop, $busy, @acked, @failed) = (0, 0, 0);
    my $write; $write = sub {
        return if $stop;
        $busy = 1;
        my $v = ++$n;
        $c->put("${app}k", $v, sub {
            my ($r, $e) = @_;
            $busy = 0;
            if ($r) { push @acked, $v } else { push @failed, $e }
            my $t; $t = EV::timer(0.02, 0, sub { undef $t; $write->() });
        });
    };
    $write->();

    for my $round (1 .. $RESTARTS) {
        my $before = @acked;
        ok(EtcdTest::run_until(10, sub { @acked >= $before + 10 }),
           "$label: writes acknowledged before restart $round");
        if ($before_kill || !$crash_safe) {
            # The writer rests, so that nothing renews the token before the
            # watch is re-created with it after the restart; and, on an etcd
            # that may lose acknowledged writes when killed, long enough for
            # its backend to commit them (EtcdTest::crash_safe).
            $stop = 1;
            EtcdTest::run_until(5, sub { !$busy });
            EtcdTest::run_until(0.3, sub { 0 }) unless $crash_safe;
            $before_kill->($root, $round) if $before_kill;
        }
        $srv->kill;
        EtcdTest::run_until(0.3, sub { 0 });
        $srv->restart;
        if ($stop) {
            $stop = 0;
            $write->();
        }
    }
    my ($before, $renewed) = (scalar @acked, $renewals);
    ok(EtcdTest::run_until(10, sub { @acked >= $before + 20 && $renewals > $renewed }),
       "$label: writes and renewals go on after the last restart");
    $stop = 1;
    EtcdTest::run_until(5, sub { !$busy });

    ok(EtcdTest::run_until(10, sub { _all_seen($rec, \@acked) }),
       "$label: every acknowledged write delivered") or diag(scalar(@acked) . ' acked, '
       . scalar(@{ $rec->{events} }) . ' delivered');
    my @seen = @{ $rec->{events} };
    my @disorder = grep { $seen[$_] <= $seen[ $_ - 1 ] } 1 .. $#seen;
    is(scalar @disorder, 0, "$label: delivered once each and in order")
        or diag("out of order or repeated at: @seen[@disorder[0 .. ($#disorder < 4 ? $#disorder : 4)]]");
    my %seen = map { $_ => 1 } @seen;
    is(scalar(grep { !$seen{$_} } @acked), 0, "$label: no acknowledged write missing");
    is_deeply($rec->{errs}, [], "$label: the watch reported no error");
    cmp_ok($rec->{created}, '>', $RESTARTS, "$label: the watch was re-created after each restart");
    is_deeply(\@lost, [], "$label: the lease was never lost");
    is_deeply(\@kerrs, [], "$label: the keepalive reported no error");
    $kv->ok_call("$label: proclaim", 'election_proclaim', $led->{leader}, 'v1');
    ok(EtcdTest::run_until(10, sub { grep { $_ eq 'v1' } @leaders }),
       "$label: the observer follows the leader after the restarts");
    is_deeply(\@oerrs, [], "$label: the observer reported no error");
    my $ttl = $kv->ok_call("$label: lease_time_to_live", 'lease_time_to_live', $lease);
    cmp_ok($ttl->{ttl}, '>', 0, "$label: the lease is alive at the end");
    cmp_ok(scalar @acked, '>=', 10 * $RESTARTS + 20, "$label: writes were acknowledged throughout");
    note("$label: " . scalar(@acked) . ' writes acknowledged, ' . scalar(@failed)
         . " failed, $renewals renewals, $rec->{created} creations");

    $ka->stop;
    $obs->cancel(sub {});
    $rec->{w}->cancel(sub {});
    $root->ok_call("$label: auth_disable", 'auth_disable');
    return;
}

sub _all_seen {
    my ($rec, $acked) = @_;
    my %seen = map { $_ => 1 } @{ $rec->{events} };
    return !grep { !$seen{$_} } @$acked;
}

# Simple tokens: every restart voids them.
{
    my $srv = EtcdTest->start;
    scenario('simple', $srv);
    $srv->stop;
}

# JWT tokens survive restarts; a user added meanwhile makes them stale (the
# watch is re-created with the stale token: etcd 3.4 refuses it as "revision
# of auth store is old", 3.5 as "permission denied").
SKIP: {
    my $openssl = EtcdTest::openssl_binary();
    unless ($openssl) {
        BAIL_OUT('openssl not found (needed to make the JWT signing key)') if $ENV{CI};
        skip 'openssl not found (needed to make the JWT signing key)', 1;
    }
    my $dir = File::Temp->newdir('ev-etcd-jwt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    EtcdTest::_capture($openssl, 'genrsa', '-out', "$dir/jwt.key", '2048');
    EtcdTest::_capture($openssl, 'rsa', '-in', "$dir/jwt.key", '-pubout', '-out', "$dir/jwt.pub");
    ok(-s "$dir/jwt.key" && -s "$dir/jwt.pub", 'JWT key pair made');
    my $srv = EtcdTest->start(extra_args => [
        '--auth-token' => "jwt,pub-key=$dir/jwt.pub,priv-key=$dir/jwt.key,sign-method=RS256,ttl=300s",
    ]);
    scenario('jwt', $srv, sub {
        my ($root, $round) = @_;
        $root->ok_call("jwt: a user added before restart $round", 'user_add', "extra$round", 'pw');
    });
    $srv->stop;
}

done_testing;
