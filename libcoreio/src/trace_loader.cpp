#include "trace_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>

#include "coreio/client_session.hpp"

namespace coreio::detail {

namespace {

using TapOpen = FrameTap* (*)(const char* path, const char* tool);
using TapOpenForTarget = FrameTap* (*)(const char* path, const char* tool, const char* target);
using TapClose = void (*)(FrameTap*);

/// The directory of the object this function is linked into: libcoreio.so, or
/// the program itself when it links libcoreio.a ("" when unknown).
std::string own_directory() {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&own_directory), &info) == 0 || info.dli_fname == nullptr) return {};
    const std::string path = info.dli_fname;
    const auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

}  // namespace

void* load_trace_library(std::string& error) {
    const std::string dir = own_directory();
    if (!dir.empty()) {
        const std::string beside = dir + "/" + kTraceLibrary;
        if (void* lib = ::dlopen(beside.c_str(), RTLD_NOW | RTLD_LOCAL)) return lib;
    }
    if (void* lib = ::dlopen(kTraceLibrary, RTLD_NOW | RTLD_LOCAL)) return lib;
    const char* why = ::dlerror();
    error = why ? why : "not found";
    if (!dir.empty()) error += " (also looked in " + dir + ")";
    return nullptr;
}

FrameTap* TraceRecorder::open(std::string_view target, const LogFunction& log) {
    close();
    auto say = [&](const std::string& m) { log ? log(m) : log_to_stderr(m); };
    const char* path = std::getenv("COREIO_TRACE");
    if (path == nullptr || *path == '\0') return nullptr;
    std::string why;
    void* lib = load_trace_library(why);
    if (lib == nullptr) {
        say(std::string("COREIO_TRACE is set but ") + kTraceLibrary + " cannot be loaded (" + why +
            "); not recording");
        return nullptr;
    }
    // The library stays loaded: a tap it made may still be referenced by frames in flight.
    auto open_for = reinterpret_cast<TapOpenForTarget>(::dlsym(lib, "coreio_trace_tap_open_for"));
    auto open = reinterpret_cast<TapOpen>(::dlsym(lib, "coreio_trace_tap_open"));
    auto close_fn = reinterpret_cast<TapClose>(::dlsym(lib, "coreio_trace_tap_close"));
    if ((open_for == nullptr && open == nullptr) || close_fn == nullptr) {
        say(std::string(kTraceLibrary) + " lacks coreio_trace_tap_open/close; not recording");
        return nullptr;
    }
    const std::string t(target);
    tap_ = open_for ? open_for(path, "libcoreio", t.c_str()) : open(path, "libcoreio");
    if (tap_ == nullptr) {
        say(std::string("cannot open trace file ") + path + "; not recording");
        return nullptr;
    }
    close_ = close_fn;
    return tap_;
}

void TraceRecorder::close() {
    if (tap_ != nullptr && close_ != nullptr) close_(tap_);
    tap_ = nullptr;
    close_ = nullptr;
}

}  // namespace coreio::detail
