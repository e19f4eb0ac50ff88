#include "codec.hpp"

#include <algorithm>
#include <bit>
#include <cstring>


namespace coreio::trace::detail {
namespace {

// The in-memory enums hold the schema's values (the codec stores them as they are).
static_assert(static_cast<std::uint32_t>(Channel::Main) == schema::record::kChannelMain &&
              static_cast<std::uint32_t>(Channel::Dma) == schema::record::kChannelDma);
static_assert(static_cast<std::uint32_t>(Towards::Client) == schema::record::kDirectionToClient &&
              static_cast<std::uint32_t>(Towards::Vm) == schema::record::kDirectionToVm);
static_assert(static_cast<std::uint32_t>(Status::Complete) == schema::transaction::kStatusComplete &&
              static_cast<std::uint32_t>(Status::NoReply) == schema::transaction::kStatusNoReply &&
              static_cast<std::uint32_t>(Status::ReplyOnly) == schema::transaction::kStatusReplyOnly);
static_assert(static_cast<std::uint32_t>(Observer::Unknown) == schema::header::kObserverUnknown &&
              static_cast<std::uint32_t>(Observer::Client) == schema::header::kObserverClient &&
              static_cast<std::uint32_t>(Observer::Vm) == schema::header::kObserverVm &&
              static_cast<std::uint32_t>(Observer::Proxy) == schema::header::kObserverProxy);

using schema::WireType;
using schema::kVarint;
using schema::kFixed64;
using schema::kLen;
using schema::kFixed32;
using namespace schema::record;       // kDtNs, kMmio, ... kRawReply
using namespace schema::transaction;  // kOpSize, kId, ... kCauseBack

// Longest ProtocolError message stored, bytes.
constexpr std::size_t kMaxMessage = 200;
// Largest Transaction / other event body.
constexpr std::size_t kMaxEventBody = 256 + kMaxMessage;

std::uint32_t zigzag32(std::int32_t v) {
    return (static_cast<std::uint32_t>(v) << 1) ^ static_cast<std::uint32_t>(v >> 31);
}
std::int32_t unzigzag32(std::uint32_t v) {
    return static_cast<std::int32_t>(v >> 1) ^ -static_cast<std::int32_t>(v & 1);
}

// The one-byte key of a field numbered < 16.
constexpr std::uint8_t key_byte(std::uint32_t field, WireType t) {
    return static_cast<std::uint8_t>((field << 3) | t);
}

// A varint field with a one-byte key, absent when zero (proto3); returns the new end.
inline std::uint8_t* put_field(std::uint8_t* p, std::uint8_t key, std::uint64_t v) {
    if (v == 0) return p;
    *p++ = key;
    while (v >= 0x80) {
        *p++ = static_cast<std::uint8_t>(v | 0x80);
        v >>= 7;
    }
    *p++ = static_cast<std::uint8_t>(v);
    return p;
}

// Small encoder over a caller's buffer.
struct Out {
    std::uint8_t* p;
    void tag(std::uint32_t field, WireType t) { p += put_varint(p, (field << 3) | t); }
    void varint(std::uint32_t field, std::uint64_t v) {
        if (v == 0) return;  // proto3: zero is absent
        tag(field, kVarint);
        p += put_varint(p, v);
    }
    void bytes(std::uint32_t field, const void* data, std::size_t n) {
        if (n == 0) return;
        tag(field, kLen);
        p += put_varint(p, n);
        std::memcpy(p, data, n);
        p += n;
    }
};

// Little-endian value of `size` (<= 8) bytes at `data`, which has 8 readable bytes.
std::uint64_t small_value(const std::byte* data, unsigned size) {
    std::uint64_t v = 0;
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(&v, data, 8);
        return size >= 8 ? v : v & ((std::uint64_t{1} << (8 * size)) - 1);
    } else {
        return data_value({data, size});
    }
}

void put_data(Out& o, std::uint32_t value_field, std::uint32_t bytes_field, const std::byte* data, unsigned size) {
    if (size <= 8)
        o.varint(value_field, small_value(data, size));  // Event data arrays hold >= 16 bytes
    else
        o.bytes(bytes_field, data, size);
}

std::size_t encode_event_body(const Event& ev, DeltaState& st, std::uint8_t* out) {
    Out o{out};
    switch (ev.kind) {
    case EventKind::Mmio:
    case EventKind::Dma: {
        // The hot path (every tapped transaction): straight-line, one byte per tag.
        const bool mmio = ev.kind == EventKind::Mmio;
        std::uint64_t& prev_address = mmio ? st.mmio_address : st.dma_address;
        std::uint32_t& prev_tag = mmio ? st.mmio_tag : st.dma_tag;
        const auto op = static_cast<unsigned>(ev.op);
        const bool pair = is_pair_op(ev.op);
        std::uint8_t* p = o.p;
        p = put_field(p, key_byte(kOpSize, kVarint), (op & 7u) | (static_cast<unsigned>(ev.size) << 3));
        p = put_field(p, key_byte(kId, kVarint), ev.id);
        p = put_field(p, key_byte(kAddressDelta, kVarint), zigzag(static_cast<std::int64_t>(ev.address - prev_address)));
        p = put_field(p, key_byte(kTagStep, kVarint), zigzag32(static_cast<std::int32_t>(ev.tag - (prev_tag + 1))));
        p = put_field(p, key_byte(kFlags, kVarint), ev.flags);
        p = put_field(p, key_byte(kSid, kVarint), ev.sid);
        o.p = p;
        const unsigned size = std::min<unsigned>(ev.size, pair ? kMaxPairElement : kMaxAccessSize);
        put_data(o, kData, kDataBytes, ev.data.data(), size);
        if (pair) put_data(o, kData2, kData2Bytes, ev.data2.data(), size);
        p = o.p;
        const std::uint32_t mask = is_read_op(ev.op) ? 0 : write_mask(ev.op, ev.size);  // default_mask()
        p = put_field(p, key_byte(kMaskXor, kVarint), ev.mask ^ mask);
        p = put_field(p, key_byte(kError, kVarint), ev.error ? 1 : 0);
        p = put_field(p, key_byte(kReplyAfterNs, kVarint), ev.reply_after_ns);
        p = put_field(p, key_byte(kStatus, kVarint), static_cast<std::uint64_t>(ev.status));
        if (!mmio && ev.cause != kNoCause && ev.cause < st.index)
            p = put_field(p, key_byte(kCauseBack, kVarint), st.index - ev.cause);
        o.p = p;
        prev_address = ev.address;
        prev_tag = ev.tag;
        break;
    }
    case EventKind::Irq:
        o.varint(schema::irq::kRid, ev.id);
        o.varint(schema::irq::kLine, ev.line);
        o.varint(schema::irq::kLevel, ev.level);
        break;
    case EventKind::Claim:
        o.varint(schema::claim::kRid, ev.id);
        break;
    case EventKind::Ping:
        o.varint(schema::ping::kTag, ev.tag);
        break;
    case EventKind::Connection:
        o.varint(schema::connection::kUp, ev.up ? 1 : 0);
        break;
    case EventKind::ProtocolError:
        o.varint(schema::protocol_error::kCode, ev.code);
        o.bytes(schema::protocol_error::kMessage, ev.message.data(), std::min(ev.message.size(), kMaxMessage));
        break;
    case EventKind::Reset:
    case EventKind::Unknown:
        break;
    }
    return static_cast<std::size_t>(o.p - out);
}

// The event kind of a Record.event field number (one of kMmio..kProtocolError).
EventKind event_kind(std::uint32_t field) {
    switch (field) {
    case kMmio: return EventKind::Mmio;
    case kDma: return EventKind::Dma;
    case kIrq: return EventKind::Irq;
    case kClaim: return EventKind::Claim;
    case kPing: return EventKind::Ping;
    case kReset: return EventKind::Reset;
    case kConnection: return EventKind::Connection;
    case kProtocolError: return EventKind::ProtocolError;
    default: return EventKind::Unknown;
    }
}

std::uint32_t event_field(EventKind k) {
    switch (k) {
    case EventKind::Mmio: return kMmio;
    case EventKind::Dma: return kDma;
    case EventKind::Irq: return kIrq;
    case EventKind::Claim: return kClaim;
    case EventKind::Ping: return kPing;
    case EventKind::Reset: return kReset;
    case EventKind::Connection: return kConnection;
    case EventKind::ProtocolError: return kProtocolError;
    case EventKind::Unknown: return 0;
    }
    return 0;
}

// One decoded field of a message.
struct Field {
    std::uint32_t number = 0;
    WireType type = kVarint;
    std::uint64_t value = 0;          // varint / fixed value
    const std::uint8_t* data = nullptr;  // length-delimited payload
    std::size_t size = 0;
};

// Reads the next field of [*p, end). Returns nullptr or an error.
const char* next_field(const std::uint8_t*& p, const std::uint8_t* end, Field& f) {
    std::uint64_t key = 0;
    std::size_t k = get_varint(p, end, &key);
    if (k == 0 || k == SIZE_MAX) return "bad field key";
    if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) return "bad field number";
    p += k;
    f.number = static_cast<std::uint32_t>(key >> 3);
    f.type = static_cast<WireType>(key & 7);
    switch (key & 7) {
    case kVarint:
        k = get_varint(p, end, &f.value);
        if (k == 0 || k == SIZE_MAX) return "bad varint";
        p += k;
        return nullptr;
    case kFixed64:
        if (end - p < 8) return "cut-off fixed64";
        std::memcpy(&f.value, p, 8);
        p += 8;
        return nullptr;
    case kFixed32: {
        if (end - p < 4) return "cut-off fixed32";
        std::uint32_t v;
        std::memcpy(&v, p, 4);
        f.value = v;
        p += 4;
        return nullptr;
    }
    case kLen: {
        std::uint64_t n = 0;
        k = get_varint(p, end, &n);
        if (k == 0 || k == SIZE_MAX) return "bad length";
        p += k;
        if (n > static_cast<std::uint64_t>(end - p)) return "length runs past the record";
        f.data = p;
        f.size = static_cast<std::size_t>(n);
        p += n;
        return nullptr;
    }
    default:
        return "unsupported wire type (group)";
    }
}

