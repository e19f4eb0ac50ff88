// The CoreIO wire frame: a value type over the first 64-byte block of a frame,
// with one named accessor per field of PROTOCOL.md and one validate() that every
// receiver calls. No I/O, no allocation.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "coreio/export.hpp"

namespace coreio {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian hosts are not supported");

/// Opcodes (w1[7:0]); values are the wire's.
enum class Op : std::uint8_t {
    Ping = 0x00,
    Read = 0x01,          // MMIO read (VM -> client) or DMA read (client -> VM)
    Write = 0x02,         // posted MMIO write
    ReadPair = 0x03,      // pair read
    WritePair = 0x04,     // posted pair write
    WriteAck = 0x05,      // acknowledged MMIO write, or DMA write (client -> VM)
    WriteAckPair = 0x06,  // acknowledged pair write
    IrqUpdate = 0x41,     // client -> VM: w2 = line, w3 = level
    Claim = 0xF0,         // client -> VM: claim range w0[7:0]
    Reset = 0xFF,         // VM -> client: device reset
};

/// True for the opcodes this protocol defines.
constexpr bool is_known_op(std::uint8_t op) {
    return op <= 0x06 || op == 0x41 || op == 0xF0 || op == 0xFF;
}
/// True for READP, WRITEP and WRITEAP.
constexpr bool is_pair_op(Op op) {
    return op == Op::ReadPair || op == Op::WritePair || op == Op::WriteAckPair;
}
/// True for MMIO accesses (the ops a device handler answers).
constexpr bool is_access_op(Op op) {
    return op >= Op::Read && op <= Op::WriteAckPair;
}
/// True when the VM expects the access frame back (reads and acknowledged writes).
constexpr bool access_wants_reply(Op op) {
    return op == Op::Read || op == Op::ReadPair || op == Op::WriteAck || op == Op::WriteAckPair;
}
/// True for reads (data flows towards the requester).
constexpr bool is_read_op(Op op) { return op == Op::Read || op == Op::ReadPair; }
/// Short wire name of an opcode ("READ", "IRQ_UPDATE", ...; "?" if unknown).
COREIO_EXPORT const char* op_name(std::uint8_t op);

inline constexpr std::size_t kBlockSize = 64;          // one frame block
inline constexpr std::size_t kMaxBlocks = 256;         // w0[15:8] + 1 at most
inline constexpr std::size_t kDataOffset = 24;         // data starts at w3
inline constexpr std::size_t kDataBytes = 40;          // w3..w7
inline constexpr std::size_t kMaxAccessSize = 32;      // single access: w3..w6
inline constexpr std::size_t kMaxPairElement = 16;     // each pair element
inline constexpr unsigned kNumRanges = 8;              // rid 0..7
inline constexpr unsigned kNumIrqLines = 8;            // lines per range
inline constexpr unsigned kNumMids = 8;                // IOMMU ids (DMA mid) 0..7
inline constexpr unsigned kNumSids = 16;               // sid is 4 bits
inline constexpr std::uint8_t kAaByte = 0xAA;          // filler of read data

/// Access flags (w1[31:28]).
inline constexpr unsigned kFlagIfetch = 2;
inline constexpr unsigned kFlagPriv = 4;
inline constexpr unsigned kFlagSecure = 8;

/// Why a frame is malformed; Ok when it is not.
enum class FrameError : std::uint8_t {
    Ok = 0,
    UnknownOp,       // opcode not in the table
    BadSize,         // single access size 0 or > 32
    BadPairSize,     // pair element size 0 or > 16
    TooLong,         // declared length over the receiver's limit
    BadIrqLine,      // IRQ_UPDATE line > 7
    BadIrqLevel,     // IRQ_UPDATE level not 0/1
    BadRid,          // CLAIM/IRQ_UPDATE for rid >= 8
    Truncated,       // the stream ended inside a frame
    UnexpectedOp,    // well formed, but not something this end accepts here
};

/// The first 64-byte block of a frame, stored as it travels (little endian).
class COREIO_EXPORT Frame {
public:
    Frame() = default;

    /// Copies the first block of a frame from wire bytes (at least 64).
    static Frame from_bytes(const std::byte* p) {
        Frame f;
        std::memcpy(f.raw_.data(), p, kBlockSize);
        return f;
    }
    /// The 64 wire bytes.
    const std::byte* data() const { return raw_.data(); }
    std::byte* data() { return raw_.data(); }
    std::span<const std::byte, kBlockSize> bytes() const { return std::span<const std::byte, kBlockSize>(raw_); }

