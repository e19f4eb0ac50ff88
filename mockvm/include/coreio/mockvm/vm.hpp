// coreio::mockvm::Vm: a mock VM that CoreIO clients connect to over TCP, with a
// blocking, thread-safe driver API (MMIO reads/writes, ping, reset, IRQ levels)
// and sparse guest memory that serves the clients' DMA.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coreio/client.hpp"
#include "coreio/frame.hpp"
#include "coreio/mockvm/guest_memory.hpp"

namespace coreio::mockvm {

/// One MMIO range; ranges are numbered (rid) in the order configured.
struct RangeConfig {
    std::uint64_t base = 0;  // guest-physical base, 4 KiB aligned
    std::uint64_t size = 0;  // bytes, a non-zero multiple of 4 KiB
};

struct VmConfig {
    /// Address to listen on (the default keeps the VM local to this machine).
    std::string listen = "127.0.0.1";
    /// TCP port; 0 picks a free one (see Vm::port()).
    std::uint16_t port = 0;
    /// MMIO ranges, rid = index (at most 8).
    std::vector<RangeConfig> ranges;
    /// Guest memory regions served to DMA.
    std::vector<MemoryRegionConfig> memory;
    /// One line per protocol error or notable event; default: stderr.
    LogFunction log;
    /// Observes every frame on every client connection (not owned; calls are serialised;
    /// a received frame with extra blocks is shown as its first 64-byte block).
    FrameTap* tap = nullptr;
    /// Default timeout of every blocking driver call.
    std::chrono::milliseconds timeout{5000};
    /// Log every client connect/claim/disconnect, not only errors.
    bool verbose = false;
};

/// Totals over all clients since the Vm started.
struct VmCounters {
    std::uint64_t clients_accepted = 0;  // client main connections accepted
    std::uint64_t frames_in = 0;         // frames received from clients
    std::uint64_t frames_out = 0;        // frames sent to clients
    std::uint64_t dma_chunks = 0;        // DMA chunk requests served
    std::uint64_t dma_faults = 0;        // DMA chunks answered with the error bit
    std::uint64_t protocol_errors = 0;   // malformed or unexpected frames (incl. unmatched replies)
    std::uint64_t unclaimed_accesses = 0;  // driver accesses completed by the VM itself (0xAA / dropped)
};

/// A read's outcome: status 0 and the value, or a negative errno.
struct ReadResult {
    int status = 0;            // 0, -EIO (bus error), -ETIMEDOUT, -ECONNRESET, -EINVAL
    std::uint64_t value = 0;   // the little-endian value read (valid when status == 0)
    bool ok() const { return status == 0; }
    explicit operator bool() const { return ok(); }
};

/// The mock VM. Construction binds the listening socket and starts a background
/// I/O thread; destruction closes every connection and joins it.
///
/// Driver calls are blocking and thread-safe; each waits at most the configured
/// timeout. Addresses are full guest-physical addresses; the Vm maps them to a
/// range by the configuration. Accesses to a range no client has claimed
/// complete at once, as on a real VM: reads return 0xAA bytes, writes are dropped.
/// Return values are 0 or a negative errno:
///   -EINVAL      address/size not inside one configured range, or bad size
///   -EIO         the device answered with the error bit (bus error)
///   -ETIMEDOUT   no reply within the timeout
///   -ECONNRESET  the claiming client disconnected before replying
class Vm {
public:
    /// Validates the config (throws std::invalid_argument naming the bad item),
    /// binds and listens (throws std::system_error on failure), starts serving.
    explicit Vm(VmConfig config);
    ~Vm();
    Vm(const Vm&) = delete;
    Vm& operator=(const Vm&) = delete;

    /// The TCP port actually listened on (useful with port 0).
    std::uint16_t port() const;
    /// "ADDR:PORT" a client can connect to.
    std::string endpoint() const;
    const VmConfig& config() const;
    /// The range id holding [addr, addr + size), or -1.
    int range_of(std::uint64_t addr, std::uint64_t size = 1) const;

    /// Waits until at least one client is connected; false on timeout.
    bool wait_for_client(std::chrono::milliseconds timeout);
    /// Waits until a client has claimed range rid; false on timeout.
    bool wait_for_claim(unsigned rid, std::chrono::milliseconds timeout);
    /// True while a connected client holds range rid.
    bool claimed(unsigned rid) const;
    /// Number of connected clients.
    std::size_t client_count() const;

    /// MMIO read of `size` bytes (1..32) at addr into out. flags: COREIO_FLAGS_*.
    int read(std::uint64_t addr, unsigned size, void* out, unsigned flags = 0);
    /// MMIO write of `size` bytes (1..32); posted (returns once sent) unless
    /// `acknowledged` (waits for the device's reply; -EIO on a bus error).
    int write(std::uint64_t addr, unsigned size, const void* in, bool acknowledged = false, unsigned flags = 0);
    /// Pair read: two elements of `size` bytes (1..16) at addr and addr + size.
    int read_pair(std::uint64_t addr, unsigned size, void* out1, void* out2, unsigned flags = 0);
    /// Pair write: in1 at addr, in2 at addr + size; posted unless acknowledged.
    int write_pair(std::uint64_t addr, unsigned size, const void* in1, const void* in2, bool acknowledged = false,
                   unsigned flags = 0);

