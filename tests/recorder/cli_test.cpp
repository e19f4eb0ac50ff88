// coreio-trace and coreio-record run as programs: every subcommand, every error path.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "../trace/golden_events.hpp"
#include "../trace/test_util.hpp"
#include "coreio/recorder/trace_tool.hpp"
#include "coreio/trace/writer.hpp"

using namespace trace_test;

namespace {

struct Outcome {
    int code = -1;
    std::string out, err;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Runs `bin args` through the shell, capturing both streams (bounded by `timeout`).
Outcome run(const std::string& bin, const std::string& args) {
    const std::string out = temp_path("out"), err = temp_path("err");
    const std::string cmd = "timeout 60 " + bin + " " + args + " >" + out + " 2>" + err;
    const int st = std::system(cmd.c_str());
    Outcome r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}
Outcome trace_tool(const std::string& args) { return run(COREIO_TRACE_BIN, args); }

const std::string kGolden = std::string(COREIO_GOLDEN_DIR) + "/v1-basic.ctrace";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A copy of the golden file with one record changed (the read's data).
std::string changed_copy() {
    auto events = golden::events_v1();
    events[3].data[0] = std::byte{0x2b};
    const std::string path = temp_path("changed");
    coreio::trace::TraceWriter w;
    EXPECT_EQ(w.open(path, golden::header_v1()), "");
    for (const auto& e : events) w.append(e);
    EXPECT_EQ(w.close(), "");
    return path;
}

std::string truncated_copy(std::size_t drop) {
    auto b = file_bytes(kGolden);
    b.resize(b.size() - drop);
    const std::string path = temp_path("cut");
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    return path;
}

}  // namespace

TEST(TraceCli, DumpPrintsOneLinePerRecord) {
    Outcome r = trace_tool("dump " + kGolden);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "# coreio trace (schema 1) by golden-v1")) << r.out;
    EXPECT_TRUE(contains(r.out, "MMIO READ    rid=0 addr=0x10000004 size=4 data=0x0000002a")) << r.out;
    EXPECT_TRUE(contains(r.out, "DMA  WRITEA  mid=1 sid=2 addr=0x80000010")) << r.out;
    EXPECT_TRUE(contains(r.out, "cause=#7")) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 21);
}

TEST(TraceCli, DumpJsonIsOneObjectPerLine) {
    Outcome r = trace_tool("dump --json " + kGolden);
    EXPECT_EQ(r.code, 0) << r.err;
    std::istringstream in(r.out);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        EXPECT_EQ(line.front(), '{');
        EXPECT_EQ(line.back(), '}');
        ++n;
    }
    EXPECT_EQ(n, 21);
    EXPECT_TRUE(contains(r.out, R"({"i":3,"t_ns":2500,"client":0,"channel":"main","dir":"to_client","kind":"mmio","op":"READ","rid":0,"addr":"0x10000004","size":4,"data":"2a000000")"))
        << r.out;
}

TEST(TraceCli, StatsCounts) {
    Outcome r = trace_tool("stats " + kGolden);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "20 records")) << r.out;
    EXPECT_TRUE(contains(r.out, "mmio 8 dma 2 irq 1 claim 2")) << r.out;
    EXPECT_TRUE(contains(r.out, "8 transactions")) << r.out;
    EXPECT_TRUE(contains(r.out, "READ 4 (39 B)")) << r.out;
    EXPECT_TRUE(contains(r.out, "duration   0.000020000 s, 2 client(s)")) << r.out;
}

