// The server process: wiring of configuration, runtime, gRPC ports, admin HTTP, signals and
// the pid file (the commands of amaters-server; server/main.cc parses the command line).
#ifndef AMATERS_SERVER_APP_H_
#define AMATERS_SERVER_APP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "server/config/config.h"

namespace amaters::server {

class TestFaults;

inline constexpr const char* kVersion = "0.1.0";

// Runs the server until SIGTERM/SIGINT; returns the process exit code (0 after a clean
// shutdown; 1 when it could not start or stopped on a storage failure). `sources` are kept for
// SIGHUP, which reloads them.
// `test_faults`: the chaos runner's fault hooks (server/runtime/test_faults.h); amaters-server
// passes null.
int RunServer(const Config& config, const ConfigSources& sources, const std::string& base_dir,
              TestFaults* test_faults = nullptr);
// SIGTERM to the pid in the pid file, then waits for the process to exit.
int StopCommand(const Config& config, const std::string& base_dir);
// Prints GET /status of the running server's admin port.
int StatusCommand(const Config& config, const std::string& base_dir);

// A 64-bit id of the cluster: both ends of every peer link must agree on it.
uint64_t ClusterId(const Config& config);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_APP_H_
