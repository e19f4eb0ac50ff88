#include "coreio/trace/reader.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "codec.hpp"
#include "crc32c.hpp"

namespace coreio::trace {

struct TraceReader::Impl {
    int fd = -1;
    bool eof = false;                // nothing more to read from fd
    std::vector<std::uint8_t> buf;   // input window
    std::size_t pos = 0;             // next unread byte in buf
    std::size_t len = 0;             // bytes of buf holding data
    std::uint64_t base = 0;          // file offset of buf[0]
    std::uint64_t total = 0;         // input size
    TraceHeader header;
    detail::DeltaState state;
    std::uint64_t index = 0;         // records returned
    std::uint64_t offset = 0;        // offset of the last record or problem
    ReadStatus sticky = ReadStatus::Record;  // End/Truncated/Corrupt once reached
    bool checked = false;            // schema 2: every byte is behind a batch checksum
    std::uint64_t batch_end = 0;     // checked: offset where the current batch ends
    std::uint32_t crc = 0;           // running CRC-32C of the file without its checksums
    std::uint64_t covered_from = 0;  // checked: first byte the next checksum vouches for
    std::string message;
    std::string name;                // path, for messages

    ~Impl() { close_fd(); }
    void close_fd() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    void reset() {
        close_fd();
        eof = false;
        pos = len = 0;
        base = total = 0;
        header = {};
        state = {};
        index = offset = 0;
        sticky = ReadStatus::Record;
        message.clear();
        checked = false;
        batch_end = 0;
        crc = 0;
        covered_from = 0;
    }
    std::size_t avail() const { return len - pos; }
    // Makes at least `want` bytes available if the input has them; returns avail().
    std::size_t fill(std::size_t want) {
        if (avail() >= want || eof) return avail();
        if (pos > 0) {
            std::memmove(buf.data(), buf.data() + pos, avail());
            base += pos;
            len -= pos;
            pos = 0;
        }
        if (want > buf.size()) buf.resize(want);  // a batch larger than the window
        while (len < want && !eof) {
            const ssize_t k = ::read(fd, buf.data() + len, buf.size() - len);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                eof = true;  // a read error ends the input like a truncation would
                break;
            }
            len += static_cast<std::size_t>(k);
        }
        return avail();
    }
    std::uint64_t here() const { return base + pos; }

    std::string fail(const std::string& what) {
        close_fd();
        return name + ": " + what;
    }
    // Consumes n bytes of the head (preamble, header) into the running checksum.
    void take(std::size_t n) {
        crc = detail::crc32c_extend(crc, buf.data() + pos, n);
        pos += n;
    }
    std::string at_text(std::uint64_t at) { return "byte offset " + std::to_string(at); }

    std::string start() {
        const std::size_t pre = sizeof(detail::kPreamble);
        const std::size_t have = fill(pre + 10);
        if (have == 0) return fail("empty file (no trace preamble)");
        const std::size_t same = static_cast<std::size_t>(
            std::mismatch(buf.data() + pos, buf.data() + pos + std::min(have, pre), detail::kPreamble).first -
            (buf.data() + pos));
        if (have < pre && same == have)
            return fail("truncated preamble: file is " + std::to_string(have) + " bytes");
        if (same < pre)
            return fail("not a coreio trace (no \"COREIO\" preamble: differs at " + at_text(same) + ")");
        std::uint64_t version = 0;
        const std::uint8_t* p = buf.data() + pos + pre;
        std::size_t k = detail::get_varint(p, buf.data() + len, &version);
        if (k == 0) return fail("truncated preamble (format version cut off at " + at_text(pre) + ")");
        if (k == SIZE_MAX) return fail("bad format version varint at " + at_text(pre));
        if (version == 0 || version > kFormatVersion)
            return fail("format version " + std::to_string(version) + " is not supported (" + at_text(pre) +
                        "; this reader reads 1.." + std::to_string(kFormatVersion) + ")");
        take(pre + k);
        const std::uint64_t header_at = here();
        if (fill(6) < 1) return fail("truncated: no header after the preamble (" + at_text(header_at) + ")");
        if (buf[pos] != detail::kHeaderTag) return fail("expected the header (field 2) at " + at_text(header_at));
        std::uint64_t n = 0;
        k = detail::get_varint(buf.data() + pos + 1, buf.data() + len, &n);
        if (k == 0) return fail("truncated header length at " + at_text(header_at + 1));
        if (k == SIZE_MAX || n > detail::kMaxHeaderBytes) return fail("bad header length at " + at_text(header_at + 1));
        const std::string range = "bytes " + std::to_string(header_at) + ".." + std::to_string(header_at + 1 + k + n);
        if (fill(1 + k + n) < 1 + k + n)
            return fail("truncated header at " + at_text(header_at) + " (" + std::to_string(n) + " bytes declared: " +
                        range + ", the input ends at " + std::to_string(base + len) + ")");
        if (!detail::decode_header(buf.data() + pos + 1 + k, n, header))
            return fail("corrupt header at " + at_text(header_at) + " (" + range + ")");
        if (header.schema_version == 0)  // every writer sets it: a damaged header length, say
            return fail("corrupt header at " + at_text(header_at) + " (" + range + "): no schema version");
        take(1 + k + n);
        return start_batches();
    }

