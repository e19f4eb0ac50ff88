# Runs a libFuzzer target on one input that must show its seeded bug: passes
# when the target reports the device finding and dies of it.
# cmake -DFUZZER=<binary> -DINPUT=<file> -DWORK=<dir> -P expect_crash.cmake
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${FUZZER} -artifact_prefix=${WORK}/ ${INPUT}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(FIND "${out}" "coreio device fuzz finding: " at)
if(rc EQUAL 0 OR at LESS 0)
  message(FATAL_ERROR "expected the device finding and a crash (exit ${rc}):\n${out}")
endif()
file(REMOVE_RECURSE ${WORK})
