// amaters-ctl: runs one parsed command (server/ctl/args.h) against etcd v3 gRPC endpoints with
// the blocking gRPC API, and prints the result (server/ctl/output.h).
//
// Endpoint choice. put, get and del go to the endpoints in order until one answers:
//  - an endpoint whose channel does not become READY within --dial-timeout, or fails to
//    connect, is skipped (the request was never sent);
//  - get (a read) also moves on when the endpoint answers UNAVAILABLE (etcd: no leader, leader
//    changed, shutting down, ...);
//  - put and del do not: once a connected endpoint may have received a write, resending it
//    could apply it twice (clientv3 retries mutations only when no connection was up either).
// Any other status ends the command. status asks every endpoint and reports each.
#ifndef AMATERS_SERVER_CTL_CTL_H_
#define AMATERS_SERVER_CTL_CTL_H_

#include <ostream>
#include <string>
#include <vector>

#include "server/ctl/args.h"

namespace amaters::ctl {

// Runs `invocation`: results go to `out`; on failure one line "amaters-ctl: COMMAND: CODE:
// message" goes to `err`. Returns the exit code (kExitOk, kExitFailure; kHelp prints Usage()).
int Run(const Invocation& invocation, std::ostream& out, std::ostream& err);

// The whole program: parses `args` (without the program name) and runs them. A usage error
// prints one line "amaters-ctl: <problem> (see amaters-ctl --help)" to `err` and returns
// kExitUsage.
int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace amaters::ctl

#endif  // AMATERS_SERVER_CTL_CTL_H_
