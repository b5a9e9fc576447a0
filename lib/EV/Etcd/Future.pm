package EV::Etcd::Future;

use strict;
use warnings;

use Carp ();
use EV;
use EV::Etcd;
use Future 0.33;
use Scalar::Util ();

our $VERSION = $EV::Etcd::VERSION;

# Methods that answer once (the module's table says which): each becomes a
# method returning a future. The streaming ones (watch, election_observe,
# lease_keepalive_start, snapshot) call their callback many times or take a
# sink, and stay on the client.
my @UNARY = @{ EV::Etcd::_unary_methods() };

sub new {
    my ($class, $client) = @_;
    Carp::croak('EV::Etcd::Future->new: client must be an EV::Etcd object')
        unless Scalar::Util::blessed($client) && $client->isa('EV::Etcd');
    return bless { client => $client }, $class;
}

sub client { $_[0]{client} }

# The callback that settles $f: done with the response, or fail with the
# message, the category 'etcd' and the error hash. A cancelled future
# ignores the late answer.
sub _settle {
    my ($f) = @_;
    return sub {
        my ($resp, $err) = @_;
        return if $f->is_ready;
        if ($err) {
            $f->fail($err->{message} // 'etcd request failed', 'etcd', $err);
        }
        else {
            $f->done($resp);
        }
    };
}

for my $name (@UNARY) {
    next unless EV::Etcd->can($name);
    no strict 'refs';
    *{$name} = sub {
        my $self = shift;
        my $f = EV::Etcd::Future::EV->new;
        my $handle = $self->{client}->$name(@_, _settle($f));
        # lock and election_campaign: cancelling the future cancels the wait
        $f->on_cancel(sub { $handle->cancel })
            if Scalar::Util::blessed($handle) && $handle->isa('EV::Etcd::Request');
        return $f;
    };
}

# EV::Etcd::Session: a future done with the session.
sub session {
    my $self = shift;
    my $f = EV::Etcd::Future::EV->new;
    $self->{client}->session(@_, _settle($f));
    return $f;
}

# Software transactional memory (EV::Etcd::STM) with an apply function that
# returns a future: its completion commits the attempt.
sub stm {
    my $self = shift;
    Carp::croak('Usage: $etcd->future->stm($apply, [\%opts])') unless @_ == 1 || @_ == 2;
    my ($apply, $opts) = @_;
    Carp::croak('EV::Etcd::Future::stm: apply must be a code reference')
        unless ref $apply && Scalar::Util::reftype($apply) eq 'CODE';
    my $f = EV::Etcd::Future::EV->new;
    require EV::Etcd::STM;
    EV::Etcd::STM::_start('EV::Etcd::Future::stm', $self->{client},
        sub { $_[0]->_apply_future($apply) }, $opts, _settle($f));
    return $f;
}

sub CLONE_SKIP { 1 }

# Futures that can wait for themselves: ->get (and a top-level await) runs
# the EV loop until the future is ready.
package EV::Etcd::Future::EV;

use strict;
use warnings;

our @ISA = ('Future');

sub await {
    my $self = shift;
    until ($self->is_ready) {
        next if EV::run(EV::RUN_ONCE());
        last if $self->is_ready;
        Carp::croak("$self cannot complete: the EV loop has nothing left to wait for");
    }
    return $self;
}

1;

__END__

=head1 NAME

EV::Etcd::Future - EV::Etcd requests that return Future objects

=head1 SYNOPSIS

    use EV::Etcd;
    use EV::Etcd::Future;

    my $etcd = EV::Etcd::Future->new(EV::Etcd->new(endpoints => [...]));
    # or: my $etcd = EV::Etcd->new(...)->future;

    my $resp = $etcd->put('/app/k', 'v')->get;     # runs the loop until done

    $etcd->get('/app/k')->then(sub {
        my ($resp) = @_;
        print $resp->{kvs}[0]{value}, "\n";
        Future->done;
    })->else(sub {
        my ($message, $category, $err) = @_;    # $category is 'etcd'
        warn "get failed: $message ($err->{status})\n";
        Future->done;
    })->retain;
    EV::run;

    # with Future::AsyncAwait
    use Future::AsyncAwait;

    async sub bump {
        my ($etcd, $key) = @_;
        my $r   = await $etcd->get($key);
        my $old = $r->{kvs}[0];
        my $t   = await $etcd->txn(
            [ { key => $key, mod_revision => $old ? $old->{mod_revision} : 0 } ],
            [ { put => { key => $key, value => ($old ? $old->{value} : 0) + 1 } } ], []);
        return $t->{succeeded};
    }
    my $ok = bump($etcd, '/app/counter')->get;

=head1 DESCRIPTION

An adapter around an L<EV::Etcd> client for code written with L<Future>
(and L<Future::AsyncAwait>). Every request method of the client whose
callback runs once is available under the same name with the same
arguments, minus the callback; it returns a future instead:

=over 4

=item *

success: the future is done with the response hash (C<< ->get >> returns
it);

=item *

failure: the future fails with C<($message, 'etcd', $error)>, where
C<$error> is the client's error hash (L<EV::Etcd/ERRORS>), so
C<< $f->failure >> is the message and C<< ($f->failure)[2] >> the hash;
in an async sub, C<await> dies with the message and
C<Future::Exception>'s C<details> give C<$error>.

=back

Bad arguments croak at once, as with the client. The requests run on the
client's loop, the L<EV> default loop: C<< $f->get >> (and C<await> outside
an async sub) runs C<EV::run> until the future is ready, and croaks if the
loop has nothing left to wait for. Cancelling a future does not stop its
request; the late answer is ignored.

