package EV::Etcd::Mutex;

use strict;
use warnings;

use Carp ();
use Scalar::Util ();
use EV::Etcd::Session ();

our $VERSION = $EV::Etcd::VERSION;
our @CARP_NOT = qw(EV::Etcd::Session);
our @ISA = qw(EV::Etcd::Session::Member);

*_is_code = \&EV::Etcd::Session::_is_code;
*_opts    = \&EV::Etcd::Session::_opts;
*_soon    = \&EV::Etcd::Session::_soon;
*_err     = \&EV::Etcd::Session::_err;

# $session->mutex($name, [\%opts])
sub _new {
    my ($class, $session, $name, @rest) = @_;
    return $class->_member('EV::Etcd::Session::mutex', $session, $name, \@rest, held => 0);
}

sub revision { $_[0]{held} ? $_[0]{rev} : undef }
sub is_held  { $_[0]{held} ? 1 : 0 }

sub _begin {
    my ($self, $where, $cb, $timeout, $try) = @_;
    Carp::croak("$where: a lock or try_lock of this mutex is already in progress")
        if $self->{op};
    my $op = EV::Etcd::Session::Acquire->_new(
        owner        => $self,
        session      => $self->{session},
        key          => $self->{key},
        prefix       => $self->{prefix},
        value        => '',
        source       => 'mutex',
        try          => $try,
        timeout      => $timeout,
        cb           => $cb,
        lost_message => 'mutex: session expired while waiting',
    );
    $self->{op} = $op;
    return $op->_start;
}

sub lock {
    my $self = shift;
    my $cb = pop;
    Carp::croak('EV::Etcd::Mutex::lock: callback must be a code reference') unless _is_code($cb);
    my $o = _opts('EV::Etcd::Mutex::lock', \@_, qw(timeout));
    Carp::croak('EV::Etcd::Mutex::lock: timeout must be a positive number')
        if exists $o->{timeout} && !EV::Etcd::Session::_pos_num($o->{timeout});
    return $self->_begin('EV::Etcd::Mutex::lock', $cb, $o->{timeout}, 0);
}

sub try_lock {
    my ($self, $cb, @extra) = @_;
    Carp::croak('EV::Etcd::Mutex::try_lock: callback must be a code reference')
        unless _is_code($cb) && !@extra;
    $self->_begin('EV::Etcd::Mutex::try_lock', $cb, undef, 1);
    return;
}

# Called by the acquisition when it ends: $rev is defined on success.
sub _acquire_done {
    my ($self, $op, $rev) = @_;
    $self->{op} = undef if $self->{op} && $self->{op} == $op;
    if (defined $rev) {
        $self->{rev}  = $rev;
        $self->{held} = 1;
    }
}

sub unlock {
    my ($self, $cb, @extra) = @_;
    Carp::croak('EV::Etcd::Mutex::unlock: callback must be a code reference')
        if @extra || (defined $cb && !_is_code($cb));
    Carp::croak('EV::Etcd::Mutex::unlock: a lock of this mutex is in progress (cancel it first)')
        if $self->{op};
    $cb ||= sub { };
    $self->{held} = 0;
    $self->{session}{client}->delete($self->{key}, sub {
        my (undef, $e) = @_;
        $e ? $cb->(undef, $e) : $cb->($self, undef);
    });
    return;
}

sub is_owner {
    my ($self) = @_;
    Carp::croak('EV::Etcd::Mutex::is_owner: the mutex is not held') unless $self->{held};
    return { key => $self->{key}, target => 'create', result => '=',
             create_revision => $self->{rev} };
}

# The session was lost or closed.
sub _session_ended {
    my ($self, $err, $kind) = @_;
    if (my $op = $self->{op}) {
        $op->_abort($kind eq 'lost'
            ? _err(5, 'NOT_FOUND', 'mutex: session lost while waiting', 'mutex', session_error => $err)
            : _err(9, 'FAILED_PRECONDITION', 'mutex: session closed', 'mutex'));
    }
    my $was = $self->{held};
    $self->{held} = 0;
    if ($was && $kind eq 'lost' && $self->{on_lost}) {
        EV::Etcd::Session::_call_safely($self->{on_lost}, $err);
    }
}

