package EV::Etcd::Election;

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

sub _not_leader { _err(9, 'FAILED_PRECONDITION', 'election: not leader', 'election') }

# $session->election($name, [\%opts])
sub _new {
    my ($class, $session, $name, @rest) = @_;
    return $class->_member('EV::Etcd::Session::election', $session, $name, \@rest, leader => 0);
}

sub revision  { $_[0]{leader} ? $_[0]{rev} : undef }
sub is_leader { $_[0]{leader} ? 1 : 0 }

sub _value_ok {
    my ($where, $v) = @_;
    Carp::croak("$where: value must be a string")
        unless EV::Etcd::Session::_string_ok($v);
}

sub campaign {
    my $self = shift;
    my $where = 'EV::Etcd::Election::campaign';
    my $cb = pop;
    Carp::croak("$where: callback must be a code reference") unless _is_code($cb);
    Carp::croak("$where: value missing") unless @_;
    my $value = shift;
    _value_ok($where, $value);
    my $o = _opts($where, \@_, qw(timeout));
    Carp::croak("$where: timeout must be a positive number")
        if exists $o->{timeout} && !EV::Etcd::Session::_pos_num($o->{timeout});
    Carp::croak("$where: a campaign of this election is already in progress") if $self->{op};
    my $op = EV::Etcd::Session::Acquire->_new(
        owner        => $self,
        session      => $self->{session},
        key          => $self->{key},
        prefix       => $self->{prefix},
        value        => "$value",
        source       => 'election',
        try          => 0,
        timeout      => $o->{timeout},
        cb           => $cb,
        lost_message => 'election: session lost during campaign',
    );
    $self->{op} = $op;
    return $op->_start;
}

sub _acquire_done {
    my ($self, $op, $rev) = @_;
    $self->{op} = undef if $self->{op} && $self->{op} == $op;
    if (defined $rev) {
        $self->{rev}    = $rev;
        $self->{leader} = 1;
    }
}