// Copies a value or byte field into `dst` (`size` bytes). Returns an error or nullptr.
const char* get_data(const Field& f, bool as_bytes, std::byte* dst, unsigned size) {
    if (!as_bytes) {
        if (f.type != kVarint) return "data has the wrong wire type";
        if (size < 8 && (f.value >> (8 * size)) != 0) return "data wider than the access size";
        for (unsigned i = 0; i < size; ++i) dst[i] = static_cast<std::byte>(f.value >> (8 * i));
        return nullptr;
    }
    if (f.type != kLen) return "data_bytes has the wrong wire type";
    if (f.size != size) return "data_bytes length differs from the access size";
    std::memcpy(dst, f.data, size);
    return nullptr;
}

/// A transaction's fields that are resolved only once all are read (they depend on op_size).
struct TransactionFields {
    std::uint64_t op_size = 0, address_delta = 0, tag_step = 0, mask_xor = 0, cause_back = 0;
    Field data[2];                         // data, data2
    bool has_data[2] = {false, false};
    bool data_is_bytes[2] = {false, false};
};

// Reads the Transaction message's fields (one flat switch over its field numbers); `bad` is where an error is.
const char* read_transaction_fields(const std::uint8_t* p, const std::uint8_t* end, Event& ev, TransactionFields& t,
                                    const std::uint8_t*& bad) {
    while (p < end) {
        bad = p;
        Field f;
        if (const char* e = next_field(p, end, f)) return e;
        const bool is_varint = f.type == kVarint;
        switch (f.number) {
        case kOpSize: t.op_size = f.value; break;
        case kId:
            if (f.value > 255) return "id > 255";
            ev.id = static_cast<std::uint8_t>(f.value);
            break;
        case kAddressDelta: t.address_delta = f.value; break;
        case kTagStep: t.tag_step = f.value; break;
        case kFlags:
            if (f.value > 15) return "flags > 15";
            ev.flags = static_cast<std::uint8_t>(f.value);
            break;
        case kSid:
            if (f.value > 15) return "sid > 15";
            ev.sid = static_cast<std::uint8_t>(f.value);
            break;
        case kData: case kDataBytes: case kData2: case kData2Bytes: {
            const int which = (f.number == kData || f.number == kDataBytes) ? 0 : 1;
            t.data[which] = f;
            t.has_data[which] = true;
            t.data_is_bytes[which] = f.number == kDataBytes || f.number == kData2Bytes;
            continue;  // checked once the size is known
        }
        case kMaskXor: t.mask_xor = f.value; break;
        case kError: ev.error = f.value != 0; break;
        case kReplyAfterNs: ev.reply_after_ns = f.value; break;
        case kStatus:
            if (f.value > kStatusReplyOnly) return "unknown status";
            ev.status = static_cast<Status>(f.value);
            break;
        case kCauseBack: t.cause_back = f.value; break;
        default: continue;  // a newer schema's field
        }
        if (!is_varint) return "field has the wrong wire type";
    }
    bad = p;
    return nullptr;
}

