// Reproducer traces: a finding's scenario with the labels that say what it
// found and which assertions were on, and those assertions read back.
#include "coreio/replayer/fuzz.hpp"

#include "coreio/replayer/rules.hpp"

namespace coreio::replayer {

std::string write_reproducer(const std::string& path, const Finding& f, std::uint64_t seed, const Assertions& a) {
    Scenario sc = f.scenario;
    sc.labels.clear();
    sc.labels.emplace_back(kLabelReproducer, "1");
    sc.labels.emplace_back(kLabelFinding, f.signature);
    sc.labels.emplace_back("coreio.finding.message", f.divergence.describe());
    sc.labels.emplace_back("coreio.fuzz.seed", std::to_string(seed));
    sc.labels.emplace_back("coreio.fuzz.exec", std::to_string(f.exec));
    sc.labels.emplace_back("coreio.fuzz.original-steps", std::to_string(f.original_steps));
    sc.labels.emplace_back("coreio.assert.irq-low-after-reset", a.irq_low_after_reset ? "1" : "0");
    sc.labels.emplace_back("coreio.assert.no-dma-into-mmio", a.no_dma_into_mmio ? "1" : "0");
    sc.labels.emplace_back("coreio.assert.irq-stuck-steps", std::to_string(a.irq_stuck_steps));
    for (std::size_t i = 0; i < a.reads.size(); ++i)
        sc.labels.emplace_back(kLabelExpectRead + std::to_string(i), a.reads[i].text);
    return write_requests(path, sc);
}

Assertions reproducer_assertions(const Scenario& sc, Assertions a) {
    for (const auto& [k, v] : sc.labels) {
        if (k == "coreio.assert.irq-low-after-reset") a.irq_low_after_reset = v == "1";
        else if (k == "coreio.assert.no-dma-into-mmio") a.no_dma_into_mmio = v == "1";
        else if (k == "coreio.assert.irq-stuck-steps") {
            std::uint64_t n = 0;
            if (parse_u64(v, n)) a.irq_stuck_steps = static_cast<unsigned>(n);
        } else if (k.rfind(kLabelExpectRead, 0) == 0) {
            ReadExpectation x;
            if (ReadExpectation::parse(v, x).empty()) a.reads.push_back(x);
        }
    }
    return a;
}

}  // namespace coreio::replayer
