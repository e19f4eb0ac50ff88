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

namespace {

// The JSON members of an MMIO access or DMA chunk.
void transaction_json(std::string& s, const Event& e) {
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
}

// The JSON members of any other event kind.
void small_event_json(std::string& s, const Event& e) {
    switch (e.kind) {
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
    default:
        break;
    }
}

// A raw frame as a JSON member, when there is one.
void raw_json(std::string& s, const char* name, std::span<const std::byte> raw) {
    if (raw.empty()) return;
    s += std::string(",\"") + name + "\":\"";
    hex_bytes(s, raw);
    s += "\"";
}

}  // namespace

std::string event_json(const Event& e) {
    std::string s = "{\"t_ns\":" + std::to_string(e.time_ns) + ",\"client\":" + std::to_string(e.client) +
                    ",\"channel\":\"" + (e.channel == Channel::Main ? "main" : "dma") + "\",\"dir\":\"" +
                    (e.towards == Towards::Client ? "to_client" : "to_vm") + "\",\"kind\":\"" + kind_name(e.kind) +
                    "\"";
    if (e.kind == EventKind::Mmio || e.kind == EventKind::Dma)
        transaction_json(s, e);
    else
        small_event_json(s, e);
    raw_json(s, "raw", e.raw);
    raw_json(s, "raw_reply", e.raw_reply);
    s += "}";
    return s;
}

namespace {

/// Builds a Difference: the first field compared unequal is kept, later ones are ignored.
class FirstDifference {
public:
    void num(const char* field, std::uint64_t x, std::uint64_t y, bool as_hex = false) {
        if (!d_.field.empty() || x == y) return;
        d_.field = field;
        d_.a = as_hex ? hex(x) : std::to_string(x);
        d_.b = as_hex ? hex(y) : std::to_string(y);
    }
    void text(const char* field, std::string_view x, std::string_view y) {
        if (!d_.field.empty() || x == y) return;
        d_.field = field;
        d_.a = x;
        d_.b = y;
    }
    bool found() const { return !d_.field.empty(); }
    Difference result() const { return d_; }

private:
    Difference d_;
};

void compare_transactions(const Event& a, const Event& b, const CompareOptions& o, FirstDifference& d) {
    d.text("op", op_name(static_cast<std::uint8_t>(a.op)), op_name(static_cast<std::uint8_t>(b.op)));
    d.num(a.kind == EventKind::Mmio ? "rid" : "mid", a.id, b.id);
    d.num("sid", a.sid, b.sid);
    d.num("address", a.address, b.address, true);
    d.num("size", a.size, b.size);
    d.num("flags", a.flags, b.flags, true);
    d.num("mask", a.mask, b.mask, true);
    if (!d.found()) {
        const unsigned n = data_size(a);
        if (std::memcmp(a.data.data(), b.data.data(), n) != 0)
            d.text("data", data_text({a.data.data(), n}), data_text({b.data.data(), n}));
        else if (is_pair_op(a.op) && std::memcmp(a.data2.data(), b.data2.data(), n) != 0)
            d.text("data2", data_text({a.data2.data(), n}), data_text({b.data2.data(), n}));
    }
    d.text("error", a.error ? "true" : "false", b.error ? "true" : "false");
    d.text("status", status_name(a.status), status_name(b.status));
    if (o.tags) d.num("tag", a.tag, b.tag, true);
    d.num("cause", a.cause, b.cause);
    if (o.timing) d.num("reply_after_ns", a.reply_after_ns, b.reply_after_ns);
}

void compare_small_events(const Event& a, const Event& b, const CompareOptions& o, FirstDifference& d) {
    switch (a.kind) {
    case EventKind::Irq:
        d.num("rid", a.id, b.id);
        d.num("line", a.line, b.line);
        d.num("level", a.level, b.level);
        break;
    case EventKind::Claim:
        d.num("rid", a.id, b.id);
        break;
    case EventKind::Ping:
        if (o.tags) d.num("tag", a.tag, b.tag, true);
        break;
    case EventKind::Connection:
        d.text("up", a.up ? "true" : "false", b.up ? "true" : "false");
        break;
    case EventKind::ProtocolError:
        d.num("code", a.code, b.code);
        d.text("message", a.message, b.message);
        break;
    default:
        break;
    }
}

void compare_raw(const Event& a, const Event& b, FirstDifference& d) {
    auto raw_text = [](std::span<const std::byte> r) {
        std::string s;
        hex_bytes(s, r);
        return s;
    };
    auto same = [](std::span<const std::byte> x, std::span<const std::byte> y) {
        return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
    };
    if (!same(a.raw, b.raw)) d.text("raw", raw_text(a.raw), raw_text(b.raw));
    if (!same(a.raw_reply, b.raw_reply)) d.text("raw_reply", raw_text(a.raw_reply), raw_text(b.raw_reply));
}

}  // namespace

Difference compare_events(const Event& a, const Event& b, const CompareOptions& o) {
    FirstDifference d;
    d.text("kind", kind_name(a.kind), kind_name(b.kind));
    d.num("client", a.client, b.client);
    d.text("channel", a.channel == Channel::Main ? "main" : "dma", b.channel == Channel::Main ? "main" : "dma");
    d.text("direction", a.towards == Towards::Client ? "to_client" : "to_vm",
           b.towards == Towards::Client ? "to_client" : "to_vm");
    if (o.timing) d.num("time_ns", a.time_ns, b.time_ns);
    if (d.found()) return d.result();
    if (a.kind == EventKind::Mmio || a.kind == EventKind::Dma)
        compare_transactions(a, b, o, d);
    else
        compare_small_events(a, b, o, d);
    if (o.raw && !d.found()) compare_raw(a, b, d);
    return d.result();
}

}  // namespace coreio::trace
