// The hand-written codec against the protoc-generated classes of
// coreio_trace.proto: every field number and enum value (static_assert), every
// field of every message known to the codec (descriptors), and round trips both
// ways for every record type with every field set: hand-encoded bytes parsed by
// protobuf, and protobuf-encoded bytes decoded by hand.
#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

#include <map>
#include <set>

#include "codec.hpp"
#include "coreio_trace.pb.h"
#include "golden_events.hpp"
#include "schema.hpp"
#include "test_util.hpp"

using namespace coreio;
using namespace coreio::trace;
namespace s = coreio::trace::schema;
namespace pb = coreio::trace;  // the generated classes share the namespace
using google::protobuf::Descriptor;
using google::protobuf::Message;

// ---- field numbers and enum values, at compile time -----------------------

static_assert(s::file::kRecord == pb::TraceFile::kRecordFieldNumber);
static_assert(s::file::kHeader == pb::TraceFile::kHeaderFieldNumber);
static_assert(s::file::kBatch == pb::TraceFile::kBatchFieldNumber);
static_assert(s::file::kMagic == pb::TraceFile::kMagicFieldNumber);
static_assert(s::file::kFormatVersion == pb::TraceFile::kFormatVersionFieldNumber);

static_assert(s::batch::kSize == pb::Batch::kSizeFieldNumber);
static_assert(s::batch::kCrc32c == pb::Batch::kCrc32CFieldNumber);

static_assert(s::header::kSchemaVersion == pb::Header::kSchemaVersionFieldNumber);
static_assert(s::header::kTool == pb::Header::kToolFieldNumber);
static_assert(s::header::kToolVersion == pb::Header::kToolVersionFieldNumber);
static_assert(s::header::kCreatedUnixNs == pb::Header::kCreatedUnixNsFieldNumber);
static_assert(s::header::kTarget == pb::Header::kTargetFieldNumber);
static_assert(s::header::kRanges == pb::Header::kRangesFieldNumber);
static_assert(s::header::kMemory == pb::Header::kMemoryFieldNumber);
static_assert(s::header::kLabels == pb::Header::kLabelsFieldNumber);
static_assert(s::header::kObserver == pb::Header::kObserverFieldNumber);
static_assert(s::header::kRawFrames == pb::Header::kRawFramesFieldNumber);
static_assert(s::header::kObserverUnknown == pb::Header::OBSERVER_UNKNOWN);
static_assert(s::header::kObserverClient == pb::Header::OBSERVER_CLIENT);
static_assert(s::header::kObserverVm == pb::Header::OBSERVER_VM);
static_assert(s::header::kObserverProxy == pb::Header::OBSERVER_PROXY);

static_assert(s::range::kRid == pb::Range::kRidFieldNumber);
static_assert(s::range::kBase == pb::Range::kBaseFieldNumber);
static_assert(s::range::kSize == pb::Range::kSizeFieldNumber);
static_assert(s::range::kName == pb::Range::kNameFieldNumber);

static_assert(s::memory::kMid == pb::MemoryRegion::kMidFieldNumber);
static_assert(s::memory::kSid == pb::MemoryRegion::kSidFieldNumber);
static_assert(s::memory::kBase == pb::MemoryRegion::kBaseFieldNumber);
static_assert(s::memory::kSize == pb::MemoryRegion::kSizeFieldNumber);
static_assert(s::memory::kName == pb::MemoryRegion::kNameFieldNumber);

