// ConnectionPairing: the accept-order rule, roles shown by traffic, and two
// devices whose connects interleave (in memory and over real TCP).
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>

#include <map>

#include "coreio/frame.hpp"
#include "coreio/net/listener.hpp"
#include "coreio/net/pairing.hpp"
#include "coreio/net/socket.hpp"

using namespace coreio;
using namespace coreio::net;
using Role = ConnectionRole;

namespace {
Frame dma_request() {
    Frame f = Frame::mmio_request(Op::Read, 0, 0x80000000, 8, 0, 0);
    f.set_from_client(true);
    return f;
}
}  // namespace

TEST(RoleShownBy, ClientAndVmFramesOfEachConnection) {
    EXPECT_EQ(role_shown_by(Frame::claim(3)), Role::Main);
    EXPECT_EQ(role_shown_by(Frame::irq_update(0, 1, 1)), Role::Main);
    EXPECT_EQ(role_shown_by(Frame::mmio_request(Op::Read, 0, 0x1000, 4, 0, 1)), Role::Main);
    EXPECT_EQ(role_shown_by(Frame::mmio_request(Op::WriteAckPair, 0, 0x1000, 4, 0, 1)), Role::Main);
    EXPECT_EQ(role_shown_by(dma_request()), Role::Dma);
    EXPECT_EQ(role_shown_by(Frame::ping(false)), Role::Unknown);
    EXPECT_EQ(role_shown_by(Frame::reset()), Role::Unknown);
}

TEST(ConnectionPairing, SilentConnectionsPairInAcceptOrder) {
    ConnectionPairing p;
    for (ConnectionPairing::Key k = 1; k <= 5; ++k) p.accepted(k);
    EXPECT_EQ(p.role(1), Role::Main);
    EXPECT_EQ(p.role(2), Role::Dma);
    EXPECT_EQ(p.role(5), Role::Main);
    EXPECT_EQ(p.pair(2), 1u);
    EXPECT_EQ(p.pair(1), 2u);
    EXPECT_EQ(p.pair(3), 4u);
    EXPECT_EQ(p.pair(5), std::nullopt);  // its DMA connection has not arrived
    p.accepted(6);
    EXPECT_EQ(p.pair(5), 6u);
    EXPECT_EQ(p.size(), 6u);
}

TEST(ConnectionPairing, InterleavedConnectsOfTwoDevices) {
    // A main (1), B main (2), A DMA (3), B DMA (4); both claim, then B uses DMA first.
    ConnectionPairing p;
    for (ConnectionPairing::Key k = 1; k <= 4; ++k) p.accepted(k);
    p.classify(1, role_shown_by(Frame::claim(0)));
    p.classify(2, role_shown_by(Frame::claim(1)));
    EXPECT_EQ(p.role(2), Role::Main);
    EXPECT_EQ(p.role(3), Role::Dma);
    p.classify(4, role_shown_by(dma_request()));
    EXPECT_EQ(p.pair(4), 2u);
    EXPECT_EQ(p.pair(3), 1u);
    EXPECT_EQ(p.pair(1), 3u);
    EXPECT_EQ(p.pair(2), 4u);
}

TEST(ConnectionPairing, ADeviceThatNeverUsesDmaDoesNotStealTheNextOnesConnection) {
    // A main (1, claims), A DMA (2, silent), C main (3, claims), C DMA (4, DMA).
    ConnectionPairing p;
    for (ConnectionPairing::Key k = 1; k <= 4; ++k) p.accepted(k);
    p.classify(1, Role::Main);
    p.classify(3, Role::Main);
    p.classify(4, Role::Dma);
    EXPECT_EQ(p.pair(4), 3u);
    EXPECT_EQ(p.pair(1), 2u);
}

TEST(ConnectionPairing, PairsAreFixedOnceAsked) {
    ConnectionPairing p;
    p.accepted(1);
    p.accepted(2);
    EXPECT_EQ(p.pair(1), 2u);
    p.classify(2, Role::Main);  // too late: 2 is already 1's DMA connection
    EXPECT_EQ(p.role(2), Role::Dma);
    EXPECT_EQ(p.pair(2), 1u);
}

