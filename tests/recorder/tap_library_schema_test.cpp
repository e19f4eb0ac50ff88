// Why the trace codec is hand-written: libcoreio dlopen()s libcoreio_trace.so
// for COREIO_TRACE into any device program, and that program may link the
// protoc-generated trace classes itself. This process links them
// (coreio_trace_proto), so:
//  - the tap library loads, records and its file parses with the generated
//    classes here (it carries no generated code of its own);
//  - a library that does carry its own copy of the generated classes aborts the
//    process when loaded (the descriptor is registered twice), which is the
//    reason the tap library must not use them.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "../trace/test_util.hpp"
#include "coreio/client.hpp"
#include "coreio_trace.pb.h"

using namespace coreio;
using namespace trace_test;

TEST(TapLibraryWithGeneratedClasses, LoadsRecordsAndParses) {
    // The generated descriptors are registered in this process before the load.
    ASSERT_NE(coreio::trace::TraceFile::descriptor(), nullptr);
    void* lib = ::dlopen(COREIO_TAP_LIB, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << ::dlerror();
    using Open = FrameTap* (*)(const char*, const char*);
    using Close = void (*)(FrameTap*);
    auto open = reinterpret_cast<Open>(::dlsym(lib, "coreio_trace_tap_open"));
    auto close = reinterpret_cast<Close>(::dlsym(lib, "coreio_trace_tap_close"));
    ASSERT_NE(open, nullptr);
    ASSERT_NE(close, nullptr);
    const std::string path = temp_path("generated");
    FrameTap* tap = open(path.c_str(), "generated-classes-test");
    ASSERT_NE(tap, nullptr);
    tap->on_connection(Channel::Main, true);
    tap->on_frame(Channel::Main, Direction::Sent, Frame::claim(2).bytes());
    Frame req = Frame::mmio_request(Op::Read, 2, 0x2000, 4, 0, 9);
    tap->on_frame(Channel::Main, Direction::Received, req.bytes());
    for (int i = 0; i < 4; ++i) req.payload()[i] = std::byte{static_cast<unsigned char>(i == 0 ? 0x5a : 0)};
    tap->on_frame(Channel::Main, Direction::Sent, req.bytes());
    close(tap);
    ::dlclose(lib);

    const auto bytes = file_bytes(path);
    coreio::trace::TraceFile file;
    ASSERT_TRUE(file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())));
    EXPECT_EQ(file.header().tool(), "generated-classes-test");
    ASSERT_EQ(file.record_size(), 3);
    EXPECT_EQ(file.record(1).claim().rid(), 2u);
    EXPECT_EQ(file.record(2).mmio().data(), 0x5au);
    EXPECT_GE(file.batch_size(), 2);  // the header's checksum and the records'
}

TEST(TapLibraryWithGeneratedClassesDeathTest, ASecondCopyOfTheGeneratedClassesAborts) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    ASSERT_NE(coreio::trace::TraceFile::descriptor(), nullptr);
    // protobuf's fatal check aborts, or throws where the static initializer
    // lets an exception through (it then ends the process just the same).
    EXPECT_DEATH(
        {
            try {
                void* lib = ::dlopen(COREIO_GENERATED_PLUGIN, RTLD_NOW | RTLD_LOCAL);
                if (lib == nullptr) std::fprintf(stderr, "dlopen failed: %s\n", ::dlerror());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "%s\n", e.what());
                std::abort();
            }
            std::exit(0);  // loaded without complaint: the reason would be false
        },
        "File already exists in database: coreio_trace.proto");
}
