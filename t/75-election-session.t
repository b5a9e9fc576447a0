use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest qw(rec wait_rec call new_session);
use EV;
use EV::Etcd;

# EV::Etcd::Election against a real etcd: campaign, proclaim, leader,
# observe, resign; a standby whose session lease is revoked while it waits
# never reports leadership (whether the loss is noticed by the keepalive
# first or only by the re-read of its key); a session lost while leading
# calls on_lost; timeout and cancel withdraw the candidacy.

my $P = EtcdTest::prefix();
my ($c, $other) = EtcdTest::clients(2, timeout => 10);

sub count_prefix {
    my ($pfx) = @_;
    my ($r) = call("count $pfx", sub { $c->get($pfx, { prefix => 1 }, $_[0]) });
    return $r->{count};
}

my $name = "${P}e";
my ($s1, $s2, $s3) = map { new_session($c, { ttl => 30 }) } 1 .. 3;
my ($e1, $e2, $e3) = map { $_->election($name) } $s1, $s2, $s3;

# an observer on its own session's election object
my @seen;
my $obs = $e3->observe(sub {
    my ($kv, $err) = @_;
    push @seen, $err ? [ 'ERR', $err->{message} ] : [ $kv->{key}, $kv->{value} ];
});

# ---------------------------------------------------------------------------
# campaign, leader, proclaim, resign

my ($res, $err) = call('campaign e1', sub { $e1->campaign('v1', $_[0]) });
is($res, $e1, 'e1 elected');
ok($e1->is_leader, 'e1 is_leader');
is($e1->key, sprintf('%s/%x', $name, $s1->lease), 'key is name/<hex lease>');
my ($lkv) = call('leader', sub { $e1->leader($_[0]) });
is($lkv->{key}, $e1->key, 'leader is e1\'s key');
is($lkv->{value}, 'v1', 'leader value');
is($lkv->{lease}, $s1->lease, 'on the session lease');
is($e1->revision, $lkv->{create_revision}, 'revision is the key\'s create revision');

my @p = call('proclaim', sub { $e1->proclaim('v1b', $_[0]) });
is($p[0], $e1, 'proclaim ok');
($lkv) = call('leader after proclaim', sub { $e2->leader($_[0]) });
is($lkv->{value}, 'v1b', 'leader value proclaimed');

my ($r2, $cb2) = rec('campaign e2');
my $h2 = $e2->campaign('v2', $cb2);
can_ok($h2, 'cancel');
EtcdTest::run_loop(0.8);
is($r2->{n}, 0, 'e2 waits while e1 leads');
ok(!$e2->is_leader, 'e2 not leader while waiting');
my $t_resign = Time::HiRes::time();
my @rs = call('resign e1', sub { $e1->resign($_[0]) });
is($rs[0], $e1, 'resign ok');
ok(!$e1->is_leader, 'e1 not leader');
wait_rec($r2);
is($r2->{args}[0], $e2, 'e2 elected after the resignation');
cmp_ok($r2->{at}, '>=', $t_resign, '... not before');
($lkv) = call('leader e2', sub { $e1->leader($_[0]) });
is($lkv->{value}, 'v2', 'leader is e2');

my @np = call('proclaim not leader', sub { $e1->proclaim('x', $_[0]) });
is_deeply($np[1], { code => 9, status => 'FAILED_PRECONDITION', message => 'election: not leader',
                    source => 'election', retryable => 0 }, 'proclaim when not leader fails');
call('resign e2', sub { $e2->resign($_[0]) });
my @nl = call('no leader', sub { $e1->leader($_[0]) });
is($nl[1]{message}, 'election: no leader', 'no leader after both resigned');
is($nl[1]{status}, 'NOT_FOUND', '... NOT_FOUND');
EtcdTest::run_loop(0.3);
is_deeply(\@seen, [ [ $e1->key, 'v1' ], [ $e1->key, 'v1b' ], [ $e2->key, 'v2' ] ],
          'observe saw e1, its proclamation, then e2');

# ---------------------------------------------------------------------------
# the standby whose lease is revoked while it waits: the leader resigns at
# once, before the keepalive can notice; the re-read refuses leadership

