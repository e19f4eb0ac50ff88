# coreio_add_cosim(): a runnable co-simulated device from RTL in a few lines,
# on top of Verilator's own verilate().
#
#   coreio_add_cosim(<name>
#       TOP <module> SOURCES <rtl files...>
#       BUS apb|axi-lite|wishbone|none       # slave port that answers MMIO
#       [MASTER axi4]                        # the model's AXI4 master does DMA
#       [CLOCK <port>] [RESET <port>] [RESET_ACTIVE low|high]
#       [IRQS <port>[:<width>] ...]          # interrupt outputs, lines 0.. in order (default: irq)
#       [SIGNALS <KEY>=<port> ...]           # rename bus ports, e.g. PADDR=my_addr, M_AWVALID=dma_awvalid
#       [ADDR_WIDTH <bits>]                  # slave address width (default 12)
#       [WB_MODE classic|pipelined]          # Wishbone default mode (overridable at run time)
#       [TRACE fst vcd]                      # waveform builds (each one a verilation; default: both)
#       [INCLUDE_DIRS <dirs>] [VERILATOR_ARGS <args>]
#       [EXECUTABLE])                        # also build coreio-cosim-<name>
#
# Makes the static library target cosim_<name> with header <name>_model.hpp
# declaring coreio::cosim::models::make_<name>() (dashes become underscores).
# Default port names: APB PSEL PENABLE PWRITE PADDR PWDATA PSTRB PPROT PRDATA
# PREADY PSLVERR, clock PCLK, reset PRESETn; AXI4-Lite s_axi_<channel signal>
# (s_axi_awvalid ...), clock aclk, reset aresetn; Wishbone wb_cyc_i wb_stb_i
# wb_we_i wb_adr_i wb_dat_i wb_sel_i wb_dat_o wb_ack_o wb_err_o wb_stall_o,
# clock clk_i, reset rst_i (active high); AXI4 master m_axi_<signal>
# (keys M_AWVALID ...). Optional ports that the model lacks are left unbound.

find_package(verilator REQUIRED HINTS $ENV{VERILATOR_ROOT} /usr/share/verilator)
find_package(ZLIB REQUIRED)

# Cached so that coreio_add_cosim() works from any directory.
set(_COREIO_COSIM_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "coreio cosim templates")

# The Verilator runtime, compiled once and shared by every model.
if(NOT TARGET coreio_cosim_verilated)
  add_library(coreio_cosim_verilated STATIC
    ${VERILATOR_ROOT}/include/verilated.cpp
    ${VERILATOR_ROOT}/include/verilated_fst_c.cpp
    ${VERILATOR_ROOT}/include/verilated_vcd_c.cpp
    ${VERILATOR_ROOT}/include/verilated_threads.cpp)
  target_include_directories(coreio_cosim_verilated SYSTEM PUBLIC
    ${VERILATOR_ROOT}/include ${VERILATOR_ROOT}/include/vltstd)
  target_compile_definitions(coreio_cosim_verilated PUBLIC VM_TRACE=1 VM_COVERAGE=0 VM_SC=0)
  # Third-party code: no project warnings, and no UBSan (fstapi.c stores to
  # unaligned addresses on purpose, which -fsanitize=undefined would abort on).
  target_compile_options(coreio_cosim_verilated PRIVATE -g0 -O2 -w -fno-sanitize=all)
  target_link_libraries(coreio_cosim_verilated PUBLIC ZLIB::ZLIB Threads::Threads)
endif()

# Sets _COREIO_COSIM_KEYS_<BUS>: entries KEY|member|default port|required (1/0).
macro(_coreio_cosim_keys)
set(_COREIO_COSIM_KEYS_APB
  "PSEL|apb.psel|PSEL|1" "PENABLE|apb.penable|PENABLE|1" "PWRITE|apb.pwrite|PWRITE|1"
  "PADDR|apb.paddr|PADDR|1" "PWDATA|apb.pwdata|PWDATA|1" "PSTRB|apb.pstrb|PSTRB|0"
  "PPROT|apb.pprot|PPROT|0" "PRDATA|apb.prdata|PRDATA|1" "PREADY|apb.pready|PREADY|0"
  "PSLVERR|apb.pslverr|PSLVERR|0")
