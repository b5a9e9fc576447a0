use strict;
use warnings;
use Test::More;
use HTTP::Tiny ();
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV;
use EV::Etcd;

# POD "OVERLOAD": refusals that etcd sends before a request entered raft are
# retried, writes included.
#
# 1. "etcdserver: request is too large" comes from the member's own
#    --max-request-bytes: a write one member refuses goes to the next
#    endpoint; with no other endpoint the refusal is reported at once.
# 2. "etcdserver: too many requests": a defragmentation holds the backend's
#    lock, so nothing is applied while it runs, and a flood of writes then
#    runs the committed index more than 5000 entries ahead of the applied
#    one. The member refuses the writes past that point; the client retries
#    them until every one succeeded. etcd's own metrics count the refusals,
#    and a client that gives up within 0.2 s sees them.

EtcdTest::need_etcd();

my $P = EtcdTest::prefix();

sub member_id {
    my ($m) = @_;
    my $c = EV::Etcd->new(endpoints => [ $m->endpoint ], timeout => 5);
    my ($r, $e) = EtcdTest::Caller->new($c)->call('status');
    return $r && $r->{header} ? $r->{header}{member_id} : undef;
}

sub timed_call {
    my ($client, $method, @args) = @_;
    my $t0  = Time::HiRes::time();
    my ($r, $e) = EtcdTest::Caller->new($client, timeout => 30)->call($method, @args);
    return ($r, $e, Time::HiRes::time() - $t0);
}

# --- a member with a smaller request limit than the others -----------------

{
    my @m = EtcdTest->start_cluster(3, member_args => [ ['--max-request-bytes=4096'] ]);
    my @id = map { member_id($_) } @m;
    is(scalar(grep { defined } @id), 3, 'three members answer status');
    my $big = join '', map { chr(32 + $_ % 90) } 1 .. 64 * 1024;

    my $c = EV::Etcd->new(endpoints => [ map { $_->endpoint } @m ], timeout => 10);
    my ($r, $e, $took) = timed_call($c, 'put', "${P}big", $big);
    ok($r && !$e, 'a 64 KiB put through a client listing the small member first succeeds')
        or diag explain $e;
    is($r && $r->{header}{member_id}, $id[1], 'the next endpoint took it');

    my $other = EV::Etcd->new(endpoints => [ $m[2]->endpoint ], timeout => 10);
    ($r, $e) = EtcdTest::Caller->new($other)->call('get', "${P}big");
    ok($r && $r->{kvs} && @{ $r->{kvs} } == 1 && $r->{kvs}[0]{value} eq $big,
       'another member returns the value') or diag explain $e;

    my $small = EV::Etcd->new(endpoints => [ $m[0]->endpoint ], timeout => 10);
    ($r, $e, $took) = timed_call($small, 'put', "${P}big2", $big);
    ok(!$r && $e, 'a client of the small member alone gets an error');
    is($e && $e->{status}, 'INVALID_ARGUMENT', '... INVALID_ARGUMENT');
    is($e && $e->{message}, 'etcdserver: request is too large', "... with etcd's message");
    cmp_ok($took, '<', 2, '... at once, not after retries until the 10 s timeout');

    ($r, $e) = EtcdTest::Caller->new($small)->call('put', "${P}small", 'v');
    ok($r && !$e, 'the small member takes a small put') or diag explain $e;
    $_->stop for @m;
}

# --- too many requests --------------------------------------------------------

my $FILL  = 160 * 16;    # 64 KiB values: 160 MiB to defragment
my $FLOOD = 20000;       # writes issued at once while it runs

# etcd gives up waiting for a write it took after 5 s plus two election
# timeouts ("etcdserver: request timed out", a write that may still be
# applied): a long election timeout keeps that far beyond the
# defragmentation, which a busy machine may slow down to a few seconds.
my $m  = EtcdTest->start(extra_args => [ '--heartbeat-interval=500', '--election-timeout=5000' ]);
my $ep = $m->endpoint;

# Put RPCs the member ended with each gRPC code (its /metrics).
sub put_codes {
    my $res = HTTP::Tiny->new(timeout => 10)->get("http://$ep/metrics");
    return undef unless $res->{success};
    my %n;
    $n{$1} = $2 while $res->{content} =~ /^grpc_server_handled_total\{grpc_code="(\w+)",grpc_method="Put",grpc_service="etcdserverpb\.KV",grpc_type="unary"\} (\d+)$/mg;
    return \%n;
}

