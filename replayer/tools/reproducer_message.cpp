#include "reproducer_message.hpp"

#include <sstream>

#include "coreio/replayer/process.hpp"

namespace coreio::replayer {

namespace {

ReplayOptions findings_options(const Scenario& sc, const Assertions& assertions, std::chrono::milliseconds timeout) {
    ReplayOptions o;
    o.check = CheckMode::Findings;
    o.assertions = reproducer_assertions(sc, assertions);
    o.timeout = timeout;
    return o;
}

// Divergence <-> one line, to bring it back from a child process.
constexpr char kSep = '\x1f';
std::string encode(const Divergence& d) {
    std::ostringstream s;
    s << static_cast<int>(d.kind) << kSep << d.record << kSep << d.step << kSep << d.field << kSep << d.expected << kSep
      << d.got << kSep << d.context;
    return s.str();
}
bool decode(const std::string& line, Divergence& d) {
    std::istringstream s(line);
    std::string part[7];
    for (auto& p : part)
        if (!std::getline(s, p, kSep)) return false;
    try {
        d.kind = static_cast<DivergenceKind>(std::stoi(part[0]));
        d.record = std::stoull(part[1]);
        d.step = std::stoull(part[2]);
    } catch (const std::exception&) {
        return false;
    }
    d.field = part[3], d.expected = part[4], d.got = part[5], d.context = part[6];
    return true;
}

// Takes `shown` as the finding's divergence when it is the same finding; rewrites the reproducer.
std::string adopt(Finding& f, const Divergence& shown, std::uint64_t seed, const Assertions& assertions) {
    if (shown.signature() != f.signature) return "";
    f.divergence = shown;
    return write_reproducer(f.reproducer, f, seed, assertions);
}

}  // namespace

std::string describe_minimised_in_process(Finding& f, const DeviceFactory& factory, std::uint64_t seed,
                                          const Assertions& assertions, std::chrono::milliseconds timeout) {
    Scenario sc;
    if (f.reproducer.empty() || !load_scenario(f.reproducer, sc).empty()) return "";
    const IsolatedResult r = run_isolated(
        [&] {
            const ReplayReport rep = replay_in_process(sc, factory, findings_options(sc, assertions, timeout));
            return rep.divergences.empty() ? std::string() : encode(rep.divergences[0]);
        },
        timeout);
    Divergence d;
    if (r.end != IsolatedResult::End::Returned || !decode(r.output, d)) return "";  // crash/hang: as found
    return adopt(f, d, seed, assertions);
}

std::string describe_minimised_tcp(Finding& f, const std::string& command, std::uint64_t seed,
                                   const Assertions& assertions, std::chrono::milliseconds timeout) {
    Scenario sc;
    if (f.reproducer.empty() || !load_scenario(f.reproducer, sc).empty()) return "";
    Player player(findings_options(sc, assertions, timeout), sc.ranges, sc.memory);
    TcpLink link(player, {});
    DeviceProcess device;
    if (device.start(command, "127.0.0.1:" + std::to_string(link.port())) != 0 || link.accept(timeout, device.ended_fd()) != 0) return "";
    const ReplayReport rep = player.run(sc, link);
    if (rep.divergences.empty() || rep.divergences[0].kind == DivergenceKind::Hang ||
        rep.divergences[0].kind == DivergenceKind::Crash)
        return "";  // as found
    return adopt(f, rep.divergences[0], seed, assertions);
}

}  // namespace coreio::replayer
