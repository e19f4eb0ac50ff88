// The Lua dissector (wireshark/coreio.lua) read by tshark on pcaps written by
// `coreio-trace export --pcap`: field values of every op, pair and DMA frames,
// error replies, request/reply links, frames split across and packed into TCP
// segments, malformed frames, the port preference and the statistics.
// Skipped only when tshark is not installed (scripts/install-deps.sh installs it).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "../trace/golden_events.hpp"
#include "../trace/test_util.hpp"
#include "coreio/trace/writer.hpp"

using namespace coreio;
using namespace coreio::trace;

namespace {

const std::string kLua = COREIO_DISSECTOR;

struct Outcome {
    int code = -1;
    std::string out, err;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Outcome run(const std::string& cmd) {
    const std::string out = trace_test::temp_path("out"), err = trace_test::temp_path("err");
    const int st = std::system(("timeout 120 " + cmd + " >" + out + " 2>" + err).c_str());
    Outcome r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

bool have_tshark() { return std::system("command -v tshark >/dev/null 2>&1") == 0; }

// The golden events (every kind) plus what they lack: an acknowledged pair
// write and two more malformed frames (bad size, bad IRQ line).
std::vector<Event> test_events(std::vector<Frame>& keep) {
    std::vector<Event> v = golden::events_v1();
    v.pop_back();  // the DMA disconnect: keep the connection open for the frames below
    Event e;
    e.time_ns = 15000;
    e.kind = EventKind::Mmio;
    e.op = Op::WriteAckPair;
    e.id = 0;
    e.size = 4;
    e.flags = kFlagIfetch;
    e.address = 0x10000040;
    e.tag = 0x99;
    e.mask = write_mask(Op::WriteAckPair, 4);
    for (int i = 0; i < 4; ++i) {
        e.data[i] = std::byte(0x10 + i);
        e.data2[i] = std::byte(0x20 + i);
    }
    e.reply_after_ns = 700;
    v.push_back(e);
    keep.reserve(2);
    Frame bad_size = Frame::mmio_request(Op::Read, 0, 0x10000000, 4, 0, 0x123);
    bad_size.set_size(40);
    Frame bad_line = Frame::irq_update(0, 9, 1);
    keep = {bad_size, bad_line};
    Event p;
    p.kind = EventKind::ProtocolError;
    p.time_ns = 16000;
    p.raw = keep[0].bytes();
    v.push_back(p);
    p.time_ns = 17000;
    p.towards = Towards::Vm;
    p.raw = keep[1].bytes();
    v.push_back(p);
    return v;
}

std::string write_trace(const std::string& target = "127.0.0.1:4800") {
    std::vector<Frame> keep;
    TraceHeader h = golden::header_v1();
    h.target = target;
    const std::string path = trace_test::temp_path("ws");
    TraceWriter w;
    EXPECT_EQ(w.open(path, h), "");
    for (const Event& e : test_events(keep)) w.append(e);
    EXPECT_EQ(w.close(), "");
    return path;
}

std::string export_pcap(const std::string& trace, const std::string& extra = "") {
    const std::string pcap = trace + ".pcap";
    const Outcome r = run(std::string(COREIO_TRACE_BIN) + " export " + trace + " --pcap " + pcap + " " + extra);
    EXPECT_EQ(r.code, 0) << r.err;
    return pcap;
}

const std::vector<std::string> kFields = {
    "frame.number", "coreio.kind", "coreio.op_name", "coreio.op", "coreio.rid", "coreio.mid", "coreio.size",
    "coreio.sid", "coreio.flags", "coreio.mask", "coreio.addr", "coreio.data", "coreio.value", "coreio.addr2",
    "coreio.data2", "coreio.error", "coreio.client_originated", "coreio.tag", "coreio.irq.line",
    "coreio.irq.level", "coreio.reply_in", "coreio.request_in", "coreio.time", "coreio.extra_blocks"};

using Row = std::map<std::string, std::string>;

// tshark -T fields over every CoreIO frame: one row per frame (a packet with
// several frames gives its values comma-separated, split here into rows).
std::vector<Row> decode(const std::string& pcap, const std::string& options = "") {
    std::string cmd = "tshark -n -2 -X lua_script:" + kLua + " -r " + pcap + " " + options +
                      " -Y coreio -T fields -E separator=/t -E occurrence=a -E aggregator=,";
    for (const auto& f : kFields) cmd += " -e " + f;
    const Outcome r = run(cmd);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err.find("Lua Error"), std::string::npos) << r.err;
    std::vector<Row> rows;
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
        std::vector<std::vector<std::string>> cols;
        std::size_t start = 0, frames = 1;
        for (std::size_t i = 0; i < kFields.size(); ++i) {
            const auto tab = line.find('\t', start);
            const std::string cell = line.substr(start, tab == std::string::npos ? std::string::npos : tab - start);
            start = tab == std::string::npos ? line.size() : tab + 1;
            std::vector<std::string> parts;
            std::istringstream cs(cell);
            std::string part;
            while (std::getline(cs, part, ',')) parts.push_back(part);
            if (kFields[i] == "coreio.kind") frames = parts.size();
            cols.push_back(parts);
        }
        for (std::size_t f = 0; f < frames; ++f) {
            Row row;
            for (std::size_t i = 0; i < kFields.size(); ++i) {
                // Fields present in every frame are per frame; others belong to the frames that have them,
                // which the tests below only read from single-frame packets.
                const auto& c = cols[i];
                if (kFields[i] == "frame.number") row[kFields[i]] = c.empty() ? "" : c[0];
                else if (c.size() == frames) row[kFields[i]] = c[f];
                else if (frames == 1 && !c.empty()) row[kFields[i]] = c[0];
                else row[kFields[i]] = c.empty() ? "" : "?";
            }
            rows.push_back(row);
        }
    }
    return rows;
}

// The first row with this kind and op name (and, if given, this address).
const Row* find(const std::vector<Row>& rows, const std::string& kind, const std::string& op,
                const std::string& addr = "") {
    for (const auto& r : rows)
        if (r.at("coreio.kind") == kind && r.at("coreio.op_name") == op && (addr.empty() || r.at("coreio.addr") == addr))
            return &r;
    return nullptr;
}

class Dissector : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_tshark()) GTEST_SKIP() << "tshark is not installed (scripts/install-deps.sh installs it)";
        // tshark present but without Lua (or Lua off for root) is a failure, not a skip.
        const std::string probe = trace_test::temp_path("probe") + ".lua";
        std::ofstream(probe) << "print('coreio-lua-probe ' .. _VERSION)\n";
        const Outcome r = run("tshark -X lua_script:" + probe + " -v");
        ASSERT_NE(r.out.find("coreio-lua-probe"), std::string::npos)
            << "tshark cannot run Lua scripts here:\n" << r.out << r.err;
    }
};