TEST(TraceCli, DiffSameDifferAndErrors) {
    Outcome same = trace_tool("diff " + kGolden + " " + kGolden);
    EXPECT_EQ(same.code, 0) << same.err;
    EXPECT_TRUE(contains(same.out, "same: 20 records"));
    Outcome differ = trace_tool("diff " + kGolden + " " + changed_copy());
    EXPECT_EQ(differ.code, 1) << differ.err;
    EXPECT_TRUE(contains(differ.out, "differ at record #3: data: A=0x0000002a B=0x0000002b")) << differ.out;
    const std::string shorter = truncated_copy(0);
    Outcome cut = trace_tool("slice " + kGolden + " -o " + shorter + " --last 9");
    EXPECT_EQ(cut.code, 0) << cut.err;
    Outcome longer = trace_tool("diff " + shorter + " " + kGolden);
    EXPECT_EQ(longer.code, 1);
    EXPECT_TRUE(contains(longer.out, "differ at record #10: A ends after 10 records")) << longer.out;
    Outcome missing = trace_tool("diff " + kGolden + " /nonexistent.ctrace");
    EXPECT_EQ(missing.code, 2);
    EXPECT_TRUE(contains(missing.err, "cannot open /nonexistent.ctrace")) << missing.err;
    EXPECT_EQ(trace_tool("diff " + kGolden).code, 2);
}

TEST(TraceCli, ExportVcdAndPerfetto) {
    const std::string vcd = temp_path("vcd"), json = temp_path("json");
    Outcome a = trace_tool("export " + kGolden + " --vcd " + vcd);
    EXPECT_EQ(a.code, 0) << a.err;
    const std::string v = slurp(vcd);
    EXPECT_TRUE(contains(v, "$timescale 1ns $end"));
    EXPECT_TRUE(contains(v, "$enddefinitions $end"));
    EXPECT_TRUE(contains(v, "irq5 $end"));
    EXPECT_TRUE(contains(v, "#2500\n"));
    Outcome b = trace_tool("export " + kGolden + " --perfetto " + json);
    EXPECT_EQ(b.code, 0) << b.err;
    const std::string j = slurp(json);
    EXPECT_TRUE(contains(j, "\"traceEvents\":["));
    EXPECT_TRUE(contains(j, R"("name":"READ 0x10000004","cat":"mmio","ph":"X","ts":2.500,"dur":1.234)")) << j;
    EXPECT_EQ(j.substr(j.size() - 4), "\n]}\n");
    EXPECT_EQ(trace_tool("export " + kGolden).code, 2);
    EXPECT_EQ(trace_tool("export " + kGolden + " --vcd a --perfetto b").code, 2);
    Outcome bad_out = trace_tool("export " + kGolden + " --vcd /nonexistent/x.vcd");
    EXPECT_EQ(bad_out.code, 2);
    EXPECT_TRUE(contains(bad_out.err, "cannot create /nonexistent/x.vcd")) << bad_out.err;
}

TEST(TraceCli, CatAndSlice) {
    const std::string both = temp_path("cat");
    Outcome c = trace_tool("cat " + kGolden + " " + kGolden + " -o " + both);
    EXPECT_EQ(c.code, 0) << c.err;
    ReadAll r = read_file(both);
    ASSERT_EQ(r.events.size(), 40u);
    EXPECT_GT(r.events[20].ev.time_ns, r.events[19].ev.time_ns);  // the second follows the first
    EXPECT_EQ(r.events[28].ev.cause, 27u);                         // DMA cause moved with it
    const std::string part = temp_path("slice");
    Outcome s = trace_tool("slice " + kGolden + " -o " + part + " --from 2.5us --to 9000");
    EXPECT_EQ(s.code, 0) << s.err;
    r = read_file(part);
    ASSERT_EQ(r.events.size(), 7u);  // records 3..9
    EXPECT_EQ(r.events.front().ev.time_ns, 2500u);
    EXPECT_EQ(r.events[5].ev.cause, 4u);
    s = trace_tool("slice " + kGolden + " -o " + part + " --first 8 --last 8");
    EXPECT_EQ(s.code, 0) << s.err;
    r = read_file(part);
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].ev.cause, coreio::trace::kNoCause);  // its MMIO was cut off
}

