#include "coreio/mockvm/script.hpp"

#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

#include "coreio/mockvm/parse.hpp"

namespace coreio::mockvm {

namespace {

constexpr std::uint64_t kMaxMemText = 1u << 20;  // memread/memwrite: bytes written out as hex on one line
constexpr std::uint64_t kMaxMemSet = 1ull << 32;

std::vector<std::string_view> tokenize(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

std::vector<std::byte> le_bytes(std::uint64_t v, std::size_t size) {
    std::vector<std::byte> b(size);
    for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::byte>(v >> (8 * i));
    return b;
}

std::uint64_t le_value(const std::vector<std::byte>& b) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < b.size() && i < 8; ++i) v |= static_cast<std::uint64_t>(b[i]) << (8 * i);
    return v;
}

std::string hex64(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
    return buf;
}

std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
    return buf;
}

unsigned width_of(char c) {
    switch (c) {
    case 'b': return 1;
    case 'w': return 2;
    case 'l': return 4;
    case 'q': return 8;
    default: return 0;
    }
}

class LineParser {
public:
    LineParser(std::string_view name, unsigned line, std::vector<std::string_view> tokens)
        : name_(name), line_(line), t_(std::move(tokens)) {}

    [[noreturn]] void fail(const std::string& msg) const {
        throw ScriptError(std::string(name_) + ":" + std::to_string(line_) + ": " + msg, line_);
    }
    void arity(std::size_t min, std::size_t max, const char* usage) const {
        const std::size_t n = t_.size() - 1;
        if (n < min || n > max)
            fail(std::string(t_[0]) + " takes " + usage + ", got " + std::to_string(n) + " argument(s)");
    }
    std::uint64_t number(std::size_t i, const char* what) const {
        try {
            return parse_number(t_[i]);
        } catch (const std::invalid_argument& e) {
            fail(std::string(t_[0]) + ": " + what + ": " + e.what());
        }
    }
    std::vector<std::byte> bytes(std::size_t i, std::size_t size, const char* what) const {
        try {
            return parse_hex_bytes(t_[i], size);
        } catch (const std::invalid_argument& e) {
            fail(std::string(t_[0]) + ": " + what + ": " + e.what());
        }
    }
    void keyword(std::size_t i, std::string_view word) const {
        if (t_[i] != word) fail(std::string(t_[0]) + ": expected '" + std::string(word) + "', got '" + std::string(t_[i]) + "'");
    }
    std::size_t args() const { return t_.size() - 1; }
    std::string_view word() const { return t_[0]; }
    std::string_view token(std::size_t i) const { return t_[i]; }

private:
    std::string_view name_;
    unsigned line_;
    std::vector<std::string_view> t_;
};

/// RID LINE of the irq_* commands, and an optional TIMEOUT_MS at `timeout_at`.
void parse_rid_line(const LineParser& p, ScriptCommand& c, std::size_t timeout_at) {
    const std::uint64_t rid = p.number(1, "RID");
    const std::uint64_t line = p.number(2, "LINE");
    if (rid >= kNumRanges) p.fail(c.name + ": RID " + std::to_string(rid) + " out of range 0..7");
    if (line >= kNumIrqLines) p.fail(c.name + ": LINE " + std::to_string(line) + " out of range 0..7");
    c.rid = static_cast<unsigned>(rid);
    c.irq_line = static_cast<unsigned>(line);
    if (timeout_at != 0 && p.args() >= timeout_at) {
        const std::uint64_t ms = p.number(timeout_at, "TIMEOUT_MS");
        if (ms > 3600000) p.fail(c.name + ": TIMEOUT_MS " + std::to_string(ms) + " is over an hour");
        c.ms = static_cast<std::int64_t>(ms);
    }
}

