#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs every test
# (warnings as errors), again under ASan+UBSan, again under ThreadSanitizer, and
# the fuzz targets for a short bounded run. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

# Ninja (installed above): it keeps both cores busy across targets, where
# make's per-target recursion idles them (a no-op make of the release tree
# took 30 s). A build dir left by another generator starts over.
configure() {  # configure DIR CMAKE-ARGS...
  local dir=$1
  shift
  if [ -f "$dir/CMakeCache.txt" ] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}

echo "== build + tests (release, -Werror)"
# -O2 without debug info: quicker to build than RelWithDebInfo, and GCC 12's -O3
# raises false -Wrestrict warnings inside libstdc++.
configure build/ci -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG" -DCOREIO_WERROR=ON
cmake --build build/ci -j"$jobs"
ctest --test-dir build/ci --output-on-failure -j"$jobs" --timeout 300

echo "== build + tests (ASan+UBSan)"
configure build/asan -DCMAKE_BUILD_TYPE=Debug -DCOREIO_SANITIZE=ON -DCOREIO_WERROR=ON \
          -DCOREIO_BUILD_COSIM=OFF -DCOREIO_BUILD_BENCH=OFF
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" --timeout 300 -LE fuzz

echo "== build + tests (ThreadSanitizer)"
# -O1: TSan at -O0 is several times slower. Suppressions (scripts/tsan.supp) are
# for proven false positives only, each with its reason.
configure build/tsan -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-g1 -O1" "-DCMAKE_C_FLAGS_DEBUG=-g1 -O1" \
          -DCOREIO_TSAN=ON -DCOREIO_WERROR=ON -DCOREIO_BUILD_COSIM=OFF -DCOREIO_BUILD_BENCH=OFF
cmake --build build/tsan -j"$jobs"
# One test left out here: TraceSchema.HeaderRoundTripsBothWays, single-threaded,
# compares messages with a map field through protobuf reflection, and crashes
# (SEGV in MapField::SyncRepeatedFieldWithMapNoLock) inside Debian's
# uninstrumented libprotobuf when the generated code is built with
# -fsanitize=thread; it passes in the release and ASan+UBSan stages above.
TSAN_OPTIONS="second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp" \
  ctest --test-dir build/tsan --output-on-failure -j"$jobs" --timeout 300 -LE fuzz \
        -E '^TraceSchema\.HeaderRoundTripsBothWays$'

echo "== fuzz targets (libFuzzer, bounded)"
configure build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCOREIO_BUILD_FUZZ=ON \
          -DCOREIO_BUILD_TESTS=ON -DCOREIO_BUILD_COSIM=OFF -DCOREIO_BUILD_BENCH=OFF
cmake --build build/fuzz -j"$jobs" --target coreio_fuzz_targets
ctest --test-dir build/fuzz --output-on-failure -L fuzz --timeout 120
echo "== all tests passed"
