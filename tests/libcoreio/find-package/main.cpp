// Uses the C++ API from an installed libcoreio.
#include <coreio/client.hpp>
#include <coreio/client_session.hpp>

#include <cerrno>
#include <cstdio>

int main() {
    coreio::Client c;
    coreio::ClientSession s;
    const bool ok = c.connect("") == -EINVAL && s.irq_update(9, 0, true) == -EINVAL &&
                    coreio::describe_error(coreio::FrameError::Truncated, coreio::Frame{}) == "stream ended inside a frame";
    std::puts(ok ? "consumer: ok" : "consumer: FAILED");
    return ok ? 0 : 1;
}