// The access itself from op_size: opcode, size, data and byte mask.
const char* resolve_access(const TransactionFields& t, Event& ev) {
    const unsigned op = static_cast<unsigned>(t.op_size & 7);
    const unsigned size = static_cast<unsigned>(t.op_size >> 3);
    if (op < 1 || op > 6) return "op_size: opcode not an access (1..6)";
    ev.op = static_cast<Op>(op);
    const bool pair = is_pair_op(ev.op);
    if (size < 1 || size > (pair ? kMaxPairElement : kMaxAccessSize)) return "op_size: size out of range";
    ev.size = static_cast<std::uint8_t>(size);
    for (int which = 0; which < 2; ++which) {
        if (!t.has_data[which]) continue;
        if (which == 1 && !pair) return "data2 in a single access";
        if (t.data_is_bytes[which] != (size > 8)) return "data encoding does not match the size";
        if (const char* e = get_data(t.data[which], t.data_is_bytes[which],
                                     which == 0 ? ev.data.data() : ev.data2.data(), size))
            return e;
    }
    if (t.mask_xor > 0xffffffffu) return "mask_xor > 32 bits";
    ev.mask = static_cast<std::uint32_t>(t.mask_xor) ^ default_mask(ev.op, size);
    return nullptr;
}

// The fields coded against the previous record: address, tag, and a DMA's cause.
const char* resolve_deltas(const TransactionFields& t, DeltaState& st, Event& ev) {
    const bool mmio = ev.kind == EventKind::Mmio;
    std::uint64_t& prev_address = mmio ? st.mmio_address : st.dma_address;
    std::uint32_t& prev_tag = mmio ? st.mmio_tag : st.dma_tag;
    ev.address = prev_address + static_cast<std::uint64_t>(unzigzag(t.address_delta));
    ev.tag = prev_tag + 1 + static_cast<std::uint32_t>(unzigzag32(static_cast<std::uint32_t>(t.tag_step)));
    prev_address = ev.address;
    prev_tag = ev.tag;
    if (t.cause_back != 0) {
        if (mmio) return "cause_back in an MMIO record";
        if (t.cause_back > st.index) return "cause_back points before the first record";
        ev.cause = st.index - t.cause_back;
    }
    return nullptr;
}