    /// Word i (0..7) in host order.
    std::uint64_t word(unsigned i) const {
        std::uint64_t v;
        std::memcpy(&v, raw_.data() + i * 8, 8);
        if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
        return v;
    }
    void set_word(unsigned i, std::uint64_t v) {
        if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
        std::memcpy(raw_.data() + i * 8, &v, 8);
    }

    // w0
    /// Range id (MMIO, IRQ, claim) or IOMMU id (DMA): w0[7:0].
    unsigned rid() const { return static_cast<unsigned>(word(0) & 0xff); }
    unsigned mid() const { return rid(); }
    void set_rid(unsigned v) { set_bits(0, 0, 8, v); }
    /// Extra 64-byte blocks after this one: w0[15:8].
    unsigned extra_blocks() const { return static_cast<unsigned>((word(0) >> 8) & 0xff); }
    void set_extra_blocks(unsigned v) { set_bits(0, 8, 8, v); }
    /// Whole declared length in bytes.
    std::size_t length() const { return (extra_blocks() + 1) * kBlockSize; }
    /// w0[29:16], zero by the protocol (kept, never checked, for interop).
    unsigned reserved() const { return static_cast<unsigned>((word(0) >> 16) & 0x3fff); }
    /// Error bit w0[30]: handler failure / DMA fault.
    bool error() const { return (word(0) >> 30) & 1; }
    void set_error(bool v) { set_bits(0, 30, 1, v); }
    /// Client-originated bit w0[31].
    bool from_client() const { return (word(0) >> 31) & 1; }
    void set_from_client(bool v) { set_bits(0, 31, 1, v); }
    /// Tag w0[63:32]: DMA packet id, or the VM's opaque request tag.
    std::uint32_t tag() const { return static_cast<std::uint32_t>(word(0) >> 32); }
    void set_tag(std::uint32_t v) { set_bits(0, 32, 32, v); }

    // w1
    /// Raw opcode byte (may be unknown); use op() after validate().
    std::uint8_t opcode() const { return static_cast<std::uint8_t>(word(1) & 0xff); }
    Op op() const { return static_cast<Op>(opcode()); }
    void set_op(Op v) { set_bits(1, 0, 8, static_cast<std::uint8_t>(v)); }
    /// Access size in bytes (each element for pair ops): w1[21:16].
    unsigned size() const { return static_cast<unsigned>((word(1) >> 16) & 0x3f); }
    void set_size(unsigned v) { set_bits(1, 16, 6, v); }
    /// IOMMU region id w1[27:24].
    unsigned sid() const { return static_cast<unsigned>((word(1) >> 24) & 0xf); }
    void set_sid(unsigned v) { set_bits(1, 24, 4, v); }
    /// Access flags w1[31:28].
    unsigned flags() const { return static_cast<unsigned>((word(1) >> 28) & 0xf); }
    void set_flags(unsigned v) { set_bits(1, 28, 4, v); }
    /// Byte-enable mask w1[63:32].
    std::uint32_t byte_mask() const { return static_cast<std::uint32_t>(word(1) >> 32); }
    void set_byte_mask(std::uint32_t v) { set_bits(1, 32, 32, v); }

    // w2
    /// Full guest-physical address.
    std::uint64_t address() const { return word(2); }
    void set_address(std::uint64_t v) { set_word(2, v); }
    /// IRQ_UPDATE line index (w2) and level (w3).
    std::uint64_t irq_line() const { return word(2); }
    std::uint64_t irq_level() const { return word(3); }

    /// Data bytes w3..w7 (40 bytes).
    std::byte* payload() { return raw_.data() + kDataOffset; }
    const std::byte* payload() const { return raw_.data() + kDataOffset; }
    /// Byte offset (from w3) of pair element 2 for element size `size`.
    static constexpr std::size_t pair_second_offset(unsigned size) { return (1 + size / 8) * 8; }
    std::byte* pair_second() { return payload() + pair_second_offset(size()); }
    const std::byte* pair_second() const { return payload() + pair_second_offset(size()); }
    /// Fills all 40 data bytes with `b`.
    void fill_payload(std::uint8_t b) { std::memset(payload(), b, kDataBytes); }

