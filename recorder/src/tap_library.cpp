// libcoreio_trace.so.0: the recorder libcoreio loads with dlopen() when
// COREIO_TRACE=FILE is set, so programs that never link the trace library can
// still record. Two C entry points; no C++ exception crosses them.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>

#include "coreio/client.hpp"
#include "coreio/trace/tap.hpp"
#include "coreio/trace/writer.hpp"

#define COREIO_TRACE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

// A tap that owns its file: closing it writes pending transactions and flushes.
class FileTap final : public coreio::FrameTap {
public:
    coreio::trace::TraceWriter writer;
    std::unique_ptr<coreio::trace::TraceTap> tap;

    ~FileTap() override {
        tap.reset();
        const std::string e = writer.close();
        if (!e.empty()) std::fprintf(stderr, "coreio trace: %s\n", e.c_str());
    }
    void on_frame(coreio::Channel channel, coreio::Direction direction, std::span<const std::byte> frame) override {
        tap->on_frame(channel, direction, frame);
    }
    void on_connection(coreio::Channel channel, bool up) override { tap->on_connection(channel, up); }
    void on_frames(const coreio::TapBatch& batch) override { tap->on_frames(batch); }
};

}  // namespace

/// Opens `path` for recording as the client end of a connection to `target`
/// (the header's target; null or empty: COREHDL_VM); `tool` names the program.
/// COREIO_TRACE_RAW=1 keeps raw frames. Returns nullptr (after one line on
/// stderr) when the file cannot be created.
COREIO_TRACE_EXPORT coreio::FrameTap* coreio_trace_tap_open_for(const char* path, const char* tool,
                                                                const char* target) noexcept {
    try {
        if (path == nullptr || *path == '\0') return nullptr;
        auto t = std::make_unique<FileTap>();
        coreio::trace::TraceHeader h;
        h.tool = tool ? tool : "libcoreio";
        h.tool_version = COREIO_VERSION;
        h.observer = coreio::trace::Observer::Client;
        if (target != nullptr && *target != '\0')
            h.target = target;
        else if (const char* env = std::getenv("COREHDL_VM"))
            h.target = env;
        const char* raw = std::getenv("COREIO_TRACE_RAW");
        h.raw_frames = raw != nullptr && *raw != '\0' && *raw != '0';
        if (const std::string e = t->writer.open(path, h); !e.empty()) {
            std::fprintf(stderr, "coreio trace: %s\n", e.c_str());
            return nullptr;
        }
        coreio::trace::TapOptions o;
        o.observer = coreio::trace::Observer::Client;
        o.raw_frames = h.raw_frames;
        t->tap = std::make_unique<coreio::trace::TraceTap>(t->writer, o);
        return t.release();
    } catch (...) {
        return nullptr;
    }
}

/// As coreio_trace_tap_open_for() with the target from COREHDL_VM (older libcoreio).
COREIO_TRACE_EXPORT coreio::FrameTap* coreio_trace_tap_open(const char* path, const char* tool) noexcept {
    return coreio_trace_tap_open_for(path, tool, nullptr);
}

/// Writes what is pending, closes the file and frees the tap from coreio_trace_tap_open().
COREIO_TRACE_EXPORT void coreio_trace_tap_close(coreio::FrameTap* tap) noexcept {
    try {
        delete tap;
    } catch (...) {
    }
}