TEST_F(Dissector, DecodesEveryOpWithItsFields) {
    const auto rows = decode(export_pcap(write_trace()));
    const Row* claim = find(rows, "claim", "RGN_CLAIM");
    ASSERT_NE(claim, nullptr);
    EXPECT_EQ(claim->at("coreio.rid"), "3");
    EXPECT_EQ(claim->at("coreio.client_originated"), "1");

    const Row* read = find(rows, "MMIO reply", "READ", "0x0000000010000004");
    ASSERT_NE(read, nullptr);
    EXPECT_EQ(read->at("coreio.op"), "0x00000001");
    EXPECT_EQ(read->at("coreio.rid"), "0");
    EXPECT_EQ(read->at("coreio.size"), "4");
    EXPECT_EQ(read->at("coreio.data"), "2a000000");
    EXPECT_EQ(read->at("coreio.value"), "0x000000000000002a");
    EXPECT_EQ(read->at("coreio.client_originated"), "0");
    EXPECT_EQ(read->at("coreio.error"), "0");

    const Row* write = find(rows, "MMIO posted write", "WRITE");
    ASSERT_NE(write, nullptr);
    EXPECT_EQ(write->at("coreio.flags"), "0x0000000c");  // PRIV | SECURE
    EXPECT_EQ(write->at("coreio.mask"), "0x000000ff");
    EXPECT_EQ(write->at("coreio.data"), "f0f1f2f3f4f5f6f7");
    EXPECT_EQ(write->at("coreio.tag"), "0x00000001");

    const Row* writea = find(rows, "MMIO request", "WRITEA");
    ASSERT_NE(writea, nullptr);
    EXPECT_EQ(writea->at("coreio.op"), "0x00000005");
    EXPECT_EQ(writea->at("coreio.tag"), "0x0000004d");

    const Row* irq = find(rows, "IRQ update", "IRQ_UPDATE");
    ASSERT_NE(irq, nullptr);
    EXPECT_EQ(irq->at("coreio.rid"), "3");
    EXPECT_EQ(irq->at("coreio.irq.line"), "5");
    EXPECT_EQ(irq->at("coreio.irq.level"), "1");

    const Row* ping = find(rows, "ping", "PING");
    ASSERT_NE(ping, nullptr);
    EXPECT_EQ(ping->at("coreio.tag"), "0xdeadbeef");
    EXPECT_NE(find(rows, "ping echo", "PING"), nullptr);
    const Row* reset = find(rows, "reset", "RESET");
    ASSERT_NE(reset, nullptr);
    EXPECT_EQ(reset->at("coreio.op"), "0x000000ff");
}

