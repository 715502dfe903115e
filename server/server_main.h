// The amaters-server command line (usage in server/main.cc): parses the command and flags,
// loads the configuration and runs the command. Shared by amaters-server and the chaos
// runner's amaters-server-chaos (sim/chaos/chaos_server.cc), which alone passes fault hooks.
#ifndef AMATERS_SERVER_SERVER_MAIN_H_
#define AMATERS_SERVER_SERVER_MAIN_H_

namespace amaters::server {

class TestFaults;

// The process's exit code. `test_faults` (server/runtime/test_faults.h) may be null.
int ServerMain(int argc, char** argv, TestFaults* test_faults);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVER_MAIN_H_
