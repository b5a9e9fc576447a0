use strict;
use warnings;
use Test::More;
use File::Temp ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# snapshot: the backend database to a file or chunk by chunk.

my $srv = EtcdTest->start;
my $c   = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
my $kv  = EtcdTest::Caller->new($c);
my $P   = EtcdTest::prefix();
my $dir = File::Temp->newdir;

$kv->ok_call("put $_", 'put', "${P}snap/$_", "value-$_" x 100) for 1 .. 50;

# to a file
my $file = "$dir/etcd.db";
my $r = $kv->ok_call('snapshot to a file', 'snapshot', $file);
is_deeply([ grep { $_ ne 'header' } sort keys %{ $r || {} } ], [qw(file size)], 'response keys (header when the server sends one)');
is($r->{file}, $file, 'file');
ok(-f $file, 'the file exists');
is(-s $file, $r->{size}, 'its size is the reported size');
cmp_ok($r->{size}, '>', 20_000, 'a real database (' . $r->{size} . ' bytes)');
ok(!-e "$file.part", 'no temporary file left');
SKIP: {
    my $ctl = EtcdTest::etcdctl_binary();
    skip 'etcdctl not installed', 2 unless $ctl || $ENV{CI};
    my $out = EtcdTest::_capture($ctl, 'snapshot', 'status', $file, '-w', 'json');
    is($?, 0, 'etcdctl snapshot status accepts the file') or diag($out);
    like($out, qr/"totalKey":\s*(\d+)/, 'etcdctl reads its keys');
}

# chunk by chunk
my ($data, $chunks, $final_seen_before) = ('', 0, 0);
my ($resp, $err, $n);
$c->snapshot(sub { $data .= $_[0]; $chunks++; $final_seen_before++ if $n }, sub { $n++; ($resp, $err) = @_ });
ok(EtcdTest::run_until(20, sub { $n }), 'chunked snapshot finished');
ok(!$err, 'no error') or diag(explain($err));
cmp_ok($chunks, '>=', 1, "chunks delivered ($chunks)");
is($final_seen_before, 0, 'every chunk before the final callback');
is(length $data, $resp->{size}, 'the chunks add up to the size');
ok(!exists $resp->{file}, 'no file key in chunk mode');
cmp_ok(abs(length($data) - -s $file), '<', 65536, 'about the size of the file snapshot');

# failures
{
    my $dead = EtcdTest::Caller->new(EV::Etcd->new(endpoints => [ '127.0.0.1:' . EtcdTest::closed_port() ], timeout => 2));
    my $gone = "$dir/never.db";
    my $e = $dead->err_call('snapshot from a refused port', 'snapshot', $gone);
    is($e->{code}, 14, 'UNAVAILABLE');
    is($e->{source}, 'snapshot', 'source snapshot');
    ok(!-e $gone && !-e "$gone.part", 'no file left behind');

    my $bad = $kv->err_call('snapshot into a missing directory', 'snapshot', "$dir/no/such/dir/x.db");
    is($bad->{source}, 'internal', 'source internal');
    like($bad->{message}, qr/snapshot: cannot create .*No such file or directory/, 'message names the problem');

    for my $args ([], ['x'], [undef, sub {}], [[], sub {}], ['', sub {}]) {
        eval { $c->snapshot(@$args) };
        ok($@, 'bad snapshot arguments croak: ' . ($@ =~ s/ at .*//sr));
    }
    eval { $c->snapshot(undef, sub {}) };
    like($@, qr/snapshot: target must be a file name or a code reference/, 'undef target croak');
    eval { $c->snapshot('x') };
    like($@, qr/^Usage: EV::Etcd::snapshot\(client, file_or_callback, callback\)/, 'usage croak');
}

undef $c;
$srv->stop;
done_testing;