    // After the header: a file of schema 2 or later (or any file with a
    // checksum there) goes on with the checksum that covers the head.
    std::string start_batches() {
        const std::uint64_t at = here();
        const bool have_batch = fill(1) >= 1 && buf[pos] == detail::kBatchTag;
        if (!have_batch && header.schema_version < 2) return {};  // version 1: no checksums
        if (!have_batch) {
            if (avail() == 0)
                return fail("truncated: no batch checksum after the header (" + at_text(at) + ")");
            return fail("expected the batch checksum (field 3) at " + at_text(at) + " after a schema " +
                        std::to_string(header.schema_version) + " header: bytes 0.." + std::to_string(at + 1) +
                        " are damaged");
        }
        checked = true;
        batch_end = at;
        if (open_batch() != ReadStatus::Record) {
            close_fd();
            return message;
        }
        return {};
    }

    // Reads the batch checksum at here(), makes the batch it covers available
    // and checks it. Returns Record when the batch is good.
    ReadStatus open_batch() {
        const std::uint64_t at = here();
        const std::size_t have = fill(detail::kBatchHeadBytes);
        if (have < detail::kBatchHeadBytes)
            return stop(ReadStatus::Truncated, at, "file ends inside the batch checksum at " + at_text(at));
        std::uint32_t size = 0, want = 0;
        std::size_t bad = 0;
        if (const char* e = detail::get_batch_head(buf.data() + pos, size, want, &bad))
            return stop(ReadStatus::Corrupt, at + bad,
                        "corrupt batch checksum at " + at_text(at + bad) + " (bytes " + std::to_string(at) + ".." +
                            std::to_string(at + detail::kBatchHeadBytes) + "): " + e);
        const std::size_t whole = detail::kBatchHeadBytes + size;
        if (fill(whole) < whole)
            return stop(ReadStatus::Truncated, at,
                        "file ends inside the batch at " + at_text(at) + " (" +
                            std::to_string(avail() - detail::kBatchHeadBytes) + " of " + std::to_string(size) +
                            " bytes present); the records before it are complete");
        const std::uint32_t got = detail::crc32c_extend(crc, buf.data() + pos + detail::kBatchHeadBytes, size);
        if (got != want)
            return stop(ReadStatus::Corrupt, at,
                        "checksum mismatch in the batch at " + at_text(at) + ": bytes " +
                            std::to_string(covered_from) + ".." + std::to_string(at + whole) + " are damaged");
        crc = got;
        pos += detail::kBatchHeadBytes;
        batch_end = here() + size;
        covered_from = batch_end;
        return ReadStatus::Record;
    }

    ReadStatus stop(ReadStatus s, std::uint64_t at, std::string text) {
        sticky = s;
        offset = at;
        message = name + ": " + std::move(text);
        return s;
    }

    // Input that ends too early: a truncated file, or, inside a batch whose
    // checksum held, a malformed record.
    ReadStatus cut(std::uint64_t at, std::string text) {
        if (checked) return stop(ReadStatus::Corrupt, at, "corrupt: " + text + " (inside a checked batch)");
        return stop(ReadStatus::Truncated, at, std::move(text));
    }

    ReadStatus next(Event& ev) {
        if (sticky != ReadStatus::Record) return sticky;
        for (;;) {
            if (checked && here() == batch_end) {
                if (fill(1) == 0) return sticky = ReadStatus::End;
                if (open_batch() != ReadStatus::Record) return sticky;
                continue;
            }
            if (fill(16) == 0) return sticky = ReadStatus::End;
            if (const std::optional<ReadStatus> s = field(ev)) return *s;
        }
    }

