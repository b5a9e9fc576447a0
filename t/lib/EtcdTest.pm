package EtcdTest;

# Test helper for EV::Etcd: throwaway etcd members on loopback ports, a
# per-process key prefix, and event-loop waits that always end.  See the POD
# at the end of this file.

use strict;
use warnings;

use Carp qw(croak);
use Exporter 'import';
use File::Path ();
use File::Spec ();
use File::Temp ();
use IO::Handle ();
use IO::Select ();
use IO::Socket::INET ();
use POSIX qw(WNOHANG WUNTRACED WIFSTOPPED);
use Time::HiRes ();

our $VERSION = '0.01';

# The helper's parts: event-loop waits, TLS certificates, the eg/ scripts'
# support, the catalogue of calls, one-callback calls. Their functions are
# called as EtcdTest::NAME, as before.
use EtcdTest::Loop ();
use EtcdTest::PKI ();
use EtcdTest::Examples ();
use EtcdTest::Calls ();
use EtcdTest::Caller ();
BEGIN {
    no strict 'refs';
    *{"EtcdTest::$_"} = \&{"EtcdTest::Loop::$_"} for qw(run_until run_loop);
    *{"EtcdTest::$_"} = \&{"EtcdTest::PKI::$_"} for qw(openssl_binary need_openssl make_pki);
    *{"EtcdTest::$_"} = \&{"EtcdTest::Examples::$_"} for qw(example_ok example_failed example_deadline);
    *{"EtcdTest::$_"} = \&{"EtcdTest::Calls::$_"} for qw(method_calls call_method);
}

# etcd pid => pid of the process that started it.  Only that process may
# signal or reap it; a forked test child that exits must leave it alone.
my %RUNNING;

my $SHARED;           # the server behind endpoints(), once started
my $SHARED_OWNER;     # pid that started it
my %PREFIX;           # pid => key prefix handed out in that process
my %HANDED_PORT;      # ports already returned by free_port in this process
my @HELD_SOCKETS;     # sockets that keep closed_port()s reserved
my $MEMBER_SEQ = 0;

my $READY_TIMEOUT = 30;
my $STOP_GRACE    = 5;

# ---------------------------------------------------------------------------
# Binaries and the "is etcd available" rule

sub _find_program {
    my ($name) = @_;
    for my $dir (File::Spec->path, '/usr/bin', '/usr/local/bin') {
        next unless defined $dir && length $dir;
        my $p = File::Spec->catfile($dir, $name);
        return $p if -f $p && -x _;
    }
    return undef;
}

sub etcd_binary {
    if (defined $ENV{EV_ETCD_TEST_ETCD} && length $ENV{EV_ETCD_TEST_ETCD}) {
        my $p = $ENV{EV_ETCD_TEST_ETCD};
        return (-f $p && -x _) ? $p : undef;
    }
    return _find_program('etcd');
}

sub etcdctl_binary { _find_program('etcdctl') }

sub _ci {
    my $ci = $ENV{CI};
    return defined $ci && length $ci && $ci !~ /^(?:0|false|no|off)$/i;
}

# Ends the test file unless an etcd binary exists: a failure (BAIL_OUT) under
# CI, where a missing server means a broken setup, and a skip elsewhere.
sub need_etcd {
    return 1 if defined etcd_binary();
    require Test::More;
    if (_ci()) {
        Test::More::BAIL_OUT('etcd not found (CI is set): install etcd-server'
            . ' or set EV_ETCD_TEST_ENDPOINTS');
    }
    my $why = 'etcd not available (install etcd-server or set EV_ETCD_TEST_ENDPOINTS)';
    my $tb  = Test::More->builder;
    die "$why\n" if $tb->has_plan || $tb->current_test;
    Test::More::plan(skip_all => $why);
}

# Ends the test file unless every module loads: a failure under CI (the
# setup must install them), a skip elsewhere. Returns 1 when all load.
sub need_modules {
    my @missing = grep { my $m = $_; !eval "require $m; 1" } @_;
    return 1 unless @missing;
    require Test::More;
    my $why = "needs @missing (not installed)";
    Test::More::BAIL_OUT("$why; CI is set: install them (see setup.sh)") if _ci();
    Test::More::plan(skip_all => $why);
}

# ---------------------------------------------------------------------------
# Ports

# Ports are picked at random below the kernel's ephemeral range: a port
# bind(0) handed out, once closed, can be given to another process's
# bind(0) or to an outgoing connection (which also draw from that range)
# before etcd binds it, or while a killed member is down; ports below the
# range are never handed out that way.
sub _ephemeral_floor {
    open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range' or return 32768;
    my ($lo) = split ' ', (scalar <$fh>) // '';
    return ($lo && $lo =~ /^\d+\z/) ? $lo : 32768;
}

