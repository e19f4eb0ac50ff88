// Which accepted connections belong together: a VM-side end (VM, replayer,
// proxy) gets two TCP connections per client and no handshake, only the
// order of accepts (PROTOCOL.md: a client opens main, then DMA).
//
// The rule, written once here:
//  - A connection's role is what its traffic shows (role_shown_by(): CLAIM,
//    IRQ_UPDATE and MMIO only cross a main connection, DMA requests and their
//    replies only a DMA connection). Until it shows one, its role follows the
//    accept order: it is a DMA connection when a main connection accepted
//    before it still waits for one, else a main connection.
//  - Pending mains are paired FIFO with DMA connections: walking the accepts
//    in order, each DMA connection takes the oldest main still without one.
//  - pair() fixes a pair for good; an owner asks once it needs the answer
//    (e.g. at a connection's first frame), so roles shown later can still
//    correct a provisional pairing until then.
//
// Interleaved connects (device A main, B main, A DMA, B DMA) therefore pair
// A with A and B with B as soon as B's main shows itself (its claim), even if
// B uses DMA first. What no rule can untangle without a handshake is a
// reversed order (A main, B main, B DMA, A DMA): A's main gets B's DMA
// connection. Connections that never show a role keep the plain accept-order
// pairing (first main, second DMA).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "coreio/frame.hpp"

namespace coreio::net {

enum class ConnectionRole : std::uint8_t { Unknown, Main, Dma };

/// The role of the connection `frame` crossed (in either direction), as far
/// as the frame shows it; Unknown for PING and RESET (either connection) and
/// for frames no end sends.
ConnectionRole role_shown_by(const Frame& frame);

class ConnectionPairing {
public:
    using Key = std::uint64_t;  ///< the owner's name for a connection

    /// A connection was accepted (call in accept order; keys unique among live ones).
    void accepted(Key k);
    /// Its traffic showed `role` (Unknown is ignored; so is a role for a
    /// connection already paired or already known).
    void classify(Key k, ConnectionRole role);
    /// Its role now: shown, else inferred from the accept order; Unknown for
    /// a key not accepted (or closed).
    ConnectionRole role(Key k) const;
    /// Its partner, fixing the pair; nullopt while it has none (a main whose
    /// DMA connection has not arrived) or for an unknown key.
    std::optional<Key> pair(Key k);
    /// It closed: forgets it and its partner (fixed or provisional), and
    /// returns that partner (the owner closes it: a client is dropped when
    /// either of its connections closes).
    std::optional<Key> closed(Key k);
    /// Connections known (accepted and not closed).
    std::size_t size() const { return open_.size() + fixed_.size(); }

private:
    struct Open {
        Key key;
        ConnectionRole shown = ConnectionRole::Unknown;
    };
    struct Fixed {
        Key partner;
        ConnectionRole role;
    };
    struct Resolved {
        ConnectionRole role = ConnectionRole::Unknown;
        std::optional<std::size_t> partner;  // index into open_
    };
    /// Runs the FIFO over the connections not fixed yet; entry i describes open_[i].
    std::vector<Resolved> resolve() const;
    std::optional<std::size_t> find(Key k) const;

    std::vector<Open> open_;                    // not paired for good, in accept order
    std::unordered_map<Key, Fixed> fixed_;      // paired for good
};

}  // namespace coreio::net