TEST(TraceCli, ErrorPaths) {
    Outcome none = trace_tool("");
    EXPECT_EQ(none.code, 2);
    EXPECT_TRUE(contains(none.err, "subcommand")) << none.err;
    EXPECT_EQ(trace_tool("frobnicate x").code, 2);
    EXPECT_EQ(trace_tool("dump").code, 2);
    EXPECT_EQ(trace_tool("--help").code, 0);
    Outcome junk = trace_tool("dump " + std::string(COREIO_TRACE_BIN));
    EXPECT_EQ(junk.code, 2);
    EXPECT_TRUE(contains(junk.err, "not a coreio trace")) << junk.err;
    Outcome dir = trace_tool("stats /");
    EXPECT_EQ(dir.code, 2);
    const std::string cut = truncated_copy(3);
    Outcome t = trace_tool("dump " + cut);
    EXPECT_EQ(t.code, 0);  // a cut-off tail is a warning: the records before it are good
    EXPECT_TRUE(contains(t.err, "warning:")) << t.err;
    EXPECT_TRUE(contains(t.err, "file ends inside record #19")) << t.err;
    auto b = file_bytes(kGolden);
    b[b.size() - 5] = std::byte{0xff};  // inside the last record
    const std::string bad = temp_path("bad");
    std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    Outcome c = trace_tool("stats " + bad);
    EXPECT_EQ(c.code, 2);
    EXPECT_TRUE(contains(c.err, "byte offset")) << c.err;
    EXPECT_EQ(trace_tool("slice " + kGolden + " -o " + temp_path("s") + " --from 1xs").code, 2);
    EXPECT_EQ(trace_tool("slice " + kGolden + " -o " + temp_path("s") + " --from 10 --to 5").code, 2);
    EXPECT_EQ(trace_tool("slice " + kGolden + " -o " + temp_path("s") + " --first 5 --last 1").code, 2);
    Outcome same = trace_tool("slice " + kGolden + " -o " + kGolden);
    EXPECT_EQ(same.code, 2);
    EXPECT_TRUE(contains(same.err, "is also an input")) << same.err;
    EXPECT_EQ(trace_tool("cat -o " + temp_path("c")).code, 2);
}

TEST(TraceCli, ParseTime) {
    std::uint64_t ns = 0;
    EXPECT_TRUE(coreio::recorder::parse_time_ns("1500", ns));
    EXPECT_EQ(ns, 1500u);
    EXPECT_TRUE(coreio::recorder::parse_time_ns("1.5us", ns));
    EXPECT_EQ(ns, 1500u);
    EXPECT_TRUE(coreio::recorder::parse_time_ns("2ms", ns));
    EXPECT_EQ(ns, 2'000'000u);
    EXPECT_TRUE(coreio::recorder::parse_time_ns("3s", ns));
    EXPECT_EQ(ns, 3'000'000'000u);
    for (const char* bad : {"", "-1", "1.2.3", "5m", "us", ".", "1e3"}) EXPECT_FALSE(coreio::recorder::parse_time_ns(bad, ns)) << bad;
}

TEST(RecordCli, ErrorPaths) {
    Outcome none = run(COREIO_RECORD_BIN, "");
    EXPECT_EQ(none.code, 2);
    EXPECT_TRUE(contains(none.err, "--listen is required")) << none.err;
    Outcome bad = run(COREIO_RECORD_BIN, "--listen 127.0.0.1:0 --target 127.0.0.1:x -o " + temp_path("r"));
    EXPECT_EQ(bad.code, 2);
    EXPECT_TRUE(contains(bad.err, "bad target")) << bad.err;
    Outcome label = run(COREIO_RECORD_BIN, "--listen 127.0.0.1:0 --target 127.0.0.1 -o " + temp_path("r") + " --label x");
    EXPECT_EQ(label.code, 2);
    EXPECT_TRUE(contains(label.err, "not key=value")) << label.err;
    Outcome out = run(COREIO_RECORD_BIN, "--listen 127.0.0.1:0 --target 127.0.0.1 -o /nonexistent/r.ctrace");
    EXPECT_EQ(out.code, 2);
    EXPECT_TRUE(contains(out.err, "cannot create")) << out.err;
    EXPECT_EQ(run(COREIO_RECORD_BIN, "--help").code, 0);
}
