// Writes a golden trace file: `make_golden v2 OUT`. Run once per format
// version and commit the output under tests/golden/ (v1-basic.ctrace was
// written by the version 1 writer, which no longer exists).
#include <cstdio>
#include <cstring>

#include "coreio/trace/writer.hpp"
#include "golden_events.hpp"

int main(int argc, char** argv) {
    if (argc != 3 || std::strcmp(argv[1], "v2") != 0) {
        std::fprintf(stderr, "usage: %s v2 OUT.ctrace\n", argv[0]);
        return 2;
    }
    coreio::trace::TraceWriter w;
    coreio::trace::WriterOptions o;
    o.background_flush = false;
    o.flush_interval = std::chrono::hours(1);  // batches only where the test flushes, however slow the machine
    if (auto e = w.open(argv[2], golden::header_v2(), o); !e.empty()) {
        std::fprintf(stderr, "%s\n", e.c_str());
        return 1;
    }
    const auto events = golden::events_v1();
    for (std::size_t i = 0; i < events.size(); ++i) {
        w.append(events[i]);
        if (i + 1 == golden::kV2FlushAfter) w.flush();
    }
    if (auto e = w.close(); !e.empty()) {
        std::fprintf(stderr, "%s\n", e.c_str());
        return 1;
    }
    return 0;
}