    /// Checks every field the opcode uses; `max_blocks` is the receiver's
    /// length limit (1..256). Never reads past the 64-byte block.
    FrameError validate(std::size_t max_blocks = kMaxBlocks) const;

    friend bool operator==(const Frame& a, const Frame& b) { return a.raw_ == b.raw_; }

    // Builders for the frames a client or VM starts.
    static Frame claim(unsigned rid);
    static Frame irq_update(unsigned rid, unsigned line, unsigned level);
    static Frame ping(bool from_client);
    static Frame reset();
    /// A VM's MMIO request (data filled with 0xAA; for writes, copy data after).
    static Frame mmio_request(Op op, unsigned rid, std::uint64_t addr, unsigned size, unsigned flags,
                              std::uint32_t tag);
    /// A client's DMA chunk request (read data 0xAA; for writes, copy data after).
    static Frame dma_request(Op op, unsigned mid, unsigned sid, std::uint64_t addr, unsigned size,
                             unsigned flags, std::uint32_t pid);

private:
    void set_bits(unsigned w, unsigned lo, unsigned width, std::uint64_t v) {
        const std::uint64_t mask = (width == 64 ? ~0ull : ((1ull << width) - 1)) << lo;
        set_word(w, (word(w) & ~mask) | ((v << lo) & mask));
    }

    alignas(8) std::array<std::byte, kBlockSize> raw_{};
};

static_assert(sizeof(Frame) == kBlockSize);
static_assert(Frame::pair_second_offset(16) + 16 <= kDataBytes);
static_assert(Frame::pair_second_offset(7) == 8 && Frame::pair_second_offset(8) == 16);

// ---- What a frame is, and which frame answers which (one rule for every end) ----

/// The exchange a frame belongs to, decided by its opcode and w0[31] (which
/// end started the exchange). A request and its reply have the same exchange.
enum class Exchange : std::uint8_t {
    Mmio,     // VM -> client access (READ..WRITEAP, w0[31] clear) and its reply
    Dma,      // client -> VM chunk (READ or WRITEA, w0[31] set) and its reply
    Ping,     // PING from either end and its echo
    Reset,    // VM -> client RESET (no reply)
    Claim,    // client -> VM RGN_CLAIM (no reply)
    Irq,      // client -> VM IRQ_UPDATE (no reply)
    Invalid,  // an opcode this direction bit does not allow (e.g. CLAIM with w0[31] clear)
};

/// The exchange of a frame (opcode not checked for being known: unknown ones are Invalid).
constexpr Exchange exchange_of(Op op, bool from_client) {
    switch (op) {
    case Op::Ping: return Exchange::Ping;
    case Op::Read:
    case Op::WriteAck: return from_client ? Exchange::Dma : Exchange::Mmio;
    case Op::Write:
    case Op::ReadPair:
    case Op::WritePair:
    case Op::WriteAckPair: return from_client ? Exchange::Invalid : Exchange::Mmio;
    case Op::Reset: return from_client ? Exchange::Invalid : Exchange::Reset;
    case Op::Claim: return from_client ? Exchange::Claim : Exchange::Invalid;
    case Op::IrqUpdate: return from_client ? Exchange::Irq : Exchange::Invalid;
    }
    return Exchange::Invalid;
}
inline Exchange exchange_of(const Frame& f) { return exchange_of(static_cast<Op>(f.opcode()), f.from_client()); }

/// True when the end that starts this exchange waits for the frame to come
/// back: reads, acknowledged writes, DMA chunks, PINGs. Posted writes, RESET,
/// claims and IRQ updates are one-way.
constexpr bool expects_reply(Op op, bool from_client) {
    switch (exchange_of(op, from_client)) {
    case Exchange::Mmio: return access_wants_reply(op);
    case Exchange::Dma:
    case Exchange::Ping: return true;
    default: return false;
    }
}
inline bool expects_reply(const Frame& f) { return expects_reply(static_cast<Op>(f.opcode()), f.from_client()); }

/// True when `f` was sent by the end that started its exchange (a request or
/// a one-way frame), false when it is the answer; `sender_is_client` says who
/// sent it.
constexpr bool is_request_from(bool from_client_bit, bool sender_is_client) { return from_client_bit == sender_is_client; }

/// The fields a reply echoes from its request: w0 without the error bit (the
/// answer's verdict) and the length byte (a receiver consumes extra blocks),
/// w1 (opcode, size, flags, mask) and w2 (address). Tables of pending requests
/// are keyed by it.
struct ReplyKey {
    std::uint64_t w0 = 0, w1 = 0, w2 = 0;
    friend bool operator==(const ReplyKey&, const ReplyKey&) = default;
};
inline constexpr std::uint64_t kReplyKeyMask0 = ~((std::uint64_t{1} << 30) | 0xff00ull);
inline ReplyKey reply_key(const Frame& f) { return {f.word(0) & kReplyKeyMask0, f.word(1), f.word(2)}; }
/// True when `reply` answers `request` (PROTOCOL.md: replies echo tag, w1 and w2).
inline bool is_reply_to(const Frame& request, const Frame& reply) { return reply_key(request) == reply_key(reply); }

/// Byte-enable mask of a write of `size` bytes (pair ops: both elements' bytes).
COREIO_EXPORT std::uint32_t write_mask(Op op, unsigned size);

/// Human text for a frame error, naming the field and its value,
/// e.g. "unknown opcode 0x13" or "size 40 > 32 in READ".
COREIO_EXPORT std::string describe_error(FrameError e, const Frame& f, std::size_t max_blocks = kMaxBlocks);
/// Short name of an error ("unknown-op", ...).
COREIO_EXPORT const char* error_name(FrameError e);
/// One readable line describing a frame (for logs and dumps).
COREIO_EXPORT std::string describe(const Frame& f);

/// Incremental frame splitter over a byte stream: feed bytes, get whole frames.
/// Keeps at most one partial frame (<= 16 KiB), so a stream of any length and any
/// chunking yields the same frames. Extra blocks beyond the first are consumed and
/// dropped (PROTOCOL.md: receivers consume the whole declared length).
class FrameReader {
public:
    explicit FrameReader(std::size_t max_blocks = kMaxBlocks) : max_blocks_(max_blocks) {}

