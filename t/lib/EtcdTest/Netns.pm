package EtcdTest::Netns;

# etcd clusters whose members each live in a network namespace of their
# own, so that a test can cut a member off from its peers (raft traffic)
# while the test process still reaches its client port. Linux and root
# only; see the POD at the end of this file.
#
# The network of a cluster: a "switch" namespace holding a bridge (br0);
# one veth pair per member from a port of the bridge to eth0 in the
# member's namespace (10.R.0.(I+2)/24); one veth pair from the host's
# namespace (10.R.0.1/24) to the bridge. The bridge is not in the host's
# namespace so that the host's firewall (e.g. a FORWARD policy of DROP
# with br_netfilter loaded) never sees the members' traffic.

use strict;
use warnings;

use Carp qw(croak);
use Fcntl ();
use File::Basename ();
use File::Spec ();
use IO::Handle ();
use IO::Select ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX ();
use Scalar::Util ();
use Time::HiRes ();

use EtcdTest ();

our $VERSION = '0.01';

# Names, all carrying the pid of the process that made them, so that test
# files running in parallel never meet and leftovers() / sweep() find a
# process's things:
#   member namespaces  evetcd-PID-SEQ-I      (SEQ: the process's cluster number, I: member)
#   switch namespace   evetcd-PID-SEQ-sw
#   host link          evtPIDbSEQ            (the one link in the host's namespace)
#   need_netns's probe evetcd-PID-probe, evtPIDp
# Inside the namespaces the names are fixed: br0, up0 (the host link's
# peer) and mI in the switch, eth0 in a member. A pid has at most 7 digits
# (pid_max <= 4194304) and SEQ at most 2, so a host link name has at most
# 13 characters (the kernel allows 15).
my $NS_PREFIX   = 'evetcd';
my $LINK_PREFIX = 'evt';
my $MAX_MEMBERS = 26;
my $MAX_SEQ     = 99;
my $CLIENT_PORT = 2379;
my $PEER_PORT   = 2380;

my $SEQ = 0;
my %LIVE;               # "$cluster" => cluster (weak): what END and the signal handlers clean up
my $USER;               # pid of the process that created namespaces or links (and must remove them)
my ($JANITOR_W, $JANITOR_OWNER);
my $HANDLERS_OWNER;
my %NEED;               # pid => '' when namespaces work, else why not

# ---------------------------------------------------------------------------
# The ip command

sub ip_binary {
    for my $dir (File::Spec->path, qw(/usr/sbin /sbin /usr/bin /bin)) {
        next unless defined $dir && length $dir;
        my $p = File::Spec->catfile($dir, 'ip');
        return $p if -f $p && -x _;
    }
    return undef;
}

# Runs ip with @args; returns its output, croaks when it fails.
sub _ip {
    my (@args) = @_;
    my $out = EtcdTest::_capture(ip_binary(), @args);
    croak "EtcdTest::Netns: ip @args failed: " . _one_line($out) if $?;
    return $out;
}

# The same for cleanup: undef instead of croaking.
sub _ip_quiet {
    my (@args) = @_;
    my $bin = ip_binary() // return undef;
    my $out = EtcdTest::_capture($bin, @args);
    return $? ? undef : $out;
}

