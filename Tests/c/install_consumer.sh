#!/usr/bin/env bash
# Proves an outside program builds and runs against the INSTALLED files only:
#   1. cmake --install into a temporary prefix; the expected files are there;
#   2. the installed libpier.so needs no Swift runtime (ldd) and has its SONAME links;
#   3. examples/c/hello.c compiles with `pkg-config --cflags --libs pier` and runs under
#      `env -i` (no PATH, no Swift toolchain) with only LD_LIBRARY_PATH=<prefix>/lib;
#   4. a tiny CMake project (Tests/c/consumer) finds it with find_package(Pier) and runs.
#
#   install_consumer.sh BUILD_DIR SOURCE_DIR [CMAKE] [CC]
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
cmake=${3:-cmake}
cc=${4:-${CC:-gcc}}

work=$(mktemp -d "${TMPDIR:-/tmp}/pier-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() { echo "install_consumer: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix"

# Find the library directory (lib, or lib/<multiarch> when GNUInstallDirs chose it).
pc=$(find "$prefix" -name pier.pc -path '*/pkgconfig/*' | head -n1)
[[ -n $pc ]] || fail "pier.pc was not installed"
libdir=$(dirname "$(dirname "$pc")")
major=$(sed -n 's/^#define PIER_VERSION_MAJOR \([0-9]*\)$/\1/p' "$source/include/pier.h")
version=$(sed -n 's/^#define PIER_VERSION_STRING "\(.*\)"$/\1/p' "$source/include/pier.h")

step "installed files"
for f in "$libdir/libpier.so.$version" "$prefix/include/pier.h" "$libdir/cmake/Pier/PierConfig.cmake" \
         "$libdir/cmake/Pier/PierConfigVersion.cmake"; do
    [[ -f $f ]] || fail "missing $f"
    echo "  $f"
done
[[ -L $libdir/libpier.so.$major && $(readlink "$libdir/libpier.so.$major") == "libpier.so.$version" ]] \
    || fail "$libdir/libpier.so.$major is not a symlink to libpier.so.$version"
[[ -L $libdir/libpier.so && $(readlink "$libdir/libpier.so") == "libpier.so.$major" ]] \
    || fail "$libdir/libpier.so is not a symlink to libpier.so.$major"
cmp -s "$prefix/include/pier.h" "$source/include/pier.h" || fail "installed pier.h differs from include/pier.h"
soname=$(objdump -p "$libdir/libpier.so.$version" | awk '$1 == "SONAME" {print $2}')
[[ $soname == "libpier.so.$major" ]] || fail "SONAME is '$soname', expected libpier.so.$major"
echo "  SONAME $soname"

step "ldd $libdir/libpier.so (no Swift runtime, nothing missing)"
deps=$(env -i ldd "$libdir/libpier.so")
echo "$deps"
if grep -Eq 'libswift|libFoundation|libdispatch|libBlocksRuntime|lib_Foundation' <<<"$deps"; then
    fail "libpier.so depends on the Swift runtime"
fi
if grep -q 'not found' <<<"$deps"; then fail "libpier.so has unresolved dependencies"; fi

step "pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
pkg-config --exists pier || fail "pkg-config cannot find pier"
[[ $(pkg-config --modversion pier) == "$version" ]] || fail "pkg-config --modversion is $(pkg-config --modversion pier), expected $version"
flags=$(pkg-config --cflags --libs pier)
echo "  pkg-config --cflags --libs pier: $flags"

step "build examples/c/hello.c against the installed files"
mkdir -p "$work/pc"
# shellcheck disable=SC2086 # the flags must split into words
"$cc" -std=c11 -Wall -Wextra -Werror "$source/examples/c/hello.c" $flags -o "$work/pc/hello"

step "run it under env -i"
out=$(cd "$work/pc" && env -i LD_LIBRARY_PATH="$libdir" ./hello)
echo "$out"
grep -q "^Pier $version" <<<"$out" || fail "hello did not print the version"
grep -q 'Ada Lovelace' <<<"$out" || fail "hello did not print its record"
grep -q 'PIER_ENOTFOUND' <<<"$out" || fail "hello did not print the expected error"
[[ -f $work/pc/hello.pier ]] || fail "hello did not create its store"
# It really used the installed copy.
# (Captured first: `ldd | grep -q` can fail under pipefail when grep exits early.)
resolved=$(env -i LD_LIBRARY_PATH="$libdir" ldd "$work/pc/hello")
grep -q "libpier.so.$major => $libdir/libpier.so.$major" <<<"$resolved" \
    || fail "hello did not resolve libpier.so.$major from $libdir: $resolved"

step "find_package(Pier) from Tests/c/consumer"
"$cmake" -S "$source/Tests/c/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DPIER_EXAMPLE_SOURCE="$source/examples/c/hello.c"
"$cmake" --build "$work/cm"
out=$(cd "$work/cm" && env -i LD_LIBRARY_PATH="$libdir" ./hello)
echo "$out"
grep -q 'Ada Lovelace' <<<"$out" || fail "the find_package consumer did not print its record"
grep -q "Pier $version" "$work/cm/found.txt" || fail "find_package reported another version: $(cat "$work/cm/found.txt")"

echo "install_consumer: OK"
