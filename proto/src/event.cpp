#include "coreio/trace/event.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace coreio::trace {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void hex_bytes(std::string& s, std::span<const std::byte> b) {
    for (std::byte x : b) {
        s += kHex[static_cast<unsigned>(x) >> 4];
        s += kHex[static_cast<unsigned>(x) & 15];
    }
}

// Data as a value (sizes <= 8, "0x0000002a") or as bytes in memory order.
std::string data_text(std::span<const std::byte> b) {
    std::string s = "0x";
    if (b.size() <= 8) {
        for (std::size_t i = b.size(); i-- > 0;) {
            s += kHex[static_cast<unsigned>(b[i]) >> 4];
            s += kHex[static_cast<unsigned>(b[i]) & 15];
        }
    } else {
        s = "[";
        hex_bytes(s, b);
        s += "]";
    }
    return s;
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

std::string latency(std::uint64_t ns) {
    char buf[32];
    if (ns < 10'000)
        std::snprintf(buf, sizeof buf, "%" PRIu64 "ns", ns);
    else if (ns < 10'000'000)
        std::snprintf(buf, sizeof buf, "%.1fus", static_cast<double>(ns) / 1e3);
    else
        std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
    return buf;
}

unsigned data_size(const Event& e) {
    return std::min<unsigned>(e.size, is_pair_op(e.op) ? kMaxPairElement : kMaxAccessSize);
}

void json_string(std::string& s, std::string_view v) {
    s += '"';
    for (char c : v) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            s += '\\';
            s += c;
        } else if (u < 0x20 || u >= 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            s += buf;
        } else {
            s += c;
        }
    }
    s += '"';
}

}  // namespace

const char* kind_name(EventKind k) {
    switch (k) {
    case EventKind::Unknown: return "unknown";
    case EventKind::Mmio: return "mmio";
    case EventKind::Dma: return "dma";
    case EventKind::Irq: return "irq";
    case EventKind::Claim: return "claim";
    case EventKind::Ping: return "ping";
    case EventKind::Reset: return "reset";
    case EventKind::Connection: return "connection";
    case EventKind::ProtocolError: return "protocol-error";
    }
    return "?";
}

const char* status_name(Status s) {
    switch (s) {
    case Status::Complete: return "complete";
    case Status::NoReply: return "no-reply";
    case Status::ReplyOnly: return "reply-only";
    }
    return "?";
}

const char* observer_name(Observer o) {
    switch (o) {
    case Observer::Unknown: return "unknown";
    case Observer::Client: return "client";
    case Observer::Vm: return "vm";
    case Observer::Proxy: return "proxy";
    }
    return "?";
}

std::uint64_t data_value(std::span<const std::byte> bytes) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < bytes.size() && i < 8; ++i) v |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    return v;
}

std::uint32_t default_mask(Op op, unsigned size) { return is_read_op(op) ? 0 : write_mask(op, size); }

