use strict;
use warnings;

# The test helper itself: throwaway members, their life cycle, the CI rule,
# ports, the key prefix and the loop helpers.

use FindBin;
use lib "$FindBin::Bin/lib";
use EtcdTest;
use EV;
use File::Temp ();
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);

EtcdTest::need_etcd();

my $LIB     = "$FindBin::Bin/lib";
my $ETCDCTL = EtcdTest::etcdctl_binary();

# A process is gone when it no longer exists or is a zombie waiting for a
# reaper that is not us.
sub gone {
    my ($pid) = @_;
    return 1 unless kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return ((<$fh> // '') =~ /^\d+ \(.*\) Z/) ? 1 : 0;
}

sub gone_within {
    my ($pid, $seconds) = @_;
    my $deadline = time + $seconds;
    until (gone($pid)) {
        return 0 if time > $deadline;
        sleep 0.05;
    }
    return 1;
}

sub refused {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2);
    return !$s && $!{ECONNREFUSED};
}

sub raw_health {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 2) or return '';
    print {$s} "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    local $/;
    return <$s> // '';
}

# Runs perl code with the helper loaded in a child process; returns its
# output and wait status.
sub perl_child {
    my ($code, %env) = @_;
    delete local $ENV{EV_ETCD_TEST_ENDPOINTS};
    local @ENV{ keys %env } = values %env;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec($^X, "-I$LIB", '-MEtcdTest', '-e', $code) or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($out, $?);
}

subtest 'ports' => sub {
    my @free = map { EtcdTest::free_port() } 1 .. 5;
    my %seen;
    is scalar(grep { !$seen{$_}++ } @free), 5, 'free_port never repeats a port';
    for my $p (@free) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                      Proto => 'tcp', Listen => 1);
        ok $s, "free port $p can be bound";
    }
    my ($c1, $c2) = (EtcdTest::closed_port(), EtcdTest::closed_port());
    isnt $c1, $c2, 'closed_port gives distinct ports';
    ok refused($c1), "connecting to closed port $c1 is refused";
    ok refused($c2), "connecting to closed port $c2 is refused";
    ok !IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $c1,
                              Proto => 'tcp', Listen => 1),
        'nobody else can listen on a closed port';
};

subtest 'prefix' => sub {
    my $p = EtcdTest::prefix();
    like $p, qr{^/ev-etcd-test/$$-[0-9a-f]+/$}, 'prefix names the process';
    is EtcdTest::prefix(), $p, 'prefix is stable within the process';
    pipe my $r, my $w or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        print {$w} EtcdTest::prefix();
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    my $child = do { local $/; <$r> };
    waitpid $pid, 0;
    like $child, qr{^/ev-etcd-test/$pid-[0-9a-f]+/$}, 'a forked child gets its own prefix';
};

subtest 'run_until' => sub {
    my $flag;
    my $t = EV::timer(0.05, 0, sub { $flag = 1 });
    my $t0 = time;
    ok EtcdTest::run_until(5, sub { $flag }), 'true once the condition holds';
    cmp_ok time - $t0, '<', 2, '... without waiting for the timeout';

    ok EtcdTest::run_until(0.1, sub { 1 }), 'true at once for a condition already met';

    sleep 0.5;    # the loop's cached time is now stale
    $t0 = time;
    ok !EtcdTest::run_until(0.3, sub { 0 }), 'false on timeout';
    my $took = time - $t0;
    cmp_ok $took, '>=', 0.29, 'the timeout is counted from the call';
    cmp_ok $took, '<',  2,    '... and is honoured';
};

subtest 'run_loop' => sub {
    my $t0 = time;
    is EtcdTest::run_loop(5), 1, 'nothing active: the loop ends by itself';
    cmp_ok time - $t0, '<', 1, '... at once';

    my $once = EV::timer(0.05, 0, sub { });
    is EtcdTest::run_loop(5), 1, 'ends by itself after the last watcher';

    my $brk = EV::timer(0.05, 0, sub { EV::break });
    $t0 = time;
    is EtcdTest::run_loop(5), 1, 'a callback calling EV::break ends it';
    cmp_ok time - $t0, '<', 2, '... before the timeout';

    my $busy = EV::timer(0.02, 0.02, sub { });
    $t0 = time;
    is EtcdTest::run_loop(0.3), 0, 'the timer ends a loop that would run forever';
    cmp_ok time - $t0, '>=', 0.29, '... after the timeout';
};