    /// Little-endian reads of 1, 2, 4 and 8 bytes.
    ReadResult readb(std::uint64_t addr) { return read_value(addr, 1); }
    ReadResult readw(std::uint64_t addr) { return read_value(addr, 2); }
    ReadResult readl(std::uint64_t addr) { return read_value(addr, 4); }
    ReadResult readq(std::uint64_t addr) { return read_value(addr, 8); }
    /// Little-endian read of size 1..8 bytes.
    ReadResult read_value(std::uint64_t addr, unsigned size, unsigned flags = 0);
    /// Little-endian writes of 1, 2, 4 and 8 bytes (value truncated to the width).
    int writeb(std::uint64_t addr, std::uint64_t v, bool ack = false) { return write_value(addr, 1, v, ack); }
    int writew(std::uint64_t addr, std::uint64_t v, bool ack = false) { return write_value(addr, 2, v, ack); }
    int writel(std::uint64_t addr, std::uint64_t v, bool ack = false) { return write_value(addr, 4, v, ack); }
    int writeq(std::uint64_t addr, std::uint64_t v, bool ack = false) { return write_value(addr, 8, v, ack); }
    int write_value(std::uint64_t addr, unsigned size, std::uint64_t value, bool acknowledged = false,
                    unsigned flags = 0);

    /// Pipelined reads of `size` bytes (1..8) at each of addrs into out (same
    /// length), keeping up to `window` requests outstanding and sending each
    /// refill in one write. All addresses must lie in one range. Returns 0 or
    /// the first error (then the other values are unspecified).
    int read_many(std::span<const std::uint64_t> addrs, unsigned size, std::span<std::uint64_t> out,
                  unsigned window = 64, unsigned flags = 0);
    /// Pipelined writes of values[i] (size 1..8) at addrs[i]. Posted writes go
    /// out `window` frames per send; acknowledged ones keep `window` outstanding.
    int write_many(std::span<const std::uint64_t> addrs, unsigned size, std::span<const std::uint64_t> values,
                   bool acknowledged, unsigned window = 64, unsigned flags = 0);

    /// Pings every connected client over its main connection and waits for the
    /// echoes. Returns 0, -ENOTCONN (no client), -ETIMEDOUT or -ECONNRESET.
    int ping();
    /// Sends RESET to every connected client (no reply is expected).
    void reset();

    /// Current level of IRQ line `line` (0..7) of range rid (0..7).
    bool irq_level(unsigned rid, unsigned line) const;
    /// All 8 lines of range rid at once: bit i = level of line i.
    std::uint8_t irq_lines(unsigned rid) const;
    /// Waits until that line is at `level`; false on timeout.
    bool wait_irq(unsigned rid, unsigned line, bool level, std::chrono::milliseconds timeout);
    /// Number of 0 -> 1 transitions seen on that line.
    std::uint64_t irq_edges(unsigned rid, unsigned line) const;
    /// Number of 1 -> 0 transitions seen on that line.
    std::uint64_t irq_falling_edges(unsigned rid, unsigned line) const;

    /// The kinds of edge irq_wait_edge() waits for.
    enum class IrqEdge : std::uint8_t { Rising, Falling };
    /// Rising edges on that line since the start or the last irq_clear().
    std::uint64_t irq_count(unsigned rid, unsigned line) const;
    /// Restarts irq_count() of that line at 0 and forgets its edges not yet
    /// waited for (irq_wait_edge() then waits for a new one).
    void irq_clear(unsigned rid, unsigned line);
    /// Latched edge wait, so that no pulse is missed however short: true at
    /// once if such an edge happened on that line since the last successful
    /// irq_wait_edge() for this kind of edge (or irq_clear(), or the start),
    /// else waits for one; false on timeout. Success marks every edge seen so
    /// far as checked.
    bool irq_wait_edge(unsigned rid, unsigned line, IrqEdge edge, std::chrono::milliseconds timeout);
    /// Waits until pred() holds, checking it again after every VM event
    /// (client connect, claim, IRQ change, disconnect); false on timeout.
    bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

    /// Guest memory (serves DMA; readable and writable from any thread).
    GuestMemory& memory();

    /// Closes every client connection now (e.g. to test a VM vanishing
    /// mid-transfer). Waits until they are closed. Later clients may connect.
    void drop_clients();

    VmCounters counters() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
    /// Edge counts at the last irq_clear() and the last successful irq_wait_edge(), per range and line.
    struct IrqMarks {
        std::array<std::array<std::atomic<std::uint64_t>, kNumIrqLines>, kNumRanges> cleared{}, rising{}, falling{};
    };
    IrqMarks irq_marks_;
};

}  // namespace coreio::mockvm
