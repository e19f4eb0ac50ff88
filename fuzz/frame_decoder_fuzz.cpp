// libFuzzer: arbitrary bytes through FrameReader (split at fuzzer-chosen points)
// and every decoded frame through validate(), describe_error() and describe().
#include <cstddef>
#include <cstdint>
#include <span>

#include "coreio/frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t max_blocks = 1 + data[0] % coreio::kMaxBlocks;
    const std::size_t step = 1 + data[1] % 97;
    data += 2;
    size -= 2;
    coreio::FrameReader reader(max_blocks);
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    std::size_t frames = 0;
    for (std::size_t off = 0; off < size; off += step) {
        const std::size_t n = step < size - off ? step : size - off;
        const bool ok = reader.feed(
            std::span<const std::byte>(bytes + off, n),
            [&](const coreio::Frame& f) {
                ++frames;
                const coreio::FrameError e = f.validate(max_blocks);
                (void)coreio::describe_error(e, f, max_blocks);
                (void)coreio::describe(f);
                (void)coreio::write_mask(f.op(), f.size());
            },
            [&](coreio::FrameError e, const coreio::Frame& f) { (void)coreio::describe_error(e, f, max_blocks); });
        if (!ok) break;
    }
    (void)frames;
    return 0;
}
