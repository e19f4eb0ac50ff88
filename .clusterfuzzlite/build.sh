#!/bin/bash -eu
# ClusterFuzzLite/OSS-Fuzz build: $CC/$CXX/$CXXFLAGS carry the sanitizer and
# coverage flags, $LIB_FUZZING_ENGINE links the engine; binaries go to $OUT.
# The targets work with libFuzzer's -fork=N and -jobs=N: each input runs in
# process with no global state beyond the model, which every input resets.
cmake -S "$SRC/coreio" -B build -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCOREIO_BUILD_FUZZ=ON -DCOREIO_BUILD_TESTS=OFF \
  -DCOREIO_BUILD_BENCH=OFF -DCOREIO_BUILD_COSIM=OFF \
  -DCOREIO_FUZZ_COMPILE_FLAGS="" -DCOREIO_FUZZ_LINK_FLAGS="$LIB_FUZZING_ENGINE"
cmake --build build --target coreio_replayer_fuzz_targets
for t in coreio_timer_fuzz coreio_dmacopy_fuzz; do
  cp "build/replayer/$t" "$OUT/"
done
