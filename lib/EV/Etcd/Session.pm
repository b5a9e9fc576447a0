package EV::Etcd::Session;

use strict;
use warnings;

use Carp ();
use overload ();
use EV ();
use Scalar::Util ();
use EV::Etcd ();

our $VERSION = $EV::Etcd::VERSION;

# croaks name the caller's line, not a line of the modules that pass the call on
our @CARP_NOT = qw(EV::Etcd EV::Etcd::Mutex EV::Etcd::Election);

# A session is a lease kept alive by the client (lease_keepalive_start), as
# Go's client/v3/concurrency Session. Mutexes and elections made from it
# register themselves (weakly) as dependents and hear of its loss or close
# before the on_lost listeners run.

sub _is_code { ref $_[0] && Scalar::Util::reftype($_[0]) eq 'CODE' }
sub _is_hash { ref $_[0] && Scalar::Util::reftype($_[0]) eq 'HASH' }

sub _pos_int {
    my ($v) = @_;
    return defined $v && !ref $v && $v =~ /\A\+?[0-9]+\z/ && $v > 0;
}

sub _pos_num {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v && Scalar::Util::looks_like_number($v);
    return $v > 0 && $v < 9**9**9;    # positive and finite (NaN fails both)
}

sub _string_ok { defined $_[0] && (!ref $_[0] || overload::Method($_[0], '""')) }

# Reads an optional options hash from @$args (the caller popped the
# callback): croaks on anything but a hash reference, extra arguments and
# unknown keys.
sub _opts {
    my ($where, $args, @known) = @_;
    Carp::croak("$where: too many arguments") if @$args > 1;
    return {} unless @$args;
    my $o = $args->[0];
    Carp::croak("$where: options must be a hash reference") unless _is_hash($o);
    my %known = map { $_ => 1 } @known;
    for my $k (sort keys %$o) {
        Carp::croak("$where: unknown option '$k'") unless $known{$k};
    }
    return $o;
}

sub _err {
    my ($code, $status, $message, $source, %more) = @_;
    return { code => $code, status => $status, message => $message,
             source => $source, retryable => 0, %more };
}

# Runs $cb->(@args) from the loop, soon: never before the caller returns.
my %SOON;
my $SOON_SEQ = 0;
sub _soon {
    my ($cb, @args) = @_;
    my $id = ++$SOON_SEQ;
    $SOON{$id} = EV::timer(0, 0, sub { delete $SOON{$id}; $cb->(@args) });
    return;
}

# Calls a listener; an exception goes to $EV::DIED, as for EV's watchers,
# and the other listeners still run.
sub _call_safely {
    my ($cb, @args) = @_;
    return if eval { $cb->(@args); 1 };
    if (_is_code($EV::DIED)) { $EV::DIED->() } else { warn $@ }
    return;
}

# EV::Etcd::session
sub _start {
    my ($class, $client, @args) = @_;
    my $where = 'EV::Etcd::session';
    Carp::croak("$where: client must be an EV::Etcd object")
        unless Scalar::Util::blessed($client) && $client->isa('EV::Etcd');
    my $cb = pop @args;
    Carp::croak("$where: callback must be a code reference") unless _is_code($cb);
    my $o = _opts($where, \@args, qw(ttl lease on_lost));
    my $ttl = exists $o->{ttl} ? $o->{ttl} : 60;
    Carp::croak("$where: ttl must be a positive integer") unless _pos_int($ttl);
    Carp::croak("$where: lease must be a positive integer")
        if defined $o->{lease} && !_pos_int($o->{lease});
    Carp::croak("$where: on_lost must be a code reference")
        if defined $o->{on_lost} && !_is_code($o->{on_lost});

    my $self = bless {
        client    => $client,
        ttl       => 0 + $ttl,
        lease     => undef,
        listeners => [ $o->{on_lost} ? $o->{on_lost} : () ],
        deps      => {},
        lost      => undef,
        closed    => 0,
        revoked   => 0,
    }, $class;

    if (defined $o->{lease}) {
        my $id = 0 + $o->{lease};
        $client->lease_time_to_live($id, sub {
            my ($r, $e) = @_;
            return $cb->(undef, $e) if $e;
            if ($r->{ttl} < 0) {
                return $cb->(undef, _err(5, 'NOT_FOUND',
                    "session: lease $id not found (expired or revoked)", 'session'));
            }
            $self->{lease} = $id;
            $self->{ttl}   = $r->{granted_ttl};
            $self->_keepalive;
            $cb->($self, undef);
        });
    }
    else {
        $client->lease_grant(0 + $ttl, sub {
            my ($r, $e) = @_;
            return $cb->(undef, $e) if $e;
            $self->{lease} = $r->{id};
            $self->{ttl}   = $r->{ttl};
            $self->_keepalive;
            $cb->($self, undef);
        });
    }
    return;
}