/// Parses the edge and pair commands into `c`; false when the word is none of them.
bool parse_edge_or_pair(const LineParser& p, ScriptCommand& c) {
    using K = ScriptCommand::Kind;
    const std::string_view w = p.word();
    if (w == "irq_count") {
        p.arity(2, 4, "RID LINE [expect N]");
        c.kind = K::IrqCount;
        parse_rid_line(p, c, 0);
        if (p.args() > 2) {
            if (p.args() != 4) p.fail("irq_count takes RID LINE [expect N], got " + std::to_string(p.args()) + " argument(s)");
            p.keyword(3, "expect");
            c.has_expect = true;
            c.expect = le_bytes(p.number(4, "N"), 8);
        }
    } else if (w == "irq_wait_edge") {
        p.arity(3, 4, "RID LINE rising|falling [TIMEOUT_MS]");
        c.kind = K::IrqWaitEdge;
        parse_rid_line(p, c, 4);
        if (p.token(3) != "rising" && p.token(3) != "falling")
            p.fail("irq_wait_edge: edge '" + std::string(p.token(3)) + "' is not rising or falling");
        c.rising = p.token(3) == "rising";
    } else if (w == "irq_clear") {
        p.arity(2, 2, "RID LINE");
        c.kind = K::IrqClear;
        parse_rid_line(p, c, 0);
    } else if (w == "readp" || w == "writep") {
        const bool read = w == "readp";
        p.arity(read ? 2 : 4, read ? 5 : 4, read ? "ADDR SIZE [expect 0xHEX1 0xHEX2]" : "ADDR SIZE 0xHEX1 0xHEX2");
        c.kind = read ? K::ReadPair : K::WritePair;
        c.addr = p.number(1, "ADDR");
        c.size = p.number(2, "SIZE");
        if (c.size == 0 || c.size > kMaxAccessSize / 2)
            p.fail(c.name + ": SIZE " + std::to_string(c.size) + " out of range 1.." + std::to_string(kMaxAccessSize / 2));
        std::vector<std::byte>& into = read ? c.expect : c.data;
        if (read && p.args() > 2) {
            if (p.args() != 5) p.fail("readp takes ADDR SIZE [expect 0xHEX1 0xHEX2], got " + std::to_string(p.args()) + " argument(s)");
            p.keyword(3, "expect");
            c.has_expect = true;
        }
        if (!read || c.has_expect) {
            const std::size_t first = read ? 4 : 3;
            into = p.bytes(first, c.size, "first element");
            const std::vector<std::byte> second = p.bytes(first + 1, c.size, "second element");
            into.insert(into.end(), second.begin(), second.end());
        }
    } else {
        return false;
    }
    return true;
}

/// Fails unless `v` fits in `size` bytes.
void check_fits(const LineParser& p, const ScriptCommand& c, std::uint64_t v, const char* what) {
    if (c.size < 8 && (v >> (8 * c.size)) != 0)
        p.fail(c.name + ": " + what + " " + hex(v) + " does not fit in " + std::to_string(c.size) + " byte(s)");
}

/// The SIZE argument at `i`, checked to be 1..max.
std::uint64_t access_size(const LineParser& p, const ScriptCommand& c, std::size_t i, std::uint64_t max) {
    const std::uint64_t s = p.number(i, "SIZE");
    if (s == 0 || s > max) p.fail(c.name + ": SIZE " + std::to_string(s) + " out of range 1.." + std::to_string(max));
    return s;
}

/// Parses readb..readq and writeb..writeq into `c`; false when the word is none of them.
bool parse_value_access(const LineParser& p, ScriptCommand& c) {
    using K = ScriptCommand::Kind;
    const std::string_view w = p.word();
    if (w.size() == 5 && w.starts_with("read") && width_of(w[4]) != 0) {
        p.arity(1, 3, "ADDR [expect VALUE]");
        c.kind = K::Read;
        c.value_form = true;
        c.size = width_of(w[4]);
        c.addr = p.number(1, "ADDR");
        if (p.args() > 1) {
            if (p.args() != 3) p.fail(c.name + " takes ADDR [expect VALUE], got " + std::to_string(p.args()) + " argument(s)");
            p.keyword(2, "expect");
            const std::uint64_t v = p.number(3, "VALUE");
            check_fits(p, c, v, "expected value");
            c.has_expect = true;
            c.expect = le_bytes(v, c.size);
        }
        return true;
    }
    if (w.size() == 6 && w.starts_with("write") && width_of(w[5]) != 0) {
        p.arity(2, 2, "ADDR VALUE");
        c.kind = K::Write;
        c.value_form = true;
        c.size = width_of(w[5]);
        c.addr = p.number(1, "ADDR");
        const std::uint64_t v = p.number(2, "VALUE");
        check_fits(p, c, v, "value");
        c.data = le_bytes(v, c.size);
        return true;
    }
    return false;
}