# The same for listings, which a failure must not pass off as empty: tries
# again a few times (a dump can be interrupted by a concurrent change),
# then croaks.
sub _ip_read {
    my (@args) = @_;
    my $out;
    for my $attempt (1 .. 10) {
        $out = EtcdTest::_capture(ip_binary() // croak("EtcdTest::Netns: ip not found"), @args);
        return $out unless $?;
        Time::HiRes::sleep(0.05 * $attempt);
    }
    croak "EtcdTest::Netns: ip @args failed: " . _one_line($out);
}

sub _one_line { my ($s) = @_; $s //= ''; $s =~ s/\s+/ /g; $s =~ s/^ | $//g; $s }

# ---------------------------------------------------------------------------
# Capability

# Ends the test file unless network namespaces can be made here (Linux,
# root, iproute2's ip, "ip netns add", veth pairs, bridges): a failure
# (BAIL_OUT) under CI, a skip elsewhere, as EtcdTest::need_etcd does.
sub need_netns {
    my $why = $NEED{$$} //= _netns_problem() // '';
    return 1 if $why eq '';
    require Test::More;
    Test::More::BAIL_OUT("$why (CI is set)") if EtcdTest::_ci();
    my $tb = Test::More->builder;
    die "$why\n" if $tb->has_plan || $tb->current_test;
    Test::More::plan(skip_all => $why);
}

sub _netns_problem {
    return 'network namespaces need Linux' if $^O ne 'linux';
    return 'network namespaces need root' if $> != 0;
    defined ip_binary() or return "network namespaces need iproute2's ip (not found)";
    _guard();
    my $ns   = "$NS_PREFIX-$$-probe";
    my $veth = "$LINK_PREFIX${$}p";
    my $out = EtcdTest::_capture(ip_binary(), 'netns', 'add', $ns);
    return 'ip netns add failed: ' . _one_line($out) if $?;
    my $why;
    for my $step (['link', 'add', $veth, 'type', 'veth', 'peer', 'name', 'up0', 'netns', $ns],
                  ['-n', $ns, 'link', 'add', 'br0', 'type', 'bridge']) {
        $out = EtcdTest::_capture(ip_binary(), @$step);
        if ($?) { $why = "ip @$step failed: " . _one_line($out); last }
    }
    _ip_quiet('link', 'del', $veth) if _link_exists($veth);
    _ip_quiet('netns', 'del', $ns);
    return $why;
}

sub _link_exists { defined _ip_quiet('link', 'show', 'dev', $_[0]) }

# ---------------------------------------------------------------------------
# Leftovers: what a process made and has not removed

sub _namespaces_of {
    my ($pid) = @_;
    my $out = _ip_read('netns', 'list');
    return grep { /^\Q$NS_PREFIX-$pid-\E/ } map { /^(\S+)/ ? $1 : () } split /\n/, $out;
}

sub _links_of {
    my ($pid) = @_;
    my $out = _ip_read('-o', 'link', 'show');
    return grep { /^\Q$LINK_PREFIX$pid\E[a-z]/ }
           map { /^\d+:\s+([^\s:@]+)/ ? $1 : () } split /\n/, $out;
}

# Names ("netns NAME", "link NAME") of the namespaces and host links that
# process $pid (default: this one) made and that still exist. Croaks when ip
# cannot list them.
sub leftovers {
    my ($pid) = @_;
    $pid //= $$;
    return ((map { "netns $_" } _namespaces_of($pid)), (map { "link $_" } _links_of($pid)));
}

# Removes everything process $pid (default: this one) made: kills what runs
# in its namespaces, deletes the namespaces (their routes and veth ends go
# with them) and its links. True when nothing is left.
sub sweep {
    my ($pid) = @_;
    $pid //= $$;
    for my $round (1 .. 5) {
        my @left = eval { leftovers($pid) };
        if ($@) {    # could not look
            Time::HiRes::sleep(0.2);
            next;
        }
        return 1 unless @left;
        for (@left) {
            my ($kind, $name) = split ' ', $_, 2;
            if ($kind eq 'netns') {
                _kill_inside($name);
                _ip_quiet('netns', 'del', $name);
            }
            else {
                _ip_quiet('link', 'del', $name);
            }
        }
    }
    return 0;
}

# SIGKILL to every process in namespace $ns (only members run there).
sub _kill_inside {
    my ($ns) = @_;
    my $pids = _ip_quiet('netns', 'pids', $ns) // '';
    CORE::kill('KILL', $_) for grep { /^\d+\z/ && $_ != $$ } split ' ', $pids;
}

# ---------------------------------------------------------------------------
# Cleanup on every way out

sub _cleanup_all {
    return unless defined $USER && $USER == $$;
    for my $net (grep { defined } values %LIVE) {
        eval { $net->cleanup; 1 };
    }
    eval { sweep($$) };
}

# Before this process makes anything: the janitor and the signal handlers.
sub _guard {
    _start_janitor();
    _install_handlers();
    $USER = $$;
}

# SIGINT, SIGTERM, SIGHUP: clean up, then exit with 128 + the signal's number
# (END blocks and Test::More's summary still run). A handler of the test's
# own is replaced. Processes forked from this one get the default action.
my %SIGNUM = (INT => POSIX::SIGINT(), TERM => POSIX::SIGTERM(), HUP => POSIX::SIGHUP());
sub _install_handlers {
    return if defined $HANDLERS_OWNER && $HANDLERS_OWNER == $$;
    $HANDLERS_OWNER = $$;
    for my $sig (sort keys %SIGNUM) {
        $SIG{$sig} = sub { _on_signal($sig) };
    }
}

sub _on_signal {
    my ($sig) = @_;
    if ($$ != $HANDLERS_OWNER) {
        $SIG{$sig} = 'DEFAULT';
        CORE::kill($sig, $$);
        return;
    }
    $SIG{$_} = 'IGNORE' for keys %SIGNUM;    # no second interruption of the cleanup
    # When the harness is gone, writing the test's last words must not kill
    # the process before END removes the members' temporary directories.
    $SIG{PIPE} = 'IGNORE';
    eval { _cleanup_all(); 1 };
    print STDERR "# EtcdTest::Netns: SIG$sig: members and namespaces removed\n";
    exit(128 + $SIGNUM{$sig});
}

# The janitor: a separate process (in a session of its own, not a child of
# the test) that removes what the test made when the test process ends
# without cleaning up (SIGKILL, a crash), and that ends the test with SIGTERM
# when the process that started it (the harness) is gone: killing prove
# alone tells its test nothing until a write to its output fails. It learns
# of the test's end from a pipe whose write end only the test holds; the
# test writes the members' temporary directories into it ("dir PATH" lines),
# which the janitor removes too.
sub _start_janitor {
    return if defined $JANITOR_OWNER && $JANITOR_OWNER == $$;
    my $lib = File::Basename::dirname(File::Basename::dirname(
        File::Spec->rel2abs($INC{'EtcdTest/Netns.pm'})));
    pipe(my $r, my $w) or croak "EtcdTest::Netns: pipe: $!";
    my ($test, $parent) = ($$, getppid());
    STDOUT->flush;
    STDERR->flush;
    my $pid = fork;
    croak "EtcdTest::Netns: fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        eval {
            close $w;
            POSIX::setsid();
            my $janitor = fork;
            POSIX::_exit(defined $janitor ? 0 : 1) if !defined $janitor || $janitor;
            my $flags = fcntl($r, Fcntl::F_GETFD(), 0) // die "fcntl: $!";
            fcntl($r, Fcntl::F_SETFD(), $flags & ~Fcntl::FD_CLOEXEC()) // die "fcntl: $!";
            my $null = File::Spec->devnull;
            open STDIN,  '<', $null or die "stdin: $!";
            open STDOUT, '>', $null or die "stdout: $!";
            open STDERR, '>', $null or die "stderr: $!";
            exec { $^X } $^X, '-I', $lib, '-MEtcdTest::Netns', '-e',
                'EtcdTest::Netns::_janitor(@ARGV)', fileno($r), $test, $parent
                or die "exec: $!";
        };
        POSIX::_exit(127);
    }
    close $r;
    waitpid($pid, 0);
    croak 'EtcdTest::Netns: the janitor did not start' if $?;
    $JANITOR_W     = $w;    # close-on-exec: members and ip never hold it
    $JANITOR_OWNER = $$;
}

