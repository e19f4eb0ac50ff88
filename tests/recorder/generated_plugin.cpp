// A shared library holding its own copy of the protoc-generated trace classes,
// as libcoreio_trace.so would if it used them: loading it into a process that
// links them too registers coreio_trace.proto a second time.
#include "coreio_trace.pb.h"

extern "C" __attribute__((visibility("default"))) const void* coreio_test_generated_descriptor() {
    return coreio::trace::TraceFile::descriptor();
}
