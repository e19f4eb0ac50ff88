// The C API (coreio.h): a thin layer over one default coreio::Client.
// No C++ exception crosses into C: every entry point catches everything.
#include "coreio.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "coreio/client.hpp"

namespace {

/// Adapts a coreio_func_t table to MmioHandler. Without readp/writep the
/// MmioHandler defaults call read/write at addr and at addr + len. A NULL
/// read/write answers as an unclaimed range does (the original library's
/// behaviour): the VM's data goes back unchanged, no bus error.
class CHandler final : public coreio::MmioHandler {
public:
    coreio_func_t func{};
    void* priv = nullptr;

    int read(std::uint64_t addr, std::size_t len, void* buf, unsigned flags) override {
        return func.read ? func.read(priv, addr, len, buf, flags) : 0;
    }
    int write(std::uint64_t addr, std::size_t len, const void* buf, unsigned flags) override {
        return func.write ? func.write(priv, addr, len, const_cast<void*>(buf), flags) : 0;
    }
    int read_pair(std::uint64_t addr, std::size_t len, void* b1, void* b2, unsigned flags) override {
        if (func.readp) return func.readp(priv, addr, len, b1, b2, flags);
        return MmioHandler::read_pair(addr, len, b1, b2, flags);
    }
    int write_pair(std::uint64_t addr, std::size_t len, const void* b1, const void* b2, unsigned flags) override {
        if (func.writep) return func.writep(priv, addr, len, const_cast<void*>(b1), const_cast<void*>(b2), flags);
        return MmioHandler::write_pair(addr, len, b1, b2, flags);
    }
};

struct Default {
    coreio::Client client;
    CHandler handlers[coreio::kNumRanges];
    bool registered[coreio::kNumRanges] = {};
    std::mutex register_mu;  // guards handlers/registered (register vs connect/disconnect)

    Default() : client(make_options()) {}
    static coreio::ClientOptions make_options() {
        coreio::ClientOptions o;
        o.dma_timeout = coreio::dma_timeout_from_env();
        return o;
    }
    void forget_registrations() {
        std::lock_guard g(register_mu);
        std::fill(std::begin(registered), std::end(registered), false);
    }
};

/// The default client, created on first use (reads COREIO_DMA_TIMEOUT_MS then).
Default& dflt() {
    static Default* d = new Default();  // never destroyed: callable from atexit handlers
    return *d;
}

template <class F>
int guarded(F&& f) {
    try {
        return f();
    } catch (const std::bad_alloc&) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}

}  // namespace

extern "C" {

int coreio_connect(const char* target) {
    return guarded([&] {
        std::string t;
        if (target == nullptr || *target == '\0') {
            const char* env = std::getenv("COREHDL_VM");
            if (env == nullptr || *env == '\0') return -EINVAL;
            t = env;
        } else {
            t = target;
        }
        auto& d = dflt();
        const int rc = d.client.connect(t);
        if (rc == 0) d.forget_registrations();
        return rc;
    });
}

int coreio_register(unsigned rid, const coreio_func_t* func, void* funcp) {
    return guarded([&] {
        if (rid >= coreio::kNumRanges || func == nullptr) return -EINVAL;
        auto& d = dflt();
        std::lock_guard g(d.register_mu);
        if (!d.client.connected()) return -ENOTCONN;
        if (d.registered[rid]) return -EBUSY;
        d.handlers[rid].func = *func;
        d.handlers[rid].priv = funcp;
        const int rc = d.client.register_range(rid, d.handlers[rid]);
        if (rc == 0) d.registered[rid] = true;
        return rc;
    });
}

int coreio_preparefds(int nfds, fd_set* readfds, fd_set* writefds) {
    return guarded([&] { return dflt().client.prepare_fds(nfds, readfds, writefds); });
}

int coreio_processfds(fd_set* readfds, fd_set* writefds) {
    return guarded([&] { return dflt().client.process_fds(readfds, writefds); });
}

int coreio_mainloop(long long usec) {
    return guarded([&] { return dflt().client.run_for(usec); });
}

int coreio_irq_update(unsigned rid, unsigned iid, unsigned state) {
    // Any non-zero state is active (e.g. `status & mask`), as in the original.
    return guarded([&] { return dflt().client.irq_update(rid, iid, state != 0); });
}

static int dma(bool write, unsigned mid, unsigned sid, uint64_t addr, size_t len, void* buf, unsigned flags,
               void (*cpl)(void*, int), void* cplp) {
    return guarded([&] {
        if (len == 0 || buf == nullptr) return -EINVAL;
        auto& c = dflt().client;
        auto* p = static_cast<std::byte*>(buf);
        if (cpl == nullptr)
            return write ? c.dma_write(mid, sid, addr, std::span<const std::byte>(p, len), flags)
                         : c.dma_read(mid, sid, addr, std::span<std::byte>(p, len), flags);
        coreio::DmaCompletion done = [cpl, cplp](int r) { cpl(cplp, r); };
        return write ? c.dma_write(mid, sid, addr, std::span<const std::byte>(p, len), flags, std::move(done))
                     : c.dma_read(mid, sid, addr, std::span<std::byte>(p, len), flags, std::move(done));
    });
}

int coreio_dma_read(unsigned mid, unsigned sid, uint64_t addr, size_t len, void* buf, unsigned flags,
                    void (*cpl)(void*, int), void* cplp) {
    return dma(false, mid, sid, addr, len, buf, flags, cpl, cplp);
}

int coreio_dma_write(unsigned mid, unsigned sid, uint64_t addr, size_t len, void* buf, unsigned flags,
                     void (*cpl)(void*, int), void* cplp) {
    return dma(true, mid, sid, addr, len, buf, flags, cpl, cplp);
}

void coreio_disconnect(void) {
    try {
        auto& d = dflt();
        d.client.disconnect();
        d.forget_registrations();
    } catch (...) {
    }
}

}  // extern "C"
