#!/bin/sh
# Runs firmware in coreio-mockvm against one device model over 127.0.0.1 TCP.
# Usage: run-firmware.sh EXPECTED_STATUS COREIO-MOCKVM [VM ARGS...] -- DEVICE [DEVICE ARGS...]
#   e.g. run-firmware.sh 0 coreio-mockvm --guest regfile.elf -- coreio-example-regfile
# The VM gets --port 0 --wait-ms 20000 added; the device gets 127.0.0.1:PORT as
# its first argument. Exits 0 when the VM's exit status is EXPECTED_STATUS (and,
# if EXPECT_LINE is set, the VM printed a line starting with it).
set -eu
expected=$1
shift
vm=$1
shift
vm_args=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  vm_args="$vm_args $1"   # no spaces in these arguments
  shift
done
[ $# -gt 1 ] || { echo "usage: $0 EXPECTED_STATUS VM [VM ARGS...] -- DEVICE [DEVICE ARGS...]" >&2; exit 2; }
shift
device=$1
shift
out=$(mktemp)
dev_pid=""
trap 'rm -f "$out"; [ -z "$dev_pid" ] || kill "$dev_pid" 2>/dev/null || true' EXIT
# shellcheck disable=SC2086
"$vm" --port 0 --wait-ms 20000 $vm_args >"$out" 2>&1 &
vm_pid=$!
i=0
port=""
while [ $i -lt 200 ] && [ -z "$port" ]; do   # at most 20 s
  port=$(sed -n 's/^listening on [0-9.]*:\([0-9][0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] || sleep 0.1
  i=$((i + 1))
done
[ -n "$port" ] || { cat "$out"; echo "mock VM did not print its port" >&2; exit 1; }
"$device" "127.0.0.1:$port" "$@" >/dev/null 2>&1 &
dev_pid=$!
status=0
wait "$vm_pid" || status=$?
cat "$out"
[ "$status" -eq "$expected" ] || { echo "mock VM exited $status, expected $expected" >&2; exit 1; }
if [ -n "${EXPECT_LINE:-}" ]; then
  grep -q "^$EXPECT_LINE" "$out" || { echo "no line starting with: $EXPECT_LINE" >&2; exit 1; }
fi
