// The optional in-library recorder (COREIO_TRACE=FILE): libcoreio_trace.so.0,
// loaded with dlopen() at connect, so programs that never record never load it.
#pragma once

#include <string>
#include <string_view>

#include "coreio/client.hpp"

namespace coreio::detail {

/// The trace library's file name (its soname).
inline constexpr const char* kTraceLibrary = "libcoreio_trace.so.0";

/// Loads the trace library: first from the directory libcoreio itself was
/// loaded from (an installed libcoreio finds its sibling even when the program
/// found libcoreio through its own rpath), then by the default search path.
/// Returns the dlopen() handle, or nullptr with the reason in `error`.
void* load_trace_library(std::string& error);

/// One connection's trace, opened from COREIO_TRACE.
class TraceRecorder {
public:
    TraceRecorder() = default;
    TraceRecorder(const TraceRecorder&) = delete;
    TraceRecorder& operator=(const TraceRecorder&) = delete;
    ~TraceRecorder() { close(); }

    /// When COREIO_TRACE is set, opens it as a trace of a connection to
    /// `target` and returns the tap; nullptr otherwise (a failure is logged).
    FrameTap* open(std::string_view target, const LogFunction& log);
    /// Writes what is pending and closes the file (nothing when not open).
    void close();

private:
    FrameTap* tap_ = nullptr;
    void (*close_)(FrameTap*) = nullptr;
};

}  // namespace coreio::detail
