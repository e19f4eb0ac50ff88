# cmake -P script behind ctest_integration.out_of_tree_project (see CMakeLists.txt).
# Inputs: BUILD_DIR, PROJECT_DIR, SCRATCH, GENERATOR, C_COMPILER, EXTRA_FLAGS.

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  set(step_rc "${rc}" PARENT_SCOPE)
  set(step_out "${out}" PARENT_SCOPE)
  message(STATUS "${what}: exit ${rc}")
endfunction()

function(must_pass what)
  step("${what}" ${ARGN})
  if(NOT step_rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (exit ${step_rc}):\n${step_out}")
  endif()
  set(step_out "${step_out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${SCRATCH}")
set(prefix "${SCRATCH}/prefix")
set(build "${SCRATCH}/build")
must_pass("install to ${prefix}" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f lib/cmake/coreio/CoreioTesting.cmake lib/cmake/coreio/coreio_run_test.sh bin/coreio-replay
          bin/coreio-mockvm share/coreio/wireshark/coreio.lua)
  if(NOT EXISTS "${prefix}/${f}")
    file(GLOB_RECURSE found RELATIVE "${prefix}" "${prefix}/*")
    message(FATAL_ERROR "${f} not installed; the prefix holds: ${found}")
  endif()
endforeach()

# Green: the good device passes the replay and the script.
must_pass("configure the project" ${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${build}" -G "${GENERATOR}"
          -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER} "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}"
          "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}" -DREGDEV_BROKEN=OFF)
must_pass("build the project" ${CMAKE_COMMAND} --build "${build}")
must_pass("ctest with the good device" ${CMAKE_CTEST_COMMAND} --test-dir "${build}" --output-on-failure)
message(STATUS "${step_out}")
if(NOT step_out MATCHES "100% tests passed, 0 tests failed out of 3")
  message(FATAL_ERROR "expected 3 passing tests:\n${step_out}")
endif()

# Red: the broken device fails the replay and the script, each naming the
# first divergence; ignoring the broken register makes the replay pass again.
must_pass("reconfigure with the broken device" ${CMAKE_COMMAND} -DREGDEV_BROKEN=ON "${build}")
step("ctest with the broken device" ${CMAKE_CTEST_COMMAND} --test-dir "${build}" --output-on-failure)
message(STATUS "${step_out}")
if(step_rc EQUAL 0)
  message(FATAL_ERROR "ctest passed with the broken device")
endif()
foreach(expect
    "33% tests passed, 2 tests failed out of 3"
    "regdev.replay \\(Failed\\)"
    "regdev.script \\(Failed\\)"
    "coreio: first divergence: record 6: mismatch mmio.data: expected 0x000000a5, got 0x000000a6"
    "coreio: first divergence: FAIL [^\n]*regdev.script:5: readl 0xfef00010: expected 0x00000000000000a5, got 0x00000000000000a6"
    "coreio-trace diff [^\n]*regdev.ctrace [^\n]*coreio-tests/regdev.replay/replay.ctrace")
  if(NOT step_out MATCHES "${expect}")
    message(FATAL_ERROR "the failing run's output lacks \"${expect}\"")
  endif()
endforeach()
if(step_out MATCHES "regdev.replay_ignoring_scratch \\(Failed\\)")
  message(FATAL_ERROR "IGNORE 0:0x10 did not reach coreio-replay")
endif()

# The replay's own trace is left for coreio-trace diff, and it holds the wrong read.
set(replay_trace "${build}/coreio-tests/regdev.replay/replay.ctrace")
if(NOT EXISTS "${replay_trace}")
  message(FATAL_ERROR "${replay_trace} was not left behind")
endif()
must_pass("dump the replay's trace" "${prefix}/bin/coreio-trace" dump "${replay_trace}")
if(NOT step_out MATCHES "addr=0xfef00010 size=4 data=0x000000a6")
  message(FATAL_ERROR "the replay's trace lacks the wrong read:\n${step_out}")
endif()
message(STATUS "out-of-tree project: green with the good device, red with the broken one")
