// coreio-example-dmacopy [HOST:PORT] [--rid N] [--seeded-bug]: the DMA copy engine over TCP.
#include "device_main.hpp"
#include "dma_copy.hpp"

int main(int argc, char** argv) {
    return coreio::examples::device_main(argc, argv, "coreio-example-dmacopy", [](unsigned rid, bool bug) {
        return coreio::examples::dma_copy_factory({rid, bug});
    });
}
