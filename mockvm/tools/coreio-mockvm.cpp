// coreio-mockvm: see `coreio-mockvm --help` and tools/cli.hpp.
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) { return coreio::mockvm::cli::run(argc, argv, std::cout, std::cerr); }
