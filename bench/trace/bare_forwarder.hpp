// The floor of any recording proxy: a forwarder written straight on POSIX
// sockets that moves bytes between device models and a VM and records
// nothing. One thread, one epoll set; what one recv returns goes out in one
// send. A connection accepted from a device model gets its own connection
// to the VM, opened before the next accept, so the VM pairs main and DMA
// connections as it would without the forwarder.
//
// The trace bench runs the same workloads through it: proxy / forwarder shows
// what recording costs a proxy, forwarder / direct what the extra hop costs
// any separate process, recording or not.
#pragma once

#include <cstdint>
#include <thread>
#include <vector>

namespace coreio::bench {

class BareForwarder {
public:
    /// Listens on 127.0.0.1 (any free port) and forwards every connection to
    /// 127.0.0.1:vm_port. Throws std::runtime_error on failure.
    explicit BareForwarder(std::uint16_t vm_port);
    /// Stops the thread and closes every connection.
    ~BareForwarder();
    BareForwarder(const BareForwarder&) = delete;
    BareForwarder& operator=(const BareForwarder&) = delete;

    /// The port device models connect to.
    std::uint16_t port() const { return port_; }

private:
    void run();
    void accept_one();
    void watch(int fd);  // adds fd to the epoll set, for reading
    bool forward(int from, int to);

    std::uint16_t vm_port_;
    std::uint16_t port_ = 0;
    int listen_fd_ = -1;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;             // eventfd: the destructor's stop
    std::vector<int> peer_;        // peer_[fd]: the fd its bytes go to (-1: none)
    std::vector<char> buf_;        // one recv's bytes
    std::thread thread_;
};

}  // namespace coreio::bench
