// Drives the user's model through the installed bridge: ID, a write read back,
// and an access beyond its 4-bit address answered as a bus error.
#include <cstdint>
#include <cstdio>

#include "coreio/cosim/bridge.hpp"
#include "user-regs_model.hpp"

int main() {
    auto model = coreio::cosim::models::make_user_regs();
    coreio::cosim::BridgeOptions o;
    o.addr_bits = coreio::cosim::models::user_regs_defaults.addr_bits;
    o.range_size = 0x1000;
    coreio::cosim::Bridge bridge(*model, o, {}, nullptr);
    std::uint32_t id = 0, v = 0x12345678, back = 0;
    if (bridge.read(0, 4, &id, 0) != 0 || id != 0x55534552) return std::printf("id: %x\n", id), 1;
    if (bridge.write(8, 4, &v, 0) != 0 || bridge.read(8, 4, &back, 0) != 0 || back != v)
        return std::printf("scratch: %x\n", back), 1;
    if (o.addr_bits != 4 || bridge.read(0x10, 4, &back, 0) != 1) return std::printf("address width\n"), 1;
    std::printf("user_check: ok\n");
    return 0;
}
