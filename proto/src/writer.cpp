#include "coreio/trace/writer.hpp"

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

#include "codec.hpp"

namespace coreio::trace {

struct TraceWriter::Impl {
    using Clock = std::chrono::steady_clock;

    mutable std::mutex mutex;
    std::condition_variable wake;  // stops the flush thread
    std::thread flusher;
    bool stopping = false;

    int fd = -1;
    WriterOptions options;
    Clock::time_point start;
    Clock::time_point last_write;  // when the batch was last written (or the file opened)
    std::vector<std::uint8_t> batch;  // encoded records not yet written
    std::size_t used = 0;             // bytes of `batch` in use
    detail::DeltaState state;
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::uint64_t record_bytes = 0;
    std::string error;

    // Writes all of [p, p+n) (whole records); records the first error.
    void write_all(const std::uint8_t* p, std::size_t n) {
        while (n > 0 && error.empty()) {
            const ssize_t k = ::write(fd, p, n);
            if (k < 0) {
                if (errno == EINTR) continue;
                error = std::string("write failed: ") + std::strerror(errno);
                return;
            }
            p += k;
            n -= static_cast<std::size_t>(k);
            bytes += static_cast<std::uint64_t>(k);
        }
    }
    void flush_locked() {
        if (used > 0 && fd >= 0) write_all(batch.data(), used);
        used = 0;
        last_write = Clock::now();
    }
    void flush_loop() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            wake.wait_for(lock, options.flush_interval);
            if (used > 0 && Clock::now() - last_write >= options.flush_interval) flush_locked();
        }
    }
};

TraceWriter::TraceWriter() : impl_(std::make_unique<Impl>()) {}
TraceWriter::~TraceWriter() { close(); }

std::string TraceWriter::open(const std::string& path, const TraceHeader& header, const WriterOptions& options) {
    close();
    Impl& m = *impl_;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot create " + path + ": " + std::strerror(errno);
    std::lock_guard lock(m.mutex);
    m.fd = fd;
    m.options = options;
    if (m.options.batch_bytes < 4096) m.options.batch_bytes = 4096;
    m.batch.assign(m.options.batch_bytes + detail::kMaxHeaderBytes / 16, 0);
    m.used = 0;
    m.state = {};
    m.records = m.bytes = m.record_bytes = 0;
    m.error.clear();
    m.stopping = false;
    m.start = Impl::Clock::now();

    TraceHeader h = header;
    h.schema_version = kSchemaVersion;
    if (h.created_unix_ns == 0)
        h.created_unix_ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count());
    const std::string body = detail::encode_header(h);
    std::vector<std::uint8_t> head(std::begin(detail::kPreamble), std::end(detail::kPreamble));
    std::uint8_t tmp[10];
    head.insert(head.end(), tmp, tmp + detail::put_varint(tmp, kFormatVersion));
    head.push_back(detail::kHeaderTag);
    head.insert(head.end(), tmp, tmp + detail::put_varint(tmp, body.size()));
    head.insert(head.end(), body.begin(), body.end());
    m.write_all(head.data(), head.size());
    m.last_write = Impl::Clock::now();
    if (!m.error.empty()) {
        ::close(m.fd);
        m.fd = -1;
        return m.error + " (" + path + ")";
    }
    if (m.options.background_flush) m.flusher = std::thread([&m] { m.flush_loop(); });
    return {};
}

bool TraceWriter::is_open() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->fd >= 0;
}

std::uint64_t TraceWriter::now_ns() const {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Impl::Clock::now() - impl_->start).count());
}

std::uint64_t TraceWriter::append(const Event& ev) {
    Impl& m = *impl_;
    std::lock_guard lock(m.mutex);
    const std::uint64_t index = m.records;
    if (m.fd < 0 || !m.error.empty()) return index;
    const std::size_t need = 1 + 3 + detail::max_record_body(ev);
    if (m.used + need > m.batch.size()) {
        m.flush_locked();
        if (need > m.batch.size()) m.batch.resize(need);  // only for huge raw frames
    }
    // Body 4 bytes in (tag + up to 3 length bytes: records are < 2 MiB), then move it back.
    std::uint8_t* at = m.batch.data() + m.used;
    const std::size_t n = detail::encode_record(ev, m.state, at + 4);
    at[0] = detail::kRecordTag;
    const std::size_t k = detail::put_varint(at + 1, n);
    if (k != 3) std::memmove(at + 1 + k, at + 4, n);
    m.used += 1 + k + n;
    m.record_bytes += 1 + k + n;
    ++m.records;
    // With the flush thread, time is its business (no clock read per record here).
    if (m.used >= m.options.batch_bytes ||
        (!m.options.background_flush && Impl::Clock::now() - m.last_write >= m.options.flush_interval))
        m.flush_locked();
    return index;
}

void TraceWriter::flush() {
    std::lock_guard lock(impl_->mutex);
    impl_->flush_locked();
}

std::string TraceWriter::close() {
    Impl& m = *impl_;
    {
        std::lock_guard lock(m.mutex);
        m.stopping = true;
    }
    m.wake.notify_all();
    if (m.flusher.joinable()) m.flusher.join();
    std::lock_guard lock(m.mutex);
    if (m.fd >= 0) {
        m.flush_locked();
        if (::close(m.fd) != 0 && m.error.empty()) m.error = std::string("close failed: ") + std::strerror(errno);
        m.fd = -1;
    }
    return m.error;
}

std::uint64_t TraceWriter::records() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->records;
}
std::uint64_t TraceWriter::bytes() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->bytes + impl_->used;
}
std::uint64_t TraceWriter::record_bytes() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->record_bytes;
}
std::string TraceWriter::error() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->error;
}

}  // namespace coreio::trace
