// FastMutex: the writer's lock, taken once per tapped frame. An uncontended
// lock/unlock is one atomic each, inline (std::mutex goes through
// pthread_mutex_lock/unlock calls, ~50 more instructions a pair); a
// contended one sleeps on a futex (std::atomic::wait).
#pragma once

#include <atomic>

namespace coreio::trace::detail {

class FastMutex {
public:
    /// Takes the lock (BasicLockable, for std::lock_guard and condition_variable_any).
    void lock() {
        int c = 0;
        if (!state_.compare_exchange_strong(c, 1, std::memory_order_acquire)) lock_slow(c);
    }
    /// Lets go of it, waking one waiter if there may be one.
    void unlock() {
        if (state_.exchange(0, std::memory_order_release) == 2) state_.notify_one();
    }

private:
    void lock_slow(int c) {
        // The holder is usually about to let go: spin briefly before sleeping.
        for (int i = 0; i < 64 && c == 1; ++i) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            c = 0;
            if (state_.compare_exchange_weak(c, 1, std::memory_order_acquire)) return;
        }
        if (c != 2) c = state_.exchange(2, std::memory_order_acquire);
        while (c != 0) {
            state_.wait(2, std::memory_order_relaxed);
            c = state_.exchange(2, std::memory_order_acquire);
        }
    }

    std::atomic<int> state_{0};  // 0 free, 1 held, 2 held and perhaps waited for
};

}  // namespace coreio::trace::detail