TEST_F(Dissector, PairFramesShowBothElements) {
    const auto rows = decode(export_pcap(write_trace()));
    const Row* readp = find(rows, "MMIO reply", "READP");
    ASSERT_NE(readp, nullptr);
    EXPECT_EQ(readp->at("coreio.size"), "16");
    EXPECT_EQ(readp->at("coreio.addr"), "0x0000000020003200");
    EXPECT_EQ(readp->at("coreio.addr2"), "0x0000000020003210");
    EXPECT_EQ(readp->at("coreio.data"), "404142434445464748494a4b4c4d4e4f");
    EXPECT_EQ(readp->at("coreio.data2"), "808182838485868788898a8b8c8d8e8f");

    const Row* writep = find(rows, "MMIO posted write", "WRITEP");
    ASSERT_NE(writep, nullptr);
    EXPECT_EQ(writep->at("coreio.mask"), "0x00000101");
    EXPECT_EQ(writep->at("coreio.data"), "1200");
    EXPECT_EQ(writep->at("coreio.data2"), "3400");  // element 2 at w4 for sizes 1..7
    EXPECT_EQ(writep->at("coreio.addr2"), "0x0000000010000022");

    const Row* writeap = find(rows, "MMIO request", "WRITEAP");
    ASSERT_NE(writeap, nullptr);
    EXPECT_EQ(writeap->at("coreio.flags"), "0x00000002");  // IFETCH
    EXPECT_EQ(writeap->at("coreio.data"), "10111213");
    EXPECT_EQ(writeap->at("coreio.data2"), "20212223");
    EXPECT_NE(find(rows, "MMIO reply", "WRITEAP"), nullptr);
}

