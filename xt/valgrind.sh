#!/bin/sh
# Leak check of the Rust engine under valgrind (not run by `make test`).
#
#   perl Makefile.PL && make && xt/valgrind.sh
#
# Starts a throwaway etcd member (t/lib/EtcdTest.pm), then runs a short
# script under `valgrind --leak-check=full`: puts and gets, a txn, errors
# (a closed port), croaking calls, a watch with events and a cancel, a
# client destroyed inside its own callback and one with work outstanding,
# and clients left for global destruction. Perl itself does not free
# everything at exit, so the script sets PERL_DESTRUCT_LEVEL=2 and the
# summary is filtered for our library: any "definitely lost" record whose
# stack mentions ev_etcd/Etcd.so fails the check.
#
# Expected: "definitely lost: 0", "indirectly lost: 0"; a few hundred bytes
# "possibly lost" belong to the runtime thread (its TLS and Thread handle),
# which by design lives until the process ends and is never joined.
#
# The engine is built again here with the system allocator (cargo
# --no-default-features, into target/valgrind): the default build's
# mimalloc takes its memory with mmap, where valgrind cannot follow it.
#
# Exit status 0 when valgrind reports no definite leak from our code.
set -eu
cd "$(dirname "$0")/.."
LOG=${VALGRIND_LOG:-$(mktemp)}
ARCH=$(mktemp -d)
PERL=$(command -v perl) cargo build --release --locked --no-default-features --target-dir target/valgrind
mkdir -p "$ARCH/auto/EV/Etcd"
cp target/valgrind/release/libev_etcd.so "$ARCH/auto/EV/Etcd/Etcd.so"

cat > "$LOG.pl" <<'PERL'
use strict; use warnings;
use lib 't/lib';
use EtcdTest;
use EV::Etcd;
my $srv = EtcdTest->start;
my $P = EtcdTest::prefix();
my $c = EV::Etcd->new(endpoints => [ $srv->endpoint ], timeout => 5);
my $n = 0;
for my $i (1 .. 200) {
    $c->put("${P}k$i", "v" x $i, sub { $n++ });
    $c->get("${P}k", { prefix => 1, limit => 5 }, sub { $n++ });
}
$c->txn([ { key => "${P}k1", target => 'version', version => 0 } ],
        [ { put => { key => "${P}t", value => 'x' } } ], [ { range => { key => "${P}k1" } } ], sub { $n++ });
EtcdTest::run_until(20, sub { $n >= 401 });
my @events;
my $w = $c->watch("${P}w/", { prefix => 1, prev_kv => 1 }, sub { push @events, @{ $_[0] ? $_[0]{events} : [] } });
$c->put("${P}w/$_", $_, sub { }) for 1 .. 20;
EtcdTest::run_until(10, sub { @events >= 20 });
my $done; $w->cancel(sub { $done = 1 }); EtcdTest::run_until(5, sub { $done });
eval { $c->put("${P}x" x 1, 'v' x 2_000_000, sub { }) };
eval { $c->get(undef) };
my $dead = EV::Etcd->new(endpoints => ['127.0.0.1:' . EtcdTest::closed_port()], timeout => 1, max_retries => 0);
my $e; $dead->get('k', sub { $e = $_[1] }); EtcdTest::run_until(5, sub { $e });
my $d = EV::Etcd->new(endpoints => [ $srv->endpoint ]);
$d->put("${P}d", 1, sub { undef $d }); EtcdTest::run_until(5, sub { !$d });
my $o = EV::Etcd->new(endpoints => [ $srv->endpoint ]);
$o->get("${P}k1", sub { }) for 1 .. 50; my $ow = $o->watch("${P}o", sub { }); undef $o;
our $G = EV::Etcd->new(endpoints => [ $srv->endpoint ]); our $GW = $G->watch("${P}g", sub { });
$G->get("${P}k1", sub { }) for 1 .. 10;
print "ran: $n callbacks, ", scalar(@events), " events, error $e->{status}\n";
PERL

PERL_DESTRUCT_LEVEL=2 valgrind --leak-check=full --show-leak-kinds=definite,possible \
    --num-callers=40 --error-limit=no --log-file="$LOG" \
    perl -I"$ARCH" -Iblib/lib "$LOG.pl"

echo "--- valgrind summary ($LOG)"
sed -n '/LEAK SUMMARY/,/suppressed/p' "$LOG" | sed 's/^==[0-9]*== //'
ours=$(awk '/definitely lost in/ { rec = 1; buf = "" } rec { buf = buf $0 "\n" } /^==[0-9]+== $/ && rec { if (buf ~ /ev_etcd|Etcd\.so|tokio|tonic/) print buf; rec = 0 }' "$LOG")
if [ -n "$ours" ]; then
    echo "--- definite leaks from EV::Etcd:"
    echo "$ours"
    exit 1
fi
echo "no definite leak from EV::Etcd"