Loading this module loads L<Future>; L<EV::Etcd> itself never does, so
programs that do not use futures need not install it.

=head1 METHODS

=head2 new

    my $etcd = EV::Etcd::Future->new($client);

Wraps an C<EV::Etcd> client (croaks with
C<client must be an EV::Etcd object> otherwise). The adapter keeps the
client alive. C<< $client->future >> does the same.

=head2 client

The wrapped client, for the methods whose callback runs more than once:
C<watch> and, where the client has them, C<election_observe> and
C<lease_keepalive_start>.

=head2 Request methods

The client's arguments without the callback, e.g.

    $etcd->get($key, { prefix => 1 });
    $etcd->txn(\@compare, \@success, \@failure);
    $etcd->lock($name, $lease_id);

=over 4

=item get, put, delete, txn, compact

=item lease_grant, lease_revoke, lease_time_to_live, lease_leases, lease_keepalive

=item lock, unlock

=item election_campaign, election_proclaim, election_leader, election_resign

=item member_list, member_add, member_remove, member_update, member_promote

=item status, alarm, defragment, hash, hash_kv, move_leader, downgrade, auth_status

=item authenticate, auth_enable, auth_disable

=item user_add, user_delete, user_change_password, user_get, user_list, user_grant_role, user_revoke_role

=item role_add, role_delete, role_get, role_list, role_grant_permission, role_revoke_permission

=item session

C<< $etcd->session(\%opts) >>: done with the L<EV::Etcd::Session>; its
mutexes and elections have future forms of their own (C<lock_f>,
C<campaign_f>, ...: L<EV::Etcd::Session/FUTURES>).

=back

=head2 stm

    my $f = $etcd->stm(sub {
        my ($stm) = @_;
        return $stm->get_f('/acct/a')->then(sub {
            my ($from) = @_;
            $stm->put('/acct/a', $from - 10);
            Future->done($from - 10);
        });
    }, { isolation => 'serializable' });
    my $res = $f->get;    # { succeeded => 1, attempts => N, value => ..., ... }

    # or, with Future::AsyncAwait
    $etcd->stm(async sub {
        my ($stm) = @_;
        my $from = await $stm->get_f('/acct/a');
        $stm->put('/acct/a', $from - 10);
        return $from - 10;
    });

The client's L<EV::Etcd/stm> with an apply function that returns a
future (an C<async sub> does): when that future is done the attempt
commits (unless the function already called C<commit> or C<abort>), and
the result hash gets its first value as C<value>; when it fails, the run
fails (with the read's error hash when a C<get_f> read failed, else with
C<stm: apply function failed: MESSAGE>, code 2). On a conflict the
function runs again. Reads are C<< $stm->get_f($key) >>, writes C<put>,
C<del>; options and errors as in L<EV::Etcd::STM>. The returned future is
done with the result hash, or fails with C<($message, 'etcd', $error)>.
An apply function that returns something other than a future fails the
run (C<stm: apply function died: ...>).

=head1 SEE ALSO

L<EV::Etcd>, L<Future>, L<Future::AsyncAwait>

=cut
