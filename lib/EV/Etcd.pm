package EV::Etcd;

use strict;
use warnings;

use EV ();
use Scalar::Util ();
use XSLoader;

our $VERSION = '0.02';

XSLoader::load('EV::Etcd', $VERSION);

require EV::Etcd::Watch;
require EV::Etcd::Keepalive;
require EV::Etcd::Observe;

# One EV::io watcher per process drains the completion queue. It keeps the
# loop alive only while something is outstanding (toggled from the engine
# through _keepalive), so an idle client costs nothing and EV::run returns.
# While work is outstanding, a prepare watcher sends the requests that
# callbacks issued, in one batch, before the loop blocks again.
my ($IO, $PREPARE, $IO_PID);

sub _keepalive {
    return unless $IO && $IO_PID == $$;
    $IO->keepalive($_[0]);
    $_[0] ? $PREPARE->start : $PREPARE->stop;
}

sub _ensure_io {
    return if $IO && $IO_PID == $$;
    # A watcher inherited over fork watches the parent's descriptor: it only
    # stops itself, so the child neither spins on it nor steals the parent's
    # wakeups.
    $IO->stop if $IO;
    $PREPARE->stop if $PREPARE;
    # _drain and _flush are false in a forked child (the engine knows its
    # process without asking the kernel each time, as $$ does).
    my $io;
    $io = EV::io(_fd(), EV::READ(), sub { _drain() or $io->stop });
    $IO = $io;
    $IO->keepalive(0);
    my $prepare;
    $prepare = EV::prepare_ns(sub { _flush() or $prepare->stop });
    $PREPARE = $prepare;
    $PREPARE->keepalive(0);
    $IO_PID = $$;
}

my %TLS_KEYS = map { $_ => 1 } qw(ca_file cert_file key_file server_name);

