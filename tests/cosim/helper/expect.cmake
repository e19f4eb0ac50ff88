# cmake -DCASE=<case> -DWORK=<dir> -DRTL=<dir> -DHELPER=<CoreioCosim.cmake> -DGEN=<generator>
#       -DEXPECT=<regex> -DFAIL=ON|OFF [-DLINT=ON] -P expect.cmake
# Configures helper/CMakeLists.txt for CASE (and with LINT builds the case's
# lint target), then checks that it failed or succeeded as FAIL says and
# that the output matches EXPECT.
file(REMOVE_RECURSE ${WORK})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR} -B ${WORK} -G ${GEN} -DCASE=${CASE} -DRTL=${RTL}
          -DCOREIO_COSIM_CMAKE=${HELPER}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(LINT AND rc EQUAL 0)
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK} --target cosim_t_lint
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out2 ERROR_VARIABLE out2)
  string(APPEND out "${out2}")
endif()
if(FAIL AND rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: expected a failure, but it succeeded:\n${out}")
elseif(NOT FAIL AND NOT rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: expected success, but it failed:\n${out}")
endif()
string(REGEX REPLACE "[ \n\t]+" " " flat "${out}")
if(NOT flat MATCHES "${EXPECT}")
  message(FATAL_ERROR "${CASE}: the output does not match '${EXPECT}':\n${out}")
endif()
message(STATUS "${CASE}: ok")
file(REMOVE_RECURSE ${WORK})