sub _bindable {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => $port,
        Proto     => 'tcp',
        ReuseAddr => 1,
        Listen    => 1,
    ) or return 0;
    close $s;
    return 1;
}

sub free_port {
    my $hi = _ephemeral_floor() - 1;
    my $lo = 15000;
    if ($hi - $lo >= 1000) {
        for (1 .. 200) {
            my $port = $lo + int rand($hi - $lo + 1);
            next if $HANDED_PORT{$port};
            next unless _bindable($port);
            $HANDED_PORT{$port} = 1;
            return $port;
        }
    }
    for (1 .. 100) {
        my $s = IO::Socket::INET->new(
            LocalAddr => '127.0.0.1',
            LocalPort => 0,
            Proto     => 'tcp',
            Listen    => 1,
        ) or croak "free_port: cannot bind 127.0.0.1:0: $!";
        my $port = $s->sockport;
        close $s;
        return $port unless $HANDED_PORT{$port}++;
    }
    croak 'free_port: no unused port found';
}

# A socket bound but not listening refuses connections and keeps the port
# from being taken by anybody else for the rest of the process.
sub closed_port {
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => 0,
        Proto     => 'tcp',
    ) or croak "closed_port: cannot bind 127.0.0.1:0: $!";
    push @HELD_SOCKETS, $s;
    return $s->sockport;
}

# ---------------------------------------------------------------------------
# One etcd member

sub start {
    my ($class, %opt) = @_;
    need_etcd();

    my $fixed_ports = defined $opt{client_port} || defined $opt{peer_port};
    my $tmp = File::Temp->newdir('ev-etcd-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless {
        owner         => $$,
        tmp           => $tmp,
        data_dir      => File::Spec->catdir("$tmp", 'data'),
        log           => File::Spec->catfile("$tmp", 'etcd.log'),
        name          => $opt{name} // ('m' . $$ . '-' . ++$MEMBER_SEQ),
        extra_args    => [ @{ $opt{extra_args} || [] } ],
        ready_timeout => $opt{timeout} // $READY_TIMEOUT,
        host          => $opt{host} // '127.0.0.1',
        wrapper       => [ @{ $opt{wrapper} || [] } ],
        client_port   => $opt{client_port},
        peer_port     => $opt{peer_port},
        initial_cluster       => $opt{initial_cluster},
        initial_cluster_state => $opt{initial_cluster_state} // 'new',
        tls           => $opt{tls} ? { %{ $opt{tls} } } : undef,
    }, ref($class) || $class;

    my $wait = exists $opt{wait} ? $opt{wait} : 1;
    for my $attempt (1 .. 3) {
        $self->{client_port} //= free_port();
        $self->{peer_port}   //= free_port();
        $self->_spawn;
        return $self unless $wait;
        my $err = $self->_wait_ready($self->{ready_timeout});
        return $self unless defined $err;
        # Another process took a port between free_port and etcd's bind.
        if (!$fixed_ports && $attempt < 3 && $self->_log_since_spawn =~ /address already in use/i) {
            $self->kill;
            delete @$self{qw(client_port peer_port)};
            File::Path::remove_tree($self->{data_dir});    # it recorded the old ports
            next;
        }
        $self->kill;
        croak "EtcdTest: $err\n--- etcd log (last lines) ---\n" . $self->log_tail;
    }
}

# Starts $n members forming one cluster; returns them in order.  Waits until
# every member answers /health (possible only once a quorum is up).
# member_args => [\@args_of_first, ...] adds flags to single members.
sub start_cluster {
    my ($class, $n, %opt) = @_;
    need_etcd();
    $n ||= 3;
    my $own = delete $opt{member_args} || [];
    my @spec = map { { name => 'm' . $$ . '-' . ++$MEMBER_SEQ,
                       client_port => free_port(), peer_port => free_port(),
                       extra_args => [ @{ $opt{extra_args} || [] }, @{ $own->[$_ - 1] || [] } ],
                     } } 1 .. $n;
    my $initial = join ',', map { "$_->{name}=http://127.0.0.1:$_->{peer_port}" } @spec;
    my @members = map {
        $class->start(%opt, %$_, initial_cluster => $initial, wait => 0)
    } @spec;
    $_->wait_ready($opt{timeout}) for @members;
    return @members;
}

