use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "CALLING CONVENTIONS" (size limits) and "new" (max_recv_size: large
# responses): 1 MiB values round-trip; a 20 MiB range response arrives with
# the default settings; max_recv_size makes the same read fail with an error
# that names the limit; a request over the server's limit (etcd's
# --max-request-bytes, 1.5 MiB by default) fails through the callback, not
# with a croak.

my $srv = EtcdTest->start;
my $P   = EtcdTest::prefix();
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 30);
my $caller = EtcdTest::Caller->new($c, timeout => 40);

my $MIB = 1_048_576;
srand(65);
# distinct, binary, exactly 1 MiB each
sub big { my ($i) = @_; substr(pack('N', $i) . join('', map { chr int rand 256 } 1 .. 4096) x 256, 0, $MIB) }

# ---------------------------------------------------------------------------
# 1 MiB values, written one request each

my %want;
for my $i (0 .. 19) {
    my $v = $want{ sprintf '%sbig/%02d', $P, $i } = big($i);
    $caller->ok_call("put 1 MiB value $i", 'put', sprintf('%sbig/%02d', $P, $i), $v)
        or last;
}
{
    my $g = $caller->ok_call('get one 1 MiB value', 'get', "${P}big/07");
    is(length($g->{kvs}[0]{value} // ''), $MIB, 'it is 1 MiB long');
    ok(($g->{kvs}[0]{value} // '') eq $want{"${P}big/07"}, 'and byte-identical');
}

# ---------------------------------------------------------------------------
# a 20 MiB range response with default settings

{
    my $g = $caller->ok_call('prefix get of 20 x 1 MiB (a 20 MiB response)', 'get', "${P}big/", { prefix => 1 });
    is($g->{count}, 20, 'count 20');
    is(scalar @{ $g->{kvs} || [] }, 20, '20 key-values');
    my @wrong = grep { ($_->{value} // '') ne ($want{ $_->{key} } // 'missing') } @{ $g->{kvs} || [] };
    is(scalar @wrong, 0, 'every value byte-identical');
}

# ---------------------------------------------------------------------------
# max_recv_size

{
    my $small = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 30, max_recv_size => 1_000_000);
    my $sc = EtcdTest::Caller->new($small, timeout => 40);
    my $e = $sc->err_call('max_recv_size => 1_000_000: the 20 MiB get fails', 'get', "${P}big/", { prefix => 1 });
    is($e->{status}, 'RESOURCE_EXHAUSTED', 'with RESOURCE_EXHAUSTED');
    like($e->{message} // '', qr/1000000/, 'the message names the limit')
        or diag($e->{message});
    like($e->{message} // '', qr/too large|larger than|limit/i, 'and says what was too large');
    my $g = $sc->ok_call('a small read on that client still works', 'get', "${P}big/00", { keys_only => 1 });
    is($g->{kvs}[0]{key}, "${P}big/00", 'with the right key');
    my $e2 = $sc->err_call('a 1 MiB value is over 1 000 000 too', 'get', "${P}big/01");
    is($e2->{status}, 'RESOURCE_EXHAUSTED', 'RESOURCE_EXHAUSTED again');
}

# ---------------------------------------------------------------------------
# over the server's request limit: a txn of two values just under 1 MiB

{
    my $v = 'x' x ($MIB - 16);
    my @ops = map { { put => { key => "${P}txn/$_", value => $v } } } 1 .. 2;
    my (undef, $e) = eval { $caller->call('txn', [], \@ops, []) };
    is($@, '', 'no croak: each value is under the 1 MiB croak limit');
    ok(ref $e eq 'HASH', 'the 2 MiB txn fails through the callback');
    like("$e->{status} $e->{message}", qr/RESOURCE_EXHAUSTED|too large|larger than/i, 'with a size error')
        or diag(explain($e));
    my $g = $caller->ok_call('nothing of it was written', 'get', "${P}txn/", { prefix => 1, count_only => 1 });
    is($g->{count}, 0, 'count 0');
    $caller->ok_call('the client works afterwards', 'put', "${P}after", 'ok');
}

EtcdTest::Caller->exactly_once($caller);
done_testing;