sub new {
    my $class = shift;
    my %opts;
    while (@_ > 1) {
        my $k = shift;
        my $v = shift;
        $opts{$k} = $v if defined $k;    # junk keys are ignored, quietly
    }
    if (ref $opts{tls} eq 'HASH') {
        # A misspelt key must not silently weaken the connection's security.
        for my $k (sort keys %{ $opts{tls} }) {
            next if $TLS_KEYS{$k};
            require Carp;
            Carp::croak("EV::Etcd->new: unknown tls option '$k'");
        }
    }
    # Croaks of the engine name the caller's line, not this one.
    my $self = eval { _new(\%opts) };
    unless ($self) {
        (my $err = $@) =~ s/ at \S+ line \d+\.\n\z//;
        require Carp;
        Carp::croak($err);
    }
    _ensure_io();
    my $interval = do { no warnings; int($opts{health_interval} // 0) };
    _health_start($self, $interval, $opts{on_health_change}) if $interval > 0;
    return $self;
}

# Health monitoring (POD "HEALTH MONITORING"): one repeating timer per
# client on the default loop. An active timer keeps EV::run alive, like any
# EV timer.
# The closure holds a weak reference, so it never keeps the client alive;
# DESTROY stops the timer (through _health_stop), and a timer inherited by a
# forked child stops itself at its first tick.
my %HEALTH;

sub _health_start {
    my ($self, $interval, $cb) = @_;
    my $id  = $$self;
    my $pid = $$;
    my $on_change = _is_code($cb) ? $cb : undef;
    my $client = $self;
    Scalar::Util::weaken($client);
    $HEALTH{$id} = EV::timer($interval, $interval, sub {
        return $_[0]->stop if $$ != $pid || !$client;
        my $change = _health_tick($client, $interval) or return;
        $on_change->(@$change) if $on_change;
    });
}

sub _health_stop {
    my $timer = delete $HEALTH{ $_[0] } or return;
    $timer->stop;
}

sub _is_code { ref $_[0] && Scalar::Util::reftype($_[0]) eq 'CODE' }

# POD "endpoints": the list, from the engine's array reference.
sub endpoints { @{ _endpoints(@_) } }

sub txn {
    my $self = shift;
    my ($compare, $success, $failure, $cb, $opts);
    if (@_ == 4 && ref $_[0] && Scalar::Util::reftype($_[0]) eq 'ARRAY') {
        ($compare, $success, $failure, $cb) = @_;
    }
    elsif (@_ == 5 && ref $_[0] && Scalar::Util::reftype($_[0]) eq 'ARRAY'
        && ref $_[3] && Scalar::Util::reftype($_[3]) eq 'HASH') {
        ($compare, $success, $failure, $opts, $cb) = @_;
    }
    else {
        $cb = pop if @_ && _is_code($_[-1]);
        my %args;
        while (@_ > 1) {
            my $k = shift;
            my $v = shift;
            $args{$k} = $v if defined $k;
        }
        $cb = $args{callback} unless defined $cb;
        ($compare, $success, $failure) = @args{qw(compare success failure)};
        $opts = { timeout => $args{timeout} } if exists $args{timeout};
    }
    require Carp;
    Carp::croak('callback must be a code reference') unless _is_code($cb);
    _txn($self, $compare, $success, $failure, ($opts ? $opts : ()), $cb);
    return;
}

# Tied and overloaded arguments are read through these (called by the
# engine under G_EVAL), so a die in FETCH or in an overloaded operator
# becomes an ordinary croak of the method instead of unwinding the engine.
sub _plain_val   { my $v = $_[0]; $v }
sub _plain_str   { my $v = $_[0]; ref $v ? "$v" : $v }
sub _plain_num {
    my $v = $_[0];
    return $v unless ref $v;
    # the object's own numification (as SvIV would use), else its string
    require overload;
    my $m = overload::Method($v, '0+') || overload::Method($v, '""');
    return $m ? $v->$m(undef, '') : 0 + $v;
}
sub _plain_bool  { $_[0] ? 1 : 0 }
sub _plain_hash  { +{ %{ $_[0] } } }
sub _plain_array { [ @{ $_[0] } ] }

# The Future adapter is loaded on demand: EV::Etcd itself needs no Future.
sub future {
    require EV::Etcd::Future;
    return EV::Etcd::Future->new($_[0]);
}

# Sessions, mutexes and elections (EV::Etcd::Session) are pure Perl on top
# of the methods above, loaded on demand.
sub session {
    my $self = shift;
    require EV::Etcd::Session;
    return EV::Etcd::Session->_start($self, @_);
}

# Software transactional memory (EV::Etcd::STM), loaded on demand.
sub stm {
    require EV::Etcd::STM;
    EV::Etcd::STM::_start('EV::Etcd::stm', @_);
    return;
}

# All keys of a range in pages, at one revision (POD "get_all"): pure Perl
# over get with limit and revision.
my %GET_ALL_OPT = map { $_ => 1 } qw(range_end prefix page_size on_page revision
    serializable keys_only timeout min_mod_revision max_mod_revision
    min_create_revision max_create_revision);

sub get_all {
    my $self = shift;
    require Carp;
    my $cb = pop;
    Carp::croak('Usage: $client->get_all($key, [\%opts,] $callback)') unless @_ == 1 || @_ == 2;
    Carp::croak('callback must be a code reference') unless _is_code($cb);
    my ($key, $o) = @_;
    $o //= {};
    Carp::croak('get_all: options must be a hash reference')
        unless ref $o && Scalar::Util::reftype($o) eq 'HASH';
    for my $k (sort keys %$o) {
        Carp::croak("get_all: unknown option '$k' (pages come in key order, limit is page_size)")
            unless $GET_ALL_OPT{$k};
    }
    Carp::croak('get_all: key must be defined') unless defined $key;
    my $size = $o->{page_size} // 1000;
    Carp::croak('get_all: page_size must be a positive integer')
        unless !ref $size && $size =~ /\A[0-9]+\z/ && $size > 0;
    my $on_page = $o->{on_page};
    Carp::croak('get_all: on_page must be a code reference') if defined $on_page && !_is_code($on_page);
    $key = "$key";
    # prefix: the engine's prefix end (_prefix_end, XS), and for the empty
    # key every key ("\0")
    my $end = !$o->{prefix} ? $o->{range_end} : length $key ? _prefix_end($key) : "\0";
    Carp::croak('get_all: a range (range_end or prefix) is required') unless defined $end && length $end;
    my %get = map { exists $o->{$_} ? ($_ => $o->{$_}) : () }
        qw(serializable keys_only timeout min_mod_revision max_mod_revision
           min_create_revision max_create_revision);
    $get{range_end} = $end;
    $get{limit}     = $size;
    my $rev   = $o->{revision};
    my $state = { pages => 0, kvs => [], first => undef };
    my $fail = sub {
        my ($what, $e) = @_;
        chomp $e;
        return { code => 2, status => 'UNKNOWN', message => "get_all: $what: $e",
                 source => 'get_all', retryable => 0 };
    };
    my $page;
    $page = sub {
        my ($from) = @_;
        my $sent = eval {
            $self->get($from, { %get, (defined $rev ? (revision => $rev) : ()) }, sub {
            my ($r, $err) = @_;
            if ($err) {
                undef $page;
                return $cb->(undef, $err);
            }
            $state->{first} //= $r;
            $rev //= $r->{header}{revision};
            my $kvs = $r->{kvs} || [];
            $state->{pages}++;
            $state->{count} += @$kvs;
            if ($on_page) {
                my $info = { page => $state->{pages}, revision => $rev,
                             total => $state->{first}{count}, more => $r->{more} ? 1 : 0 };
                unless (eval { $on_page->($kvs, $info); 1 }) {
                    undef $page;
                    return $cb->(undef, $fail->('on_page died', $@));
                }
            } else {
                push @{ $state->{kvs} }, @$kvs;
            }
            if ($r->{more} && @$kvs) {
                return $page->($kvs->[-1]{key} . "\0");
            }
            undef $page;
            my %res = (header => $state->{first}{header}, revision => $rev,
                       count => $state->{count}, pages => $state->{pages});
            $res{kvs} = $state->{kvs} unless $on_page;
            $cb->(\%res, undef);
            });
            1;
        };
        return if $sent;
        my $e = $@;
        undef $page;
        # the first page: a bad argument croaks from get_all itself
        die $e unless $state->{pages};
        $cb->(undef, $fail->('a page could not be requested', $e));
    };
    $page->($key);
    return;
}

sub CLONE_SKIP { 1 }

END { _shutdown() }

1;

__END__

=head1 NAME

EV::Etcd - asynchronous etcd v3 client for the EV event loop

=head1 SYNOPSIS

    use EV::Etcd;    # loads EV as well

    my $etcd = EV::Etcd->new(endpoints => ['127.0.0.1:2379']);

    $etcd->put('/app/greeting', 'hello', sub {
        my ($resp, $err) = @_;
        die $err->{message} if $err;
        print "stored at revision $resp->{header}{revision}\n";

        $etcd->get('/app/greeting', sub {
            my ($resp, $err) = @_;
            die $err->{message} if $err;
            print "value: $resp->{kvs}[0]{value}\n";
        });
    });

    EV::run;    # returns once nothing is outstanding

=head1 DESCRIPTION

EV::Etcd talks to an etcd v3 cluster over gRPC from programs built on the
L<EV> event loop. Every request method takes a callback and returns at
once; the callback later runs from inside the loop with C<($response,
undef)> on success or C<(undef, $error)> on failure.

The engine is written in Rust: a single background thread per process runs
the gRPC transport (tokio and tonic); finished results cross back to the
Perl thread as plain data and wake the loop through a file descriptor that
an C<EV::io> watcher drains. Perl values are only ever built, and callbacks
only ever run, on the thread that runs Perl.

=head1 CONSTRUCTOR

=head2 new

    my $etcd = EV::Etcd->new(%options);

Creates a client. Nothing is contacted until the first request, so creating
a client for an unreachable cluster succeeds. Options (all optional;
unknown keys are ignored, a trailing key without a value is ignored):

=over 4

=item endpoints => \@list

Endpoints as C<host:port>, C<http://host:port> or C<https://host:port>
(see L</TLS>). Default C<['127.0.0.1:2379']>; an empty list means the
default, and an element that is not a string is replaced by the default.
An element longer than 2048 bytes croaks (C<peer URL too large: N bytes
(max 2048)>). Requests go to the first endpoint; a request that cannot
reach it is tried on the next (see L</RETRIES AND FAILOVER>).

=item timeout => $seconds

Whole seconds (fractions truncate; values below 1 mean 1); default 30. Each
unary request must complete within this time from the call, retries
included, or its callback receives a C<DEADLINE_EXCEEDED> error. Requests
that reach the engine together (those made by the callbacks of one pass of
the loop, or in one stretch of code) share one deadline, that of the last
of them: the earlier ones may time out later by at most the time that
passed between them.

=item max_retries => $n

How many times a failed request may be retried (default 3; negative means
0). See L</RETRIES AND FAILOVER>.

=item retry_backoff_min => $seconds, retry_backoff_max => $seconds

The floor (default 0.05) and cap (default 2) of the backoff between
rounds of retries over the endpoints and between stream reconnects: the
delay starts at the floor and doubles up to the cap, each one drawn
between half and all of its step (never below the floor), so that many
clients do not retry in step. Fractions allowed, up to 3600; anything
else croaks (C<EV::Etcd-E<gt>new: retry_backoff_min must be a number of
seconds above 0, at most 3600>), as does a cap below the floor. A fleet
whose clients all lose their member at once (a restart, an overloaded
cluster answering C<too many requests>) spreads its retries with a
higher floor and cap.

=item auth_token => $token

A token to send as C<authorization> metadata with every request. Ignored
unless it is a non-empty string.

=item user => $name, password => $password

Credentials (see L</AUTHENTICATION>). The client authenticates with them
before its first request, and again, once, when the server reports that
its token is invalid, expired or stale ("invalid auth token", "revision of
auth store is old"), then retries the request. Concurrent requests share
one authentication. Ignored unless C<user> is a non-empty string and
C<password> is defined, and ignored when C<auth_token> is given (such a
token is used as is and never renewed). Sizes as for C<user_add>
(C<username too large: ...>, C<password too large: ...>).

=item max_recv_size => $bytes

The largest response the client accepts. Default 0, meaning no limit
(etcd's own limits still apply on the server side).

=item namespace => $prefix

A key prefix (bytes) that the client puts in front of every key it sends
and takes off every key it receives, so the program sees only its own part
of the keyspace. See L</NAMESPACES>. Default: none (an empty string means
none as well); a reference croaks with C<EV::Etcd-E<gt>new: namespace must be a string>.

=item tls => { ca_file => $pem, cert_file => $pem, key_file => $pem, server_name => $name }

Talk to the cluster over TLS; see L</TLS>. The files are read when the
client is created.

=item health_interval => $seconds

Turns on health monitoring with a check every C<$seconds> whole seconds
(fractions truncate, so C<0.5> means off; negative means 0, off). Default 0.
See L</HEALTH MONITORING>.

=item on_health_change => sub { my ($is_healthy, $endpoint) = @_; ... }

Called when the health state changes. Ignored unless it is a code
reference.

=item require_leader => 0 | 1

Default 1: watches, lease keepalives, election observations and the calls
of the KV, lease, lock, election and auth methods ask the member to refuse
them when it has no leader, so that a member cut off from the rest of the
cluster sends the client elsewhere instead of serving stale data or
holding requests. The maintenance and cluster methods (C<status>,
C<member_list>, ...) always answer for the member itself. With 0 a
leaderless member keeps serving what it can (serializable reads, watches
of its own, possibly stale, data). See L</PARTITIONS AND LEADER LOSS>.

=item auto_sync_interval => $seconds

Default 0 (off; whole seconds): every C<$seconds> the client asks the
cluster for its members (C<member_list>) and replaces its endpoint list by
the client URLs of the started, voting members (learners and members not
started yet are left out), written as the list it was given (C<host:port>,
or URLs when it was given URLs); URLs of the other scheme than the client
uses (TLS or not) are left out. So a client given one member learns the
others, follows members added and removed, and carries on when the member
it was given leaves the cluster: requests and streams on an endpoint that
leaves the list move to the current one (watches resume exactly). A
failed or empty answer leaves the list as it is. See L</endpoints> and
L</set_endpoints>.

=item leader_check_interval => $seconds

Default 1 (whole seconds; 0 turns it off; ignored with C<require_leader
=E<gt> 0>): while the client has a watch, keepalive or observe stream
open, it asks the member it uses for its C<status> this often, and when
the member reports no leader it treats the member as down: streams and
requests move to the next endpoint at once, without waiting for etcd to
end the streams. See L</PARTITIONS AND LEADER LOSS>.

=item keepalive_time => $seconds, keepalive_timeout => $seconds

The liveness check of each connection to a member: after
C<keepalive_time> seconds (default 10) without traffic the client sends an
HTTP/2 ping, and closes the connection when no answer comes within
C<keepalive_timeout> seconds (default 5); its calls and streams then fail
over like after any lost connection. Whole seconds, at least 1; anything
else croaks with C<EV::Etcd-E<gt>new: keepalive_time must be a whole number
of seconds, at least 1> (or C<keepalive_timeout>). etcd answers pings more
frequent than its C<--grpc-keepalive-min-time> (default 5 s) by closing the
connection, so keep C<keepalive_time> at or above that setting.

=item keepalive_while_idle => 0 | 1

Default 0: pings only while a call or stream is open on the connection.
With 1 idle connections are pinged too (etcd counts pings without an open
stream against the client and closes such connections from time to time;
they are reopened on the next request).

=item on_event => sub { my ($event) = @_; ... }

Called with a hash reference for each thing the client does on its own:
a retry, a failover, a stream lost or resumed, a re-login, an endpoint
going down or coming back, a managed keepalive lost, backpressure on or
off. See L</EVENTS AND COUNTERS>. Must be a code reference (else
C<EV::Etcd-E<gt>new: on_event must be a code reference>). Without it (and
without C<EV_ETCD_DEBUG>) no event is ever built.

=item max_pending => $n, max_pending_bytes => $bytes

How many completions (answers, watch responses), and how many bytes of
keys and values in waiting watch responses, may wait for the Perl side
before the client's watch streams stop reading from the server; they read
again once the wait is down to half of both. Defaults 1000 and 8 MiB
(8388608); whole numbers, at least 1 (else C<EV::Etcd-E<gt>new:
max_pending must be a whole number of completions, at least 1>, or
C<max_pending_bytes must be a whole number of bytes, at least 1>). See
L</BACKPRESSURE>.

=back

=head2 stats

    my $s = $etcd->stats;
    printf "%d requests, %d retries, %d failovers\n", @$s{qw(requests retries failovers)};

The client's counters, as a hash reference (see L</EVENTS AND COUNTERS>).
Answers at once; takes no arguments (else C<Usage: EV::Etcd::stats(client)>).

=head2 endpoints

    my @endpoints = $etcd->endpoints;

The client's endpoint list as it is now: as given to C<new> or
C<set_endpoints>, or as C<auto_sync_interval> last found it.

=head2 set_endpoints

    $etcd->set_endpoints(['10.0.0.4:2379', '10.0.0.5:2379']);

Replaces the endpoint list at once (duplicates dropped); returns nothing.
Endpoints that stay keep their connections; the current endpoint stays
current when it is still listed, else the first one becomes current, and
requests and streams on an endpoint no longer listed move there (watches
resume exactly). The list must be a non-empty array reference of strings
(else C<EV::Etcd::set_endpoints: endpoints must be a non-empty array
reference of strings>) of the kind the client was created for: C<https://>
URLs need a client created with TLS (else C<EV::Etcd::set_endpoints: the
client was created without TLS, these endpoints need it with TLS>) and
the reverse. C<auto_sync_interval>, when set, replaces the list again at
its next sync.

=head2 future

    my $f_etcd = $etcd->future;
    my $resp   = $f_etcd->get($key)->get;

Returns an L<EV::Etcd::Future> adapter around the client, whose request
methods return L<Future> objects (usable with L<Future::AsyncAwait>).
Loads L<EV::Etcd::Future>, and thus L<Future>, on first use only.

=head2 stm

    $etcd->stm(sub {
        my ($stm) = @_;
        $stm->get($key, sub { my ($value) = @_; $stm->put($key, $value + 1); $stm->commit });
    }, [{ isolation => 'serializable_snapshot', retries => 16, prefetch => \@keys },] $cb);

Runs an apply function as a software transactional memory transaction
(after C<NewSTM> of etcd's Go client): its reads are checked and its
buffered writes applied in one C<txn>, and it runs again on a conflict.
C<$cb> gets C<({ succeeded =E<gt> 1, attempts =E<gt> $n, revision =E<gt>
$rev, ... }, undef)> or C<(undef, $error)>. See L<EV::Etcd::STM> (loaded
on first use) for the isolation levels, options and errors.

=head1 CALLING CONVENTIONS

=over 4

=item *

The callback must be a code reference (blessed ones are fine); anything
else croaks with C<callback must be a code reference>.

=item *

Callbacks always run from the loop, never before the method returns, even
for errors known at once. A unary request calls back exactly once.

=item *

A wrong number of arguments croaks with a C<Usage:> message. Methods with
an optional options hash take it just before the callback; anything other
than a hash reference there is ignored.

=item *

Size limits croak at once: keys and range ends up to 1 MiB (C<key too
large: N bytes (max 1048576)>), values up to 1 MiB (C<value too large:
...>). The limits are inclusive.

=item *

Keys and values are bytes. A string with Perl's UTF-8 flag is sent as its
UTF-8 encoding; everything returned is a byte string without the flag.

=item *

Request methods return nothing, except C<lock> and C<election_campaign>,
which return a handle that can cancel them (L</Cancelling a lock or a
campaign>). Requests of one client go out in call order over one
connection.

=item *

Every request method that calls back once takes per-call options (see
L</PER-CALL OPTIONS>); methods without other options take the hash just
before the callback too.

=item *

An exception thrown by a callback is handed to C<$EV::DIED> (which warns
by default), exactly as for EV's own watchers; the remaining callbacks
still run and the loop carries on.

=back

=head1 PER-CALL OPTIONS

Every method that calls back once (the KV, lease, lock, election,
cluster, maintenance and auth methods; not the streaming C<watch>,
C<election_observe>, C<lease_keepalive>, C<lease_keepalive_start> and
C<snapshot>) accepts an options hash just before the callback, and these
keys in it apply to that call alone:

=over 4

=item timeout => $seconds

The call's deadline, in seconds from the call (fractions allowed),
instead of the client's C<timeout>: longer for a C<lock> or a standby
C<election_campaign> that may wait minutes while everything else keeps a
short deadline, shorter for a read that is worthless when late. On
expiry the callback gets C<DEADLINE_EXCEEDED> as usual; retries and
failover happen within it (L</RETRIES AND FAILOVER>). Anything but a
positive number croaks with C<METHOD: timeout must be a positive number of
seconds>.

=item endpoint => 'host:port'

Only for C<status>, C<defragment>, C<hash>, C<hash_kv>, C<alarm> and
C<snapshot> (others croak with C<METHOD: endpoint is an option of status,
defragment, hash, hash_kv, alarm, snapshot only>): the call asks that
member, one of the client's endpoints (with or without C<http://>), and
no other; see L</One member at a time>.

=back

Methods that already have an options hash (C<get>, C<put>, C<delete>,
C<compact>, C<lease_time_to_live>, C<member_add>, C<alarm>) take the key
in it. The others take the hash as an extra argument before the callback,
for instance C<< $etcd->lock($name, $lease, { timeout => 600 }, $cb) >>,
C<< $etcd->status({ timeout => 0.5 }, $cb) >>, C<< $etcd->hash_kv($rev,
{ timeout => 60 }, $cb) >>; C<txn> takes it after the failure list, or
C<< timeout => $seconds >> among its keywords. The forms without it are
unchanged; an extra argument that is not a hash reference still croaks
with the method's C<Usage:> message.

=head1 RESPONSES

Most responses contain a C<header> hash with C<cluster_id>, C<member_id>,
C<revision> and C<raft_term> (cluster and member ids are unsigned 64-bit
integers and stringify as such).

Key-value entries (C<kvs>, C<prev_kv>) are hashes with exactly the keys
C<key>, C<value>, C<create_revision>, C<mod_revision>, C<version> and
C<lease>.

Booleans are the integers 0 and 1.

=head1 KV METHODS

=head2 get

    $etcd->get($key, [\%opts,] $cb);

Reads a key or a range. Response: C<header>, C<kvs> (array, empty when
nothing matched), C<more> (1 if C<limit> cut the result), C<count> (keys in
the range regardless of C<limit>). Options:

=over 4

=item range_end => $end

Reads C<[$key, $end)>. C<"\0"> means every key from C<$key> on. Wins over
C<prefix>.

=item prefix => 1

Reads every key that starts with C<$key> (ignored for an empty key).

=item limit => $n

=item revision => $rev

Reads the store as it was at C<$rev>.

=item keys_only => 1

Values come back empty.

=item count_only => 1

Only C<count> is filled; C<kvs> is empty.

=item serializable => 1

A serializable (possibly stale, but local) read.

=item sort_order => 'ascend' | 'descend'

=item sort_target => 'key' | 'version' | 'create' | 'mod' | 'value'

=item min_mod_revision, max_mod_revision, min_create_revision, max_create_revision

Server-side filters.

=back

=head2 get_all

    $etcd->get_all($prefix, { prefix => 1, page_size => 1000,
        on_page => sub { my ($kvs, $info) = @_; ... } }, $cb);
    $etcd->get_all($key, { range_end => $end }, sub { my ($r, $err) = @_; ... });

Every key of a range, read in pages of C<page_size> keys (default 1000)
so that no single response is huge, all at one revision: the first page's
(or the C<revision> option's), so writes made meanwhile are not seen and
no key is seen twice or missed. A range is required: C<prefix =E<gt> 1>
or C<range_end>. Pages come in key order. With C<on_page>, each page's
C<kvs> goes to it as it arrives, with C<< { page => $n, revision => $rev,
total => $count_at_that_revision, more => 0|1 } >>, and the result has no
C<kvs>; without it, the result holds them all. C<$cb> gets C<header> (of
the first page), C<revision>, C<count> (keys read), C<pages> and, without
C<on_page>, C<kvs>. Options also accepted: C<serializable>, C<keys_only>,
C<timeout> (per page), and the min/max mod/create revision filters;
others croak (C<get_all: unknown option 'limit'>). A page that fails ends
the read with its error: C<OUT_OF_RANGE> when the revision was compacted
meanwhile. An exception in C<on_page> ends it with C<UNKNOWN>
(C<get_all: on_page died: ...>, source C<get_all>). Pure Perl over
L</get> with C<limit> and C<revision>.

=head2 put

    $etcd->put($key, $value, [\%opts,] $cb);

Response: C<header>, and C<prev_kv> when requested and the key existed.
Options: C<lease> (attach to a lease id), C<prev_kv>, C<ignore_value>
(keep the stored value), C<ignore_lease> (keep the stored lease).

=head2 delete

    $etcd->delete($key, [\%opts,] $cb);

Response: C<header>, C<deleted> (count; 0 is not an error), and C<prev_kvs>
when C<prev_kv> was requested and something was deleted. Options:
C<range_end>, C<prefix>, C<prev_kv>.

=head2 compact

    $etcd->compact($revision, [\%opts,] $cb);

Discards history before C<$revision>. Option C<physical>: answer only once
the compaction has been applied physically. Response: C<header>.
Compacting at or below the current compaction revision fails with
C<OUT_OF_RANGE>.

=head2 txn

    $etcd->txn(\@compare, \@success, \@failure, $cb);
    $etcd->txn(compare => \@compare, success => \@success,
               failure => \@failure, callback => $cb);
    $etcd->txn(compare => \@compare, success => \@success, $cb);
    $etcd->txn(\@compare, \@success, \@failure, { timeout => 2 }, $cb);
    $etcd->txn(compare => \@compare, success => \@success, timeout => 2, $cb);

An atomic compare-and-swap. If every compare holds, the C<success>
operations run, otherwise the C<failure> ones. Missing lists are empty.

Compare entries are hashes: C<key>, optional C<range_end>, C<target>
(C<version>, C<create>, C<mod>, C<value>, C<lease>; inferred from the
operand given when omitted), C<result> (C<=> the default, C<!=>, C<< < >>,
C<< > >>, or C<EQUAL>, C<NOT_EQUAL>, C<LESS>, C<GREATER>) and one operand:
C<version>, C<create_revision>, C<mod_revision>, C<value> or C<lease>.

Operations are hashes with one key, whose hash holds C<key> and the
options of the method of the same kind: C<request_range> (or C<range>)
takes those of L</get> (C<range_end>, C<prefix>, C<limit>, C<revision>,
C<sort_order>, C<sort_target>, C<serializable>, C<keys_only>,
C<count_only>, C<min_mod_revision>, C<max_mod_revision>,
C<min_create_revision>, C<max_create_revision>); C<request_put> (or
C<put>) takes C<value> and those of L</put> (C<lease>, C<prev_kv>,
C<ignore_value>, C<ignore_lease>); C<request_delete_range> (or
C<delete>) those of L</delete> (C<range_end>, C<prefix>, C<prev_kv>).
C<request_txn> (or C<txn>) nests a transaction: C<< { compare => [...],
success => [...], failure => [...] } >>, up to 32 deep (deeper, or a
structure that contains itself, croaks with C<txn: transactions nested
more than 32 deep>). A namespace (L</NAMESPACES>) applies inside, nested
transactions included. An unrecognised operation makes the server
reject the whole transaction.

Response: C<header>, C<succeeded> (1 if the compares held), C<responses>:
one hash per operation run, with one key: C<response_range> (C<header>,
C<kvs>, C<more>, C<count>), C<response_put> (C<header>, and C<prev_kv>
when asked for and there was one), C<response_delete_range> (C<header>,
C<deleted>, C<prev_kvs>, always present here) or C<response_txn> (a nested
transaction's C<header>, C<succeeded> and C<responses>, the same way).
Sub-response headers carry only C<revision>. A transaction of reads only
(nested ones included) is retried like a read (L</RETRIES AND
FAILOVER>).

=head1 MAINTENANCE METHODS

=head2 One member at a time

Maintenance calls answer for the member they reach, and normally reach
whichever endpoint the client is using (with failover). To address one
member - a rolling defragmentation, a per-member health or hash check -
name it with the option C<endpoint>:

    for my $ep ($etcd->endpoints) {
        $etcd->defragment({ endpoint => $ep, timeout => 60 }, sub {
            my ($r, $err) = @_;
            warn "defragment $ep: $err->{message}\n" if $err;
        });
    }

C<snapshot> takes the option in a hash before its callback
(C<< $etcd->snapshot($file, { endpoint => $ep }, $cb) >>), so a backup of
a particular member - one known to be healthy, or each member in turn -
does not depend on which endpoint the client is using.

Such a call goes to that endpoint only: retries (per L</RETRIES AND
FAILOVER>) stay on it, and a member that is down or cut off is reported
as the error (C<UNAVAILABLE>, C<DEADLINE_EXCEEDED>) instead of being
answered for by another. An endpoint that is not one of the client's
calls back with C<NOT_FOUND> (C<endpoint HOST:PORT is not one of the
client's endpoints>). The response's C<header>{C<member_id>} names the
member that answered. F<eg/rolling_defrag.pl> is a complete rolling
defragmentation with per-member status and a kv hash comparison.

=head2 status

    $etcd->status($cb);

Response: C<header>, C<version> (server version string), C<db_size>,
C<leader> (member id), C<raft_index>, C<raft_term>, C<raft_applied_index>,
C<db_size_in_use>, C<is_learner>, and C<errors> (array of strings) only
when the member reports any. Servers of etcd 3.6 and later also send
C<storage_version>, C<db_size_quota> (bytes) and C<downgrade_info> (a hash
with C<enabled> and C<target_version>); these keys are present only when
the server sends them. A good first health probe.

=head2 alarm

    $etcd->alarm($action, [\%opts,] $cb);

Lists, raises or clears alarms. C<$action> is C<GET>, C<ACTIVATE> or
C<DEACTIVATE> in any case; anything else croaks with C<Invalid alarm
action: X (expected GET, ACTIVATE, or DEACTIVATE)>. Options: C<member_id>
(the member the alarm is for; 0, the default, means all members) and
C<alarm> (C<NOSPACE>, C<CORRUPT> or C<NONE>, any case; other values mean
C<NONE>). Response: C<alarms>, an array (always present) of hashes with
C<member_id>, C<alarm> (0 NONE, 1 NOSPACE, 2 CORRUPT) and C<alarm_type>
(C<NONE>, C<NOSPACE>, C<CORRUPT> or C<UNKNOWN>); and C<header> when the
server sends one (etcd 3.4 does not). While a C<NOSPACE> alarm is raised
the cluster refuses writes (C<RESOURCE_EXHAUSTED>).

=head2 defragment

    $etcd->defragment($cb);

Defragments the storage of the member the client talks to. Response: the
C<header> when the server sends one (etcd 3.4 answers with an empty hash).

=head2 hash

    $etcd->hash($cb);

The hash of the whole backend database of the member the client talks to
(etcd's Maintenance C<Hash> RPC): C<header> and C<hash> (unsigned 32-bit
integer). It covers every bucket of the database, not only the keys, so
it differs between members that hold the same keys; etcd documents it for
testing. To compare the keys of members use L</hash_kv>. Any other
argument count croaks with C<Usage: EV::Etcd::hash(client, callback)>.

=head2 hash_kv

    $etcd->hash_kv([$revision,] $cb);

The hash of the key-value store up to C<$revision> (0 or omitted: the
latest), for comparing members. Response: C<header>, C<hash> (unsigned
32-bit integer), C<compact_revision> (the last compaction revision, -1
if none) and, from servers that send it, C<hash_revision> (the revision
the hash covers). A compacted revision fails with C<OUT_OF_RANGE>; on etcd 3.4 that
includes the compaction revision itself. Any other argument count croaks
with C<Usage: $client-E<gt>hash_kv([$revision,] $callback)>.

=head2 downgrade

    $etcd->downgrade($action, $version, [\%opts,] $cb);

etcd's cluster downgrade (etcd 3.5 and later; downgrades themselves are
carried out by etcd 3.6 and later). C<$action> is C<validate> (may the
cluster go down to C<$version>, given as C<MAJOR.MINOR>, one minor below
the cluster's?), C<enable> (start it) or C<cancel> (stop one in
progress; C<$version> is ignored and may be C<undef>); any case, others
croak with C<downgrade: invalid action: X (expected validate, enable or
cancel)>. Response: C<header> and C<version>, the cluster's version.
etcd's refusals come as errors: C<INVALID_ARGUMENT> (C<etcdserver: invalid
downgrade target version>), C<FAILED_PRECONDITION> (C<etcdserver: no
inflight downgrade job>, C<etcdserver: cluster has a downgrade job in
progress>). A server without the call (etcd 3.4) answers C<UNIMPLEMENTED>,
with the message C<downgrade needs etcd 3.5 or later (the server said:
...)>. C<validate> is retried like a read, the others are never replayed.

=head2 move_leader

    $etcd->move_leader($target_id, $cb);

Hands leadership to the member C<$target_id> (an unsigned member id). Must
reach the current leader: sent to a follower it fails with
C<FAILED_PRECONDITION> (C<etcdserver: not leader>); an unknown target gives
C<etcdserver: bad leader transferee>. Response: the C<header> when the
server sends one (etcd 3.4: an empty hash).

=head2 auth_status

    $etcd->auth_status($cb);

Response: C<header>, C<enabled> (0 or 1) and C<auth_revision>. Servers
without the AuthStatus RPC (etcd 3.4) answer C<UNIMPLEMENTED>; the client
then answers from a probe instead: an C<Authenticate> request with an empty
user name, sent without a token, which such a server rejects with
"authentication is not enabled" exactly when auth is off. C<enabled> is
therefore right on every server; C<auth_revision> is 0 in that case and
the C<header> comes from a C<status> call. etcd 3.5 and later refuse the
AuthStatus RPC itself to a client without a token while auth is on
(C<etcdserver: user name is empty>); that refusal proves auth is on, so
the answer is C<enabled =E<gt> 1>, with C<auth_revision> 0 (unknown) and the
C<header> of a C<status> call as above. Transport errors are reported as
usual.

=head2 snapshot

    $etcd->snapshot($file, $cb);
    $etcd->snapshot(sub { my ($chunk) = @_; ... }, $cb);
    $etcd->snapshot($file, { endpoint => '10.0.0.2:2379' }, $cb);

Streams the backend database of the member the client talks to (or of
the member named by C<endpoint>, with no failover: L</One member at a
time>) - the file
C<etcdctl snapshot restore> takes. Given a file name, the data is written
to C<$file.part>, synced, and renamed to C<$file> once all of it arrived,
so a failed snapshot never leaves a partial file under that name. Given a
code reference, that callback receives each chunk (bytes) in order, and
C<$cb> runs after the last one. C<$cb> then gets C<size> (the number of
bytes), C<file> (in file mode), C<header> when the server sends one
(etcd 3.4 does not) and C<version>, the server's version, when it sends
that (etcd 3.6 and later). etcd ends the data with the SHA-256 of the
database before it (the file keeps it: C<etcdutl snapshot restore> checks
it); the client checks it as the data passes, and data that does not
match - a stream altered or cut on the way - fails with C<DATA_LOSS>
(C<snapshot: the data does not match the SHA-256 the server sent with
it>) and leaves no file (in chunk mode the chunks were delivered, and
C<$cb> reports the mismatch). The stream may take long: rather than one deadline
for the whole snapshot, each piece must arrive within the client's
C<timeout>. Errors carry C<source> C<snapshot>; a file that cannot be
written fails with C<INTERNAL> (source C<internal>) and a message that
names it. Croaks: C<Usage: EV::Etcd::snapshot(client, file_or_callback,
callback)>, C<snapshot: target must be a file name or a code reference>.

=head1 WATCHES

=head2 watch

    my $w = $etcd->watch($key, [\%opts,] $cb);

Watches a key or a range and calls C<$cb> with every change. Returns an
L<EV::Etcd::Watch> handle (C<cancel>, C<request_progress>) at once; the
watch is set up in the background. Each callback receives a hash with
exactly these keys:

=over 4

=item header

The response header; its C<revision> is the store revision when the
message was sent.

=item watch_id

The C<watch_id> option when given, otherwise the id the server assigned
to the watch when it was first created (it stays the same across
reconnects).

=item created

1 in the message that says the watch exists on the server (the first one,
and the first after each re-establishment), 0 otherwise.

=item canceled, compact_revision

0 in every delivered message (cancellations arrive as errors).

=item events

An array (empty in the C<created> message and in progress messages) of
event hashes: C<type> (C<PUT> or C<DELETE>), C<kv> (a key-value hash; in a
C<DELETE> event C<value> is C<"">, C<version> and C<create_revision> are 0
and C<mod_revision> is the deletion revision) and, with the C<prev_kv>
option, C<prev_kv> (the previous version of the key, absent when the key
was new).

=back

Events arrive in revision order; a message may carry several. Keys
outside the watched key or range are never delivered. Options:

=over 4

=item prefix => 1

Watch every key that starts with C<$key> (ignored when C<range_end> is
given or C<$key> is empty).

=item range_end => $end

Watch C<[$key, $end)>; C<"\0"> means every key from C<$key> on.

=item start_revision => $rev

Replay history from C<$rev> first (after the C<created> message), then go
on live. Without it the watch starts at the revision current when it is
created.

=item prev_kv => 1

Events carry C<prev_kv>.

=item filters => ['noput'] or ['nodelete']

Leave out PUT or DELETE events (any case).

=item progress_notify => 1

The server sends progress messages (no events; the header revision says
how far everything has been sent) when the watch is idle, every 10 minutes
with etcd's default settings.

=item watch_id => $id

Reported as C<watch_id> in every message.

=item auto_reconnect => 0

Do not re-establish the watch after a lost stream (default: do; the
option's presence decides, so C<undef> turns it off).

=back

=head2 How watches are carried

All watches of a client share one gRPC Watch stream, whatever their number
(100,000 watches cost one stream, not 100,000). A request issued after
C<watch> returned is ordered after the watch's creation, so a write made
right after C<watch()> is always seen by the watch.

=head2 Resuming after a lost stream

When the stream is lost (the member restarts, the connection drops, the
client fails over to another endpoint), every watch is re-created on a new
stream - on the next endpoint when the current one is unreachable - after
a backoff that starts at 50 ms and doubles up to 2 s, with jitter; it
never spins. Each watch resumes from the revision after the last event it
delivered, or, if it has delivered none, from the revision after the one
it was created at (a watch "from now" is pinned to its creation revision).
Nothing is skipped and nothing is delivered twice; the callback sees one
more C<created> message. Reconnection goes on for as long as it takes,
unless the watch was created with C<auto_reconnect =E<gt> 0> or the client
with C<max_retries =E<gt> 0>: then a lost stream ends the watch with one
error C<{ code =E<gt> 14, status =E<gt> 'UNAVAILABLE', message =E<gt> 'Watch
stream ended', source =E<gt> 'watch' }>. A watch whose server cannot be
reached when it is first set up fails with C<INTERNAL> C<Watch setup
failed> (after trying every endpoint). A stream error that no
reconnection can fix ends the watch with that error, whatever
C<auto_reconnect> says: C<INVALID_ARGUMENT>, C<PERMISSION_DENIED>,
C<UNAUTHENTICATED> that a new login does not cure, C<UNIMPLEMENTED> (a
server without the service), C<FAILED_PRECONDITION>. The same holds for
keepalives and observations. A watch whose re-creation is refused for a
token that died with the restart (see L</AUTHENTICATION>) is re-created
with a new token when the client has C<user> and C<password>.

=head2 Compaction and server-side cancellation

If the revision a watch starts or resumes from has been compacted, the
watch ends with exactly one error: C<code> 1, C<status> C<CANCELLED>,
C<source> C<watch>, C<retryable> 0, a C<message> that says the revision
was compacted, and an extra key C<compact_revision> (the compaction
revision): re-read the state with C<get> at or after that revision and
start a new watch from there. Any other cancellation by the server also
ends the watch with one C<CANCELLED> error carrying the server's reason
(C<Watch cancelled> when it gives none).

=head2 Cancelling and the handle

C<< $w->cancel($cb) >> ends the watch: nothing of it is delivered after
C<cancel> returns, and C<$cb> runs once, from the loop, with C<({},
undef)>. C<< $w->request_progress >> asks for a progress message. Dropping
the handle does B<not> end the watch; an open watch keeps C<EV::run>
running. See L<EV::Etcd::Watch>.

=head1 LEASES AND KEEPALIVE

A lease is a time-to-live that keys can be attached to (C<put> with the
C<lease> option); when it expires or is revoked, its keys are deleted.
Lease ids are plain Perl integers.

=head2 lease_grant

    $etcd->lease_grant($ttl, $cb);
    $etcd->lease_grant($ttl, { id => $id }, $cb);

Creates a lease of C<$ttl> seconds, with the id C<$id> when given (etcd
picks one otherwise; an id in use fails with etcd's C<lease already
exists>). Response: C<header>, C<id> (the new
lease id) and C<ttl> (the TTL granted). The server raises TTLs below its
minimum (zero and negative ones too) to that minimum: one and a half
election timeouts rounded up to whole seconds, 2 s with etcd's default
settings. A reply that carries an error text fails with C<INTERNAL> and
that text (source C<internal>).

=head2 lease_revoke

    $etcd->lease_revoke($lease_id, $cb);

Revokes the lease and deletes every key attached to it. Response:
C<header>. An unknown or already expired lease fails with C<NOT_FOUND>
(C<etcdserver: requested lease not found>).

=head2 lease_time_to_live

    $etcd->lease_time_to_live($lease_id, [\%opts,] $cb);

Response: C<header>, C<id>, C<ttl> (seconds left), C<granted_ttl> (the TTL
the lease was granted with) and, only when the option C<keys> is true and
at least one key is attached, C<keys> (an array of the attached keys, as
bytes). An unknown or expired lease is not an error: C<ttl> is -1 and
C<granted_ttl> 0. Option:

=over 4

=item keys => 1

Also list the keys attached to the lease.

=back

=head2 lease_leases

    $etcd->lease_leases($cb);

Response: C<header> and C<leases>, an array (possibly empty) of hashes
C<< { id => $lease_id } >>, one per live lease.

=head2 lease_keepalive

    $etcd->lease_keepalive($lease_id, $cb);

Renews the lease once: one request, one callback with C<header>, C<id> and
C<ttl> (the refreshed TTL). An unknown or expired lease (and lease id 0)
fails with C<INTERNAL> C<Lease expired> (source C<internal>); an
unreachable server with C<INTERNAL> C<Keepalive setup failed> (source
C<keepalive>). Nothing stays outstanding afterwards. To keep a lease alive,
use C<lease_keepalive_start>.

=head2 lease_keepalive_start

    my $ka = $etcd->lease_keepalive_start($lease_id, [\%opts,] [$cb]);
    $ka->stop;

Keeps the lease alive until stopped: a renewal is sent every third of the
lease's TTL over one LeaseKeepAlive stream that all the client's leases
share. C<$cb>, when given, receives each renewal's response (C<header>,
C<id>, C<ttl>). Options:

=over 4

=item on_lost => sub { my ($err) = @_; ... }

Called exactly once, with an error hash (source C<keepalive>), when the
lease is gone: C<NOT_FOUND> (C<lease N expired or was revoked>) when the
server reports it unknown - revoked by someone, or expired - and
C<DEADLINE_EXCEEDED> (C<lease N: no renewal got through before its TTL ran
out>) when renewals could not reach the server before the TTL since the
last successful renewal ran out (a server that is down or stopped, a
network split). Before the first renewal is answered, the client's
C<timeout> stands in for the unknown TTL. Nothing else is called after it.
Without C<on_lost>, the error goes to C<$cb> as C<(undef, $err)>.

=back

The stream is re-established after a loss (backoff from 50 ms up to 2 s,
with jitter) and renewals go on; a lease survives a server restart as long
as a renewal gets through within its TTL. A stream error that no
reconnection can fix (see L</Resuming after a lost stream>; for instance
C<UNIMPLEMENTED> from a server without the lease service) ends every
keepalive of the client with that error. Returns an
L<EV::Etcd::Keepalive> handle; C<< $ka->stop >> ends the renewals (the
lease itself then expires after its TTL; revoke it to end it at once).
Dropping the handle does not stop the renewals. A running keepalive keeps
C<EV::run> running. Croaks: C<Usage: $client-E<gt>lease_keepalive_start(...)>,
C<lease_keepalive_start: on_lost must be a code reference>,
C<lease_keepalive_start: options must be a hash reference>, C<callback must
be a code reference>.

=head1 LOCK METHODS

Distributed locks over etcd's lock service. A lock is tied to a lease: if
the holder's lease expires or is revoked, the lock is released, so a
crashed holder cannot keep it forever.

=head2 lock

    my $request = $etcd->lock($name, $lease_id, [\%opts,] $cb);
    $request->cancel;

Acquires the lock C<$name>, waiting while another holder has it. The wait
counts against the call's C<timeout> (the client's, or the C<timeout> in
C<\%opts>: L</PER-CALL OPTIONS>): a lock not acquired in time fails
with C<DEADLINE_EXCEEDED> (source C<lock>), and the abandoned request
does not stay queued. A lock request is never retried once it may have
reached the server. Response: C<header> and C<key>, the ownership key
(C<$name/> followed by the lease id in hex), which exists, attached to the
lease, for as long as the lock is held and can be read with C<get>. A
lease that does not exist fails with C<UNKNOWN> (C<etcdserver: requested
lease not found>). Returns an C<EV::Etcd::Request> handle (L</Cancelling a
lock or a campaign>).

For locks with try-lock, fencing and loss notification built in, see
L</CONCURRENCY> (L<EV::Etcd::Mutex>).

=head2 unlock

    $etcd->unlock($key, $cb);

Releases the lock whose ownership key C<lock> returned, by deleting that
key. Response: C<header>. Unlocking a key that does not exist succeeds.

    # run a critical section under a lock that dies with the process
    $etcd->lease_grant(10, sub {
        my ($lease, $err) = @_;
        die $err->{message} if $err;
        $etcd->lock('/locks/report', $lease->{id}, sub {
            my ($lock, $err) = @_;
            die $err->{message} if $err;
            do_the_work();
            $etcd->unlock($lock->{key}, sub {
                my (undef, $err) = @_;
                warn $err->{message} if $err;
                $etcd->lease_revoke($lease->{id}, sub { });
            });
        });
    });
    EV::run;

=head2 Cancelling a lock or a campaign

C<lock> and C<election_campaign> return an C<EV::Etcd::Request>; other
methods return nothing. Ignoring it changes nothing.

=over 4

=item $request->cancel

Gives the wait up. Returns 1 when the request had not been answered yet:
its callback is then called exactly once, from the loop, with
C<CANCELLED> (code 1, source C<lock> or C<campaign>, message C<request
cancelled>), and the request's key on the server (C<$name/> and the
lease id in hex) is deleted, so the server does not grant it later. A
lock or leadership the server granted before the cancel arrived is given
back (C<unlock> / C<election_resign>) and still reported as
C<CANCELLED>. Returns 0, and does nothing, when the callback has already
been called or the request was cancelled before. A cancelled request
whose key could not be deleted (no member reachable) leaves it to its
lease.

Because etcd keeps one key per name and lease, a cancel also releases a
lock (or candidacy) the same lease already held under the same name. A
future of L<EV::Etcd::Future> for C<lock> or C<election_campaign> cancels
its request when the future is cancelled.

=back

=head1 ELECTION METHODS

Leader election over etcd's election service. A campaigner's candidacy is
tied to its lease, like a lock. The leader is described by a leader-key
hash:

    { name => $election, key => $etcd_key, rev => $revision, lease => $lease_id }

where C<key> is the etcd key that holds the leadership (the election name,
C</> and the lease id in hex) and C<rev> its creation revision. Keep the
hash that C<election_campaign> returned to proclaim or resign.

=head2 election_campaign

    my $request = $etcd->election_campaign($name, $lease_id, $value, [\%opts,] $cb);

Joins the election and waits until elected, then answers with C<header>
and C<leader> (the leader-key hash). C<$value> becomes the leader's
value. Returns an C<EV::Etcd::Request> whose C<cancel> withdraws the
candidacy (L</Cancelling a lock or a campaign>). The wait counts against
the call's C<timeout> (L</PER-CALL OPTIONS>)
(C<DEADLINE_EXCEEDED>, source C<campaign>, when not elected in time; the
abandoned candidacy is withdrawn). Never retried once it may have reached
the server.

=head2 election_proclaim

    $etcd->election_proclaim($leader, $value, $cb);

Replaces the leader's value, as long as C<$leader> (the leader-key hash)
still leads. Response: C<header>. A leader that no longer leads fails with
C<UNKNOWN> (C<election: not leader>). C<$leader> must be a hash reference
(otherwise it croaks with C<leader must be a hash reference>); its fields
C<name>, C<key>, C<rev> and C<lease> are read from it, missing ones being
empty or 0.

=head2 election_leader

    $etcd->election_leader($name, $cb);

Response: C<header> and C<kv>, the key-value hash of the leader key, whose
C<value> is the leader's current value. An election without a leader
fails with C<UNKNOWN> (C<election: no leader>).

=head2 election_resign

    $etcd->election_resign($leader, $cb);

Gives up the leadership (the next campaigner, if any, is elected).
C<$leader> is the leader-key hash, with the same rules as for
C<election_proclaim>. Response: C<header>.

=head2 election_observe

    my $obs = $etcd->election_observe($name, $cb, [\%opts]);
    $obs->cancel(sub { ... });

Follows the election's leader: C<$cb> receives C<< { header, kv } >> (the
leader key's key-value hash, C<value> being the leader's value) at once if
the election has a leader, otherwise when one is elected, and again on
every proclamation and every change of leader. A resignation or an expired
leader lease produces no callback by itself; the next leader does. Note the
order: the options hash comes B<after> the callback (as in the reference
module); options before the callback croak with C<callback must be a code
reference>.

Option C<auto_reconnect> (default true; its presence decides, so C<undef>
turns it off): after a lost stream the observation is re-established with
backoff (50 ms doubling to 2 s, with jitter), and the current leader that
etcd reports on the new stream is not delivered again if it was the last
one delivered. With C<auto_reconnect =E<gt> 0> or C<max_retries =E<gt> 0>
a lost stream ends the observation with one error (C<UNAVAILABLE>,
C<Observe stream ended>). An unreachable server at the start gives
C<INTERNAL> C<Observe setup failed>. A stream error that no reconnection
can fix (as for watches; C<UNIMPLEMENTED> from a server without the
election service, for instance) ends the observation with that error.
Errors carry C<source> C<observe>.

Returns an L<EV::Etcd::Observe> handle whose C<cancel($cb)> ends the
observation and calls C<$cb> once, from the loop, with C<({}, undef)>.
Dropping the handle does not end the observation; an open observation
keeps C<EV::run> running.

=head1 CONCURRENCY

Besides etcd's own lock and election services (L</LOCK METHODS>,
L</ELECTION METHODS>), whose waits are single requests bounded by the
call's C<timeout> (L</PER-CALL OPTIONS>) and cancellable (L</Cancelling a
lock or a campaign>), the distribution has the coordination layer of
etcd's Go client (package C<go.etcd.io/etcd/client/v3/concurrency>) in
pure Perl, on top of the methods above: sessions, mutexes and elections
that wait on the event loop for as long as needed, can be cancelled, and
say when they are lost.

=head2 Sessions

    $etcd->session({ ttl => 10, on_lost => sub { my ($err) = @_; ... } }, sub {
        my ($session, $err) = @_;
        ...
    });

A session (L<EV::Etcd::Session>) is a lease kept alive in the background
with C<lease_keepalive_start>. Every key that its mutexes and elections
write is attached to that lease, so they all go together when the session
ends: on C<< $session->close >> (the lease is revoked at once), or when the
lease is lost - it expired, somebody revoked it, or no renewal got through
within the TTL (the process stalled, the cluster was out of reach). A loss
is reported once, with the keepalive's error hash, to the session's
C<on_lost> listeners and, before them, to its mutexes and elections.
Closing is not a loss. The TTL is the time a crashed or cut-off holder
keeps others waiting, and the time a stalled holder may believe it still
holds what it has lost.

=head2 session

    $etcd->session([{ ttl => 10, lease => $id, on_lost => sub { my ($err) = @_ } },]
                   sub { my ($session, $err) = @_; ... });

A lease (granted with C<ttl>, default 60, or the existing C<lease>) kept
alive until closed, on which L<EV::Etcd::Mutex> (C<< $session->mutex($name) >>,
with C<try_lock> and fencing through C<is_owner>) and L<EV::Etcd::Election>
(C<< $session->election($name) >>) are built in Perl, after etcd's Go
client. See L<EV::Etcd::Session> for the methods and what happens when the
lease is lost.

=head2 Mutexes

    my $m = $session->mutex('/locks/job', { on_lost => sub { ... } });
    my $wait = $m->lock({ timeout => 30 }, sub { my ($m, $err) = @_; ... });
    $m->try_lock(sub { my ($m, $err) = @_; ... $err->{locked} ... });
    $m->unlock(sub { ... });

Each contender writes its own key under the mutex's name; the one with the
oldest key holds the lock, the others wait - in the order they came - for
the keys before theirs to go. C<lock> waits as long as it takes or
C<timeout> seconds, and returns a handle whose C<cancel> gives up;
C<try_lock> fails at once, with an error whose C<locked> key is true, when
the lock is held. A timed out, cancelled or failed C<lock> and a refused
C<try_lock> delete their key before calling back. A session lost while
holding calls the mutex's C<on_lost> once; C<is_held> turns false. See
L<EV::Etcd::Mutex>.

=head2 Fencing

A lock does not stop anybody from writing, and a holder can lose it
without knowing yet (a pause longer than the TTL, a network split). Make
the writes that need the lock conditional on still holding it:

    $etcd->txn([ $m->is_owner ], [ { put => { key => $k, value => $v } } ], [],
        sub {
            my ($r, $err) = @_;
            # $r->{succeeded} == 0: the lock was lost, nothing was written
        });

C<< $m->is_owner >> is the compare entry C<< { key => $m->key, target =>
'create', result => '=', create_revision => $m->revision } >>: true only
while the holder's key exists with the revision it was granted with, so
once the lock has passed on (the key expired with the lease, or was
deleted) the transaction takes its failure branch. Add compares of your
own (the C<mod_revision> of what you read) for read-modify-write.

=head2 Elections

    my $e = $session->election('/elect/scheduler', { on_lost => sub { ... } });
    $e->campaign('host-a', { timeout => 60 }, sub { my ($e, $err) = @_; ... });
    $e->proclaim('host-a, busy', sub { ... });
    my $obs = $e->observe(sub { my ($kv, $err) = @_; ... });
    $e->leader(sub { my ($kv, $err) = @_; ... });
    $e->resign(sub { ... });

Candidates are elected in the order they joined (L<EV::Etcd::Election>).
A campaign whose session lease ended while it waited never reports
leadership: after the wait it reads its own key again and fails with
C<NOT_FOUND> (C<election: session lost during campaign>) if the key is
gone or no longer its own. C<proclaim> is guarded by the candidate's key,
so a deposed leader cannot overwrite its successor's value. A session lost
while leading calls C<on_lost> once.

=head2 Failures

Each method calls back exactly once. A wait survives member restarts and
failover (it is a watch); a request that fails (no member reachable within
the client's C<timeout>) ends C<lock> or C<campaign> with the client's
error and deletes the candidate's key, and a new call starts over. Errors
of these modules carry C<source> C<mutex>, C<election> or C<session>; a
session's loss is reported with the keepalive's error (source
C<keepalive>).

Futures: C<< $etcd->future->session(...) >>, C<lock_f>, C<campaign_f> and
friends (L<EV::Etcd::Session/FUTURES>).

=head2 STM

    $etcd->stm(sub {
        my ($stm) = @_;                         # one attempt
        $stm->get('/acct/a', sub {
            my ($from) = @_;                    # undef when absent
            $stm->get('/acct/b', sub {
                my ($to) = @_;
                return $stm->abort('insufficient funds') if $from < 10;
                $stm->put('/acct/a', $from - 10);
                $stm->put('/acct/b', $to + 10);
                $stm->commit;
            });
        });
    }, { isolation => 'serializable_snapshot', retries => 16 }, sub {
        my ($res, $err) = @_;                   # $res->{attempts}, {revision}
    });

L<EV::Etcd::STM> is software transactional memory after the C<STM> of
etcd's Go client package C<client/v3/concurrency>. The apply function
reads keys through the attempt object (asynchronously, with a callback or,
with L<EV::Etcd::Future>, C<get_f>), buffers writes with C<put> and C<del>,
and ends with C<commit> or C<abort>. The commit is a single C<txn> whose
compares check that what the attempt read is still current; if another
client changed it (a conflict), the apply function runs again with fresh
reads, up to C<retries> times with a short backoff. The final callback
runs exactly once: with C<{ succeeded =E<gt> 1, attempts =E<gt> $n,
revision =E<gt> $rev, header =E<gt> ..., responses =E<gt> ... }>, or an
error hash: C<ABORTED> C<stm: too many conflicts> (source C<stm>) when the
retries ran out, C<CANCELLED> with the reason for an abort, C<UNKNOWN>
C<stm: apply function died: ...> for an exception in the apply function or
a read callback, or the error of a read or of the commit itself.

Isolation levels (option C<isolation>): C<serializable_snapshot> (the
default, as in Go: reads at the first read's revision, and the commit also
fails when a key written but not read changed since), C<serializable>
(reads at the first read's revision; read keys checked),
C<repeatable_read> (local reads of the newest data; read keys checked) and
C<read_committed> (local reads, nothing checked: no conflicts, but lost
updates are possible). Option C<prefetch =E<gt> \@keys> reads keys in one
round trip before each attempt. The apply function may run several times,
so it must not have side effects it cannot repeat. The same with futures:
C<< $etcd->future->stm(async sub { my ($stm) = @_; my $v = await
$stm->get_f($key); ... }) >> (L<EV::Etcd::Future/stm>).

=head1 CLUSTER METHODS

Member ids are unsigned 64-bit integers; they stringify as exact unsigned
decimals (compare them with C<eq>) and may be passed back as such strings.
A member is a hash with C<id>, C<name> (only when the member has one: a
member added but never started has none), C<is_learner> (0 or 1),
C<peer_urls> and C<client_urls> (arrays, possibly empty). Cluster headers
carry C<revision> 0. Errors carry the method name as C<source>.

=head2 member_list

    $etcd->member_list($cb);

Response: C<header>, C<members> (array of member hashes).

=head2 member_add

    $etcd->member_add(\@peer_urls, [\%opts,] $cb);

Adds a member that will be reachable at C<@peer_urls>. Option
C<is_learner>: add it as a non-voting learner. Response: C<header>,
C<member> (the new member, without a name), C<members> (the full list).
Anything but an array reference croaks with C<peer_urls must be an array
reference>; a URL longer than 2048 bytes croaks with C<peer URL too
large: N bytes (max 2048)>. etcd refuses membership changes until every
member has been connected for a few seconds (C<UNAVAILABLE>, C<etcdserver:
unhealthy cluster>).

=head2 member_remove

    $etcd->member_remove($member_id, $cb);

Response: C<header>, C<members>. An unknown id fails with C<NOT_FOUND>
(C<etcdserver: member not found>).

=head2 member_update

    $etcd->member_update($member_id, \@peer_urls, $cb);

Replaces the member's peer URLs. Same URL checks as C<member_add>; an empty list croaks with C<member_update:
peer_urls must not be empty> (etcd 3.4 would crash on it).
Response: C<header>, C<members>.

=head2 member_promote

    $etcd->member_promote($member_id, $cb);

Turns a learner into a voting member. Response: C<header>, C<members>. A
learner that has not caught up with the leader fails with
C<FAILED_PRECONDITION>.

=head1 AUTH METHODS

User and role names are at most 256 bytes (C<username too large: N bytes
(max 256)>, for roles too), passwords at most 4096 bytes (C<password too
large: ...>); they are sent as text, cut at the first NUL byte. Every
response has a C<header>. Errors carry C<source> C<rpc>, except those of
C<authenticate> and C<auth_status>, which carry the method name.

=head2 authenticate

    $etcd->authenticate($user, $password, $cb);

Response: C<header>, C<token>. A non-empty token is also stored in the
client, replacing any previous one, and sent with every later request. A
failed C<authenticate> leaves the stored token as it was. A token longer
than 1 MiB is refused (C<INTERNAL>, C<auth token too large>, source
C<internal>).

=head2 auth_enable, auth_disable

    $etcd->auth_enable($cb);
    $etcd->auth_disable($cb);

Switch authentication on or off. etcd requires a C<root> user with the
C<root> role before it enables auth. C<auth_disable> succeeds also when auth
is already off.

=head2 user_add, user_delete, user_change_password

    $etcd->user_add($user, $password, $cb);
    $etcd->user_delete($user, $cb);
    $etcd->user_change_password($user, $password, $cb);

=head2 user_get, user_list

    $etcd->user_get($user, $cb);     # header, roles => [names]
    $etcd->user_list($cb);           # header, users => [names]

=head2 user_grant_role, user_revoke_role

    $etcd->user_grant_role($user, $role, $cb);
    $etcd->user_revoke_role($user, $role, $cb);

=head2 role_add, role_delete, role_get, role_list

    $etcd->role_add($role, $cb);
    $etcd->role_delete($role, $cb);
    $etcd->role_get($role, $cb);     # header, perm => [...]
    $etcd->role_list($cb);           # header, roles => [names]

C<perm> is an array (always present) of hashes with C<perm_type>
(C<READ>, C<WRITE>, C<READWRITE> or C<UNKNOWN>), C<key> (when not empty)
and C<range_end> (only when the permission covers a range).

=head2 role_grant_permission

    $etcd->role_grant_permission($role, $perm_type, $key, $range_end, $cb);

C<$perm_type> is C<READ>, C<WRITE> or C<READWRITE> (also in lower case);
any other word means C<READ>. C<$range_end> C<undef> grants the single key
C<$key>; C<"\0"> grants every key from C<$key> on; any other value grants
C<[$key, $range_end)>. Keys follow the usual 1 MiB limit.

=head2 role_revoke_permission

    $etcd->role_revoke_permission($role, $key, $range_end, $cb);

C<$range_end> as for C<role_grant_permission> (C<undef>: a single key).
Revoking a permission that was not granted fails with
C<FAILED_PRECONDITION>.

=head1 AUTHENTICATION

A client holds at most one token: the C<auth_token> option, the token of
the last successful C<authenticate>, or one obtained with the C<user> and
C<password> options. It goes with every request as C<authorization>
metadata.

With C<user> and C<password> the client manages the token itself: it logs
in before its first request, and when the server rejects the token (it
expired, the member forgot it after a restart, or the auth store changed
since it was issued) it logs in again, once, and retries the request. Many
requests waiting for a token share one login. If auth is off the client
simply works without a token until the server asks for one. A watch,
keepalive or observation whose stream needs a new token logs in the same
way; if that login cannot get through (no member reachable, no leader
yet), the stream is reopened after its backoff and the login tried again,
while a login the server refuses ends it with that error.

Streams and dead tokens. Simple tokens (etcd's default) live in the
member's memory: after a restart every one of them is void. JWT tokens
survive restarts but go stale when the auth store changes (a user or role
added, a permission granted). A stream re-created after a loss carries the
token it had, and etcd refuses a watch created with a void or stale token
(etcd 3.4 says C<invalid auth token> or C<revision of auth store is old>;
etcd 3.5 says C<permission denied>). With C<user> and C<password> the
client answers such a refusal by logging in again (one login shared with
every waiting request) and re-creating its watches on a stream with the
new token, from where each one's delivery stopped: no event is lost or
repeated and no error reaches the callback. A C<permission denied> is
taken for a dead token only when the token predates the last loss of the
stream or a later login; the refusal of a token issued for this very
renewal is final (the user really lacks the permission) and ends that
watch alone with a C<CANCELLED> error carrying the server's reason.
Keepalives and observations follow the same rule. A client without
credentials cannot renew: the refused watch ends with the error.

Every wording etcd 3.4, 3.5 and 3.6 use for these errors is recognised:
C<invalid auth token>, C<revision of auth store is old> and etcd 3.5's
unmapped C<auth: revision in header is old> (status C<UNKNOWN>), and
C<user name is empty>.

A client holding a token without credentials cannot renew it. When the
server answers C<UNAUTHENTICATED> (C<etcdserver: invalid auth token>), as
every etcd 3.4 member does for all tokens after C<auth_disable>, the client
drops the token and retries the request once without it: after
C<auth_disable> it keeps working, and while auth is still on the error then
reads C<etcdserver: user name is empty>.

Passwords and tokens never appear in error messages or warnings.

Setting up auth from scratch:

    my $etcd = EV::Etcd->new(endpoints => ['127.0.0.1:2379']);
    my @steps = (
        [ user_add        => 'root', $root_password ],
        [ role_add        => 'root' ],
        [ user_grant_role => 'root', 'root' ],
        [ user_add        => 'app', $app_password ],
        [ role_add        => 'app' ],
        [ role_grant_permission => 'app', 'READWRITE', '/app/', '/app0' ],
        [ user_grant_role => 'app', 'app' ],
        [ 'auth_enable' ],
    );
    my $next; $next = sub {
        my $step = shift @steps or return;
        my ($method, @args) = @$step;
        $etcd->$method(@args, sub {
            my ($resp, $err) = @_;
            die "$method: $err->{message}\n" if $err;
            $next->();
        });
    };
    $next->();
    EV::run;

    # from now on
    my $app = EV::Etcd->new(user => 'app', password => $app_password);
    $app->put('/app/config', 'x', sub { ... });    # logs in first

=head1 NAMESPACES

    my $app = EV::Etcd->new(endpoints => [...], namespace => '/app/');
    $app->put('config', 'x', $cb);            # writes /app/config
    $app->get('', { prefix => 1 }, $cb);      # everything under /app/,
                                              # keys returned as 'config', ...

A client created with C<namespace> moves every key it sends under the
prefix and removes the prefix from every key it returns, following the
rules of etcd's Go client package C<clientv3/namespace>. Nothing outside
the namespace is read, written, deleted or watched through it.

=over 4

=item *

Prefixed: the keys and C<range_end>s of C<get>, C<put> and C<delete>;
compares and operations of C<txn> (nested transactions included); the key
and range of C<watch>; lock names and the keys given to C<unlock>;
election names (C<election_campaign>, C<election_leader>,
C<election_observe>) and the leader-key hashes given to
C<election_proclaim> and C<election_resign>.

=item *

Stripped: the keys of C<kvs>, C<prev_kv> and C<prev_kvs> in every
response, in C<txn> sub-responses and in watch events (C<kv> and
C<prev_kv>); the C<key> of a C<lock> response; C<name> and C<key> of the
leader-key hash from C<election_campaign>; the leader C<kv> of
C<election_leader> and of every C<election_observe> callback; the C<keys> of C<lease_time_to_live> (keys of the
lease that lie outside the namespace are left out).

=item *

Ranges: a C<range_end> of C<"\0"> (every key from C<$key> on) ends at the
end of the namespace; C<prefix> with the empty key means the whole
namespace (without a namespace it adds nothing, as documented for C<get>);
the empty key on its own stays the empty key, so etcd answers C<key is not
provided> as it would without a namespace.

=item *

Not affected: C<compact> (revisions are global), leases themselves,
cluster, maintenance and auth methods; in particular the keys of
C<role_grant_permission> name real etcd keys, so grant a namespaced
program's role the range of its namespace.

=back

Namespaced and plain clients can share one cluster: a plain client sees
the namespaced keys with their prefix.

=head1 ERRORS

A failure reaches the callback as C<(undef, $err)> where C<$err> is a hash
with exactly these keys:

=over 4

=item code

The gRPC status code (0-16).

=item status

Its name: C<OK>, C<CANCELLED>, C<UNKNOWN>, C<INVALID_ARGUMENT>,
C<DEADLINE_EXCEEDED>, C<NOT_FOUND>, C<ALREADY_EXISTS>,
C<PERMISSION_DENIED>, C<RESOURCE_EXHAUSTED>, C<FAILED_PRECONDITION>,
C<ABORTED>, C<OUT_OF_RANGE>, C<UNIMPLEMENTED>, C<INTERNAL>,
C<UNAVAILABLE>, C<DATA_LOSS>, C<UNAUTHENTICATED> (a code past 16, which
no gRPC server sends, reads as C<UNKNOWN>).

=item message

The server's text (for example C<etcdserver: requested lease not found>),
or the client's own (C<Deadline Exceeded> when C<timeout> ran out, the
transport's reason when no connection could be made).

=item source

Which operation failed: C<range> for C<get>; C<put>, C<delete>,
C<compact>, C<txn>, C<status>, C<lease_grant>, C<lease_revoke>,
C<lease_leases>, C<lock>, C<unlock>, C<member_list>, C<member_add>,
C<member_remove>, C<member_update>, C<member_promote>, C<alarm>,
C<defragment>, C<hash_kv>, C<move_leader>, C<auth_status> and
C<authenticate> for the methods of those names; C<lease_ttl> for
C<lease_time_to_live>; C<campaign>, C<proclaim>, C<leader>, C<resign> for
C<election_campaign>, C<election_proclaim>, C<election_leader>,
C<election_resign>; C<watch>, C<keepalive> and C<observe> for watches,
keepalives and observations; C<rpc> for C<auth_enable>, C<auth_disable>
and every C<user_*> and C<role_*> method; C<internal> for failures of the
client's own processing; C<stm> for the outcomes of L</stm> itself
(conflicts exhausted, abort, exception: see L<EV::Etcd::STM>).

A watch that ended because its revision was compacted adds a sixth key,
C<compact_revision> (see L</WATCHES>).

=item retryable

1 for codes 4, 8, 10, 13 and 14, else 0. Informational.

=back

Bad arguments are not reported this way: they croak at once.

=head1 RETRIES AND FAILOVER

Each request method belongs to a retry class. Reads (C<get>, C<status>,
C<lease_time_to_live>, C<lease_leases>, C<election_leader>, C<txn> with
only range operations, C<member_list>, C<hash>, C<hash_kv>, C<alarm> with
C<GET>, C<auth_status>, C<user_get>, C<user_list>, C<role_get> and
C<role_list>) are retried when the server is unavailable, on the next
endpoint, with a backoff that starts at 50 ms and
doubles up to 2 s (with jitter; C<retry_backoff_min> and
C<retry_backoff_max> change both), while retries remain (C<max_retries>)
and the request's C<timeout> has not run out. Writes are retried only
when they provably never left the client (no connection could be made)
or the member refused them before they entered the cluster's log (no
leader, overload: see L</OVERLOAD> and L</PARTITIONS AND LEADER LOSS>), so a write that may
have been applied is never replayed behind your back. The same holds for C<lock> and C<election_campaign>: a lock or a
candidacy is never requested twice. A request that cannot connect to one
endpoint is tried on each of the others at least once. The error finally reported is the last one seen.

A request that reaches a member which then dies is not retried if it
may have been applied: writes in flight at that moment fail with
C<UNAVAILABLE>; a request that was still queued when the connection
closed counts as never sent and goes to the next endpoint. So when the
member a client uses is killed, the client moves on within milliseconds
and later writes succeed on another member. When that member was also
the cluster's leader, writes that other members forwarded to it before a
new leader was elected are lost inside the cluster: they fail with
C<DEADLINE_EXCEEDED> when their C<timeout> runs out (the client cannot
know whether they were applied, so it does not replay them); writes
issued after the election succeed.

A member that stops answering without closing its connection (a stopped
process, a network partition) is noticed when a request to it runs out
of its C<timeout>: that request fails with C<DEADLINE_EXCEEDED>, and the
client moves to the next endpoint for the requests that follow.

=head1 OVERLOAD

A member refuses some requests before they enter the cluster's log (its
raft log): nothing of such a request has happened, so the client sends it
again, writes included, with no risk of applying it twice. These
refusals are, in the words of etcd's server (F<v3_server.go>,
C<processInternalRaftRequestOnce>; F<api/v3rpc/interceptor.go> for the
leader check):

=over 4

=item C<etcdserver: too many requests> (C<RESOURCE_EXHAUSTED>)

The member has committed more than 5000 log entries that it has not yet
applied: its disk is slow, a defragmentation holds its database, or
writes come in faster than it applies them. etcd sends this refusal with
the code C<UNKNOWN>; the client reports it as C<RESOURCE_EXHAUSTED>
(code 8, C<retryable> 1), the code etcd itself gives it.

=item C<etcdserver: no leader> (C<UNAVAILABLE>)

The member has no leader (see L</PARTITIONS AND LEADER LOSS>).

=item C<raft proposal dropped> (C<UNKNOWN>)

The member's raft took no new entry: the member has no leader, or it is
the leader and is handing leadership over.

=item C<etcdserver: request is too large> (C<INVALID_ARGUMENT>)

The request is larger than the member's C<--max-request-bytes> (default
1.5 MiB). Members may be set differently, so the client tries the next
endpoint at once; once as many endpoints as it has have refused the
request, the refusal goes to the callback as it is. A client of a single
endpoint gets it at once. Give all members the same limit.

=back

The first three are passing states: the client tries the next endpoint at once, and
after each round of all its endpoints waits before the next round. The
wait starts at C<retry_backoff_min> (default 0.05 s) and doubles up to
C<retry_backoff_max> (default 2 s), each one drawn between half and all
of its step, so that clients refused together do not come back together.
These refusals are tried again for as long as the request's C<timeout>
allows, whatever C<max_retries> says (an election or an overload outlasts
a few quick retries; C<max_retries> bounds the other retries of
L</RETRIES AND FAILOVER>). When too little of the C<timeout> is left for
another round, the callback gets the last refusal rather than
C<DEADLINE_EXCEEDED>; so a request whose C<timeout> is at most
C<retry_backoff_min> plus 0.1 s tries each endpoint once and gets the
last refusal at once.

Many clients that overload a cluster together also retry together. For a
fleet, raise the floor and the cap (for instance C<< retry_backoff_min
=E<gt> 0.5, retry_backoff_max =E<gt> 5 >>): the refused requests then come
back spread over seconds instead of every few milliseconds, and the
member spends its time applying its backlog instead of refusing them.
Give writes a C<timeout> longer than an overload may last (the
defragmentation of a large database takes seconds; defragment one member
at a time, see L</One member at a time>).

=head1 PARTITIONS AND LEADER LOSS

A member can be up, with its client port answering, and yet cut off from
its leader: a network partition, a member whose peers all went away. Such
a member still has a connection to the client, so transport checks see
nothing wrong; with C<require_leader> (the default) the client still
leaves it:

=over 4

=item *

Calls that need a leader (KV, lease, lock, election and auth methods) are
refused by a member that knows it has no leader (from about one election
timeout, by default 1 s, after the loss) with C<etcdserver: no leader>,
before anything happens; the client tries the next endpoint at once, and
keeps trying the endpoints (backing off after each round) for as long as
the request's C<timeout> allows, whatever C<max_retries> says. Writes are tried again too: etcd refused them before
they entered the cluster's log. The same holds for C<etcdserver: too many
requests> (an overloaded member) and C<raft proposal dropped> (a member
without a leader, or a leader handing over leadership, refused the
write); see L</OVERLOAD>.

=item *

A request already on its way to the member when it lost its leader may
have been passed to the old leader: a write is not replayed (it may have
been applied) and fails with C<DEADLINE_EXCEEDED> when its C<timeout>
runs out; the requests after it go to the next endpoint.

=item *

Watches, lease keepalives and election observations: while any is open,
the client asks its member every C<leader_check_interval> (1 s) whether it
has a leader, and moves every stream on a member without one to the next
endpoint (so within about one election timeout plus one interval of the
loss). etcd itself ends such streams once the member has had no leader for
three election timeouts (about 4 s with etcd's default 1 s election
timeout), and refuses new ones at once. The client reopens the stream on
the next endpoint, and watches resume exactly where their delivery stopped
(L</Resuming after a lost stream>); a managed keepalive renews through the
new member, so a lease of a TTL above that delay survives.

=item *

A member that stops answering altogether (a stopped process, a dead
network path) while its connection stays open: streams on it are lost
when the connection's liveness ping goes unanswered (C<keepalive_time>
plus C<keepalive_timeout> after the last traffic, 15 s by default) and
reopened on the next endpoint; a watch or keepalive stream that a member
does not take within the client's C<timeout> is given up there the same
way (a watch that was never created then fails with C<Watch setup
failed>, as when no endpoint can be reached).

