#include "coreio/recorder/pcap_export.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <queue>
#include <vector>

#include "read_records.hpp"

namespace coreio::recorder {
namespace {

using trace::Event;
using trace::EventKind;
using Bytes = std::vector<std::byte>;

// ---- pcap file: Ethernet + IPv4 + TCP around a payload ---------------------

struct Endpoint {
    std::uint32_t ip = 0;  // host order
    std::uint16_t port = 0;
};

struct Segment {
    Endpoint src, dst;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = 0;
    std::span<const std::byte> payload;
};

constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kPsh = 0x08, kAck = 0x10;
constexpr std::size_t kEthBytes = 14, kIpBytes = 20, kTcpBytes = 20;
constexpr std::size_t kMaxPayload = 65000;  // an IPv4 packet holds at most 65535 bytes

void put16(std::uint8_t* p, std::uint16_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v);
}
void put32(std::uint8_t* p, std::uint32_t v) {
    put16(p, static_cast<std::uint16_t>(v >> 16));
    put16(p + 2, static_cast<std::uint16_t>(v));
}

// Internet checksum (RFC 1071) over `n` bytes, continuing from `sum`.
std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t sum = 0) {
    for (std::size_t i = 0; i + 1 < n; i += 2) sum += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<std::uint32_t>(p[n - 1] << 8);
    return sum;
}
std::uint16_t fold(std::uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum);
}

class PcapFile {
public:
    explicit PcapFile(std::FILE* out) : out_(out) {
        // Classic pcap header in host byte order; the magic says "nanosecond timestamps".
        struct {
            std::uint32_t magic = 0xa1b23c4d;
            std::uint16_t major = 2, minor = 4;
            std::int32_t zone = 0;
            std::uint32_t sigfigs = 0, snaplen = 262144, linktype = 1;  // Ethernet
        } h;
        static_assert(sizeof h == 24);
        std::fwrite(&h, sizeof h, 1, out_);
    }

    void write(std::uint64_t unix_ns, const Segment& s) {
        const std::size_t n = s.payload.size();
        buf_.assign(kEthBytes + kIpBytes + kTcpBytes + n, 0);
        std::uint8_t* eth = buf_.data();
        const std::uint8_t mac_dst[6] = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(s.dst.port == vm_port_ ? 1 : 2)};
        const std::uint8_t mac_src[6] = {0x02, 0, 0, 0, 0, static_cast<std::uint8_t>(s.src.port == vm_port_ ? 1 : 2)};
        std::memcpy(eth, mac_dst, 6);
        std::memcpy(eth + 6, mac_src, 6);
        put16(eth + 12, 0x0800);
        std::uint8_t* ip = eth + kEthBytes;
        ip[0] = 0x45;
        put16(ip + 2, static_cast<std::uint16_t>(kIpBytes + kTcpBytes + n));
        put16(ip + 4, ip_id_++);
        put16(ip + 6, 0x4000);  // don't fragment
        ip[8] = 64;
        ip[9] = 6;  // TCP
        put32(ip + 12, s.src.ip);
        put32(ip + 16, s.dst.ip);
        put16(ip + 10, fold(sum16(ip, kIpBytes)));
        std::uint8_t* tcp = ip + kIpBytes;
        put16(tcp, s.src.port);
        put16(tcp + 2, s.dst.port);
        put32(tcp + 4, s.seq);
        put32(tcp + 8, s.flags & kAck ? s.ack : 0);
        tcp[12] = (kTcpBytes / 4) << 4;
        tcp[13] = s.flags;
        put16(tcp + 14, 65535);
        if (n) std::memcpy(tcp + kTcpBytes, s.payload.data(), n);
        std::uint8_t pseudo[12] = {};
        put32(pseudo, s.src.ip);
        put32(pseudo + 4, s.dst.ip);
        pseudo[9] = 6;
        put16(pseudo + 10, static_cast<std::uint16_t>(kTcpBytes + n));
        put16(tcp + 16, fold(sum16(tcp, kTcpBytes + n, sum16(pseudo, sizeof pseudo))));

