#include "coreio/net/uring.hpp"

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

namespace coreio::net {

namespace {

// Valgrind holds every thread while one waits in io_uring_enter(), so a peer
// thread could never wake it. Known through valgrind.h where the build had
// it, else by the preload Valgrind puts into every process it runs.
bool under_valgrind() {
    if (RUNNING_ON_VALGRIND) return true;
    const char* preload = std::getenv("LD_PRELOAD");
    return preload != nullptr && std::strstr(preload, "/vgpreload_") != nullptr;
}

}  // namespace

Uring::Uring(unsigned entries) {
    if (under_valgrind()) return;
    auto ring = std::make_unique<io_uring>();
    io_uring_params p{};
    // Completions are handled only inside wait(): no need to interrupt the
    // thread for them while it runs (COOP_TASKRUN, Linux 5.19); older kernels
    // refuse the flag, so try without.
    p.flags = IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(entries, ring.get(), &p);
    if (rc == -EINVAL) {
        p = io_uring_params{};
        rc = io_uring_queue_init_params(entries, ring.get(), &p);
    }
    if (rc < 0) return;  // no io_uring here, or forbidden (seccomp, io_uring_disabled)
    // Completions never dropped (5.5); a recv that waits by polling the socket (5.7).
    constexpr unsigned kNeeded = IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL;
    if ((p.features & kNeeded) != kNeeded) {
        io_uring_queue_exit(ring.get());
        return;
    }
    ring_ = std::move(ring);
}

Uring::~Uring() {
    if (ring_) io_uring_queue_exit(ring_.get());  // the kernel cancels what is still pending
}

io_uring_sqe* Uring::next_sqe() { return ring_ ? io_uring_get_sqe(ring_.get()) : nullptr; }

bool Uring::recv(int fd, void* buf, std::size_t len, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    io_uring_prep_recv(e, fd, buf, std::min<std::size_t>(len, 1u << 30), 0);
    io_uring_sqe_set_data64(e, key);
    return true;
}

bool Uring::poll(int fd, unsigned events, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    io_uring_prep_poll_add(e, fd, events);
    io_uring_sqe_set_data64(e, key);
    return true;
}

bool Uring::timeout_at(std::chrono::steady_clock::time_point when, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    when_.tv_sec = ns / 1000000000;
    when_.tv_nsec = ns % 1000000000;
    io_uring_prep_timeout(e, &when_, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(e, key);
    return true;
}

bool Uring::cancel(std::uint64_t target, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    io_uring_prep_cancel64(e, target, 0);
    io_uring_sqe_set_data64(e, key);
    return true;
}

int Uring::wait(std::span<Completion> out) {
    if (!ring_) return -ENOSYS;
    if (out.empty()) return -EINVAL;
    io_uring* r = ring_.get();
    auto reap = [&] {
        unsigned n = 0;
        unsigned head;
        io_uring_cqe* c;
        io_uring_for_each_cqe(r, head, c) {
            if (n == out.size()) break;
            out[n++] = Completion{io_uring_cqe_get_data64(c), c->res};
        }
        io_uring_cq_advance(r, n);
        return static_cast<int>(n);
    };
    if (const int n = reap(); n > 0) return n;
    if (const int rc = io_uring_submit_and_wait(r, 1); rc < 0 && rc != -EINTR) return rc;
    return reap();
}

}  // namespace coreio::net