sub _keepalive {
    my ($self) = @_;
    my $weak = $self;
    Scalar::Util::weaken($weak);
    $self->{ka} = $self->{client}->lease_keepalive_start($self->{lease}, {
        on_lost => sub { $weak->_lost($_[0]) if $weak },
    });
}

sub client  { $_[0]{client} }
sub lease   { $_[0]{lease} }
sub ttl     { $_[0]{ttl} }
sub is_lost { $_[0]{lost} ? 1 : 0 }
sub is_closed { $_[0]{closed} ? 1 : 0 }

sub on_lost {
    my ($self, $cb) = @_;
    Carp::croak('EV::Etcd::Session::on_lost: listener must be a code reference')
        unless _is_code($cb);
    return if $self->{closed};
    if ($self->{lost}) { _soon($cb, $self->{lost}); return }
    push @{ $self->{listeners} }, $cb;
    return;
}

sub _lost {
    my ($self, $err) = @_;
    return if $self->{lost} || $self->{closed};
    $self->{lost} = $err;
    # ended by itself when it reported the loss; stopped when the server
    # refused the lease to a request first
    if (my $ka = delete $self->{ka}) { $ka->stop }
    $self->_tell_deps($err, 'lost');
    my @l = @{ $self->{listeners} };
    $self->{listeners} = [];
    _call_safely($_, $err) for @l;
}

sub _tell_deps {
    my ($self, $err, $kind) = @_;
    my @deps = grep { defined } values %{ $self->{deps} };
    $_->_session_ended($err, $kind) for @deps;
}

sub _add_dep {
    my ($self, $obj) = @_;
    my $id = Scalar::Util::refaddr($obj);
    $self->{deps}{$id} = $obj;
    Scalar::Util::weaken($self->{deps}{$id});
}

sub _del_dep { delete $_[0]{deps}{ Scalar::Util::refaddr($_[1]) } }

# The error of an operation started on a session that is gone.
sub _gone_error {
    my ($self, $source, $lost_message) = @_;
    return _err(9, 'FAILED_PRECONDITION', "$source: session closed", $source) if $self->{closed};
    return _err(5, 'NOT_FOUND', $lost_message // "$source: session lost", $source,
                session_error => $self->{lost}) if $self->{lost};
    return undef;
}

sub close {
    my ($self, $cb) = @_;
    Carp::croak('EV::Etcd::Session::close: callback must be a code reference')
        if defined $cb && !_is_code($cb);
    $cb ||= sub { };
    my $first = !$self->{closed};
    $self->{closed} = 1;
    if ($first) {
        if (my $ka = delete $self->{ka}) { $ka->stop }
        $self->{listeners} = [];
        $self->_tell_deps(_err(9, 'FAILED_PRECONDITION', 'session: closed', 'session'), 'closed');
    }
    if ($self->{lost} || $self->{revoked}) { _soon($cb, $self, undef); return }
    $self->{client}->lease_revoke($self->{lease}, sub {
        my ($r, $e) = @_;
        # a lease that expired meanwhile is gone all the same
        $e = undef if $e && ($e->{status} // '') eq 'NOT_FOUND';
        return $cb->(undef, $e) if $e;
        $self->{revoked} = 1;
        $cb->($self, undef);
    });
    return;
}

sub mutex {
    my $self = shift;
    require EV::Etcd::Mutex;
    return EV::Etcd::Mutex->_new($self, @_);
}

sub election {
    my $self = shift;
    require EV::Etcd::Election;
    return EV::Etcd::Election->_new($self, @_);
}

sub close_f { _future($_[0], 'close') }

# $obj->$method(@args) with a future in place of the callback (EV::Etcd::Future
# style: done with the result, or fail with (message, 'etcd', $error)).
sub _future {
    my ($obj, $method, @args) = @_;
    require EV::Etcd::Future;
    my $f = EV::Etcd::Future::EV->new;
    my $h = $obj->$method(@args, EV::Etcd::Future::_settle($f));
    $f->on_cancel(sub { $h->cancel }) if Scalar::Util::blessed($h) && $h->can('cancel');
    return $f;
}

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT';
    local ($@, $!, $?);
    if (my $ka = delete $self->{ka}) { eval { $ka->stop } }
}

