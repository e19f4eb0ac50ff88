#!/bin/sh
# Runs the same firmware against the same device RUNS times with --record and
# checks every trace is byte-identical to the first (guest time, not host time).
# Usage: determinism.sh RUNS RUN-FIRMWARE.SH VM FIRMWARE DEVICE [DEVICE ARGS...]
set -eu
runs=$1
runner=$2
vm=$3
firmware=$4
shift 4
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
i=1
while [ "$i" -le "$runs" ]; do
  sh "$runner" 0 "$vm" --guest "$firmware" --record "$dir/run$i.ctrace" -- "$@" >"$dir/out$i.txt" 2>&1 ||
    { cat "$dir/out$i.txt"; echo "run $i failed" >&2; exit 1; }
  if [ "$i" -gt 1 ]; then
    cmp "$dir/run1.ctrace" "$dir/run$i.ctrace" || { echo "run $i's trace differs from run 1's" >&2; exit 1; }
  fi
  i=$((i + 1))
done
echo "$runs of $runs traces byte-identical ($(wc -c <"$dir/run1.ctrace") bytes)"