static_assert(s::record::kDtNs == pb::Record::kDtNsFieldNumber);
static_assert(s::record::kChannel == pb::Record::kChannelFieldNumber);
static_assert(s::record::kDirection == pb::Record::kDirectionFieldNumber);
static_assert(s::record::kClient == pb::Record::kClientFieldNumber);
static_assert(s::record::kMmio == pb::Record::kMmioFieldNumber);
static_assert(s::record::kDma == pb::Record::kDmaFieldNumber);
static_assert(s::record::kIrq == pb::Record::kIrqFieldNumber);
static_assert(s::record::kClaim == pb::Record::kClaimFieldNumber);
static_assert(s::record::kPing == pb::Record::kPingFieldNumber);
static_assert(s::record::kReset == pb::Record::kResetFieldNumber);
static_assert(s::record::kConnection == pb::Record::kConnectionFieldNumber);
static_assert(s::record::kProtocolError == pb::Record::kProtocolErrorFieldNumber);
static_assert(s::record::kRaw == pb::Record::kRawFieldNumber);
static_assert(s::record::kRawReply == pb::Record::kRawReplyFieldNumber);
static_assert(s::record::kChannelMain == pb::Record::CHANNEL_MAIN);
static_assert(s::record::kChannelDma == pb::Record::CHANNEL_DMA);
static_assert(s::record::kDirectionToClient == pb::Record::DIRECTION_TO_CLIENT);
static_assert(s::record::kDirectionToVm == pb::Record::DIRECTION_TO_VM);

static_assert(s::transaction::kOpSize == pb::Transaction::kOpSizeFieldNumber);
static_assert(s::transaction::kId == pb::Transaction::kIdFieldNumber);
static_assert(s::transaction::kAddressDelta == pb::Transaction::kAddressDeltaFieldNumber);
static_assert(s::transaction::kTagStep == pb::Transaction::kTagStepFieldNumber);
static_assert(s::transaction::kFlags == pb::Transaction::kFlagsFieldNumber);
static_assert(s::transaction::kSid == pb::Transaction::kSidFieldNumber);
static_assert(s::transaction::kData == pb::Transaction::kDataFieldNumber);
static_assert(s::transaction::kDataBytes == pb::Transaction::kDataBytesFieldNumber);
static_assert(s::transaction::kData2 == pb::Transaction::kData2FieldNumber);
static_assert(s::transaction::kData2Bytes == pb::Transaction::kData2BytesFieldNumber);
static_assert(s::transaction::kMaskXor == pb::Transaction::kMaskXorFieldNumber);
static_assert(s::transaction::kError == pb::Transaction::kErrorFieldNumber);
static_assert(s::transaction::kReplyAfterNs == pb::Transaction::kReplyAfterNsFieldNumber);
static_assert(s::transaction::kStatus == pb::Transaction::kStatusFieldNumber);
static_assert(s::transaction::kCauseBack == pb::Transaction::kCauseBackFieldNumber);
static_assert(s::transaction::kStatusComplete == pb::Transaction::COMPLETE);
static_assert(s::transaction::kStatusNoReply == pb::Transaction::NO_REPLY);
static_assert(s::transaction::kStatusReplyOnly == pb::Transaction::REPLY_ONLY);

static_assert(s::irq::kRid == pb::Irq::kRidFieldNumber);
static_assert(s::irq::kLine == pb::Irq::kLineFieldNumber);
static_assert(s::irq::kLevel == pb::Irq::kLevelFieldNumber);
static_assert(s::claim::kRid == pb::Claim::kRidFieldNumber);
static_assert(s::ping::kTag == pb::Ping::kTagFieldNumber);
static_assert(s::connection::kUp == pb::Connection::kUpFieldNumber);
static_assert(s::protocol_error::kCode == pb::ProtocolError::kCodeFieldNumber);
static_assert(s::protocol_error::kMessage == pb::ProtocolError::kMessageFieldNumber);

