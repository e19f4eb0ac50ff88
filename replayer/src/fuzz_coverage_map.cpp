// The fuzzer's end of the coverage side channel (see fuzz_corpus.hpp).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz_corpus.hpp"

namespace coreio::replayer {

namespace {
constexpr std::size_t kHeader = 16;
constexpr std::uint32_t kMaxCounters = 1u << 24;  // a bound against a garbled header
}  // namespace

CoverageMapFile::~CoverageMapFile() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
}

std::string CoverageMapFile::create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/coreio-coverage-XXXXXX";
    fd_ = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd_ < 0) return "cannot create the coverage map file " + templ + ": " + std::strerror(errno);
    path_ = templ;
    return "";
}

void CoverageMapFile::read(std::vector<std::uint32_t>& out) const {
    out.clear();
    unsigned char header[kHeader];
    if (fd_ < 0 || ::pread(fd_, header, kHeader, 0) != static_cast<ssize_t>(kHeader)) return;
    if (std::memcmp(header, "CIOCOV01", 8) != 0) return;
    std::uint32_t n = 0;
    std::memcpy(&n, header + 8, sizeof n);
    if (n == 0 || n > kMaxCounters) return;
    out.resize(n);
    const auto bytes = static_cast<ssize_t>(n * sizeof(std::uint32_t));
    if (::pread(fd_, out.data(), static_cast<std::size_t>(bytes), kHeader) != bytes) out.clear();
}

}  // namespace coreio::replayer
