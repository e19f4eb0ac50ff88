#!/bin/sh
# Runs one ctest test made by coreio_add_replay_test / coreio_add_script_test
# (CoreioTesting.cmake). Installed next to it; POSIX sh only.
#
#   coreio_run_test.sh replay COREIO_REPLAY TRACE OUT_DIR [replay flags...] -- DEVICE [ARGS...]
#     coreio-replay plays TRACE to DEVICE (started with COREHDL_VM set) and
#     writes what happened to OUT_DIR/replay.ctrace.
#   coreio_run_test.sh script COREIO_MOCKVM SCRIPT OUT_DIR [mockvm flags...] -- DEVICE [ARGS...]
#     the mock VM runs SCRIPT against DEVICE and records OUT_DIR/vm.ctrace.
#
# Exit status: the tool's (0 pass, 1 divergence / failed expectation, 2 error).
# On a failure the first divergence is repeated on a line of its own, with the
# trace to compare.
set -u

mode=$1 tool=$2 input=$3 out=$4
shift 4
flags=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    flags="$flags $(printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")")"
    shift
done
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
    echo "coreio_run_test.sh: no device command" >&2
    exit 2
fi
mkdir -p "$out" || exit 2

# The device command as one shell string (each word quoted).
device=""
for word in "$@"; do
    device="$device $(printf "'%s'" "$(printf '%s' "$word" | sed "s/'/'\\\\''/g")")"
done

if [ "$mode" = replay ]; then
    rm -f "$out/replay.ctrace"
    eval "\"\$tool\" device \"\$input\" --run \"\$device\" --record \"\$out/replay.ctrace\" $flags" >"$out/output.txt" 2>&1
    rc=$?
    cat "$out/output.txt"
    if [ $rc -ne 0 ]; then
        first=$(grep -m1 '^  record ' "$out/output.txt" | sed 's/^  //')
        [ -n "$first" ] && echo "coreio: first divergence: $first"
        if [ -f "$out/replay.ctrace" ]; then
            echo "coreio: replay of $input failed (exit $rc); what the device did: $out/replay.ctrace"
            echo "coreio: compare with: coreio-trace diff $input $out/replay.ctrace"
        else
            echo "coreio: replay of $input failed (exit $rc) before the device did anything (no trace written)"
        fi
    fi
    exit $rc
fi

if [ "$mode" != script ]; then
    echo "coreio_run_test.sh: unknown mode '$mode' (replay or script)" >&2
    exit 2
fi
rm -f "$out/vm.ctrace" "$out/mockvm.log"
eval "exec \"\$tool\" --port 0 --script \"\$input\" --record \"\$out/vm.ctrace\" $flags" >"$out/mockvm.log" 2>&1 &
vm=$!
# The mock VM prints "listening on 127.0.0.1:PORT" first; wait for it (at most 30 s).
port=""
tries=0
while [ -z "$port" ] && [ $tries -lt 300 ] && kill -0 $vm 2>/dev/null; do
    port=$(sed -n 's/^listening on [0-9.]*:\([0-9]*\).*/\1/p' "$out/mockvm.log" | head -n 1)
    [ -z "$port" ] && sleep 0.1
    tries=$((tries + 1))
done
if [ -z "$port" ]; then
    kill $vm 2>/dev/null
    wait $vm
    cat "$out/mockvm.log"
    echo "coreio: the mock VM did not start listening" >&2
    exit 2
fi
COREHDL_VM=127.0.0.1:$port
export COREHDL_VM
eval "exec $device" >"$out/device.log" 2>&1 &
dev=$!
wait $vm
rc=$?
# The device normally ends when the VM closes; give it a moment, then stop it.
tries=0
while kill -0 $dev 2>/dev/null && [ $tries -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
kill $dev 2>/dev/null
wait $dev 2>/dev/null
cat "$out/mockvm.log"
if [ $rc -ne 0 ]; then
    echo "--- device output ($out/device.log):"
    cat "$out/device.log"
    first=$(grep -m1 -E '^(FAIL|ERR) ' "$out/mockvm.log")
    [ -n "$first" ] && echo "coreio: first divergence: $first"
    if [ -f "$out/vm.ctrace" ]; then
        echo "coreio: script $input failed (exit $rc); what happened: $out/vm.ctrace (coreio-trace dump)"
    else
        echo "coreio: script $input failed (exit $rc) before the device did anything (no trace written)"
    fi
fi
exit $rc
