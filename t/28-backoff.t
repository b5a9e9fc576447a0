use strict;
use warnings;
use Test::More;
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "RETRIES AND FAILOVER": retry_backoff_min and retry_backoff_max set the
# floor and cap of the backoff between rounds of retries (and reconnects);
# max_retries the count. A read to an endpoint that refuses connections is
# retried max_retries times, a backoff apart.

my $closed = '127.0.0.1:' . EtcdTest::closed_port();

sub refused_read {
    my (%opt) = @_;
    my $c = EV::Etcd->new(endpoints => [$closed], timeout => 20, max_retries => 3, %opt);
    my ($n, $err) = (0);
    my $t0 = Time::HiRes::time();
    $c->get('k', sub { $n++; $err = $_[1] });
    EtcdTest::run_until(20, sub { $n });
    my $dt = Time::HiRes::time() - $t0;
    is($n, 1, 'called back once');
    is($err && $err->{status}, 'UNAVAILABLE', 'UNAVAILABLE in the end');
    return $dt;
}

my $default = refused_read();
cmp_ok($default, '<', 0.75, "default backoff (50 ms doubling): 3 retries in $default s");
my $slow = refused_read(retry_backoff_min => 0.3, retry_backoff_max => 0.3);
cmp_ok($slow, '>=', 0.85, "3 retries at least 0.3 s apart: $slow s");
cmp_ok($slow, '<', 3, 'and not much more');
my $capped = refused_read(retry_backoff_min => 0.01, retry_backoff_max => 0.02);
cmp_ok($capped, '<', $slow, "a lower cap is quicker ($capped s)");
my $none = refused_read(retry_backoff_min => 0.3, max_retries => 0);
cmp_ok($none, '<', 0.3, "max_retries 0: no retry, no backoff ($none s)");

for my $bad ([ retry_backoff_min => 0 ], [ retry_backoff_min => -1 ], [ retry_backoff_max => 'x' ],
             [ retry_backoff_max => 7200 ]) {
    ok(!eval { EV::Etcd->new(endpoints => [$closed], @$bad); 1 }, "$bad->[0] => $bad->[1] croaks");
    like($@, qr/^EV::Etcd->new: $bad->[0] must be a number of seconds above 0, at most 3600/, 'message');
}
{
    my @warnings;
    local $SIG{__WARN__} = sub { push @warnings, @_ };
    ok(!eval { EV::Etcd->new(endpoints => [$closed], retry_backoff_min => 'abc'); 1 },
       'a non-numeric string croaks');
    like($@, qr/^EV::Etcd->new: retry_backoff_min must be a number of seconds above 0, at most 3600/, 'message');
    is_deeply(\@warnings, [], '... and warns of nothing');
}
ok(!eval { EV::Etcd->new(endpoints => [$closed], retry_backoff_min => 2, retry_backoff_max => 1); 1 },
   'a cap below the floor croaks');
like($@, qr/^EV::Etcd->new: retry_backoff_max is below retry_backoff_min/, 'message');

done_testing;
