#include "coreio/mockvm/demo.hpp"

#include <cinttypes>
#include <cstdio>
#include <ostream>

namespace coreio::mockvm {

std::uint64_t demo_testdata(unsigned i, unsigned width) {
    std::uint64_t v = i;
    v |= (v + 1) << 8;
    v |= (v + 0x202) << 16;
    v |= (v + 0x4040404) << 32;
    return width >= 8 ? v : v & ((std::uint64_t{1} << (8 * width)) - 1);
}

bool run_demo(Vm& vm, std::ostream& out) {
    constexpr unsigned kCount = 16;
    const std::uint64_t base = vm.config().ranges.at(0).base;
    char line[160];
    std::snprintf(line, sizeof line, "%-5s  %-6s  %-18s  %-18s  %s", "width", "offset", "written", "read back", "ok");
    out << line << '\n';
    unsigned bad = 0, total = 0;
    for (unsigned width : {1u, 2u, 4u, 8u}) {
        int err = 0;
        for (unsigned i = 0; i < kCount && err == 0; ++i)
            err = vm.write_value(base + i * width, width, demo_testdata(i, width));
        for (unsigned i = 0; i < kCount; ++i) {
            const std::uint64_t want = demo_testdata(i, width);
            const ReadResult r = err == 0 ? vm.read_value(base + i * width, width) : ReadResult{err, 0};
            const bool ok = r.ok() && r.value == want;
            ++total;
            if (!ok) ++bad;
            char got[32];
            if (r.ok())
                std::snprintf(got, sizeof got, "0x%0*" PRIx64, static_cast<int>(2 * width), r.value);
            else
                std::snprintf(got, sizeof got, "error %d", r.status);
            std::snprintf(line, sizeof line, "%-5u  0x%04x  0x%0*" PRIx64 "%*s  %-18s  %s", width, i * width,
                          static_cast<int>(2 * width), want, static_cast<int>(16 - 2 * width), "", got,
                          ok ? "yes" : "NO");
            out << line << '\n';
        }
    }
    out << (bad == 0 ? "all " + std::to_string(total) + " values read back correctly"
                     : std::to_string(bad) + " of " + std::to_string(total) + " values did not read back correctly")
        << std::endl;
    return bad == 0;
}

}  // namespace coreio::mockvm
