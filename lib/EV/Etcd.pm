package EV::Etcd;

use strict;
use warnings;

use EV ();
use Scalar::Util ();
use XSLoader;

our $VERSION = '0.02';

XSLoader::load('EV::Etcd', $VERSION);

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
    my $pid = $$;
    my $io;
    $io = EV::io(_fd(), EV::READ(), sub { $$ == $pid ? _drain() : $io->stop });
    $IO = $io;
    $IO->keepalive(0);
    my $prepare;
    $prepare = EV::prepare_ns(sub { $$ == $pid ? _flush() : $prepare->stop });
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
        $opts{$k} = shift;
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

# Health monitoring (API.md 9): one repeating timer per client on the
# default loop. An active timer keeps EV::run alive, like any EV timer.
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

sub txn {
    my $self = shift;
    my ($compare, $success, $failure, $cb);
    if (@_ == 4 && ref $_[0] && Scalar::Util::reftype($_[0]) eq 'ARRAY') {
        ($compare, $success, $failure, $cb) = @_;
    }
    else {
        $cb = pop if @_ && _is_code($_[-1]);
        my %args;
        while (@_ > 1) {
            my $k = shift;
            $args{$k} = shift;
        }
        $cb = $args{callback} unless defined $cb;
        ($compare, $success, $failure) = @args{qw(compare success failure)};
    }
    require Carp;
    Carp::croak('callback must be a code reference') unless _is_code($cb);
    _txn($self, $compare, $success, $failure, $cb);
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
included, or its callback receives a C<DEADLINE_EXCEEDED> error.

=item max_retries => $n

How many times a failed request may be retried (default 3; negative means
0). See L</RETRIES AND FAILOVER>.

=item auth_token => $token

A token to send as C<authorization> metadata with every request. Ignored
unless it is a non-empty string.

=item max_recv_size => $bytes

The largest response the client accepts. Default 0, meaning no limit
(etcd's own limits still apply on the server side).

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

=back

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

Request methods return nothing. Requests of one client go out in call
order over one connection.

=item *

An exception thrown by a callback is handed to C<$EV::DIED> (which warns
by default), exactly as for EV's own watchers; the remaining callbacks
still run and the loop carries on.

=back

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

An atomic compare-and-swap. If every compare holds, the C<success>
operations run, otherwise the C<failure> ones. Missing lists are empty.

Compare entries are hashes: C<key>, optional C<range_end>, C<target>
(C<version>, C<create>, C<mod>, C<value>, C<lease>; inferred from the
operand given when omitted), C<result> (C<=> the default, C<!=>, C<< < >>,
C<< > >>, or C<EQUAL>, C<NOT_EQUAL>, C<LESS>, C<GREATER>) and one operand:
C<version>, C<create_revision>, C<mod_revision>, C<value> or C<lease>.

Operations are hashes with one key: C<request_range> (or C<range>) with
C<key> and C<range_end>; C<request_put> (or C<put>) with C<key>, C<value>
and C<lease>; C<request_delete_range> (or C<delete>) with C<key> and
C<range_end>. An unrecognised operation makes the server reject the whole
transaction.

Response: C<header>, C<succeeded> (1 if the compares held), C<responses>:
one hash per operation run, with one key: C<response_range> (C<header>,
C<kvs>, C<more>, C<count>), C<response_put> (C<header>) or
C<response_delete_range> (C<header>, C<deleted>, C<prev_kvs>, always
present here). Sub-response headers carry only C<revision>.

=head1 MAINTENANCE METHODS

=head2 status

    $etcd->status($cb);

Response: C<header>, C<version> (server version string), C<db_size>,
C<leader> (member id), C<raft_index>, C<raft_term>, C<raft_applied_index>,
C<db_size_in_use>, C<is_learner>, and C<errors> (array of strings) only
when the member reports any. A good first health probe.

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
C<UNAVAILABLE>, C<DATA_LOSS>, C<UNAUTHENTICATED> (C<UNKNOWN_CODE>
otherwise).

=item message

The server's text (for example C<etcdserver: requested lease not found>),
or the client's own (C<Deadline Exceeded> when C<timeout> ran out, the
transport's reason when no connection could be made).

=item source

Which operation failed: C<range> for C<get>; C<put>, C<delete>,
C<compact>, C<txn>, C<status> for the methods of those names; C<internal>
for failures of the client's own processing.

=item retryable

1 for codes 4, 8, 10, 13 and 14, else 0. Informational.

=back

Bad arguments are not reported this way: they croak at once.

=head1 RETRIES AND FAILOVER

Each request method belongs to a retry class. Reads (C<get>, C<status>,
and C<txn> with only range operations) are retried when the server is
unavailable, on the next endpoint, with a backoff that starts at 50 ms and
doubles up to 2 s (with jitter), while retries remain (C<max_retries>)
and the request's C<timeout> has not run out. Writes are retried only
when they provably never left the client (no connection could be made),
so a write that may have reached the server is never replayed behind your
back. A request that cannot connect to one endpoint is tried on each of
the others at least once. The error finally reported is the last one seen.

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
failure, keepalive timeout), or when requests had to move to another
endpoint since the previous check. An endpoint not contacted yet counts
as healthy. When a check finds the current endpoint down and more than
one endpoint is configured, the client moves to the next one
(round-robin) and reports
C<(0, $next)>; one check later, typically C<(1, $next)>. With one
endpoint it reports C<(0, $endpoint)> and then probes the endpoint once
per check (one C<status> call) until it answers, reporting C<(1,
$endpoint)>. An answer from the server that is an error (say
C<PERMISSION_DENIED>) still counts as healthy.

Failover itself does not depend on health monitoring: every request that
cannot reach its endpoint moves on by itself (see L</RETRIES AND
FAILOVER>). The monitor reports.

An enabled monitor keeps C<EV::run> running, like any active EV timer.
Destroying the client stops it; a monitor inherited by a forked child
stops itself there without calling back.

=head1 THE EVENT LOOP

All work runs from the L<EV> default loop: callbacks only run while
C<EV::run> (or C<EV::run EV::RUN_ONCE>) is executing. The client keeps the
loop alive only while requests are outstanding (or while its health
monitor is enabled), so C<EV::run> returns by itself once everything has
called back, and an idle client without a health monitor causes no
wakeups at all.

=head1 DESTRUCTION

Destroying a client (C<undef $etcd>, leaving its scope, program end)
cancels its outstanding requests; their callbacks are not called. Its
health monitor stops.
Destroying a client from inside one of its own callbacks is safe: the
remaining callbacks of that client are dropped quietly. Other clients are
not affected.

=head1 THREADS AND FORK

One background thread serves every client of a process; it starts with the
first client. A client belongs to the process that created it: after
C<fork>, create new clients in the child; using an inherited one croaks.

=head1 BYTES VERSUS CHARACTERS

etcd stores bytes. Keys and values are sent as the bytes of the Perl
string: a string with the UTF-8 flag goes out as its UTF-8 encoding, any
other as its bytes (so C<"\xe9"> is one byte unless flagged). Everything
returned is a byte string without the UTF-8 flag; decode it yourself
(C<Encode::decode_utf8>) when you stored text.

=head1 SEE ALSO

L<EV>, the etcd API reference at L<https://etcd.io/docs/>.

=head1 LICENSE

This library is free software; you can redistribute it and/or modify it
under the same terms as Perl itself.

=cut