# Tells the janitor something to remove ("dir PATH").
sub _janitor_note {
    my ($line) = @_;
    return unless $JANITOR_W && $JANITOR_OWNER == $$;
    local $SIG{PIPE} = 'IGNORE';
    syswrite($JANITOR_W, "$line\n");
}

sub _janitor {
    my ($fd, $test, $parent) = @_;
    $SIG{$_} = 'IGNORE' for qw(INT TERM HUP QUIT PIPE);
    open(my $r, '<&=', $fd) or POSIX::_exit(1);
    my @dirs;
    # Whatever goes wrong while waiting, the sweep below still runs.
    eval {
        my ($sel, $buf, $termed) = (IO::Select->new($r), '', undef);
        while (1) {
            if ($sel->can_read(0.5)) {
                my $n = sysread($r, $buf, 4096, length $buf);
                last unless $n;    # end of file: the test process is gone
                while ($buf =~ s/\A([^\n]*)\n//) {
                    my $line = $1;
                    push @dirs, $line if $line =~ s/^dir //;
                }
                next;
            }
            my $ppid = _parent_of($test);
            last unless defined $ppid;
            if (!defined $termed && $ppid != $parent) {
                CORE::kill('TERM', $test);    # its handler cleans up
                $termed = Time::HiRes::time();
            }
            if (defined $termed && Time::HiRes::time() - $termed > 20) {
                CORE::kill('KILL', $test);
                last;
            }
        }
        1;
    } or do {
        # Waiting failed: wait for the test's end the simple way.
        Time::HiRes::sleep(0.5) while defined _parent_of($test);
    };
    eval { sweep($test) };
    require File::Path;
    File::Path::remove_tree($_) for grep { m{/ev-etcd-test-\w+\z} && -d } @dirs;
    POSIX::_exit(0);
}

