// The start-up check for the commonest wiring mistake: a reset of the wrong
// polarity holds the design in reset for good, and the only symptom would be
// every access timing out.
#pragma once

#include <string>

#include "coreio/cosim/model.hpp"
#include "coreio/cosim/slave.hpp"

namespace coreio::cosim {

/// Reads offset 0 of a fresh model from `factory` after reset as configured.
/// If it does not answer within `options.timeout_cycles` but a second fresh
/// model with the reset polarity inverted does, returns a message naming the
/// reset port and the fix; otherwise "" (the live model is not touched).
std::string check_reset_polarity(const ModelFactory& factory, const SlaveOptions& options, unsigned reset_cycles);

}  // namespace coreio::cosim
