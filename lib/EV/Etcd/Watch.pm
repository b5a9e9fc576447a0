package EV::Etcd::Watch;

use strict;
use warnings;

use EV::Etcd ();    # holds the version; it requires this file too, either may load first

our $VERSION = $EV::Etcd::VERSION;

# The methods (cancel, request_progress) are defined by EV::Etcd's shared
# object. Dropping the handle leaves the watch running (API compatibility):
# only cancel or the client's destruction ends it.
sub DESTROY { }

sub CLONE_SKIP { 1 }

1;

__END__

=head1 NAME

EV::Etcd::Watch - handle of a watch started with EV::Etcd's watch method

=head1 SYNOPSIS

    my $w = $etcd->watch('/config/', { prefix => 1 }, sub {
        my ($resp, $err) = @_;
        ...
    });

    $w->request_progress;           # ask for a progress message
    $w->cancel(sub { print "watch cancelled\n" });

=head1 METHODS

=head2 cancel

    $w->cancel(sub { my ($resp, $err) = @_; ... });

Ends the watch. No callback of the watch runs after C<cancel> returns. The
given callback then runs exactly once, from the event loop (not before
C<cancel> returns), with C<({}, undef)> - whatever state the watch was in:
active, already cancelled, ended by the server, or belonging to a client
that has been destroyed. Takes exactly one argument, a code reference;
otherwise it croaks with C<Usage: EV::Etcd::Watch::cancel(watch, callback)>
or C<callback must be a code reference>. Called on anything that is not a
watch handle it croaks with C<watch is not of type EV::Etcd::Watch>.

=head2 request_progress

    $w->request_progress;

Asks the server how far it has sent events. The answer arrives at the
watch's callback as a response with an empty C<events> list and
C<created =E<gt> 0>; its C<< header->{revision} >> is the store revision up
to which every event has been delivered. Does nothing once the watch has
ended.

=head2 Lifetime

Letting the handle go out of scope does B<not> cancel the watch: it keeps
running and calling its callback until it is cancelled, ends with an error,
or its client is destroyed. The handle does not keep the client alive; once
the client is gone, C<cancel> simply calls back C<({}, undef)>.

=head1 SEE ALSO

L<EV::Etcd> (section WATCHES)

=cut