sub _args {
    my ($self) = @_;
    my $curl = $self->url;
    my $purl = $self->peer_url;
    my @args = (
        '--name'                        => $self->{name},
        '--data-dir'                    => $self->{data_dir},
        '--listen-client-urls'          => $curl,
        '--advertise-client-urls'       => $curl,
        '--listen-peer-urls'            => $purl,
        '--initial-advertise-peer-urls' => $purl,
        '--initial-cluster'             => $self->{initial_cluster} // "$self->{name}=$purl",
        '--initial-cluster-state'       => $self->{initial_cluster_state},
        '--initial-cluster-token'       => "ev-etcd-test-$self->{owner}",
        '--heartbeat-interval'          => 50,
        '--election-timeout'            => 500,
    );
    if (my $tls = $self->{tls}) {
        push @args, '--cert-file' => $tls->{cert_file}, '--key-file' => $tls->{key_file};
        push @args, '--client-cert-auth', '--trusted-ca-file' => $tls->{ca_file}
            if $tls->{client_cert_auth};
    }
    # Data written before a SIGKILL is still in the page cache, so tests that
    # restart a member keep their data; only a machine crash would lose it.
    push @args, '--unsafe-no-fsync' if _etcd_supports('--unsafe-no-fsync');
    return (@args, @{ $self->{extra_args} });
}

# Whether this etcd accepts a boolean flag. Asked of etcd itself, not of
# its --help: etcd 3.4 takes --unsafe-no-fsync without listing it there.
my %SUPPORTS;
sub _etcd_supports {
    my ($flag) = @_;
    my $bin = etcd_binary() // return 0;
    return $SUPPORTS{"$bin $flag"} //= do {
        my $out = _capture($bin, $flag, '--version');
        $? == 0 && $out =~ /etcd Version/ && $out !~ /flag provided but not defined/ ? 1 : 0;
    };
}

# The version of the etcd binary the tests start, as (major, minor, patch);
# empty when there is none.
my %VERSION;
sub etcd_version {
    my $bin = etcd_binary() // return ();
    my $v = $VERSION{$bin} //= do {
        my ($x) = _capture($bin, '--version') =~ /etcd Version:\s*(\d+\.\d+\.\d+)/;
        $x // '';
    };
    return split /\./, $v;
}

# Whether the etcd the tests start keeps every acknowledged write across a
# kill -9. etcd 3.5.0 to 3.5.2 do not: a backend commit between recording
# an entry's index and applying it, followed by a crash, loses that entry
# for good (etcd's "Inconsistent revision and data" fix, v3.5.3). Tests
# that kill members during writes stop them gracefully there instead, or
# let the writes settle first.
sub crash_safe {
    my ($maj, $min, $patch) = etcd_version();
    return 1 unless defined $patch;
    return !($maj == 3 && $min == 5 && $patch <= 2);
}

# Output (stdout and stderr) of a command run without a shell; status in $?.
sub _capture {
    my (@argv) = @_;
    my $pid = open(my $fh, '-|') // croak "EtcdTest: fork failed: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', File::Spec->devnull;
        exec { $argv[0] } @argv or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

sub _spawn {
    my ($self) = @_;
    my $bin  = etcd_binary() // croak 'EtcdTest: etcd binary not found';
    # The wrapper (e.g. "ip netns exec NS") must exec etcd in its own
    # process, so that the pid, the signals and die-with-parent stay etcd's.
    my @argv = (@{ $self->{wrapper} }, $bin, $self->_args);

    open my $log, '>>', $self->{log} or croak "EtcdTest: cannot open $self->{log}: $!";
    $log->autoflush(1);
    print {$log} "=== EtcdTest: @argv\n";
    $self->{log_offset} = tell $log;

    STDOUT->flush;
    STDERR->flush;
    my $parent   = $$;
    my $prctl_nr = _prctl_nr();
    my $pid = fork;
    croak "EtcdTest: fork failed: $!" unless defined $pid;
    if ($pid == 0) {
        # Child: never return into the test, never run its END blocks.
        eval {
            _die_with_parent($parent, $prctl_nr);
            open STDIN,  '<',   File::Spec->devnull or die "stdin: $!";
            open STDOUT, '>&', $log                or die "stdout: $!";
            open STDERR, '>&', $log                or die "stderr: $!";
            if (!exists $ENV{ETCD_UNSUPPORTED_ARCH}) {
                my $arch = (POSIX::uname())[4];
                $ENV{ETCD_UNSUPPORTED_ARCH} = 'arm64' if $arch =~ /^(?:aarch64|arm64)$/;
            }
            exec { $argv[0] } @argv or die "exec $argv[0]: $!";
        };
        print {$log} "EtcdTest: $@";
        POSIX::_exit(127);
    }
    close $log;
    $self->{pid}    = $pid;
    $self->{paused} = 0;
    delete $self->{exit_status};
    $RUNNING{$pid} = $self->{owner};
    return $pid;
}

# prctl(2)'s syscall number, looked up in the parent (syscall.ph is slow to
# load); undef where unknown.
my $PRCTL_NR;
sub _prctl_nr {
    return $PRCTL_NR if defined $PRCTL_NR || $^O ne 'linux';
    $PRCTL_NR = eval { require 'syscall.ph'; main::SYS_prctl() };    ## no critic
    $PRCTL_NR //= { x86_64 => 157, aarch64 => 167, i686 => 172, i386 => 172,
                    armv7l => 172, ppc64le => 171, s390x => 172, riscv64 => 167,
                  }->{ (POSIX::uname())[4] };
    return $PRCTL_NR;
}

