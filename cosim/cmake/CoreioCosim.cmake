# coreio_add_cosim(): a runnable co-simulated device from RTL in a few lines,
# on top of Verilator's own verilate(). In this tree cosim/CMakeLists.txt
# includes it; elsewhere `find_package(coreio REQUIRED COMPONENTS cosim)` does.
#
#   coreio_add_cosim(<name>
#       TOP <module> SOURCES <rtl files...>
#       BUS apb|axi-lite|wishbone|none       # slave port that answers MMIO
#       [MASTER axi4]                        # the model's AXI4 master does DMA
#       [CLOCK <port>]
#       [RESET <port> ACTIVE_LOW|ACTIVE_HIGH | RESET NONE]
#       [IRQS <port>[:<width>] ... | IRQS NONE]  # interrupt outputs, lines 0.. in order
#       [PREFIX <prefix>] [SUFFIX <suffix> | SUFFIX <input suffix> <output suffix>]
#       [MASTER_PREFIX <prefix>]             # the same for the AXI4 master's ports
#       [SIGNALS <KEY>=<port> ...]           # one port by name, e.g. PREADY=apb_ready
#       [ADDR_WIDTH <bits>]                  # slave byte-address width (default: the address port's)
#       [WB_MODE classic|pipelined]          # Wishbone default mode (overridable at run time)
#       [TRACE fst vcd]                      # waveform builds (each one a verilation; default: both)
#       [COVERAGE [line] [toggle] [user]]    # Verilator coverage (alone: line toggle); see below
#       [INCLUDE_DIRS <dirs>] [VERILATOR_ARGS <args>]
#       [EXECUTABLE])                        # also build coreio-cosim-<name>
#
# Makes the static library target cosim_<name> with header <name>_model.hpp
# declaring coreio::cosim::models::make_<name>() (dashes become underscores).
#
# Ports are read from the design at configure time (verilator --xml-only) and
# matched case-insensitively. Each bus signal KEY is found as, in this order:
# its SIGNALS entry (which must name a port of the model), PREFIX + signal +
# SUFFIX (signal: the key in lower case, psel, awvalid, cyc, dat, ...; the
# second SUFFIX is used for the model's outputs), then the default name.
# Default names: APB PSEL PENABLE PWRITE PADDR PWDATA PSTRB PPROT PRDATA PREADY
# PSLVERR, clock PCLK, reset PRESETn (active low); AXI4-Lite s_axi_<signal>,
# clock aclk, reset aresetn (active low); Wishbone wb_cyc_i wb_stb_i wb_we_i
# wb_adr_i wb_dat_i wb_sel_i wb_dat_o wb_ack_o wb_err_o wb_stall_o, clock
# clk_i, reset rst_i (active high); AXI4 master m_axi_<signal> (keys
# M_AWVALID ...); interrupts: `irq` when the model has it, else none.
# Optional signals (PSTRB PPROT PREADY PSLVERR, AXI PROT/RESP, Wishbone SEL
# ERR STALL, AXI4 BURST/ID/RESP) the model lacks are left unbound.
#
# COVERAGE builds the model with Verilator's coverage points (--coverage-line,
# --coverage-toggle, --coverage-user as listed; `user` needs cover statements
# in the design): coreio-cosim-<name> --coverage FILE writes them for
# verilator_coverage, and the counters feed the fuzzer (Model::coverage()).
#
# Verilator's warnings are shown when the design is built (target
# cosim_<name>_lint) and fail the build; pass -Wno-fatal or lint waivers in
# VERILATOR_ARGS to accept them.

find_package(verilator REQUIRED HINTS $ENV{VERILATOR_ROOT} /usr/share/verilator)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)

# Cached so that coreio_add_cosim() works from any directory.
set(_COREIO_COSIM_DIR ${CMAKE_CURRENT_LIST_DIR} CACHE INTERNAL "coreio cosim templates")

