// The coreio-trace command (dump, stats, diff, export, cat, slice) as a
// library, so tests and other tools can run it in-process, plus its converters.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "coreio/trace/reader.hpp"

namespace coreio::recorder {

/// Exit codes of coreio-trace.
inline constexpr int kExitOk = 0;         // done (diff: the traces are the same)
inline constexpr int kExitDiffer = 1;     // diff: the traces differ
inline constexpr int kExitError = 2;      // bad arguments, unreadable or corrupt file

/// Runs coreio-trace with `argv[1..]`; returns one of the exit codes above.
int trace_tool_main(int argc, char** argv);

/// Writes every remaining record of `reader` as a VCD file (GTKWave): per range,
/// rd/wr/err strobes and addr/data vectors; per IRQ line a wire; DMA per mid
/// likewise. Returns an empty string or what went wrong (with the byte offset).
std::string export_vcd(trace::TraceReader& reader, std::FILE* out);
/// Writes every remaining record as a Chrome/Perfetto JSON timeline: MMIO and
/// DMA transactions as slices (one track per range / mid), IRQ lines as
/// counters, other events as instants.
std::string export_perfetto(trace::TraceReader& reader, std::FILE* out);

/// Parses a time: plain nanoseconds ("1500") or a number with a unit
/// ("1.5us", "2ms", "3s", "250ns"). False when malformed or negative.
bool parse_time_ns(std::string_view text, std::uint64_t& ns);

}  // namespace coreio::recorder
