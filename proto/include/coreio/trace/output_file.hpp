// OutputFile: an output that replaces its path only once it is complete, and
// never is one of the inputs. The tools that write a file from other input
// (coreio-trace export/cat/slice, coreio-replay --record, coreio-mockvm
// --record) open their output with it, after everything else (inputs,
// listening sockets) has succeeded. Live recordings that have no input and
// must be found under their name from the start (coreio-record, COREIO_TRACE)
// open the path with TraceWriter::open(path) instead.
//
//   OutputFile out;
//   if (auto e = out.open(path, {input}); !e.empty()) fail(e);   // refuses path == input
//   ... write to out.fd() or out.stream() ...
//   if (auto e = out.commit(); !e.empty()) fail(e);              // rename over path
//
// A regular (or new) path is written as a temporary file in the same directory
// and renamed over `path` by commit(); until then an existing file at `path` is
// untouched, and on failure (or without commit()) the temporary is removed.
// Anything else at `path` (/dev/stdout, /dev/full, a FIFO) is written directly.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace coreio::trace {

class OutputFile {
public:
    OutputFile() = default;
    /// Removes the temporary file unless commit() succeeded.
    ~OutputFile();
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    /// Checks `path` is none of `inputs` (same file, by device and inode) and
    /// creates the file to write. Returns an empty string or an error naming `path`.
    std::string open(const std::string& path, const std::vector<std::string>& inputs = {});
    /// The file to write (-1 before open()).
    int fd() const { return fd_; }
    /// A stdio stream on fd(), made on first use; commit() flushes and checks it.
    std::FILE* stream();
    /// The path given to open().
    const std::string& path() const { return path_; }

    /// Makes the file visible at path() now while it stays open for writing:
    /// for recordings that must be found under their name after a crash.
    /// Returns an empty string or the error.
    std::string publish();
    /// Flushes and closes the file and, if not yet done, renames it over
    /// path(). Returns an empty string, or the error (the temporary is removed).
    std::string commit();
    /// Closes the file and removes it unless published; path() keeps what it held.
    void abort();

private:
    std::string close_file();

    std::string path_;       // where the output goes
    std::string temp_;       // the temporary written until commit(); empty when writing path_ directly
    int fd_ = -1;
    std::FILE* stream_ = nullptr;
};

}  // namespace coreio::trace