set(_COREIO_COSIM_KEYS_AXI_LITE)
foreach(k AWVALID AWREADY AWADDR WVALID WREADY WDATA WSTRB BVALID BREADY ARVALID ARREADY ARADDR RVALID RREADY RDATA)
  string(TOLOWER ${k} l)
  list(APPEND _COREIO_COSIM_KEYS_AXI_LITE "${k}|axil.${l}|s_axi_${l}|1")
endforeach()
foreach(k AWPROT ARPROT BRESP RRESP)
  string(TOLOWER ${k} l)
  list(APPEND _COREIO_COSIM_KEYS_AXI_LITE "${k}|axil.${l}|s_axi_${l}|0")
endforeach()
set(_COREIO_COSIM_KEYS_WISHBONE
  "CYC|wb.cyc|wb_cyc_i|1" "STB|wb.stb|wb_stb_i|1" "WE|wb.we|wb_we_i|1" "ADR|wb.adr|wb_adr_i|1"
  "DAT_W|wb.dat_w|wb_dat_i|1" "SEL|wb.sel|wb_sel_i|0" "DAT_R|wb.dat_r|wb_dat_o|1"
  "ACK|wb.ack|wb_ack_o|1" "ERR|wb.err|wb_err_o|0" "STALL|wb.stall|wb_stall_o|0")
set(_COREIO_COSIM_KEYS_AXI4)
foreach(k AWVALID AWREADY AWADDR AWLEN AWSIZE WVALID WREADY WDATA WSTRB WLAST BVALID BREADY
          ARVALID ARREADY ARADDR ARLEN ARSIZE RVALID RREADY RDATA RLAST)
  string(TOLOWER ${k} l)
  list(APPEND _COREIO_COSIM_KEYS_AXI4 "M_${k}|axi.${l}|m_axi_${l}|1")
endforeach()
foreach(k AWBURST AWID BRESP BID ARBURST ARID RRESP RID)
  string(TOLOWER ${k} l)
  list(APPEND _COREIO_COSIM_KEYS_AXI4 "M_${k}|axi.${l}|m_axi_${l}|0")
endforeach()
endmacro()

