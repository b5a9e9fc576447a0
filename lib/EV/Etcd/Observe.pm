package EV::Etcd::Observe;

use strict;
use warnings;

use EV::Etcd ();    # holds the version; it requires this file too, either may load first

our $VERSION = $EV::Etcd::VERSION;

# cancel is defined by EV::Etcd's shared object. Dropping the handle leaves
# the observation running (the reference returned no handle at all).
sub DESTROY { }

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Observe - handle of an election observation

=head1 SYNOPSIS

    my $obs = $etcd->election_observe('/election/web', sub {
        my ($resp, $err) = @_;    # { header, kv } for each new leader value
    });

    $obs->cancel(sub { print "no longer observing\n" });

=head1 METHODS

=head2 cancel

    $obs->cancel(sub { my ($resp, $err) = @_; ... });

Ends the observation. No callback of it runs after C<cancel> returns; the
given callback then runs exactly once, from the event loop, with C<({},
undef)>, whatever state the observation was in. Takes exactly one code
reference (C<Usage: EV::Etcd::Observe::cancel(observe, callback)>,
C<callback must be a code reference>); on anything but an observe handle
it croaks with C<observe is not of type EV::Etcd::Observe>.

Letting the handle go out of scope does B<not> end the observation.

=head1 SEE ALSO

L<EV::Etcd> (section ELECTION METHODS)

=cut
