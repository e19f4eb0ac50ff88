#!/usr/bin/env bash
# The main job, end to end: installs what is missing, builds, starts the mock VM
# on a free 127.0.0.1 port, attaches the example register-file device (a C program
# written against the original CoreIO API), and lets the mock VM run the
# write-then-read pattern at widths 1/2/4/8, printing the table. Exit 0 = all matched.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOREIO_BUILD_TESTS=OFF -DCOREIO_BUILD_BENCH=OFF \
      -DCOREIO_BUILD_COSIM=OFF >/dev/null
cmake --build build/demo -j"$(nproc)" --target coreio-mockvm coreio-example-regfile
exec sh scripts/main-job.sh build/demo/mockvm/coreio-mockvm build/demo/examples/coreio-example-regfile
