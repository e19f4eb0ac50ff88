// coreio-trace: look at, compare, convert and cut CoreIO trace files.
#include "coreio/recorder/trace_tool.hpp"

int main(int argc, char** argv) { return coreio::recorder::trace_tool_main(argc, argv); }
