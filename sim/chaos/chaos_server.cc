// amaters-server-chaos: amaters-server with the chaos runner's fault hooks (docs/chaos.md §6).
//
//   amaters-server-chaos --chaos-node=N --chaos-faults=FILE [--chaos-bug=stale_reads]
//                        [amaters-server's flags]
//
// The three --chaos-* flags are this binary's; the rest go to amaters-server's command line
// unchanged. The node reads the faults in force from FILE (sim/chaos/fault_state.h), which the
// chaos runner rewrites. --chaos-bug plants a server-side bug the chaos runs must catch. This
// binary is for the chaos runner only: amaters-server has none of it.
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "server/server_main.h"
#include "sim/chaos/file_faults.h"

namespace {

using amaters::sim::chaos::PlantedBug;

struct ChaosFlags {
  int node = 0;
  std::string faults_file;
  PlantedBug bug = PlantedBug::kNone;
};

int Usage(const std::string& why) {
  std::cerr << "amaters-server-chaos: " << why
            << "\nusage: amaters-server-chaos --chaos-node=N --chaos-faults=FILE "
               "[--chaos-bug=stale_reads] [amaters-server flags]\n";
  return 2;
}

// Takes the --chaos-* flags out of argv; the rest stay for amaters-server.
std::optional<std::string> TakeChaosFlags(std::vector<char*>* argv, ChaosFlags* flags) {
  std::vector<char*> rest;
  for (char* a : *argv) {
    const std::string arg = a;
    if (absl::StartsWith(arg, "--chaos-node=")) {
      if (!absl::SimpleAtoi(arg.substr(13), &flags->node) || flags->node < 1) {
        return "--chaos-node must be a node id >= 1";
      }
    } else if (absl::StartsWith(arg, "--chaos-faults=")) {
      flags->faults_file = arg.substr(15);
    } else if (absl::StartsWith(arg, "--chaos-bug=")) {
      if (arg.substr(12) != "stale_reads") return "unknown --chaos-bug (known: stale_reads)";
      flags->bug = PlantedBug::kStaleReads;
    } else if (absl::StartsWith(arg, "--chaos-")) {
      return "unknown flag " + arg;
    } else {
      rest.push_back(a);
    }
  }
  if (flags->node == 0 || flags->faults_file.empty()) {
    return "--chaos-node and --chaos-faults are required";
  }
  *argv = std::move(rest);
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> args(argv, argv + argc);
  ChaosFlags flags;
  if (std::optional<std::string> error = TakeChaosFlags(&args, &flags)) return Usage(*error);
  amaters::sim::chaos::FileFaults faults(flags.node, flags.faults_file, flags.bug);
  args.push_back(nullptr);
  return amaters::server::ServerMain(static_cast<int>(args.size()) - 1, args.data(), &faults);
}