subtest 'start, health, pause, kill, restart' => sub {
    my $srv = EtcdTest->start(extra_args => ['--max-txn-ops=77']);
    my $port = $srv->client_port;
    like $srv->endpoint, qr/^127\.0\.0\.1:\d+$/, 'endpoint is host:port';
    is $srv->endpoint, "127.0.0.1:$port", 'endpoint uses the client port';
    is $srv->url, "http://127.0.0.1:$port", 'url';
    isnt $srv->peer_port, $port, 'peer and client ports differ';
    my $pid = $srv->pid;
    ok $pid && kill(0, $pid), 'etcd process runs';
    ok $srv->is_running, 'is_running';

    my $health = raw_health($port);
    like $health, qr{^HTTP/1\.[01] 200 }, '/health answers 200';
    like $health, qr/"health"\s*:\s*"true"/, '/health says healthy';
    ok $srv->healthy, 'healthy()';

    my $cmdline = do { open my $fh, '<', "/proc/$pid/cmdline"; local $/; <$fh> // '' };
    like $cmdline, qr/--max-txn-ops=77/, 'extra_args reach etcd';
    # etcd 3.4 takes --unsafe-no-fsync without listing it in --help.
    is EtcdTest::_etcd_supports('--no-such-flag'), 0, 'an unknown flag is not supported';
    my ($version) = `'${\ EtcdTest::etcd_binary()}' --version` =~ /etcd Version: (\d+\.\d+\.\d+)/;
    my $vnum = sprintf '%03d%03d%03d', split /\./, $version // '0.0.0';
    is EtcdTest::_etcd_supports('--unsafe-no-fsync'), 1, "etcd $version takes --unsafe-no-fsync"
        if $vnum ge '003004023';
    is scalar($cmdline =~ /--unsafe-no-fsync/), !!EtcdTest::_etcd_supports('--unsafe-no-fsync'),
        'the member runs without fsync exactly when etcd supports it';
    like $srv->log_tail(500), qr/127\.0\.0\.1:$port/, 'log_tail shows the log';

    my $key = EtcdTest::prefix() . 'helper';
  SKIP: {
        skip 'etcdctl not installed', 2 unless $ETCDCTL;
        like $srv->ctl('put', $key, 'kept'), qr/^OK$/m, 'etcdctl put';
        is $srv->ctl('get', '--print-value-only', $key), "kept\n", 'etcdctl get';
    }

    $srv->pause;
    ok !$srv->healthy(1), 'a paused member does not answer';
    ok kill(0, $pid), '... but still exists';
    $srv->resume;
    ok eval { $srv->wait_ready(10); 1 }, 'resumed member is ready again';
    ok $srv->healthy, '... and healthy';

    $srv->kill;
    ok gone($pid), 'kill ends the process';
    ok !$srv->is_running, 'is_running is false';
    is $srv->pid, undef, 'pid is cleared';
    ok refused($port), 'client port is closed';
    ok !$srv->healthy(1), 'not healthy';

    $srv->restart;
    my $pid2 = $srv->pid;
    ok $pid2 && $pid2 != $pid, 'restart starts a new process';
    is $srv->endpoint, "127.0.0.1:$port", 'restart keeps the client port';
    ok $srv->healthy, 'restarted member is healthy';
  SKIP: {
        skip 'etcdctl not installed', 1 unless $ETCDCTL;
        is $srv->ctl('get', '--print-value-only', $key), "kept\n", 'restart keeps the data';
    }

    $srv->restart;    # from a running member: stop, then start
    ok $srv->healthy, 'restart of a running member';
    ok gone($pid2), '... ends the old process';

    my $pid3 = $srv->pid;
    $srv->pause;
    my $t0 = time;
    $srv->stop;
    ok gone($pid3), 'stop ends a paused member';
    cmp_ok time - $t0, '<', 4, '... by SIGTERM, before the SIGKILL grace';
    ok refused($port), 'client port is closed after stop';
};

subtest 'shared server and endpoints' => sub {
    {
        local $ENV{EV_ETCD_TEST_ENDPOINTS} = ' 127.0.0.1:1, 127.0.0.1:2 ,';
        is_deeply [ EtcdTest::endpoints() ], [ '127.0.0.1:1', '127.0.0.1:2' ],
            'EV_ETCD_TEST_ENDPOINTS is split on commas';
        is EtcdTest::server(), undef, 'no server with external endpoints';
    }
    delete local $ENV{EV_ETCD_TEST_ENDPOINTS};
    my @eps = EtcdTest::endpoints();
    is scalar(@eps), 1, 'one endpoint';
    my $srv = EtcdTest::server();
    isa_ok $srv, 'EtcdTest';
    is $eps[0], $srv->endpoint, 'endpoint of the shared server';
    is_deeply [ EtcdTest::endpoints() ], \@eps, 'started once per process';
    ok $srv->healthy, 'shared server is healthy';
};

subtest 'external endpoints: the prefix is deleted at END' => sub {
    plan skip_all => 'etcdctl not installed' unless $ETCDCTL;
    my $srv = EtcdTest::server() // EtcdTest->start;
    is $srv->ctl('put', '/ev-etcd-helper-outside', 'stays'), "OK\n", 'key outside any prefix';
    my ($out, $status) = perl_child(
        'my @e = EtcdTest::endpoints(); my $p = EtcdTest::prefix(); print "$p\n";'
        . ' print EtcdTest::run_etcdctl(\@e, "put", "${p}a", "1");'
        . ' print EtcdTest::run_etcdctl(\@e, "put", "${p}b/c", "2");',
        EV_ETCD_TEST_ENDPOINTS => $srv->endpoint);
    is $status, 0, 'child ran';
    my ($p) = $out =~ m{^(/ev-etcd-test/\S+/)$}m;
    ok $p, 'child used a prefix';
    like $out, qr/^OK\nOK\n\z/m, 'child wrote two keys under it';
    is $srv->ctl('get', '--prefix', '--keys-only', $p // 'none'), '', 'keys under the prefix are gone';
    is $srv->ctl('get', '--print-value-only', '/ev-etcd-helper-outside'), "stays\n",
        'other keys are kept';
    ok $srv->is_running, 'an external cluster is never stopped';
    $srv->ctl('del', '/ev-etcd-helper-outside');
};

subtest 'members never outlive their owner' => sub {
    my $pid;
    {
        my $srv = EtcdTest->start;
        $pid = $srv->pid;
        ok kill(0, $pid), 'member runs';
    }
    ok gone($pid), 'dropping the object ends the member';

    my $srv = EtcdTest->start;
    my $child = fork // die "fork: $!";
    if (!$child) { exit 0 }    # runs END blocks and destructors in the child
    waitpid $child, 0;
    is $?, 0, 'forked child exited';
    ok $srv->is_running && $srv->healthy, 'a forked child leaves its parent\'s member alone';

    my $code = 'my $s = EtcdTest->start; print $s->pid, "\n"; %s';
    my ($out) = perl_child(sprintf $code, 'die "boom\n"');
    my ($died) = $out =~ /^(\d+)$/m;
    ok $died, 'child that dies started a member';
    ok $died && gone_within($died, 5), '... which ends with it (END)';

    # SIGKILL leaves no chance for END: the kernel kills the member (Linux).
    # Its temp dir cannot be removed by the killed process: keep it in ours.
    my $tmp = File::Temp->newdir;
    pipe my $r, my $w or die "pipe: $!";
    my $kid = fork // die "fork: $!";
    if (!$kid) {
        close $r;
        $ENV{TMPDIR} = "$tmp";
        open STDOUT, '>&', $w;
        exec($^X, "-I$LIB", '-MEtcdTest', '-e',
            '$| = 1; my $s = EtcdTest->start; print $s->pid, "\n"; sleep 60')
            or POSIX::_exit(127);
    }
    close $w;
    my $line = <$r>;
    my ($orphan) = ($line // '') =~ /^(\d+)$/;
    ok $orphan, 'child process started a member';
    kill 'KILL', $kid;
    waitpid $kid, 0;
  SKIP: {
        skip 'parent-death signal is Linux only', 1 unless $^O eq 'linux';
        ok $orphan && gone_within($orphan, 5), 'member of a SIGKILLed process ends too';
    }
    kill 'KILL', $orphan if $orphan && !gone($orphan);
};

subtest 'missing etcd: skip, or bail out under CI' => sub {
    my %missing = (EV_ETCD_TEST_ETCD => '/nonexistent/etcd');
    my $code = 'use Test::More; EtcdTest->start; pass "not reached"; done_testing';
    my ($out, $status) = perl_child($code, %missing, CI => 'true');
    like $out, qr/^Bail out!.*etcd not found/m, 'CI=true: bails out';
    isnt $status, 0, '... with a failing exit status';

    ($out, $status) = perl_child($code, %missing, CI => '');
    like $out, qr/^1\.\.0 # SKIP etcd not available/m, 'without CI: skips';
    is $status, 0, '... with a passing exit status';

    ($out, $status) = perl_child('use Test::More; my @e = EtcdTest::endpoints(); '
        . 'is_deeply \@e, ["127.0.0.1:9"]; done_testing',
        %missing, CI => 'true', EV_ETCD_TEST_ENDPOINTS => '127.0.0.1:9');
    like $out, qr/^ok 1/m, 'external endpoints need no etcd binary';
};

subtest 'cluster' => sub {
    my @m = EtcdTest->start_cluster(3);
    is scalar(@m), 3, 'three members';
    ok $_->healthy, 'member ' . $_->name . ' healthy' for @m;
    my %ports = map { ($_->client_port => 1, $_->peer_port => 1) } @m;
    is scalar(keys %ports), 6, 'six distinct ports';
  SKIP: {
        skip 'etcdctl not installed', 1 unless $ETCDCTL;
        my @lines = grep { /started/ } split /\n/, $m[0]->ctl('member', 'list');
        is scalar(@lines), 3, 'etcdctl lists three started members';
    }
    $m[2]->kill;
    ok eval { $m[0]->wait_ready(10); $m[1]->wait_ready(10); 1 },
        'two of three members keep a quorum';
};

done_testing;
