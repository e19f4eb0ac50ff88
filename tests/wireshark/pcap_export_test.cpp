// export_pcap() checked without Wireshark: the pcap structure, TCP sequence
// numbers that continue segment to segment on each side of each connection,
// payloads that carry exactly the trace's frames, recorded timestamps.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <tuple>

#include "../trace/golden_events.hpp"
#include "../trace/test_util.hpp"
#include "coreio/recorder/pcap_export.hpp"
#include "coreio/trace/writer.hpp"

using namespace coreio;

namespace {

struct Packet {
    std::uint64_t unix_ns = 0;
    std::uint32_t src = 0, dst = 0;
    std::uint16_t sport = 0, dport = 0;
    std::uint32_t seq = 0;
    std::uint8_t flags = 0;
    std::vector<std::uint8_t> payload;
};

std::uint32_t be(const std::uint8_t* p, int n) {
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | p[i];
    return v;
}

// Exports the golden events (with `segment` bytes a segment, and `target` in
// the header) and parses the pcap back.
std::vector<Packet> export_golden(std::size_t segment, const std::string& target = "127.0.0.1:4800") {
    const std::string path = trace_test::temp_path("pcap");
    trace::TraceWriter w;
    trace::TraceHeader h = golden::header_v1();
    h.target = target;
    EXPECT_EQ(w.open(path, h), "");
    for (const auto& e : golden::events_v1()) w.append(e);
    EXPECT_EQ(w.close(), "");
    trace::TraceReader r;
    EXPECT_EQ(r.open(path), "");
    char* buf = nullptr;
    std::size_t len = 0;
    std::FILE* mem = ::open_memstream(&buf, &len);
    recorder::PcapOptions o;
    o.segment_bytes = segment;
    EXPECT_EQ(recorder::export_pcap(r, mem, o), "");
    std::fclose(mem);
    std::vector<std::uint8_t> bytes(buf, buf + len);
    std::free(buf);

    std::vector<Packet> out;
    EXPECT_GE(bytes.size(), 24u);
    std::uint32_t magic = 0, linktype = 0;
    std::memcpy(&magic, bytes.data(), 4);
    std::memcpy(&linktype, bytes.data() + 20, 4);
    EXPECT_EQ(magic, 0xa1b23c4du);  // nanosecond pcap, host order
    EXPECT_EQ(linktype, 1u);         // Ethernet
    for (std::size_t at = 24; at + 16 <= bytes.size();) {
        std::uint32_t rec[4];
        std::memcpy(rec, bytes.data() + at, 16);
        const std::uint8_t* p = bytes.data() + at + 16;
        EXPECT_EQ(rec[2], rec[3]);
        EXPECT_LE(at + 16 + rec[2], bytes.size());
        Packet k;
        k.unix_ns = std::uint64_t{rec[0]} * 1'000'000'000 + rec[1];
        const std::uint8_t* ip = p + 14;
        const std::uint8_t* tcp = ip + 20;
        EXPECT_EQ(be(p + 12, 2), 0x0800u);
        EXPECT_EQ(be(ip + 2, 2), rec[2] - 14);
        k.src = be(ip + 12, 4);
        k.dst = be(ip + 16, 4);
        k.sport = static_cast<std::uint16_t>(be(tcp, 2));
        k.dport = static_cast<std::uint16_t>(be(tcp + 2, 2));
        k.seq = be(tcp + 4, 4);
        k.flags = tcp[13];
        k.payload.assign(tcp + 20, p + rec[2]);
        out.push_back(k);
        at += 16 + rec[2];
    }
    return out;
}

// Per direction (src, dst port): the concatenated payload; checks that every
// segment starts where the previous one of that direction ended.
std::map<std::pair<int, int>, std::vector<std::uint8_t>> streams(const std::vector<Packet>& packets) {
    std::map<std::pair<int, int>, std::vector<std::uint8_t>> data;
    std::map<std::pair<int, int>, std::uint32_t> next;
    for (const auto& k : packets) {
        const auto dir = std::make_pair(int{k.sport}, int{k.dport});
        if (k.flags & 0x02) {  // SYN
            next[dir] = k.seq + 1;
            continue;
        }
        EXPECT_EQ(k.seq, next[dir]) << "port " << k.sport << " -> " << k.dport;
        next[dir] = k.seq + static_cast<std::uint32_t>(k.payload.size()) + ((k.flags & 0x01) ? 1 : 0);
        data[dir].insert(data[dir].end(), k.payload.begin(), k.payload.end());
    }
    return data;
}

TEST(PcapExport, SequenceNumbersAndPayloadsMatchTheTrace) {
    const auto packets = export_golden(0);
    ASSERT_FALSE(packets.empty());
    const auto data = streams(packets);
    // Client 0 main (40000) and DMA (40001), client 1 main (40002); VM on 4800.
    EXPECT_EQ(data.at({4800, 40000}).size(), 64u * 10);  // 7 MMIO requests, ping, reset, protocol error
    EXPECT_EQ(data.at({40000, 4800}).size(), 64u * 8);   // claim, 5 replies (one reply-only), irq, echo
    EXPECT_EQ(data.at({40001, 4800}).size(), 64u * 2);   // two DMA requests
    EXPECT_EQ(data.at({4800, 40001}).size(), 64u * 2);   // and their replies
    EXPECT_EQ(data.at({40002, 4800}).size(), 64u);       // client 1's claim
    // The first MMIO read: request at created + 2500 ns, data filled in the reply 1234 ns later.
    const std::uint64_t t0 = golden::header_v1().created_unix_ns;
    bool seen = false;
    for (const auto& k : packets)
        if (k.sport == 40000 && k.payload.size() == 64 && k.payload[8] == 0x01 && k.payload[24] == 0x2a) {
            EXPECT_EQ(k.unix_ns, t0 + 2500 + 1234);
            seen = true;
        }
    EXPECT_TRUE(seen);
}

TEST(PcapExport, SegmentingKeepsTheByteStreams) {
    const auto whole = streams(export_golden(0));
    for (std::size_t n : {1u, 40u, 64u, 200u}) {
        SCOPED_TRACE(n);
        const auto packets = export_golden(n);
        for (const auto& k : packets) EXPECT_LE(k.payload.size(), n);
        EXPECT_EQ(streams(packets), whole);
    }
}

TEST(PcapExport, VmEndpointComesFromTheTarget) {
    struct Case {
        std::string target;
        std::uint32_t vm_ip, client_ip;
        std::uint16_t port;
    };
    for (const Case& c : {Case{"10.1.2.3:4801", 0x0a010203, 0xc0000201, 4801},
                          Case{"localhost:5000", 0x7f000001, 0x7f000001, 5000},
                          Case{"127.0.0.1", 0x7f000001, 0x7f000001, 4800},
                          Case{"", 0x7f000001, 0x7f000001, 4800},
                          Case{"[::1]:4802", 0x7f000001, 0x7f000001, 4802},
                          Case{"[::1]", 0x7f000001, 0x7f000001, 4800},
                          Case{"::1", 0x7f000001, 0x7f000001, 4800}}) {
        SCOPED_TRACE(c.target);
        const auto packets = export_golden(0, c.target);
        ASSERT_FALSE(packets.empty());
        for (const auto& k : packets) {
            const bool to_vm = k.dport == c.port;
            EXPECT_TRUE(to_vm || k.sport == c.port) << k.sport << " -> " << k.dport;
            EXPECT_EQ(to_vm ? k.dst : k.src, c.vm_ip);
            EXPECT_EQ(to_vm ? k.src : k.dst, c.client_ip);
        }
    }
}

}  // namespace