/// Parses write, memwrite, read, memread and memset into `c`; false when the word is none of them.
bool parse_block_access(const LineParser& p, ScriptCommand& c) {
    using K = ScriptCommand::Kind;
    const std::string_view w = p.word();
    if (w == "write" || w == "memwrite") {
        p.arity(3, 3, "ADDR SIZE 0xHEX");
        c.kind = w == "write" ? K::Write : K::MemWrite;
        c.addr = p.number(1, "ADDR");
        c.size = access_size(p, c, 2, w == "write" ? kMaxAccessSize : kMaxMemText);
        c.data = p.bytes(3, c.size, "data");
        return true;
    }
    if (w == "read" || w == "memread") {
        p.arity(2, 4, "ADDR SIZE [expect 0xHEX]");
        c.kind = w == "read" ? K::Read : K::MemRead;
        c.addr = p.number(1, "ADDR");
        c.size = access_size(p, c, 2, w == "read" ? kMaxAccessSize : kMaxMemText);
        if (p.args() > 2) {
            if (p.args() != 4) p.fail(c.name + " takes ADDR SIZE [expect 0xHEX], got " + std::to_string(p.args()) + " argument(s)");
            p.keyword(3, "expect");
            c.has_expect = true;
            c.expect = p.bytes(4, c.size, "expected data");
        }
        return true;
    }
    if (w == "memset") {
        p.arity(3, 3, "ADDR SIZE BYTE");
        c.kind = K::MemSet;
        c.addr = p.number(1, "ADDR");
        c.size = access_size(p, c, 2, kMaxMemSet);
        const std::uint64_t b = p.number(3, "BYTE");
        if (b > 0xff) p.fail("memset: BYTE " + hex(b) + " is larger than 0xff");
        c.fill = static_cast<std::uint8_t>(b);
        return true;
    }
    return false;
}

/// irq_wait RID LINE LEVEL [TIMEOUT_MS] into `c`.
void parse_irq_wait(const LineParser& p, ScriptCommand& c) {
    p.arity(3, 4, "RID LINE LEVEL [TIMEOUT_MS]");
    c.kind = ScriptCommand::Kind::IrqWait;
    const std::uint64_t rid = p.number(1, "RID");
    const std::uint64_t irq = p.number(2, "LINE");
    const std::uint64_t level = p.number(3, "LEVEL");
    if (rid >= kNumRanges) p.fail("irq_wait: RID " + std::to_string(rid) + " out of range 0..7");
    if (irq >= kNumIrqLines) p.fail("irq_wait: LINE " + std::to_string(irq) + " out of range 0..7");
    if (level > 1) p.fail("irq_wait: LEVEL " + std::to_string(level) + " is not 0 or 1");
    c.rid = static_cast<unsigned>(rid);
    c.irq_line = static_cast<unsigned>(irq);
    c.level = level == 1;
    if (p.args() == 4) {
        const std::uint64_t ms = p.number(4, "TIMEOUT_MS");
        if (ms > 3600000) p.fail("irq_wait: TIMEOUT_MS " + std::to_string(ms) + " is over an hour");
        c.ms = static_cast<std::int64_t>(ms);
    }
}