function(coreio_add_cosim name)
  _coreio_cosim_keys()
  cmake_parse_arguments(C "EXECUTABLE" "TOP;BUS;MASTER;CLOCK;RESET;RESET_ACTIVE;ADDR_WIDTH;WB_MODE"
                        "SOURCES;IRQS;SIGNALS;TRACE;INCLUDE_DIRS;VERILATOR_ARGS" ${ARGN})
  if(NOT C_TOP OR NOT C_SOURCES)
    message(FATAL_ERROR "coreio_add_cosim(${name}): TOP and SOURCES are required")
  endif()
  if(NOT C_BUS)
    set(C_BUS apb)
  endif()
  string(MAKE_C_IDENTIFIER "${name}" id)
  set(target cosim_${name})
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/cosim_${name})
  file(MAKE_DIRECTORY ${gen})

  # Per-bus keys and clock/reset defaults.
  if(C_BUS STREQUAL "apb")
    set(keys ${_COREIO_COSIM_KEYS_APB})
    set(bus_enum Apb)
    set(def_clock PCLK)
    set(def_reset PRESETn)
    set(def_active low)
  elseif(C_BUS STREQUAL "axi-lite")
    set(keys ${_COREIO_COSIM_KEYS_AXI_LITE})
    set(bus_enum AxiLite)
    set(def_clock aclk)
    set(def_reset aresetn)
    set(def_active low)
  elseif(C_BUS STREQUAL "wishbone")
    set(keys ${_COREIO_COSIM_KEYS_WISHBONE})
    set(bus_enum Wishbone)
    set(def_clock clk_i)
    set(def_reset rst_i)
    set(def_active high)
  elseif(C_BUS STREQUAL "none")
    set(keys)
    set(bus_enum None)
    set(def_clock clk)
    set(def_reset rst_n)
    set(def_active low)
  else()
    message(FATAL_ERROR "coreio_add_cosim(${name}): BUS must be apb, axi-lite, wishbone or none, not '${C_BUS}'")
  endif()
  if(C_MASTER)
    if(NOT C_MASTER STREQUAL "axi4")
      message(FATAL_ERROR "coreio_add_cosim(${name}): MASTER must be axi4, not '${C_MASTER}'")
    endif()
    list(APPEND keys ${_COREIO_COSIM_KEYS_AXI4})
  endif()
  if(NOT C_CLOCK)
    set(C_CLOCK ${def_clock})
  endif()
  if(NOT C_RESET)
    set(C_RESET ${def_reset})
    if(NOT C_RESET_ACTIVE)
      set(C_RESET_ACTIVE ${def_active})
    endif()
  endif()
  if(NOT C_RESET_ACTIVE)
    set(C_RESET_ACTIVE low)
  endif()
  if(NOT C_RESET_ACTIVE MATCHES "^(low|high)$")
    message(FATAL_ERROR "coreio_add_cosim(${name}): RESET_ACTIVE must be low or high")
  endif()
  if(NOT C_IRQS)
    set(C_IRQS irq)
  endif()
  if(NOT C_ADDR_WIDTH)
    set(C_ADDR_WIDTH 12)
  endif()
  if(NOT C_TRACE)
    set(C_TRACE fst vcd)
  endif()
  set(COSIM_WB_PIPELINED false)
  if(C_WB_MODE STREQUAL "pipelined")
    set(COSIM_WB_PIPELINED true)
  elseif(C_WB_MODE AND NOT C_WB_MODE STREQUAL "classic")
    message(FATAL_ERROR "coreio_add_cosim(${name}): WB_MODE must be classic or pipelined")
  endif()

  # SIGNALS KEY=port overrides.
  set(known_keys)
  foreach(entry ${keys})
    string(REPLACE "|" ";" f "${entry}")
    list(GET f 0 k)
    list(APPEND known_keys ${k})
    set(port_${k})
  endforeach()
  foreach(s ${C_SIGNALS})
    if(NOT s MATCHES "^([A-Z0-9_]+)=([A-Za-z_][A-Za-z0-9_]*)$")
      message(FATAL_ERROR "coreio_add_cosim(${name}): SIGNALS entry '${s}' is not KEY=port")
    endif()
    if(NOT CMAKE_MATCH_1 IN_LIST known_keys)
      string(REPLACE ";" " " kk "${known_keys}")
      message(FATAL_ERROR "coreio_add_cosim(${name}): unknown signal key '${CMAKE_MATCH_1}' for BUS ${C_BUS}; known: ${kk}")
    endif()
    set(port_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endforeach()

  # Binding lines.
  set(bind "    p.bus = ::coreio::cosim::BusKind::${bus_enum};\n")
  string(APPEND bind "    COREIO_COSIM_PIN(p.clock, ${C_CLOCK}, \"CLOCK\", true);\n")
  string(APPEND bind "    COREIO_COSIM_PIN(p.reset, ${C_RESET}, \"RESET\", true);\n")
  if(C_RESET_ACTIVE STREQUAL "low")
    string(APPEND bind "    p.reset_active_low = true;\n")
  else()
    string(APPEND bind "    p.reset_active_low = false;\n")
  endif()
  if(C_MASTER)
    string(APPEND bind "    p.has_master = true;\n")
  endif()
  foreach(entry ${keys})
    string(REPLACE "|" ";" f "${entry}")
    list(GET f 0 k)
    list(GET f 1 member)
    list(GET f 2 port)
    list(GET f 3 req)
    if(port_${k})
      set(port ${port_${k}})
    endif()
    if(req)
      set(req true)
    else()
      set(req false)
    endif()
    string(APPEND bind "    COREIO_COSIM_PIN(p.${member}, ${port}, \"${k}\", ${req});\n")
  endforeach()
  set(line 0)
  set(idx 0)
  foreach(irq ${C_IRQS})
    set(width 1)
    if(irq MATCHES "^([A-Za-z_][A-Za-z0-9_]*):([0-9]+)$")
      set(irq ${CMAKE_MATCH_1})
      set(width ${CMAKE_MATCH_2})
    endif()
    string(APPEND bind "    COREIO_COSIM_PIN(p.irqs[${idx}].signal, ${irq}, \"IRQS\", true);\n")
    string(APPEND bind "    p.irqs[${idx}].width = ${width};\n    p.irqs[${idx}].first = ${line};\n")
    math(EXPR line "${line} + ${width}")
    math(EXPR idx "${idx} + 1")
  endforeach()
  if(line GREATER 8)
    message(FATAL_ERROR "coreio_add_cosim(${name}): IRQS add up to ${line} lines; a range has 8")
  endif()
  string(APPEND bind "    p.num_irqs = ${idx};")

  # One verilation per waveform format (Verilator builds a model for one format).
  add_library(${target} STATIC ${gen}/${name}_binding.cpp)
  set(includes "")
  set(factory "")
  foreach(fmt ${C_TRACE})
    if(fmt STREQUAL "fst")
      set(flag TRACE_FST)
      set(tracer VerilatedFstC)
      set(enum Fst)
    elseif(fmt STREQUAL "vcd")
      set(flag TRACE)
      set(tracer VerilatedVcdC)
      set(enum Vcd)
    else()
      message(FATAL_ERROR "coreio_add_cosim(${name}): TRACE takes fst and/or vcd, not '${fmt}'")
    endif()
    set(prefix V${id}_${fmt})
    verilate(${target} ${flag} PREFIX ${prefix} TOP_MODULE ${C_TOP} SOURCES ${C_SOURCES}
             INCLUDE_DIRS ${C_INCLUDE_DIRS}
             VERILATOR_ARGS --no-timing -Wno-fatal ${C_VERILATOR_ARGS}
             OPT_SLOW -O1 OPT_FAST -O2)
    string(APPEND includes "#include \"${prefix}.h\"\n#include \"verilated_${fmt}_c.h\"\n")
    string(APPEND factory "    if (!format || *format == TraceFormat::${enum})\n"
      "        return std::make_unique<VerilatedModel<${prefix}, ${tracer}, TraceFormat::${enum}>>(\n"
      "            \"${name}\", &bind_ports<${prefix}>);\n")
  endforeach()
  # The runtime comes from coreio_cosim_verilated, built once for all models.
  get_target_property(srcs ${target} SOURCES)
  list(FILTER srcs EXCLUDE REGEX "^${VERILATOR_ROOT}/include/")
  set_property(TARGET ${target} PROPERTY SOURCES ${srcs})

  set(COSIM_NAME ${name})
  set(COSIM_ID ${id})
  set(COSIM_TOP ${C_TOP})
  set(COSIM_BUS ${C_BUS})
  set(COSIM_ADDR_WIDTH ${C_ADDR_WIDTH})
  set(COSIM_INCLUDES "${includes}")
  set(COSIM_BIND "${bind}")
  set(COSIM_FACTORY "${factory}")
  configure_file(${_COREIO_COSIM_DIR}/binding.cpp.in ${gen}/${name}_binding.cpp @ONLY)
  configure_file(${_COREIO_COSIM_DIR}/model.hpp.in ${gen}/${name}_model.hpp @ONLY)
  target_include_directories(${target} PUBLIC ${gen})
  target_link_libraries(${target} PUBLIC coreio::cosim coreio_cosim_verilated)
  # Generated C++ is not held to the project's warning flags; keep debug info
  # out of it (it is large and slow to build).
  target_compile_options(${target} PRIVATE -g0 -w)
  target_compile_features(${target} PUBLIC cxx_std_20)

  if(C_EXECUTABLE)
    configure_file(${_COREIO_COSIM_DIR}/main.cpp.in ${gen}/${name}_main.cpp @ONLY)
    add_executable(coreio-cosim-${name} ${gen}/${name}_main.cpp)
    target_link_libraries(coreio-cosim-${name} PRIVATE ${target})
    if(COMMAND coreio_warnings)
      coreio_warnings(coreio-cosim-${name})
    endif()
  endif()
endfunction()