TEST_F(Dissector, DmaFramesAndErrorReplies) {
    const auto rows = decode(export_pcap(write_trace()));
    const Row* dma = find(rows, "DMA request", "WRITEA");
    ASSERT_NE(dma, nullptr);
    EXPECT_EQ(dma->at("coreio.mid"), "1");
    EXPECT_EQ(dma->at("coreio.rid"), "");
    EXPECT_EQ(dma->at("coreio.sid"), "2");
    EXPECT_EQ(dma->at("coreio.mask"), "0x0000ffff");
    EXPECT_EQ(dma->at("coreio.tag"), "0x00000007");  // the packet id
    EXPECT_EQ(dma->at("coreio.client_originated"), "1");
    EXPECT_EQ(dma->at("coreio.data"), "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf");

    const Row* fault = find(rows, "DMA reply", "READ");
    ASSERT_NE(fault, nullptr);
    EXPECT_EQ(fault->at("coreio.error"), "1");
    EXPECT_EQ(fault->at("coreio.client_originated"), "1");
    const Row* bus_error = find(rows, "MMIO reply", "READ", "0x0000000020003100");
    ASSERT_NE(bus_error, nullptr);
    EXPECT_EQ(bus_error->at("coreio.error"), "1");
    EXPECT_EQ(bus_error->at("coreio.size"), "32");
    const Row* request = find(rows, "MMIO request", "READ", "0x0000000020003100");
    ASSERT_NE(request, nullptr);
    EXPECT_EQ(request->at("coreio.error"), "0");
}

TEST_F(Dissector, LinksRequestsAndRepliesWithLatency) {
    const auto rows = decode(export_pcap(write_trace()));
    struct Expect {
        std::string kind, op, addr, latency;
    };
    const std::vector<Expect> pairs = {
        {"MMIO", "READ", "0x0000000010000004", "0.000001234"},
        {"MMIO", "READ", "0x0000000020003100", "0.000000099"},
        {"MMIO", "READP", "", "0.000000500"},
        {"MMIO", "WRITEA", "", "0.000000800"},
        {"MMIO", "WRITEAP", "", "0.000000700"},
        {"DMA", "WRITEA", "", "0.000003000"},
        {"DMA", "READ", "", "0.000000010"},
    };
    for (const auto& p : pairs) {
        SCOPED_TRACE(p.kind + " " + p.op + " " + p.addr);
        const Row* req = find(rows, p.kind + " request", p.op, p.addr);
        const Row* rep = find(rows, p.kind + " reply", p.op, p.addr);
        ASSERT_TRUE(req && rep);
        EXPECT_EQ(req->at("coreio.reply_in"), rep->at("frame.number"));
        EXPECT_EQ(rep->at("coreio.request_in"), req->at("frame.number"));
        EXPECT_EQ(rep->at("coreio.time"), p.latency);
    }
    const Row* ping = find(rows, "ping", "PING");
    const Row* echo = find(rows, "ping echo", "PING");
    ASSERT_TRUE(ping && echo);
    EXPECT_EQ(echo->at("coreio.request_in"), ping->at("frame.number"));
    // The read that never got a reply links to nothing; the reply whose request was not seen neither.
    const Row* lost = find(rows, "MMIO request", "READ", "0x0000000010000fff");
    ASSERT_NE(lost, nullptr);
    EXPECT_EQ(lost->at("coreio.reply_in"), "");
    const Row* orphan = find(rows, "MMIO reply", "READ", "0x0000000010000002");
    ASSERT_NE(orphan, nullptr);
    EXPECT_EQ(orphan->at("coreio.request_in"), "");
}