# Linux: the member gets SIGKILL when the test process dies, however it dies
# (even by SIGKILL, when no END block can run).  Runs in the forked child.
sub _die_with_parent {
    my ($parent, $nr) = @_;
    return unless defined $nr;
    syscall($nr, 1, 9);    # prctl(PR_SET_PDEATHSIG, SIGKILL)
    POSIX::_exit(1) if getppid() != $parent;
}

sub _log_since_spawn {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return '';
    seek $fh, $self->{log_offset} || 0, 0;
    local $/;
    return <$fh> // '';
}

# Returns undef when the member answers /health, an error text otherwise.
sub _wait_ready {
    my ($self, $timeout) = @_;
    $timeout //= $self->{ready_timeout};
    my $deadline = Time::HiRes::time() + $timeout;
    while (1) {
        return 'etcd is not running' unless defined $self->{pid};
        if (!$self->_alive) {
            return "etcd exited during start-up (wait status $self->{exit_status})";
        }
        # Re-checked after /health: a process that took our port must not
        # pass for the member we started.
        return undef if $self->healthy(1) && $self->_alive;
        return "etcd did not become healthy on " . $self->url . " within $timeout s"
            if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.05);
    }
}

sub wait_ready {
    my ($self, $timeout) = @_;
    my $err = $self->_wait_ready($timeout);
    croak "EtcdTest: $err\n--- etcd log (last lines) ---\n" . $self->log_tail if defined $err;
    return $self;
}

# True when GET /health answers 200 with {"health":"true"} within $timeout s.
sub healthy {
    my ($self, $timeout) = @_;
    $timeout //= 2;
    return $self->_healthy_tls($timeout) if $self->{tls};
    my $deadline = Time::HiRes::time() + $timeout;
    my $s = IO::Socket::INET->new(
        PeerAddr => $self->{host},
        PeerPort => $self->{client_port},
        Proto    => 'tcp',
        Timeout  => $timeout,
    ) or return 0;
    local $SIG{PIPE} = 'IGNORE';
    my $req = "GET /health HTTP/1.0\r\nHost: $self->{host}:$self->{client_port}\r\n\r\n";
    defined syswrite($s, $req) or return 0;
    my ($buf, $sel) = ('', IO::Select->new($s));
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, $buf, 4096, length $buf);
        last unless $n;
    }
    close $s;
    return ($buf =~ m{\AHTTP/1\.[01] 200 } && $buf =~ /"health"\s*:\s*"true"/) ? 1 : 0;
}

# The same over TLS, through `openssl s_client` (verifying the member's
# certificate against ca_file and presenting client_cert/client_key when
# given).
sub _healthy_tls {
    my ($self, $timeout) = @_;
    my $tls = $self->{tls};
    my $openssl = _find_program('openssl') // return 0;
    my $req = File::Spec->catfile("$self->{tmp}", 'health.req');
    unless (-e $req) {
        open my $fh, '>', $req or return 0;
        print {$fh} "GET /health HTTP/1.0\r\nHost: $self->{host}\r\n\r\n";
        close $fh;
    }
    my @argv = ($openssl, 's_client', '-quiet', '-verify_return_error',
                '-connect' => "$self->{host}:$self->{client_port}",
                '-CAfile'  => $tls->{ca_file});
    push @argv, '-cert' => $tls->{client_cert}, '-key' => $tls->{client_key}
        if $tls->{client_cert};
    my $out = _capture_timed($timeout, $req, @argv);
    return ($out =~ m{HTTP/1\.[01] 200 } && $out =~ /"health"\s*:\s*"true"/) ? 1 : 0;
}

# Output of a command run with stdin from $in_file, killed after $timeout s.
sub _capture_timed {
    my ($timeout, $in_file, @argv) = @_;
    my $pid = open(my $fh, '-|') // return '';
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', $in_file or POSIX::_exit(127);
        exec { $argv[0] } @argv or POSIX::_exit(127);
    }
    my ($out, $sel) = ('', IO::Select->new($fh));
    my $deadline = Time::HiRes::time() + $timeout;
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($fh, $out, 4096, length $out);
        last unless $n;
    }
    CORE::kill('KILL', $pid);
    close $fh;
    return $out;
}

# Reaps the member if it has exited; true while it still exists.
sub _alive {
    my ($self) = @_;
    my $pid = $self->{pid} // return 0;
    return 1 if $self->{owner} != $$;    # not ours to reap
    my $r = waitpid($pid, WNOHANG);
    return 1 if $r == 0;
    # -1: reaped elsewhere (e.g. $SIG{CHLD} = 'IGNORE'); ask the kernel.
    return 1 if $r == -1 && CORE::kill(0, $pid);
    $self->{exit_status} = $r == $pid ? $? : -1;
    delete $RUNNING{$pid};
    delete $self->{pid};
    return 0;
}

