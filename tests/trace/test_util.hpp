// Helpers shared by the trace tests: temp paths, reading a whole trace into owned events.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <span>
#include <iterator>
#include <string>
#include <vector>

#include "coreio/trace/reader.hpp"

namespace trace_test {

/// A fresh file name under the test temp dir (unique per process and call).
inline std::string temp_path(const std::string& stem) {
    static std::atomic<int> n{0};
    return ::testing::TempDir() + "/coreio-" + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(n++) +
           ".ctrace";
}

/// An event whose views point into its own storage.
struct Owned {
    coreio::trace::Event ev;
    std::vector<std::byte> raw, raw_reply;
    std::string message;
    void fix() {
        ev.raw = raw;
        ev.raw_reply = raw_reply;
        ev.message = message;
    }
    /// The event with its views re-pointed at this object's storage (it may have moved).
    const coreio::trace::Event& event() {
        fix();
        return ev;
    }
};

/// Everything a reader returned, and how it stopped.
struct ReadAll {
    std::string open_error;
    coreio::trace::TraceHeader header;
    std::vector<Owned> events;
    coreio::trace::ReadStatus status = coreio::trace::ReadStatus::End;
    std::string message;
    std::uint64_t offset = 0;
};

inline ReadAll collect(coreio::trace::TraceReader& r, const std::string& open_error) {
    ReadAll out;
    out.open_error = open_error;
    if (!open_error.empty()) return out;
    out.header = r.header();
    coreio::trace::Event ev;
    for (int guard = 0; guard < 10'000'000; ++guard) {
        const auto st = r.next(ev);
        if (st != coreio::trace::ReadStatus::Record) {
            out.status = st;
            out.message = r.message();
            out.offset = r.offset();
            break;
        }
        Owned o;
        o.ev = ev;
        o.raw.assign(ev.raw.begin(), ev.raw.end());
        o.raw_reply.assign(ev.raw_reply.begin(), ev.raw_reply.end());
        o.message = std::string(ev.message);
        o.fix();
        out.events.push_back(std::move(o));
    }
    for (auto& o : out.events) o.fix();  // the vector moved them
    return out;
}

inline ReadAll read_file(const std::string& path) {
    coreio::trace::TraceReader r;
    const std::string e = r.open(path);
    return collect(r, e);
}

inline ReadAll read_memory(std::span<const std::byte> bytes) {
    coreio::trace::TraceReader r;
    const std::string e = r.open_memory(bytes);
    return collect(r, e);
}

inline std::vector<std::byte> file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<std::byte> b(c.size());
    for (std::size_t i = 0; i < c.size(); ++i) b[i] = static_cast<std::byte>(c[i]);
    return b;
}

// Limits the size of files this process writes (RLIMIT_FSIZE, soft limit) with
// SIGXFSZ ignored, so that write() fails with EFBIG; restores both on scope exit.
class FileSizeLimit {
public:
    explicit FileSizeLimit(rlim_t bytes) {
        ::getrlimit(RLIMIT_FSIZE, &saved_);
        old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
        rlimit l = saved_;
        l.rlim_cur = bytes;
        ok_ = ::setrlimit(RLIMIT_FSIZE, &l) == 0;
    }
    ~FileSizeLimit() {
        ::setrlimit(RLIMIT_FSIZE, &saved_);
        std::signal(SIGXFSZ, old_handler_);
    }
    bool ok() const { return ok_; }

private:
    rlimit saved_{};
    void (*old_handler_)(int) = nullptr;
    bool ok_ = false;
};

/// Where a checked trace's batch checksums are (byte offsets), found by walking the file.
struct BatchSpan {
    std::size_t start = 0;  // offset of its checksum
    std::size_t end = 0;    // offset just past its records
};
inline std::vector<BatchSpan> batches_of(std::span<const std::byte> b) {
    auto u8 = [&](std::size_t i) { return std::to_integer<unsigned>(b[i]); };
    std::size_t pos = 12;  // the header's tag, after the 12-byte preamble of format version 1
    std::size_t len = 0, shift = 0, k = pos + 1;
    for (; u8(k) & 0x80; ++k, shift += 7) len |= static_cast<std::size_t>(u8(k) & 0x7f) << shift;
    len |= static_cast<std::size_t>(u8(k)) << shift;
    pos = k + 1 + len;
    std::vector<BatchSpan> out;
    while (pos + 12 <= b.size() && u8(pos) == 0x1a) {
        const std::size_t size = u8(pos + 3) | u8(pos + 4) << 8 | u8(pos + 5) << 16;
        out.push_back({pos, pos + 12 + size});
        pos += 12 + size;
    }
    return out;
}

/// Appends `payload` to a checked trace as one more batch, with its checksum.
std::vector<std::byte> append_batch(std::vector<std::byte> file, std::span<const std::byte> payload);

/// Expects two events equal in every field, times and raw frames included.
inline void expect_same(const coreio::trace::Event& a, const coreio::trace::Event& b, std::size_t index) {
    coreio::trace::CompareOptions all;
    all.timing = true;
    all.raw = true;
    const auto d = coreio::trace::compare_events(a, b, all);
    EXPECT_TRUE(d.field.empty()) << "record " << index << ": " << d.field << " " << d.a << " vs " << d.b;
    EXPECT_EQ(a.message, b.message) << "record " << index;
}

}  // namespace trace_test