        const std::uint32_t rec[4] = {static_cast<std::uint32_t>(unix_ns / 1'000'000'000),
                                      static_cast<std::uint32_t>(unix_ns % 1'000'000'000),
                                      static_cast<std::uint32_t>(buf_.size()), static_cast<std::uint32_t>(buf_.size())};
        std::fwrite(rec, sizeof rec, 1, out_);
        std::fwrite(buf_.data(), buf_.size(), 1, out_);
    }
    void set_vm_port(std::uint16_t p) { vm_port_ = p; }

private:
    std::FILE* out_;
    std::vector<std::uint8_t> buf_;
    std::uint16_t ip_id_ = 1;
    std::uint16_t vm_port_ = 0;
};

// ---- one TCP connection: sequence numbers and segmenting ------------------

enum class Dir : std::uint8_t { ToVm = 0, ToClient = 1 };

class TcpConnection {
public:
    TcpConnection(PcapFile& file, Endpoint client, Endpoint vm, std::size_t segment_bytes)
        : file_(file), end_{client, vm}, segment_bytes_(std::min(segment_bytes, kMaxPayload)) {}

    // SYN, SYN-ACK, ACK: the stream starts cleanly in Wireshark.
    void open(std::uint64_t t) {
        segment(t, Dir::ToVm, kSyn, {});
        ++seq_[0];
        segment(t, Dir::ToClient, kSyn | kAck, {});
        ++seq_[1];
        segment(t, Dir::ToVm, kAck, {});
    }
    void close(std::uint64_t t) {
        flush(t, Dir::ToVm);
        flush(t, Dir::ToClient);
        segment(t, Dir::ToVm, kFin | kAck, {});
        ++seq_[0];
        segment(t, Dir::ToClient, kFin | kAck, {});
        ++seq_[1];
        segment(t, Dir::ToVm, kAck, {});
    }
    void send(std::uint64_t t, Dir d, std::span<const std::byte> bytes) {
        if (segment_bytes_ == 0) {
            for (std::size_t at = 0; at < bytes.size(); at += kMaxPayload)
                segment(t, d, kPsh | kAck, bytes.subspan(at, std::min(kMaxPayload, bytes.size() - at)));
            return;
        }
        flush(t, other(d));  // the other side's bytes went first
        Bytes& p = pending_[index(d)];
        p.insert(p.end(), bytes.begin(), bytes.end());
        std::size_t at = 0;
        for (; p.size() - at >= segment_bytes_; at += segment_bytes_)
            segment(t, d, kPsh | kAck, std::span<const std::byte>(p).subspan(at, segment_bytes_));
        p.erase(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(at));
    }
    void flush(std::uint64_t t, Dir d) {
        Bytes& p = pending_[index(d)];
        for (std::size_t at = 0; at < p.size(); at += kMaxPayload)
            segment(t, d, kPsh | kAck, std::span<const std::byte>(p).subspan(at, std::min(kMaxPayload, p.size() - at)));
        p.clear();
    }

private:
    static unsigned index(Dir d) { return static_cast<unsigned>(d); }
    static Dir other(Dir d) { return d == Dir::ToVm ? Dir::ToClient : Dir::ToVm; }

    void segment(std::uint64_t t, Dir d, std::uint8_t flags, std::span<const std::byte> payload) {
        const unsigned i = index(d);
        Segment s;
        s.src = d == Dir::ToVm ? end_[0] : end_[1];
        s.dst = d == Dir::ToVm ? end_[1] : end_[0];
        s.seq = seq_[i];
        s.ack = seq_[1 - i];
        s.flags = flags;
        s.payload = payload;
        file_.write(t, s);
        seq_[i] += static_cast<std::uint32_t>(payload.size());
    }