// The same frames, cut into 40-byte segments (each frame split across two or
// three) and packed 200 bytes a segment (several frames per segment), decode
// to the same field values as one frame per segment.
TEST_F(Dissector, ReassemblesFramesAcrossAndWithinSegments) {
    const std::string trace = write_trace();
    // Each frame as one line of its field values (links and frame numbers left
    // out: segmenting moves frames between packets), sorted: segmenting may
    // also change the order of frames on different connections.
    auto strip = [](const std::vector<Row>& rows) {
        std::vector<std::string> lines;
        for (const auto& r : rows) {
            std::string line;
            for (const auto& [k, v] : r)
                if (k != "frame.number" && k != "coreio.reply_in" && k != "coreio.request_in" && k != "coreio.time")
                    line += k.substr(7) + "=" + v + " ";
            lines.push_back(line);
        }
        std::sort(lines.begin(), lines.end());
        return lines;
    };
    const auto whole = strip(decode(export_pcap(trace)));
    ASSERT_GT(whole.size(), 25u);

    const std::string split_pcap = trace + ".40.pcap";
    ASSERT_EQ(run(std::string(COREIO_TRACE_BIN) + " export " + trace + " --pcap " + split_pcap + " --pcap-segment 40").code, 0);
    const auto split = strip(decode(split_pcap));
    EXPECT_EQ(split, whole);
    // Every data segment is at most 40 bytes, so frames really were split.
    const Outcome sizes = run("tshark -n -r " + split_pcap + " -Y 'tcp.len > 40' -T fields -e frame.number");
    EXPECT_EQ(sizes.code, 0);
    EXPECT_EQ(sizes.out, "");

    const std::string packed_pcap = trace + ".200.pcap";
    ASSERT_EQ(run(std::string(COREIO_TRACE_BIN) + " export " + trace + " --pcap " + packed_pcap + " --pcap-segment 200").code, 0);
    const auto packed = decode(packed_pcap);
    EXPECT_EQ(strip(packed).size(), whole.size());
    const Outcome multi = run("tshark -n -2 -X lua_script:" + kLua + " -r " + packed_pcap +
                              " -Y 'count(coreio.op) >= 2' -T fields -e frame.number");
    EXPECT_NE(multi.out, "") << "no segment carried two frames";
    // Links survive reassembly.
    const Row* rep = find(packed, "MMIO reply", "READ", "0x0000000010000004");
    ASSERT_NE(rep, nullptr);
    EXPECT_NE(rep->at("coreio.request_in"), "");
}

TEST_F(Dissector, MalformedFramesAreExpertInfoNotLuaErrors) {
    const std::string pcap = export_pcap(write_trace());
    const Outcome r = run("tshark -n -2 -X lua_script:" + kLua + " -r " + pcap +
                          " -Y coreio.malformed -T fields -e _ws.expert.message");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err.find("Lua Error"), std::string::npos) << r.err;
    EXPECT_NE(r.out.find("unknown opcode 0x13"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("size 40 not in 1..32"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("IRQ line 9 > 7"), std::string::npos) << r.out;
    const Outcome errors = run("tshark -n -2 -X lua_script:" + kLua + " -r " + pcap +
                               " -Y coreio.error_reply -T fields -e frame.number");
    EXPECT_EQ(std::count(errors.out.begin(), errors.out.end(), '\n'), 2) << errors.out;  // the MMIO and DMA error replies
}

TEST_F(Dissector, PortIsAPreference) {
    const std::string pcap = export_pcap(write_trace("127.0.0.1:5555"));
    EXPECT_TRUE(decode(pcap).empty()) << "decoded on a port that is not the preference";
    const auto rows = decode(pcap, "-o coreio.tcp_port:5555");
    EXPECT_GT(rows.size(), 25u);
    EXPECT_NE(find(rows, "DMA request", "WRITEA"), nullptr);
}

TEST_F(Dissector, StatisticsCountFramesPerOp) {
    const std::string pcap = export_pcap(write_trace());
    const Outcome r = run("tshark -n -2 -q -X lua_script:" + kLua + " -r " + pcap + " -o coreio.stats:TRUE");
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("CoreIO statistics"), std::string::npos) << r.out;
    // Three READ replies (one an error); the DMA WRITEA reply took 3 us.
    EXPECT_NE(r.out.find("MMIO reply READ                         3       1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DMA reply WRITEA                        1       0        3.000        3.000"),
              std::string::npos) << r.out;
    const Outcome quiet = run("tshark -n -2 -q -X lua_script:" + kLua + " -r " + pcap);
    EXPECT_EQ(quiet.out.find("CoreIO statistics"), std::string::npos) << "statistics printed without the preference";
}

