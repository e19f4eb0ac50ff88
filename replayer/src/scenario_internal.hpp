// Conversions between frames and trace events shared by the scenario loader,
// the replay recorder and the reproducer writer.
#pragma once

#include <string>

#include "coreio/frame.hpp"
#include "coreio/replayer/scenario.hpp"
#include "coreio/trace/event.hpp"
#include "coreio/trace/frame_event.hpp"

namespace coreio::replayer {

using trace::request_from_event;
/// An MMIO event for request `req` and its reply (null: none seen / posted).
trace::Event event_from_access(const Frame& req, const Frame* reply);
/// Lower-case hex without 0x.
std::string hex(std::uint64_t v);
/// The header of a trace written from `scenario` (fills as labels).
trace::TraceHeader reproducer_header(const Scenario& scenario, const std::string& tool);

}  // namespace coreio::replayer
