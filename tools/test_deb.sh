#!/bin/sh
# Installs the .deb files of `make deb` with dpkg -i into a clean prefix
# (--instdir: an empty directory; --admindir: a copy of this machine's
# dpkg database, so that dpkg checks the packages' dependencies against
# what is installed here, without touching it), then builds
# tests/install/hello.c against them with pkg-config and with
# find_package(mproc), runs it, and runs mproc-manager --help. Then lintian
# over the packages, when installed: its findings are printed (docs/install.md
# lists them with their reasons), not failed on.
#
# Usage: test_deb.sh BUILD_DIR SOURCE_DIR
set -eu
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mproc-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_deb: $*" >&2; exit 1; }

major=$(sed -n 's/^#define MPROC_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$src/include/mproc/base.h")
version=$(sed -n 's/^#define MPROC_VERSION_STRING *"\(.*\)".*/\1/p' "$src/include/mproc/base.h")
arch=$(dpkg --print-architecture)
debs=""
for p in "libmproc${major}" libmproc-dev mproc-tools libmproc-cluster-dev; do
    f=$build/${p}_${version}_${arch}.deb
    if [ -e "$f" ]; then
        debs="$debs $f"
    elif [ "$p" != libmproc-cluster-dev ]; then
        fail "$f was not built"
    fi
done
# Each file in the package it belongs to.
for p in "libmproc${major}" libmproc-dev mproc-tools; do
    dpkg-deb -c "$build/${p}_${version}_${arch}.deb" >"$tmp/$p.list"
done
grep -q "libmproc.so.$major " "$tmp/libmproc$major.list" || fail "libmproc$major lacks libmproc.so.$major"
if grep -q '\.h$\|\.a$\|bin/' "$tmp/libmproc$major.list"; then
    fail "libmproc$major carries development files or programs"
fi
grep -q 'include/mproc.h$' "$tmp/libmproc-dev.list" || fail "libmproc-dev lacks mproc.h"
grep -q 'usr/bin/mproc-manager$' "$tmp/mproc-tools.list" || fail "mproc-tools lacks mproc-manager"
if [ -e "$build/man/mproc-manager.1.gz" ]; then
    grep -q 'man1/mproc-manager.1.gz$' "$tmp/mproc-tools.list" || fail "mproc-tools lacks the man page"
fi

mkdir -p "$tmp/root" "$tmp/admin"
cp -a /var/lib/dpkg/. "$tmp/admin/"
rm -f "$tmp/admin/lock" "$tmp/admin/lock-frontend" "$tmp/admin/triggers/Lock"
# shellcheck disable=SC2086
dpkg --admindir="$tmp/admin" --instdir="$tmp/root" --force-script-chrootless \
    --no-triggers -i $debs >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i failed"; }
echo "dpkg -i --instdir: installed$(for d in $debs; do printf ' %s' "$(basename "$d" .deb)"; done)"

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
lib=$tmp/root/usr/lib/$multiarch
[ -e "$lib/libmproc.so.$major" ] || fail "no $lib/libmproc.so.$major"
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror -o "$tmp/hello_pc" "$src/tests/install/hello.c" \
    $(pkg-config --cflags --libs mproc) || fail "build with pkg-config failed"
LD_LIBRARY_PATH=$lib ldd "$tmp/hello_pc" | grep -q "libmproc.so.$major => $lib/" ||
    fail "hello_pc does not load the packaged libmproc.so.$major"
LD_LIBRARY_PATH=$lib "$tmp/hello_pc" || fail "hello_pc failed"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
cluster=OFF
[ -e "$lib/libmproc_cluster.a" ] && cluster=ON
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/root/usr" \
    -DMPROC_EXPECT_CLUSTER=$cluster >"$tmp/consumer.log" 2>&1 &&
    cmake --build "$tmp/consumer" >>"$tmp/consumer.log" 2>&1 ||
    { cat "$tmp/consumer.log"; fail "build with find_package failed"; }
grep -q "$tmp/root" "$tmp/consumer/CMakeCache.txt" || fail "find_package did not find the packaged mproc"
"$tmp/consumer/hello_shared" || fail "hello_shared failed"
"$tmp/consumer/hello_static" || fail "hello_static failed"
"$tmp/root/usr/bin/mproc-manager" --help >/dev/null || fail "mproc-manager --help failed"
echo "test_deb: the packages install, link (pkg-config, find_package; cluster $cluster) and run"

if command -v lintian >/dev/null 2>&1; then
    echo "lintian:"
    # shellcheck disable=SC2086
    lintian --tag-display-limit 0 $debs 2>&1 | grep -v 'root privileges' || true
else
    echo "lintian: not installed (tools/deps.sh deb installs it)"
fi