=back

With C<require_leader =E<gt> 0> none of this happens: a leaderless member
keeps its watches open (they deliver nothing until the partition heals),
answers serializable reads with data that may be stale, and holds
linearizable requests until their C<timeout>.

=head1 TLS

    my $etcd = EV::Etcd->new(
        endpoints => ['etcd1.example.com:2379', 'etcd2.example.com:2379'],
        tls => {
            ca_file   => '/etc/etcd/pki/ca.pem',        # verifies the servers
            cert_file => '/etc/etcd/pki/client.pem',    # client certificate and
            key_file  => '/etc/etcd/pki/client-key.pem',#   key: mutual TLS
        },
    );

The matching etcd side: C<--cert-file>, C<--key-file>, https client URLs
(C<--listen-client-urls https://...>, C<--advertise-client-urls
https://...>), and for mutual TLS C<--client-cert-auth> with
C<--trusted-ca-file>.

With the C<tls> option every endpoint is dialled over TLS: C<host:port>
and C<https://host:port> alike. The keys of the hash:

=over 4

=item ca_file

A PEM bundle of the certificate authorities that verify the servers.
Without it the system's trusted roots are used.

=item cert_file, key_file

A PEM client certificate (chain) and its private key, for servers that
demand client certificates (C<--client-cert-auth>). Give both or
neither.

=item server_name

The name checked against the server certificate instead of the
endpoint's host (for example when connecting by IP address to servers
whose certificates name only a DNS name).

