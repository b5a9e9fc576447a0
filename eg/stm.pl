#!/usr/bin/env perl
# Bank transfers with software transactional memory ($etcd->stm): several
# clients move money between accounts at the same time. Each transfer reads
# two balances, refuses to overdraw, and writes both new balances; the STM
# commits it only if nothing it read changed meanwhile and runs it again
# otherwise. The total never changes and no account goes negative.
#
#   perl -Mblib eg/stm.pl [workers] [transfers-each]
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

my ($workers, $each) = (@ARGV, 4, 25)[0, 1];
my @endpoints = EtcdTest::example_endpoints();
my $bank      = "/ev-etcd-stm-example/$$/";
my @accounts  = map { "${bank}acct$_" } 1 .. 5;

sub check { EtcdTest::example_ok(@_) }    # reports an error, stops the loop
my $deadline = EtcdTest::example_deadline(90);

# One transfer as an STM apply function: called again, with a fresh $stm,
# whenever another transfer changed one of the two balances first.
sub transfer {
    my ($from, $to, $amount) = @_;
    return sub {
        my ($stm) = @_;
        $stm->get($from, sub {
            my ($have) = @_;
            return $stm->abort('insufficient funds') if $have < $amount;
            $stm->get($to, sub {
                my ($other) = @_;
                $stm->put($from, $have - $amount);
                $stm->put($to, $other + $amount);
                $stm->commit;
            });
        });
    };
}

my %count = (committed => 0, refused => 0, retries => 0);

# the opening balances, in one STM of its own
my $setup = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
$setup->stm(sub {
    my ($stm) = @_;
    $stm->put($_, 100) for @accounts;
    $stm->commit;
}, sub { check(setup => $_[1]) and EV::break });
EV::run;
exit 1 if EtcdTest::example_failed();

my $running = $workers;
for my $w (1 .. $workers) {
    my $etcd = EV::Etcd->new(endpoints => \@endpoints, timeout => 10);
    my $left = $each;
    my $next; $next = sub {
        unless ($left--) {
            undef $next;                   # this worker is done
            EV::break unless --$running;
            return;
        }
        my ($from, $to) = (int rand 5, int rand 4);
        $to++ if $to >= $from;
        $etcd->stm(transfer(@accounts[$from, $to], 1 + int rand 50),
                   { isolation => 'serializable_snapshot', retries => 100 }, sub {
            my ($res, $err) = @_;
            if ($err && $err->{message} eq 'insufficient funds') {
                $count{refused}++;
            }
            else {
                check(stm => $err) or return;
                $count{committed}++;
                $count{retries} += $res->{attempts} - 1;
            }
            $next->();
        });
    };
    $next->();
}
EV::run;
exit 1 if EtcdTest::example_failed();

# read every balance at one revision (an STM that only reads), then clean up
my @balances;
$setup->stm(sub {
    my ($stm) = @_;
    for my $i (0 .. $#accounts) {
        $stm->get($accounts[$i], sub {
            $balances[$i] = $_[0];
            $stm->commit if @balances == @accounts && !grep { !defined } @balances;
        });
    }
}, { isolation => 'serializable' }, sub {
    check(read => $_[1]) or return;
    $setup->delete($bank, { prefix => 1 }, sub { check(delete => $_[1]) and EV::break });
});
EV::run;
exit 1 if EtcdTest::example_failed();

my $total = 0;
$total += $_ for @balances;
print "balances: @balances\n";
printf "%d workers x %d transfers: %d committed (%d conflicts retried), %d refused; total %d\n",
    $workers, $each, $count{committed}, $count{retries}, $count{refused}, $total;
my $negative = grep { $_ < 0 } @balances;
exit($total == 100 * @accounts && !$negative ? 0 : 1);