# Parent pid of a living (not zombie) process, undef when it is gone.
sub _parent_of {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return undef;
    my $stat = <$fh> // return undef;
    my ($state, $ppid) = $stat =~ /\)\s+(\S)\s+(\d+)/ or return undef;
    return $state =~ /^[ZX]\z/ ? undef : $ppid;
}

END {
    local ($?, $!, $@);
    _cleanup_all();
}

# ---------------------------------------------------------------------------
# The cluster

sub start_cluster {
    my ($class, $n, %opt) = @_;
    EtcdTest::need_etcd();
    need_netns();
    $n ||= 3;
    croak "EtcdTest::Netns: at most $MAX_MEMBERS members" if $n > $MAX_MEMBERS;
    croak "EtcdTest::Netns: at most $MAX_SEQ clusters per process" if $SEQ >= $MAX_SEQ;
    _guard();
    my $seq  = ++$SEQ;
    my $self = bless {
        owner   => $$,
        seq     => $seq,
        link    => "$LINK_PREFIX${$}b$seq",
        switch  => "$NS_PREFIX-$$-$seq-sw",
        netns   => [],    # the members' namespaces
        made    => 0,     # whether anything may exist (cleanup has work)
        members => [],
        cut     => {},    # $i => { $j => 1 }: partition($i) cut $i from $j
        routes  => {},    # "$i>$j" => how many cuts need the blackhole for j's address in i's namespace
    }, ref($class) || $class;
    $LIVE{"$self"} = $self;
    Scalar::Util::weaken($LIVE{"$self"});

    my $ok = eval {
        $self->_setup_network($n);
        my @spec = map { {
            name => "n$$-$seq-$_",
            host => $self->address_of($_),
            ns   => $self->{netns}[$_],
        } } 0 .. $n - 1;
        my $initial = join ',', map { "$_->{name}=http://$_->{host}:$PEER_PORT" } @spec;
        for my $i (0 .. $#spec) {
            my $m = EtcdTest::Netns::Member->start(
                (map { exists $opt{$_} ? ($_ => $opt{$_}) : () } qw(extra_args timeout)),
                name            => $spec[$i]{name},
                host            => $spec[$i]{host},
                client_port     => $CLIENT_PORT,
                peer_port       => $PEER_PORT,
                wrapper         => [ ip_binary(), 'netns', 'exec', $spec[$i]{ns} ],
                initial_cluster => $initial,
                wait            => 0,
            );
            _janitor_note('dir ' . File::Basename::dirname($m->data_dir));
            $m->{netns}   = $spec[$i]{ns};
            $m->{ordinal} = $i;
            push @{ $self->{members} }, $m;
        }
        $_->wait_ready($opt{timeout}) for @{ $self->{members} };
        1;
    };
    if (!$ok) {
        my $err = $@;
        $self->cleanup;
        die $err;
    }
    return $self;
}

sub _setup_network {
    my ($self, $n) = @_;
    my ($sw, $link) = @$self{qw(switch link)};
    $self->{made} = 1;
    _ip('netns', 'add', $sw);
    _ip('-n', $sw, 'link', 'add', 'br0', 'type', 'bridge');
    _ip('-n', $sw, 'link', 'set', 'br0', 'up');
    _ip('link', 'add', $link, 'type', 'veth', 'peer', 'name', 'up0', 'netns', $sw);
    _ip('-n', $sw, 'link', 'set', 'up0', 'master', 'br0');
    _ip('-n', $sw, 'link', 'set', 'up0', 'up');
    _ip('link', 'set', $link, 'up');
    $self->{subnet} = _claim_subnet($link);
    for my $i (0 .. $n - 1) {
        my $ns = "$NS_PREFIX-$$-$self->{seq}-$i";
        _ip('netns', 'add', $ns);
        push @{ $self->{netns} }, $ns;
        _ip('-n', $sw, 'link', 'add', "m$i", 'type', 'veth', 'peer', 'name', 'eth0', 'netns', $ns);
        _ip('-n', $sw, 'link', 'set', "m$i", 'master', 'br0');
        _ip('-n', $sw, 'link', 'set', "m$i", 'up');
        _ip('-n', $ns, 'link', 'set', 'lo', 'up');
        _ip('-n', $ns, 'addr', 'add', $self->address_of($i) . '/24', 'dev', 'eth0');
        _ip('-n', $ns, 'link', 'set', 'eth0', 'up');
    }
}

