#include "fuzz_corpus.hpp"

#include <bit>

#include "coreio/replayer/prng.hpp"

namespace coreio::replayer {

namespace {

/// Bucket bit of a hit count: 1, 2-3, 4-7, ..., 128 and over.
std::uint8_t bucket(std::uint32_t hits) {
    const int b = std::bit_width(hits) - 1;
    return static_cast<std::uint8_t>(1u << (b > 7 ? 7 : b));
}

}  // namespace

void GuidedCorpus::generate(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, Scenario& out) const {
    // Its own stream, so that the choice does not shift generate_exec's.
    Rng rng(seed ^ 0x9e3779b97f4a7c15ull, exec);
    if (kept_.empty() || rng.chance(1, 4)) {
        generate_exec(config, seed, exec, out);
        return;
    }
    // Mostly from what first reached a point, the newest first: where to go on from.
    std::size_t pick = rng.below(kept_.size());
    const std::size_t k = rng.below(4);
    if (!favoured_.empty() && k < 3) pick = k < 2 ? favoured_.back() : favoured_[rng.below(favoured_.size())];
    mutate_exec(config, seed, exec, kept_[pick], out);
}

bool GuidedCorpus::observe(const Scenario& sc, std::span<const std::uint32_t> before,
                           std::span<const std::uint32_t> after) {
    if (seen_.size() < after.size()) seen_.resize(after.size(), 0);
    const bool has_before = before.size() == after.size();
    bool fresh = false, first_hit = false;
    for (std::size_t i = 0; i < after.size(); ++i) {
        const std::uint32_t hits = after[i] - (has_before ? before[i] : 0);
        if (hits == 0) continue;
        const std::uint8_t b = bucket(hits);
        if ((seen_[i] & b) == 0) {
            first_hit = first_hit || seen_[i] == 0;
            seen_[i] |= b;
            fresh = true;
        }
    }
    if (!fresh) return false;
    if (first_hit) favoured_.push_back(kept_.size());
    kept_.push_back(sc);
    return true;
}

void Guidance::make(const FuzzConfig& config, std::uint64_t seed, std::uint64_t exec, Scenario& sc) {
    if (!on()) return generate_exec(config, seed, exec, sc);
    corpus_.generate(config, seed, exec, sc);
    read_(before_);
}

bool Guidance::ran(const Scenario& sc) {
    if (!on()) return true;
    read_(after_);
    if (after_.empty()) return false;
    corpus_.observe(sc, before_, after_);
    return true;
}

Scenario joined(const Scenario& previous, const Scenario& sc) {
    Scenario out = sc;
    if (previous.steps.empty()) return out;
    out.steps = previous.steps;
    out.steps.insert(out.steps.end(), sc.steps.begin(), sc.steps.end());
    for (std::size_t i = 0; i < out.steps.size(); ++i) out.steps[i].record = i;
    return out;
}

}  // namespace coreio::replayer
