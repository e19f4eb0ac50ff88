#include "coreio/frame.hpp"

#include <cstdio>

namespace coreio {

const char* op_name(std::uint8_t op) {
    switch (op) {
    case 0x00: return "PING";
    case 0x01: return "READ";
    case 0x02: return "WRITE";
    case 0x03: return "READP";
    case 0x04: return "WRITEP";
    case 0x05: return "WRITEA";
    case 0x06: return "WRITEAP";
    case 0x41: return "IRQ_UPDATE";
    case 0xF0: return "RGN_CLAIM";
    case 0xFF: return "RESET";
    default: return "?";
    }
}

FrameError Frame::validate(std::size_t max_blocks) const {
    if (extra_blocks() + 1 > max_blocks) return FrameError::TooLong;
    if (!is_known_op(opcode())) return FrameError::UnknownOp;
    switch (op()) {
    case Op::Read:
    case Op::Write:
    case Op::WriteAck:
        if (size() == 0 || size() > kMaxAccessSize) return FrameError::BadSize;
        break;
    case Op::ReadPair:
    case Op::WritePair:
    case Op::WriteAckPair:
        if (size() == 0 || size() > kMaxPairElement) return FrameError::BadPairSize;
        break;
    case Op::IrqUpdate:
        if (rid() >= kNumRanges) return FrameError::BadRid;
        if (irq_line() >= kNumIrqLines) return FrameError::BadIrqLine;
        if (irq_level() > 1) return FrameError::BadIrqLevel;
        break;
    case Op::Claim:
        if (rid() >= kNumRanges) return FrameError::BadRid;
        break;
    case Op::Ping:
    case Op::Reset:
        break;
    }
    return FrameError::Ok;
}

const char* error_name(FrameError e) {
    switch (e) {
    case FrameError::Ok: return "ok";
    case FrameError::UnknownOp: return "unknown-op";
    case FrameError::BadSize: return "bad-size";
    case FrameError::BadPairSize: return "bad-pair-size";
    case FrameError::TooLong: return "too-long";
    case FrameError::BadIrqLine: return "bad-irq-line";
    case FrameError::BadIrqLevel: return "bad-irq-level";
    case FrameError::BadRid: return "bad-rid";
    case FrameError::Truncated: return "truncated";
    case FrameError::UnexpectedOp: return "unexpected-op";
    }
    return "?";
}

std::string describe_error(FrameError e, const Frame& f, std::size_t max_blocks) {
    char buf[160];
    switch (e) {
    case FrameError::Ok:
        return "ok";
    case FrameError::UnknownOp:
        std::snprintf(buf, sizeof buf, "unknown opcode 0x%02x (w1[7:0])", f.opcode());
        break;
    case FrameError::BadSize:
        std::snprintf(buf, sizeof buf, "size %u out of range 1..%zu in %s (w1[21:16])", f.size(),
                      kMaxAccessSize, op_name(f.opcode()));
        break;
    case FrameError::BadPairSize:
        std::snprintf(buf, sizeof buf, "pair element size %u out of range 1..%zu in %s (w1[21:16])",
                      f.size(), kMaxPairElement, op_name(f.opcode()));
        break;
    case FrameError::TooLong:
        std::snprintf(buf, sizeof buf, "declared length %zu bytes (w0[15:8]=%u) over the limit of %zu bytes",
                      f.length(), f.extra_blocks(), max_blocks * kBlockSize);
        break;
    case FrameError::BadIrqLine:
        std::snprintf(buf, sizeof buf, "IRQ line %llu out of range 0..7 (w2)",
                      static_cast<unsigned long long>(f.irq_line()));
        break;
    case FrameError::BadIrqLevel:
        std::snprintf(buf, sizeof buf, "IRQ level %llu is not 0 or 1 (w3)",
                      static_cast<unsigned long long>(f.irq_level()));
        break;
    case FrameError::BadRid:
        std::snprintf(buf, sizeof buf, "rid %u out of range 0..7 in %s (w0[7:0])", f.rid(),
                      op_name(f.opcode()));
        break;
    case FrameError::Truncated:
        std::snprintf(buf, sizeof buf, "stream ended inside a frame");
        break;
    case FrameError::UnexpectedOp:
        std::snprintf(buf, sizeof buf, "unexpected %s frame (opcode 0x%02x, w0[31]=%d)", op_name(f.opcode()),
                      f.opcode(), f.from_client() ? 1 : 0);
        break;
    }
    return buf;
}

std::string describe(const Frame& f) {
    char buf[256];
    int n = std::snprintf(buf, sizeof buf, "%s%s%s rid=%u tag=0x%08x size=%u sid=%u flags=0x%x mask=0x%08x addr=0x%llx",
                          op_name(f.opcode()), f.from_client() ? " C" : " V", f.error() ? " ERR" : "", f.rid(),
                          f.tag(), f.size(), f.sid(), f.flags(), f.byte_mask(),
                          static_cast<unsigned long long>(f.address()));
    std::string s(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    s += " data=";
    static const char* hex = "0123456789abcdef";
    for (std::size_t i = 0; i < kDataBytes; ++i) {
        const auto b = static_cast<unsigned>(f.payload()[i]);
        s += hex[b >> 4];
        s += hex[b & 15];
    }
    return s;
}

Frame Frame::claim(unsigned rid) {
    Frame f;
    f.set_rid(rid);
    f.set_from_client(true);
    f.set_op(Op::Claim);
    return f;
}

Frame Frame::irq_update(unsigned rid, unsigned line, unsigned level) {
    Frame f;
    f.set_rid(rid);
    f.set_from_client(true);
    f.set_op(Op::IrqUpdate);
    f.set_word(2, line);
    f.set_word(3, level);
    return f;
}

Frame Frame::ping(bool from_client) {
    Frame f;
    f.set_from_client(from_client);
    f.set_op(Op::Ping);
    return f;
}

Frame Frame::reset() {
    Frame f;
    f.set_op(Op::Reset);
    return f;
}

Frame Frame::mmio_request(Op op, unsigned rid, std::uint64_t addr, unsigned size, unsigned flags,
                          std::uint32_t tag) {
    Frame f;
    f.set_rid(rid);
    f.set_tag(tag);
    f.set_op(op);
    f.set_size(size);
    f.set_flags(flags);
    f.set_address(addr);
    f.fill_payload(kAaByte);
    if (!is_read_op(op)) f.set_byte_mask(write_mask(op, size));
    return f;
}

Frame Frame::dma_request(Op op, unsigned mid, unsigned sid, std::uint64_t addr, unsigned size,
                         unsigned flags, std::uint32_t pid) {
    Frame f;
    f.set_rid(mid);
    f.set_from_client(true);
    f.set_tag(pid);
    f.set_op(op);
    f.set_size(size);
    f.set_sid(sid);
    f.set_flags(flags);
    f.set_address(addr);
    f.fill_payload(kAaByte);
    if (op == Op::WriteAck) f.set_byte_mask(write_mask(op, size));
    return f;
}

std::uint32_t write_mask(Op op, unsigned size) {
    auto bits = [](unsigned n) { return n >= 32 ? 0xffffffffu : ((1u << n) - 1); };
    if (size == 0) return 0;
    if (!is_pair_op(op)) return bits(size);
    // Out-of-range sizes (unvalidated frames) must not shift past the mask's width.
    const auto second = static_cast<unsigned>(Frame::pair_second_offset(size));
    return bits(size) | (second >= 32 ? 0u : bits(size) << second);
}

}  // namespace coreio
