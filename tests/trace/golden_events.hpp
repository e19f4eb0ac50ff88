// The contents of tests/golden/v1-basic.ctrace and v2-checksum.ctrace: one event of every kind and
// every encoding path (small and wide data, pairs, deltas both ways, raw
// frames). make_golden.cpp writes them; golden_test.cpp checks a reader still
// reads exactly them. Never change this for an existing golden file: add a new one.
#pragma once

#include <vector>

#include "coreio/trace/event.hpp"

namespace golden {

using namespace coreio;
using namespace coreio::trace;

inline TraceHeader header_v1() {
    TraceHeader h;
    h.schema_version = 1;
    h.tool = "golden-v1";
    h.tool_version = "0.1.0";
    h.created_unix_ns = 1700000000123456789ull;
    h.target = "127.0.0.1:4800";
    h.ranges = {{0, 0x10000000, 0x1000, "uart"}, {3, 0x20003000, 0x2000, ""}};
    h.memory = {{0, 0, 0x80000000ull, 0x100000, "ram"}};
    h.labels = {{"purpose", "golden"}, {"schema", "v1"}};
    h.observer = Observer::Proxy;
    h.raw_frames = true;
    return h;
}

// v2 (batch checksums): the same header but for its name and version.
inline TraceHeader header_v2() {
    TraceHeader h = header_v1();
    h.schema_version = 2;
    h.tool = "golden-v2";
    h.labels = {{"purpose", "golden"}, {"schema", "v2"}};
    return h;
}
// v2 is written with a flush after this many records: a head batch and two batches of records.
inline constexpr std::size_t kV2FlushAfter = 9;

// Frames kept raw for record 10 (a WRITEA with its reply).
inline Frame raw_request_v1() {
    Frame f = Frame::mmio_request(Op::WriteAck, 0, 0x10000010, 4, 0, 77);
    f.payload()[0] = std::byte{0x11};
    return f;
}

inline std::vector<Event> events_v1() {
    std::vector<Event> v;
    auto base = [&](std::uint64_t t, Channel ch, Towards to, EventKind k) {
        Event e;
        e.time_ns = t;
        e.channel = ch;
        e.towards = to;
        e.kind = k;
        return e;
    };
    Event e = base(0, Channel::Main, Towards::Vm, EventKind::Connection);
    e.up = true;
    v.push_back(e);
    e = base(10, Channel::Dma, Towards::Vm, EventKind::Connection);
    e.up = true;
    v.push_back(e);
    e = base(1000, Channel::Main, Towards::Vm, EventKind::Claim);
    e.id = 3;
    v.push_back(e);
    // 4-byte read, small value.
    e = base(2500, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::Read;
    e.id = 0;
    e.size = 4;
    e.address = 0x10000004;
    e.tag = 0;
    e.data[0] = std::byte{0x2a};
    e.reply_after_ns = 1234;
    v.push_back(e);
    // posted 8-byte write, full value, flags, address going down.
    e = base(3000, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::Write;
    e.size = 8;
    e.flags = kFlagPriv | kFlagSecure;
    e.address = 0x10000000;
    e.tag = 1;
    e.mask = 0xff;
    for (int i = 0; i < 8; ++i) e.data[i] = std::byte(0xf0 + i);
    v.push_back(e);
    // 32-byte read with an error, tag jump, other range.
    e = base(4000, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::Read;
    e.id = 3;
    e.size = 32;
    e.address = 0x20003100;
    e.tag = 1000;
    for (int i = 0; i < 32; ++i) e.data[i] = std::byte(i);
    e.error = true;
    e.reply_after_ns = 99;
    v.push_back(e);
    // pair read 16+16.
    e = base(5000, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::ReadPair;
    e.id = 3;
    e.size = 16;
    e.address = 0x20003200;
    e.tag = 1001;
    for (int i = 0; i < 16; ++i) {
        e.data[i] = std::byte(0x40 + i);
        e.data2[i] = std::byte(0x80 + i);
    }
    e.reply_after_ns = 500;
    v.push_back(e);
    // posted pair write 2+2 with a partial mask.
    e = base(5100, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::WritePair;
    e.size = 2;
    e.address = 0x10000020;
    e.tag = 1002;
    e.mask = 0x0101;
    e.data[0] = std::byte{0x12};
    e.data2[0] = std::byte{0x34};
    v.push_back(e);
    // DMA write caused by the pair write (record 7).
    e = base(5200, Channel::Dma, Towards::Vm, EventKind::Dma);
    e.op = Op::WriteAck;
    e.id = 1;
    e.sid = 2;
    e.size = 16;
    e.address = 0x80000010;
    e.tag = 7;
    e.mask = 0xffff;
    for (int i = 0; i < 16; ++i) e.data[i] = std::byte(0xc0 + i);
    e.reply_after_ns = 3000;
    e.cause = 7;
    v.push_back(e);
    // DMA read that faulted, no cause.
    e = base(9000, Channel::Dma, Towards::Vm, EventKind::Dma);
    e.op = Op::Read;
    e.size = 4;
    e.address = 0x80000000;
    e.tag = 8;
    e.error = true;
    e.data.fill(std::byte{0xaa});
    e.reply_after_ns = 10;
    v.push_back(e);
    // WRITEA with raw frames (record 10).
    e = base(9500, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::WriteAck;
    e.size = 4;
    e.address = 0x10000010;
    e.tag = 77;
    e.mask = 0xf;
    e.data[0] = std::byte{0x11};
    e.reply_after_ns = 800;
    static const Frame request = raw_request_v1();
    e.raw = request.bytes();
    e.raw_reply = request.bytes();
    v.push_back(e);
    e = base(10000, Channel::Main, Towards::Vm, EventKind::Irq);
    e.id = 3;
    e.line = 5;
    e.level = 1;
    v.push_back(e);
    e = base(11000, Channel::Main, Towards::Client, EventKind::Ping);
    e.tag = 0xdeadbeef;
    v.push_back(e);
    e = base(11001, Channel::Main, Towards::Vm, EventKind::Ping);
    e.tag = 0xdeadbeef;
    v.push_back(e);
    // A read that never got its reply, and a reply without its request.
    e = base(12000, Channel::Main, Towards::Client, EventKind::Mmio);
    e.op = Op::Read;
    e.size = 1;
    e.address = 0x10000fff;
    e.tag = 78;
    e.status = Status::NoReply;
    v.push_back(e);
    e = base(12500, Channel::Main, Towards::Vm, EventKind::Mmio);
    e.op = Op::Read;
    e.size = 2;
    e.address = 0x10000002;
    e.tag = 5;
    e.data[0] = std::byte{0xaa};
    e.data[1] = std::byte{0xaa};
    e.status = Status::ReplyOnly;
    v.push_back(e);
    e = base(13000, Channel::Main, Towards::Client, EventKind::Reset);
    v.push_back(e);
    e = base(14000, Channel::Main, Towards::Client, EventKind::ProtocolError);
    e.code = static_cast<std::uint8_t>(FrameError::UnknownOp);
    e.message = "unknown opcode 0x13 (w1[7:0])";
    static const Frame bad = [] {
        Frame f;
        f.set_word(1, 0x13);
        return f;
    }();
    e.raw = bad.bytes();
    v.push_back(e);
    // A second client's record, older than the one before it (negative dt).
    e = base(13500, Channel::Main, Towards::Vm, EventKind::Claim);
    e.client = 1;
    e.id = 0;
    v.push_back(e);
    e = base(20000, Channel::Dma, Towards::Vm, EventKind::Connection);
    e.up = false;
    v.push_back(e);
    return v;
}

}  // namespace golden
