#include "coreio/trace/writer.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "codec.hpp"
#include "crc32c.hpp"
#include "fast_mutex.hpp"

namespace coreio::trace {
namespace {

// CLOCK_MONOTONIC in ns (what steady_clock reads, minus its layers: ~20 ns via the vDSO).
std::uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Writes all of [p, p+n) to fd. Returns the bytes written and, on failure, sets `error`.
// SIGXFSZ is blocked in this thread meanwhile: past a file size limit (ulimit -f)
// the write then fails with EFBIG and is reported like any write error, instead
// of the signal's default action ending the process mid-batch. The signal that
// write raised (pending on this thread) is taken before the mask is restored.
std::size_t write_all(int fd, const std::uint8_t* p, std::size_t n, std::string& error) {
    sigset_t xfsz, old;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    std::size_t done = 0;
    while (done < n) {
        const ssize_t k = ::write(fd, p + done, n - done);
        if (k < 0) {
            if (errno == EINTR) continue;
            const int e = errno;
            if (e == EFBIG) {
                const timespec now{};
                (void)::sigtimedwait(&xfsz, nullptr, &now);
            }
            error = std::strerror(e);
            break;
        }
        done += static_cast<std::size_t>(k);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return done;
}

// The time for tapped frames, cheaper than clock_gettime (~20 ns against ~50 ns
// on a VM): the invariant TSC, rescaled to CLOCK_MONOTONIC every millisecond.
// Only used under the writer's lock. Readings never go back and stay within a
// few ns of CLOCK_MONOTONIC: each rate is measured over the last millisecond
// from (CLOCK_MONOTONIC, TSC) pairs read back to back (a pair interrupted by
// preemption is read again). Without an invariant TSC, or while the thread
// sees a TSC going back (another CPU), it reads CLOCK_MONOTONIC itself.
class TapClock {
public:
    TapClock() : tsc_(invariant_tsc()) {}

    /// CLOCK_MONOTONIC now, ns.
    std::uint64_t now() {
#if defined(__x86_64__)
        if (mult_ != 0) {
            const std::uint64_t d = __rdtsc() - ref_tsc_;
            if (d < limit_) return keep(ref_ns_ + ((d * mult_) >> 32));
        }
#endif
        return resync();
    }

private:
    static constexpr std::uint64_t kIntervalNs = 1'000'000;  // a rate is measured over, and used for, this long

    static bool invariant_tsc() {
#if defined(__x86_64__)
        unsigned a = 0, b = 0, c = 0, d = 0;
        if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000007u) return false;
        __cpuid(0x80000007u, a, b, c, d);
        return (d >> 8) & 1;  // TSC runs at a constant rate in every power state
#else
        return false;
#endif
    }

    std::uint64_t keep(std::uint64_t t) { return last_ = t > last_ ? t : last_; }

#if defined(__x86_64__)
    // CLOCK_MONOTONIC and the TSC at (about) the same instant; false when
    // every try was interrupted.
    static bool read_pair(std::uint64_t& m, std::uint64_t& c) {
        for (int i = 0; i < 4; ++i) {
            const std::uint64_t a = monotonic_ns();
            c = __rdtsc();
            const std::uint64_t b = monotonic_ns();
            if (b - a <= 2000) {
                m = a + (b - a) / 2;
                return true;
            }
        }
        return false;
    }
#endif

    // Reads CLOCK_MONOTONIC; a millisecond after the reference, measures the TSC rate anew.
    std::uint64_t resync() {
#if defined(__x86_64__)
        std::uint64_t m = 0, c = 0;
        if (!tsc_ || !read_pair(m, c)) return keep(monotonic_ns());
        if (ref_tsc_ == 0 || c <= ref_tsc_ || m <= ref_ns_) {
            mult_ = 0;  // first reading, or a TSC going back (another CPU): start over
            ref_tsc_ = c;
            ref_ns_ = m;
        } else if (m - ref_ns_ >= kIntervalNs) {
            mult_ = static_cast<std::uint64_t>(static_cast<double>(m - ref_ns_) / static_cast<double>(c - ref_tsc_) *
                                               4294967296.0);
            limit_ = mult_ == 0 ? 0 : (kIntervalNs << 32) / mult_;
            ref_tsc_ = c;
            ref_ns_ = m;
        }
        return keep(m);
#else
        return keep(monotonic_ns());
#endif
    }

    bool tsc_;
    std::uint64_t mult_ = 0;     // ns per TSC tick, 32.32 fixed point; 0 = not measured
    std::uint64_t limit_ = 0;    // ticks after ref_tsc_ that mult_ may be used for
    std::uint64_t ref_tsc_ = 0;  // TSC at ref_ns_
    std::uint64_t ref_ns_ = 0;   // CLOCK_MONOTONIC reading the TSC is counted from
    std::uint64_t last_ = 0;     // last reading returned
};

}  // namespace

// Two batches: appends encode into `batch`; a full one is swapped with `spare`
// and written by the flush thread outside the lock while appends go on. Each
// batch starts with room for its checksum (detail::kBatchHeadBytes), filled in
// just before the batch is written.
struct TraceWriter::Impl {
    mutable detail::FastMutex mutex;
    std::condition_variable_any wake;     // to the flush thread: a batch to write, or stop
    std::condition_variable_any written;  // from the flush thread: `spare` is free again
    std::thread flusher;
    bool stopping = false;
    bool writing = false;             // the flush thread owns `spare` (writing it unlocked)