=back

The files are read when the client is created: a missing or unreadable
file croaks at once, naming the option and the file (C<EV::Etcd-E<gt>new:
tls ca_file '/x.pem': No such file or directory>), and so do a file
without a PEM certificate or key, C<cert_file> without C<key_file> (or
the reverse), an unknown key in the hash, and a C<tls> value that is not
a hash reference. Endpoints given as C<https://host:port> without the
C<tls> option use TLS with the system's roots.

A client never mixes encrypted and plaintext connections, since failing
over from one to the other would silently drop the protection: an
C<http://> endpoint together with the C<tls> option croaks, and so does a
list mixing C<https://> and plain endpoints without it.

Failures of the TLS handshake reach each request's callback as
C<UNAVAILABLE> errors whose C<message> says what went wrong, for example
C<TLS certificate verification failed: invalid peer certificate:
UnknownIssuer> (wrong CA) or C<... certificate not valid for name
"etcd.example.com"; ...> (name mismatch). A server that demands a client
certificate and gets none closes the connection; the message then ends
with a hint to set C<cert_file> and C<key_file>.

=head1 HEALTH MONITORING

    my $etcd = EV::Etcd->new(
        endpoints        => ['10.0.0.1:2379', '10.0.0.2:2379', '10.0.0.3:2379'],
        health_interval  => 5,
        on_health_change => sub {
            my ($is_healthy, $endpoint) = @_;
            warn $is_healthy ? "etcd: using $endpoint\n" : "etcd: trouble, now trying $endpoint\n";
        },
    );