/// Parses irq_wait, reset, ping and sleep into `c`; false when the word is none of them.
bool parse_wait_or_control(const LineParser& p, ScriptCommand& c) {
    using K = ScriptCommand::Kind;
    const std::string_view w = p.word();
    if (w == "irq_wait") {
        parse_irq_wait(p, c);
        return true;
    }
    if (w == "reset" || w == "ping") {
        p.arity(0, 0, "no arguments");
        c.kind = w == "reset" ? K::Reset : K::Ping;
        return true;
    }
    if (w == "sleep") {
        p.arity(1, 1, "MS");
        c.kind = K::Sleep;
        const std::uint64_t ms = p.number(1, "MS");
        if (ms > 3600000) p.fail("sleep: " + std::to_string(ms) + " ms is over an hour");
        c.ms = static_cast<std::int64_t>(ms);
        return true;
    }
    return false;
}

ScriptCommand parse_line(const LineParser& p, unsigned line) {
    ScriptCommand c;
    c.line = line;
    c.name = std::string(p.word());
    if (parse_value_access(p, c) || parse_block_access(p, c) || parse_wait_or_control(p, c) || parse_edge_or_pair(p, c))
        return c;
    p.fail("unknown command '" + c.name +
           "' (known: writeb writew writel writeq readb readw readl readq write read memwrite memread memset "
           "readp writep irq_wait irq_count irq_wait_edge irq_clear reset ping sleep)");
}

std::string errno_text(int rc, const Vm& vm) {
    switch (rc) {
    case -EINVAL: return "address/size not inside one configured MMIO range";
    case -ETIMEDOUT: return "no reply within " + std::to_string(vm.config().timeout.count()) + " ms";
    case -ECONNRESET: return "the client disconnected";
    case -ENOTCONN: return "no client connected";
    case -EIO: return "bus error";
    default: return "error " + std::to_string(rc);
    }
}

/// Remembers which ranges a client held during a run, to tell "the device went
/// away" from "nobody ever claimed this" (the VM answers both alike: reads of
/// an unclaimed range return 0xAA bytes, writes are dropped).
class ClaimWatch {
public:
    explicit ClaimWatch(const Vm& vm) : vm_(vm) { lost(); }
    /// A range that was claimed and no longer is, or -1. Also notes new claims.
    int lost() {
        for (unsigned rid = 0; rid < kNumRanges; ++rid) {
            const bool now = vm_.claimed(rid);
            if (held_[rid] && !now) return static_cast<int>(rid);
            held_[rid] = held_[rid] || now;
        }
        return -1;
    }

private:
    const Vm& vm_;
    std::array<bool, kNumRanges> held_{};
};

bool talks_to_device(ScriptCommand::Kind k) {
    using K = ScriptCommand::Kind;
    return k == K::Write || k == K::Read || k == K::ReadPair || k == K::WritePair || k == K::IrqWait ||
           k == K::IrqWaitEdge || k == K::Ping || k == K::Reset;
}

std::string memory_error(Vm& vm, const ScriptCommand& c, const std::string& what) {
    if (!vm.memory().contains(c.addr, c.size))
        return what + " size " + std::to_string(c.size) + ": outside guest memory";
    return what + " size " + std::to_string(c.size) + ": cannot allocate guest memory (" +
           std::to_string(vm.memory().resident() >> 20) + " MiB already in use)";
}

/// Runs an edge command (irq_count, irq_wait_edge, irq_clear); returns its
/// failed expectation, or "".
std::string run_edge_command(Vm& vm, const ScriptCommand& c, std::ostream& out) {
    using K = ScriptCommand::Kind;
    const std::string rid_line = std::to_string(c.rid) + " " + std::to_string(c.irq_line);
    switch (c.kind) {
    case K::IrqCount: {
        const std::uint64_t n = vm.irq_count(c.rid, c.irq_line);
        out << "OK " << n << std::endl;
        if (c.has_expect && n != le_value(c.expect))
            return "irq_count " + rid_line + ": expected " + std::to_string(le_value(c.expect)) +
                   " rising edge(s), got " + std::to_string(n);
        return "";
    }
    case K::IrqWaitEdge: {
        const auto timeout = c.ms >= 0 ? std::chrono::milliseconds(c.ms) : vm.config().timeout;
        const auto edge = c.rising ? Vm::IrqEdge::Rising : Vm::IrqEdge::Falling;
        if (!vm.irq_wait_edge(c.rid, c.irq_line, edge, timeout))
            return "irq_wait_edge " + rid_line + " " + (c.rising ? "rising" : "falling") + ": no such edge within " +
                   std::to_string(timeout.count()) + " ms";
        out << "OK" << std::endl;
        return "";
    }
    case K::IrqClear:
        vm.irq_clear(c.rid, c.irq_line);
        out << "OK" << std::endl;
        return "";
    default: return "";
    }
}

}  // namespace

