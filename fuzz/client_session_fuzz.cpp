// libFuzzer: arbitrary VM bytes into a ClientSession with a registered handler,
// split across the two channels, interleaved with DMA starts and consumes.
// Input: a sequence of records [cmd][len][len bytes...].
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "coreio/client_session.hpp"

namespace {

class Device : public coreio::MmioHandler {
public:
    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned) override {
        if (len > coreio::kMaxAccessSize) __builtin_trap();
        std::memset(buf, static_cast<int>(addr), len);
        return addr & 1;
    }
    int write(std::uint64_t, std::size_t len, const void* buf, unsigned) override {
        if (len > coreio::kMaxAccessSize) __builtin_trap();
        volatile std::uint8_t sink = 0;
        for (std::size_t i = 0; i < len; ++i) sink = static_cast<std::uint8_t>(sink + static_cast<const std::uint8_t*>(buf)[i]);
        return 0;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    coreio::ClientSession s(coreio::SessionOptions{[](std::string_view) {}, 4, nullptr});
    Device dev;
    s.claim(0, dev);
    s.claim(3, dev);
    std::vector<std::uint8_t> dma_buf(4096);
    std::size_t completions = 0;
    std::size_t i = 0;
    while (i + 2 <= size) {
        const std::uint8_t cmd = data[i];
        const std::size_t len = data[i + 1];
        i += 2;
        const std::size_t n = len < size - i ? len : size - i;
        const auto* p = reinterpret_cast<const std::byte*>(data + i);
        switch (cmd % 8) {
        case 0:
        case 1:
        case 2:
            s.receive(coreio::Channel::Main, std::span<const std::byte>(p, n));
            break;
        case 3:
        case 4:
            s.receive(coreio::Channel::Dma, std::span<const std::byte>(p, n));
            break;
        case 5: {  // start a DMA: address/length from the record
            const std::uint64_t addr = n > 0 ? data[i] * 7u : 0;
            const std::size_t l = 1 + (len * 13) % dma_buf.size();
            const coreio::Op op = (cmd & 8) ? coreio::Op::WriteAck : coreio::Op::Read;
            s.dma_start(op, cmd >> 4, cmd & 15, addr, reinterpret_cast<std::byte*>(dma_buf.data()),
                        l, 0, [&](int) { ++completions; });
            break;
        }
        case 6: {  // answer what the client sent on DMA, reflected (valid replies)
            const auto out = s.pending(coreio::Channel::Dma);
            std::vector<std::byte> echo(out.begin(), out.end());
            s.consume(coreio::Channel::Dma, out.size());
            for (std::size_t k = 0; k + 64 <= echo.size(); k += 64)
                if ((cmd >> 3) & 1) echo[k + 3] |= std::byte{0x40};  // fault some
            s.receive(coreio::Channel::Dma, echo);
            break;
        }
        default:
            s.consume(coreio::Channel::Main, len * 64);
            break;
        }
        i += n;
    }
    s.connection_closed(coreio::Channel::Main);
    s.connection_closed(coreio::Channel::Dma);
    if (s.dma_transfers() != 0) __builtin_trap();  // every transfer completed
    (void)completions;
    return 0;
}
