# Installs CoreioTesting.cmake (coreio_add_replay_test / coreio_add_script_test)
# and its driver script into the CMake package directory, where coreioConfig.cmake
# includes it. The module finds coreio-replay and coreio-mockvm relative to itself,
# so an installed tree can be moved.
set(_coreio_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/coreio)
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(COREIO_TESTING_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
else()
  file(RELATIVE_PATH COREIO_TESTING_BINDIR "/prefix/${_coreio_cmake_dir}" "/prefix/${CMAKE_INSTALL_BINDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/CoreioTesting.cmake.in ${PROJECT_BINARY_DIR}/CoreioTesting.cmake @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/CoreioTesting.cmake DESTINATION ${_coreio_cmake_dir})
install(PROGRAMS ${CMAKE_CURRENT_LIST_DIR}/coreio_run_test.sh DESTINATION ${_coreio_cmake_dir})