    /// Consumes bytes from `in`, calling `on_frame(const Frame&)` for each complete
    /// frame and `on_error(FrameError, const Frame&)` for a declared length over the
    /// limit (the stream is then unusable: returns false). Returns true otherwise.
    template <class OnFrame, class OnError>
    bool feed(std::span<const std::byte> in, OnFrame&& on_frame, OnError&& on_error);

    /// True when bytes of an incomplete frame are held (the stream ended mid-frame
    /// if the peer closes now).
    bool mid_frame() const { return have_ > 0 || skip_ > 0; }
    std::size_t max_blocks() const { return max_blocks_; }
    void set_max_blocks(std::size_t n) { max_blocks_ = n; }
    /// Forgets any partial frame (for a new connection).
    void reset() { have_ = 0; skip_ = 0; }

private:
    std::size_t max_blocks_;
    std::size_t have_ = 0;   // bytes of the current first block held in head_
    std::size_t skip_ = 0;   // bytes of extra blocks still to drop
    Frame head_;
};

template <class OnFrame, class OnError>
bool FrameReader::feed(std::span<const std::byte> in, OnFrame&& on_frame, OnError&& on_error) {
    const std::byte* p = in.data();
    std::size_t n = in.size();
    while (n > 0) {
        if (skip_ > 0) {
            const std::size_t k = n < skip_ ? n : skip_;
            p += k;
            n -= k;
            skip_ -= k;
            continue;
        }
        if (have_ == 0 && n >= kBlockSize) {
            // Fast path: a whole first block is in the input; copy it once.
            const Frame f = Frame::from_bytes(p);
            if (f.extra_blocks() + 1 > max_blocks_) {
                on_error(FrameError::TooLong, f);
                return false;
            }
            skip_ = f.length() - kBlockSize;
            p += kBlockSize;
            n -= kBlockSize;
            on_frame(f);
            continue;
        }
        const std::size_t k = (kBlockSize - have_) < n ? (kBlockSize - have_) : n;
        std::memcpy(head_.data() + have_, p, k);
        have_ += k;
        p += k;
        n -= k;
        if (have_ == kBlockSize) {
            have_ = 0;
            if (head_.extra_blocks() + 1 > max_blocks_) {
                on_error(FrameError::TooLong, head_);
                return false;
            }
            skip_ = head_.length() - kBlockSize;
            on_frame(head_);
        }
    }
    return true;
}

}  // namespace coreio
