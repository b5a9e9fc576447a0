use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV;
use EV::Etcd;

# POD "EVENTS AND COUNTERS": on_event sees what the client does on its own
# (a failover with its retry, a watch stream lost and resumed across a
# member killed and restarted, a re-login after the restart voided the token, a managed
# keepalive lost), EV_ETCD_DEBUG prints the same lines, and stats counts
# them: every counter that has an event agrees with the events seen.

EtcdTest::need_etcd();

# --- bad input -------------------------------------------------------------

for my $bad ('', 1, [], {}) {
    eval { EV::Etcd->new(on_event => $bad) };
    like($@, qr/^EV::Etcd->new: on_event must be a code reference/,
         'on_event ' . (ref $bad || "'$bad'") . ' croaks');
}
for my $opt ([ max_pending => 'completions' ], [ max_pending_bytes => 'bytes' ]) {
    my ($name, $unit) = @$opt;
    for my $bad (0, -1, 1.5, 'abc', '', '1x', [], 1e13) {
        my @warnings;
        local $SIG{__WARN__} = sub { push @warnings, @_ };
        eval { EV::Etcd->new($name => $bad) };
        like($@, qr/^EV::Etcd->new: $name must be a whole number of $unit, at least 1/,
             "$name " . (ref $bad || "'$bad'") . ' croaks');
        is("@warnings", '', '... without a warning');
    }
    ok(EV::Etcd->new($name => 1), "$name 1 is taken");
    ok(EV::Etcd->new($name => '64'), "$name '64' is taken");
}
{
    my $c = EV::Etcd->new(endpoints => ['127.0.0.1:' . EtcdTest::closed_port()]);
    eval { $c->stats(1) };
    like($@, qr/^Usage: EV::Etcd::stats\(client\)/, 'stats with an argument croaks');
    eval { EV::Etcd::stats('EV::Etcd') };
    like($@, qr/client/, 'stats of a class name croaks');
    is_deeply($c->stats, {
        map { $_ => 0 } qw(requests retries failovers reconnects relogins in_flight
                           watches keepalives queued bytes_in bytes_out)
    }, 'a new client: every counter 0');
}

# --- failover, kill and restart ----------------------------------------------

my $m = EtcdTest->start;
my $dead = '127.0.0.1:' . EtcdTest::closed_port();
my $P = EtcdTest::prefix() . 'events/';
my @ev;
my $c = EV::Etcd->new(endpoints => [ $dead, $m->endpoint ], timeout => 5,
                      on_event => sub { push @ev, $_[0] });
my $kv = EtcdTest::Caller->new($c);
my $puts = 0;
my $put = sub { my ($label, @kv) = @_; $puts++; $kv->ok_call($label, 'put', @kv) };

$put->('put through a dead first endpoint', "${P}a", 1);
is_deeply([ map { $_->{type} } @ev ], [qw(endpoint_down failover retry)],
          'events: the dead endpoint down, the failover, the retry');