sub CLONE_SKIP { 1 }

# ---------------------------------------------------------------------------
# The base of EV::Etcd::Mutex and EV::Etcd::Election: their construction
# (the checks of the name and options, the fields, the registration with
# the session) and the session, name and key accessors.

package EV::Etcd::Session::Member;

use strict;
use warnings;

our @CARP_NOT = qw(EV::Etcd::Session);

# $class->_member($where, $session, $name, \@rest, %own): $where names the
# session method in croaks, @rest holds its optional options hash, %own
# the class's own fields.
sub _member {
    my ($class, $where, $session, $name, $rest, %own) = @_;
    Carp::croak("$where: name must be a non-empty string")
        unless EV::Etcd::Session::_string_ok($name) && length "$name";
    my $o = EV::Etcd::Session::_opts($where, $rest, qw(on_lost));
    Carp::croak("$where: on_lost must be a code reference")
        if defined $o->{on_lost} && !EV::Etcd::Session::_is_code($o->{on_lost});
    my $pfx = "$name/";
    my $self = bless {
        session => $session,
        name    => "$name",
        prefix  => $pfx,
        key     => $pfx . sprintf('%x', $session->lease),
        rev     => undef,
        op      => undef,
        on_lost => $o->{on_lost},
        %own,
    }, $class;
    $session->_add_dep($self);
    return $self;
}

sub session { $_[0]{session} }
sub name    { $_[0]{name} }
sub key     { $_[0]{key} }

# ---------------------------------------------------------------------------
# One acquisition (Mutex lock / try_lock, Election campaign): Go's
# tryAcquire + waitDeletes, then a re-read of the own key before success.

package EV::Etcd::Session::Acquire;

use strict;
use warnings;

use Scalar::Util ();

# %a: owner, session, key, prefix, value, source, try, timeout, cb,
#     lost_message (error message when the key vanished while waiting)
sub _new {
    my ($class, %a) = @_;
    return bless { %a, inflight => 0, done => 0 }, $class;
}

sub _start {
    my ($self) = @_;
    if (my $e = $self->{session}->_gone_error($self->{source})) {
        $self->{abort} = $e;
        EV::Etcd::Session::_soon(sub { $self->_finish(undef, $e) });
        return $self;
    }
    if (defined $self->{timeout}) {
        my $weak = $self;
        Scalar::Util::weaken($weak);
        my $src = $self->{source};
        my $what = $src eq 'mutex' ? 'lock not acquired' : 'not elected';
        $self->{timer} = EV::timer($self->{timeout}, 0, sub {
            $weak->_abort(EV::Etcd::Session::_err(4, 'DEADLINE_EXCEEDED',
                "$src: $what within $weak->{timeout} s", $src)) if $weak;
        });
    }
    $self->_acquire;
    return $self;
}

sub cancel {
    my ($self) = @_;
    my $src = $self->{source};
    $self->_abort(EV::Etcd::Session::_err(1, 'CANCELLED', "$src: cancelled", $src));
    return;
}

sub is_done { $_[0]{done} ? 1 : 0 }

# A request whose answer continues with $self->$next($resp, $err), unless
# the acquisition was aborted meanwhile (then the own key is removed).
sub _req {
    my ($self, $method, @args) = @_;
    my $next = pop @args;
    $self->{inflight}++;
    $self->{session}{client}->$method(@args, sub {
        my ($r, $e) = @_;
        $self->{inflight}--;
        return if $self->{done};
        return $self->_cleanup if $self->{abort};
        $self->$next($r, $e);
    });
}