    int fd = -1;
    bool owns_fd = false;             // opened by open(path): closed by close()
    std::string name;                 // the file, for messages
    WriterOptions options;
    std::uint64_t interval_ns = 0;    // options.flush_interval
    std::uint64_t start_ns = 0;       // monotonic time of the trace start
    TapClock tap_clock;               // now_locked()'s clock
    std::uint64_t oldest_ns = 0;      // monotonic time of the first record in `batch`
    std::vector<std::uint8_t> batch;  // checksum room + encoded records not yet handed to the file
    std::size_t used = 0;             // bytes of `batch` in use (kBatchHeadBytes when empty)
    std::uint64_t batch_records = 0;  // records in `batch`
    std::vector<std::uint8_t> spare;  // the batch being written by the flush thread
    std::size_t spare_used = 0;       // its bytes
    std::uint64_t spare_records = 0;  // its records
    std::uint32_t crc = 0;            // running CRC-32C of the file without its checksums; owned by whoever writes
    detail::DeltaState state;
    std::uint64_t records = 0;
    std::uint64_t records_written = 0;  // records in batches wholly written
    std::uint64_t bytes = 0;          // bytes written to the file, all good
    std::uint64_t record_bytes = 0;
    std::string error;

    static constexpr std::size_t kEmpty = detail::kBatchHeadBytes;

    // Seals a batch (its checksum) and writes it; on failure cuts the file back
    // to the last whole batch. Called by exactly one thread at a time (the flush
    // thread while `writing`, else a thread holding the lock), unlocked or not.
    // Returns the error, or empty.
    std::string write_batch(std::vector<std::uint8_t>& b, std::size_t n, std::uint64_t good_bytes) {
        const auto size = static_cast<std::uint32_t>(n - kEmpty);
        const std::uint32_t next_crc = detail::crc32c_extend(crc, b.data() + kEmpty, size);
        detail::put_batch_head(b.data(), size, next_crc);
        std::string err;
        if (write_all(fd, b.data(), n, err) == n) {
            crc = next_crc;
            return {};
        }
        // A short write leaves part of a batch: cut it off so that the file ends at a
        // batch boundary and holds exactly records_written records (fails harmlessly
        // on a device such as /dev/full).
        if (::ftruncate(fd, static_cast<off_t>(good_bytes)) != 0 && errno != EINVAL) {
            err += "; cutting the partial batch off failed too: ";
            err += std::strerror(errno);
        }
        return "writing " + name + " failed: " + err;
    }

    // Books the outcome of write_batch() (the lock held).
    void written_batch(std::size_t n, std::uint64_t batch_recs, std::string err) {
        if (err.empty()) {
            bytes += n;
            records_written += batch_recs;
            record_bytes += kEmpty;  // the checksum is part of the cost of records
        } else if (error.empty()) {
            error = std::move(err);
        }
    }

    // Writes `batch` in the calling thread (the lock held) once the flush thread is idle.
    void flush_locked(std::unique_lock<detail::FastMutex>& lock) {
        while (writing) written.wait(lock);
        if (used > kEmpty && fd >= 0 && error.empty()) written_batch(used, batch_records, write_batch(batch, used, bytes));
        used = kEmpty;
        batch_records = 0;
    }