namespace {

// ---- every field of the schema is one the codec knows ------------------------

// Field numbers schema.hpp names, per message.
const std::map<std::string, std::set<int>>& known_fields() {
    static const std::map<std::string, std::set<int>> m = {
        {"TraceFile", {s::file::kRecord, s::file::kHeader, s::file::kBatch, s::file::kMagic, s::file::kFormatVersion}},
        {"Batch", {s::batch::kSize, s::batch::kCrc32c}},
        {"Header",
         {s::header::kSchemaVersion, s::header::kTool, s::header::kToolVersion, s::header::kCreatedUnixNs,
          s::header::kTarget, s::header::kRanges, s::header::kMemory, s::header::kLabels, s::header::kObserver,
          s::header::kRawFrames}},
        {"Header.LabelsEntry", {s::label::kKey, s::label::kValue}},
        {"Range", {s::range::kRid, s::range::kBase, s::range::kSize, s::range::kName}},
        {"MemoryRegion", {s::memory::kMid, s::memory::kSid, s::memory::kBase, s::memory::kSize, s::memory::kName}},
        {"Record",
         {s::record::kDtNs, s::record::kChannel, s::record::kDirection, s::record::kClient, s::record::kMmio,
          s::record::kDma, s::record::kIrq, s::record::kClaim, s::record::kPing, s::record::kReset,
          s::record::kConnection, s::record::kProtocolError, s::record::kRaw, s::record::kRawReply}},
        {"Transaction",
         {s::transaction::kOpSize, s::transaction::kId, s::transaction::kAddressDelta, s::transaction::kTagStep,
          s::transaction::kFlags, s::transaction::kSid, s::transaction::kData, s::transaction::kDataBytes,
          s::transaction::kData2, s::transaction::kData2Bytes, s::transaction::kMaskXor, s::transaction::kError,
          s::transaction::kReplyAfterNs, s::transaction::kStatus, s::transaction::kCauseBack}},
        {"Irq", {s::irq::kRid, s::irq::kLine, s::irq::kLevel}},
        {"Claim", {s::claim::kRid}},
        {"Ping", {s::ping::kTag}},
        {"Reset", {}},
        {"Connection", {s::connection::kUp}},
        {"ProtocolError", {s::protocol_error::kCode, s::protocol_error::kMessage}},
    };
    return m;
}

// Collects every message type reachable from `d` (nested maps too), by name relative to the package.
void collect(const Descriptor* d, std::map<std::string, const Descriptor*>& out) {
    std::string name = d->full_name().substr(std::string("coreio.trace.").size());
    if (out.count(name)) return;
    out[name] = d;
    for (int i = 0; i < d->field_count(); ++i)
        if (const Descriptor* m = d->field(i)->message_type()) collect(m, out);
}

// The enum values of the schema, by full name, as schema.hpp has them.
const std::map<std::string, int>& known_enum_values() {
    static const std::map<std::string, int> m = {
        {"coreio.trace.Header.OBSERVER_UNKNOWN", s::header::kObserverUnknown},
        {"coreio.trace.Header.OBSERVER_CLIENT", s::header::kObserverClient},
        {"coreio.trace.Header.OBSERVER_VM", s::header::kObserverVm},
        {"coreio.trace.Header.OBSERVER_PROXY", s::header::kObserverProxy},
        {"coreio.trace.Record.CHANNEL_MAIN", s::record::kChannelMain},
        {"coreio.trace.Record.CHANNEL_DMA", s::record::kChannelDma},
        {"coreio.trace.Record.DIRECTION_TO_CLIENT", s::record::kDirectionToClient},
        {"coreio.trace.Record.DIRECTION_TO_VM", s::record::kDirectionToVm},
        {"coreio.trace.Transaction.COMPLETE", s::transaction::kStatusComplete},
        {"coreio.trace.Transaction.NO_REPLY", s::transaction::kStatusNoReply},
        {"coreio.trace.Transaction.REPLY_ONLY", s::transaction::kStatusReplyOnly},
    };
    return m;
}

}  // namespace

TEST(TraceSchema, EveryFieldAndEnumValueIsKnownToTheCodec) {
    std::map<std::string, const Descriptor*> messages;
    collect(pb::TraceFile::descriptor(), messages);
    std::set<std::string> names;
    for (const auto& [name, d] : messages) {
        names.insert(name);
        std::set<int> numbers;
        for (int i = 0; i < d->field_count(); ++i) numbers.insert(d->field(i)->number());
        const auto it = known_fields().find(name);
        ASSERT_NE(it, known_fields().end()) << "message " << name << " is not in proto/src/schema.hpp";
        EXPECT_EQ(numbers, it->second) << "fields of " << name << " differ from proto/src/schema.hpp";
        for (int e = 0; e < d->enum_type_count(); ++e)
            for (int v = 0; v < d->enum_type(e)->value_count(); ++v) {
                const auto* value = d->enum_type(e)->value(v);
                const auto k = known_enum_values().find(value->full_name());
                ASSERT_NE(k, known_enum_values().end()) << value->full_name() << " is not in proto/src/schema.hpp";
                EXPECT_EQ(k->second, value->number()) << value->full_name();
            }
    }
    EXPECT_EQ(names.size(), known_fields().size());
}

