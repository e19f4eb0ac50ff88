#include "coreio/replayer/rules.hpp"

#include <charconv>
#include <fstream>

namespace coreio::replayer {

bool parse_u64(std::string_view text, std::uint64_t& out) {
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        text.remove_prefix(2);
        base = 16;
    }
    if (text.empty()) return false;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), out, base);
    return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto p = s.find(sep);
        parts.push_back(s.substr(0, p));
        if (p == std::string_view::npos) return parts;
        s.remove_prefix(p + 1);
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::string bad(std::string_view spec, std::string_view why) {
    return "bad ignore rule '" + std::string(spec) + "': " + std::string(why);
}

}  // namespace

std::string IgnoreRules::add_mmio(std::string_view spec) {
    const auto parts = split(trim(spec), ':');
    if (parts.size() < 2 || parts.size() > 3) return bad(spec, "expected RID:OFFSET[:MASK]");
    IgnoreRule r;
    r.kind = IgnoreRule::Kind::Mmio;
    std::uint64_t rid = 0;
    if (!parse_u64(parts[0], rid) || rid > 7) return bad(spec, "RID must be 0..7");
    r.rid = static_cast<unsigned>(rid);
    if (!parse_u64(parts[1], r.offset)) return bad(spec, "OFFSET is not a number");
    if (parts.size() == 3 && !parse_u64(parts[2], r.mask)) return bad(spec, "MASK is not a number");
    if (r.mask == 0) return bad(spec, "MASK is 0 (ignores nothing)");
    r.text = std::string(trim(spec));
    rules_.push_back(std::move(r));
    has_mmio_ = true;
    return "";
}

std::string IgnoreRules::add_line(std::string_view line) {
    if (const auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) return "";
    std::string_view word = line.substr(0, line.find_first_of(" \t"));
    std::string_view rest = trim(line.substr(word.size()));
    if (word == "mmio") return add_mmio(rest);
    if (word == "irq") {
        const auto parts = split(rest, ':');
        IgnoreRule r;
        r.kind = IgnoreRule::Kind::Irq;
        std::uint64_t v = 0;
        if (parts.size() > 2 || !parse_u64(parts[0], v) || v > 7) return bad(line, "expected irq RID[:LINE], RID 0..7");
        r.rid = static_cast<unsigned>(v);
        r.all_lines = parts.size() == 1;
        if (parts.size() == 2) {
            if (!parse_u64(parts[1], v) || v > 7) return bad(line, "LINE must be 0..7");
            r.line = static_cast<unsigned>(v);
        }
        r.text = std::string(line);
        rules_.push_back(std::move(r));
        return "";
    }
    if (word == "dma") {
        const auto parts = split(rest, ':');
        IgnoreRule r;
        r.kind = IgnoreRule::Kind::Dma;
        if (parts.size() > 2 || !parse_u64(parts[0], r.address)) return bad(line, "expected dma ADDR[:SIZE]");
        if (parts.size() == 2 && (!parse_u64(parts[1], r.size) || r.size == 0)) return bad(line, "SIZE must be > 0");
        r.text = std::string(line);
        rules_.push_back(std::move(r));
        has_dma_ = true;
        return "";
    }
    if (!word.empty() && (word[0] >= '0' && word[0] <= '9')) return add_mmio(line);
    return bad(line, "unknown rule kind '" + std::string(word) + "' (expected mmio, irq or dma)");
}

std::string IgnoreRules::load_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return "cannot read rule file " + path;
    std::string line;
    for (unsigned n = 1; std::getline(in, line); ++n) {
        if (std::string err = add_line(line); !err.empty()) return path + ":" + std::to_string(n) + ": " + err;
    }
    return "";
}

std::uint8_t IgnoreRules::mmio_byte_mask(unsigned rid, std::uint64_t offset) const {
    if (!has_mmio_) return 0;
    std::uint8_t m = 0;
    for (const IgnoreRule& r : rules_) {
        if (r.kind != IgnoreRule::Kind::Mmio || r.rid != rid || offset < r.offset || offset - r.offset >= 8) continue;
        m = static_cast<std::uint8_t>(m | (r.mask >> (8 * (offset - r.offset))));
    }
    return m;
}

bool IgnoreRules::ignores_irq(unsigned rid, unsigned line) const {
    for (const IgnoreRule& r : rules_)
        if (r.kind == IgnoreRule::Kind::Irq && r.rid == rid && (r.all_lines || r.line == line)) return true;
    return false;
}

bool IgnoreRules::ignores_dma_byte(std::uint64_t address) const {
    if (!has_dma_) return false;
    for (const IgnoreRule& r : rules_)
        if (r.kind == IgnoreRule::Kind::Dma && address >= r.address && address - r.address < r.size) return true;
    return false;
}

}  // namespace coreio::replayer