std::string format_event(const Event& e) {
    char head[96];
    std::snprintf(head, sizeof head, "%6" PRIu64 ".%09" PRIu64 " c%u %-4s %s ", e.time_ns / 1'000'000'000,
                  e.time_ns % 1'000'000'000, e.client, e.channel == Channel::Main ? "main" : "dma",
                  e.towards == Towards::Client ? "vm->dev" : "dev->vm");
    std::string s = head;
    switch (e.kind) {
    case EventKind::Mmio:
    case EventKind::Dma: {
        const bool mmio = e.kind == EventKind::Mmio;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%s %-7s %s=%u ", mmio ? "MMIO" : "DMA ", op_name(static_cast<std::uint8_t>(e.op)),
                      mmio ? "rid" : "mid", e.id);
        s += buf;
        if (!mmio) s += "sid=" + std::to_string(e.sid) + " ";
        s += "addr=" + hex(e.address) + " size=" + std::to_string(e.size);
        const unsigned n = data_size(e);
        const bool has_data = !(is_read_op(e.op) && e.status == Status::NoReply);
        if (has_data) s += " data=" + data_text({e.data.data(), n});
        if (has_data && is_pair_op(e.op)) s += " data2=" + data_text({e.data2.data(), n});
        if (e.mask != default_mask(e.op, e.size)) s += " mask=" + hex(e.mask);
        if (e.flags) s += " flags=" + hex(e.flags);
        s += (mmio ? " tag=" : " pid=") + hex(e.tag);
        if (e.cause != kNoCause) s += " cause=#" + std::to_string(e.cause);
        if (e.error) s += " ERROR";
        if (e.status != Status::Complete) s += std::string(" ") + status_name(e.status);
        if (e.reply_after_ns) s += " lat=" + latency(e.reply_after_ns);
        break;
    }
    case EventKind::Irq:
        s += "IRQ  rid=" + std::to_string(e.id) + " line=" + std::to_string(e.line) + " level=" + std::to_string(e.level);
        break;
    case EventKind::Claim:
        s += "CLAIM rid=" + std::to_string(e.id);
        break;
    case EventKind::Ping:
        s += "PING tag=" + hex(e.tag);
        break;
    case EventKind::Reset:
        s += "RESET";
        break;
    case EventKind::Connection:
        s += e.up ? "CONNECT" : "DISCONNECT";
        break;
    case EventKind::ProtocolError:
        s += std::string("PROTOCOL-ERROR ") + error_name(static_cast<FrameError>(e.code)) + ": ";
        s += e.message;
        break;
    case EventKind::Unknown:
        s += "UNKNOWN (event type from a newer schema)";
        break;
    }
    if (!e.raw.empty()) s += " raw=" + std::to_string(e.raw.size()) + "B";
    if (!e.raw_reply.empty()) s += " raw_reply=" + std::to_string(e.raw_reply.size()) + "B";
    return s;
}

std::string event_json(const Event& e) {
    std::string s = "{\"t_ns\":" + std::to_string(e.time_ns) + ",\"client\":" + std::to_string(e.client) +
                    ",\"channel\":\"" + (e.channel == Channel::Main ? "main" : "dma") + "\",\"dir\":\"" +
                    (e.towards == Towards::Client ? "to_client" : "to_vm") + "\",\"kind\":\"" + kind_name(e.kind) +
                    "\"";
    switch (e.kind) {
    case EventKind::Mmio:
    case EventKind::Dma: {
        const bool mmio = e.kind == EventKind::Mmio;
        s += std::string(",\"op\":\"") + op_name(static_cast<std::uint8_t>(e.op)) + "\"";
        s += std::string(mmio ? ",\"rid\":" : ",\"mid\":") + std::to_string(e.id);
        if (!mmio) s += ",\"sid\":" + std::to_string(e.sid);
        s += ",\"addr\":\"" + hex(e.address) + "\",\"size\":" + std::to_string(e.size);
        const unsigned n = data_size(e);
        s += ",\"data\":\"";
        hex_bytes(s, {e.data.data(), n});
        s += "\"";
        if (is_pair_op(e.op)) {
            s += ",\"data2\":\"";
            hex_bytes(s, {e.data2.data(), n});
            s += "\"";
        }
        s += ",\"mask\":\"" + hex(e.mask) + "\",\"flags\":" + std::to_string(e.flags) +
             ",\"tag\":" + std::to_string(e.tag) + ",\"error\":" + (e.error ? "true" : "false") +
             ",\"status\":\"" + status_name(e.status) + "\",\"latency_ns\":" + std::to_string(e.reply_after_ns);
        if (e.cause != kNoCause) s += ",\"cause\":" + std::to_string(e.cause);
        break;
    }
    case EventKind::Irq:
        s += ",\"rid\":" + std::to_string(e.id) + ",\"line\":" + std::to_string(e.line) +
             ",\"level\":" + std::to_string(e.level);
        break;
    case EventKind::Claim:
        s += ",\"rid\":" + std::to_string(e.id);
        break;
    case EventKind::Ping:
        s += ",\"tag\":" + std::to_string(e.tag);
        break;
    case EventKind::Connection:
        s += std::string(",\"up\":") + (e.up ? "true" : "false");
        break;
    case EventKind::ProtocolError:
        s += std::string(",\"code\":\"") + error_name(static_cast<FrameError>(e.code)) + "\",\"message\":";
        json_string(s, e.message);
        break;
    case EventKind::Reset:
    case EventKind::Unknown:
        break;
    }
    if (!e.raw.empty()) {
        s += ",\"raw\":\"";
        hex_bytes(s, e.raw);
        s += "\"";
    }
    if (!e.raw_reply.empty()) {
        s += ",\"raw_reply\":\"";
        hex_bytes(s, e.raw_reply);
        s += "\"";
    }
    s += "}";
    return s;
}

