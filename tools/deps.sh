#!/bin/sh
# Installs the Debian packages mproc needs to build and test (and, with the
# argument "bench", the benchmarks' extra peers; with "deb" or "docs", the
# packaging and documentation tools; with "fuzz" or "tsan",
# clang and its sanitizer runtimes (libFuzzer, ThreadSanitizer), only
# recommended by clang; with "openmpi", Open MPI for the cluster layer's
# second MPI), if any are missing: as root with apt-get,
# otherwise it prints the command. `make analyze` needs only gcc (12:
# -fanalyzer).
set -eu
PKGS="gcc make cmake pkg-config check libcbor-dev libssl-dev python3 python3-dev python3-setuptools python3-pip python3-wheel mpich libmpich-dev"
# CPython's test suite for the package's python_cpython_suite test.
PYV=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo 3.11)
PKGS="$PKGS libpython$PYV-testsuite"
[ "${1:-}" = bench ] && PKGS="$PKGS libzmq3-dev python3-mpi4py" # zeromq peer; mpi4py.futures peer
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-dev"
[ "${1:-}" = tsan ] && PKGS="$PKGS clang libclang-rt-dev"
[ "${1:-}" = openmpi ] && PKGS="$PKGS openmpi-bin libopenmpi-dev"
# `make deb`: CPack's dpkg-shlibdeps (dpkg-dev) and lintian; `make docs`:
# the API reference (doxygen) and the man pages (help2man for mproc-manager,
# pandoc for mproc(7)).
[ "${1:-}" = deb ] && PKGS="$PKGS dpkg-dev lintian help2man pandoc"
[ "${1:-}" = docs ] && PKGS="$PKGS doxygen help2man pandoc"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "mproc: installing$missing"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
else
    echo "mproc: missing Debian packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
