#!/bin/sh
# A library-only build needs nothing but Asio: configures the project with every
# optional part off and CLI11, Protobuf, GTest and Verilator hidden from
# find_package, builds and installs it, then builds and runs the find-package
# consumers against that install.
# Usage: library_only_test.sh <project source dir> <work dir> [cmake -D options...]
set -eu
src=$1 work=$2
shift 2
rm -rf "$work" && mkdir -p "$work"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DCOREIO_BUILD_TRACE=OFF -DCOREIO_BUILD_EXAMPLES=OFF -DCOREIO_BUILD_TESTS=OFF \
    -DCMAKE_DISABLE_FIND_PACKAGE_CLI11=ON -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON \
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_verilator=ON "$@" >"$work/configure.log"
for part in proto mockvm recorder replayer examples cosim bench tests; do
    if [ -d "$work/build/$part" ]; then
        echo "library_only_test: part '$part' configured in a library-only build" >&2
        exit 1
    fi
done
cmake --build "$work/build" -j2 >"$work/build.log"
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/libcoreio/find-package" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" \
    -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_cxx"
"$work/consumer/consumer_static"
"$work/consumer/consumer_c"
echo "library_only_test: ok"