namespace {

// ---- an independent mapping Event -> generated Record, from the .proto comments --

struct Previous {
    std::uint64_t time = 0, mmio_address = 0, dma_address = 0, index = 0;
    std::uint32_t mmio_tag = ~0u, dma_tag = ~0u;
};

std::uint64_t le_value(const std::byte* p, unsigned n) {
    std::uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= std::to_integer<std::uint64_t>(p[i]) << (8 * i);
    return v;
}

void set_transaction(const Event& ev, Previous& prev, pb::Transaction& t) {
    const bool mmio = ev.kind == EventKind::Mmio;
    std::uint64_t& address = mmio ? prev.mmio_address : prev.dma_address;
    std::uint32_t& tag = mmio ? prev.mmio_tag : prev.dma_tag;
    t.set_op_size(static_cast<std::uint32_t>(ev.op) | static_cast<std::uint32_t>(ev.size) << 3);
    t.set_id(ev.id);
    t.set_address_delta(static_cast<std::int64_t>(ev.address - address));
    t.set_tag_step(static_cast<std::int32_t>(ev.tag - (tag + 1)));
    t.set_flags(ev.flags);
    t.set_sid(ev.sid);
    const auto bytes = [](const auto& a, unsigned n) { return std::string(reinterpret_cast<const char*>(a.data()), n); };
    if (ev.size <= 8) t.set_data(le_value(ev.data.data(), ev.size));
    else t.set_data_bytes(bytes(ev.data, ev.size));
    if (is_pair_op(ev.op)) {
        if (ev.size <= 8) t.set_data2(le_value(ev.data2.data(), ev.size));
        else t.set_data2_bytes(bytes(ev.data2, ev.size));
    }
    t.set_mask_xor(ev.mask ^ default_mask(ev.op, ev.size));
    t.set_error(ev.error);
    t.set_reply_after_ns(ev.reply_after_ns);
    t.set_status(static_cast<pb::Transaction::Status>(ev.status));
    if (!mmio && ev.cause != kNoCause) t.set_cause_back(prev.index - ev.cause);
    address = ev.address;
    tag = ev.tag;
}

pb::Record to_proto(const Event& ev, Previous& prev) {
    pb::Record r;
    r.set_dt_ns(static_cast<std::int64_t>(ev.time_ns - prev.time));
    r.set_channel(ev.channel == Channel::Dma ? pb::Record::CHANNEL_DMA : pb::Record::CHANNEL_MAIN);
    r.set_direction(ev.towards == Towards::Vm ? pb::Record::DIRECTION_TO_VM : pb::Record::DIRECTION_TO_CLIENT);
    r.set_client(ev.client);
    switch (ev.kind) {
    case EventKind::Mmio: set_transaction(ev, prev, *r.mutable_mmio()); break;
    case EventKind::Dma: set_transaction(ev, prev, *r.mutable_dma()); break;
    case EventKind::Irq:
        r.mutable_irq()->set_rid(ev.id);
        r.mutable_irq()->set_line(ev.line);
        r.mutable_irq()->set_level(ev.level);
        break;
    case EventKind::Claim: r.mutable_claim()->set_rid(ev.id); break;
    case EventKind::Ping: r.mutable_ping()->set_tag(ev.tag); break;
    case EventKind::Reset: r.mutable_reset(); break;
    case EventKind::Connection: r.mutable_connection()->set_up(ev.up); break;
    case EventKind::ProtocolError:
        r.mutable_protocol_error()->set_code(ev.code);
        r.mutable_protocol_error()->set_message(std::string(ev.message));
        break;
    case EventKind::Unknown: break;
    }
    r.set_raw(std::string(reinterpret_cast<const char*>(ev.raw.data()), ev.raw.size()));
    r.set_raw_reply(std::string(reinterpret_cast<const char*>(ev.raw_reply.data()), ev.raw_reply.size()));
    prev.time = ev.time_ns;
    ++prev.index;
    return r;
}

// The golden events plus what they leave out: a DMA pair of wide elements,
// small pair data, a ping, an IRQ on a high line, and every field of a DMA at once.
std::vector<Event> every_field_events() {
    std::vector<Event> v = golden::events_v1();
    Event e;
    e.time_ns = v.back().time_ns + 7;
    e.client = 3;
    e.channel = Channel::Dma;
    e.towards = Towards::Vm;
    e.kind = EventKind::Dma;
    e.op = Op::WriteAckPair;
    e.id = 5;
    e.sid = 9;
    e.flags = kFlagIfetch | kFlagPriv;
    e.size = 16;
    e.address = 0x80001000;
    e.tag = 0x3ff;
    e.mask = 0x1234;
    e.error = true;
    e.status = Status::NoReply;
    e.reply_after_ns = 99;
    e.cause = 4;
    for (int i = 0; i < 16; ++i) {
        e.data[static_cast<std::size_t>(i)] = static_cast<std::byte>(i + 1);
        e.data2[static_cast<std::size_t>(i)] = static_cast<std::byte>(0x80 + i);
    }
    static const Frame raw = Frame::dma_request(Op::WriteAck, 5, 9, 0x80001000, 16, 0, 0x3ff);
    e.raw = raw.bytes();
    e.raw_reply = raw.bytes();
    v.push_back(e);
    Event small = e;  // the same with 2-byte elements: data2 as a value
    small.time_ns += 3;
    small.size = 2;
    small.mask = 0x5;
    small.raw = small.raw_reply = {};
    v.push_back(small);
    Event ping;
    ping.time_ns = small.time_ns + 1;
    ping.kind = EventKind::Ping;
    ping.tag = 0xdeadbeef;
    v.push_back(ping);
    Event irq;
    irq.time_ns = ping.time_ns + 1;
    irq.kind = EventKind::Irq;
    irq.id = 7;
    irq.line = 7;
    irq.level = 1;
    v.push_back(irq);
    return v;
}

// Adds the numbers of the fields set in `m` and its sub-messages to `seen` (by message name).
void note_fields(const Message& m, std::map<std::string, std::set<int>>& seen) {
    std::vector<const google::protobuf::FieldDescriptor*> fields;
    m.GetReflection()->ListFields(m, &fields);
    auto& set = seen[m.GetDescriptor()->name()];
    for (const auto* f : fields) {
        set.insert(f->number());
        if (f->message_type() && !f->is_repeated()) note_fields(m.GetReflection()->GetMessage(m, f), seen);
    }
}

}  // namespace

