#!/bin/sh
# Author test: build and test EV::Etcd with a perl built without threads
# (no MULTIPLICITY), the other kind of perl next to Debian's threaded one.
#
#   sh xt/nonthreaded.sh [WORKDIR]
#
# With NONTHREADED_PERL=/path/to/bin/perl (a perl without threads that
# already has EV) it uses that perl. Otherwise it fetches the sources of
# Debian's perl, EV and EV's build prerequisites with `apt-get source`
# (needs deb-src lines in the apt sources), builds a perl with -Uusethreads
# under WORKDIR (about 10 minutes on 2 cores) and installs EV into it. Then
# it builds this checkout's HEAD with that perl and runs `make test`
# (etcd must be installed, as for the normal tests).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/ev-etcd-nonthreaded-XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

perl=${NONTHREADED_PERL:-}
if [ -z "$perl" ]; then
    perl="$work/perl/bin/perl"
    if [ ! -x "$perl" ]; then
        cd "$work"
        apt-get source --download-only perl libev-perl libcommon-sense-perl \
            libcanary-stability-perl
        tar xf perl_*.orig.tar.xz
        (cd perl-5.* && sh Configure -des -Dprefix="$work/perl" -Uusethreads \
            -Dman1dir=none -Dman3dir=none >configure.log &&
            make -j"$jobs" >make.log && make install >install.log)
        for dist in libcanary-stability-perl libcommon-sense-perl libev-perl; do
            tar xf ${dist}_*.orig.tar.gz
        done
        for dir in Canary-Stability-* common-sense-* EV-*; do
            (cd "$dir" && PERL_CANARY_STABILITY_NOPROMPT=1 PERL_MM_USE_DEFAULT=1 \
                "$perl" Makefile.PL </dev/null >build.log &&
                make -j"$jobs" >>build.log && make install >>build.log)
        done
    fi
fi

if [ "$("$perl" -MConfig -e 'print $Config{usethreads} ? 1 : 0')" != 0 ]; then
    echo "$perl is built with threads; this test wants one without" >&2
    exit 1
fi
"$perl" -MEV -e 1

rm -rf "$work/src"
git clone -q "$root" "$work/src"
cd "$work/src"
PATH="$(dirname "$perl"):$PATH"
export PATH
perl Makefile.PL
make
make test
echo "EV::Etcd built and tested with $perl (usethreads undef)"
