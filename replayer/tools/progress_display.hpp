// How coreio-fuzz shows a long run: on a terminal, one status line redrawn a
// few times a second (execs, execs/s, findings); otherwise (CI logs) a summary
// line every 10 s. Log lines pass through without tearing the status line.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace coreio::replayer {

class ProgressDisplay {
public:
    using Clock = std::chrono::steady_clock;

    /// Shows progress on `out` (a terminal or not, as isatty() says).
    explicit ProgressDisplay(std::FILE* out);
    /// The same with the kind of output and the summary interval given (for tests).
    ProgressDisplay(std::FILE* out, bool terminal, std::chrono::milliseconds interval);

    /// New totals; draws when the interval since the last draw has passed.
    void update(std::uint64_t execs, std::size_t findings);
    /// Prints a log line (clearing the status line first on a terminal).
    void line(const std::string& text);
    /// Clears the status line (a terminal) at the end of the run.
    void finish();

private:
    void draw(Clock::time_point now);

    std::FILE* out_;
    bool terminal_;
    std::chrono::milliseconds interval_;
    Clock::time_point start_ = Clock::now(), last_draw_ = Clock::now();
    std::uint64_t execs_ = 0, last_execs_ = 0;
    std::size_t findings_ = 0;
    bool shown_ = false;  // a status line is on the terminal
};

}  // namespace coreio::replayer