    // Reads the top-level field at here(): a record (into `ev`), or a field of a
    // newer format, skipped (nullopt). Returns Record, nullopt, or where reading stopped.
    std::optional<ReadStatus> field(Event& ev) {
        const std::uint64_t at = here();
        // A field skipped before (unknown varint or fixed width) may have run
        // past the batch's end: the batch's own bytes contradict its size.
        if (checked && at > batch_end)
            return stop(ReadStatus::Corrupt, batch_end,
                        "corrupt: a field runs past the end of its checked batch at byte offset " +
                            std::to_string(batch_end));
        const std::uint8_t* p = buf.data() + pos;
        // Within a checked batch, nothing may run past its end.
        const std::uint8_t* end = checked ? p + (batch_end - at) : buf.data() + len;
        std::uint64_t key = 0;
        const std::size_t k = detail::get_varint(p, end, &key);
        if (k == 0) return cut(at, "file ends inside " + where(at) + " (cut-off key)");
        if (k == SIZE_MAX || (key >> 3) == 0) return stop(ReadStatus::Corrupt, at, "corrupt " + where(at) + ": bad field key");
        const unsigned type = static_cast<unsigned>(key & 7);
        if (type != 2) return skip_scalar(at, type, k, end);
        std::uint64_t n = 0;
        const std::size_t k2 = detail::get_varint(p + k, end, &n);
        if (k2 == 0) return cut(at, "file ends inside " + where(at) + " (cut-off length)");
        if (k2 == SIZE_MAX || n > kMaxRecordBytes)
            return stop(ReadStatus::Corrupt, at, "corrupt " + where(at) + ": length " +
                                                     (k2 == SIZE_MAX ? std::string("varint too long")
                                                                     : std::to_string(n) + " over the limit of " +
                                                                           std::to_string(kMaxRecordBytes)));
        const std::size_t whole = k + k2 + static_cast<std::size_t>(n);
        if (checked && at + whole > batch_end)
            return stop(ReadStatus::Corrupt, at, "corrupt " + where(at) + ": runs past the end of its batch at " +
                                                     at_text(batch_end));
        if (fill(whole) < whole)
            return cut(at,
                       "file ends inside " + where(at) + " (" + std::to_string(avail() - k - k2) + " of " +
                           std::to_string(n) + " bytes present); the records before it are complete");
        if (!checked && key == detail::kBatchTag)  // only checked files have them: the head said otherwise
            return stop(ReadStatus::Corrupt, at,
                        "batch checksum at " + at_text(at) + " in a file whose header says schema " +
                            std::to_string(header.schema_version) + ": bytes 0.." + std::to_string(at) +
                            " are damaged");
        if ((key >> 3) != 1) {  // a top-level field of a newer format: skip
            pos += whole;
            return std::nullopt;
        }
        std::size_t bad = 0;
        if (const char* e = detail::decode_record(buf.data() + pos + k + k2, static_cast<std::size_t>(n), state, ev, &bad))
            return stop(ReadStatus::Corrupt, at,
                        "corrupt " + where(at) + ": " + e + " (byte offset " + std::to_string(at + k + k2 + bad) + ")");
        pos += whole;
        offset = at;
        ++index;
        return ReadStatus::Record;
    }

    // Skips an unknown top-level varint (type 0) or fixed-width (1, 5) field
    // whose key, `k` bytes, is at `at`; nullopt when skipped.
    std::optional<ReadStatus> skip_scalar(std::uint64_t at, unsigned type, std::size_t k, const std::uint8_t* end) {
        const auto cut_off = [&] { return cut(at, "file ends inside a field at byte offset " + std::to_string(at)); };
        if (type == 0) {
            std::uint64_t v = 0;
            const std::size_t k2 = detail::get_varint(buf.data() + pos + k, end, &v);
            if (k2 == 0) return cut_off();
            if (k2 == SIZE_MAX) return stop(ReadStatus::Corrupt, at, "corrupt varint at byte offset " + std::to_string(at));
            pos += k + k2;
            return std::nullopt;
        }
        if (type == 1 || type == 5) {
            const std::size_t w = type == 1 ? 8 : 4;
            if (fill(k + w) < k + w) return cut_off();
            pos += k + w;
            return std::nullopt;
        }
        return stop(ReadStatus::Corrupt, at,
                    "corrupt " + where(at) + ": wire type " + std::to_string(type) + " is not a record");
    }

    // "record #N at byte offset AT", for messages (only built on error paths:
    // formatting per record would cost more than decoding).
    std::string where(std::uint64_t at) const {
        return "record #" + std::to_string(index) + " at byte offset " + std::to_string(at);
    }
};

TraceReader::TraceReader() : impl_(std::make_unique<Impl>()) {}
TraceReader::~TraceReader() = default;

std::string TraceReader::open(const std::string& path) {
    Impl& m = *impl_;
    m.reset();
    m.name = path;
    m.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m.fd < 0) return "cannot open " + path + ": " + std::strerror(errno);
    struct stat st {};
    if (::fstat(m.fd, &st) == 0) m.total = static_cast<std::uint64_t>(st.st_size);
    if (S_ISDIR(st.st_mode)) return m.fail("is a directory");
    m.buf.resize(4u << 20);
    return m.start();
}

std::string TraceReader::open_memory(std::span<const std::byte> bytes) {
    Impl& m = *impl_;
    m.reset();
    m.name = "<memory>";
    m.buf.assign(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                 reinterpret_cast<const std::uint8_t*>(bytes.data()) + bytes.size());
    m.len = bytes.size();
    m.total = bytes.size();
    m.eof = true;
    return m.start();
}

const TraceHeader& TraceReader::header() const { return impl_->header; }
ReadStatus TraceReader::next(Event& ev) { return impl_->next(ev); }
std::uint64_t TraceReader::index() const { return impl_->index == 0 ? 0 : impl_->index - 1; }
std::uint64_t TraceReader::offset() const { return impl_->offset; }
std::uint64_t TraceReader::position() const { return impl_->here(); }
std::uint64_t TraceReader::size() const { return impl_->total; }
const std::string& TraceReader::message() const { return impl_->message; }

}  // namespace coreio::trace