// The events used below set every field of every record type at least once.
TEST(TraceSchema, TheRoundTripEventsSetEveryRecordField) {
    std::map<std::string, std::set<int>> seen;
    Previous prev;
    for (const Event& ev : every_field_events()) note_fields(to_proto(ev, prev), seen);
    for (const char* name : {"Record", "Transaction", "Irq", "Claim", "Ping", "Reset", "Connection", "ProtocolError"})
        EXPECT_EQ(seen[name], known_fields().at(name)) << name;
}

TEST(TraceSchema, HandEncodedRecordsParseAsTheGeneratedClassesSay) {
    detail::DeltaState state;
    Previous prev;
    std::vector<std::uint8_t> buf(1 << 16);
    const auto events = every_field_events();
    for (std::size_t i = 0; i < events.size(); ++i) {
        const std::size_t n = detail::encode_record(events[i], state, buf.data());
        pb::Record parsed;
        ASSERT_TRUE(parsed.ParseFromArray(buf.data(), static_cast<int>(n))) << "record " << i;
        const pb::Record want = to_proto(events[i], prev);
        std::string diff;
        google::protobuf::util::MessageDifferencer d;
        d.ReportDifferencesToString(&diff);
        EXPECT_TRUE(d.Compare(want, parsed)) << "record " << i << ": " << diff;
    }
}