    // Gives `batch` to the flush thread when it is idle (else to this thread).
    void hand_off(std::unique_lock<detail::FastMutex>& lock) {
        while (writing) written.wait(lock);
        if (used == kEmpty) return;
        if (!flusher.joinable()) return flush_locked(lock);
        std::swap(batch, spare);
        spare_used = used;
        spare_records = batch_records;
        used = kEmpty;
        batch_records = 0;
        writing = true;
        wake.notify_one();
    }

    void flush_loop() {
        std::unique_lock lock(mutex);
        for (;;) {
            if (writing) {
                const std::size_t n = spare_used;
                const std::uint64_t good = bytes;
                std::string err;
                if (error.empty()) {
                    lock.unlock();
                    err = write_batch(spare, n, good);
                    lock.lock();
                    written_batch(n, spare_records, std::move(err));
                }
                spare_used = 0;
                spare_records = 0;
                writing = false;
                written.notify_all();
                continue;
            }
            if (stopping) return;
            if (used > kEmpty) {
                const std::uint64_t age = monotonic_ns() - oldest_ns;
                if (age >= interval_ns) {
                    hand_off(lock);
                    continue;
                }
                wake.wait_for(lock, std::chrono::nanoseconds(interval_ns - age));
            } else {
                wake.wait_for(lock, options.flush_interval);
            }
        }
    }

    // Makes room for a record of up to `need` bytes; false when the writer stopped.
    bool room_for(std::size_t need) {
        std::unique_lock lock(mutex, std::adopt_lock);
        while (used > kEmpty && (used + need > batch.size() || used + need > detail::kMaxBatchBytes) &&
               error.empty())
            hand_off(lock);
        lock.release();
        if (fd < 0 || !error.empty()) return false;
        if (used + need > batch.size()) batch.resize(used + need);  // only for huge raw frames
        return true;
    }

    std::uint64_t append(const Event& ev) {
        const std::uint64_t index = records;
        if (fd < 0) return index;
        if (!error.empty()) return ++records, index;  // dropped, but counted: "the file holds N of M"
        const std::size_t need = 1 + 3 + detail::max_record_body(ev);
        if (used + need > batch.size() && !room_for(need)) return ++records, index;
        if (used == kEmpty) oldest_ns = monotonic_ns();
        // Tag, one length byte (records without raw frames are < 128 bytes), body;
        // a longer body moves up to make room for its longer length.
        std::uint8_t* at = batch.data() + used;
        std::size_t n = detail::encode_record(ev, state, at + 2);
        at[0] = detail::kRecordTag;
        if (n < 0x80) {
            at[1] = static_cast<std::uint8_t>(n);
            n += 2;
        } else {
            std::uint8_t len[10];
            const std::size_t k = detail::put_varint(len, n);
            std::memmove(at + 1 + k, at + 2, n);
            std::memcpy(at + 1, len, k);
            n += 1 + k;
        }
        used += n;
        record_bytes += n;
        ++records;
        ++batch_records;
        if (used >= options.batch_bytes) {
            if (!writing) {
                std::unique_lock lock(mutex, std::adopt_lock);
                hand_off(lock);
                lock.release();
            }
        } else if (!options.background_flush && monotonic_ns() - oldest_ns >= interval_ns) {
            std::unique_lock lock(mutex, std::adopt_lock);
            flush_locked(lock);
            lock.release();
        }
        return index;
    }

    // The preamble, the header and the checksum that covers both.
    std::vector<std::uint8_t> head(const TraceHeader& header) {
        TraceHeader h = header;
        h.schema_version = kSchemaVersion;
        if (h.created_unix_ns == 0)
            h.created_unix_ns = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
                    .count());
        const std::string body = detail::encode_header(h);
        std::vector<std::uint8_t> out(std::begin(detail::kPreamble), std::end(detail::kPreamble));
        std::uint8_t tmp[10];
        out.insert(out.end(), tmp, tmp + detail::put_varint(tmp, kFormatVersion));
        out.push_back(detail::kHeaderTag);
        out.insert(out.end(), tmp, tmp + detail::put_varint(tmp, body.size()));
        out.insert(out.end(), body.begin(), body.end());
        crc = detail::crc32c_extend(0, out.data(), out.size());
        out.resize(out.size() + detail::kBatchHeadBytes);
        detail::put_batch_head(out.data() + out.size() - detail::kBatchHeadBytes, 0, crc);  // an empty batch
        return out;
    }
};

TraceWriter::TraceWriter() : impl_(std::make_unique<Impl>()) {}
TraceWriter::~TraceWriter() { close(); }