{
    my $s = new_session($c, { ttl => 30 });
    my $e = $s->election($name);
    call('campaign e1 again', sub { $e1->campaign('v1', $_[0]) });
    ok($e1->is_leader, 'e1 leads');
    my ($rw, $cbw) = rec('standby campaign');
    $e->campaign('standby', $cbw);
    EtcdTest::run_loop(0.5);
    is($rw->{n}, 0, 'standby waits');
    my $mark = @seen;
    my @rv = call('revoke the standby\'s lease', sub { $other->lease_revoke($s->lease, $_[0]) });
    ok(!$rv[1], 'revoked');
    my $lost_at_callback;
    my $orig = $rw;
    call('resign e1', sub { $e1->resign($_[0]) });
    wait_rec($rw);
    ok(!$rw->{args}[0], 'standby whose lease was revoked is not elected');
    is($rw->{args}[1]{status}, 'NOT_FOUND', '... NOT_FOUND');
    is($rw->{args}[1]{message}, 'election: session lost during campaign', '... message');
    is($rw->{args}[1]{source}, 'election', '... source election');
    ok(!$e->is_leader, 'standby is_leader false');
    EtcdTest::run_loop(0.5);
    is_deeply([ grep { $_->[0] eq $e->key } @seen[ $mark .. $#seen ] ], [],
              'observe never showed the standby as leader');
    my @nl2 = call('no leader', sub { $e1->leader($_[0]) });
    is($nl2[1]{message}, 'election: no leader', 'nobody leads');
    is(count_prefix("$name/"), 0, 'no key left');
}

# the same, the loss noticed by the keepalive while waiting
{
    my $s = new_session($c, { ttl => 6 });
    my $e = $s->election($name);
    call('campaign e1 again', sub { $e1->campaign('v1', $_[0]) });
    my ($rw, $cbw) = rec('standby campaign 2');
    $e->campaign('standby', $cbw);
    EtcdTest::run_loop(0.3);
    call('revoke', sub { $other->lease_revoke($s->lease, $_[0]) });
    wait_rec($rw, 10);
    ok($s->is_lost, 'the keepalive noticed the loss');
    ok(!$rw->{args}[0], 'standby not elected');
    is($rw->{args}[1]{message}, 'election: session lost during campaign', '... session lost during campaign');
    is($rw->{args}[1]{session_error}{status}, 'NOT_FOUND', '... with the session\'s error');
    call('resign e1', sub { $e1->resign($_[0]) });
}

# a standby whose lease runs out (keepalive stopped) while it waits
{
    my $s = new_session($c, { ttl => 2 });
    $s->{ka}->stop;    # stop renewing without telling the session
    my $e = $s->election($name);
    call('campaign e1 again', sub { $e1->campaign('v1', $_[0]) });
    my ($rw, $cbw) = rec('standby campaign 3');
    $e->campaign('standby', $cbw);
    my $mark = @seen;
    # wait until the server expired the lease, then the leader resigns
    my $gone = 0;
    EtcdTest::run_until(10, sub {
        my ($t) = call('ttl', sub { $c->lease_time_to_live($s->lease, $_[0]) });
        $gone = $t->{ttl} == -1;
        EtcdTest::run_loop(0.3) unless $gone;
        $gone;
    });
    ok($gone, 'standby lease expired');
    call('resign e1', sub { $e1->resign($_[0]) });
    wait_rec($rw);
    ok(!$rw->{args}[0], 'standby with an expired lease is not elected');
    is($rw->{args}[1]{message}, 'election: session lost during campaign', '... message');
    EtcdTest::run_loop(0.3);
    is_deeply([ grep { $_->[0] eq $e->key } @seen[ $mark .. $#seen ] ], [],
              'observe never showed it as leader');
}

# ---------------------------------------------------------------------------
# session lost while leader

{
    my @lost;
    my $s = new_session($c, { ttl => 6 });
    my $e = $s->election($name, { on_lost => sub { push @lost, [@_] } });
    call('campaign', sub { $e->campaign('short', $_[0]) });
    ok($e->is_leader, 'leads');
    my ($rw, $cbw) = rec('successor');
    $e2->campaign('next', $cbw);
    call('revoke', sub { $other->lease_revoke($s->lease, $_[0]) });
    ok(EtcdTest::run_until(10, sub { @lost }), 'on_lost called');
    EtcdTest::run_loop(0.3);
    is(scalar @lost, 1, 'on_lost called once');
    ok(!$e->is_leader, 'no longer leader');
    my @np2 = call('proclaim after loss', sub { $e->proclaim('x', $_[0]) });
    is($np2[1]{message}, 'election: not leader', 'proclaim after the loss fails');
    wait_rec($rw);
    is($rw->{args}[0], $e2, 'the next candidate was elected');
    call('resign e2', sub { $e2->resign($_[0]) });
}

# ---------------------------------------------------------------------------
# timeout and cancel withdraw the candidacy

{
    call('campaign e1', sub { $e1->campaign('v1', $_[0]) });
    my ($x, $err) = call('campaign timeout', sub { $e2->campaign('v2', { timeout => 0.5 }, $_[0]) });
    is($err->{status}, 'DEADLINE_EXCEEDED', 'campaign timeout: DEADLINE_EXCEEDED');
    is($err->{source}, 'election', '... source election');
    is(count_prefix($e2->key), 0, '... candidacy withdrawn');
    my ($rc, $cbc) = rec('campaign to cancel');
    my $h = $e2->campaign('v2', $cbc);
    EtcdTest::run_loop(0.3);
    is(count_prefix($e2->key), 1, 'waiting candidate has its key');
    $h->cancel;
    wait_rec($rc);
    is($rc->{args}[1]{status}, 'CANCELLED', 'cancelled campaign: CANCELLED');
    is(count_prefix($e2->key), 0, '... candidacy withdrawn');
    call('resign e1', sub { $e1->resign($_[0]) });
}

# observe cancel: nothing after
{
    my @cn = call('observe cancel', sub { $obs->cancel($_[0]) });
    is_deeply(\@cn, [ {}, undef ], 'observe cancel calls back ({}, undef)');
    my $mark = @seen;
    call('campaign after cancel', sub { $e1->campaign('late', $_[0]) });
    EtcdTest::run_loop(0.5);
    is(scalar @seen, $mark, 'nothing observed after cancel');
    ok(!grep({ $_->[0] eq 'ERR' } @seen), 'observe reported no error');
    call('resign', sub { $e1->resign($_[0]) });
}

# futures
SKIP: {
    skip 'Future not installed', 2 unless eval { require EV::Etcd::Future; 1 };
    is($e1->campaign_f('fv')->get, $e1, 'campaign_f');
    is($e1->leader_f->get->{value}, 'fv', 'leader_f');
    $e1->resign_f->get;
}

# croaks
{
    my $cb = sub { };
    my @bad = (
        [ sub { $s1->election('') }, qr/^EV::Etcd::Session::election: name must be a non-empty string/ ],
        [ sub { $s1->election('n', { on_lost => [] }) }, qr/^EV::Etcd::Session::election: on_lost must be a code reference/ ],
        [ sub { $e1->campaign($cb) }, qr/^EV::Etcd::Election::campaign: value missing/ ],
        [ sub { $e1->campaign(undef, $cb) }, qr/^EV::Etcd::Election::campaign: value must be a string/ ],
        [ sub { $e1->campaign('v', { timeout => 0 }, $cb) }, qr/^EV::Etcd::Election::campaign: timeout must be a positive number/ ],
        [ sub { $e1->campaign('v', 'x') }, qr/^EV::Etcd::Election::campaign: callback must be a code reference/ ],
        [ sub { $e1->proclaim('v') }, qr/^EV::Etcd::Election::proclaim: callback must be a code reference/ ],
        [ sub { $e1->proclaim([], $cb) }, qr/^EV::Etcd::Election::proclaim: value must be a string/ ],
        [ sub { $e1->resign(1) }, qr/^EV::Etcd::Election::resign: callback must be a code reference/ ],
        [ sub { $e1->leader }, qr/^EV::Etcd::Election::leader: callback must be a code reference/ ],
        [ sub { $e1->observe }, qr/^EV::Etcd::Election::observe: callback must be a code reference/ ],
    );
    for my $b (@bad) {
        ok(!eval { $b->[0]->(); 1 }, "croaks: $b->[1]");
        like($@, $b->[1], '... message');
    }
}

call("close", sub { $_->close($_[0]) }) for $s1, $s2, $s3;
EtcdTest::rec_exactly_once();
EtcdTest::cleanup($c);
done_testing;
