#!/bin/sh
# Installs a build of mproc into a temporary directory with DESTDIR and
# builds tests/install/hello.c against it three ways: with pkg-config
# (libmproc.so), with find_package(mproc) (mproc::mproc, mproc::mproc_static,
# and mproc::cluster linked when the build has it), and linking libmproc.a
# by hand. Every program runs (the pkg-config and static ones under each
# start method), and must not load anything from the build tree.
#
# Usage: test_install.sh BUILD_DIR SOURCE_DIR C_COMPILER [CFLAGS]
# (CFLAGS: the sanitizer flags of a sanitizer build, for every program built
# here, as its library needs their runtime.)
set -eu
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd); cc=$3; extra=${4:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mproc-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test_install: $*" >&2; exit 1; }

DESTDIR=$tmp/root cmake --install "$build" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "cmake --install failed"; }
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
root=$tmp/root$prefix
lib=$root/$libdir
major=$(sed -n 's/^#define MPROC_VERSION_MAJOR *\([0-9]*\).*/\1/p' "$src/include/mproc/base.h")
version=$(sed -n 's/^#define MPROC_VERSION_STRING *"\(.*\)".*/\1/p' "$src/include/mproc/base.h")

for f in include/mproc.h include/mproc/base.h include/mproc/pool.h bin/mproc-manager \
         "$libdir/libmproc.so" "$libdir/libmproc.so.$major" "$libdir/libmproc.so.$version" \
         "$libdir/libmproc.a" "$libdir/pkgconfig/mproc.pc" "$libdir/cmake/mproc/mprocConfig.cmake"; do
    [ -e "$root/$f" ] || fail "not installed: $prefix/$f"
done
soname=$(readelf -d "$lib/libmproc.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libmproc.so.$major" ] || fail "SONAME is '$soname', not libmproc.so.$major"
if grep -rlI "$build" "$root" >/dev/null 2>&1; then
    fail "installed files name the build tree: $(grep -rlI "$build" "$root" | head -3)"
fi
"$root/bin/mproc-manager" --help >/dev/null || fail "mproc-manager --help failed"
if [ -e "$build/man/mproc-manager.1.gz" ]; then # built when help2man is installed
    [ -e "$root/share/man/man1/mproc-manager.1.gz" ] || fail "the man page of mproc-manager is not installed"
fi
if [ -e "$build/man/mproc.7.gz" ]; then # built when pandoc is installed
    [ -e "$root/share/man/man7/mproc.7.gz" ] || fail "mproc(7) is not installed"
fi

# 1. pkg-config, against libmproc.so (the sysroot makes the .pc file's
#    paths point into DESTDIR).
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
pkg-config --exists mproc || fail "pkg-config does not find mproc"
[ "$(pkg-config --modversion mproc)" = "$version" ] || fail "mproc.pc version is not $version"
# shellcheck disable=SC2046,SC2086
"$cc" $extra -std=c11 -Wall -Werror -o "$tmp/hello_pc" "$src/tests/install/hello.c" \
    $(pkg-config --cflags --libs mproc) || fail "build with pkg-config failed"
LD_LIBRARY_PATH=$lib ldd "$tmp/hello_pc" | grep -q "libmproc.so.$major => $lib/" ||
    fail "hello_pc does not load the installed libmproc.so.$major"
for m in fork spawn forkserver; do
    MPROC_START_METHOD=$m LD_LIBRARY_PATH=$lib "$tmp/hello_pc" || fail "hello_pc failed under $m"
done
echo "pkg-config: ok"

# 2. find_package(mproc): mproc::mproc and mproc::mproc_static (and
#    mproc::cluster when this build has the cluster layer).
cluster=OFF
[ -e "$lib/libmproc_cluster.a" ] && cluster=ON
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_PATH
cmake -S "$src/tests/install/consumer" -B "$tmp/consumer" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$root" -DMPROC_EXPECT_CLUSTER=$cluster -DCMAKE_C_FLAGS="$extra" \
    -DCMAKE_EXE_LINKER_FLAGS="$extra" >"$tmp/consumer.log" 2>&1 &&
    cmake --build "$tmp/consumer" >>"$tmp/consumer.log" 2>&1 ||
    { cat "$tmp/consumer.log"; fail "build with find_package failed"; }
ldd "$tmp/consumer/hello_shared" | grep -q "libmproc.so.$major => $lib/" ||
    fail "hello_shared does not load the installed libmproc.so.$major"
"$tmp/consumer/hello_shared" || fail "hello_shared (find_package, mproc::mproc) failed"
"$tmp/consumer/hello_static" || fail "hello_static (find_package, mproc::mproc_static) failed"
echo "find_package: ok (cluster $cluster)"

# 3. The static library by hand: libmproc.a and what pkg-config --static
#    says it needs; nothing of libmproc.so in the program.
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
libs=$(pkg-config --static --libs mproc | sed 's/-lmproc\b/-l:libmproc.a/')
# shellcheck disable=SC2086
"$cc" $extra -std=c11 -Wall -Werror -o "$tmp/hello_a" "$src/tests/install/hello.c" \
    $(pkg-config --cflags mproc) $libs || fail "build with libmproc.a failed"
if readelf -d "$tmp/hello_a" | grep -q 'NEEDED.*libmproc'; then fail "hello_a needs libmproc.so"; fi
for m in fork spawn forkserver; do
    MPROC_START_METHOD=$m "$tmp/hello_a" || fail "hello_a failed under $m"
done
echo "static: ok"
