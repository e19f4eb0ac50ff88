// Writes a golden trace file: `make_golden v1 OUT`. Run once per format
// version and commit the output under tests/golden/.
#include <cstdio>
#include <cstring>

#include "coreio/trace/writer.hpp"
#include "golden_events.hpp"

int main(int argc, char** argv) {
    if (argc != 3 || std::strcmp(argv[1], "v1") != 0) {
        std::fprintf(stderr, "usage: %s v1 OUT.ctrace\n", argv[0]);
        return 2;
    }
    coreio::trace::TraceWriter w;
    coreio::trace::WriterOptions o;
    o.background_flush = false;
    if (auto e = w.open(argv[2], golden::header_v1(), o); !e.empty()) {
        std::fprintf(stderr, "%s\n", e.c_str());
        return 1;
    }
    for (const auto& ev : golden::events_v1()) w.append(ev);
    if (auto e = w.close(); !e.empty()) {
        std::fprintf(stderr, "%s\n", e.c_str());
        return 1;
    }
    return 0;
}
