// libFuzzer: arbitrary bytes as a trace file through TraceReader (preamble,
// header, batch checksums, records) and every record it returns through the
// formatters. Input: one control byte, then the file. The batch checksum
// would stop most mutations at the first batch, so when the control byte is
// odd every well-formed batch checksum is recomputed first, letting the fuzzer
// reach the record decoder. Seeds: fuzz/corpus/trace_reader (the golden
// traces behind a control byte 0x01).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec.hpp"
#include "coreio/trace/reader.hpp"
#include "crc32c.hpp"

namespace {

using namespace coreio::trace;

// Recomputes the checksum of every batch that follows the header (as far as
// the layout holds), so that mutated records still get past the check.
void reseal(std::vector<std::uint8_t>& b) {
    std::size_t pos = sizeof(detail::kPreamble) + 1;  // format version 1 is one byte
    if (b.size() < pos + 2 || b[pos] != detail::kHeaderTag) return;
    std::uint64_t n = 0;
    const std::size_t k = detail::get_varint(b.data() + pos + 1, b.data() + b.size(), &n);
    if (k == 0 || k == SIZE_MAX || n > b.size()) return;
    pos += 1 + k + static_cast<std::size_t>(n);
    if (pos > b.size()) return;
    std::uint32_t crc = detail::crc32c_extend(0, b.data(), pos);
    while (pos + detail::kBatchHeadBytes <= b.size()) {
        std::uint32_t size = 0, old = 0;
        std::size_t bad = 0;
        if (detail::get_batch_head(b.data() + pos, size, old, &bad) != nullptr) return;
        if (pos + detail::kBatchHeadBytes + size > b.size()) return;
        crc = detail::crc32c_extend(crc, b.data() + pos + detail::kBatchHeadBytes, size);
        detail::put_batch_head(b.data() + pos, size, crc);
        pos += detail::kBatchHeadBytes + size;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::vector<std::uint8_t> input(data + 1, data + size);
    if (data[0] & 1) reseal(input);
    TraceReader reader;
    if (!reader.open_memory(std::as_bytes(std::span(input))).empty()) return 0;
    (void)reader.header();
    Event ev;
    for (int i = 0; i < 100000; ++i) {
        const ReadStatus st = reader.next(ev);
        if (st != ReadStatus::Record) {
            (void)reader.message();
            if (reader.next(ev) != st) __builtin_trap();  // the end is sticky
            break;
        }
        (void)format_event(ev);
        (void)event_json(ev);
    }
    return 0;
}
