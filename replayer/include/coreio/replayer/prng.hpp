// The fuzzer's own random numbers: splitmix64 for seeding, xoshiro256** for
// the stream, and its own bounded-integer method. No std:: distribution is
// used anywhere, because their output differs between standard libraries: a
// seed must give the same operations bit for bit on every machine.
#pragma once

#include <cstdint>

namespace coreio::replayer {

/// splitmix64 step: a well-mixed 64-bit value from a counter (seeding, hashing).
constexpr std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/// xoshiro256** (Blackman and Vigna): fast, 256-bit state, seeded through splitmix64.
class Rng {
public:
    /// The stream for `seed`; equal seeds give equal streams everywhere.
    explicit constexpr Rng(std::uint64_t seed) {
        for (auto& w : s_) w = splitmix64(seed);
    }
    /// The stream for (seed, stream): e.g. one independent stream per fuzz exec.
    constexpr Rng(std::uint64_t seed, std::uint64_t stream) : Rng(seed ^ mix(stream)) {}

    /// Next 64 random bits.
    constexpr std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Uniform in [0, n) (n > 0; 0 when n == 0), unbiased: Lemire's
    /// multiply-and-reject on 64 bits, written out so it is the same everywhere.
    constexpr std::uint64_t below(std::uint64_t n) {
        if (n == 0) return 0;
        for (;;) {
            const U128 m = static_cast<U128>(next()) * n;
            const auto low = static_cast<std::uint64_t>(m);
            if (low >= n || low >= (0 - n) % n) return static_cast<std::uint64_t>(m >> 64);
        }
    }
    /// Uniform in [lo, hi] (inclusive; lo <= hi).
    constexpr std::uint64_t between(std::uint64_t lo, std::uint64_t hi) {
        return hi - lo == ~std::uint64_t{0} ? next() : lo + below(hi - lo + 1);
    }
    /// True with probability num/den.
    constexpr bool chance(std::uint64_t num, std::uint64_t den) { return below(den) < num; }

private:
    __extension__ typedef unsigned __int128 U128;  // GCC/Clang 128-bit product, exact everywhere
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static constexpr std::uint64_t mix(std::uint64_t x) {
        std::uint64_t s = x * 0xd1342543de82ef95ull + 1;
        return splitmix64(s);
    }
    std::uint64_t s_[4]{};  // xoshiro256 state
};

}  // namespace coreio::replayer