# The Verilator runtime, compiled once and shared by every model.
if(NOT TARGET coreio_cosim_verilated)
  add_library(coreio_cosim_verilated STATIC
    ${VERILATOR_ROOT}/include/verilated.cpp
    ${VERILATOR_ROOT}/include/verilated_cov.cpp
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

# Sets <out> to key entries KEY|member|default port|required (1/0)|signal|direction
# (direction as seen from the model: in or out), one per KEY:required:direction
# spec: the key is <key_prefix>KEY, the member <struct>.<signal>, and the default
# port <port> with <KEY>/<key> replaced by KEY in upper/lower case.
function(_coreio_cosim_key_table out key_prefix struct port)
  set(entries)
  foreach(spec ${ARGN})
    string(REPLACE ":" ";" f ${spec})
    list(GET f 0 key)
    list(GET f 1 req)
    list(GET f 2 dir)
    string(TOLOWER ${key} l)
    string(REPLACE "<KEY>" ${key} def "${port}")
    string(REPLACE "<key>" ${l} def "${def}")
    list(APPEND entries "${key_prefix}${key}|${struct}.${l}|${def}|${req}|${l}|${dir}")
  endforeach()
  set(${out} ${entries} PARENT_SCOPE)
endfunction()

# Sets _COREIO_COSIM_KEYS_<BUS> (see _coreio_cosim_key_table).
macro(_coreio_cosim_keys)
  _coreio_cosim_key_table(_COREIO_COSIM_KEYS_APB "" apb "<KEY>"
    PSEL:1:in PENABLE:1:in PWRITE:1:in PADDR:1:in PWDATA:1:in PSTRB:0:in PPROT:0:in
    PRDATA:1:out PREADY:0:out PSLVERR:0:out)
  _coreio_cosim_key_table(_COREIO_COSIM_KEYS_AXI_LITE "" axil "s_axi_<key>"
    AWVALID:1:in AWREADY:1:out AWADDR:1:in AWPROT:0:in WVALID:1:in WREADY:1:out WDATA:1:in
    WSTRB:1:in BVALID:1:out BREADY:1:in BRESP:0:out ARVALID:1:in ARREADY:1:out ARADDR:1:in
    ARPROT:0:in RVALID:1:out RREADY:1:in RDATA:1:out RRESP:0:out)
  # Wishbone's default names do not follow the signal names (DAT_W is wb_dat_i).
  set(_COREIO_COSIM_KEYS_WISHBONE
    "CYC|wb.cyc|wb_cyc_i|1|cyc|in" "STB|wb.stb|wb_stb_i|1|stb|in" "WE|wb.we|wb_we_i|1|we|in"
    "ADR|wb.adr|wb_adr_i|1|adr|in" "DAT_W|wb.dat_w|wb_dat_i|1|dat|in" "SEL|wb.sel|wb_sel_i|0|sel|in"
    "DAT_R|wb.dat_r|wb_dat_o|1|dat|out" "ACK|wb.ack|wb_ack_o|1|ack|out" "ERR|wb.err|wb_err_o|0|err|out"
    "STALL|wb.stall|wb_stall_o|0|stall|out")
  _coreio_cosim_key_table(_COREIO_COSIM_KEYS_AXI4 M_ axi "m_axi_<key>"
    AWVALID:1:out AWREADY:1:in AWADDR:1:out AWLEN:1:out AWSIZE:1:out AWBURST:0:out AWID:0:out
    WVALID:1:out WREADY:1:in WDATA:1:out WSTRB:1:out WLAST:1:out
    BVALID:1:in BREADY:1:out BRESP:0:in BID:0:in
    ARVALID:1:out ARREADY:1:in ARADDR:1:out ARLEN:1:out ARSIZE:1:out ARBURST:0:out ARID:0:out
    RVALID:1:in RREADY:1:out RDATA:1:in RLAST:1:in RRESP:0:in RID:0:in)
endmacro()

# Reads the top module's ports with `verilator --xml-only`. Sets, in the
# caller: <out>_NAMES (as written), <out>_UPPER (upper case, same order), and
# per port NAME <out>_DIR_<NAME> (in/out), <out>_MSB_<NAME>, <out>_LSB_<NAME>.
# ARGN: include flags, VERILATOR_ARGS and sources.
function(_coreio_cosim_read_ports out name top gen)
  set(xml_file ${gen}/${name}_ports.xml)
  execute_process(
    COMMAND ${VERILATOR_BIN} --xml-only --xml-output ${xml_file} --no-timing -Wno-fatal -Wno-lint -Wno-style
            --top-module ${top} ${ARGN}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    RESULT_VARIABLE rc OUTPUT_VARIABLE log ERROR_VARIABLE log)
  if(rc)
    message(FATAL_ERROR "coreio_add_cosim(${name}): Verilator cannot read the design (top module '${top}'):\n${log}")
  endif()
  file(READ ${xml_file} xml)
  string(FIND "${xml}" "topModule=\"1\"" at)
  if(at LESS 0)
    message(FATAL_ERROR "coreio_add_cosim(${name}): Verilator found no top module '${top}'")
  endif()
  string(SUBSTRING "${xml}" ${at} -1 body)
  string(FIND "${body}" "</module>" end)
  string(SUBSTRING "${body}" 0 ${end} body)
  string(REGEX MATCHALL "<var [^>]*dir=\"[a-z]+\"[^>]*>" vars "${body}")
  set(names)
  set(upper)
  foreach(v ${vars})
    string(REGEX MATCH " name=\"([^\"]+)\"" _ "${v}")
    set(n ${CMAKE_MATCH_1})
    string(REGEX MATCH " dir=\"([a-z]+)\"" _ "${v}")
    set(dir in)
    if(CMAKE_MATCH_1 STREQUAL "output")
      set(dir out)
    endif()
    string(REGEX MATCH " dtype_id=\"([0-9]+)\"" _ "${v}")
    set(msb 0)
    set(lsb 0)
    if(CMAKE_MATCH_1)
      string(REGEX MATCH "<basicdtype [^>]* id=\"${CMAKE_MATCH_1}\"[^>]*>" dt "${xml}")
      if(dt MATCHES " left=\"([0-9]+)\" right=\"([0-9]+)\"")
        set(msb ${CMAKE_MATCH_1})
        set(lsb ${CMAKE_MATCH_2})
      endif()
    endif()
    list(APPEND names ${n})
    string(TOUPPER ${n} u)
    list(APPEND upper ${u})
    set(${out}_DIR_${n} ${dir} PARENT_SCOPE)
    set(${out}_MSB_${n} ${msb} PARENT_SCOPE)
    set(${out}_LSB_${n} ${lsb} PARENT_SCOPE)
  endforeach()
  set(${out}_NAMES ${names} PARENT_SCOPE)
  set(${out}_UPPER ${upper} PARENT_SCOPE)
endfunction()

# Sets <var> to the port of the model named <want> in any case ("" if none).
macro(_coreio_cosim_find var want)
  string(TOUPPER "${want}" _u)
  list(FIND _P_UPPER "${_u}" _i)
  if(_i LESS 0)
    set(${var} "")
  else()
    list(GET _P_NAMES ${_i} ${var})
  endif()
endmacro()

function(coreio_add_cosim name)
  _coreio_cosim_keys()
  cmake_parse_arguments(C "EXECUTABLE"
    "TOP;BUS;MASTER;CLOCK;RESET_ACTIVE;ADDR_WIDTH;WB_MODE;PREFIX;MASTER_PREFIX"
    "SOURCES;RESET;IRQS;SIGNALS;SUFFIX;TRACE;INCLUDE_DIRS;VERILATOR_ARGS;COVERAGE" ${ARGN})
  set(me "coreio_add_cosim(${name})")
  if(C_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "${me}: unknown arguments: ${C_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT C_TOP OR NOT C_SOURCES)
    message(FATAL_ERROR "${me}: TOP and SOURCES are required")
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
    set(addr_keys PADDR)
    set(data_key PWDATA)
  elseif(C_BUS STREQUAL "axi-lite")
    set(keys ${_COREIO_COSIM_KEYS_AXI_LITE})
    set(bus_enum AxiLite)
    set(def_clock aclk)
    set(def_reset aresetn)
    set(def_active low)
    set(addr_keys AWADDR ARADDR)
    set(data_key WDATA)
  elseif(C_BUS STREQUAL "wishbone")
    set(keys ${_COREIO_COSIM_KEYS_WISHBONE})
    set(bus_enum Wishbone)
    set(def_clock clk_i)
    set(def_reset rst_i)
    set(def_active high)
    set(addr_keys ADR)
    set(data_key DAT_W)
  elseif(C_BUS STREQUAL "none")
    set(keys)
    set(bus_enum None)
    set(def_clock clk)
    set(def_reset rst_n)
    set(def_active low)
    set(addr_keys)
    set(data_key)
  else()
    message(FATAL_ERROR "${me}: BUS must be apb, axi-lite, wishbone or none, not '${C_BUS}'")
  endif()
  if(C_MASTER)
    if(NOT C_MASTER STREQUAL "axi4")
      message(FATAL_ERROR "${me}: MASTER must be axi4, not '${C_MASTER}'")
    endif()
    list(APPEND keys ${_COREIO_COSIM_KEYS_AXI4})
  endif()
  if(NOT C_TRACE)
    set(C_TRACE fst vcd)
  endif()
  set(coverage_args)
  if("COVERAGE" IN_LIST C_KEYWORDS_MISSING_VALUES)
    set(C_COVERAGE line toggle)
  endif()
  foreach(kind ${C_COVERAGE})
    if(NOT kind MATCHES "^(line|toggle|user)$")
      message(FATAL_ERROR "${me}: COVERAGE takes line, toggle and/or user, not '${kind}'")
    endif()
    list(APPEND coverage_args --coverage-${kind})
  endforeach()
  set(COSIM_WB_PIPELINED false)
  if(C_WB_MODE STREQUAL "pipelined")
    set(COSIM_WB_PIPELINED true)
  elseif(C_WB_MODE AND NOT C_WB_MODE STREQUAL "classic")
    message(FATAL_ERROR "${me}: WB_MODE must be classic or pipelined")
  endif()

  # The model's ports, as Verilator sees them (re-read when a source changes).
  set(incs)
  foreach(d ${C_INCLUDE_DIRS})
    list(APPEND incs -I${d})
  endforeach()
  _coreio_cosim_read_ports(_P ${name} ${C_TOP} ${gen} ${incs} ${C_VERILATOR_ARGS} ${C_SOURCES})
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${C_SOURCES})
  string(REPLACE ";" " " port_list "${_P_NAMES}")
  set(ports_are "the ports of ${C_TOP} are: ${port_list}")

  # Clock and reset.
  set(clock ${C_CLOCK})
  if(NOT clock)
    set(clock ${def_clock})
  endif()
  _coreio_cosim_find(clock_port ${clock})
  if(NOT clock_port)
    message(FATAL_ERROR "${me}: no clock port '${clock}'; name it with CLOCK <port> (${ports_are})")
  endif()
  list(LENGTH C_RESET n_reset)
  set(reset_port "")
  if(C_RESET STREQUAL "NONE")
    set(active low)
  elseif(n_reset EQUAL 0)
    _coreio_cosim_find(reset_port ${def_reset})
    if(NOT reset_port)
      message(FATAL_ERROR "${me}: no reset port '${def_reset}'; name it with RESET <port> ACTIVE_LOW|ACTIVE_HIGH, "
                          "or say RESET NONE (${ports_are})")
    endif()
    set(active ${def_active})
  else()
    list(GET C_RESET 0 reset)
    set(active ${C_RESET_ACTIVE})
    if(n_reset EQUAL 2)
      list(GET C_RESET 1 pol)
      if(pol STREQUAL "ACTIVE_LOW")
        set(active low)
      elseif(pol STREQUAL "ACTIVE_HIGH")
        set(active high)
      else()
        message(FATAL_ERROR "${me}: RESET ${reset} ${pol}: the polarity is ACTIVE_LOW or ACTIVE_HIGH")
      endif()
    elseif(n_reset GREATER 2)
      message(FATAL_ERROR "${me}: RESET takes <port> ACTIVE_LOW|ACTIVE_HIGH, got '${C_RESET}'")
    endif()
    if(NOT active MATCHES "^(low|high)$")
      message(FATAL_ERROR "${me}: RESET ${reset}: say whether it is ACTIVE_LOW or ACTIVE_HIGH")
    endif()
    _coreio_cosim_find(reset_port ${reset})
    if(NOT reset_port)
      message(FATAL_ERROR "${me}: RESET names '${reset}', which is not a port of the model (${ports_are})")
    endif()
  endif()

  # Bus signals: SIGNALS entry, else PREFIX + signal + SUFFIX, else the default name.
  set(known_keys)
  foreach(entry ${keys})
    string(REPLACE "|" ";" f "${entry}")
    list(GET f 0 k)
    list(APPEND known_keys ${k})
    set(sig_${k})
  endforeach()
  foreach(s ${C_SIGNALS})
    if(NOT s MATCHES "^([A-Z0-9_]+)=([A-Za-z_][A-Za-z0-9_]*)$")
      message(FATAL_ERROR "${me}: SIGNALS entry '${s}' is not KEY=port")
    endif()
    set(k ${CMAKE_MATCH_1})
    set(want ${CMAKE_MATCH_2})
    if(NOT k IN_LIST known_keys)
      string(REPLACE ";" " " kk "${known_keys}")
      message(FATAL_ERROR "${me}: unknown signal key '${k}' for BUS ${C_BUS}; known: ${kk}")
    endif()
    _coreio_cosim_find(found ${want})
    if(NOT found)
      message(FATAL_ERROR "${me}: SIGNALS ${k}=${want}: the model has no port '${want}' (${ports_are})")
    endif()
    set(sig_${k} ${found})
  endforeach()
  list(LENGTH C_SUFFIX n_suffix)
  set(suffix_in "")
  set(suffix_out "")
  if(n_suffix GREATER 0)
    list(GET C_SUFFIX 0 suffix_in)
    list(GET C_SUFFIX -1 suffix_out)
  endif()

  set(bind "    p.bus = ::coreio::cosim::BusKind::${bus_enum};\n")
  string(APPEND bind "    COREIO_COSIM_BIND(p.clock, ${clock_port});\n")
  if(reset_port)
    string(APPEND bind "    COREIO_COSIM_BIND(p.reset, ${reset_port});\n    p.reset_name = \"${reset_port}\";\n")
  endif()
  if(active STREQUAL "low")
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
    list(GET f 2 def)
    list(GET f 3 req)
    list(GET f 4 sig)
    list(GET f 5 dir)
    set(port "${sig_${k}}")
    set(prefix "${C_PREFIX}")
    if(k MATCHES "^M_")
      set(prefix "${C_MASTER_PREFIX}")
    endif()
    if(NOT port AND (prefix OR (n_suffix GREATER 0 AND NOT k MATCHES "^M_")))
      set(cand "${prefix}${sig}${suffix_${dir}}")
      if(k MATCHES "^M_")
        set(cand "${prefix}${sig}")
      endif()
      _coreio_cosim_find(port ${cand})
      if(port AND NOT _P_DIR_${port} STREQUAL dir)
        set(port "")
      endif()
    endif()
    if(NOT port)
      _coreio_cosim_find(port ${def})
    endif()
    if(NOT port)
      if(req)
        message(FATAL_ERROR "${me}: no port for ${k} (looked for '${def}'); map it with SIGNALS "
                            "${k}=<port>, or PREFIX/SUFFIX (${ports_are})")
      endif()
      continue()
    endif()
    math(EXPR width "${_P_MSB_${port}} - ${_P_LSB_${port}} + 1")
    if(width GREATER 64)
      message(FATAL_ERROR "${me}: ${k} port '${port}' is ${width} bits; the bridge binds ports of up to 64")
    endif()
    set(port_${k} ${port})
    string(APPEND bind "    COREIO_COSIM_BIND(p.${member}, ${port});\n")
  endforeach()

  # Data and address widths.
  if(data_key)
    set(p ${port_${data_key}})
    math(EXPR width "${_P_MSB_${p}} - ${_P_LSB_${p}} + 1")
    if(NOT width EQUAL 32 AND NOT width EQUAL 64)
      message(FATAL_ERROR "${me}: data port '${p}' is ${width} bits; the bridge drives 32- or 64-bit buses")
    endif()
  endif()
  set(addr_bits 64)
  set(addr_shift 0)
  foreach(k ${addr_keys})
    set(p ${port_${k}})
    math(EXPR bits "${_P_MSB_${p}} + 1")
    if(bits LESS addr_bits)
      set(addr_bits ${bits})
    endif()
    set(addr_shift ${_P_LSB_${p}})
  endforeach()
  if(C_ADDR_WIDTH)
    set(addr_bits ${C_ADDR_WIDTH})
  endif()

  # Interrupts: IRQS entries, else `irq` when the model has it.
  set(irqs ${C_IRQS})
  if(NOT irqs)
    _coreio_cosim_find(irq_port irq)
    set(irqs ${irq_port})
  elseif(irqs STREQUAL "NONE")
    set(irqs)
  endif()
  set(line 0)
  set(idx 0)
  foreach(irq ${irqs})
    set(width "")
    if(irq MATCHES "^([A-Za-z_][A-Za-z0-9_]*):([0-9]+)$")
      set(irq ${CMAKE_MATCH_1})
      set(width ${CMAKE_MATCH_2})
    endif()
    _coreio_cosim_find(port ${irq})
    if(NOT port)
      message(FATAL_ERROR "${me}: IRQS names '${irq}', which is not a port of the model (${ports_are})")
    endif()
    if(NOT width)
      math(EXPR width "${_P_MSB_${port}} - ${_P_LSB_${port}} + 1")
    endif()
    string(APPEND bind "    COREIO_COSIM_BIND(p.irqs[${idx}].signal, ${port});\n")
    string(APPEND bind "    p.irqs[${idx}].width = ${width};\n    p.irqs[${idx}].first = ${line};\n")
    math(EXPR line "${line} + ${width}")
    math(EXPR idx "${idx} + 1")
  endforeach()
  if(line GREATER 8)
    message(FATAL_ERROR "${me}: IRQS add up to ${line} lines; a range has 8")
  endif()
  string(APPEND bind "    p.num_irqs = ${idx};")

  # Verilator's warnings, shown at build time; fatal unless VERILATOR_ARGS says otherwise.
  add_custom_command(OUTPUT ${gen}/${name}_lint.stamp
    COMMAND ${VERILATOR_BIN} --lint-only --no-timing --top-module ${C_TOP} ${incs} ${C_VERILATOR_ARGS} ${C_SOURCES}
    COMMAND ${CMAKE_COMMAND} -E touch ${gen}/${name}_lint.stamp
    DEPENDS ${C_SOURCES} WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    COMMENT "Verilator lint of ${C_TOP} (coreio_add_cosim ${name})" VERBATIM)
  add_custom_target(${target}_lint DEPENDS ${gen}/${name}_lint.stamp)

  # One verilation per waveform format (Verilator builds a model for one format).
  add_library(${target} STATIC ${gen}/${name}_binding.cpp)
  add_dependencies(${target} ${target}_lint)
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
      message(FATAL_ERROR "${me}: TRACE takes fst and/or vcd, not '${fmt}'")
    endif()
    set(prefix V${id}_${fmt})
    # Warnings are reported by the lint step above; this run only generates C++.
    verilate(${target} ${flag} PREFIX ${prefix} TOP_MODULE ${C_TOP} SOURCES ${C_SOURCES}
             INCLUDE_DIRS ${C_INCLUDE_DIRS}
             VERILATOR_ARGS --no-timing -Wno-fatal ${coverage_args} ${C_VERILATOR_ARGS}
             OPT_SLOW -O1 OPT_FAST -O2)
    string(APPEND includes "#include \"${prefix}.h\"\n#include \"verilated_${fmt}_c.h\"\n")
    set(coverage_of nullptr)
    if(coverage_args)
      string(APPEND includes "#include \"${prefix}__Syms.h\"\n")
      set(coverage_of "&coverage_of<${prefix}>")
    endif()
    string(APPEND factory "    if (!format || *format == TraceFormat::${enum})\n"
      "        return std::make_unique<VerilatedModel<${prefix}, ${tracer}, TraceFormat::${enum}>>(\n"
      "            \"${name}\", &bind_ports<${prefix}>, ${coverage_of});\n")
  endforeach()
  # The runtime comes from coreio_cosim_verilated, built once for all models.
  get_target_property(srcs ${target} SOURCES)
  list(FILTER srcs EXCLUDE REGEX "^${VERILATOR_ROOT}/include/")
  set_property(TARGET ${target} PROPERTY SOURCES ${srcs})

  set(COSIM_NAME ${name})
  set(COSIM_ID ${id})
  set(COSIM_TOP ${C_TOP})
  set(COSIM_BUS ${C_BUS})
  set(COSIM_ADDR_WIDTH ${addr_bits})
  set(COSIM_ADDR_SHIFT ${addr_shift})
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