With C<health_interval> above zero, a repeating timer on the EV default
loop checks the client's connection every C<health_interval> seconds (the
first check one interval after C<new>). The state starts healthy and
nothing is reported at startup; C<on_health_change> is called only when
the state changes, with C<$is_healthy> the integer 1 or 0 and
C<$endpoint> the C<host:port> the client uses after any failover.

The check opens no connection to a healthy endpoint. It looks at what the
client's connections and requests have seen: the endpoint is unhealthy
when its last connection attempt failed, when its open connection was
lost (the member closed it or died, even while no request was running),
when its last request failed in the transport (connection reset, TLS
failure, keepalive timeout) or was refused for want of a leader (with
C<require_leader>, see L</PARTITIONS AND LEADER LOSS>), or when requests
had to move to another endpoint since the previous check. An endpoint not contacted yet counts
as healthy. When a check finds the current endpoint down and more than
one endpoint is configured, the client moves to the next one
(round-robin) and reports
C<(0, $next)>; one check later, typically C<(1, $next)>. With one
endpoint it reports C<(0, $endpoint)> and then probes the endpoint once
per check (one C<status> call) until it answers (with C<require_leader>:
until it answers that it has a leader), reporting C<(1, $endpoint)>. An answer from the server that is an error (say
C<PERMISSION_DENIED>) still counts as healthy.