sub proclaim {
    my ($self, $value, $cb, @extra) = @_;
    my $where = 'EV::Etcd::Election::proclaim';
    Carp::croak("$where: callback must be a code reference") unless _is_code($cb) && !@extra;
    _value_ok($where, $value);
    return _soon($cb, undef, _not_leader()) unless $self->{leader};
    my $rev = $self->{rev};
    $self->{session}{client}->txn(
        [ { key => $self->{key}, target => 'create', result => '=', create_revision => $rev } ],
        [ { request_put => { key => $self->{key}, value => "$value",
                             lease => $self->{session}{lease} } } ], [],
        sub {
            my ($r, $e) = @_;
            return $cb->(undef, $e) if $e;
            unless ($r->{succeeded}) {
                $self->{leader} = 0 if ($self->{rev} // -1) == $rev;
                return $cb->(undef, _not_leader());
            }
            $cb->($self, undef);
        });
    return;
}

sub resign {
    my ($self, $cb, @extra) = @_;
    my $where = 'EV::Etcd::Election::resign';
    Carp::croak("$where: callback must be a code reference")
        if @extra || (defined $cb && !_is_code($cb));
    Carp::croak("$where: a campaign of this election is in progress (cancel it first)")
        if $self->{op};
    $cb ||= sub { };
    my $rev = $self->{rev};
    $self->{leader} = 0;
    $self->{rev}    = undef;
    return _soon($cb, $self, undef) unless defined $rev;
    $self->{session}{client}->txn(
        [ { key => $self->{key}, target => 'create', result => '=', create_revision => $rev } ],
        [ { request_delete_range => { key => $self->{key} } } ], [],
        sub {
            my (undef, $e) = @_;
            $e ? $cb->(undef, $e) : $cb->($self, undef);
        });
    return;
}

sub leader {
    my ($self, $cb, @extra) = @_;
    Carp::croak('EV::Etcd::Election::leader: callback must be a code reference')
        unless _is_code($cb) && !@extra;
    $self->{session}{client}->get($self->{prefix},
        { prefix => 1, sort_order => 'ascend', sort_target => 'create', limit => 1 }, sub {
        my ($r, $e) = @_;
        return $cb->(undef, $e) if $e;
        my $kv = $r->{kvs}[0]
            or return $cb->(undef, _err(5, 'NOT_FOUND', 'election: no leader', 'election'));
        $cb->($kv, undef);
    });
    return;
}

sub observe {
    my ($self, $cb, @extra) = @_;
    Carp::croak('EV::Etcd::Election::observe: callback must be a code reference')
        unless _is_code($cb) && !@extra;
    return EV::Etcd::Election::Observer->_new($self->{session}{client}, $self->{prefix}, $cb);
}

sub _session_ended {
    my ($self, $err, $kind) = @_;
    if (my $op = $self->{op}) {
        $op->_abort($kind eq 'lost'
            ? _err(5, 'NOT_FOUND', 'election: session lost during campaign', 'election',
                   session_error => $err)
            : _err(9, 'FAILED_PRECONDITION', 'election: session closed', 'election'));
    }
    my $was = $self->{leader};
    $self->{leader} = 0;
    if ($was && $kind eq 'lost' && $self->{on_lost}) {
        EV::Etcd::Session::_call_safely($self->{on_lost}, $err);
    }
}

sub campaign_f { my $s = shift; EV::Etcd::Session::_future($s, 'campaign', @_) }
sub proclaim_f { my $s = shift; EV::Etcd::Session::_future($s, 'proclaim', @_) }
sub resign_f   { my $s = shift; EV::Etcd::Session::_future($s, 'resign', @_) }
sub leader_f   { my $s = shift; EV::Etcd::Session::_future($s, 'leader', @_) }

sub DESTROY {
    my ($self) = @_;
    return if ${^GLOBAL_PHASE} eq 'DESTRUCT';
    $self->{session}->_del_dep($self) if $self->{session};
}

sub CLONE_SKIP { 1 }

# ---------------------------------------------------------------------------
# observe: the candidates (keys of the prefix) are read once, then kept up
# to date from a watch of the prefix; the leader is the oldest of them.

package EV::Etcd::Election::Observer;

use strict;
use warnings;

sub _new {
    my ($class, $client, $prefix, $cb) = @_;
    my $self = bless { client => $client, prefix => $prefix, cb => $cb,
                       cands => {}, last => '', done => 0 }, $class;
    $self->_sync;
    return $self;
}

sub _sync {
    my ($self) = @_;
    $self->{client}->get($self->{prefix}, { prefix => 1 }, sub {
        my ($r, $e) = @_;
        return if $self->{done};
        return $self->_end($e) if $e;
        $self->{cands} = { map { $_->{key} => $_ } @{ $r->{kvs} } };
        $self->_report;
        $self->{watch} = $self->{client}->watch($self->{prefix},
            { prefix => 1, start_revision => $r->{header}{revision} + 1 }, sub {
            my ($wr, $we) = @_;
            return if $self->{done} || !$self->{watch};
            if ($we) {
                $self->_stop_watch;
                return $self->_sync if defined $we->{compact_revision};
                return $self->_end($we);
            }
            # one report per revision: a message may carry several
            my @evs = @{ $wr->{events} };
            while (my $ev = shift @evs) {
                if ($ev->{type} eq 'DELETE') { delete $self->{cands}{ $ev->{kv}{key} } }
                else                         { $self->{cands}{ $ev->{kv}{key} } = $ev->{kv} }
                next if @evs && $evs[0]{kv}{mod_revision} == $ev->{kv}{mod_revision};
                $self->_report;
                return if $self->{done};
            }
        });
    });
}

sub _report {
    my ($self) = @_;
    my ($lead) = sort { $a->{create_revision} <=> $b->{create_revision} } values %{ $self->{cands} };
    return unless $lead;
    my $id = "$lead->{key}\0$lead->{create_revision}\0$lead->{mod_revision}";
    return if $id eq $self->{last};
    $self->{last} = $id;
    $self->{cb}->($lead, undef);
}

sub _stop_watch {
    my ($self) = @_;
    my $w = delete $self->{watch} or return;
    $w->cancel(sub { });
}

sub _end {
    my ($self, $err) = @_;
    return if $self->{done}++;
    $self->_stop_watch;
    my $cb = delete $self->{cb};
    $cb->(undef, { %$err, source => 'election' });
}

sub cancel {
    my ($self, $cb) = @_;
    Carp::croak('EV::Etcd::Election::Observer::cancel: callback must be a code reference')
        if defined $cb && !EV::Etcd::Session::_is_code($cb);
    $self->{done} = 1;
    delete $self->{cb};
    $self->_stop_watch;
    EV::Etcd::Session::_soon($cb, {}, undef) if $cb;
    return;
}

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Election - leader election on an EV::Etcd session

=head1 SYNOPSIS

    $etcd->session({ ttl => 10 }, sub {
        my ($session, $err) = @_;
        die $err->{message} if $err;
        my $e = $session->election('/elect/scheduler', {
            on_lost => sub { warn "no longer leader: $_[0]{message}\n" },
        });
        my $obs = $e->observe(sub {
            my ($kv, $err) = @_;
            print "leader is now $kv->{value}\n" if $kv;
        });
        $e->campaign('host-a', { timeout => 60 }, sub {
            my ($e, $err) = @_;
            die "not elected: $err->{message}\n" if $err;
            $e->proclaim('host-a (busy)', sub { ... });
            # ... later
            $e->resign(sub { $obs->cancel });
        });
    });

=head1 DESCRIPTION

The election of etcd's Go client (C<client/v3/concurrency> Election), on
the event loop. Each candidate writes its own key, C<NAME/> followed by
the session's lease id in hex, holding its value and attached to the
session's lease; the leader is the candidate whose key is the oldest
(smallest creation revision). Candidates are elected in the order they
joined, and a leader whose session ends gives way to the next.

An election is made with C<< $session->election($name, [\%opts]) >> (the
keys are under C<"$name/">); option C<on_lost> (code reference) runs once,
with the session's loss error, when the session is lost while this object
leads. Croaks as for L<EV::Etcd::Mutex>.

Unlike the Go client, a campaign never reports leadership that its
session no longer backs: after waiting for the older candidates, the
candidate reads its own key again and succeeds only if it still exists
with its lease and creation revision (a lease that expired while waiting
would otherwise make a "leader" that owns nothing).

=head1 METHODS

Callbacks run once, from the loop, with C<($election, undef)> or
C<(undef, $error)> (source C<election> for the errors listed here).

=head2 campaign

    my $wait = $e->campaign($value, [{ timeout => $seconds },] sub { my ($e, $err) = @_; ... });

Joins the election with C<$value> and waits until elected, or at most
C<timeout> seconds. Returns a wait handle (L<EV::Etcd::Session/THE WAIT
HANDLE>). Campaigning again with the own key present keeps its place and
proclaims the new value. Failures (the own key is deleted before the
callback, so the candidacy is withdrawn): C<DEADLINE_EXCEEDED> (code 4,
C<election: not elected within N s>), C<CANCELLED> (code 1, C<election:
cancelled>), C<NOT_FOUND> (code 5, C<election: session lost during
campaign>: the session was lost, or the own key vanished, while waiting),
C<NOT_FOUND> C<election: session lost> (started on a session already lost),
C<FAILED_PRECONDITION> (code 9, C<election: session closed>), or the
client's error of a failed request. Croaks: C<value missing>, C<value must
be a string>, C<timeout must be a positive number>, a non-code callback, a
campaign of the same object already in progress.

=head2 proclaim

    $e->proclaim($value, sub { my ($e, $err) = @_; ... });

Replaces the leader's value, in a transaction guarded by the own key's
creation revision. Not leading (or no longer: the key is gone) fails with
C<FAILED_PRECONDITION> (code 9), C<election: not leader>, and then
C<is_leader> is false.

=head2 resign

    $e->resign([sub { my ($e, $err) = @_; ... }]);

Gives up leadership (or the candidacy): deletes the own key if it still
has the creation revision of the campaign. C<is_leader> is false at once;
without a campaign behind it nothing is sent. Croaks while a campaign of
the object is in progress (cancel it).

=head2 leader

    $e->leader(sub { my ($kv, $err) = @_; ... });

The current leader's key-value hash (C<key>, C<value>, C<create_revision>,
C<mod_revision>, C<version>, C<lease>), or C<NOT_FOUND> (code 5),
C<election: no leader>.

