#include "models.hpp"

#include "dma_copy.hpp"
#include "timer_regfile.hpp"

namespace coreio::replayer::tools {

namespace {
constexpr std::uint64_t kBase = 0x10000000;
constexpr std::uint64_t kMem = 0x80000000;
}  // namespace

std::vector<std::string> model_names() { return {"timer", "dmacopy"}; }

bool find_model(const std::string& name, bool seeded_bug, Model& out) {
    out = Model{};
    out.config.ranges = {{0, kBase, 0x1000, name}};
    out.config.memory = {{0, 0, kMem, 0x10000, "ram"}};
    if (name == "timer") {
        out.factory = examples::timer_regfile_factory({0, seeded_bug});
        for (std::uint64_t off = 0; off < examples::TimerRegfile::kSize; off += 4) out.config.registers.push_back({0, off, 4});
        return true;
    }
    if (name == "dmacopy") {
        using examples::DmaCopy;
        out.factory = examples::dma_copy_factory({0, seeded_bug});
        for (std::uint64_t off : {DmaCopy::kId, DmaCopy::kLen, DmaCopy::kCtrl, DmaCopy::kStatus, DmaCopy::kCopied,
                                  DmaCopy::kCount})
            out.config.registers.push_back({0, off, 4});
        out.config.registers.push_back({0, DmaCopy::kSrc, 8});
        out.config.registers.push_back({0, DmaCopy::kDst, 8});
        return true;
    }
    return false;
}

}  // namespace coreio::replayer::tools