const char* decode_transaction(const std::uint8_t* p, const std::uint8_t* end, DeltaState& st, Event& ev,
                               const std::uint8_t*& bad) {
    TransactionFields t;
    if (const char* e = read_transaction_fields(p, end, ev, t, bad)) return e;
    if (const char* e = resolve_access(t, ev)) return e;
    return resolve_deltas(t, st, ev);
}

// The one field of a small event that `f` is, by kind: a value check and a
// store. Returns an error, or nullptr (also for a newer schema's field).
const char* small_field(const Field& f, Event& ev) {
    namespace s = schema;
    const std::uint64_t v = f.value;
    const bool varint = f.type == kVarint;
    switch (ev.kind) {
    case EventKind::Irq:
        if (f.number != s::irq::kRid && f.number != s::irq::kLine && f.number != s::irq::kLevel) return nullptr;
        if (!varint) return "field has the wrong wire type";
        if (f.number == s::irq::kRid) {
            if (v >= kNumRanges) return "irq rid > 7";
            ev.id = static_cast<std::uint8_t>(v);
        } else if (f.number == s::irq::kLine) {
            if (v >= kNumIrqLines) return "irq line > 7";
            ev.line = static_cast<std::uint8_t>(v);
        } else {
            if (v > 1) return "irq level not 0/1";
            ev.level = static_cast<std::uint8_t>(v);
        }
        return nullptr;
    case EventKind::Claim:
        if (f.number != s::claim::kRid) return nullptr;
        if (!varint) return "field has the wrong wire type";
        if (v >= kNumRanges) return "claim rid > 7";
        ev.id = static_cast<std::uint8_t>(v);
        return nullptr;
    case EventKind::Ping:
        if (f.number != s::ping::kTag) return nullptr;
        if (!varint) return "field has the wrong wire type";
        if (v > 0xffffffffu) return "ping tag > 32 bits";
        ev.tag = static_cast<std::uint32_t>(v);
        return nullptr;
    case EventKind::Connection:
        if (f.number != s::connection::kUp) return nullptr;
        if (!varint) return "field has the wrong wire type";
        ev.up = v != 0;
        return nullptr;
    case EventKind::ProtocolError:
        if (f.number == s::protocol_error::kMessage) {
            if (f.type != kLen) return "message has the wrong wire type";
            ev.message = std::string_view(reinterpret_cast<const char*>(f.data), f.size);
        } else if (f.number == s::protocol_error::kCode) {
            if (!varint) return "field has the wrong wire type";
            if (v > 255) return "protocol error code > 255";
            ev.code = static_cast<std::uint8_t>(v);
        }
        return nullptr;
    default:
        return nullptr;
    }
}

