#!/bin/sh
# Installs libcoreio into a temp prefix (outside the system library paths) and
# builds programs against it the ways the README gives, then runs them with no
# LD_LIBRARY_PATH:
#   - find_package(coreio): C++ (shared, static) and C consumers;
#   - pkg-config libcoreio alone (its Libs carry the rpath), and with an explicit rpath;
#   - pkg-config --static libcoreio-static (libcoreio.a) with a plain C compiler;
#   - with the trace library installed too: COREIO_TRACE=FILE records from a
#     program that found libcoreio through its rpath, and the header names the target.
# Usage: install_test.sh <libcoreio build dir> <tests/libcoreio source dir> <work dir> <c compiler>
#                        [<recorder build dir> <coreio-trace executable>]
set -eu
build=$1 src=$2 work=$3 cc=$4 recorder=${5:-} trace_tool=${6:-}
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name libcoreio.pc | head -n1)")/..
unset LD_LIBRARY_PATH
fail() { echo "install_test: $*" >&2; exit 1; }

cmake -S "$src/find-package" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_cxx"
"$work/consumer/consumer_static"
"$work/consumer/consumer_c"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
# Shared, with nothing but what pkg-config gives: libcoreio.pc carries the
# rpath, so a program built this way starts outside the system library paths.
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/prog_plain" "$src/c_api_compile.c" $(pkg-config --cflags --libs libcoreio)
"$work/prog_plain" || fail "a program linked with \$(pkg-config --cflags --libs libcoreio) alone does not start"
# Shared with an rpath of its own as well (as builds written for earlier versions give it).
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Wextra -Werror -o "$work/prog" "$src/c_api_compile.c" $(pkg-config --cflags --libs libcoreio) \
    "-Wl,-rpath,$(pkg-config --variable=libdir libcoreio)"
"$work/prog"
# Static: libcoreio.a and the C++ runtime, linked by the C compiler; no libcoreio.so needed.
# shellcheck disable=SC2046
"$cc" -std=c99 -o "$work/prog_static" "$src/c_api_compile.c" $(pkg-config --static --cflags --libs libcoreio-static)
if readelf -d "$work/prog_static" | grep -q 'libcoreio\.so'; then fail "prog_static needs libcoreio.so"; fi
"$work/prog_static"

if [ -n "$recorder" ]; then
    cmake --install "$recorder" --prefix "$prefix" >/dev/null
    [ -f "$libdir/libcoreio_trace.so.0" ] || fail "libcoreio_trace.so.0 not installed beside libcoreio"
    # shellcheck disable=SC2046
    "$cc" -std=c99 -Wall -Wextra -Werror -o "$work/trace_probe" "$src/trace_probe.c" \
        $(pkg-config --cflags --libs libcoreio) "-Wl,-rpath,$(pkg-config --variable=libdir libcoreio)"
    target=$(COREIO_TRACE="$work/probe.ctrace" "$work/trace_probe")
    [ -s "$work/probe.ctrace" ] || fail "COREIO_TRACE wrote no trace (trace library not loaded?)"
    header=$("$trace_tool" dump "$work/probe.ctrace" | head -n1)
    case "$header" in
        *"target $target,"*) ;;
        *) fail "trace header does not name the target $target: $header" ;;
    esac
    "$trace_tool" dump "$work/probe.ctrace" | grep -q "IRQ" || fail "the IRQ edge is not in the trace"
    # The same from programs built with nothing but pkg-config's flags: the
    # shared one, and the static one (libcoreio.a dlopen()s the trace library
    # through the program's own rpath, which libcoreio-static.pc gives).
    for pc in libcoreio libcoreio-static; do
        static=""
        [ "$pc" = libcoreio-static ] && static=--static
        # shellcheck disable=SC2046
        "$cc" -std=c99 -o "$work/trace_probe_$pc" "$src/trace_probe.c" $(pkg-config $static --cflags --libs $pc)
        rm -f "$work/probe_$pc.ctrace"
        COREIO_TRACE="$work/probe_$pc.ctrace" "$work/trace_probe_$pc" >/dev/null 2>"$work/probe_$pc.err" ||
            fail "trace_probe built with $pc failed: $(cat "$work/probe_$pc.err")"
        [ -s "$work/probe_$pc.ctrace" ] ||
            fail "COREIO_TRACE recorded nothing from a program built with pkg-config $pc: $(cat "$work/probe_$pc.err")"
    done
fi
echo "install_test: ok"
