// coreio-example-timer [HOST:PORT] [--rid N] [--seeded-bug]: the timer register file over TCP.
#include "device_main.hpp"
#include "timer_regfile.hpp"

int main(int argc, char** argv) {
    return coreio::examples::device_main(argc, argv, "coreio-example-timer", [](unsigned rid, bool bug) {
        return coreio::examples::timer_regfile_factory({rid, bug});
    });
}
