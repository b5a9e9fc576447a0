use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "WATCHES": a watch message larger than the server's limit for one
# message (its request limit plus the 512 KiB etcd allows for gRPC
# overhead) is sent in fragments; the callback still gets it whole, once.
# A replay of 300 revisions of 3.5 KB each is about 1 MB: etcd sends it as
# one batch, in fragments.

my $srv = EtcdTest->start(extra_args => ['--max-request-bytes=4096']);
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
my $kv  = EtcdTest::Caller->new($c);
my $P   = EtcdTest::prefix();

my $n = 300;
my ($first, $done) = (undef, 0);
my $next;
$next = sub {
    my $i = $done;
    $c->put(sprintf('%sf/%03d', $P, $i), chr(97 + $i % 26) x 3500, sub {
        my ($r, $e) = @_;
        die "put failed: $e->{message}\n" if $e;
        $first //= $r->{header}{revision};
        $next->() if ++$done < $n;
    });
};
$next->();
ok(EtcdTest::run_until(30, sub { $done == $n }), "$n puts of 3.5 KB");

my (@msgs, @errs);
my $w = $c->watch("${P}f/", { prefix => 1, start_revision => $first }, sub {
    my ($r, $e) = @_;
    return push @errs, $e if $e;
    push @msgs, $r;
});
ok(EtcdTest::run_until(10, sub { (map { @{ $_->{events} } } @msgs) >= $n }), 'the history is replayed');
EtcdTest::run_until(0.5, sub { 0 });
my @ev_msgs = grep { @{ $_->{events} } } @msgs;
my @events  = map { @{ $_->{events} } } @ev_msgs;
is(scalar @ev_msgs, 1, 'one callback: the fragments were put back together');
is(scalar @events, $n, "all $n events, once");
is_deeply([ map { $_->{kv}{key} } @events ], [ map { sprintf '%sf/%03d', $P, $_ } 0 .. $n - 1 ], 'in order');
is_deeply([ grep { length $_->{kv}{value} != 3500 } @events ], [], 'values whole');
is_deeply(\@errs, [], 'no error');
$w->cancel(sub {});

undef $c;
$srv->stop;
done_testing;