const char* decode_small(const std::uint8_t* p, const std::uint8_t* end, Event& ev, const std::uint8_t*& bad) {
    while (p < end) {
        bad = p;
        Field f;
        if (const char* e = next_field(p, end, f)) return e;
        if (const char* e = small_field(f, ev)) return e;
    }
    return nullptr;
}

/// Where a record's event message is, found while reading the record's own fields.
struct RecordFields {
    std::uint64_t dt = 0;
    const std::uint8_t* event_data = nullptr;
    std::size_t event_size = 0;
    const std::uint8_t* event_at = nullptr;  // the event field's key
};

// One field of the Record message (found at `at`): checked and stored. Returns an error or nullptr.
const char* record_field(const Field& f, const std::uint8_t* at, Event& ev, RecordFields& r) {
    switch (f.number) {
    case kDtNs: case kChannel: case kDirection: case kClient:
        if (f.type != kVarint) return "field has the wrong wire type";
        if (f.number == kDtNs) {
            r.dt = f.value;
        } else if (f.number == kClient) {
            ev.client = static_cast<std::uint32_t>(f.value);
            if (f.value > 0xffffffffu) return "client > 32 bits";
        } else if (f.value > 1) {
            return f.number == kChannel ? "unknown channel" : "unknown direction";
        } else if (f.number == kChannel) {
            ev.channel = static_cast<Channel>(f.value);
        } else {
            ev.towards = static_cast<Towards>(f.value);
        }
        return nullptr;
    case kMmio: case kDma: case kIrq: case kClaim: case kPing: case kReset: case kConnection:
    case kProtocolError:
        if (f.type != kLen) return "event has the wrong wire type";
        ev.kind = event_kind(f.number);
        r.event_data = f.data;
        r.event_size = f.size;
        r.event_at = at;
        return nullptr;
    case kRaw: case kRawReply:
        if (f.type != kLen) return "raw has the wrong wire type";
        (f.number == kRaw ? ev.raw : ev.raw_reply) =
            std::span<const std::byte>(reinterpret_cast<const std::byte*>(f.data), f.size);
        return nullptr;
    default:
        return nullptr;  // a newer schema's field
    }
}