sub is_running { $_[0]->_alive }

sub _signal {
    my ($self, $sig) = @_;
    return 0 unless $self->{owner} == $$ && $self->_alive;
    return CORE::kill($sig, $self->{pid});
}

sub _reap {
    my ($self, $grace) = @_;
    my $pid = $self->{pid} // return;
    my $deadline = Time::HiRes::time() + $grace;
    while (Time::HiRes::time() < $deadline) {
        return unless $self->_alive;
        Time::HiRes::sleep(0.02);
    }
    return unless $self->_alive;
    CORE::kill('KILL', $pid);
    my $r = waitpid($pid, 0);
    $self->{exit_status} = $r == $pid ? $? : -1;
    delete $RUNNING{$pid};
    delete $self->{pid};
}

sub kill {
    my ($self) = @_;
    return $self unless $self->_signal('KILL');
    $self->_reap(5);
    return $self;
}

sub stop {
    my ($self) = @_;
    return $self unless $self->_signal('TERM');
    CORE::kill('CONT', $self->{pid}) if $self->{paused};    # a stopped process cannot act on TERM
    $self->_reap($STOP_GRACE);
    return $self;
}

# SIGSTOP is asynchronous: kill() returns once the signal is queued, and a
# thread of the member may still answer a request or two before the whole
# process has stopped. Wait until the kernel reports the group stop to us
# (the parent), so that nothing sent after pause() returns gets an answer.
sub pause {
    my ($self) = @_;
    return $self unless $self->_signal('STOP');
    $self->{paused} = 1;
    my $pid = $self->{pid};
    my $deadline = Time::HiRes::time() + 10;
    while (Time::HiRes::time() < $deadline) {
        my $r = waitpid($pid, WNOHANG | WUNTRACED);
        # $? folds a stop report into 0; the native status keeps it.
        return $self if $r == $pid && WIFSTOPPED(${^CHILD_ERROR_NATIVE});
        if ($r == 0 || ($r == -1 && CORE::kill(0, $pid))) {
            # not reported (yet, or already reported, or reaped elsewhere): ask /proc
            return $self if _proc_stopped($pid);
        }
        elsif ($r == $pid || $r == -1) {    # it exited
            $self->{exit_status} = $r == $pid ? $? : -1;
            delete $RUNNING{$pid};
            delete $self->{pid};
            croak "EtcdTest: member $self->{name} exited instead of stopping";
        }
        Time::HiRes::sleep(0.005);
    }
    croak "EtcdTest: member $self->{name} did not stop within 10 s of SIGSTOP";
}

# True when every thread of $pid is stopped (or when /proc cannot tell).
sub _proc_stopped {
    my ($pid) = @_;
    opendir(my $dh, "/proc/$pid/task") or return 1;
    for my $tid (grep { /^\d+\z/ } readdir $dh) {
        open(my $fh, '<', "/proc/$pid/task/$tid/stat") or next;
        my $stat = <$fh> // next;
        return 0 unless $stat =~ /\)\s+([Tt])\s/;
    }
    return 1;
}

sub resume {
    my ($self) = @_;
    $self->{paused} = 0 if $self->_signal('CONT');
    return $self;
}

# Same name, ports and data dir; the member rejoins with its old data.
sub restart {
    my ($self, %opt) = @_;
    croak 'EtcdTest: restart from a process that did not start the member'
        unless $self->{owner} == $$;
    $self->stop;
    my $timeout = $opt{timeout} // $self->{ready_timeout};
    my $err;
    for my $attempt (1 .. 5) {
        $self->_spawn;
        $err = $self->_wait_ready($timeout);
        return $self unless defined $err;
        # A short-lived outgoing connection may briefly hold the old port.
        last unless $self->_log_since_spawn =~ /address already in use/i;
        $self->kill;
        Time::HiRes::sleep(0.2 * $attempt);
    }
    $self->kill;
    croak "EtcdTest: restart failed: $err\n--- etcd log (last lines) ---\n" . $self->log_tail;
}

sub log_tail {
    my ($self, $lines) = @_;
    $lines ||= 40;
    open my $fh, '<', $self->{log} or return "(no log: $!)\n";
    my $size = -s $fh;
    seek $fh, $size - 65536, 0 if $size > 65536;
    my @all = <$fh>;
    splice @all, 0, @all - $lines if @all > $lines;
    return join '', @all;
}

