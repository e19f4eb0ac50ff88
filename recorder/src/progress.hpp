// A progress line on stderr for long operations, only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <unistd.h>

namespace coreio::recorder {

class Progress {
public:
    /// `label` names the operation; `enabled` lets callers turn it off (e.g. when stdout is the terminal).
    Progress(const char* label, bool enabled = true) : label_(label), on_(enabled && ::isatty(2) == 1) {}
    ~Progress() { done(); }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    /// Called per record; redraws at most 5 times a second.
    void update(std::uint64_t position, std::uint64_t size, std::uint64_t records) {
        if (!on_ || (records & 0x3fff) != 0) return;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        const double pct = size ? 100.0 * static_cast<double>(position) / static_cast<double>(size) : 0.0;
        std::fprintf(stderr, "\r%s: %5.1f%%  %llu records", label_, pct, static_cast<unsigned long long>(records));
        std::fflush(stderr);
        shown_ = true;
    }
    /// Clears the line.
    void done() {
        if (shown_) std::fprintf(stderr, "\r\033[K");
        shown_ = false;
    }

private:
    const char* label_;
    bool on_;
    bool shown_ = false;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace coreio::recorder