// Decodes the record's event message; on error `bad` is where in it.
const char* decode_event(const RecordFields& r, DeltaState& st, Event& ev, const std::uint8_t*& bad) {
    bad = r.event_at;
    const std::uint8_t* sub_bad = r.event_data;
    const char* err = ev.kind == EventKind::Mmio || ev.kind == EventKind::Dma
                          ? decode_transaction(r.event_data, r.event_data + r.event_size, st, ev, sub_bad)
                          : decode_small(r.event_data, r.event_data + r.event_size, ev, sub_bad);
    if (err) bad = sub_bad;
    return err;
}

// The record's time from the previous one's and its delta.
const char* advance_time(std::uint64_t dt, DeltaState& st, Event& ev) {
    const std::int64_t delta = unzigzag(dt);
    if (delta < 0 && static_cast<std::uint64_t>(-delta) > st.time_ns) return "dt_ns makes the time negative";
    ev.time_ns = st.time_ns + static_cast<std::uint64_t>(delta);
    st.time_ns = ev.time_ns;
    return nullptr;
}

}  // namespace

std::size_t max_record_body(const Event& ev) {
    return 64 + kMaxEventBody + ev.raw.size() + ev.raw_reply.size();
}

std::size_t encode_record(const Event& ev, DeltaState& st, std::uint8_t* out) {
    Out o{out};
    std::uint8_t* p = out;
    p = put_field(p, key_byte(kDtNs, kVarint), zigzag(static_cast<std::int64_t>(ev.time_ns - st.time_ns)));
    p = put_field(p, key_byte(kChannel, kVarint), static_cast<std::uint64_t>(ev.channel));
    p = put_field(p, key_byte(kDirection, kVarint), static_cast<std::uint64_t>(ev.towards));
    o.p = put_field(p, key_byte(kClient, kVarint), ev.client);
    if (const std::uint32_t field = event_field(ev.kind)) {
        // Body first, 1 byte after the tag (bodies are mostly < 128 bytes), then
        // the length; a longer body moves up by one (bodies are < 16384 bytes).
        o.tag(field, kLen);
        std::uint8_t* body = o.p + 1;
        const std::size_t n = encode_event_body(ev, st, body);
        if (n < 0x80) {
            *o.p = static_cast<std::uint8_t>(n);
            o.p += 1 + n;
        } else {
            std::memmove(o.p + 2, body, n);
            o.p += put_varint(o.p, n) + n;
        }
    }
    o.bytes(kRaw, ev.raw.data(), ev.raw.size());
    o.bytes(kRawReply, ev.raw_reply.data(), ev.raw_reply.size());
    st.time_ns = ev.time_ns;
    ++st.index;
    return static_cast<std::size_t>(o.p - out);
}

const char* decode_record(const std::uint8_t* p, std::size_t n, DeltaState& st, Event& ev, std::size_t* bad_at) {
    const std::uint8_t* const begin = p;
    const std::uint8_t* const end = p + n;
    const std::uint8_t* bad = p;
    ev = Event{};
    RecordFields r;
    const char* err = nullptr;
    while (p < end && !err) {
        bad = p;
        Field f;
        if ((err = next_field(p, end, f))) break;
        err = record_field(f, bad, ev, r);
    }
    if (!err && r.event_data) err = decode_event(r, st, ev, bad);
    if (!err) err = advance_time(r.dt, st, ev);
    if (err) {
        *bad_at = static_cast<std::size_t>(bad - begin);
        return err;
    }
    ++st.index;
    return nullptr;
}

