// `bazel run //sim:chaos -- --scenario=FILE [--nodes=N] [--seed=N]`: a scenario script against
// real amaters-server processes (docs/chaos.md). Exit status 0 when the run passes, 1 when it
// fails, 2 for a usage error or a script with steps real clusters do not support.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "sim/chaos/runner.h"
#include "sim/chaos/support.h"
#include "sim/scenario.h"

ABSL_FLAG(std::string, scenario, "", "the scenario script to run (sim/scenarios/*.txt)");
ABSL_FLAG(int, nodes, 0, "cluster size, 1..9; 0 keeps the script's `nodes`");
ABSL_FLAG(uint64_t, seed, 0, "the workload's seed; 0 keeps the script's `seed` (default 1)");
ABSL_FLAG(int, clients, 4, "concurrent clients, 1..64");
ABSL_FLAG(std::string, server_bin, "",
          "amaters-server to run (default: the one built with this target)");
ABSL_FLAG(std::string, dir, "",
          "the run's directory: node data, configs, logs, history (default: a new directory "
          "under $TMPDIR or /tmp, removed after a passing run)");
ABSL_FLAG(std::string, history, "", "where to write the history (default: DIR/history.jsonl)");
ABSL_FLAG(bool, keep, false, "keep the run's directory after a passing run");

namespace {

namespace fs = std::filesystem;
using amaters::sim::chaos::ChaosOptions;

// A path as the user typed it: relative to where `bazel run` was started.
std::string UserPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  return wd != nullptr ? absl::StrCat(wd, "/", path) : path;
}

// amaters-server next to this binary's runfiles (bazel run, bazel test) or in the tree.
std::string DefaultServerBin(const char* argv0) {
  std::vector<std::string> candidates;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* d = std::getenv(var)) {
      candidates.push_back(absl::StrCat(d, "/amaters/server/amaters-server"));
    }
  }
  candidates.push_back(absl::StrCat(argv0, ".runfiles/amaters/server/amaters-server"));
  candidates.push_back("server/amaters-server");
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return candidates.back();
}

int Usage(const std::string& message) {
  std::cerr << "chaos: " << message << "\n"
            << "usage: bazel run //sim:chaos -- --scenario=FILE [--nodes=N] [--seed=N] "
               "(--helpfull for every flag; docs/chaos.md)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("runs a chaos scenario script against real amaters-server "
                               "processes (docs/chaos.md)");
  absl::ParseCommandLine(argc, argv);
  const std::string path = UserPath(absl::GetFlag(FLAGS_scenario));
  if (path.empty()) return Usage("--scenario=FILE is required");
  const int clients = absl::GetFlag(FLAGS_clients);
  if (clients < 1 || clients > 64) return Usage("--clients must be 1..64");
  absl::StatusOr<amaters::sim::Scenario> scenario =
      amaters::sim::LoadScenario(path, absl::GetFlag(FLAGS_scenario));
  if (!scenario.ok()) {
    std::cerr << scenario.status().message() << "\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_nodes) != 0) scenario->nodes = absl::GetFlag(FLAGS_nodes);
  if (absl::GetFlag(FLAGS_seed) != 0) scenario->seed = absl::GetFlag(FLAGS_seed);
  if (scenario->nodes < 1 || scenario->nodes > amaters::sim::kScenarioNodesMax) {
    return Usage("--nodes must be 1..9");
  }
  if (absl::Status s = amaters::sim::chaos::CheckRealClusterSupport(*scenario); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  ChaosOptions options;
  options.server_bin = absl::GetFlag(FLAGS_server_bin).empty()
                           ? DefaultServerBin(argv[0])
                           : UserPath(absl::GetFlag(FLAGS_server_bin));
  options.history_path = UserPath(absl::GetFlag(FLAGS_history));
  options.clients = clients;
  bool made_dir = false;
  options.dir = UserPath(absl::GetFlag(FLAGS_dir));
  if (options.dir.empty()) {
    const char* tmp = std::getenv("TEST_TMPDIR");
    if (tmp == nullptr) tmp = std::getenv("TMPDIR");
    std::string tmpl = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/amaters-chaos-XXXXXX");
    if (::mkdtemp(tmpl.data()) == nullptr) return Usage("cannot create a directory under /tmp");
    options.dir = tmpl;
    made_dir = true;
  } else {
    std::error_code ec;
    fs::create_directories(options.dir, ec);
    if (ec) return Usage(absl::StrCat("cannot create ", options.dir, ": ", ec.message()));
  }
  std::cout << "chaos: " << absl::GetFlag(FLAGS_scenario) << " on " << scenario->nodes
            << " real nodes, seed " << scenario->seed << ", directory " << options.dir << "\n";
  const amaters::sim::chaos::ChaosResult r =
      amaters::sim::chaos::RunChaos(*scenario, options, std::cout);
  if (!r.pass) std::cout << "chaos: failed: " << r.failure << "\n";
  if (r.pass && made_dir && !absl::GetFlag(FLAGS_keep)) {
    std::error_code ec;
    fs::remove_all(options.dir, ec);
  } else {
    std::cout << "chaos: kept " << options.dir << " (node logs: node*/amaters-server.log)\n";
  }
  std::cout << r.Summary() << std::endl;
  return r.pass ? 0 : 1;
}
