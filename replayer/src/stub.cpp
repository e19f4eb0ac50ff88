#include "coreio/replayer/stub.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "coreio/client.hpp"

namespace coreio::replayer {

namespace {
std::string hex_bytes(const std::byte* p, unsigned n) {
    std::string s = "0x";
    char b[4];
    for (unsigned i = n; i-- > 0;) {
        std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(p[i]));
        s += b;
    }
    return s;
}
std::string hex64(std::uint64_t v) {
    char b[24];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}
}  // namespace

struct DeviceStub::Impl {
    /// One claimed range: forwards to the stub.
    struct Range final : MmioHandler {
        Impl* impl = nullptr;
        unsigned rid = 0;
        int read(std::uint64_t a, std::size_t n, void* b, unsigned f) override {
            return impl->access(rid, Op::Read, a, n, static_cast<std::byte*>(b), nullptr, f);
        }
        int write(std::uint64_t a, std::size_t n, const void* b, unsigned f) override {
            return impl->access(rid, Op::Write, a, n, const_cast<std::byte*>(static_cast<const std::byte*>(b)), nullptr, f);
        }
        int read_pair(std::uint64_t a, std::size_t n, void* b1, void* b2, unsigned f) override {
            return impl->access(rid, Op::ReadPair, a, n, static_cast<std::byte*>(b1), static_cast<std::byte*>(b2), f);
        }
        int write_pair(std::uint64_t a, std::size_t n, const void* b1, const void* b2, unsigned f) override {
            return impl->access(rid, Op::WritePair, a, n, const_cast<std::byte*>(static_cast<const std::byte*>(b1)),
                                const_cast<std::byte*>(static_cast<const std::byte*>(b2)), f);
        }
        void reset() override { impl->on_reset(); }
    };

    const Scenario& sc;
    StubOptions opt;
    Client client;
    Range ranges[kNumRanges];
    std::size_t next = 0;  // next step expected
    ReplayReport rep;
    bool stop = false;
    std::vector<std::vector<std::size_t>> irqs_after;  // per step: recorded IRQs it caused
    std::vector<std::vector<std::size_t>> dmas_after;  // per step: recorded DMA chunks it caused
    std::chrono::steady_clock::time_point last_request;

    Impl(const Scenario& s, StubOptions o) : sc(s), opt(std::move(o)) {
        irqs_after.resize(sc.steps.size());
        dmas_after.resize(sc.steps.size());
        for (std::size_t i = 0; i < sc.irqs.size(); ++i)
            if (sc.irqs[i].hi >= 0) irqs_after[static_cast<std::size_t>(sc.irqs[i].hi)].push_back(i);
        // A DMA chunk belongs to the last request recorded before it.
        std::size_t step = 0;
        for (std::size_t i = 0; i < sc.dmas.size(); ++i) {
            while (step + 1 < sc.steps.size() && sc.steps[step + 1].record < sc.dmas[i].record) ++step;
            if (!sc.steps.empty() && sc.steps[step].record < sc.dmas[i].record) dmas_after[step].push_back(i);
        }
    }

    void add(std::uint64_t record, std::string field, std::string expected, std::string got, std::string ctx = {}) {
        Divergence d;
        d.kind = DivergenceKind::Mismatch;
        d.record = record;
        d.step = next;
        d.field = std::move(field);
        d.expected = std::move(expected);
        d.got = std::move(got);
        d.context = std::move(ctx);
        rep.divergences.push_back(std::move(d));
        if (!opt.keep_going) stop = true;
    }

    void skip_fills() {
        while (next < sc.steps.size() && sc.steps[next].kind == Step::Kind::Fill) ++next;
    }

    /// Raises the IRQs and issues the DMA the recording shows after step i.
    void effects(std::size_t i) {
        for (std::size_t k : dmas_after[i]) {
            const ExpectedDma& e = sc.dmas[k];
            std::byte buf[kMaxAccessSize];
            if (e.op == Op::Read) {
                const int rc = client.dma_read(e.mid, e.sid, e.address, std::span<std::byte>(buf, e.size), e.flags);
                ++rep.counts.dmas;
                if ((rc != 0) != e.error)
                    add(e.record, "dma.error", e.error ? "1" : "0", rc != 0 ? "1" : "0");
                else if (rc == 0 && e.has_reply && std::memcmp(buf, e.data.data(), e.size) != 0)
                    add(e.record, "dma.data", hex_bytes(e.data.data(), e.size), hex_bytes(buf, e.size));
            } else {
                const int rc = client.dma_write(e.mid, e.sid, e.address, std::span<const std::byte>(e.data.data(), e.size), e.flags);
                ++rep.counts.dmas;
                if ((rc != 0) != e.error) add(e.record, "dma.error", e.error ? "1" : "0", rc != 0 ? "1" : "0");
            }
        }
        for (std::size_t k : irqs_after[i]) {
            const ExpectedIrq& e = sc.irqs[k];
            client.irq_update(e.rid, e.line, e.level);
            ++rep.counts.irqs;
        }
    }