namespace {

// Appends a length-delimited field holding `body`.
void put_len(std::string& out, std::uint32_t field, std::string_view body) {
    std::uint8_t tmp[20];
    std::size_t n = put_varint(tmp, (field << 3) | kLen);
    n += put_varint(tmp + n, body.size());
    out.append(reinterpret_cast<const char*>(tmp), n);
    out.append(body);
}
void put_num(std::string& out, std::uint32_t field, std::uint64_t v) {
    if (v == 0) return;
    std::uint8_t tmp[20];
    std::size_t n = put_varint(tmp, (field << 3) | kVarint);
    n += put_varint(tmp + n, v);
    out.append(reinterpret_cast<const char*>(tmp), n);
}
void put_str(std::string& out, std::uint32_t field, std::string_view s) {
    if (!s.empty()) put_len(out, field, s);
}

// Calls on_field for each field of a message; false on malformed input.
template <class F>
bool for_fields(const std::uint8_t* p, std::size_t n, F&& on_field) {
    const std::uint8_t* end = p + n;
    while (p < end) {
        Field f;
        if (next_field(p, end, f)) return false;
        if (!on_field(f)) return false;
    }
    return true;
}
std::string_view text_of(const Field& f) { return {reinterpret_cast<const char*>(f.data), f.size}; }

// Header field readers: false when the wire type or the value does not fit.
bool get_u32(const Field& f, std::uint32_t& dst) {
    if (f.type != kVarint || f.value > 0xffffffffu) return false;
    dst = static_cast<std::uint32_t>(f.value);
    return true;
}
bool get_u64(const Field& f, std::uint64_t& dst) {
    if (f.type != kVarint) return false;
    dst = f.value;
    return true;
}
bool get_str(const Field& f, std::string& dst) {
    if (f.type != kLen) return false;
    dst = text_of(f);
    return true;
}

bool decode_range(const Field& f, RangeInfo& r) {
    return for_fields(f.data, f.size, [&](const Field& g) {
        switch (g.number) {
        case schema::range::kRid: return get_u32(g, r.rid);
        case schema::range::kBase: return get_u64(g, r.base);
        case schema::range::kSize: return get_u64(g, r.size);
        case schema::range::kName: return get_str(g, r.name);
        default: return true;
        }
    });
}

bool decode_memory(const Field& f, MemoryInfo& r) {
    return for_fields(f.data, f.size, [&](const Field& g) {
        switch (g.number) {
        case schema::memory::kMid: return get_u32(g, r.mid);
        case schema::memory::kSid: return get_u32(g, r.sid);
        case schema::memory::kBase: return get_u64(g, r.base);
        case schema::memory::kSize: return get_u64(g, r.size);
        case schema::memory::kName: return get_str(g, r.name);
        default: return true;
        }
    });
}

// A label; a later entry with the same key replaces the earlier one (a map).
bool decode_label(const Field& f, std::vector<std::pair<std::string, std::string>>& labels) {
    std::pair<std::string, std::string> kv;
    const bool ok = for_fields(f.data, f.size, [&](const Field& g) {
        if (g.number == schema::label::kKey) return get_str(g, kv.first);
        if (g.number == schema::label::kValue) return get_str(g, kv.second);
        return true;
    });
    std::erase_if(labels, [&](const auto& e) { return e.first == kv.first; });
    labels.push_back(std::move(kv));
    return ok;
}

// One field of the Header message, checked and stored.
bool header_field(const Field& f, TraceHeader& h) {
    switch (f.number) {
    case schema::header::kSchemaVersion: return get_u32(f, h.schema_version);
    case schema::header::kTool: return get_str(f, h.tool);
    case schema::header::kToolVersion: return get_str(f, h.tool_version);
    case schema::header::kCreatedUnixNs: return get_u64(f, h.created_unix_ns);
    case schema::header::kTarget: return get_str(f, h.target);
    case schema::header::kRanges: {
        if (f.type != kLen) return false;
        return decode_range(f, h.ranges.emplace_back());
    }
    case schema::header::kMemory: {
        if (f.type != kLen) return false;
        return decode_memory(f, h.memory.emplace_back());
    }
    case schema::header::kLabels:
        if (f.type != kLen) return false;
        return decode_label(f, h.labels);
    case schema::header::kObserver: {
        std::uint32_t v = 0;
        if (!get_u32(f, v)) return false;
        h.observer = v <= schema::header::kObserverProxy ? static_cast<Observer>(v) : Observer::Unknown;
        return true;
    }
    case schema::header::kRawFrames:
        if (f.type != kVarint) return false;
        h.raw_frames = f.value != 0;
        return true;
    default:
        return true;  // a newer schema's field
    }
}

}  // namespace