TEST(ConnectionPairing, ClosingForgetsTheConnectionAndItsPartner) {
    ConnectionPairing p;
    for (ConnectionPairing::Key k = 1; k <= 5; ++k) p.accepted(k);
    EXPECT_EQ(p.pair(1), 2u);
    EXPECT_EQ(p.closed(2), 1u);  // fixed partner
    EXPECT_EQ(p.closed(1), std::nullopt);
    EXPECT_EQ(p.closed(3), 4u);  // provisional partner
    EXPECT_EQ(p.role(4), Role::Unknown);
    EXPECT_EQ(p.role(5), Role::Main);  // 5 starts over as a main
    EXPECT_EQ(p.closed(5), std::nullopt);
    EXPECT_EQ(p.closed(42), std::nullopt);
    EXPECT_EQ(p.size(), 0u);
}

// Two devices connect over TCP with their connects interleaved; a VM-side loop
// built from the kit (Listener + role_shown_by + ConnectionPairing) pairs each
// device's DMA connection with its own main connection.
TEST(ConnectionPairing, InterleavedTwoDeviceConnectOverTcp) {
    Listener l;
    ASSERT_EQ(l.open(HostPort{"127.0.0.1", 0}), 0);
    const HostPort vm{"127.0.0.1", l.port()};
    ConnectionPairing pairing;
    std::map<ConnectionPairing::Key, UniqueFd> server;  // key = accept order
    ConnectionPairing::Key next = 1;
    const auto accept_next = [&] {
        for (int i = 0; i < 500; ++i) {
            const int fd = l.accept();
            if (fd >= 0) {
                pairing.accepted(next);
                server.emplace(next++, UniqueFd(fd));
                return true;
            }
            pollfd p{l.fd(), POLLIN, 0};
            ::poll(&p, 1, 10);
        }
        return false;
    };
    // Each connect is accepted before the next one starts, so the accept order is the one written here.
    UniqueFd a_main(connect_tcp(vm));
    ASSERT_TRUE(accept_next());
    UniqueFd b_main(connect_tcp(vm));
    ASSERT_TRUE(accept_next());
    UniqueFd a_dma(connect_tcp(vm));
    ASSERT_TRUE(accept_next());
    UniqueFd b_dma(connect_tcp(vm));
    ASSERT_TRUE(accept_next());
    // Each device claims its range; B then starts a DMA before A does.
    const auto send = [](const UniqueFd& fd, const Frame& f) {
        return ::send(fd.get(), f.data(), kBlockSize, MSG_NOSIGNAL) == static_cast<ssize_t>(kBlockSize);
    };
    ASSERT_TRUE(send(a_main, Frame::claim(0)));
    ASSERT_TRUE(send(b_main, Frame::claim(1)));
    ASSERT_TRUE(send(b_dma, dma_request()));
    ASSERT_TRUE(send(a_dma, dma_request()));
    // The VM side reads each connection's first frame and classifies it, in arrival order per connection.
    for (auto& [key, fd] : server) {
        Frame f;
        std::size_t have = 0;
        while (have < kBlockSize) {
            pollfd p{fd.get(), POLLIN, 0};
            ASSERT_EQ(::poll(&p, 1, 5000), 1);
            const ssize_t n = ::recv(fd.get(), f.data() + have, kBlockSize - have, 0);
            ASSERT_GT(n, 0);
            have += static_cast<std::size_t>(n);
        }
        pairing.classify(key, role_shown_by(f));
    }
    // B's DMA connection (accepted 4th) is asked first, as a VM would when its DMA request arrives.
    EXPECT_EQ(pairing.pair(4), 2u);
    EXPECT_EQ(pairing.pair(3), 1u);
    EXPECT_EQ(pairing.role(1), Role::Main);
    EXPECT_EQ(pairing.role(4), Role::Dma);
}
