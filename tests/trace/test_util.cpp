#include "test_util.hpp"

#include "codec.hpp"
#include "crc32c.hpp"

namespace trace_test {

std::vector<std::byte> append_batch(std::vector<std::byte> file, std::span<const std::byte> payload) {
    // The running checksum covers every byte but the checksums themselves.
    std::uint32_t crc = 0;
    std::size_t from = 0;
    for (const BatchSpan& b : batches_of(file)) {
        crc = coreio::trace::detail::crc32c_extend(crc, file.data() + from, b.start - from);
        from = b.start + coreio::trace::detail::kBatchHeadBytes;
    }
    crc = coreio::trace::detail::crc32c_extend(crc, file.data() + from, file.size() - from);
    crc = coreio::trace::detail::crc32c_extend(crc, payload.data(), payload.size());
    std::uint8_t head[coreio::trace::detail::kBatchHeadBytes];
    coreio::trace::detail::put_batch_head(head, static_cast<std::uint32_t>(payload.size()), crc);
    for (std::uint8_t b : head) file.push_back(static_cast<std::byte>(b));
    file.insert(file.end(), payload.begin(), payload.end());
    return file;
}

}  // namespace trace_test
