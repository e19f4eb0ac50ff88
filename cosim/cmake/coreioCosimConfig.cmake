# find_package(coreio COMPONENTS cosim): imports coreio::cosim (the bridge
# library) and defines coreio_add_cosim() (see CoreioCosim.cmake).
include(CMakeFindDependencyMacro)
find_dependency(verilator HINTS $ENV{VERILATOR_ROOT} /usr/share/verilator)
find_dependency(ZLIB)
find_dependency(Threads)
include("${CMAKE_CURRENT_LIST_DIR}/coreioCosimTargets.cmake")
include("${CMAKE_CURRENT_LIST_DIR}/CoreioCosim.cmake")