sub endpoint    { "$_[0]{host}:$_[0]{client_port}" }
sub url         { ($_[0]{tls} ? 'https' : 'http') . "://$_[0]{host}:$_[0]{client_port}" }
sub peer_url    { "http://$_[0]{host}:$_[0]{peer_port}" }
sub host        { $_[0]{host} }
sub client_port { $_[0]{client_port} }
sub peer_port   { $_[0]{peer_port} }
sub name        { $_[0]{name} }
sub pid         { $_[0]{pid} }
sub data_dir    { $_[0]{data_dir} }
sub log_file    { $_[0]{log} }

# Runs etcdctl (API v3) against this member; returns its output (stdout and
# stderr) and leaves the exit status in $?.  undef when etcdctl is missing.
sub ctl {
    my ($self, @args) = @_;
    return run_etcdctl([ $self->endpoint ], @args);
}

sub run_etcdctl {
    my ($endpoints, @args) = @_;
    my $bin = etcdctl_binary() // return undef;
    local $ENV{ETCDCTL_API} = 3;
    return _capture($bin, '--endpoints=' . join(',', @$endpoints),
                    '--dial-timeout=2s', '--command-timeout=5s', @args);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->kill if $self->{pid} && $self->{owner} == $$;
}

# ---------------------------------------------------------------------------
# Shared server, endpoints, key prefix

sub _external_endpoints {
    my $env = $ENV{EV_ETCD_TEST_ENDPOINTS};
    return () unless defined $env;
    return grep { length } split /\s*,\s*/, $env =~ s/^\s+|\s+$//gr;
}

sub endpoints {
    my @ext = _external_endpoints();
    return @ext if @ext;
    if (!$SHARED || $SHARED_OWNER != $$) {
        $SHARED       = __PACKAGE__->start;
        $SHARED_OWNER = $$;
    }
    return ($SHARED->endpoint);
}

sub server {
    return undef if _external_endpoints();
    return ($SHARED && $SHARED_OWNER == $$) ? $SHARED : undef;
}

# For the eg/ scripts: the cluster in EV_ETCD_ENDPOINTS (comma-separated
# host:port list), or else a throwaway member kept for the rest of the
# process.  Dies when neither is available.
sub example_endpoints {
    my $env = $ENV{EV_ETCD_ENDPOINTS};
    return grep { length } split /\s*,\s*/, $env =~ s/^\s+|\s+$//gr
        if defined $env && $env =~ /\S/;
    defined etcd_binary()
        or die "no etcd found: install etcd-server or set EV_ETCD_ENDPOINTS\n";
    if (!$SHARED || $SHARED_OWNER != $$) {
        $SHARED       = __PACKAGE__->start;
        $SHARED_OWNER = $$;
        print 'started a throwaway etcd on ', $SHARED->endpoint, "\n";
    }
    return ($SHARED->endpoint);
}

sub prefix {
    $PREFIX{$$} //= sprintf '/ev-etcd-test/%d-%x%04x/', $$, time, int rand 0x10000;
}

# Seeds rand from $ENV{$var} (default $default), says so (so a failing run
# can be repeated with "$var=N"), and returns the seed.
sub seeded {
    my ($var, $default) = @_;
    my $seed = $ENV{$var} // $default;
    require Test::More;
    Test::More::diag("random seed $seed ($var=$seed to repeat)");
    srand($seed);
    return $seed;
}

# Starts $client->watch($key, \%opts) that records what it delivers:
# returns { w => handle, events => [...], errs => [...], created => count },
# events mapped through $map (default: the event hashes themselves).
sub watch_recorder {
    my ($client, $key, $opts, $map) = @_;
    my $rec = { events => [], errs => [], created => 0 };
    $rec->{w} = $client->watch($key, $opts || {}, sub {
        my ($r, $e) = @_;
        return push @{ $rec->{errs} }, $e if $e;
        $rec->{created}++ if $r->{created};
        push @{ $rec->{events} }, map { $map ? $map->($_) : $_ } @{ $r->{events} };
    });
    return $rec;
}

# $n clients of endpoints(), each made with %opts.
sub clients {
    my ($n, %opts) = @_;
    require EV::Etcd;
    my @eps = endpoints();
    return map { EV::Etcd->new(endpoints => [@eps], %opts) } 1 .. $n;
}

# ---------------------------------------------------------------------------
# Callback records, for tests whose calls are code blocks (sessions,
# mutexes, elections): rec, wait_rec, call, new_session, rec_exactly_once.
# Their names can be imported (use EtcdTest qw(rec wait_rec call new_session)).

our @EXPORT_OK = qw(rec wait_rec call new_session);

my @RECORDS;    # every rec() of this process: { what, n, args, at }

# A recording callback: returns the record ({ what, n = times called, args
# of the last call, at = its Time::HiRes time }) and the callback.
sub rec {
    my ($what) = @_;
    my $r = { what => $what, n => 0 };
    push @RECORDS, $r;
    return ($r, sub { $r->{n}++; $r->{args} = [@_]; $r->{at} = Time::HiRes::time() });
}