Difference compare_events(const Event& a, const Event& b, const CompareOptions& o) {
    Difference d;
    auto num = [&](const char* field, std::uint64_t x, std::uint64_t y, bool as_hex = false) {
        if (!d.field.empty() || x == y) return;
        d.field = field;
        d.a = as_hex ? hex(x) : std::to_string(x);
        d.b = as_hex ? hex(y) : std::to_string(y);
    };
    auto text = [&](const char* field, std::string_view x, std::string_view y) {
        if (!d.field.empty() || x == y) return;
        d.field = field;
        d.a = x;
        d.b = y;
    };
    text("kind", kind_name(a.kind), kind_name(b.kind));
    num("client", a.client, b.client);
    text("channel", a.channel == Channel::Main ? "main" : "dma", b.channel == Channel::Main ? "main" : "dma");
    text("direction", a.towards == Towards::Client ? "to_client" : "to_vm",
         b.towards == Towards::Client ? "to_client" : "to_vm");
    if (o.timing) num("time_ns", a.time_ns, b.time_ns);
    if (!d.field.empty()) return d;
    switch (a.kind) {
    case EventKind::Mmio:
    case EventKind::Dma: {
        text("op", op_name(static_cast<std::uint8_t>(a.op)), op_name(static_cast<std::uint8_t>(b.op)));
        num(a.kind == EventKind::Mmio ? "rid" : "mid", a.id, b.id);
        num("sid", a.sid, b.sid);
        num("address", a.address, b.address, true);
        num("size", a.size, b.size);
        num("flags", a.flags, b.flags, true);
        num("mask", a.mask, b.mask, true);
        if (d.field.empty()) {
            const unsigned n = data_size(a);
            if (std::memcmp(a.data.data(), b.data.data(), n) != 0)
                text("data", data_text({a.data.data(), n}), data_text({b.data.data(), n}));
            else if (is_pair_op(a.op) && std::memcmp(a.data2.data(), b.data2.data(), n) != 0)
                text("data2", data_text({a.data2.data(), n}), data_text({b.data2.data(), n}));
        }
        text("error", a.error ? "true" : "false", b.error ? "true" : "false");
        text("status", status_name(a.status), status_name(b.status));
        if (o.tags) num("tag", a.tag, b.tag, true);
        num("cause", a.cause, b.cause);
        if (o.timing) num("reply_after_ns", a.reply_after_ns, b.reply_after_ns);
        break;
    }
    case EventKind::Irq:
        num("rid", a.id, b.id);
        num("line", a.line, b.line);
        num("level", a.level, b.level);
        break;
    case EventKind::Claim:
        num("rid", a.id, b.id);
        break;
    case EventKind::Ping:
        if (o.tags) num("tag", a.tag, b.tag, true);
        break;
    case EventKind::Connection:
        text("up", a.up ? "true" : "false", b.up ? "true" : "false");
        break;
    case EventKind::ProtocolError:
        num("code", a.code, b.code);
        text("message", a.message, b.message);
        break;
    case EventKind::Reset:
    case EventKind::Unknown:
        break;
    }
    if (o.raw && d.field.empty()) {
        auto raw_text = [](std::span<const std::byte> r) {
            std::string s;
            hex_bytes(s, r);
            return s;
        };
        auto same = [](std::span<const std::byte> x, std::span<const std::byte> y) {
            return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
        };
        if (!same(a.raw, b.raw)) text("raw", raw_text(a.raw), raw_text(b.raw));
        if (!same(a.raw_reply, b.raw_reply)) text("raw_reply", raw_text(a.raw_reply), raw_text(b.raw_reply));
    }
    return d;
}

}  // namespace coreio::trace