// The header is written and read by hand too (not with the generated
// classes), so this library needs no protobuf runtime and can live in any
// process, including one that links the generated code itself.
std::string encode_header(const TraceHeader& h) {
    std::string out;
    put_num(out, schema::header::kSchemaVersion, h.schema_version);
    put_str(out, schema::header::kTool, h.tool);
    put_str(out, schema::header::kToolVersion, h.tool_version);
    put_num(out, schema::header::kCreatedUnixNs, h.created_unix_ns);
    put_str(out, schema::header::kTarget, h.target);
    for (const RangeInfo& r : h.ranges) {
        std::string m;
        put_num(m, schema::range::kRid, r.rid);
        put_num(m, schema::range::kBase, r.base);
        put_num(m, schema::range::kSize, r.size);
        put_str(m, schema::range::kName, r.name);
        put_len(out, schema::header::kRanges, m);
    }
    for (const MemoryInfo& r : h.memory) {
        std::string m;
        put_num(m, schema::memory::kMid, r.mid);
        put_num(m, schema::memory::kSid, r.sid);
        put_num(m, schema::memory::kBase, r.base);
        put_num(m, schema::memory::kSize, r.size);
        put_str(m, schema::memory::kName, r.name);
        put_len(out, schema::header::kMemory, m);
    }
    auto labels = h.labels;  // in key order, so equal headers give equal bytes
    std::sort(labels.begin(), labels.end());
    for (const auto& [k, v] : labels) {
        std::string m;
        put_str(m, schema::label::kKey, k);
        put_str(m, schema::label::kValue, v);
        put_len(out, schema::header::kLabels, m);
    }
    put_num(out, schema::header::kObserver, static_cast<std::uint64_t>(h.observer));
    put_num(out, schema::header::kRawFrames, h.raw_frames ? 1 : 0);
    return out;
}

bool decode_header(const std::uint8_t* p, std::size_t n, TraceHeader& h) {
    h = TraceHeader{};
    const bool ok = for_fields(p, n, [&](const Field& f) { return header_field(f, h); });
    if (ok) std::sort(h.labels.begin(), h.labels.end());
    return ok;
}

namespace {

constexpr std::uint8_t kBatchBodyLen = 10;  // Batch message: two fixed32 fields with their keys
constexpr std::uint8_t kSizeKey = schema::key(schema::batch::kSize, kFixed32);
constexpr std::uint8_t kCrcKey = schema::key(schema::batch::kCrc32c, kFixed32);

// Top byte of the size field: any change of one of the low three bytes changes it.
std::uint32_t size_check(std::uint32_t size) {
    return ((size >> 16) ^ (size >> 8) ^ size ^ 0x5au) & 0xffu;
}
void put_le32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

void put_batch_head(std::uint8_t* out, std::uint32_t size, std::uint32_t crc) {
    out[0] = kBatchTag;
    out[1] = kBatchBodyLen;
    out[2] = kSizeKey;
    put_le32(out + 3, (size & kMaxBatchBytes) | size_check(size) << 24);
    out[7] = kCrcKey;
    put_le32(out + 8, crc);
}

const char* get_batch_head(const std::uint8_t* p, std::uint32_t& size, std::uint32_t& crc, std::size_t* bad_at) {
    const std::uint8_t fixed[] = {kBatchTag, kBatchBodyLen, kSizeKey};
    for (std::size_t i = 0; i < sizeof fixed; ++i)
        if (p[i] != fixed[i]) {
            *bad_at = i;
            return "not a batch checksum (expected 1a 0a 0d ... 15 ...)";
        }
    if (p[7] != kCrcKey) {
        *bad_at = 7;
        return "not a batch checksum (expected 1a 0a 0d ... 15 ...)";
    }
    const std::uint32_t v = get_le32(p + 3);
    size = v & kMaxBatchBytes;
    if ((v >> 24) != size_check(size)) {
        *bad_at = 3;
        return "damaged batch size (its check byte does not match)";
    }
    crc = get_le32(p + 8);
    return nullptr;
}

}  // namespace coreio::trace::detail