# Runs the loop until the record's callback ran (a test, $timeout default
# 15 s); returns its arguments, or the empty list on timeout.
sub wait_rec {
    my ($r, $t) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    require Test::More;
    Test::More::ok(run_until($t // 15, sub { $r->{n} }), "$r->{what}: called back")
        or return;
    return @{ $r->{args} };
}

# $code->($cb) with a recording callback, then wait_rec.
sub call {
    my ($what, $code) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my ($r, $cb) = rec($what);
    $code->($cb);
    return wait_rec($r);
}

# $client->session(\%opts) that must succeed (a test); returns the session.
sub new_session {
    my ($client, $opts) = @_;
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    my ($s, $err) = call('session', sub { $client->session($opts || {}, $_[0]) });
    Test::More::isa_ok($s, 'EV::Etcd::Session') or Test::More::diag(Test::More::explain($err));
    return $s;
}

# Lets late duplicates arrive (0.3 s of loop), then tests that every rec()
# callback so far ran exactly once.
sub rec_exactly_once {
    local $Test::Builder::Level = ($Test::Builder::Level // 1) + 1;
    require Test::More;
    run_loop(0.3);
    Test::More::is_deeply([ map { "$_->{what}: $_->{n}" } grep { $_->{n} != 1 } @RECORDS ], [],
                          'every callback ran exactly once');
}

# Deletes this process's prefix through $client; true when the delete
# succeeded.  Optional: END does the same with etcdctl on external clusters.
sub cleanup {
    my ($client, $timeout) = @_;
    my $done;
    $client->delete(prefix(), { prefix => 1 }, sub { $done = [@_] });
    run_until($timeout // 10, sub { $done }) or return 0;
    return $done->[1] ? 0 : 1;
}

# ---------------------------------------------------------------------------

END {
    local ($?, $!, $@);
    my $me = $$;
    if (exists $PREFIX{$me} && (my @ext = _external_endpoints())) {
        eval { run_etcdctl(\@ext, 'del', '--prefix', $PREFIX{$me}) };
    }
    for my $pid (grep { $RUNNING{$_} == $me } keys %RUNNING) {
        CORE::kill('KILL', $pid);
        waitpid($pid, 0);
        delete $RUNNING{$pid};
    }
    undef $SHARED if $SHARED_OWNER && $SHARED_OWNER == $me;
}

1;

__END__

=head1 NAME

EtcdTest - throwaway etcd members and loop helpers for the EV::Etcd tests

=head1 SYNOPSIS

    use lib 't/lib';
    use EtcdTest;

    my @endpoints = EtcdTest::endpoints();     # shared member, or EV_ETCD_TEST_ENDPOINTS
    my $key = EtcdTest::prefix() . 'k1';

    my $srv = EtcdTest->start(extra_args => ['--auto-compaction-retention=1']);
    $srv->pause; $srv->resume; $srv->kill; $srv->restart;

    my $resp;
    $client->get($key, sub { $resp = [@_] });
    ok EtcdTest::run_until(5, sub { $resp }), 'get answered';

=head1 ENVIRONMENT

=over

=item EV_ETCD_TEST_ENDPOINTS

Comma-separated C<host:port> list of an existing cluster. C<endpoints()> then
returns it and starts nothing; at the end of the process the keys under
C<prefix()> are deleted with C<etcdctl> (when it is installed).

=item EV_ETCD_TEST_ETCD

Path of the etcd binary to use instead of the one found on C<PATH>.

=item CI

When true and no etcd is available, tests bail out (a failure) instead of
skipping.

=back

=head1 FUNCTIONS

All are called as C<EtcdTest::NAME>. The member's life, ports, binaries and
the shared member live in EtcdTest.pm; the event-loop waits in
EtcdTest/Loop.pm, the certificates in EtcdTest/PKI.pm, the eg/ scripts'
support in EtcdTest/Examples.pm, the catalogue of calls in EtcdTest/Calls.pm,
the one-callback calls in EtcdTest/Caller.pm and the shape assertions in
EtcdTest/Shape.pm. Clusters in network namespaces, whose members can be
cut off from each other, are in EtcdTest/Netns.pm (see its POD).

C<etcd_binary>, C<etcdctl_binary>, C<need_etcd> (skip, or bail out under CI,
when etcd is missing), C<need_modules(@names)> (the same for Perl modules), C<endpoints>, C<example_endpoints>, C<example_ok($what, $err)>, C<example_failed>, C<example_deadline($seconds)> (for the eg/
scripts: C<EV_ETCD_ENDPOINTS>, or a throwaway member), C<server>, C<prefix>, C<cleanup($client)>,
C<run_until($seconds, $done)> (true when C<$done-E<gt>()> became true, false on
timeout), C<run_loop($seconds)> (1 when C<EV::run> ended before the timer, 0 when
the timer stopped it), C<free_port>, C<closed_port> (a bound, non-listening
port: connections are refused), C<run_etcdctl(\@endpoints, @args)>,
C<method_calls($prefix)> (one well-formed argument list, callback excluded,
for every request method: C<[$method, @args]>), C<call_method($client, $call, $cb)>,
C<clients($n, %opts)> (C<$n> clients of C<endpoints>, each made with C<%opts>),
C<seeded($env_var, $default)> (srand from the environment or the default, with
a diag line saying how to repeat the run), C<watch_recorder($client, $key, \%opts, [$map])> (a watch whose deliveries land in
C<events> (mapped by C<$map>), C<errs>, C<created>; the handle is C<w>),
C<openssl_binary>, C<need_openssl> (like C<need_etcd>, for the C<openssl>
command), C<make_pki([$dir])> (creates with C<openssl> a test CA, a server
certificate for 127.0.0.1 and localhost, a client certificate and an
unrelated second CA; returns a hash of PEM file names: C<ca>, C<ca_key>,
C<server_cert>, C<server_key>, C<client_cert>, C<client_key>, C<other_ca>).

=head1 CALLBACK RECORDS

For calls made by code blocks (sessions, mutexes, elections); C<rec>,
C<wait_rec>, C<call> and C<new_session> can be imported
(C<use EtcdTest qw(rec wait_rec call new_session)>).

    my ($r, $cb) = rec('lock');       # $r: what, n (times called), args, at
    $m->lock($cb);
    my ($m2, $err) = wait_rec($r, 10);                    # a test; default 15 s
    my ($resp, $err) = call('unlock', sub { $m->unlock($_[0]) });   # both at once
    my $s = new_session($client, { ttl => 30 });         # a session that must come
    EtcdTest::rec_exactly_once();     # every rec() callback ran once (a test)

=head1 EtcdTest::Caller

    my $caller = EtcdTest::Caller->new($client, timeout => 15);
    my ($resp, $err) = $caller->call('get', $key);            # waits for the callback
    my $r = $caller->ok_call('put k', 'put', $key, 'v');      # ok(): a response, no error
    my $e = $caller->err_call('bad get', 'get', $key, {...}); # ok(): an error, no response
    my $id = $caller->lease(60);                              # lease_grant that must succeed
    $caller->revoke_leases;                                   # revokes every lease() so far
    is_deeply([ grep { $_->{n} != 1 } $caller->records ], [], 'exactly once');
    EtcdTest::Caller->exactly_once($caller, $other_caller);   # the same, as one test

    my $rec = $caller->start('lock', $name, $lease);        # returns at once
    EtcdTest::run_until(10, sub { $rec->{n} });               # $rec->{resp}, {err}, {at}

C<call> fails a test when the callback does not run within C<timeout> seconds
(default 15) and, unless C<check_argc =E<gt> 0>, when it got other than two
arguments. Every call leaves a record (C<what>, C<n> = times called, C<argc>,
C<resp>, C<err>) in C<records>.

=head1 METHODS

C<< EtcdTest->start(%opts) >> with options C<extra_args>, C<timeout> (readiness,
default 30 s), C<name>, C<client_port>, C<peer_port>, C<initial_cluster>,
C<initial_cluster_state>, C<wait> (0: return at once, call C<wait_ready> later),
C<host> (the address the member listens on and is reached at, default
127.0.0.1), C<wrapper> (an array of words run in front of the etcd command,
which must exec etcd in the same process, e.g. C<ip netns exec NS>),
C<tls> (a hash: C<cert_file> and C<key_file> make the member serve https;
C<ca_file> verifies it in readiness checks; C<client_cert_auth =E<gt> 1>
demands client certificates signed by C<ca_file>, and then C<client_cert>
and C<client_key> are what the readiness check presents). Readiness and
C<healthy> of a TLS member go through C<openssl s_client>.
C<< EtcdTest->start_cluster($n, %opts) >> returns C<$n> members of one cluster;
besides the options of C<start> (C<extra_args> go to every member) it takes
C<member_args>, an array of arrays of flags for the first, second, ... member
alone (e.g. C<< member_args =E<gt> [['--max-request-bytes=4096']] >>).

Members have C<endpoint>, C<url>, C<peer_url>, C<host>, C<client_port>, C<peer_port>,
C<name>, C<pid>, C<data_dir>, C<log_file>, C<log_tail([$lines])>,
C<healthy([$timeout])>, C<is_running>, C<wait_ready([$timeout])>, C<kill>
(SIGKILL), C<stop> (SIGTERM, SIGKILL after 5 s), C<pause> (SIGSTOP), C<resume>
(SIGCONT), C<restart> (same ports and data), C<ctl(@etcdctl_args)>.

Members never outlive the test: the process that started one kills it when
the object goes away and at END, and on Linux the kernel kills it when that
process dies. Forked children never signal their parent's members.

=cut