Script parse_script(std::string_view text, std::string_view name) {
    Script s;
    s.name = std::string(name);
    unsigned line = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view l = text.substr(pos, end - pos);
        pos = end + 1;
        ++line;
        if (const auto hash = l.find('#'); hash != std::string_view::npos) l = l.substr(0, hash);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        auto tokens = tokenize(l);
        if (tokens.empty()) continue;
        s.commands.push_back(parse_line(LineParser(name, line, std::move(tokens)), line));
        if (end == text.size()) break;
    }
    return s;
}

Script load_script(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ScriptError(path + ": cannot open the script file", 0);
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_script(ss.str(), path);
}

namespace {

/// Runs a parsed script's commands in order, one method per kind of step.
/// A step returns false when the script stops there (an ERR line).
class ScriptRunner {
public:
    ScriptRunner(Vm& vm, const Script& script, std::ostream& out)
        : vm_(vm), script_(script), out_(out), claims_(vm) {}

    ScriptResult run() {
        for (const ScriptCommand& c : script_.commands) {
            ++r_.executed;
            if (!step(c)) return r_;
        }
        r_.ok = r_.failures == 0 && r_.error.empty();
        return r_;
    }

private:
    using K = ScriptCommand::Kind;

    std::string where(const ScriptCommand& c) const { return script_.name + ":" + std::to_string(c.line) + ": "; }
    static std::string what(const ScriptCommand& c) { return c.name + " " + hex(c.addr); }

    bool stop(const ScriptCommand& c, const std::string& msg) {
        r_.error = where(c) + msg;
        out_ << "ERR " << r_.error << std::endl;
        return false;
    }
    void failure(const ScriptCommand& c, const std::string& msg) {
        ++r_.failures;
        out_ << "FAIL " << where(c) << msg << std::endl;
    }
    bool ok() {
        out_ << "OK" << std::endl;
        return true;
    }
    bool disconnected(const ScriptCommand& c, int rid) {
        const bool addressed = c.kind == K::Write || c.kind == K::Read || c.kind == K::ReadPair || c.kind == K::WritePair;
        return stop(c, c.name + (addressed ? " " + hex(c.addr) : std::string()) +
                           ": the device disconnected (range " + std::to_string(rid) + " is no longer claimed)");
    }
    /// Read data as the script shows it: both halves of a pair, a value, or hex bytes.
    static std::string shown(const ScriptCommand& c, const std::vector<std::byte>& b) {
        if (c.kind == K::ReadPair)
            return format_hex_bytes(b.data(), c.size) + " " + format_hex_bytes(b.data() + c.size, c.size);
        return c.value_form ? hex64(le_value(b)) : format_hex_bytes(b.data(), b.size());
    }