sub lock_f     { my $s = shift; EV::Etcd::Session::_future($s, 'lock', @_) }
sub try_lock_f { my $s = shift; EV::Etcd::Session::_future($s, 'try_lock', @_) }
sub unlock_f   { my $s = shift; EV::Etcd::Session::_future($s, 'unlock', @_) }

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT';
    $self->{session}->_del_dep($self) if $self->{session};
}

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Mutex - a distributed mutex on an EV::Etcd session, with fencing

=head1 SYNOPSIS

    $etcd->session({ ttl => 10 }, sub {
        my ($session, $err) = @_;
        die $err->{message} if $err;
        my $m = $session->mutex('/locks/job', {
            on_lost => sub { warn "lock lost: $_[0]{message}\n" },
        });
        my $wait = $m->lock({ timeout => 30 }, sub {
            my ($m, $err) = @_;
            die "not locked: $err->{status}\n" if $err;
            $etcd->txn([ $m->is_owner ],                       # fencing
                       [ { put => { key => '/job/state', value => 'done' } } ], [],
                       sub { $m->unlock });
        });
        # $wait->cancel;   # give up waiting

        $m->try_lock(sub {
            my ($m, $err) = @_;
            print "busy\n" if $err && $err->{locked};
        });
    });

=head1 DESCRIPTION

The mutex of etcd's Go client (C<client/v3/concurrency> Mutex), on the
event loop. Every contender writes its own key, C<NAME/> followed by the
session's lease id in hex, attached to the session's lease; the holder is
the contender whose key has the smallest creation revision. A contender
waits, with a watch, until every key created before its own is deleted,
so waiters are served in the order they came (no thundering herd: each
watches only its predecessor). Because the keys belong to the session's
lease, a holder that dies or is cut off for longer than the TTL loses the
lock without anybody's help.

Holding a lock does B<not> stop other processes from writing. A holder can
lose the lock at any moment (its lease expires while it is paused, say)
and learn of it only later. Writes that must only happen under the lock
should be I<fenced>: made with C<txn> and the compare of C<is_owner>, which
fails once the holder's key is gone.

A mutex is made with C<< $session->mutex($name, [\%opts]) >>; C<$name> is
any non-empty string (the keys are under C<"$name/">). Option C<on_lost>
(a code reference): called once, with the session's loss error, when the
session is lost while the mutex is held. Croaks: C<EV::Etcd::Session::mutex:
name must be a non-empty string>, C<... options must be a hash reference>,
C<... unknown option 'NAME'>, C<... on_lost must be a code reference>.

One mutex object per name and session: two objects of the same session
and name share one key (a second C<lock> of it succeeds at once, as in Go,
and one's C<unlock> releases both).

=head1 METHODS

Callbacks run once, from the loop, with C<($mutex, undef)> or C<(undef,
$error)>; the error hashes are the client's (L<EV::Etcd/ERRORS>) or those
listed here (source C<mutex>).

=head2 lock

    my $wait = $m->lock([{ timeout => $seconds },] sub { my ($m, $err) = @_; ... });

Acquires the mutex, waiting for as long as it takes, or at most C<timeout>
seconds (a positive number, fractions allowed). One transaction creates the
own key if it does not exist (and reads it otherwise) and reads the holder;
if that is somebody else, the mutex waits for the deletion of every older
key, then reads its own key again: the lock is granted only if the key
still exists with its creation revision and the session's lease.

Returns a wait handle (L<EV::Etcd::Session/THE WAIT HANDLE>) whose
C<cancel> ends the wait. Failures (the own key is deleted before the
callback runs, unless noted; a failed deletion leaves it to the session's
lease):

=over 4

=item timeout

C<DEADLINE_EXCEEDED> (code 4), C<mutex: lock not acquired within N s>.

=item cancel

C<CANCELLED> (code 1), C<mutex: cancelled>.

=item session lost while waiting

C<NOT_FOUND> (code 5), C<mutex: session lost while waiting>, with the
session's error under C<session_error>; the same, C<mutex: session
expired while waiting>, when the re-read finds the own key gone (the
lease ended before its loss was noticed). When the server refuses the
session's lease to the lock's transaction (the lease is gone), the session
is marked lost there and then (its listeners run) and the lock fails the
same way. A lock on a session already lost fails with C<mutex: session
lost>.

=item session closed

C<FAILED_PRECONDITION> (code 9), C<mutex: session closed>.

=item a request failed

The client's error (a member down with no other to go to, the client's
C<timeout> on one request): the outcome of a write may be unknown, so the
own key is deleted. Waiting itself survives member restarts and failover
(the watch resumes).

