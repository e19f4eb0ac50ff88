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
//
// The count and the caller's "asleep" flag share one futex word, so a
// completer learns from its own fetch_add whether to wake the caller and never
// reads the Waiter after it: the caller may return (its frame gone) as soon as
// it sees the last count. What a completer may still do is FUTEX_WAKE the
// word's address, which at worst wakes a later waiter there spuriously.
struct Waiter {
    static constexpr std::uint32_t kAsleep = 0x80000000u;
    static constexpr std::uint32_t kMaxCount = kAsleep - 1;  // completions one call may wait for
    std::atomic<std::uint32_t> state{0};  // completions so far | kAsleep while the caller sleeps; futex word
    std::atomic<int> error{0};            // first error seen (set before the completion is counted)
    std::uint32_t done() const { return state.load(std::memory_order_acquire) & kMaxCount; }
};

// Counts n completions for w; true if w sleeps and needs a wake.
inline bool complete(Waiter& w, std::uint32_t n = 1) {
    return (w.state.fetch_add(n, std::memory_order_acq_rel) & Waiter::kAsleep) != 0;
}

// Sleeps until w's count moves past `seen` or the deadline.
inline void wait_done(Waiter& w, std::uint32_t seen, Clock::time_point deadline) {
    const std::uint32_t now = w.state.fetch_or(Waiter::kAsleep, std::memory_order_acq_rel);
    if ((now & Waiter::kMaxCount) == seen) futex_wait(w.state, seen | Waiter::kAsleep, deadline);
    w.state.fetch_and(Waiter::kMaxCount, std::memory_order_relaxed);
}

}  // namespace coreio::mockvm::detail
