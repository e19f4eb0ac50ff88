// The "main job" demo: write a known pattern to range 0 at widths 1, 2, 4 and
// 8, read it back, and print a table. It passes against any device that stores
// what is written (e.g. examples/regfile).
#pragma once

#include <cstdint>
#include <iosfwd>

#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm {

/// The demo's value for index i at `width` bytes: built cumulatively as
/// v = i; v |= (v+1)<<8; v |= (v+0x202)<<16; v |= (v+0x4040404)<<32, then
/// truncated to the width (for i = 0: 0x0706050403020100).
std::uint64_t demo_testdata(unsigned i, unsigned width);

/// For each width W in 1, 2, 4, 8: writes demo_testdata(i, W) at base + i*W for
/// i = 0..15 (posted writes), then reads all 16 back. Prints one table row per
/// access (width, offset, written, read back, ok) and a summary line. Returns
/// true only if every value read back matches. Range 0 must be at least 128
/// bytes long.
bool run_demo(Vm& vm, std::ostream& out);

}  // namespace coreio::mockvm