# Gives the host link 10.R.0.1/24 for an R that no other route of the host
# overlaps; returns "10.R.0". Two processes that pick the same R at the same
# moment both see the other and both try another one.
sub _claim_subnet {
    my ($link) = @_;
    my %tried;
    for my $attempt (1 .. 40) {
        my $r = 16 + int rand 239;    # 10.16.0.0 .. 10.254.0.0
        next if $tried{$r}++ || _subnet_taken($r, $link);
        _ip('addr', 'add', "10.$r.0.1/24", 'dev', $link);
        return "10.$r.0" unless _subnet_taken($r, $link);
        _ip_quiet('addr', 'del', "10.$r.0.1/24", 'dev', $link);
        Time::HiRes::sleep(rand 0.2);
    }
    croak 'EtcdTest::Netns: no free 10.R.0.0/24 subnet (every one overlaps a route of the host)';
}

# Whether a route of the host (any table, addresses included) on another
# device than $own overlaps 10.$r.0.0/24. The default route does not count.
sub _subnet_taken {
    my ($r, $own) = @_;
    my $want = (10 << 24) | ($r << 16);
    for my $line (split /\n/, _ip_read('-4', 'route', 'show', 'table', 'all')) {
        my @w = split ' ', $line;
        shift @w if @w && $w[0] =~ /^(?:unicast|local|broadcast|multicast|anycast|blackhole|unreachable|prohibit|throw|nat)\z/;
        my @o = ($w[0] // '') =~ m{^(\d+)\.(\d+)\.(\d+)\.(\d+)(?:/(\d+))?\z} or next;
        my $len = $o[4] // 32;
        next if $len == 0;
        next if $line =~ /\bdev \Q$own\E(?:\s|\z)/;
        my $bits = $len < 24 ? $len : 24;
        my $mask = (0xFFFFFFFF << (32 - $bits)) & 0xFFFFFFFF;
        return 1 if ((($o[0] << 24) | ($o[1] << 16) | ($o[2] << 8) | $o[3]) & $mask) == ($want & $mask);
    }
    return 0;
}

sub members   { @{ $_[0]{members} } }
sub member    { $_[0]{members}[ $_[1] ] }
sub endpoints { map { $_->endpoint } @{ $_[0]{members} } }
sub host_link { $_[0]{link} }
sub switch_namespace { $_[0]{switch} }
sub namespaces { ($_[0]{switch}, @{ $_[0]{netns} }) }
sub subnet    { "$_[0]{subnet}.0/24" }
sub host_address { "$_[0]{subnet}.1" }
sub address_of   { "$_[0]{subnet}." . ($_[1] + 2) }

# A member object or its position (0-based) => the position.
sub _ordinal {
    my ($self, $m) = @_;
    croak 'EtcdTest::Netns: member required' unless defined $m;
    my $i = ref $m ? $m->{ordinal} : $m;
    croak "EtcdTest::Netns: no such member: $m"
        unless defined $i && $i =~ /^\d+\z/ && $i < @{ $self->{members} }
            && (!ref $m || $self->{members}[$i] == $m);
    return $i;
}

sub namespace { $_[0]{netns}[ $_[0]->_ordinal($_[1]) ] }

# ---------------------------------------------------------------------------
# Partitions

# Cuts member $m off from the members in @from (default: every other one),
# in both directions: blackhole routes for their addresses in $m's namespace
# and for $m's address in theirs. The path between the test process (the
# host link's address) and every member stays open.
sub partition {
    my ($self, $m, @from) = @_;
    croak 'EtcdTest::Netns: partition from a process that did not start the cluster'
        unless $self->{owner} == $$;
    my $i = $self->_ordinal($m);
    my @to = @from ? map { $self->_ordinal($_) } @from : (0 .. $#{ $self->{members} });
    for my $j (grep { $_ != $i } @to) {
        next if $self->{cut}{$i}{$j};
        $self->_route_ref(1, $i, $j);
        $self->_route_ref(1, $j, $i);
        $self->{cut}{$i}{$j} = 1;
    }
    return $self;
}

# Undoes exactly what partition($m) did (cuts that other partition() calls
# made stay).
sub heal {
    my ($self, $m) = @_;
    croak 'EtcdTest::Netns: heal from a process that did not start the cluster'
        unless $self->{owner} == $$;
    my $i = $self->_ordinal($m);
    for my $j (sort { $a <=> $b } keys %{ $self->{cut}{$i} || {} }) {
        $self->_route_ref(-1, $i, $j);
        $self->_route_ref(-1, $j, $i);
        delete $self->{cut}{$i}{$j};
    }
    delete $self->{cut}{$i};
    return $self;
}

sub heal_all {
    my ($self) = @_;
    $self->heal($_) for sort { $a <=> $b } keys %{ $self->{cut} };
    return $self;
}

sub is_partitioned {
    my ($self, $m) = @_;
    return scalar keys %{ $self->{cut}{ $self->_ordinal($m) } || {} } ? 1 : 0;
}

sub partitioned {
    my ($self) = @_;
    return map { $self->{members}[$_] } grep { $self->is_partitioned($_) } 0 .. $#{ $self->{members} };
}

# The blackhole route for j's address in i's namespace, counted: added by
# the first cut that needs it, deleted with the last.
sub _route_ref {
    my ($self, $delta, $i, $j) = @_;
    my $key = "$i>$j";
    my $n = ($self->{routes}{$key} || 0) + $delta;
    my @route = ('-n', $self->{netns}[$i], 'route', '', 'blackhole', $self->address_of($j) . '/32');
    if ($delta > 0 && $n == 1) {
        $route[3] = 'add';
        _ip(@route);
    }
    elsif ($delta < 0 && $n == 0) {
        $route[3] = 'del';
        _ip(@route);
    }
    if ($n > 0) { $self->{routes}{$key} = $n } else { delete $self->{routes}{$key} }
}

# The addresses that member $m's namespace has blackhole routes for, as the
# kernel reports them (sorted).
sub blackholed {
    my ($self, $m) = @_;
    my $out = _ip_read('-n', $self->namespace($m), '-4', 'route', 'show', 'type', 'blackhole');
    return sort map { m{^(?:blackhole\s+)?(\d+\.\d+\.\d+\.\d+)(?:/32)?\b} ? $1 : () } split /\n/, $out;
}

# ---------------------------------------------------------------------------
# Status without a client library

# Member $m's Maintenance.Status through its JSON gateway: a hash with
# member_id, leader (0 when it has none), raft_term, raft_index, version
# and errors (array), or undef when it does not answer within $timeout s
# (default 2).
sub status {
    my ($self, $m, $timeout) = @_;
    my $mem = $self->{members}[ $self->_ordinal($m) ];
    my $json = _post_json($mem->host, $mem->client_port, '/v3/maintenance/status', '{}', $timeout // 2)
        // return undef;
    my $r = eval { JSON::PP->new->decode($json) } or return undef;
    my $h = $r->{header} || {};
    return {
        member_id  => "" . ($h->{member_id} // 0),
        raft_term  => "" . ($h->{raft_term} // $r->{raftTerm} // 0),
        leader     => "" . ($r->{leader} // 0),
        raft_index => "" . ($r->{raftIndex} // 0),
        version    => $r->{version},
        errors     => [ @{ $r->{errors} || [] } ],
    };
}

sub _post_json {
    my ($host, $port, $path, $body, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => 'tcp',
                                  Timeout => $timeout) or return undef;
    local $SIG{PIPE} = 'IGNORE';
    my $req = "POST $path HTTP/1.0\r\nHost: $host:$port\r\nContent-Type: application/json\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    defined syswrite($s, $req) or return undef;
    my ($buf, $sel) = ('', IO::Select->new($s));
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    close $s;
    return undef unless $buf =~ m{\AHTTP/1\.[01] 200 } && $buf =~ /\r\n\r\n(.*)\z/s;
    return $1;
}

# Waits until every running member that is not partitioned reports the
# same leader, one of this cluster's members; returns that member, or undef
# after $opt{timeout} seconds (default 15). $opt{among} => [members] limits
# the members asked.
sub wait_leader {
    my ($self, %opt) = @_;
    my $deadline = Time::HiRes::time() + ($opt{timeout} // 15);
    my @ask = $opt{among} ? @{ $opt{among} }
            : grep { !$self->is_partitioned($_) && $_->is_running } $self->members;
    while (1) {
        my (%leader, %by_id, $missing);
        for my $m (@ask) {
            my $st = $self->status($m, 1);
            if (!$st) { $missing = 1; next }
            $leader{ $st->{leader} } = 1;
            $m->{member_id} = $st->{member_id};
        }
        $by_id{ $_->{member_id} } = $_ for grep { defined $_->{member_id} } $self->members;
        my @l = keys %leader;
        return $by_id{ $l[0] } if !$missing && @l == 1 && $l[0] ne '0' && $by_id{ $l[0] };
        return undef if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.1);
    }
}

# ---------------------------------------------------------------------------
# Cleanup

# Kills the members (SIGKILL) and deletes the namespaces (the routes, veths
# and the bridge in them go too) and the host link. Idempotent; done as well
# by DESTROY, at END and on SIGINT, SIGTERM and SIGHUP.
sub cleanup {
    my ($self) = @_;
    return $self unless $self->{owner} == $$;
    local ($?, $!, $@);
    for my $m (grep { defined } @{ $self->{members} }) {
        eval { $m->kill; 1 };
    }
    if ($self->{made}) {
        for my $ns (@{ $self->{netns} }, $self->{switch}) {
            _kill_inside($ns);
            _ip_quiet('netns', 'del', $ns);
        }
        # gone with the switch namespace, unless something still held it
        _ip_quiet('link', 'del', $self->{link}) if _link_exists($self->{link});
    }
    $self->{made}   = 0;
    $self->{cut}    = {};
    $self->{routes} = {};
    delete $LIVE{"$self"};
    return $self;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->cleanup if $self->{owner} == $$ && $self->{made};
}

# ---------------------------------------------------------------------------

package EtcdTest::Netns::Member;

# A member: an EtcdTest member started through "ip netns exec" and listening
# on its namespace's address; every EtcdTest method works on it.

our @ISA = ('EtcdTest');

sub namespace { $_[0]{netns} }
sub ordinal   { $_[0]{ordinal} }

1;

__END__

=head1 NAME

EtcdTest::Netns - etcd members in network namespaces, for partition tests

=head1 SYNOPSIS

    use lib 't/lib';
    use EtcdTest;
    use EtcdTest::Netns;

    # skips the file (fails it under CI) when namespaces cannot be made
    my $net = EtcdTest::Netns->start_cluster(3);
    my @members = $net->members;            # EtcdTest members
    my $client  = EV::Etcd->new(endpoints => [ $net->endpoints ]);

    my $leader = $net->wait_leader;         # a member, or undef
    my ($cut)  = grep { $_ != $leader } @members;
    $net->partition($cut);                  # no raft traffic to or from $cut
    ...                                     # $cut->endpoint still answers
    $net->heal($cut);

    $net->cleanup;                          # or let END do it

=head1 DESCRIPTION

Each member runs in a network namespace of its own (C<ip netns exec NS
etcd ...>) with one veth pair to a bridge, which lives in a namespace of
its own too (the switch); one more veth pair, the host link, joins the
host's namespace to the bridge. The host link has 10.R.0.1/24, member I
(0-based) has 10.R.0.(I+2), and etcd listens for clients on port 2379 and
for peers on port 2380 of that address; R is picked per cluster among
those no route of the host overlaps. The test process reaches every
member's client port through the host link; the members' traffic among
themselves never crosses the host's namespace (nor its firewall). Members
have EtcdTest's settings (heartbeat 50 ms, election timeout 500 ms,
C<--unsafe-no-fsync> where supported, a temporary data directory, SIGKILL
when the test process dies).

Needs Linux, root and iproute2's C<ip>; nothing else (no iptables).

=head1 FUNCTIONS

=over

=item need_netns

Ends the test file unless namespaces, veth pairs and bridges can be made:
a skip with the reason, or under C<CI> a failure (C<BAIL_OUT>), as
C<EtcdTest::need_etcd> does for etcd. C<start_cluster> calls it.

=item leftovers([$pid])

The namespaces and host links (C<"netns NAME">, C<"link NAME">) that
process C<$pid> (default: this one) made and that still exist. Croaks when
C<ip> cannot list them (rather than report nothing).

=item sweep([$pid])

Removes them (killing what still runs in the namespaces); true when
nothing is left. For leftovers of a process killed together with its
janitor: C<perl -It/lib -MEtcdTest::Netns -e 'EtcdTest::Netns::sweep(PID)'>.

=item ip_binary

The path of C<ip>, undef when there is none.

=back

=head1 METHODS

=over

=item EtcdTest::Netns->start_cluster($n, %opts)

Starts C<$n> members (default 3, at most 26) forming one cluster and waits
until each answers C</health>. Options: C<extra_args> (more etcd
arguments, for every member), C<timeout> (readiness, seconds). Returns the
cluster object; croaks (after removing what it made) when a member does
not start.

=item members, member($i), endpoints

The members (C<EtcdTest::Netns::Member>, an C<EtcdTest> subclass: C<endpoint>,
C<url>, C<host>, C<pid>, C<kill>, C<stop>, C<restart>, C<pause>, C<resume>,
C<ctl>, C<log_tail>, ... work as for C<EtcdTest> members, plus
C<namespace> and C<ordinal>, the 0-based position), member C<$i>, and the
members' C<host:port> client endpoints in order.

=item partition($member, [@from])

Cuts C<$member> (an object or its position) off from the members in
C<@from>, default every other member, in both directions: a blackhole route
for each of their addresses in its namespace and one for its address in
each of theirs. Its client port stays reachable from the test process, so
it becomes a member without a leader: after its election timeout its
status reports leader 0 and it cannot serve linearizable requests, while a
majority on the other side goes on.

=item heal($member), heal_all

C<heal> removes exactly the routes that C<partition($member)> added (routes
that another C<partition> call also needs stay); C<heal_all> heals every
partitioned member.

=item is_partitioned($member), partitioned

Whether C<partition($member)> is in effect; the partitioned members.

=item blackholed($member)

The addresses the member's namespace has blackhole routes for, as C<ip
route> reports them (sorted).

=item status($member, [$timeout])

The member's status through etcd's JSON gateway, without a client library:
C<{ member_id, leader, raft_term, raft_index, version, errors }> (ids as
decimal strings, C<leader> 0 when it knows of none), or undef when it does
not answer within C<$timeout> seconds (default 2).

=item wait_leader(timeout => $seconds, among => \@members)

Waits (default 15 s) until every running, not partitioned member (or those
in C<among>) reports the same leader, a member of this cluster; returns
that member, or undef on timeout.

=item namespace($member), namespaces, switch_namespace, host_link, subnet, host_address, address_of($i)

Names and addresses: the member's namespace, every namespace of the
cluster (the switch's first), the switch's namespace, the host link (the
one device of the cluster in the host's namespace), C<10.R.0.0/24>, the
host link's address, member C<$i>'s address.

=item cleanup

Kills the members and deletes the namespaces (and with them their routes,
veths and the bridge) and the host link. Idempotent.

=back

=head1 CLEANUP

Nothing outlives the test. C<cleanup> runs when the cluster object goes
away and at END (so after C<die>, C<BAIL_OUT> and a normal end); the first
cluster installs C<$SIG{INT}>, C<$SIG{TERM}> and C<$SIG{HUP}> handlers that
clean up and then exit with 128 + the signal's number (they replace the
test's own handlers for these signals). It also starts a janitor process,
outside the test's process group, which removes whatever the test left
(namespaces, the host link, the members' temporary directories) when it
ends without cleaning up (SIGKILL, a crash), and which sends the test
SIGTERM when the test's parent (the harness, e.g. C<prove>) is gone, so
that killing C<prove> alone cleans up as well.

All names carry the test's pid: namespaces C<evetcd-PID-SEQ-I> (members)
and C<evetcd-PID-SEQ-sw> (the switch), the host link C<evtPIDbSEQ>, where
SEQ numbers the process's clusters.

=cut
