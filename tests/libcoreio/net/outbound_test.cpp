// OutboundQueue and send_from(): order kept across chunks, a full socket
// leaves the rest queued, steady traffic allocates nothing, errors surface.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <vector>

#include "coreio/net/outbound.hpp"
#include "coreio/net/socket.hpp"

using namespace coreio::net;

namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
    return v;
}

std::vector<std::byte> drain(const OutboundQueue& q) {
    std::vector<std::byte> out;
    iovec iov[64];
    const std::size_t n = q.gather(iov, 64);
    for (std::size_t i = 0; i < n; ++i) {
        const auto* p = static_cast<const std::byte*>(iov[i].iov_base);
        out.insert(out.end(), p, p + iov[i].iov_len);
    }
    return out;
}

}  // namespace

TEST(OutboundQueue, KeepsOrderAcrossChunksAndPartialConsumes) {
    OutboundQueue q(100);
    const auto a = pattern(250, 1), b = pattern(30, 2);
    q.append(a);
    q.append(b);
    EXPECT_EQ(q.size(), 280u);
    iovec iov[8];
    EXPECT_EQ(q.gather(iov, 8), 3u);  // 100 + 100 + 80
    EXPECT_EQ(q.gather(iov, 2), 2u);
    std::vector<std::byte> all = a;
    all.insert(all.end(), b.begin(), b.end());
    EXPECT_EQ(drain(q), all);
    q.consume(150);
    EXPECT_EQ(q.size(), 130u);
    EXPECT_EQ(drain(q), std::vector<std::byte>(all.begin() + 150, all.end()));
    q.consume(1000);  // more than queued: everything
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.gather(iov, 8), 0u);
    q.append(b);
    EXPECT_EQ(drain(q), b);
    q.clear();
    EXPECT_TRUE(q.empty());
}

TEST(OutboundQueue, SteadyTrafficReusesItsChunks) {
    OutboundQueue q(4096);
    const auto frame = pattern(64, 3);
    const auto chunks_in_use = [&] {
        std::set<const void*> s;
        iovec iov[64];
        const std::size_t n = q.gather(iov, 64);
        for (std::size_t i = 0; i < n; ++i)
            s.insert(iov[i].iov_base);  // each chunk starts empty: its base is the chunk
        return s;
    };
    // Warm up: a burst of two chunks, drained.
    for (int i = 0; i < 128; ++i) q.append(frame);  // 8 KiB = 2 chunks
    std::set<const void*> warm = chunks_in_use();
    ASSERT_EQ(warm.size(), 2u);
    q.consume(q.size());
    // Steady traffic of the same size only ever uses those two chunks again.
    for (int round = 0; round < 1000; ++round) {
        for (int i = 0; i < 128; ++i) q.append(frame);
        for (const void* p : chunks_in_use()) ASSERT_TRUE(warm.count(p)) << "round " << round;
        q.consume(q.size() - 64);
        q.consume(64);
    }
}

TEST(SendFrom, FullSocketLeavesTheRestQueuedAndOrderIsKept) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    const int small = 4096;
    ::setsockopt(a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    OutboundQueue q(1000);
    const auto data = pattern(1 << 20, 4);
    q.append(data);
    EXPECT_EQ(send_from(a.get(), q), -EAGAIN);  // 1 MiB does not fit a 4 KiB buffer
    EXPECT_GT(q.size(), 0u);
    EXPECT_LT(q.size(), data.size());
    std::vector<std::byte> got;
    std::vector<std::byte> buf(65536);
    for (int i = 0; i < 100000 && got.size() < data.size(); ++i) {
        const ssize_t n = ::recv(b.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) got.insert(got.end(), buf.begin(), buf.begin() + n);
        const int rc = send_from(a.get(), q);
        ASSERT_TRUE(rc == 0 || rc == -EAGAIN) << rc;
        if (n <= 0) {
            pollfd p{b.get(), POLLIN, 0};
            ::poll(&p, 1, 1000);
        }
    }
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(got, data);
}

TEST(SendFrom, EmptySourceSendsNothingAndAClosedPeerIsAnError) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    UniqueFd a(sv[0]), b(sv[1]);
    OutboundQueue q;
    EXPECT_EQ(send_from(a.get(), q), 0);
    b.reset();
    q.append(pattern(64, 5));
    const int rc = send_from(a.get(), q);
    EXPECT_TRUE(rc == -EPIPE || rc == -ECONNRESET) << rc;
}
