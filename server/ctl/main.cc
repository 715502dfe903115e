// amaters-ctl: an etcd v3 gRPC client for amaters-server (usage: amaters-ctl --help).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "grpc/support/log.h"
#include "server/ctl/ctl.h"

namespace {

// gRPC's own log lines would break the one-line error contract; GRPC_VERBOSITY=... brings
// them back for debugging.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("GRPC_VERBOSITY") == nullptr) gpr_set_log_function(DropGrpcLog);
  std::vector<std::string> args(argv + 1, argv + argc);
  const int code = amaters::ctl::Main(args, std::cout, std::cerr);
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "amaters-ctl: cannot write the output\n";
    return amaters::ctl::kExitFailure;
  }
  return code;
}