Failover itself does not depend on health monitoring: every request that
cannot reach its endpoint moves on by itself (see L</RETRIES AND
FAILOVER>). The monitor reports.

An enabled monitor keeps C<EV::run> running, like any active EV timer.
Destroying the client stops it; a monitor inherited by a forked child
stops itself there without calling back.

=head1 EVENTS AND COUNTERS

    my $etcd = EV::Etcd->new(
        endpoints => \@endpoints,
        on_event  => sub {
            my ($e) = @_;
            warn "etcd: $e->{type} " . join(' ', map { "$_=$e->{$_}" } grep { !ref $e->{$_} } sort keys %$e) . "\n";
        },
    );

Much of what the client does happens without a call of yours: a request
is retried, requests move to another member, a watch stream is lost and
resumed, the token is renewed. C<on_event> sees each of these as it
happens, and C<stats> counts them.

Every event is a hash with C<type> and C<time> (epoch seconds, with
fractions, of when it happened in the client), and by type:

=over 4

=item retry: method, attempt, delay, error

A failed attempt of a unary request is tried again: C<method> is the
method's name, C<attempt> the number of the attempt about to start (2 for
the first retry), C<delay> the seconds it waits first (0 when it moves
straight to the next endpoint), C<error> the error hash of the failed
attempt (as a callback would get it).

