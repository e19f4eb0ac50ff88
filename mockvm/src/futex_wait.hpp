// Futex-based waiting of the mock VM's driver calls: a caller sleeps on a
// 32-bit counter and the I/O thread wakes it only when someone sleeps (IRQ
// frames arrive by the million and mostly nobody waits). Private to vm.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace coreio::mockvm::detail {

using Clock = std::chrono::steady_clock;

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t), "futex needs a plain 32-bit word");

// Blocks while `word` still holds `expected`, at most until `deadline` (spurious wakeups allowed).
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
    if (left <= 0) return;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left / 1000000000);
    ts.tv_nsec = static_cast<long>(left % 1000000000);
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, &ts, nullptr, 0);
}

inline void futex_wake_all(std::atomic<std::uint32_t>& word) {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}

// One driver call waiting for replies; lives on the caller's stack.
struct Waiter {
    std::atomic<std::uint32_t> done{0};   // replies (or cancellations) so far; futex word
    std::atomic<int> error{0};            // first error seen
    std::atomic<bool> sleeping{false};    // set around futex_wait, so completions skip the wake syscall otherwise
};

// Counts n completions for w; true if w sleeps and needs a wake (seq_cst pairs with wait_done).
inline bool complete(Waiter& w, std::uint32_t n = 1) {
    w.done.fetch_add(n, std::memory_order_seq_cst);
    return w.sleeping.load(std::memory_order_seq_cst);
}

// Sleeps until w.done moves past `seen` or the deadline.
inline void wait_done(Waiter& w, std::uint32_t seen, Clock::time_point deadline) {
    w.sleeping.store(true, std::memory_order_seq_cst);
    if (w.done.load(std::memory_order_seq_cst) == seen) futex_wait(w.done, seen, deadline);
    w.sleeping.store(false, std::memory_order_relaxed);
}

}  // namespace coreio::mockvm::detail
