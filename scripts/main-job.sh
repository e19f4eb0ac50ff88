#!/bin/sh
# The main job: coreio-mockvm (demo mode, a free 127.0.0.1 port) drives the
# example C device through the write-then-read pattern and prints the table.
# Usage: main-job.sh PATH/TO/coreio-mockvm PATH/TO/coreio-example-regfile
# Exits 0 only when the mock VM exits 0 and every value read back correctly.
set -eu
vm=$1
device=$2
out=$(mktemp)
trap 'rm -f "$out"; kill "$dev_pid" 2>/dev/null || true' EXIT
"$vm" --port 0 --wait-ms 20000 >"$out" 2>&1 &
vm_pid=$!
i=0
port=""
while [ $i -lt 200 ] && [ -z "$port" ]; do   # at most 20 s
  port=$(sed -n 's/^listening on [0-9.]*:\([0-9][0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] || sleep 0.1
  i=$((i + 1))
done
[ -n "$port" ] || { cat "$out"; echo "mock VM did not print its port" >&2; exit 1; }
"$device" "127.0.0.1:$port" &
dev_pid=$!
status=0
wait "$vm_pid" || status=$?
cat "$out"
[ "$status" -eq 0 ] || { echo "mock VM exited $status" >&2; exit 1; }
grep -q "^all 64 values read back correctly" "$out" || { echo "no success line" >&2; exit 1; }
