#include "device_main.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "coreio/net/host_port.hpp"

namespace coreio::examples {

int device_main(int argc, char** argv, const char* name,
                replayer::DeviceFactory (*make)(unsigned rid, bool seeded_bug)) {
    CLI::App app{std::string(name) + ": example CoreIO device model"};
    std::string target;
    unsigned rid = 0;
    bool bug = false;
    app.add_option("target", target,
                   "VM to connect to, HOST[:PORT] (default: $COREHDL_VM, else 127.0.0.1; port " +
                       std::to_string(net::kDefaultPort) + " when not given)");
    app.add_option("--rid", rid, "range id to claim")->check(CLI::Range(0u, 7u));
    app.add_flag("--seeded-bug", bug, "enable the model's seeded bug");
    CLI11_PARSE(app, argc, argv);
    if (target.empty()) {
        const char* env = std::getenv("COREHDL_VM");
        target = env != nullptr && *env != '\0' ? env : "127.0.0.1";  // the library adds the default port
    }

    Client client;
    if (const int rc = client.connect(target); rc != 0) {
        std::fprintf(stderr, "%s: cannot connect to %s: %s\n", name, target.c_str(), std::strerror(-rc));
        return 1;
    }
    replayer::ClientHost host(client);
    auto device = make(rid, bug)(host);
    for (const auto& r : device->ranges()) {
        if (const int rc = client.register_range(r.rid, *r.handler); rc != 0) {
            std::fprintf(stderr, "%s: cannot claim range %u: %s\n", name, r.rid, std::strerror(-rc));
            return 1;
        }
    }
    const int rc = client.run_for(-1);  // until the VM closes the connection
    return rc == -ECONNRESET || rc == 0 ? 0 : 1;
}

}  // namespace coreio::examples
