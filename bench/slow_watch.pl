#!/usr/bin/env perl
# Slow consumer benchmark (POD "BACKPRESSURE").
#
#   perl -Mblib bench/slow_watch.pl [--mb 1024] [--value-kb 64] [--delay-ms 1]
#                                   [--max-pending N] [--inflight 64]
#
# A writer process puts --mb megabytes of values of --value-kb KiB under one
# prefix (--inflight puts in flight); this process watches the prefix with a
# callback that sleeps --delay-ms per response, so the events arrive much
# faster than they are taken. Reports the watcher process's peak RSS
# (VmHWM), whether every event arrived exactly once in revision order, the
# backpressure events seen, and the time taken. Run it once with the
# default max_pending and once with --max-pending 1000000000 (no limit in
# practice) to see what the limit holds back.
#
# Starts its own throwaway etcd with its data on /dev/shm where that exists
# (set TMPDIR to choose another place), with a backend quota that holds
# the data. Run it by hand; it is not a test.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use POSIX ();
use Time::HiRes qw(time sleep);
use EV;
use EV::Etcd;
use EtcdTest;

my ($mb, $value_kb, $delay_ms, $max_pending, $max_bytes, $inflight) = (1024, 64, 1, undef, undef, 64);
GetOptions('mb=i' => \$mb, 'value-kb=i' => \$value_kb, 'delay-ms=f' => \$delay_ms,
           'max-pending=i' => \$max_pending, 'max-pending-bytes=i' => \$max_bytes,
           'inflight=i' => \$inflight)
    or die "bad options\n";

$ENV{TMPDIR} //= '/dev/shm' if -d '/dev/shm' && -w _;
my $quota = 2 * $mb * 1024 * 1024 + (512 << 20);
$quota = 8 << 30 if $quota > (8 << 30);
my $server = EtcdTest->start(extra_args => ["--quota-backend-bytes=$quota"]);
my $ep = $server->endpoint;
my $keys = int($mb * 1024 / $value_kb);
my $P = '/slow-watch/';

sub hwm_kb {
    open my $fh, '<', "/proc/$$/status" or return 0;
    while (<$fh>) { return $1 if /^VmHWM:\s+(\d+)/ }
    return 0;
}

my (%on_off, $max_queued);
my $c = EV::Etcd->new(endpoints => [$ep], timeout => 60,
                      (defined $max_pending ? (max_pending => $max_pending) : ()),
                      (defined $max_bytes ? (max_pending_bytes => $max_bytes) : ()),
                      on_event => sub { $on_off{ $_[0]{type} }++ });
my ($n, $bytes, $last, $disorder, $dup, $created, $err) = (0, 0, 0, 0, 0);
my %seen;
my $biggest = 0;
$max_queued = 0;
my $w = $c->watch($P, { prefix => 1 }, sub {
    my ($r, $e) = @_;
    return $err = $e if $e;
    $created = 1 if $r->{created};
    my $size = @{ $r->{events} || [] };
    $biggest = $size if $size > $biggest;
    for my $ev (@{ $r->{events} || [] }) {
        my $rev = $ev->{kv}{mod_revision};
        $disorder++ if $rev <= $last;
        $last = $rev;
        $dup++ if $seen{ $ev->{kv}{key} }++;
        $bytes += length $ev->{kv}{value};
        $n++;
    }
    my $q = $c->stats->{queued};
    $max_queued = $q if $q > $max_queued;
    sleep($delay_ms / 1000) if $delay_ms > 0;
});
EtcdTest::run_until(10, sub { $created }) or die "watch not created\n";
my $start_hwm = hwm_kb();

pipe(my $from_writer, my $to_parent) or die "pipe: $!";
my $pid = fork // die "fork: $!";
if (!$pid) {
    close $from_writer;
    my $wc = EV::Etcd->new(endpoints => [$ep], timeout => 60);
    my $value = 'v' x ($value_kb * 1024);
    my ($next, $acked, $failed) = (0, 0, 0);
    my $more; $more = sub {
        return if $next >= $keys;
        my $i = ++$next;
        $wc->put(sprintf('%s%08d', $P, $i), $value, sub { $_[1] ? $failed++ : $acked++; $more->() });
    };
    $more->() for 1 .. $inflight;
    EtcdTest::run_until(3600, sub { $acked + $failed == $keys });
    syswrite $to_parent, "$acked $failed\n";
    POSIX::_exit(0);
}
close $to_parent;
my $t0 = time;
EtcdTest::run_until(7200, sub { $n >= $keys || $err });
my $took = time - $t0;
my $writer = <$from_writer> // 'none';
waitpid $pid, 0;
chomp $writer;

printf "max_pending:        %s\n", $max_pending // 'default (1000)';
printf "written:            %d values of %d KiB (%.0f MiB); writer acked/failed: %s\n",
    $keys, $value_kb, $keys * $value_kb / 1024, $writer;
printf "delivered:          %d events, %.0f MiB, %s\n", $n, $bytes / 1048576,
    ($n == $keys && !$disorder && !$dup && !$err) ? 'every one once, in revision order'
        : "MISSING OR DISORDERED (disorder $disorder, duplicates $dup, error "
          . ($err ? $err->{message} : 'none') . ')';
printf "time:               %.1f s\n", $took;
printf "peak RSS (VmHWM):   %.0f MB (%.0f MB before the writes)\n", hwm_kb() / 1024, $start_hwm / 1024;
printf "most queued:        %d completions\n", $max_queued;
printf "largest response:   %d events\n", $biggest;
printf "backpressure:       %d on, %d off\n", $on_off{backpressure_on} // 0, $on_off{backpressure_off} // 0;
