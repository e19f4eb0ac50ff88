// Scenario scripts for the mock VM, in a vocabulary that follows QEMU qtest:
//
//   writeb|writew|writel|writeq ADDR VALUE       posted MMIO write of 1/2/4/8 bytes
//   readb|readw|readl|readq ADDR [expect VALUE]  MMIO read; prints "OK 0x%016x"
//   write ADDR SIZE 0xHEX                        MMIO write of SIZE (1..32) bytes, memory order
//   read ADDR SIZE [expect 0xHEX]                MMIO read of SIZE (1..32) bytes; prints "OK 0xHEX"
//   memwrite ADDR SIZE 0xHEX                     write guest memory
//   memread ADDR SIZE [expect 0xHEX]             read guest memory; prints "OK 0xHEX"
//   memset ADDR SIZE BYTE                        fill guest memory
//   readp ADDR SIZE [expect 0xHEX1 0xHEX2]       pair read: two SIZE-byte (1..16) elements at ADDR, ADDR+SIZE
//   writep ADDR SIZE 0xHEX1 0xHEX2               pair write (posted)
//   irq_wait RID LINE LEVEL [TIMEOUT_MS]         wait for an IRQ line level
//   irq_count RID LINE [expect N]                rising edges since the start or irq_clear; prints "OK N"
//   irq_wait_edge RID LINE rising|falling [TIMEOUT_MS]  latched: at once if such an edge happened since the
//                                                last irq_wait_edge for it (or irq_clear), else wait for one
//   irq_clear RID LINE                           restart irq_count at 0, forget unchecked edges
//   reset | ping | sleep MS
//   # comment (also after a command)
//
// Numbers are decimal or 0x-hex. Parse errors and run-time errors name the
// script's file and line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "coreio/mockvm/vm.hpp"

namespace coreio::mockvm {

/// A script that cannot be parsed; what() is "FILE:LINE: message".
class ScriptError : public std::runtime_error {
public:
    ScriptError(const std::string& what, unsigned line) : std::runtime_error(what), line_(line) {}
    /// The 1-based line the error is on.
    unsigned line() const { return line_; }

private:
    unsigned line_;
};

/// One parsed script command.
struct ScriptCommand {
    enum class Kind {
        Write, Read, MemWrite, MemRead, MemSet, IrqWait, Reset, Ping, Sleep,
        ReadPair, WritePair, IrqCount, IrqWaitEdge, IrqClear
    };
    Kind kind{};
    unsigned line = 0;             // 1-based source line
    std::string name;              // the command word as written ("readl", "write", ...)
    std::uint64_t addr = 0;        // Write/Read/Mem*: address
    std::uint64_t size = 0;        // bytes (readl: 4)
    bool value_form = false;       // readX/writeX: value is a little-endian number, printed as %016x
    std::vector<std::byte> data;   // Write/MemWrite: bytes to write (WritePair: both elements)
    bool has_expect = false;       // Read/MemRead/ReadPair/IrqCount: an expectation follows
    std::vector<std::byte> expect; // expected bytes (value forms: the value, little endian; IrqCount: N, 8 bytes)
    std::uint8_t fill = 0;         // MemSet: the byte
    unsigned rid = 0, irq_line = 0;  // Irq*
    bool level = false;            // IrqWait
    bool rising = true;            // IrqWaitEdge: rising (else falling)
    std::int64_t ms = -1;          // IrqWait/IrqWaitEdge timeout (-1: the Vm's), Sleep duration
};

/// A parsed script.
struct Script {
    std::string name;                     // file name used in messages
    std::vector<ScriptCommand> commands;  // in order
};

/// Parses script text; throws ScriptError naming `name` and the line.
Script parse_script(std::string_view text, std::string_view name = "script");
/// Reads and parses a file; throws ScriptError (also when it cannot be read).
Script load_script(const std::string& path);

/// How a run went.
struct ScriptResult {
    bool ok = false;            // every command ran and every expectation held
    std::size_t executed = 0;   // commands executed
    std::size_t failures = 0;   // expectations that did not hold (and bus errors)
    std::string error;          // set when the run stopped early: "FILE:LINE: ..."
};

/// Runs a script against a Vm. Each command prints its qtest-style answer to
/// `out` ("OK", "OK 0x..."); a failed expectation prints "FAIL FILE:LINE: ..."
/// and the run goes on; an error (address outside every range, timeout,
/// guest memory that cannot be allocated) stops it with one "ERR FILE:LINE:
/// COMMAND ..." line. So does the device going away: the first command that
/// needs the device after a range claimed during the run lost its client
/// stops the run (the VM would answer it itself, with 0xAA bytes).
ScriptResult run_script(Vm& vm, const Script& script, std::ostream& out);

}  // namespace coreio::mockvm
