#!/usr/bin/env perl
# A watch that can be stopped and resumed without losing or repeating an
# event: remember the revision of the last event handled, and start the next
# watch at that revision + 1. Writes made while nobody watched are replayed
# from etcd's history. (Within one watch the client does this by itself
# after a lost connection.)
#
#   perl -Mblib eg/watch_resume.pl
#
# Uses the cluster in EV_ETCD_ENDPOINTS (comma-separated host:port list) when
# set; otherwise starts a throwaway etcd on a free loopback port.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";
use EV;
use EV::Etcd;
use EtcdTest;

my @endpoints = EtcdTest::example_endpoints();
my $etcd = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
my $dir  = "/ev-etcd-watch-example/$$/";

sub check { EtcdTest::example_ok(@_) }    # reports an error, stops the loop
my $deadline = EtcdTest::example_deadline(30);

my $last_rev = 0;    # what a real program would keep on disk
my @seen;

# Watches from $from (0: from now); calls $on_count after $n events.
sub watch_from {
    my ($from, $n, $on_count) = @_;
    my $w;
    $w = $etcd->watch($dir, { prefix => 1, ($from ? (start_revision => $from) : ()) }, sub {
        my ($resp, $err) = @_;
        check(watch => $err) or return;
        printf "watch %s (store at revision %d)\n", ($from ? 'resumed' : 'started'),
            $resp->{header}{revision} if $resp->{created};
        for my $ev (@{ $resp->{events} }) {
            printf "  %-6s %s = %s (revision %d)\n", $ev->{type},
                substr($ev->{kv}{key}, length $dir), $ev->{kv}{value}, $ev->{kv}{mod_revision};
            push @seen, substr($ev->{kv}{key}, length $dir);
            $last_rev = $ev->{kv}{mod_revision};
            $on_count->($w) if --$n == 0;
        }
    });
    return $w;
}

# Writes the keys one after the other, then calls $then.
sub write_keys {
    my ($then, @keys) = @_;
    return $then->() unless @keys;
    my $k = shift @keys;
    $etcd->put("$dir$k", "value of $k", sub {
        check(put => $_[1]) and write_keys($then, @keys);
    });
}

my $first = watch_from(0, 3, sub {
    my ($w) = @_;
    $w->cancel(sub {
        print "watch stopped after revision $last_rev; writing k4, k5 unwatched\n";
        write_keys(sub {
            watch_from($last_rev + 1, 3, sub {
                my ($w) = @_;
                $w->cancel(sub {
                    $etcd->delete($dir, { prefix => 1 }, sub { check(delete => $_[1]) and EV::break });
                });
            });
            # a live write after the resumed watch exists
            write_keys(sub { }, 'k6');
        }, 'k4', 'k5');
    });
});
write_keys(sub { }, 'k1', 'k2', 'k3');

EV::run;
exit 1 if EtcdTest::example_failed();
print "events handled: @seen\n";
exit("@seen" eq 'k1 k2 k3 k4 k5 k6' ? 0 : 1);