    int access(unsigned rid, Op op, std::uint64_t addr, std::size_t n, std::byte* b1, std::byte* b2, unsigned flags) {
        last_request = std::chrono::steady_clock::now();
        ++rep.counts.accesses;
        skip_fills();
        const bool read = is_read_op(op);
        const unsigned size = static_cast<unsigned>(n);
        if (next >= sc.steps.size()) {
            if (!stop) add(sc.records, "mmio", "no more requests", describe(Frame::mmio_request(op, rid, addr, size, flags, 0)));
            if (read) std::memset(b1, 0xAA, n);
            return 0;
        }
        const Step& st = sc.steps[next];
        const Frame& f = st.frame;
        const Op want = f.op();
        // The handler API does not tell posted from acknowledged writes: compare the kind of access.
        const bool same_kind = st.kind == Step::Kind::Access && is_read_op(want) == read && is_pair_op(want) == (b2 != nullptr);
        std::string field, exp, got;
        if (!same_kind) field = "mmio.op", exp = st.kind == Step::Kind::Reset ? "RESET" : op_name(static_cast<std::uint8_t>(want)), got = op_name(static_cast<std::uint8_t>(op));
        else if (f.rid() != rid) field = "mmio.rid", exp = std::to_string(f.rid()), got = std::to_string(rid);
        else if (f.address() != addr) field = "mmio.address", exp = hex64(f.address()), got = hex64(addr);
        else if (f.size() != size) field = "mmio.size", exp = std::to_string(f.size()), got = std::to_string(size);
        else if (!read) {
            for (int el = 0; el < (b2 ? 2 : 1) && field.empty(); ++el) {
                const std::byte* pe = el == 0 ? f.payload() : f.pair_second();
                const std::byte* pg = el == 0 ? b1 : b2;
                for (unsigned i = 0; i < size; ++i) {
                    const auto ign = opt.ignore.mmio_byte_mask(rid, sc.offset_in_range(rid, addr) + el * size + i);
                    if (((static_cast<unsigned>(pe[i]) ^ static_cast<unsigned>(pg[i])) & ~ign & 0xffu) != 0) {
                        field = el == 0 ? "mmio.data" : "mmio.data2";
                        exp = hex_bytes(pe, size);
                        got = hex_bytes(pg, size);
                        break;
                    }
                }
            }
        }
        if (!field.empty()) {
            if (!stop) add(st.record, field, exp, got, describe(f));
            if (read) std::memset(b1, 0, n), b2 ? (void)std::memset(b2, 0, n) : (void)0;
            if (same_kind && (field == "mmio.data" || field == "mmio.data2")) {
                ++next;  // same access with other data: stay in step
            }
            return 0;
        }
        ++rep.counts.replies_checked;
        const std::size_t i = next++;
        if (read) {
            const Frame& e = st.expect_reply ? st.expected : st.frame;
            std::memcpy(b1, e.payload(), n);
            if (b2) std::memcpy(b2, e.pair_second(), n);
        }
        effects(i);
        return st.expect_reply && st.expected.error() ? 1 : 0;
    }

    void on_reset() {
        last_request = std::chrono::steady_clock::now();
        skip_fills();
        ++rep.counts.resets;
        if (next < sc.steps.size() && sc.steps[next].kind == Step::Kind::Reset) {
            effects(next++);
        } else if (!stop) {
            add(next < sc.steps.size() ? sc.steps[next].record : sc.records, "reset",
                next < sc.steps.size() ? describe(sc.steps[next].frame) : "no more requests", "RESET");
        }
    }
};

DeviceStub::DeviceStub(const Scenario& scenario, StubOptions options)
    : impl_(std::make_unique<Impl>(scenario, std::move(options))) {
    for (unsigned r = 0; r < kNumRanges; ++r) {
        impl_->ranges[r].impl = impl_.get();
        impl_->ranges[r].rid = r;
    }
}

DeviceStub::~DeviceStub() = default;

int DeviceStub::connect(const std::string& target) {
    if (const int rc = impl_->client.connect(target); rc != 0) return rc;
    std::uint8_t claimed = 0;
    auto claim = [&](unsigned rid) {
        if (rid >= kNumRanges || (claimed >> rid & 1)) return 0;
        claimed = static_cast<std::uint8_t>(claimed | (1u << rid));
        return impl_->client.register_range(rid, impl_->ranges[rid]);
    };
    for (const auto& c : impl_->sc.claims)
        if (const int rc = claim(c.rid); rc != 0) return rc;
    if (impl_->sc.claims.empty())
        for (const auto& s : impl_->sc.steps)
            if (s.kind == Step::Kind::Access)
                if (const int rc = claim(s.frame.rid()); rc != 0) return rc;
    // IRQ changes the recording shows before the first request.
    for (const auto& e : impl_->sc.irqs)
        if (e.hi < 0) impl_->client.irq_update(e.rid, e.line, e.level);
    return 0;
}

ReplayReport DeviceStub::run() {
    Impl& s = *impl_;
    const auto t0 = std::chrono::steady_clock::now();
    s.last_request = t0;
    for (;;) {
        s.skip_fills();
        if (s.stop || s.next >= s.sc.steps.size()) break;
        const int rc = s.client.run_for(10000);
        if (rc < 0) break;  // the VM closed the connection
        if (std::chrono::steady_clock::now() - s.last_request > s.opt.idle) break;
    }
    s.skip_fills();
    if (!s.stop && s.next < s.sc.steps.size()) {
        Divergence d;
        d.kind = DivergenceKind::Missing;
        d.record = s.sc.steps[s.next].record;
        d.step = s.next;
        d.field = "mmio";
        d.expected = describe(s.sc.steps[s.next].frame);
        d.got = "the VM sent no more requests";
        s.rep.divergences.push_back(std::move(d));
    }
    s.rep.counts.steps = s.next;
    s.rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.client.disconnect();
    return s.rep;
}

}  // namespace coreio::replayer
