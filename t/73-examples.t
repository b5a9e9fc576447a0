use strict;
use warnings;
use Test::More;
use lib 't/lib';
use EtcdTest;
use POSIX ();

# Every script in eg/ runs to completion (exit 0) and prints what it
# promises, so the examples cannot rot. Scripts that take a cluster get this
# test's etcd through EV_ETCD_ENDPOINTS; auth.pl and cluster.pl start their
# own members.

my %expect = (
    'quickstart.pl'      => [ qr/^compare-and-swap v1 -> v2: swapped$/m, qr/^deleted 1 key$/m ],
    'session.pl'         => [ qr/^after \d+ s: still registered \(renewed \d+ times\)$/m,
                              qr/^watcher: DELETE \S+web-1$/m, qr/^session over$/m ],
    'counter.pl'         => [ qr/^4 workers x 10 increments: counter = 40 \(\d+ conflicts retried\)$/m ],
    'watch_resume.pl'    => [ qr/^watch resumed /m, qr/^events handled: k1 k2 k3 k4 k5 k6$/m ],
    'lock_and_elect.pl'  => [ qr/^alice: holds the lock/m, qr/^bob: holds the lock/m,
                              qr/^alice: elected/m, qr/^bob: elected/m ],
    'auth.pl'            => [ qr/^app outside its range: PERMISSION_DENIED/m, qr/^auth_disable: ok$/m ],
    'cluster.pl'         => [ qr/^alarms: none$/m, qr/(?:kv hash \d+ at revision \d+[\s\S]*?){3}/,
                              qr/(?:version [\d.]+, leader \d+.*raft index \d+[\s\S]*?){3}/ ],
    'tls.pl'             => [ qr/^read back: over TLS$/m, qr/^without a client certificate: UNAVAILABLE/m ],
    'health.pl'          => [ qr/unhealthy, moving to /, qr/healthy, using /,
                              qr/event: endpoint_down /, qr/event: failover from \S+ to /,
                              qr/stats: \d+ requests, \d+ retries, [1-9]\d* failovers, [1-9]\d* bytes in/,
                              qr/done: \d+ writes succeeded, [0-2] failed$/m ],
    'mutex_fencing.pl'   => [ qr/^2 workers x 5 fenced increments: counter = 10$/m,
                              qr/^stale holder: lock lost \(NOT_FOUND\)$/m,
                              qr/^stale holder's fenced write: succeeded = 0$/m, qr/^done$/m ],
    'stm.pl'             => [ qr/^balances: \d+ \d+ \d+ \d+ \d+$/m,
                              qr/^4 workers x 25 transfers: \d+ committed \(\d+ conflicts retried\), \d+ refused; total 500$/m ],
    'rolling_defrag.pl'  => [ qr/^\S+: member \d+, db [\d.]+ MB -> [\d.]+ MB, in use [\d.]+ MB$/m,
                              qr/^kv hashes: all members agree$/m, qr/^done$/m ],
    'namespace_async.pl' => [ qr/^billing sees: config\/currency=EUR, config\/retries=3$/m,
                              qr/^search sees: config\/retries=5, config\/shards=8$/m,
                              qr/fails: NOT_FOUND/ ],
);
my %needs     = ('namespace_async.pl' => [qw(Future Future::AsyncAwait)]);
my %needs_cmd = ('tls.pl' => 'openssl');

my @scripts = map { s{^eg/}{}r } sort glob 'eg/*.pl';
ok(scalar @scripts, 'examples found');
is_deeply([ grep { !$expect{$_} } @scripts ], [], 'every example has a check here');

local $ENV{EV_ETCD_ENDPOINTS} = join ',', EtcdTest::endpoints();
my @inc = map { "-I$_" } grep { !ref } @INC;

# Runs a script with a deadline; returns (exit status, output).
sub run_script {
    my ($script, $timeout) = @_;
    my $pid = open(my $out, '-|') // die "fork: $!";
    if (!$pid) {
        POSIX::setsid();
        open STDERR, '>&', \*STDOUT or die;
        exec $^X, @inc, "eg/$script" or POSIX::_exit(127);
    }
    my $text = '';
    my $timed_out = 0;
    eval {
        local $SIG{ALRM} = sub { $timed_out = 1; kill 'KILL', -$pid; die "timeout\n" };
        alarm $timeout;
        local $/;
        $text = <$out> // '';
        alarm 0;
    };
    close $out;
    return ($timed_out ? -1 : $?, $text);
}

for my $script (@scripts) {
    SKIP: {
        my @missing = grep { my $m = $_; !eval "require $m; 1" } @{ $needs{$script} || [] };
        my $cmd = $needs_cmd{$script};
        push @missing, $cmd if $cmd && system("$cmd version >/dev/null 2>&1") != 0;
        if (@missing) {
            fail("$script needs @missing (CI is set)") if EtcdTest::_ci();
            skip "$script needs @missing", 1 + @{ $expect{$script} || [] };
        }
        my ($status, $text) = run_script($script, 90);
        is($status, 0, "$script exits 0") or diag $text;
        like($text, $_, "$script: $_") for @{ $expect{$script} || [] };
    }
}

done_testing;
