use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
BEGIN { EtcdTest::need_modules('AnyEvent') }
use EV;
use AnyEvent;
use EV::Etcd;

# AnyEvent running on EV: EV::Etcd's callbacks arrive while a condvar waits,
# and AnyEvent timers and EV::Etcd requests share the one loop.

my @eps = EtcdTest::endpoints();
my $P   = EtcdTest::prefix();
my $client = EV::Etcd->new(endpoints => [@eps], timeout => 10);

is(AnyEvent::detect(), 'AnyEvent::Impl::EV', 'AnyEvent uses EV');

# every wait below is bounded by an AnyEvent timer
sub wait_cv {
    my ($cv, $what) = @_;
    my $t = AE::timer(15, 0, sub { $cv->croak("$what: timed out") });
    my @r = eval { $cv->recv };
    fail($@) if $@;
    return @r;
}

# ---------------------------------------------------------------------------------
# a condvar waits for a request

my $cv = AE::cv;
$client->put("${P}ae1", 'one', sub { $cv->send(@_) });
my ($resp, $err) = wait_cv($cv, 'put');
ok(!$err, 'put: no error');
ok($resp->{header}{revision} > 0, 'put: revision');

$cv = AE::cv;
$client->get("${P}ae1", sub { $cv->send(@_) });
($resp, $err) = wait_cv($cv, 'get');
is($resp->{kvs}[0]{value}, 'one', 'get through a condvar');

# begin/end over many requests
$cv = AE::cv;
my %done;
for my $i (1 .. 10) {
    $cv->begin;
    $client->put("${P}many/$i", "v$i", sub {
        my ($r, $e) = @_;
        $done{$i} = $e ? $e->{message} : $r->{header}{revision};
        $cv->end;
    });
}
wait_cv($cv, 'ten puts');
is(scalar(grep { /^\d+$/ && $_ > 0 } values %done), 10, 'ten puts answered');

# ---------------------------------------------------------------------------------
# AnyEvent timers and etcd requests interleave on the one loop

$cv = AE::cv;
my @order;
my $t1 = AE::timer(0.05, 0, sub {
    push @order, 'timer';
    $client->put("${P}from-timer", 'x', sub {
        push @order, 'put from timer';
        $client->get("${P}from-timer", sub {
            push @order, 'get: ' . ($_[0] ? $_[0]{kvs}[0]{value} : 'error');
            $cv->send;
        });
    });
});
my $ticks = 0;
my $tick  = AE::timer(0.01, 0.01, sub { $ticks++ });
wait_cv($cv, 'timer then requests');
undef $tick;
is_deeply(\@order, ['timer', 'put from timer', 'get: x'], 'request issued in an AnyEvent timer');
ok($ticks >= 3, "a repeating AnyEvent timer kept ticking meanwhile ($ticks ticks)");

# ---------------------------------------------------------------------------------
# a watch feeding a condvar; the write comes from an AnyEvent timer

$cv = AE::cv;
my @events;
my $w = $client->watch("${P}watched", { prefix => 1 }, sub {
    my ($r, $e) = @_;
    return $cv->croak("watch error: $e->{message}") if $e;
    push @events, map { "$_->{type} $_->{kv}{key}=$_->{kv}{value}" } @{ $r->{events} };
    $cv->send if @events >= 2;
});
my $t2 = AE::timer(0.1, 0, sub {
    $client->put("${P}watched/a", '1', sub { $client->put("${P}watched/b", '2', sub { }) });
});
wait_cv($cv, 'watch events');
is_deeply(\@events, ["PUT ${P}watched/a=1", "PUT ${P}watched/b=2"], 'watch events through a condvar');
$cv = AE::cv;
$w->cancel(sub { $cv->send(@_) });
($resp, $err) = wait_cv($cv, 'cancel');
is_deeply([ $resp, $err ], [ {}, undef ], 'cancel callback through a condvar');

# ---------------------------------------------------------------------------------
# errors arrive the same way; an AnyEvent timeout can race a request

my $down = EV::Etcd->new(endpoints => ['127.0.0.1:' . EtcdTest::closed_port()], timeout => 2);
$cv = AE::cv;
$down->get('k', sub { $cv->send(@_) });
($resp, $err) = wait_cv($cv, 'error');
ok(!defined $resp, 'unreachable server: no response');
is($err->{status}, 'UNAVAILABLE', 'unreachable server: UNAVAILABLE through a condvar');

$cv = AE::cv;
my $winner;
my $to = AE::timer(5, 0, sub { $winner //= 'timeout'; $cv->send });
$client->get("${P}ae1", sub { $winner //= 'etcd'; $cv->send });
wait_cv($cv, 'race');
is($winner, 'etcd', 'the request beats a 5 s AnyEvent timeout');

EtcdTest::cleanup($client);
done_testing;
