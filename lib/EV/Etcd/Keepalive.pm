package EV::Etcd::Keepalive;

use strict;
use warnings;

use EV::Etcd ();    # holds the version; it requires this file too, either may load first

our $VERSION = $EV::Etcd::VERSION;

# stop is defined by EV::Etcd's shared object. Dropping the handle leaves the
# renewals running, as a watch handle does: only stop, a lost lease or the
# client's destruction ends them.
sub DESTROY { }

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Keepalive - handle of a managed lease keepalive

=head1 SYNOPSIS

    my $ka = $etcd->lease_keepalive_start($lease_id, {
        on_lost => sub { my ($err) = @_; warn "lease lost: $err->{message}\n" },
    }, sub {
        my ($resp, $err) = @_;    # every renewal: { header, id, ttl }
    });

    $ka->stop;                    # no more renewals

=head1 METHODS

=head2 stop

    $ka->stop;

Ends the renewals at once. Neither the renewal callback nor C<on_lost> runs
after C<stop>; nothing is called back for the stop itself. The lease is
not revoked: it expires after its TTL unless renewed some other way (use
C<lease_revoke> to end it at once). Calling C<stop> again, or after the
keepalive was lost, or after the client was destroyed, does nothing.
Called on anything but a keepalive handle it croaks with C<keepalive is not
of type EV::Etcd::Keepalive>.

Letting the handle go out of scope does B<not> stop the renewals.

=head1 SEE ALSO

L<EV::Etcd> (section LEASES AND KEEPALIVE)

=cut
