// The read loop every exporter shares: each record to a callback, a progress
// line on a terminal, and the reader's end turned into an error or a warning.
#pragma once

#include <cstdio>
#include <string>

#include "coreio/trace/reader.hpp"
#include "progress.hpp"

namespace coreio::recorder {

/// Hands every remaining record of `reader` to `on_record(const trace::Event&)`,
/// with a progress line named `label`. Returns an empty string at the end or at
/// a truncated tail (reported on stderr as a warning: the records before it are
/// good), and the reader's message on corruption.
template <class OnRecord>
std::string read_records(trace::TraceReader& reader, const char* label, OnRecord&& on_record) {
    Progress progress(label);
    trace::Event ev;
    trace::ReadStatus st;
    std::uint64_t n = 0;
    while ((st = reader.next(ev)) == trace::ReadStatus::Record) {
        progress.update(reader.position(), reader.size(), ++n);
        on_record(ev);
    }
    progress.done();
    if (st == trace::ReadStatus::Truncated) std::fprintf(stderr, "coreio-trace: warning: %s\n", reader.message().c_str());
    if (st == trace::ReadStatus::Corrupt) return reader.message();
    return {};
}

}  // namespace coreio::recorder
