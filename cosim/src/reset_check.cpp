#include "coreio/cosim/reset_check.hpp"

#include <cstdint>
#include <memory>
#include <optional>

#include "coreio/cosim/sim.hpp"

namespace coreio::cosim {

namespace {

/// Whether a fresh model's slave answers a read at 0 (an error response counts).
/// nullopt when the model has no slave port the bridge can drive.
std::optional<bool> answers(const ModelFactory& factory, const SlaveOptions& options, unsigned reset_cycles,
                            bool inverted) {
    std::unique_ptr<Model> model = factory(std::nullopt);
    if (!model) return std::nullopt;
    if (inverted) model->invert_reset_polarity();
    Sim sim(*model);
    auto bus = make_slave_adapter(sim, model->ports(), options);
    if (!bus) return std::nullopt;
    sim.reset(reset_cycles);
    std::uint64_t data = 0;
    return bus->read(0, data, prot_from_flags(0)) != BusStatus::Timeout;
}

}  // namespace

std::string check_reset_polarity(const ModelFactory& factory, const SlaveOptions& options, unsigned reset_cycles) {
    const auto configured = answers(factory, options, reset_cycles, false);
    if (!configured || *configured) return "";
    const auto inverted = answers(factory, options, reset_cycles, true);
    if (!inverted || !*inverted) return "";
    std::unique_ptr<Model> model = factory(std::nullopt);
    const Ports& p = model->ports();
    const std::string port = p.reset_name[0] ? p.reset_name : "the reset port";
    const char* configured_as = p.reset_active_low ? "ACTIVE_LOW" : "ACTIVE_HIGH";
    const char* fix = p.reset_active_low ? "ACTIVE_HIGH" : "ACTIVE_LOW";
    return "the design never answers with reset released as configured (RESET " + port + " " + configured_as +
           "), but does with the opposite level: it sits in reset. Its reset is probably active-" +
           (p.reset_active_low ? "high" : "low") + ": set RESET " + port + " " + fix + " in coreio_add_cosim()";
}

}  // namespace coreio::cosim