=item failover: from, to, why

Requests and streams leave endpoint C<from> for C<to>. C<why> is text: the
error that caused it (C<UNAVAILABLE (Connection refused ...)>, C<UNAVAILABLE
(etcdserver: no leader)>), C<no answer within the timeout>, or the health
check's finding.

=item stream_lost: kind, endpoint, error

An open stream (C<kind> C<watch>, C<keepalive> or C<observe>) on
C<endpoint> ended with C<error> (an error hash). It is reopened, on the
same or the next endpoint, unless the error is final.

=item stream_resumed: kind, endpoint, revision

A stream lost before is open again on C<endpoint>. For watches,
C<revision> is the newest revision delivered before the loss (the watches
go on after it); 0 for the other kinds.

=item relogin: ok, error

The server refused the client's token (expired, or voided by a restart)
and the client logged in again with its C<user> and C<password>: C<ok> 1,
or 0 with the login's C<error>.

=item endpoint_down, endpoint_up: endpoint

The transport of C<endpoint> failed (connection refused or lost, TLS
failure, keepalive timeout) or, with C<require_leader>, it answered that it
has no leader; C<endpoint_up>: it answered again after that.

=item keepalive_lost: lease, error

A lease kept by C<lease_keepalive_start> is lost (expired, revoked, or
its TTL ran out without a renewal getting through); the handle's
C<on_lost> (or callback) is called too.

