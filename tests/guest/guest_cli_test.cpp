// coreio-mockvm --guest through the command line as a library.
#include <gtest/gtest.h>

#include <sstream>

#include "cli.hpp"
#include "guest_test_support.hpp"

namespace coreio::mockvm::guest {
namespace {

int run_cli(std::vector<const char*> args, std::string& out, std::string& err) {
    args.insert(args.begin(), "coreio-mockvm");
    std::ostringstream o, e;
    const int code = cli::run(static_cast<int>(args.size()), args.data(), o, e);
    out = o.str();
    err = e.str();
    return code;
}

TEST(GuestCli, BadFirmwareIsAUsageErrorNamingTheFile) {
    const std::string path = testing::write_temp("not-elf.bin", std::vector<std::byte>(100, std::byte{0x41}));
    std::string out, err;
    EXPECT_EQ(run_cli({"--port", "0", "--guest", path.c_str()}, out, err), 2);
    EXPECT_EQ(err, "coreio-mockvm: --guest: " + path + ": not an ELF file\n");
    EXPECT_EQ(out, "") << "a bad file is rejected before the VM says it listens";
}

TEST(GuestCli, GuestExcludesScriptAndServe) {
    std::string out, err;
    EXPECT_EQ(run_cli({"--guest", "fw.elf", "--serve"}, out, err), 2);
    EXPECT_NE(err.find("excludes"), std::string::npos) << err;
}

TEST(GuestCli, GuestWaitsForRange0LikeAScript) {
    // mov x20, #0x9010000; mov w0, #3; str w0, [x20]; b .
    const std::string path = testing::write_temp(
        "exit3.elf", testing::make_elf({0xd2a12034, 0x52800060, 0xb9000280, 0x14000000}));
    std::string out, err;
    // Range 0 must be claimed before the guest starts; with no device in time: exit 1.
    EXPECT_EQ(run_cli({"--port", "0", "--wait-ms", "50", "--guest", path.c_str()}, out, err), 1);
    EXPECT_NE(err.find("no client claimed range 0"), std::string::npos) << err;
}

}  // namespace
}  // namespace coreio::mockvm::guest