=head2 observe

    my $obs = $e->observe(sub { my ($kv, $err) = @_; ... });
    $obs->cancel([sub { ... }]);

Calls back with the leader's key-value hash now (if there is a leader) and
on every change of leader or of its value; an election left without a
leader calls nothing until the next one. Built on a watch of the prefix,
so it follows restarts and failover; a compaction past its position makes
it read the candidates again. Any other watch error ends it with one C<<
(undef, $err) >> (source C<election>). The handle (an
C<EV::Etcd::Election::Observer>) has one method:

=over 4

=item cancel([$cb])

Ends the observation at once (nothing is delivered after it returns) and
calls the optional callback with C<({}, undef)> from the loop. A
non-code callback croaks.

=back

Dropping the handle does not end the observation.

=head2 is_leader, key, revision, name, session

Whether this object leads (as far as this process knows: fence writes
with a compare on C<key> and C<revision>, as L<EV::Etcd::Mutex/is_owner>
does), the own key, its creation revision while leading, the name, the
session.

=head2 campaign_f, proclaim_f, resign_f, leader_f

Future forms, see L<EV::Etcd::Session/FUTURES>.

=head1 FAILURE SEMANTICS

=over 4

=item Session lost while leading

C<on_lost> runs once with the session's error and C<is_leader> becomes
false; the key is gone with the lease and the next candidate is elected.

=item Session lost while campaigning

The campaign fails with C<NOT_FOUND> C<election: session lost during
campaign>, whether the keepalive reported the loss first or the re-read
found the key gone: it never reports leadership.

=item Server restarts, failover

As for L<EV::Etcd::Mutex>: a waiting campaign and an observation survive
them; a failed request ends the campaign with its error.

=back

=head1 SEE ALSO

L<EV::Etcd::Session>, L<EV::Etcd::Mutex>, L<EV::Etcd> (CONCURRENCY).

=cut