=back

A C<lock> or C<try_lock> while another of the same object is in progress
croaks (C<EV::Etcd::Mutex::lock: a lock or try_lock of this mutex is
already in progress>); so do a non-code callback, C<timeout must be a
positive number>, C<options must be a hash reference>, C<unknown option
'NAME'>. Locking a mutex that is held succeeds at once.

=head2 try_lock

    $m->try_lock(sub { my ($m, $err) = @_; ... });

One transaction: the lock if it is free, otherwise the own key is deleted
again and the callback gets

    { code => 9, status => 'FAILED_PRECONDITION', source => 'mutex',
      message => 'mutex: locked by another session', retryable => 0,
      locked => 1 }

(the C<locked> key tells it apart from other failures, which are those of
C<lock>). Returns nothing.

=head2 unlock

    $m->unlock([sub { my ($m, $err) = @_; ... }]);

Deletes the own key: the next waiter gets the lock. C<is_held> is false at
once. Unlocking a mutex that is not held deletes the key all the same (a
harmless no-op when there is none). On error the key may remain until the
session ends. Croaks while a C<lock> of the object is in progress.

=head2 is_owner

    $etcd->txn([ $m->is_owner, @more_compares ], \@success, \@failure, $cb);

The compare entry of fencing:

    { key => $m->key, target => 'create', result => '=', create_revision => $m->revision }

true exactly while the own key exists with the creation revision it was
granted with; once the lock was released, lost with the session, or
deleted by anybody, the transaction takes its failure branch
(C<succeeded> 0). Croaks (C<EV::Etcd::Mutex::is_owner: the mutex is not
held>) when the mutex is not held as far as this process knows.

=head2 is_held

True between a successful C<lock> or C<try_lock> and C<unlock>, the loss
or the close of the session. It reflects what this process knows: a
lease can already have expired on the server before the keepalive reports
it; fence writes with C<is_owner>.

=head2 key, revision, name, session

The own key (C<"$name/" . sprintf('%x', $lease)>), the creation revision
of the own key while held (C<undef> otherwise), the name, the session.

=head2 lock_f, try_lock_f, unlock_f

Future forms, see L<EV::Etcd::Session/FUTURES>.

=head1 FAILURE SEMANTICS

=over 4

=item Session lost while holding

C<on_lost> runs once with the session's error (before the session's own
listeners) and C<is_held> becomes false. The key is gone with the lease
(or is about to go, when the loss was that renewals could not get through):
fenced writes fail from then on.

=item Server restarts, failover

Requests fail over like any of the client's; a lock waiting on a watch
keeps waiting across restarts. A request that fails ends C<lock> with the
error (the own key is deleted): retry by calling C<lock> again.

=item Dropping the object

A held mutex stays held (its key stays) until its session ends; a pending
C<lock> keeps running and calls back.

=back

=head1 SEE ALSO

L<EV::Etcd::Session>, L<EV::Etcd::Election>, L<EV::Etcd> (CONCURRENCY).

=cut