=item backpressure_on, backpressure_off: pending, bytes

C<pending> completions holding C<bytes> bytes of keys and values wait for
the Perl side: past C<max_pending> or C<max_pending_bytes> the client's
watch streams stop reading; below half of both they read again. See
L</BACKPRESSURE>.

=back

Events are delivered from the loop, like callbacks, after the completions
that were waiting; an event's C<time> says when it happened. An
C<on_event> that dies does not disturb the client: as for callbacks, the
error goes to C<$EV::DIED>, or is warned without one.

With the environment variable C<EV_ETCD_DEBUG> set (to anything but ""
or 0) when a client is created, the client prints the same events to
STDERR as they happen, one line each: C<EV::Etcd: retry method=put
attempt=2 delay=0.000 error=UNAVAILABLE (Connection refused (os error
111))>.

When nothing listens (no C<on_event>, no C<EV_ETCD_DEBUG>) no event is
built: the only cost is a flag read where one would be.

C<stats> returns these counters, all integers:

=over 4

=item requests, retries, failovers

Unary requests sent (each counted once, however many attempts it took),
retried attempts, and changes of the endpoint in use.

=item reconnects, relogins

Streams reopened after a loss, and logins after a refused token.

=item in_flight, watches, keepalives

Requests waiting for their answer, open watches, and managed keepalives,
now.

=item queued

Completions that arrived and wait for the loop to run their callbacks,
now (shared by the clients of the process).

=item bytes_in, bytes_out

Bytes read from and written to the client's connections (with TLS, the
encrypted bytes).

=back

=head1 BACKPRESSURE

A watch can deliver faster than its callback keeps up with: a burst of
writes, a callback that does slow work. Answers arrive on the engine's
thread and wait for the loop in a queue; left alone, that queue would grow
with the stream. Instead, when more than C<max_pending> completions
(default 1000), or watch responses with more than C<max_pending_bytes>
bytes of keys and values (default 8 MiB), wait, the client stops reading
its watch streams. HTTP/2 flow control then holds the server back: the
server keeps the events (a watcher that falls behind is caught up from the
store), and the client's memory stays bounded. Once the queue is down to
half of both, reading resumes. No event is lost or reordered; requests and
other streams carry on meanwhile. C<on_event> sees C<backpressure_on> and
C<backpressure_off>. As its values are copied to Perl, a watch response's
own copy is freed, so a large response is not held twice.

The bound is on what waits, not on one response: a watcher that fell
behind is caught up by the server in responses of up to 1000 revisions,
delivered whole (fragments are joined), so one response can hold 1000
events' keys and values. bench/slow_watch.pl shows the effect: a watch
receiving 1 GiB of 64 KiB values with a callback that takes 1 ms per
response gets every event, in order, with the process's peak RSS between
120 and 180 MB on the defaults (650 MB without a limit).

A lower limit bounds memory more tightly; a higher one rides out longer
pauses of the loop without stopping the streams.

=head1 THE EVENT LOOP

All work runs from the L<EV> default loop: callbacks only run while
C<EV::run> (or C<EV::run EV::RUN_ONCE>) is executing. The client keeps the
loop alive only while something is outstanding - requests, watches,
observations, managed keepalives, or an enabled health monitor - so
C<EV::run> returns by itself once everything has called back or been
cancelled, and an idle client without a health monitor causes no wakeups
at all. A one-shot C<lease_keepalive> leaves nothing outstanding once it
has called back.

While one request is outstanding, from a program that makes its requests
back to back, the loop waits for its answer, before it blocks, until the
request is C<EV_ETCD_WAIT_US> old (250 microseconds): the loop's other
watchers and timers are seen that much later at most. See L</ENVIRONMENT>.

=head1 OTHER EVENT LOOPS

L<AnyEvent> programs can use EV::Etcd whenever AnyEvent runs on EV (it does
when C<EV> is loaded before AnyEvent picks a backend, e.g. C<use EV;
use AnyEvent;>, or with C<PERL_ANYEVENT_MODEL=EV>): condvars, timers and
I/O watchers of AnyEvent are then EV watchers, and EV::Etcd's callbacks
run while C<< $cv->recv >> waits.

    use EV;
    use AnyEvent;
    use EV::Etcd;

    my $etcd = EV::Etcd->new(endpoints => ['127.0.0.1:2379']);
    my $cv   = AE::cv;
    $etcd->get('/app/config', sub { $cv->send(@_) });
    my ($resp, $err) = $cv->recv;

    my $t = AE::timer(1, 1, sub { $etcd->put('/app/beat', time, sub { }) });

With another AnyEvent backend, or another loop altogether, the callbacks
would never run: EV::Etcd needs the EV default loop to be running.

L<Future> users can wrap a client with L<EV::Etcd::Future> (see
L</future>): its methods return futures, and C<< $future->get >> or
C<await> (L<Future::AsyncAwait>) run the EV loop until the answer is in.

=head1 DESTRUCTION

Destroying a client (C<undef $etcd>, leaving its scope, program end)
cancels its outstanding requests, watches, observations and managed
keepalives; none of their callbacks is called (not even with an error).
Its health monitor stops. Handles (watch, observe, keepalive) that outlive
the client are inert: C<cancel> still calls back C<({}, undef)>, C<stop>
does nothing.
Destroying a client from inside one of its own callbacks is safe: the
remaining callbacks of that client are dropped quietly. Other clients are
not affected. Clients and handles left in global variables at program end
are torn down quietly too.

=head1 THREADS AND FORK

One background thread serves every client of a process; it starts with the
first client. A client belongs to the process that created it: after
C<fork>, create new clients in the child; using an inherited one croaks
(C<... cannot be used after fork; create a new client in the child>), and
so do inherited watch, observe and keepalive handles. The parent's clients,
watches and callbacks are not disturbed by the child, whatever it does or
however it exits, and none of the parent's callbacks ever runs in the
child.

=head1 TIED AND OVERLOADED ARGUMENTS

Arguments may be tied variables or objects with overloaded stringification
or numification (a path object as a key, say); they are read once, as Perl
would. If reading one dies (a C<FETCH> or an overloaded operator that
dies), the method croaks with that error and sends nothing.

=head1 BYTES VERSUS CHARACTERS

etcd stores bytes. Keys and values are sent as the bytes of the Perl
string: a string with the UTF-8 flag goes out as its UTF-8 encoding, any
other as its bytes (so C<"\xe9"> is one byte unless flagged). Everything
returned is a byte string without the UTF-8 flag; decode it yourself
(C<Encode::decode_utf8>) when you stored text.

=head1 PERFORMANCE

Figures from the scripts in F<bench/> (run them yourself: C<perl -Mblib
bench/kv.pl>, C<perl -Mblib bench/watch.pl>), measured on a 2-core
virtual machine with etcd on loopback (for KV and sequential requests,
etcd 3.5.1 with its data on tmpfs and without fsync), where the client
and the server share the two cores:

=over 4

=item KV

Pipelined C<put> and C<get> (100 in flight): 0-6% more requests per
second than the etcd-client crate (a Rust client on a tokio runtime with
one worker) in the same run, at about 12 microseconds of client CPU per
request (10 on the engine thread, 2 on the Perl thread, the benchmark's
own Perl code included), against 14-16 for the crate; about 80% of the
throughput of a hand-written single-threaded Rust client on the module's
own tonic stack (7-8 microseconds per request). The test server runs
without fsync, so it is bound by the CPU it shares with the client, and
every microsecond the client spends is one the server lacks. The script
prints, after the figures, where the time went: the client's CPU by
thread, the server's CPU per request under each client, and the share
of the machine left idle.

=item Sequential requests

One request at a time (the next sent from the previous one's callback),
each round trip crosses from the Perl thread to the engine thread and
back. On a small virtual machine most of such a round trip would be the
kernel waking threads: a thread woken on an idle virtual CPU waits some
25 microseconds for it, and one woken behind a busy process can wait
hundreds. So neither thread sleeps while the answer is due: the engine
thread keeps looking at its connections and the Perl thread waits for
the answer before the loop blocks, until the request is 250 microseconds
old (C<EV_ETCD_WAIT_US>), and after the answer the engine thread stays
awake for the next request (C<EV_ETCD_LINGER_US>), all the while yielding
the CPU to anyone who wants it. This is only done for a program that
makes its requests back to back, and only while answers come within that
time; see L</ENVIRONMENT>. Measured there, in two runs of F<bench/kv.pl>:
a sequential C<put> took 82-101 microseconds against 145-177 for the
crate (1.79-1.81 times its rate), a C<get> 96-111 against 159-172
(1.51-1.61 times), at 71-100 microseconds of client CPU per request
against 51-69 for the crate; with C<EV_ETCD_WAIT_US=0>, a C<get> took
176 microseconds and a C<put> 238. F<bench/README.md> has the
measurements.

=item Watches

100,000 watches on one client (one shared stream), then one write per
watched key: all created and every event delivered in under 10 s, with
under 200 MB of client memory growth. Put-to-event latency for one watch
under sequential puts: p50 about 0.23 ms, p99 about 0.45 ms.

=item Outages

With the server down for 6 s and a watch open, the client uses about 0.01
s of CPU (reconnects back off to one attempt every 2 s) and makes no error
callbacks; the watch resumes when the server is back.

=back

=head1 ENVIRONMENT

=over 4

=item EV_ETCD_DEBUG

Set to anything but "" or 0 when a client is created: that client prints
its events to STDERR (see L</EVENTS AND COUNTERS>).

=item EV_ETCD_LINGER_US

After it answers the last outstanding request, the engine thread stays
awake (yielding the CPU to anyone who wants it) up to this many
microseconds, so that the next request of a program making one at a time
finds it awake rather than having to wake it first: one thread wakeup
less per round trip. Default 100; 0 turns it off; at most 10000. It
lingers only while it pays: once a next request comes later than that
after its answer, the next answer does not linger, until a request
follows its answer within the time again. So a program that thinks
between its requests spends no CPU on it, and an idle client none at all
(no request, no lingering). Read once, the first time it is needed.

=item EV_ETCD_WAIT_US

While one request is outstanding, from a program that makes its requests
back to back (each within this time of the answer before), neither the
Perl thread nor the engine thread sleeps until the request is this many
microseconds old: before the loop blocks, the Perl thread waits for the
answer, and the engine thread keeps looking at its connections, both
yielding the CPU to anyone who wants it. The answer then finds both
awake: two thread wakeups less per round trip, which on a small virtual
machine are most of a round trip to a nearby server (see
L</PERFORMANCE>). Default 250; 0 turns it off; at most 10000. It waits
only while it pays: once an answer has taken longer than this, the next
request is not waited for, until one is answered within the time again;
so a program whose server is farther away spends nothing on it, nor one
that thinks between its requests, nor an idle client. Pipelined requests
(more than one outstanding) are never waited for. While the Perl thread
waits, the loop's other watchers and timers are seen at most this much
later. Read once, the first time it is needed.

=back

=head1 SEE ALSO

L<EV>, the etcd API reference at L<https://etcd.io/docs/>.

=head1 LICENSE

This library is free software; you can redistribute it and/or modify it
under the same terms as Perl itself.

=cut