sub _acquire {
    my ($self) = @_;
    my ($key, $pfx) = @$self{qw(key prefix)};
    my $owner = { request_range => { key => $pfx, prefix => 1, sort_order => 'ascend',
                                     sort_target => 'create', limit => 1 } };
    $self->_req(txn =>
        [ { key => $key, target => 'create', result => '=', create_revision => 0 } ],
        [ { request_put => { key => $key, value => $self->{value},
                             lease => $self->{session}{lease} } }, $owner ],
        [ { request_range => { key => $key } }, $owner ],
        '_acquired');
}

sub _acquired {
    my ($self, $r, $e) = @_;
    if ($e) {
        # The server refused the lease: the session is lost (the keepalive
        # would say so at its next renewal). That ends this acquisition too.
        if (($e->{status} // '') eq 'NOT_FOUND' && ($e->{message} // '') =~ /lease not found/) {
            my $lease = $self->{session}{lease};
            $self->{gone} = 1;
            $self->{session}->_lost(EV::Etcd::Session::_err(5, 'NOT_FOUND',
                "lease $lease expired or was revoked", 'keepalive'));
            return $self->_abort($e);
        }
        return $self->_abort($e);    # outcome unknown: the key is removed
    }
    my $lease = $self->{session}{lease};
    my $mine;
    if ($r->{succeeded}) {
        $self->{rev} = $r->{header}{revision};
    }
    else {
        my $kv = $r->{responses}[0]{response_range}{kvs}[0];
        return $self->_abort($self->_vanished) unless $kv && $kv->{lease} == $lease;
        $self->{rev} = $kv->{create_revision};
        $self->{stale_value} = 1 if $kv->{value} ne $self->{value};
    }
    my $first = $r->{responses}[1]{response_range}{kvs}[0];
    my $owner = !$first || $first->{create_revision} == $self->{rev};
    if ($self->{stale_value}) {
        # our key was there already with another value (Go's Campaign
        # proclaims the new one)
        return $self->_req(txn =>
            [ { key => $self->{key}, target => 'create', result => '=', create_revision => $self->{rev} } ],
            [ { request_put => { key => $self->{key}, value => $self->{value}, lease => $lease } } ], [],
            sub {
                my ($self, $r2, $e2) = @_;
                return $self->_abort($e2) if $e2;
                return $self->_abort($self->_vanished) unless $r2->{succeeded};
                delete $self->{stale_value};
                $owner ? $self->_success : $self->_wait_deletes;
            });
    }
    return $self->_success if $owner;
    if ($self->{try}) {
        my $src = $self->{source};
        return $self->_abort(EV::Etcd::Session::_err(9, 'FAILED_PRECONDITION',
            "$src: locked by another session", $src, locked => 1));
    }
    $self->_wait_deletes;
}

# Go's waitDeletes: until no key of the prefix older than ours is left,
# watch the newest of the older ones until it is deleted.
sub _wait_deletes {
    my ($self) = @_;
    $self->_req(get => $self->{prefix},
        { prefix => 1, max_create_revision => $self->{rev} - 1,
          sort_order => 'descend', sort_target => 'create', limit => 1 },
        '_waited');
}

sub _waited {
    my ($self, $r, $e) = @_;
    return $self->_abort($e) if $e;
    my $kv = $r->{kvs}[0] or return $self->_verify;
    # Strong reference: the acquisition lives while it waits; _stop_watch
    # (on every way out) releases the closure.
    $self->{watch} = $self->{session}{client}->watch($kv->{key},
        { start_revision => $r->{header}{revision} + 1 }, sub {
        my ($wr, $we) = @_;
        return if $self->{done} || $self->{abort} || !$self->{watch};
        if ($we) {
            $self->_stop_watch;
            # compacted past our start: read the prefix again
            return $self->_wait_deletes if defined $we->{compact_revision};
            return $self->_abort($we);
        }
        for my $ev (@{ $wr->{events} }) {
            next unless $ev->{type} eq 'DELETE';
            $self->_stop_watch;
            return $self->_wait_deletes;
        }
    });
}

# Before reporting success after a wait, the own key must still be there,
# with our lease and creation revision: a key that expired with the session
# while we waited must not make us the holder (or leader).
sub _verify {
    my ($self) = @_;
    $self->_req(get => $self->{key}, '_verified');
}

sub _verified {
    my ($self, $r, $e) = @_;
    return $self->_abort($e) if $e;
    my $kv = $r->{kvs}[0];
    unless ($kv && $kv->{create_revision} == $self->{rev}
            && $kv->{lease} == $self->{session}{lease}) {
        $self->{gone} = 1 unless $kv && $kv->{create_revision} == $self->{rev};
        return $self->_abort($self->_vanished);
    }
    $self->_success;
}

sub _vanished {
    my ($self) = @_;
    my $src = $self->{source};
    return EV::Etcd::Session::_err(5, 'NOT_FOUND', $self->{lost_message}, $src);
}

sub _success {
    my ($self) = @_;
    $self->{succeeded} = 1;
    $self->_finish($self->{owner}, undef);
}

sub _stop_watch {
    my ($self) = @_;
    my $w = delete $self->{watch} or return;
    $w->cancel(sub { });
}

# Ends the acquisition with $err: stops waiting, and once no request is
# outstanding removes the own key and calls back.
sub _abort {
    my ($self, $err) = @_;
    return if $self->{done} || $self->{abort};
    $self->{abort} = $err;
    delete $self->{timer};
    $self->_stop_watch;
    $self->_cleanup unless $self->{inflight};
}

sub _cleanup {
    my ($self) = @_;
    return if $self->{cleaning}++;
    my $err = $self->{abort};
    my $fin = sub { $self->_finish(undef, $err) };
    return $fin->() if $self->{gone};
    my $client = $self->{session}{client};
    if (defined $self->{rev}) {
        $client->txn(
            [ { key => $self->{key}, target => 'create', result => '=', create_revision => $self->{rev} } ],
            [ { request_delete_range => { key => $self->{key} } } ], [], $fin);
    }
    else {
        $client->delete($self->{key}, $fin);
    }
}

sub _finish {
    my ($self, $res, $err) = @_;
    return if $self->{done}++;
    delete $self->{timer};
    $self->_stop_watch;
    my $owner = delete $self->{owner};
    my $cb    = delete $self->{cb};
    $owner->_acquire_done($self, $res ? $self->{rev} : undef) if $owner;
    $cb->($res, $err);
}

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Session - a lease kept alive for mutexes and elections

=head1 SYNOPSIS

    use EV;
    use EV::Etcd;

    my $etcd = EV::Etcd->new(endpoints => ['127.0.0.1:2379']);

    $etcd->session({ ttl => 10, on_lost => sub {
        my ($err) = @_;
        warn "session lost: $err->{message}\n";
    } }, sub {
        my ($session, $err) = @_;
        die "no session: $err->{message}\n" if $err;

        my $m = $session->mutex('/locks/report');
        $m->lock({ timeout => 5 }, sub {
            my ($m, $err) = @_;
            die "no lock: $err->{message}\n" if $err;
            # fenced write: applied only while the lock is still ours
            $etcd->txn([ $m->is_owner ], [ { put => { key => '/report', value => 'x' } } ], [],
                sub {
                    my ($r, $err) = @_;
                    warn "lost the lock before writing\n" unless $r && $r->{succeeded};
                    $m->unlock(sub { $session->close });
                });
        });
    });
    EV::run;

=head1 DESCRIPTION

A session is a lease that the client keeps alive in the background (see
L<EV::Etcd/lease_keepalive_start>), the ground for the coordination
primitives L<EV::Etcd::Mutex> and L<EV::Etcd::Election>. It follows the
Session of etcd's Go client (package C<client/v3/concurrency>): every key a
mutex or an election of the session writes is attached to its lease, so
all of them disappear together when the session ends - closed on purpose,
or lost because the lease expired, was revoked, or could not be renewed in
time (a process that stops renewing, a cluster out of reach for longer
than the TTL).

A session is made with L<EV::Etcd/session>:

    $etcd->session([\%opts,] sub { my ($session, $err) = @_; ... });

The callback runs once: with the session, or with C<undef> and the error
hash of C<lease_grant> (or C<lease_time_to_live> for an adopted lease).
Options:

=over 4

=item ttl => $seconds

The lease's time to live, a positive integer (default 60). The server may
raise a very small one to its minimum (see L<EV::Etcd/lease_grant>);
C<< $session->ttl >> says what was granted. Ignored with C<lease>.

=item lease => $lease_id

Adopt an existing lease instead of granting one: the session checks that
it exists (C<lease_time_to_live>; an expired or unknown lease fails with
C<NOT_FOUND>, C<session: lease N not found (expired or revoked)>, source
C<session>), takes its granted TTL as C<ttl> and keeps it alive.
C<close> revokes it like a granted one.

=item on_lost => sub { my ($err) = @_; ... }

A first listener, as given to C<on_lost>.

=back

Bad arguments croak at once: C<EV::Etcd::session: callback must be a code
reference>, C<... options must be a hash reference>, C<... unknown option
'NAME'>, C<... ttl must be a positive integer>, C<... lease must be a
positive integer>, C<... on_lost must be a code reference>.

=head1 METHODS

=head2 lease, ttl, client

The lease id, the TTL it was granted with, and the L<EV::Etcd> client.

=head2 is_lost, is_closed

True once the lease was lost, and once C<close> was called.

=head2 on_lost

    $session->on_lost(sub { my ($err) = @_; ... });

Adds a listener, called once, from the loop, when the lease is lost. The
error hash is the keepalive's (source C<keepalive>): C<NOT_FOUND> when the
server no longer knows the lease (it expired or someone revoked it),
C<DEADLINE_EXCEEDED> when no renewal got through before the TTL ran out
(the lease must then be taken as gone: the server expires it on its own).
The loss is also reported, as C<NOT_FOUND> C<lease N expired or was
revoked> (source C<keepalive>), as soon as the server refuses the lease to
a C<lock> or C<campaign> of the session, without waiting for the next
renewal.
Mutexes and elections of the session learn of the loss first (their own
C<on_lost> options run before the session's listeners). A listener added
after the loss is called soon after, from the loop, with the same error. An
exception thrown by a listener goes to C<$EV::DIED>; the others still run.
Closing the session is not a loss: listeners are then dropped without
being called, and one added after C<close> is never called.

=head2 close

    $session->close([sub { my ($session, $err) = @_; ... }]);

Ends the session: stops the keepalive, tells its mutexes and elections
(a held mutex is no longer held, a leader no longer leads, a waiting
C<lock> or C<campaign> fails with C<FAILED_PRECONDITION>, source C<mutex>
or C<election>, C<... session closed>), and revokes the lease, so every
key of the session goes at once. The callback gets the session, or the
error of C<lease_revoke> (the keepalive stays stopped: the lease then
expires after its TTL; calling C<close> again tries the revocation again).
A lease that is already gone (lost, or expired meanwhile) counts as
revoked. No C<on_lost> listener is called.

Dropping the last reference to a session that was not closed stops its
keepalive without revoking the lease: its keys stay until the TTL runs
out. Mutexes and elections keep their session alive, so this happens only
once none of them is referenced either.

=head2 mutex

    my $m = $session->mutex($name, [\%opts]);

An L<EV::Etcd::Mutex> on the session.

=head2 election

    my $e = $session->election($name, [\%opts]);

An L<EV::Etcd::Election> on the session.

=head2 close_f

C<close> returning a future (see L</FUTURES>).

=head1 FUTURES

For code written with L<Future> (L<EV::Etcd::Future>): C<<
$etcd->future->session(\%opts) >> returns a future done with the session;
C<close_f> here, C<lock_f>, C<try_lock_f>, C<unlock_f> on a mutex and
C<campaign_f>, C<proclaim_f>, C<resign_f>, C<leader_f> on an election take
the same arguments as the method without C<_f>, minus the callback, and
return an L<EV::Etcd::Future::EV> future: done with what the callback
would get first, failed with C<($message, 'etcd', $error_hash)>.
Cancelling the future of C<lock_f> or C<campaign_f> cancels the wait (the
own key is deleted).

=head1 THE WAIT HANDLE

C<< $m->lock >> and C<< $e->campaign >> return a handle with

=over 4

=item cancel

Ends the wait: the callback gets, once and from the loop, C<CANCELLED>
(code 1, source C<mutex> or C<election>, C<... cancelled>) after the own
key was deleted. Does nothing once the callback has run or is due (after a
timeout, a failure, a success).

=item is_done

True once the callback has run.

=back

=head1 SEE ALSO

L<EV::Etcd> (section CONCURRENCY), L<EV::Etcd::Mutex>,
L<EV::Etcd::Election>, etcd's Go package C<go.etcd.io/etcd/client/v3/concurrency>.

=cut
