// Trace -> pcap: every frame of a trace as synthetic TCP/IPv4 traffic, so any
// trace, however it was recorded, opens in Wireshark (wireshark/coreio.lua).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

#include "coreio/trace/reader.hpp"

namespace coreio::recorder {

struct PcapOptions {
    /// 0: one TCP segment per CoreIO frame. N > 0: the bytes one side of a
    /// connection sends in a row are cut into segments of N bytes (the rest is
    /// sent when the other side speaks or the trace ends), so frames split
    /// across segments (N < 64) or share one (N > 64). For testing dissectors.
    std::size_t segment_bytes = 0;
};

/// Writes every remaining record of `reader` as a classic pcap file
/// (nanosecond timestamps, Ethernet): per client a main and a DMA connection
/// between the VM endpoint of the header's target (127.0.0.1:4800 when not an
/// IPv4 literal) and synthetic client ports from 40000 up; handshake, FIN and
/// consistent sequence/ack numbers; recorded timestamps (created_unix_ns +
/// time). Frames come from the recorded raw bytes where the trace has them,
/// otherwise they are rebuilt from the event fields. Returns an empty string
/// or what went wrong.
std::string export_pcap(trace::TraceReader& reader, std::FILE* out, const PcapOptions& options = {});

}  // namespace coreio::recorder
