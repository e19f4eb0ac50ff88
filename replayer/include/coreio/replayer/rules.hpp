// Ignore rules: fields that legitimately differ between a recording and a
// replay (a free-running counter register, an IRQ line driven by wall-clock
// time, a DMA buffer holding a timestamp).
//
// Command-line form (--ignore):  RID:OFFSET[:MASK]
//   ignores bits MASK (default 0xffffffff: a 32-bit register) of the
//   little-endian value at byte OFFSET of range RID, in every read that
//   touches them. Numbers are decimal or 0x-hex.
// Rule file: one rule per line, '#' starts a comment, blank lines are skipped:
//   mmio RID:OFFSET[:MASK]    as --ignore (the word "mmio" may be left out)
//   irq RID[:LINE]            every level change of that line (all 8 without LINE)
//   dma ADDR[:SIZE]           the data of DMA writes to [ADDR, ADDR+SIZE) (SIZE default 1)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace coreio::replayer {

struct IgnoreRule {
    enum class Kind : std::uint8_t { Mmio, Irq, Dma };
    Kind kind = Kind::Mmio;
    unsigned rid = 0;             // Mmio, Irq: range id
    std::uint64_t offset = 0;     // Mmio: byte offset in the range
    std::uint64_t mask = 0xffffffffu;  // Mmio: bits of the value at offset
    unsigned line = 0;            // Irq: line
    bool all_lines = false;       // Irq: every line of the range
    std::uint64_t address = 0;    // Dma: first byte
    std::uint64_t size = 1;       // Dma: bytes
    std::string text;             // as written, for reports
};

class IgnoreRules {
public:
    /// Adds a --ignore rule "RID:OFFSET[:MASK]". Returns "" or an error naming what is wrong.
    std::string add_mmio(std::string_view spec);
    /// Adds one rule-file line (comments and blank lines accepted). Returns "" or an error.
    std::string add_line(std::string_view line);
    /// Reads a rule file. Returns "" or an error naming the file and line.
    std::string load_file(const std::string& path);
    /// Adds a rule directly.
    void add(IgnoreRule rule) { rules_.push_back(std::move(rule)); }

    /// Bits to ignore in the byte at `offset` of range `rid`.
    std::uint8_t mmio_byte_mask(unsigned rid, std::uint64_t offset) const;
    /// True when level changes of that IRQ line are ignored.
    bool ignores_irq(unsigned rid, unsigned line) const;
    /// True when DMA write data at that byte address is ignored.
    bool ignores_dma_byte(std::uint64_t address) const;

    const std::vector<IgnoreRule>& rules() const { return rules_; }
    bool empty() const { return rules_.empty(); }
    bool has_mmio() const { return has_mmio_; }
    bool has_dma() const { return has_dma_; }

private:
    std::vector<IgnoreRule> rules_;
    bool has_mmio_ = false;  // fast path: no MMIO rule means no per-byte lookup
    bool has_dma_ = false;
};

/// Parses a decimal or 0x-hex unsigned 64-bit number; false on anything else.
bool parse_u64(std::string_view text, std::uint64_t& out);

}  // namespace coreio::replayer
