#include "coreio/trace/output_file.hpp"

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace coreio::trace {
namespace {

std::string errno_text() { return std::strerror(errno); }

// The directory part of `path` ("." for a bare name) and the name part.
void split_path(const std::string& path, std::string& dir, std::string& name) {
    const auto slash = path.rfind('/');
    dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    name = slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

OutputFile::~OutputFile() { abort(); }

std::string OutputFile::open(const std::string& path, const std::vector<std::string>& inputs) {
    abort();
    path_ = path;
    struct stat out {};
    const bool exists = ::stat(path.c_str(), &out) == 0;
    if (exists) {
        for (const auto& in : inputs) {
            struct stat st {};
            if (::stat(in.c_str(), &st) == 0 && st.st_dev == out.st_dev && st.st_ino == out.st_ino)
                return "output " + path + " is also an input (" + in + "): refusing to overwrite it";
        }
        if (S_ISDIR(out.st_mode)) return "cannot create " + path + ": it is a directory";
        if (!S_ISREG(out.st_mode)) {  // a device or a FIFO: nothing to replace, write to it
            fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
            if (fd_ < 0) return "cannot open " + path + ": " + errno_text();
            return {};
        }
    }
    // A symbolic link keeps pointing where it did: replace its target.
    std::string target = path;
    if (char* real = exists ? ::realpath(path.c_str(), nullptr) : nullptr) {
        target = real;
        std::free(real);
    }
    std::string dir, name;
    split_path(target, dir, name);
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
        temp_ = dir + "/." + name + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ >= 0 || errno != EEXIST) break;
    }
    if (fd_ < 0) {
        temp_.clear();
        return "cannot create " + path + ": " + errno_text();
    }
    if (exists) (void)::fchmod(fd_, out.st_mode & 07777);  // a replaced file keeps its permissions
    path_ = target;
    return {};
}

std::FILE* OutputFile::stream() {
    if (!stream_ && fd_ >= 0) stream_ = ::fdopen(fd_, "w");
    return stream_;
}

std::string OutputFile::publish() {
    if (temp_.empty()) return {};
    if (::rename(temp_.c_str(), path_.c_str()) != 0) return "cannot rename to " + path_ + ": " + errno_text();
    temp_.clear();
    return {};
}

// Flushes and closes; returns the first error.
std::string OutputFile::close_file() {
    std::string err;
    if (stream_) {
        const bool failed = std::fflush(stream_) != 0 || std::ferror(stream_);
        const int e = errno;
        if (std::fclose(stream_) != 0 && !failed) err = "writing " + path_ + " failed: " + errno_text();
        if (failed) err = "writing " + path_ + " failed: " + std::strerror(e);
        stream_ = nullptr;
        fd_ = -1;
    }
    if (fd_ >= 0) {
        if (::close(fd_) != 0 && err.empty()) err = "closing " + path_ + " failed: " + errno_text();
        fd_ = -1;
    }
    return err;
}

std::string OutputFile::commit() {
    if (fd_ < 0 && !stream_) return "no output open";
    std::string err = close_file();
    if (err.empty()) err = publish();
    if (!err.empty()) abort();
    return err;
}

void OutputFile::abort() {
    (void)close_file();
    if (!temp_.empty()) ::unlink(temp_.c_str());
    temp_.clear();
}

}  // namespace coreio::trace
