use strict;
use warnings;
use Test::More;
use File::Temp ();
use Digest::SHA ();
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use lib 't/lib';
use EtcdTest;
use EV::Etcd;

# POD "snapshot": the data is checked against the SHA-256 etcd sends after
# it; a stream altered or cut on the way never yields a file. The faults are
# made by a byte-level proxy between the client and a real etcd.

my $srv = EtcdTest->start;
my $P   = EtcdTest::prefix();
my $dir = File::Temp->newdir;
{
    my $c  = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 10);
    my $kv = EtcdTest::Caller->new($c);
    # about 2.5 MB of data, so the byte the proxy alters is in the database
    $kv->ok_call("put $_", 'put', "${P}big/$_", chr(65 + $_ % 26) x 10_000) for 1 .. 250;
}

# A proxy on a free port to the server: from the server to the client it
# passes $limit bytes of each connection, then, with 'flip', the next byte
# altered and the rest as is; with 'cut', nothing more (the connection
# closes). Runs in a child process; killed at the end.
my @proxies;
sub proxy {
    my ($mode, $limit) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5,
                                  ReuseAddr => 1) or die "proxy: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        while (my $in = $l->accept) {
            my $out = IO::Socket::INET->new(PeerAddr => $srv->endpoint) or next;
            my $passed = 0;
            my $sel = IO::Select->new($in, $out);
            LOOP: while (1) {
                for my $fh ($sel->can_read) {
                    my $n = sysread($fh, my $buf, 65536);
                    last LOOP unless $n;
                    if ($fh == $out) {
                        if ($passed <= $limit && $passed + $n > $limit) {
                            my $at = $limit - $passed;
                            if ($mode eq 'cut') {
                                syswrite($in, substr($buf, 0, $at)) if $at;
                                last LOOP;
                            }
                            substr($buf, $at, 1) = chr(ord(substr($buf, $at, 1)) ^ 0x20);
                        }
                        $passed += $n;
                        syswrite($in, $buf) // last LOOP;
                    } else {
                        syswrite($out, $buf) // last LOOP;
                    }
                }
            }
            close $in;
            close $out;
        }
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    push @proxies, $pid;
    return "127.0.0.1:$port";
}
END { kill 'TERM', @proxies if @proxies; waitpid($_, 0) for @proxies }

sub snapshot_via {
    my ($ep, $file) = @_;
    my $c = EV::Etcd->new(endpoints => [$ep], timeout => 5, max_retries => 0);
    my $caller = EtcdTest::Caller->new($c, timeout => 30);
    my ($r, $e) = $caller->call('snapshot', $file);
    return ($r, $e);
}

# --- straight through: the file holds the data, the sum checks out -------------------
my $good = "$dir/good.db";
my ($r, $e) = snapshot_via(proxy(flip => 1e12), $good);
ok($r && !$e, 'a snapshot through a proxy that changes nothing') or diag(explain($e));
ok(-f $good, 'the file is in place');
my $bytes = do { local $/; open my $fh, '<:raw', $good or die $!; <$fh> };
cmp_ok(length $bytes, '>', 2_000_000, 'a real database (' . length($bytes) . ' bytes)');
is(Digest::SHA::sha256(substr($bytes, 0, -32)), substr($bytes, -32),
   "the file ends with the SHA-256 of what comes before (etcd's trailer)");

# --- one byte altered in the middle of the database ---------------------------------
my $altered = "$dir/altered.db";
($r, $e) = snapshot_via(proxy(flip => 1_000_000), $altered);
ok(!$r && $e, 'a snapshot with one byte altered fails');
is($e && $e->{status}, 'DATA_LOSS', 'DATA_LOSS');
like($e && $e->{message}, qr/does not match the SHA-256/, 'the checksum says so');
ok(!-e $altered, 'no file');
ok(!-e "$altered.part", 'no partial file');

# --- the stream cut in the middle ------------------------------------------------------
my $cut = "$dir/cut.db";
($r, $e) = snapshot_via(proxy(cut => 1_000_000), $cut);
ok(!$r && $e, 'a snapshot whose stream is cut fails');
ok(!-e $cut, 'no file');
ok(!-e "$cut.part", 'no partial file');

# --- chunks: the final callback reports the mismatch ------------------------------------
{
    my $c = EV::Etcd->new(endpoints => [ proxy(flip => 1_500_000) ], timeout => 5, max_retries => 0);
    my ($got, $n, $res, $err) = (0, 0);
    $c->snapshot(sub { $got += length $_[0] }, sub { $n++; ($res, $err) = @_ });
    ok(EtcdTest::run_until(30, sub { $n }), 'chunked snapshot ended');
    cmp_ok($got, '>', 1_500_000, 'the chunks were delivered');
    is($err && $err->{status}, 'DATA_LOSS', 'and the end says DATA_LOSS');
    is($n, 1, 'once');
}

done_testing;