// Sends UDP datagrams carrying `marker` to 127.0.0.1:9 until the capture file
// holds one (at most 10 s). Packets leave the kernel's capture ring in order,
// so everything sent before the marker is in the file too.
bool capture_has_marker(const std::string& pcap, const std::string& marker) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return false;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool seen = false;
    for (int i = 0; i < 100 && !seen; ++i) {
        ::sendto(fd, marker.data(), marker.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
        ::usleep(100000);
        std::ifstream in(pcap, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        seen = bytes.find(marker) != std::string::npos;
    }
    ::close(fd);
    return seen;
}

// Bonus: real traffic captured on the loopback interface (the mock VM running
// the regfile script against the C example device). Skipped when this user
// may not capture.
TEST_F(Dissector, DecodesALiveLoopbackCapture) {
    const std::string dir = trace_test::temp_path("live");
    const std::string pcap = dir + ".pcapng", log = dir + ".dumpcap.log", pid = dir + ".pid";
    if (std::system(("dumpcap -i lo -f 'tcp or udp port 9' -a duration:60 -q -w " + pcap + " >" + log + " 2>&1 & echo $! >" + pid)
                        .c_str()) != 0)
        GTEST_SKIP() << "cannot start dumpcap";
    bool capturing = false;
    for (int i = 0; i < 100 && !capturing; ++i) {  // at most 10 s
        const std::string l = slurp(log);
        capturing = l.find("Capturing on") != std::string::npos;
        if (!capturing && (l.find("ermission") != std::string::npos || l.find("dumpcap:") != std::string::npos)) break;
        if (!capturing) ::usleep(100000);
    }
    const std::string dumpcap_pid = slurp(pid).substr(0, slurp(pid).find('\n'));
    if (!capturing) {
        std::system(("kill " + dumpcap_pid + " 2>/dev/null").c_str());
        GTEST_SKIP() << "this user may not capture on lo: " << slurp(log);
    }
    // "Capturing on" comes before packets really reach the file.
    const std::string tag = std::to_string(::getpid());
    ASSERT_TRUE(capture_has_marker(pcap, "coreio-start-" + tag)) << "dumpcap wrote no packets: " << slurp(log);
    const Outcome session = run("sh " + std::string(COREIO_RUN_TEST) + " script " + COREIO_MOCKVM_BIN + " " +
                                COREIO_REGFILE_SCRIPT + " " + dir + " -- " + COREIO_REGFILE_BIN);
    // The session's packets may still sit in the kernel's capture ring (dumpcap
    // drops them on SIGINT): wait until a marker sent after them is in the file.
    EXPECT_TRUE(capture_has_marker(pcap, "coreio-end-" + tag));
    std::system(("kill -INT " + dumpcap_pid).c_str());
    for (int i = 0; i < 100 && std::system(("kill -0 " + dumpcap_pid + " 2>/dev/null").c_str()) == 0; ++i)
        ::usleep(100000);
    ASSERT_EQ(session.code, 0) << session.out << session.err;
    const auto at = session.out.find("listening on 127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << session.out;
    const std::string port = session.out.substr(at + 23, session.out.find('\n', at) - at - 23);

    const auto rows = decode(pcap, "-o coreio.tcp_port:" + port);
    EXPECT_NE(find(rows, "claim", "RGN_CLAIM"), nullptr);
    const Row* read = find(rows, "MMIO reply", "READ", "0x00000000fef00004");
    ASSERT_NE(read, nullptr);
    EXPECT_EQ(read->at("coreio.value"), "0x0000000044556677");
    EXPECT_NE(read->at("coreio.request_in"), "");
    const Row* irq = find(rows, "IRQ update", "IRQ_UPDATE");
    ASSERT_NE(irq, nullptr);
    EXPECT_EQ(irq->at("coreio.irq.level"), "1");
    EXPECT_NE(find(rows, "ping echo", "PING"), nullptr);
}

}  // namespace