my ($down, $fo, $retry) = @ev;
is($down->{endpoint}, $dead, 'endpoint_down names the dead endpoint');
is_deeply([ @$fo{qw(from to)} ], [ $dead, $m->endpoint ], 'failover from the dead endpoint to the live one');
like($fo->{why}, qr/^UNAVAILABLE \(.*refused/i, 'failover: why');
is($retry->{method}, 'put', 'retry: method');
is($retry->{attempt}, 2, 'retry: the second attempt');
is($retry->{delay}, 0, 'retry: at once on the next endpoint');
is($retry->{error}{status}, 'UNAVAILABLE', 'retry: the error of the failed attempt');
is($retry->{error}{source}, 'put', 'retry: error source');
for my $e (@ev) {
    ok(abs($e->{time} - time) < 60, "$e->{type}: time is now");
}

my (@seen, $created);
my $w = $c->watch("${P}w", sub {
    my ($r, $e) = @_;
    return if $e;
    $created = 1 if $r->{created};
    push @seen, map { $_->{kv}{value} } @{ $r->{events} || [] };
});
ok(EtcdTest::run_until(5, sub { $created }), 'watch created');
$put->("put $_", "${P}w", $_) for 1 .. 3;
ok(EtcdTest::run_until(5, sub { @seen == 3 }), 'three values delivered');
my $rev = $kv->ok_call('get', 'get', "${P}w")->{kvs}[0]{mod_revision};
$puts++;

@ev = ();
# Killed outright where etcd keeps acknowledged writes across that
# (EtcdTest::crash_safe), stopped otherwise; started again with its data.
$m->kill if EtcdTest::crash_safe();
$m->restart;
ok(EtcdTest::run_until(20, sub { grep { $_->{type} eq 'stream_resumed' } @ev }),
   'the watch stream is resumed after the restart');
$put->('put after the restart', "${P}w", 4);
ok(EtcdTest::run_until(10, sub { @seen == 4 }), 'the value written after the restart is delivered');
is_deeply(\@seen, [ 1 .. 4 ], 'each value once, in order');
my ($lost) = grep { $_->{type} eq 'stream_lost' } @ev;
my ($resumed) = grep { $_->{type} eq 'stream_resumed' } @ev;
ok($lost, 'stream_lost seen');
is($lost->{kind}, 'watch', 'stream_lost: kind');
is($lost->{endpoint}, $m->endpoint, 'stream_lost: endpoint');
ok($lost->{error}{code}, 'stream_lost: an error hash') or diag explain $lost;
is($resumed->{kind}, 'watch', 'stream_resumed: kind');
is($resumed->{endpoint}, $m->endpoint, 'stream_resumed: endpoint');
is($resumed->{revision}, $rev, 'stream_resumed: the revision delivered before the loss');
my @order = map { $_->{type} } grep { $_->{type} =~ /^stream_/ } @ev;
is($order[0], 'stream_lost', 'lost comes before resumed');
ok((grep { $_->{type} eq 'endpoint_down' && $_->{endpoint} eq $m->endpoint } @ev),
   'endpoint_down for the restarted member');

my $s = $c->stats;
my %count;
# Counted over the whole run: the events of the first part were cleared.
$count{$_->{type}}++ for @ev;
is($s->{reconnects}, $count{stream_resumed}, 'stats: reconnects = stream_resumed events');
is($s->{retries}, 1 + ($count{retry} // 0), 'stats: retries = retry events');
is($s->{failovers}, 1 + ($count{failover} // 0), 'stats: failovers = failover events');
is($s->{requests}, $puts, "stats: requests = $puts calls");
is($s->{relogins}, 0, 'stats: no relogins');
is($s->{watches}, 1, 'stats: one watch');
is($s->{in_flight}, 0, 'stats: nothing in flight');
cmp_ok($s->{bytes_in}, '>', 100, 'stats: bytes in');
cmp_ok($s->{bytes_out}, '>', 100, 'stats: bytes out');
$w->cancel(sub {});
ok(EtcdTest::run_until(5, sub { $c->stats->{watches} == 0 }), 'stats: no watch after cancel');

# --- a managed keepalive lost --------------------------------------------------

@ev = ();
# A TTL of 6: renewals every 2 s, and the revocation is learnt at the
# next renewal's answer.
my $lease = $kv->ok_call('lease_grant', 'lease_grant', 6)->{id};
my ($renewed, $on_lost) = (0);
my $ka = $c->lease_keepalive_start($lease, { on_lost => sub { $on_lost = $_[0] } }, sub { $renewed++ });
ok(EtcdTest::run_until(5, sub { $renewed }), 'keepalive renews');
is($c->stats->{keepalives}, 1, 'stats: one managed keepalive');
EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $m->endpoint ]))
    ->ok_call('revoke from another client', 'lease_revoke', $lease);
ok(EtcdTest::run_until(10, sub { $on_lost }), 'on_lost called');
my ($kl) = grep { $_->{type} eq 'keepalive_lost' } @ev;
ok($kl, 'keepalive_lost seen');
is($kl->{lease}, $lease, 'keepalive_lost: lease');
is($kl->{error}{status}, $on_lost->{status}, 'keepalive_lost: the error on_lost got');
is($c->stats->{keepalives}, 0, 'stats: no managed keepalive left');

# --- a dying listener ------------------------------------------------------------

{
    my @warn;
    local $SIG{__WARN__} = sub { push @warn, @_ };
    my $d = EV::Etcd->new(endpoints => [ $dead, $m->endpoint ], on_event => sub { die "listener died\n" });
    EtcdTest::Caller->new($d)->ok_call('a client whose on_event dies still works', 'put', "${P}d", 1);
    like("@warn", qr/listener died/, 'the error is warned');
}

# --- EV_ETCD_DEBUG ---------------------------------------------------------------

sub debug_run {
    my ($value) = @_;
    local $ENV{EV_ETCD_DEBUG} = $value;
    my $code = 'use EV; use EV::Etcd; my $c = EV::Etcd->new(endpoints => [@ARGV]); '
             . '$c->put(q{' . "${P}dbg" . '}, 1, sub { print $_[1] ? "fail\n" : "ok\n"; EV::break }); EV::run;';
    my $out = File::Temp->new;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>', "$out" or die;
        exec $^X, (map { "-I$_" } @INC), '-e', $code, $dead, $m->endpoint;
        die "exec: $!";
    }
    my $stdout = do { local $/; <$fh> };
    close $fh;
    open my $err, '<', "$out" or die;
    return ($stdout, do { local $/; <$err> } // "");
}
require File::Temp;
my ($out, $err) = debug_run(1);
is($out, "ok\n", 'EV_ETCD_DEBUG=1: the put succeeds');
like($err, qr/^EV::Etcd: endpoint_down endpoint=\Q$dead\E$/m, 'debug line: endpoint_down');
like($err, qr/^EV::Etcd: failover from=\Q$dead\E to=\Q@{[ $m->endpoint ]}\E why=UNAVAILABLE /m,
     'debug line: failover');
like($err, qr/^EV::Etcd: retry method=put attempt=2 delay=0\.000 error=UNAVAILABLE \(/m, 'debug line: retry');
($out, $err) = debug_run(0);
is($out, "ok\n", 'EV_ETCD_DEBUG=0: the put succeeds');
is($err, '', 'EV_ETCD_DEBUG=0: nothing printed');

# --- re-login after a restart --------------------------------------------------------

my $a = EtcdTest->start;
my $admin = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ $a->endpoint ]));
$admin->ok_call('user_add root', 'user_add', 'root', 'rootpw');
$admin->ok_call('grant root', 'user_grant_role', 'root', 'root');
$admin->ok_call('auth_enable', 'auth_enable');
my @aev;
my $u = EV::Etcd->new(endpoints => [ $a->endpoint ], timeout => 5, user => 'root', password => 'rootpw',
                      on_event => sub { push @aev, $_[0] });
my $ukv = EtcdTest::Caller->new($u);
$ukv->ok_call('put with a login', 'put', "${P}auth", 1);
is(scalar(grep { $_->{type} eq 'relogin' } @aev), 0, 'the first login is no re-login');
# Simple tokens live in the member's memory: a restart voids them.
$a->restart;
$ukv->ok_call('put after the restart', 'put', "${P}auth", 2);
my @re = grep { $_->{type} eq 'relogin' } @aev;
is(scalar @re, 1, 'one relogin event');
is($re[0]{ok}, 1, 'relogin: ok');
is($u->stats->{relogins}, 1, 'stats: relogins = relogin events');
is($u->stats->{requests}, 2, 'stats: two requests (logins are not counted)');

EtcdTest::Caller->exactly_once($kv, $admin, $ukv);
done_testing;
