#include "coreio/net/pairing.hpp"

#include <algorithm>
#include <deque>

namespace coreio::net {

ConnectionRole role_shown_by(const Frame& f) {
    // Claims, IRQ updates and the VM's MMIO requests (and their replies) only
    // cross a main connection; DMA requests (and the VM's replies) a DMA one.
    switch (exchange_of(f)) {
    case Exchange::Claim:
    case Exchange::Irq:
    case Exchange::Mmio: return ConnectionRole::Main;
    case Exchange::Dma: return ConnectionRole::Dma;
    default: return ConnectionRole::Unknown;
    }
}

void ConnectionPairing::accepted(Key k) { open_.push_back(Open{k, ConnectionRole::Unknown}); }

std::optional<std::size_t> ConnectionPairing::find(Key k) const {
    for (std::size_t i = 0; i < open_.size(); ++i)
        if (open_[i].key == k) return i;
    return std::nullopt;
}

void ConnectionPairing::classify(Key k, ConnectionRole role) {
    if (role == ConnectionRole::Unknown) return;
    if (const auto i = find(k); i && open_[*i].shown == ConnectionRole::Unknown) open_[*i].shown = role;
}

std::vector<ConnectionPairing::Resolved> ConnectionPairing::resolve() const {
    std::vector<Resolved> out(open_.size());
    std::deque<std::size_t> waiting;  // mains without a DMA connection, oldest first
    for (std::size_t i = 0; i < open_.size(); ++i) {
        ConnectionRole r = open_[i].shown;
        if (r == ConnectionRole::Unknown) r = waiting.empty() ? ConnectionRole::Main : ConnectionRole::Dma;
        out[i].role = r;
        if (r == ConnectionRole::Main) {
            waiting.push_back(i);
        } else if (!waiting.empty()) {
            const std::size_t m = waiting.front();
            waiting.pop_front();
            out[i].partner = m;
            out[m].partner = i;
        }
    }
    return out;
}

ConnectionRole ConnectionPairing::role(Key k) const {
    if (const auto it = fixed_.find(k); it != fixed_.end()) return it->second.role;
    const auto i = find(k);
    if (!i) return ConnectionRole::Unknown;
    return resolve()[*i].role;
}

std::optional<ConnectionPairing::Key> ConnectionPairing::pair(Key k) {
    if (const auto it = fixed_.find(k); it != fixed_.end()) return it->second.partner;
    const auto i = find(k);
    if (!i) return std::nullopt;
    const std::vector<Resolved> r = resolve();
    if (!r[*i].partner) return std::nullopt;
    const std::size_t j = *r[*i].partner;
    const Key other = open_[j].key;
    fixed_[k] = Fixed{other, r[*i].role};
    fixed_[other] = Fixed{k, r[j].role};
    open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(std::max(*i, j)));
    open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(std::min(*i, j)));
    return other;
}

std::optional<ConnectionPairing::Key> ConnectionPairing::closed(Key k) {
    if (const auto it = fixed_.find(k); it != fixed_.end()) {
        const Key other = it->second.partner;
        fixed_.erase(it);
        fixed_.erase(other);
        return other;
    }
    const auto i = find(k);
    if (!i) return std::nullopt;
    std::optional<Key> other;
    if (const auto j = resolve()[*i].partner) other = open_[*j].key;
    open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(*i));
    if (other) open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(*find(*other)));
    return other;
}

}  // namespace coreio::net