    bool step(const ScriptCommand& c) {
        if (talks_to_device(c.kind))
            if (const int rid = claims_.lost(); rid >= 0) return disconnected(c, rid);
        switch (c.kind) {
        case K::Write:
        case K::WritePair: return write(c);
        case K::Read:
        case K::ReadPair: return read(c);
        case K::MemWrite:
        case K::MemRead:
        case K::MemSet: return memory(c);
        case K::IrqWait: irq_wait(c); return true;
        case K::Reset:
            vm_.reset();
            return ok();
        case K::Ping:
            if (const int rc = vm_.ping(); rc < 0) return stop(c, "ping: " + errno_text(rc, vm_));
            return ok();
        case K::Sleep:
            std::this_thread::sleep_for(std::chrono::milliseconds(c.ms));
            return ok();
        case K::IrqCount:
        case K::IrqWaitEdge:
        case K::IrqClear:
            if (const std::string f = run_edge_command(vm_, c, out_); !f.empty()) failure(c, f);
            return true;
        }
        return true;
    }

    bool write(const ScriptCommand& c) {
        const auto size = static_cast<unsigned>(c.size);
        const int rc = c.kind == K::WritePair ? vm_.write_pair(c.addr, size, c.data.data(), c.data.data() + size)
                                              : vm_.write(c.addr, size, c.data.data());
        if (rc < 0) return stop(c, what(c) + ": " + errno_text(rc, vm_));
        if (const int rid = claims_.lost(); rid >= 0) return disconnected(c, rid);  // dropped by the VM, not written
        return ok();
    }

    bool read(const ScriptCommand& c) {
        const bool pair = c.kind == K::ReadPair;
        const auto size = static_cast<unsigned>(c.size);
        std::vector<std::byte> got(pair ? 2 * c.size : c.size);
        const int rc = pair ? vm_.read_pair(c.addr, size, got.data(), got.data() + size)
                            : vm_.read(c.addr, size, got.data());
        if (rc == -EIO) {
            failure(c, what(c) + ": bus error");
            return true;
        }
        if (rc < 0) return stop(c, what(c) + ": " + errno_text(rc, vm_));
        if (const int rid = claims_.lost(); rid >= 0) return disconnected(c, rid);  // 0xAA from the VM, not the device
        out_ << "OK " << shown(c, got) << std::endl;
        if (c.has_expect && got != c.expect)
            failure(c, what(c) + ": expected " + shown(c, c.expect) + ", got " + shown(c, got));
        return true;
    }

    /// memwrite, memread and memset: guest memory only, no device.
    bool memory(const ScriptCommand& c) {
        if (c.kind == K::MemWrite) {
            if (!vm_.memory().write(c.addr, c.data)) return stop(c, memory_error(vm_, c, what(c)));
            return ok();
        }
        if (c.kind == K::MemSet) {
            if (!vm_.memory().fill(c.addr, c.size, static_cast<std::byte>(c.fill)))
                return stop(c, memory_error(vm_, c, what(c)));
            return ok();
        }
        std::vector<std::byte> got(c.size);
        if (!vm_.memory().read(c.addr, got))
            return stop(c, what(c) + " size " + std::to_string(c.size) + ": outside guest memory");
        out_ << "OK " << format_hex_bytes(got.data(), got.size()) << std::endl;
        if (c.has_expect && got != c.expect)
            failure(c, what(c) + ": expected " + format_hex_bytes(c.expect.data(), c.expect.size()) + ", got " +
                           format_hex_bytes(got.data(), got.size()));
        return true;
    }

    void irq_wait(const ScriptCommand& c) {
        const auto timeout = c.ms >= 0 ? std::chrono::milliseconds(c.ms) : vm_.config().timeout;
        if (vm_.wait_irq(c.rid, c.irq_line, c.level, timeout))
            out_ << "OK" << std::endl;
        else
            failure(c, "irq_wait " + std::to_string(c.rid) + " " + std::to_string(c.irq_line) + " " +
                           (c.level ? "1" : "0") + ": timed out after " + std::to_string(timeout.count()) +
                           " ms (the line stayed at " + (c.level ? "0" : "1") + ")");
    }

    Vm& vm_;
    const Script& script_;
    std::ostream& out_;
    ScriptResult r_;
    ClaimWatch claims_;
};

}  // namespace

ScriptResult run_script(Vm& vm, const Script& script, std::ostream& out) { return ScriptRunner(vm, script, out).run(); }

}  // namespace coreio::mockvm
