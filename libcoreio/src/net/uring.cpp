#include "coreio/net/uring.hpp"

#include <linux/io_uring.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

namespace coreio::net {

namespace {

int sys_setup(unsigned entries, io_uring_params* p) {
    return static_cast<int>(::syscall(__NR_io_uring_setup, entries, p));
}

int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, const void* arg, std::size_t argsz) {
    return static_cast<int>(::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz));
}

unsigned load_acquire(const unsigned* p) {
    return std::atomic_ref<const unsigned>(*p).load(std::memory_order_acquire);
}
void store_release(unsigned* p, unsigned v) { std::atomic_ref<unsigned>(*p).store(v, std::memory_order_release); }

template <class T>
T* at(void* base, std::uint32_t offset) {
    return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

Uring::Uring(unsigned entries) {
    if (RUNNING_ON_VALGRIND) return;
    io_uring_params p{};
    // Completions are handled only inside wait(): no need to interrupt the
    // thread for them while it runs (COOP_TASKRUN, Linux 5.19); older kernels
    // refuse the flag, so try without.
    p.flags = IORING_SETUP_COOP_TASKRUN;
    int fd = sys_setup(entries, &p);
    if (fd < 0 && errno == EINVAL) {
        p = io_uring_params{};
        fd = sys_setup(entries, &p);
    }
    if (fd < 0) return;
    UniqueFd ring(fd);
    // One mapping for both rings (5.4); a recv that waits by polling the socket (5.7).
    constexpr unsigned kNeeded = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_FAST_POLL;
    if ((p.features & kNeeded) != kNeeded) return;
    rings_size_ = std::max<std::size_t>(p.sq_off.array + p.sq_entries * sizeof(unsigned),
                                        p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe));
    void* rings = ::mmap(nullptr, rings_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (rings == MAP_FAILED) return;
    sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
    void* sqes = ::mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqes == MAP_FAILED) {
        ::munmap(rings, rings_size_);
        return;
    }
    rings_ = rings;
    sqes_ = static_cast<io_uring_sqe*>(sqes);
    sq_head_ = at<unsigned>(rings, p.sq_off.head);
    sq_tail_ = at<unsigned>(rings, p.sq_off.tail);
    sq_array_ = at<unsigned>(rings, p.sq_off.array);
    sq_mask_ = *at<unsigned>(rings, p.sq_off.ring_mask);
    sq_entries_ = p.sq_entries;
    cq_head_ = at<unsigned>(rings, p.cq_off.head);
    cq_tail_ = at<unsigned>(rings, p.cq_off.tail);
    cqes_ = at<io_uring_cqe>(rings, p.cq_off.cqes);
    cq_mask_ = *at<unsigned>(rings, p.cq_off.ring_mask);
    fd_ = std::move(ring);
}

Uring::~Uring() {
    fd_.reset();  // the kernel cancels what is still pending
    if (sqes_) ::munmap(sqes_, sqes_size_);
    if (rings_) ::munmap(rings_, rings_size_);
}

void Uring::push() { store_release(sq_tail_, *sq_tail_ + 1); }

io_uring_sqe* Uring::next_sqe() {
    if (!valid()) return nullptr;
    const unsigned tail = *sq_tail_;  // only this side writes it
    if (tail - load_acquire(sq_head_) >= sq_entries_) return nullptr;
    const unsigned i = tail & sq_mask_;
    io_uring_sqe* e = &sqes_[i];
    std::memset(e, 0, sizeof *e);
    sq_array_[i] = i;
    return e;
}

bool Uring::recv(int fd, void* buf, std::size_t len, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    e->opcode = IORING_OP_RECV;
    e->fd = fd;
    e->addr = reinterpret_cast<std::uint64_t>(buf);
    e->len = static_cast<std::uint32_t>(std::min<std::size_t>(len, 1u << 30));
    e->user_data = key;
    push();
    return true;
}

bool Uring::poll(int fd, unsigned events, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    e->opcode = IORING_OP_POLL_ADD;
    e->fd = fd;
    e->poll32_events = events;
    e->user_data = key;
    push();
    return true;
}

bool Uring::timeout_at(std::chrono::steady_clock::time_point when, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    when_.tv_sec = ns / 1000000000;
    when_.tv_nsec = ns % 1000000000;
    e->opcode = IORING_OP_TIMEOUT;
    e->fd = -1;
    e->addr = reinterpret_cast<std::uint64_t>(&when_);
    e->len = 1;
    e->timeout_flags = IORING_TIMEOUT_ABS;
    e->user_data = key;
    push();
    return true;
}

bool Uring::cancel(std::uint64_t target, std::uint64_t key) {
    io_uring_sqe* e = next_sqe();
    if (e == nullptr) return false;
    e->opcode = IORING_OP_ASYNC_CANCEL;
    e->fd = -1;
    e->addr = target;
    e->user_data = key;
    push();
    return true;
}

std::size_t Uring::reap(std::span<Completion> out) {
    unsigned head = *cq_head_;  // only this side writes it
    const unsigned tail = load_acquire(cq_tail_);
    std::size_t n = 0;
    for (; head != tail && n < out.size(); ++head, ++n) {
        const io_uring_cqe& c = cqes_[head & cq_mask_];
        out[n] = Completion{c.user_data, c.res};
    }
    store_release(cq_head_, head);
    return n;
}

int Uring::wait(std::span<Completion> out) {
    if (!valid()) return -ENOSYS;
    if (out.empty()) return -EINVAL;
    if (const std::size_t n = reap(out); n > 0) return static_cast<int>(n);
    const unsigned to_submit = *sq_tail_ - load_acquire(sq_head_);
    if (sys_enter(fd_.get(), to_submit, 1, IORING_ENTER_GETEVENTS, nullptr, 0) < 0 && errno != EINTR) return -errno;
    return static_cast<int>(reap(out));
}

}  // namespace coreio::net