    PcapFile& file_;
    Endpoint end_[2];                          // client, vm
    std::uint32_t seq_[2] = {1000, 5000000};   // next sequence number: to VM, to client
    Bytes pending_[2];
    std::size_t segment_bytes_;
};

// ---- events -> frames -------------------------------------------------------

struct Send {
    std::uint64_t time_ns = 0;  // since the trace start
    std::uint64_t order = 0;    // ties broken by the order sends were made
    std::uint32_t client = 0;
    Channel channel = Channel::Main;
    Dir dir = Dir::ToClient;
    enum class What : std::uint8_t { Data, Open, Close } what = What::Data;
    Bytes bytes;
    bool operator>(const Send& o) const { return time_ns != o.time_ns ? time_ns > o.time_ns : order > o.order; }
};

Bytes bytes_of(const Frame& f) { return Bytes(f.data(), f.data() + kBlockSize); }
Bytes bytes_of(std::span<const std::byte> raw) { return Bytes(raw.begin(), raw.end()); }

// Copies an access's data (single: `size` bytes; pair: both elements) into a frame.
void put_data(Frame& f, const Event& ev) {
    if (is_pair_op(ev.op)) {
        const std::size_t n = std::min<std::size_t>(ev.size, kMaxPairElement);
        std::memcpy(f.payload(), ev.data.data(), n);
        std::memcpy(f.pair_second(), ev.data2.data(), n);
    } else {
        std::memcpy(f.payload(), ev.data.data(), std::min<std::size_t>(ev.size, kMaxAccessSize));
    }
}

// The request and reply frames of an MMIO access or a DMA chunk, from the
// recorded fields (used when the trace carries no raw frames).
std::pair<Frame, Frame> rebuild_transaction(const Event& ev) {
    const bool mmio = ev.kind == EventKind::Mmio;
    Frame req = mmio ? Frame::mmio_request(ev.op, ev.id, ev.address, ev.size, ev.flags, ev.tag)
                     : Frame::dma_request(ev.op, ev.id, ev.sid, ev.address, ev.size, ev.flags, ev.tag);
    req.set_byte_mask(ev.mask);
    if (!is_read_op(ev.op)) put_data(req, ev);
    Frame reply = req;
    if (is_read_op(ev.op)) put_data(reply, ev);
    reply.set_error(ev.error);
    return {req, reply};
}

bool has_reply(const Event& ev) {
    if (ev.status == trace::Status::NoReply) return false;
    return ev.kind == EventKind::Dma || access_wants_reply(ev.op);
}

// The sends of one event (0..2 frames, or a connection change), in order.
std::vector<Send> sends_of(const Event& ev) {
    std::vector<Send> out;
    auto add = [&](std::uint64_t t, Channel ch, Dir d, Bytes b) {
        Send s;
        s.time_ns = t;
        s.client = ev.client;
        s.channel = ch;
        s.dir = d;
        s.bytes = std::move(b);
        out.push_back(std::move(s));
    };
    const Dir towards = ev.towards == trace::Towards::Vm ? Dir::ToVm : Dir::ToClient;
    switch (ev.kind) {
    case EventKind::Mmio:
    case EventKind::Dma: {
        const auto [req, reply] = rebuild_transaction(ev);
        const Channel ch = ev.kind == EventKind::Mmio ? Channel::Main : Channel::Dma;
        const Dir req_dir = ev.kind == EventKind::Mmio ? Dir::ToClient : Dir::ToVm;
        const Dir reply_dir = req_dir == Dir::ToVm ? Dir::ToClient : Dir::ToVm;
        if (ev.status != trace::Status::ReplyOnly)
            add(ev.time_ns, ch, req_dir, ev.raw.empty() ? bytes_of(req) : bytes_of(ev.raw));
        if (has_reply(ev)) {
            const std::span<const std::byte> raw = !ev.raw_reply.empty() ? ev.raw_reply
                                                   : ev.status == trace::Status::ReplyOnly ? ev.raw
                                                                                          : std::span<const std::byte>{};
            add(ev.time_ns + ev.reply_after_ns, ch, reply_dir, raw.empty() ? bytes_of(reply) : bytes_of(raw));
        }
        break;
    }
    case EventKind::Irq:
        add(ev.time_ns, Channel::Main, Dir::ToVm,
            ev.raw.empty() ? bytes_of(Frame::irq_update(ev.id, ev.line, ev.level)) : bytes_of(ev.raw));
        break;
    case EventKind::Claim:
        add(ev.time_ns, Channel::Main, Dir::ToVm, ev.raw.empty() ? bytes_of(Frame::claim(ev.id)) : bytes_of(ev.raw));
        break;
    case EventKind::Ping: {
        Frame f = Frame::ping(false);
        f.set_tag(ev.tag);
        add(ev.time_ns, ev.channel, towards, ev.raw.empty() ? bytes_of(f) : bytes_of(ev.raw));
        break;
    }
    case EventKind::Reset:
        add(ev.time_ns, Channel::Main, Dir::ToClient, ev.raw.empty() ? bytes_of(Frame::reset()) : bytes_of(ev.raw));
        break;
    case EventKind::ProtocolError:
        if (!ev.raw.empty()) add(ev.time_ns, ev.channel, towards, bytes_of(ev.raw));
        break;
    case EventKind::Connection:
        add(ev.time_ns, ev.channel, Dir::ToVm, {});
        out.back().what = ev.up ? Send::What::Open : Send::What::Close;
        break;
    case EventKind::Unknown:
        break;
    }
    return out;
}

// ---- the export -------------------------------------------------------------

// The VM endpoint from a "host:port" target: IPv4 literals kept, anything else
// (empty, a host name, IPv6) becomes 127.0.0.1; port 4800 when absent or bad.
Endpoint vm_endpoint(const std::string& target) {
    Endpoint e{0x7f000001, 4800};
    // The port's colon: after "]" for "[v6]:port"; none in a bare IPv6 address.
    auto colon = target.rfind(':');
    if (!target.empty() && target[0] == '[') {
        const auto close = target.find("]:");
        colon = close == std::string::npos ? std::string::npos : close + 1;
    } else if (std::count(target.begin(), target.end(), ':') > 1) {
        colon = std::string::npos;
    }
    const std::string host = target.substr(0, colon == std::string::npos ? target.size() : colon);
    in_addr a{};
    if (::inet_pton(AF_INET, host.c_str(), &a) == 1) e.ip = ntohl(a.s_addr);
    if (colon != std::string::npos) {
        const unsigned long p = std::strtoul(target.c_str() + colon + 1, nullptr, 10);
        if (p > 0 && p < 65536) e.port = static_cast<std::uint16_t>(p);
    }
    return e;
}

class Exporter {
public:
    Exporter(std::FILE* out, const trace::TraceHeader& h, const PcapOptions& o)
        : file_(out), origin_ns_(h.created_unix_ns), vm_(vm_endpoint(h.target)), options_(o) {
        // A loopback VM talks to local clients; otherwise clients get a documentation address.
        client_ip_ = (vm_.ip >> 24) == 127 ? vm_.ip : 0xc0000201;  // 192.0.2.1
        file_.set_vm_port(vm_.port);
    }

