#include "progress_display.hpp"

#include <unistd.h>

namespace coreio::replayer {

namespace {
constexpr std::chrono::milliseconds kTerminalInterval{250};
constexpr std::chrono::milliseconds kLogInterval{10000};
}  // namespace

ProgressDisplay::ProgressDisplay(std::FILE* out)
    : ProgressDisplay(out, ::isatty(::fileno(out)) == 1, ::isatty(::fileno(out)) == 1 ? kTerminalInterval : kLogInterval) {}

ProgressDisplay::ProgressDisplay(std::FILE* out, bool terminal, std::chrono::milliseconds interval)
    : out_(out), terminal_(terminal), interval_(interval) {}

void ProgressDisplay::update(std::uint64_t execs, std::size_t findings) {
    execs_ = execs;
    findings_ = findings;
    const auto now = Clock::now();
    if (now - last_draw_ >= interval_) draw(now);
}

void ProgressDisplay::draw(Clock::time_point now) {
    const double total_s = std::chrono::duration<double>(now - start_).count();
    const double span_s = std::chrono::duration<double>(now - last_draw_).count();
    // The rate over the last interval: what the device does now, not the average.
    const double rate = span_s > 0 ? static_cast<double>(execs_ - last_execs_) / span_s : 0.0;
    std::fprintf(out_, "%scoreio-fuzz: %llu execs in %.0f s, %.0f execs/s, %zu finding%s%s", terminal_ ? "\r\033[K" : "",
                 static_cast<unsigned long long>(execs_), total_s, rate, findings_, findings_ == 1 ? "" : "s",
                 terminal_ ? "" : "\n");
    std::fflush(out_);
    shown_ = terminal_;
    last_draw_ = now;
    last_execs_ = execs_;
}

void ProgressDisplay::line(const std::string& text) {
    std::fprintf(out_, "%s%s\n", shown_ ? "\r\033[K" : "", text.c_str());
    std::fflush(out_);
    if (shown_) draw(Clock::now());
}

void ProgressDisplay::finish() {
    if (shown_) std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
    shown_ = false;
}

}  // namespace coreio::replayer
