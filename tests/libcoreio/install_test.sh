#!/bin/sh
# Installs libcoreio into a temp prefix, builds find-package/ against it with
# find_package(coreio), builds a C program with pkg-config flags, runs all.
# Usage: install_test.sh <libcoreio build dir> <tests/libcoreio source dir> <work dir> <c compiler>
set -eu
build=$1 src=$2 work=$3 cc=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
prefix=$work/prefix
libdir=$(dirname "$(find "$prefix" -name libcoreio.pc | head -n1)")/..
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

cmake -S "$src/find-package" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_cxx"
"$work/consumer/consumer_static"
"$work/consumer/consumer_c"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/prog" "$src/c_api_compile.c" $(pkg-config --cflags --libs libcoreio)
"$work/prog"
# shellcheck disable=SC2046
"$cc" -o "$work/prog_static" "$src/c_api_compile.c" $(pkg-config --static --cflags libcoreio) \
    "$libdir/libcoreio.a" $(pkg-config --static --libs-only-l libcoreio | sed 's/-lcoreio//')
"$work/prog_static"
echo "install_test: ok"
