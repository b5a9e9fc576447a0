use strict;
use warnings;
use Test::More;
use File::Spec ();
use IO::Select ();
use POSIX qw(WNOHANG);
use Time::HiRes ();
use lib 't/lib';
use EtcdTest;
use EtcdTest::Netns;
use EV::Etcd;

# t/lib/EtcdTest/Netns.pm on its own: a 3-member cluster in network
# namespaces; a follower cut off from its peers loses its leader and falls
# behind while the other two go on taking writes, and catches up once
# healed; and nothing of a cluster is left after any way its process ends.

my $net = EtcdTest::Netns->start_cluster(3);
my @m   = $net->members;
is(scalar @m, 3, 'three members');
my %hosts = map { $_->host => 1 } @m;
is(scalar keys %hosts, 3, 'each member has an address of its own');
my ($subnet) = $net->subnet =~ m{^(10\.\d+\.0)\.0/24\z};
ok($subnet, 'the subnet is 10.R.0.0/24') or diag($net->subnet);
is_deeply([ map { $_->endpoint } @m ], [ map { $net->address_of($_) . ':2379' } 0 .. 2 ],
          'member I listens on 10.R.0.(I+2):2379');
is_deeply([ $net->endpoints ], [ map { $_->endpoint } @m ], 'endpoints');
my @ns = $net->namespaces;
is(scalar @ns, 4, 'four namespaces: the switch and one per member');
is_deeply([ sort(EtcdTest::Netns::leftovers()) ],
          [ sort((map { "netns $_" } $net->namespaces), 'link ' . $net->host_link) ],
          'the namespaces and the host link exist, and nothing else of this process');
for my $mem (@m) {
    my $exe = readlink('/proc/' . $mem->pid . '/exe') // '';
    like($exe, qr{etcd\z}, $mem->name . ': its pid is the etcd process (ip netns exec execs it)');
}

my $key = EtcdTest::prefix() . 'k';
my %client = map { $_->name => EV::Etcd->new(endpoints => [ $_->endpoint ], timeout => 3) } @m;
my %caller = map { $_ => EtcdTest::Caller->new($client{$_}, timeout => 15) } keys %client;

# Polls $check->() (true when done) every 0.1 s for up to $seconds; returns
# the time it took, undef on timeout. It sleeps between polls rather than
# running the loop: EV's default loop reaps every exited child, and the
# children below must keep their wait status for waitpid.
sub within {
    my ($seconds, $check) = @_;
    my $t0 = Time::HiRes::time();
    while (1) {
        return Time::HiRes::time() - $t0 if $check->();
        return undef if Time::HiRes::time() - $t0 > $seconds;
        Time::HiRes::sleep(0.1);
    }
}