std::string TraceWriter::open(const std::string& path, const TraceHeader& header, const WriterOptions& options) {
    close();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot create " + path + ": " + std::strerror(errno);
    std::string e = open(fd, path, header, options);
    if (e.empty()) impl_->owns_fd = true;
    else ::close(fd);
    return e;
}

std::string TraceWriter::open(int fd, const std::string& name, const TraceHeader& header, const WriterOptions& options) {
    close();
    Impl& m = *impl_;
    std::lock_guard lock(m.mutex);
    m.fd = fd;
    m.owns_fd = false;
    m.name = name;
    m.options = options;
    m.options.batch_bytes = std::clamp<std::size_t>(m.options.batch_bytes, 4096, 4u << 20);
    m.interval_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(m.options.flush_interval).count());
    // Room past batch_bytes: with the flush thread still writing the previous
    // batch, appends go on into this one for as long again before they wait.
    const std::size_t room = (m.options.background_flush ? 2 * m.options.batch_bytes : m.options.batch_bytes) +
                             detail::kMaxHeaderBytes / 16;
    m.batch.assign(room, 0);
    m.spare.assign(m.options.background_flush ? room : 0, 0);
    m.used = Impl::kEmpty;
    m.spare_used = 0;
    m.batch_records = m.spare_records = 0;
    m.writing = false;
    m.state = {};
    m.records = m.records_written = m.bytes = m.record_bytes = 0;
    m.error.clear();
    m.stopping = false;
    m.start_ns = monotonic_ns();

    const std::vector<std::uint8_t> head = m.head(header);
    std::string err;
    if (write_all(m.fd, head.data(), head.size(), err) != head.size()) {
        m.fd = -1;
        return "writing " + name + " failed: " + err;
    }
    m.bytes = head.size();
    if (m.options.background_flush) m.flusher = std::thread([&m] { m.flush_loop(); });
    return {};
}

bool TraceWriter::is_open() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->fd >= 0;
}

std::uint64_t TraceWriter::now_ns() const {
    if (impl_->options.clock) return impl_->options.clock();
    return monotonic_ns() - impl_->start_ns;
}

std::uint64_t TraceWriter::time_of(std::chrono::steady_clock::time_point t) const {
    if (impl_->options.clock) return impl_->options.clock();
    // steady_clock is CLOCK_MONOTONIC (libstdc++ on Linux), as monotonic_ns().
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    const auto u = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
    return u > impl_->start_ns ? u - impl_->start_ns : 0;
}

std::uint64_t TraceWriter::append(const Event& ev) {
    std::lock_guard lock(impl_->mutex);
    return impl_->append(ev);
}

detail::FastMutex& TraceWriter::mutex() const { return impl_->mutex; }

std::uint64_t TraceWriter::now_locked() {
    if (impl_->options.clock) return impl_->options.clock();
    const std::uint64_t t = impl_->tap_clock.now();
    return t > impl_->start_ns ? t - impl_->start_ns : 0;
}

std::uint64_t TraceWriter::append_locked(const Event& ev) { return impl_->append(ev); }

void TraceWriter::flush() {
    std::unique_lock lock(impl_->mutex);
    impl_->flush_locked(lock);
}

std::string TraceWriter::close() {
    Impl& m = *impl_;
    {
        std::lock_guard lock(m.mutex);
        m.stopping = true;
    }
    m.wake.notify_all();
    if (m.flusher.joinable()) m.flusher.join();  // after writing what it was given
    std::unique_lock lock(m.mutex);
    if (m.fd >= 0) {
        m.flush_locked(lock);
        if (m.owns_fd && ::close(m.fd) != 0 && m.error.empty())
            m.error = "closing " + m.name + " failed: " + std::strerror(errno);
        m.fd = -1;
        if (!m.error.empty())
            m.error += " (the file holds the first " + std::to_string(m.records_written) + " of " +
                       std::to_string(m.records) + " records)";
    }
    return m.error;
}

std::uint64_t TraceWriter::records() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->records;
}
std::uint64_t TraceWriter::records_written() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->records_written;
}
std::uint64_t TraceWriter::bytes() const {
    std::lock_guard lock(impl_->mutex);
    const auto pending = [](std::size_t n) { return n > Impl::kEmpty ? n : 0; };
    return impl_->bytes + pending(impl_->spare_used) + pending(impl_->used);
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
