use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "DESTRUCTION": destroying clients in every awkward place: inside its
# own unary callback, inside a watch callback, with watches and other
# streams outstanding, five together, and at global destruction of a
# program that leaves clients and watches in globals. No crash, no
# callback after the destruction, no hang, nothing on stderr.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();

sub client { EV::Etcd->new(endpoints => [@eps], timeout => 10) }

my $admin = EtcdTest::Caller->new(client());
our $LEASE = $admin->lease(60);

# Starts the streams this build has on $c (watch, and the managed keepalive
# and observe handles where they exist); every callback bumps $$count.
sub streams {
    my ($c, $count, $tag) = @_;
    my @h;
    push @h, $c->watch("${P}$tag/", { prefix => 1 }, sub { $$count++ });
    push @h, $c->election_observe("${P}$tag-e", sub { $$count++ })
        if EV::Etcd->can('election_observe');
    push @h, $c->lease_keepalive_start($LEASE, { on_lost => sub { $$count++ } }, sub { $$count++ })
        if EV::Etcd->can('lease_keepalive_start');
    $c->lease_keepalive($LEASE, sub { $$count++ }) if EV::Etcd->can('lease_keepalive');
    return @h;
}

# Several unary requests and streams outstanding, then $c goes away:
# nothing of it may call back afterwards and the loop must end by itself.
sub outstanding {
    my ($c, $tag) = @_;
    my $after = 0;
    my @h = streams($c, \$after, $tag);
    $c->get("${P}$tag", sub { $after++ }) for 1 .. 20;
    $c->put("${P}$tag", 'v', sub { $after++ }) for 1 .. 5;
    $c->lock("${P}$tag-l", 0, sub { $after++ });
    return (\$after, @h);
}

# ---------------------------------------------------------------------------

{
    my $c = client();
    my ($n, $more) = (0, 0);
    my ($after) = outstanding($c, 'in-unary');
    $$after = 0;
    $c->put("${P}u", 'v', sub { $n++; undef $c });
    ok(EtcdTest::run_loop(10), 'EV::run returned by itself after undef inside a unary callback');
    is($n, 1, 'the callback ran once');
    ok(!defined $c, 'the client is gone');
    # the other outstanding work may have completed before the put's callback
    my $late = $$after;
    EtcdTest::run_until(0.5, sub { 0 });
    is($$after, $late, 'nothing called back after the destruction');
}

{
    my $c = client();
    my $w_n = 0;
    my ($after, @h) = outstanding($c, 'in-watch');
    my $w = $c->watch("${P}wd/", { prefix => 1 }, sub {
        my ($r) = @_;
        $w_n++;
        undef $c if $r && @{ $r->{events} };
    });
    my $putter = client();
    my $acked = 0;
    EtcdTest::run_until(0.5, sub { 0 });
    $putter->put("${P}wd/1", 'x', sub { $acked++ });
    ok(EtcdTest::run_until(10, sub { !defined $c }), 'undef inside the watch callback (on its first event)');
    my $at = $w_n;
    my $late = $$after;
    $putter->put("${P}wd/2", 'y', sub { $acked++ });
    $putter->put("${P}in-watch/z", 'z', sub { $acked++ });
    ok(EtcdTest::run_until(5, sub { $acked == 3 }), 'other client still works');
    EtcdTest::run_until(0.5, sub { 0 });
    is($w_n, $at, 'no watch callback after the destruction');
    is($$after, $late, 'no other callback of the destroyed client');
    $w->cancel(sub { $acked++ });
    ok(EtcdTest::run_until(5, sub { $acked == 4 }), 'cancel on the orphaned handle calls back');
    undef $putter;
    ok(EtcdTest::run_loop(10), 'EV::run returns by itself afterwards');
}

{
    my $c = client();
    my ($after, @h) = outstanding($c, 'outstanding');
    my $created;
    my $w = $c->watch("${P}o/", sub { $created++ });
    EtcdTest::run_until(5, sub { $created });
    my $late = $$after;
    undef $c;
    ok(EtcdTest::run_loop(10), 'EV::run returns by itself after undef with streams outstanding');
    is($$after, $late, 'no callback after the destruction');
    my $cb = 0;
    my @cancellable = grep { $_->can('cancel') } @h, $w;
    $_->cancel(sub { $cb++ }) for @cancellable;
    $_->stop for grep { $_->can('stop') } @h;
    ok(EtcdTest::run_until(5, sub { $cb == @cancellable }), 'cancelling the handles afterwards still calls back');
}

{
    my @c = map { client() } 1 .. 5;
    my @after = map { (outstanding($_, "five$_"))[0] } @c;
    EtcdTest::run_until(0.2, sub { 0 });
    my @late = map { $$_ } @after;
    @c = ();
    ok(EtcdTest::run_loop(10), 'five clients destroyed together: EV::run returns');
    is_deeply([ map { $$_ } @after ], \@late, 'none of them called back afterwards');
    my $c = client();
    my $caller = EtcdTest::Caller->new($c);
    $caller->ok_call('a new client works', 'put', "${P}after", 'ok');
    EtcdTest::cleanup($c);
}

$admin->revoke_leases;

# ---------------------------------------------------------------------------
# global destruction: programs that leave everything in globals

my $prog_head = <<'PERL';
use strict; use warnings;
use EV::Etcd;
our @C = map { EV::Etcd->new(endpoints => [@ARGV], timeout => 10) } 1 .. 3;
our ($P) = $ENV{T_PREFIX};
our @W = map { my $c = $_; $c->watch("${P}g/", { prefix => 1 }, sub { }) } @C;
our @O = EV::Etcd->can('election_observe') ? map { $_->election_observe("${P}g-e", sub { }) } @C : ();
our @K = EV::Etcd->can('lease_keepalive_start') ? map { $_->lease_keepalive_start(12345, sub { }) } @C : ();
$C[0]->watch("${P}dropped/", sub { });    # handle dropped at once
our $CB = sub { };
for my $c (@C) { $c->get("${P}g", $CB) for 1 .. 50; $c->put("${P}g/k", 'v', $CB) }
PERL

my %cases = (
    'exit at once'               => '',
    'exit inside a callback'     => 'my $t = EV::timer(0.3, 0, sub { exit 0 }); EV::run;',
    'requests from a callback'   => 'our $l = $C[1]->lease_grant(5, sub { $C[2]->get("${P}g", $CB) for 1 .. 10 }); EV::run(EV::RUN_ONCE);',
    'undef some, exit in a callback' => 'EV::run(EV::RUN_ONCE); undef $C[1]; $C[0]->status(sub { exit 0 }); EV::run;',
);
require File::Temp;
for my $name (sort keys %cases) {
    my ($fh, $path) = File::Temp::tempfile(UNLINK => 1, SUFFIX => '.pl');
    print {$fh} $prog_head, $cases{$name}, "\n";
    close $fh;
    local $ENV{T_PREFIX} = $P;
    my $t0 = Time::HiRes::time();
    my $out = `$^X -Mblib $path @eps 2>&1`;
    my $status = $?;
    my $took = Time::HiRes::time() - $t0;
    is($status, 0, "global destruction ($name): exit status 0");
    is($out, '', "global destruction ($name): nothing on stdout or stderr");
    cmp_ok($took, '<', 5, "global destruction ($name): exits promptly");
}

done_testing;