# Fills the member, 64 writes at a time.
{
    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 60);
    my $value = 'x' x (64 * 1024);
    my ($issued, $done, @errs) = (0, 0);
    my $next;
    $next = sub {
        return if $issued >= $FILL;
        my $k = sprintf '%sfill/%05d', $P, $issued++;
        $c->put($k, $value, sub { $done++; push @errs, $_[1] if $_[1]; $next->() });
    };
    $next->() for 1 .. 64;
    ok(EtcdTest::run_until(300, sub { $done >= $FILL }), "$FILL fill writes answered");
    is(scalar @errs, 0, 'no fill write failed') or diag explain $errs[0];
    undef $next;
}

my $before = put_codes();
ok($before && exists $before->{Unknown}, "the member's metrics count Put RPCs by code")
    or diag explain $before;

my $admin    = EV::Etcd->new(endpoints => [$ep], timeout => 120);
my $flood    = EV::Etcd->new(endpoints => [$ep], timeout => 60,
                            retry_backoff_min => 0.5, retry_backoff_max => 1);
my $observer = EV::Etcd->new(endpoints => [$ep], timeout => 10);

# Connected before the defragmentation starts, so that it surely holds the
# backend when the flood arrives.
for my $c ($admin, $flood, $observer) {
    my ($r, $e) = EtcdTest::Caller->new($c)->call('status');
    ok($r && !$e, 'a client connects') or diag explain $e;
}

my ($defrag, @flood_errors, @observed);
my ($done, $twice) = (0, 0);
my $t0 = Time::HiRes::time();
$admin->defragment(sub { $defrag = [ @_, Time::HiRes::time() - $t0 ] });
# The flood starts 0.1 s later, when the defragmentation holds the backend.
my $start = EV::timer(0.1, 0, sub {
    for my $i (1 .. $FLOOD) {
        my $n = 0;
        $flood->put("${P}flood/$i", "v$i", sub {
            return $twice++ if $n++;
            $done++;
            push @flood_errors, $_[1] if $_[1];
        });
    }
});
# Meanwhile a client that gives up after 0.2 s writes every 20 ms.
my $i = 0;
my $observe = EV::timer(0.1, 0.02, sub {
    $observer->put("${P}observer/" . $i++, 'v', { timeout => 0.2 }, sub { push @observed, $_[1] });
});
ok(EtcdTest::run_until(180, sub { $done >= $FLOOD && $defrag }), 'the flood and the defragmentation ended');
undef $observe;
EtcdTest::run_until(2, sub { @observed >= $i });

ok($defrag && !$defrag->[1], sprintf('defragment succeeded (%.2f s)', $defrag ? $defrag->[2] : -1))
    or diag explain $defrag;
is(scalar @flood_errors, 0, "all $FLOOD flood writes succeeded")
    or diag explain [ @flood_errors[0 .. 2] ];
is($twice, 0, 'each called back once');
my ($r, $e) = EtcdTest::Caller->new($admin)->call('get', "${P}flood/", { prefix => 1, count_only => 1 });
is($r && $r->{count}, $FLOOD, 'as many keys as writes issued') or diag explain $e;

my $after   = put_codes();
my $refused = ($after && $after->{Unknown} // 0) - ($before->{Unknown} // 0);
cmp_ok($refused, '>', 0, "the member refused Put RPCs meanwhile ($refused, sent as UNKNOWN)");

my @tmr = grep { $_ && $_->{message} eq 'etcdserver: too many requests' } @observed;
cmp_ok(scalar @tmr, '>', 0,
       sprintf('a client giving up after 0.2 s saw the refusals (%d of %d writes)', scalar @tmr, scalar @observed));
is_deeply([ sort { $a cmp $b } keys %{ { map { ("$_->{status} $_->{retryable}" => 1) } @tmr } } ],
          @tmr ? ['RESOURCE_EXHAUSTED 1'] : [], '... as RESOURCE_EXHAUSTED, retryable');

$m->stop;
done_testing;