TEST(TraceSchema, GeneratedEncodingDecodesByHandToTheSameEvents) {
    detail::DeltaState state;
    Previous prev;
    const auto events = every_field_events();
    for (std::size_t i = 0; i < events.size(); ++i) {
        const std::string bytes = to_proto(events[i], prev).SerializeAsString();
        Event got;
        std::size_t bad = 0;
        const char* e = detail::decode_record(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), state,
                                              got, &bad);
        ASSERT_EQ(e, nullptr) << "record " << i << ": " << e << " at " << bad;
        trace_test::expect_same(got, events[i], i);
    }
}

namespace {

TraceHeader every_field_header() {
    TraceHeader h = golden::header_v2();
    h.memory.push_back({3, 7, 0x1000, 0x2000, "iommu window"});
    h.observer = Observer::Vm;
    return h;
}

pb::Header to_proto(const TraceHeader& h) {
    pb::Header p;
    p.set_schema_version(h.schema_version);
    p.set_tool(h.tool);
    p.set_tool_version(h.tool_version);
    p.set_created_unix_ns(h.created_unix_ns);
    p.set_target(h.target);
    for (const auto& r : h.ranges) {
        auto* x = p.add_ranges();
        x->set_rid(r.rid);
        x->set_base(r.base);
        x->set_size(r.size);
        x->set_name(r.name);
    }
    for (const auto& m : h.memory) {
        auto* x = p.add_memory();
        x->set_mid(m.mid);
        x->set_sid(m.sid);
        x->set_base(m.base);
        x->set_size(m.size);
        x->set_name(m.name);
    }
    for (const auto& [k, v] : h.labels) (*p.mutable_labels())[k] = v;
    p.set_observer(static_cast<pb::Header::Observer>(h.observer));
    p.set_raw_frames(h.raw_frames);
    return p;
}

}  // namespace

TEST(TraceSchema, HeaderRoundTripsBothWays) {
    const TraceHeader h = every_field_header();
    const pb::Header want = to_proto(h);
    std::map<std::string, std::set<int>> seen;
    note_fields(want, seen);
    for (const auto& r : want.ranges()) note_fields(r, seen);
    for (const auto& m : want.memory()) note_fields(m, seen);
    for (const char* name : {"Header", "Range", "MemoryRegion"}) EXPECT_EQ(seen[name], known_fields().at(name)) << name;

    const std::string hand = detail::encode_header(h);
    pb::Header parsed;
    ASSERT_TRUE(parsed.ParseFromString(hand));
    std::string diff;
    google::protobuf::util::MessageDifferencer d;
    d.ReportDifferencesToString(&diff);
    EXPECT_TRUE(d.Compare(want, parsed)) << diff;

    const std::string generated = want.SerializeAsString();
    TraceHeader back;
    ASSERT_TRUE(detail::decode_header(reinterpret_cast<const std::uint8_t*>(generated.data()), generated.size(), back));
    EXPECT_EQ(back, h);
}

// A whole file as protobuf sees it: the preamble, the header and one Batch per
// batch, whose size fields add up to the records' bytes.
TEST(TraceSchema, FileBatchesParseWithTheGeneratedClasses) {
    const auto bytes = trace_test::file_bytes(std::string(COREIO_GOLDEN_DIR) + "/v2-checksum.ctrace");
    pb::TraceFile file;
    ASSERT_TRUE(file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_EQ(file.magic(), "COREIO");
    EXPECT_EQ(file.format_version(), kFormatVersion);
    EXPECT_EQ(file.header().schema_version(), 2u);
    ASSERT_EQ(file.batch_size(), 3);  // the head's, and one per flush
    std::uint64_t records = 0;
    for (const auto& b : file.batch()) records += b.size() & 0xffffff;
    std::uint64_t encoded = 0;
    for (const auto& r : file.record()) {
        const auto n = r.ByteSizeLong();
        encoded += 1 + (n < 128 ? 1 : 2) + n;
    }
    EXPECT_EQ(records, encoded);
    EXPECT_EQ(file.batch(0).size() & 0xffffff, 0u);
    EXPECT_EQ(file.record_size(), static_cast<int>(golden::events_v1().size()));
}