    // The sends of an event recorded at `time_ns` (its request, or only frame).
    void add(std::uint64_t time_ns, std::vector<Send> sends) {
        for (Send& s : sends) {
            s.order = order_++;
            queue_.push(std::move(s));
        }
        // Records come in request order: no later record's frames can precede
        // what is due by this one's request time.
        now_ = std::max(now_, time_ns);
        while (!queue_.empty() && queue_.top().time_ns <= now_) pop();
    }
    void finish() {
        while (!queue_.empty()) pop();
        for (auto& [key, c] : connections_) {
            c.flush(origin_ns_ + last_, Dir::ToVm);
            c.flush(origin_ns_ + last_, Dir::ToClient);
        }
    }

private:
    void pop() {
        const Send& s = queue_.top();
        const std::uint64_t t = origin_ns_ + s.time_ns;
        last_ = std::max(last_, s.time_ns);
        const auto key = std::make_pair(s.client, s.channel);
        auto it = connections_.find(key);
        if (s.what == Send::What::Close) {
            if (it != connections_.end()) {
                it->second.close(t);
                connections_.erase(it);
            }
        } else {
            if (it == connections_.end()) {
                const Endpoint client{client_ip_, next_port_};
                next_port_ = next_port_ == 65535 ? 40000 : next_port_ + 1;
                it = connections_.emplace(key, TcpConnection(file_, client, vm_, options_.segment_bytes)).first;
                it->second.open(t);
            }
            if (s.what == Send::What::Data) it->second.send(t, s.dir, s.bytes);
        }
        queue_.pop();
    }

    PcapFile file_;
    std::uint64_t origin_ns_;
    Endpoint vm_;
    std::uint32_t client_ip_ = 0;
    PcapOptions options_;
    std::map<std::pair<std::uint32_t, Channel>, TcpConnection> connections_;
    std::priority_queue<Send, std::vector<Send>, std::greater<>> queue_;
    std::uint64_t order_ = 0, now_ = 0, last_ = 0;
    std::uint16_t next_port_ = 40000;
};

}  // namespace

std::string export_pcap(trace::TraceReader& reader, std::FILE* out, const PcapOptions& options) {
    Exporter exporter(out, reader.header(), options);
    std::string e = read_records(reader, "export --pcap", [&](const Event& ev) { exporter.add(ev.time_ns, sends_of(ev)); });
    exporter.finish();
    return e;
}

}  // namespace coreio::recorder