# The leader everybody agrees on, from EV::Etcd's status.
my (%id, $leader_id);
ok(defined within(20, sub {
    my %seen;
    for my $mem (@m) {
        my ($r, $e) = $caller{ $mem->name }->call('status');
        return 0 unless $r;
        $id{ $mem->name } = "$r->{header}{member_id}";
        $seen{"$r->{leader}"}++;
    }
    ($leader_id) = keys %seen;
    return keys %seen == 1 && $leader_id ne '0';
}), 'the three members agree on a leader');
my ($leader) = grep { $id{ $_->name } eq ($leader_id // '') } @m;
ok($leader, 'the leader is one of the members');
$leader ||= $m[0];
my $waited = $net->wait_leader;
is($waited && $waited->name, $leader->name, 'wait_leader names the same member');
my ($cut) = grep { $_ != $leader } @m;
my @rest  = grep { $_ != $cut } @m;
my $rest_client = EV::Etcd->new(endpoints => [ map { $_->endpoint } @rest ], timeout => 10);
my $rest  = EtcdTest::Caller->new($rest_client, timeout => 15);
my $c_cut = $caller{ $cut->name };
diag('leader ' . $leader->name . ', cutting ' . $cut->name);

$rest->ok_call('put v1', 'put', $key, 'v1');
my $g = $c_cut->ok_call('linearizable get on the follower before the cut', 'get', $key);
is($g->{kvs}[0]{value}, 'v1', 'the follower sees v1');

# --- the partition -------------------------------------------------------------

$net->partition($cut);
ok($net->is_partitioned($cut), 'is_partitioned');
ok(!$net->is_partitioned($_), $_->name . ' is not partitioned') for @rest;
is_deeply([ map { $_->name } $net->partitioned ], [ $cut->name ], 'partitioned lists the cut member');
is_deeply([ $net->blackholed($cut) ], [ sort map { $_->host } @rest ],
          "the cut member's namespace blackholes the two others");
is_deeply([ $net->blackholed($_) ], [ $cut->host ], $_->name . "'s namespace blackholes the cut member")
    for @rest;

my $last;
my $took = within(10, sub {
    my ($r, $e) = $c_cut->call('status');
    $last = $r || $e;
    return $r && "$r->{leader}" eq '0';
});
ok(defined $took, 'the cut member reports no leader (its client port still answers)')
    or diag(explain($last));
diag(sprintf 'leader lost after %.1f s', $took // -1);
my $st = $net->status($cut);
is($st && $st->{leader}, '0', 'status through the gateway: leader 0 as well');

my ($r, $e) = $c_cut->call('get', $key);
ok(!$r && $e, 'a linearizable get on the cut member fails') or diag(explain($r));
diag("linearizable get on the cut member: $e->{status}: $e->{message}") if $e;

for my $v (2 .. 6) {
    $rest->ok_call("put v$v through the other two", 'put', $key, "v$v");
}
$g = $rest->ok_call('linearizable get through the other two', 'get', $key);
is($g->{kvs}[0]{value}, 'v6', 'the other two have the latest write');
my $other_leader;
ok(defined within(10, sub {
    my %seen;
    for my $mem (@rest) {
        my ($s) = $caller{ $mem->name }->call('status');
        return 0 unless $s;
        $seen{"$s->{leader}"}++;
    }
    ($other_leader) = keys %seen;
    return keys %seen == 1 && $other_leader ne '0' && $other_leader ne $id{ $cut->name };
}), 'the other two agree on a leader that is not the cut member');

my ($cut_st) = $c_cut->call('status');
my ($rest_st) = $caller{ $rest[0]->name }->call('status');
ok($cut_st && $rest_st && $cut_st->{raft_index} < $rest_st->{raft_index},
   "the cut member's raft index stayed behind")
    or diag(explain([ $cut_st, $rest_st ]));
SKIP: {
    skip 'etcdctl not installed', 1 unless defined EtcdTest::etcdctl_binary();
    my $out = $cut->ctl('get', $key, '--consistency=s', '--print-value-only');
    like($out, qr/^v1$/m, 'the cut member has seen none of the writes made since the cut (local read)')
        or diag($out);
}

# --- healing ------------------------------------------------------------------------

$net->heal($cut);
ok(!$net->is_partitioned($cut), 'healed');
is_deeply([ $net->blackholed($_) ], [], $_->name . ': no blackhole routes left') for @m;

ok(defined within(30, sub {
    my ($s) = $c_cut->call('status');
    return $s && "$s->{leader}" ne '0';
}), 'the healed member has a leader again');
my $value;
$took = within(30, sub {
    my ($g2) = $c_cut->call('get', $key);
    $value = $g2 && $g2->{kvs}[0]{value};
    return defined $value && $value eq 'v6';
});
ok(defined $took, 'a linearizable get on the healed member sees the latest write')
    or diag('last value: ' . ($value // 'none'));
$c_cut->ok_call('put v7 through the healed member', 'put', $key, 'v7');
$g = $rest->ok_call('get through the others', 'get', $key);
is($g->{kvs}[0]{value}, 'v7', 'the others see the write made through the healed member');

my @pids = map { $_->pid } @m;
$net->cleanup;
is_deeply([ EtcdTest::Netns::leftovers() ], [], 'cleanup: no namespace or link of ours is left');
ok(!(grep { $_->is_running } @m), 'cleanup: the members are gone');
ok(!(grep { alive($_) } @pids), 'cleanup: no etcd process is left');
$net->cleanup;
pass('cleanup twice is harmless');
# The clients go now, not in global destruction.
undef $rest;
undef $rest_client;
%caller = ();
%client = ();

# --- every way a process ends ------------------------------------------------------
#
# Child processes start a one-member cluster each and end in one way each;
# afterwards none of their namespaces, links or members may exist. They run
# side by side (each has its own names and subnet).

# A living (not zombie) process.
sub alive {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    my $stat = <$fh> // return 0;
    return $stat =~ /\)\s+[ZX]\s/ ? 0 : 1;
}

my $lib = File::Spec->rel2abs('t/lib');
my $child_code = <<'CHILD';
use strict;
use warnings;
use EtcdTest;
use EtcdTest::Netns;
use File::Basename qw(dirname);
my $how = shift;
my $net = EtcdTest::Netns->start_cluster(1);
$| = 1;
print "up $$ ", $net->member(0)->pid, ' ', dirname($net->member(0)->data_dir), "\n";
exit 0 if $how eq 'end';
die "dying on purpose\n" if $how eq 'die';
if ($how eq 'bail') { require Test::More; Test::More::BAIL_OUT('on purpose') }
EtcdTest::run_until(120, sub { 0 });    # a signal ends it
exit 3;
CHILD

# 'harness': the child runs under an intermediate process (a harness) that
# is killed; the janitor notices and sends the child SIGTERM.
my @cases = qw(end die bail INT TERM HUP KILL harness);
my @child;
for my $how (@cases) {
    my @cmd = ($^X, "-I$lib", '-e', $child_code, $how);
    @cmd = ($^X, '-e', 'system @ARGV; exit 0', @cmd) if $how eq 'harness';
    my $pid = open(my $fh, '-|');
    BAIL_OUT("fork: $!") unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    push @child, { how => $how, pid => $pid, fh => $fh, out => '' };
}

# Reads what the children print until each said "up" (or 90 s passed).
my $sel = IO::Select->new(map { $_->{fh} } @child);
my %by_fh = map { $_->{fh} => $_ } @child;
my $deadline = Time::HiRes::time() + 90;
while (grep { !$_->{up} && !$_->{eof} } @child) {
    my $left = $deadline - Time::HiRes::time();
    last if $left <= 0;
    for my $fh ($sel->can_read($left)) {
        my $c = $by_fh{$fh};
        my $n = sysread($fh, $c->{out}, 4096, length $c->{out});
        if (!$n) { $c->{eof} = 1; $sel->remove($fh) }
        @$c{qw(test etcd tmp)} = ($1, $2, $3) if !$c->{up} && $c->{out} =~ /^up (\d+) (\d+) (\S+)$/m;
        $c->{up} = 1 if $c->{test};
    }
}
for my $c (@child) {
    ok($c->{up}, "$c->{how}: the child started its cluster") or diag($c->{out});
}

for my $c (grep { $_->{up} } @child) {
    if ($c->{how} =~ /^(?:INT|TERM|HUP|KILL)\z/) { kill $c->{how}, $c->{test} }
    elsif ($c->{how} eq 'harness')               { kill 'TERM', $c->{pid} }
}

# Reads the rest of every child's output, reaps them.
$deadline = Time::HiRes::time() + 60;
while ($sel->count && (my $left = $deadline - Time::HiRes::time()) > 0) {
    for my $fh ($sel->can_read($left)) {
        my $c = $by_fh{$fh};
        my $n = sysread($fh, $c->{out}, 4096, length $c->{out});
        if (!$n) { $c->{eof} = 1; $sel->remove($fh) }
    }
}
for my $c (@child) {
    my $r = 0;
    within(30, sub { ($r = waitpid($c->{pid}, WNOHANG)) != 0 });
    $c->{status} = $r == $c->{pid} ? $? : undef;
    close $c->{fh};
}

my %status = (end => 0, INT => (128 + 2) << 8, TERM => (128 + 15) << 8,
              HUP => (128 + 1) << 8, KILL => 9, harness => 15);    # harness: the killed intermediate
for my $c (grep { $_->{up} } @child) {
    my $how = $c->{how};
    ok(defined within(20, sub { !alive($c->{test}) }), "$how: the test process ended");
    if (exists $status{$how}) {
        is($c->{status}, $status{$how}, "$how: wait status");
    }
    else {
        ok($c->{status} && ($c->{status} >> 8), "$how: a failing exit status")
            or diag("wait status " . ($c->{status} // 'none'));
    }
    like($c->{out}, qr/SIG\Q$how\E: members and namespaces removed/, "$how: its handler cleaned up")
        if $how =~ /^(?:INT|TERM|HUP)\z/;
    like($c->{out}, qr/SIGTERM: members and namespaces removed/, "$how: the janitor's SIGTERM made it clean up")
        if $how eq 'harness';
    my @left;
    ok(defined within(20, sub { !(@left = EtcdTest::Netns::leftovers($c->{test})) }),
       "$how: no namespace or link of it is left") or diag("left: @left\n$c->{out}");
    ok(defined within(20, sub { !alive($c->{etcd}) }), "$how: its etcd is gone");
    ok(defined within(20, sub { !-e $c->{tmp} }), "$how: its member's temporary directory is gone");
}

done_testing;
