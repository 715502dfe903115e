// `bazel run //sim:chaos -- --scenario=FILE [--nodes=N] [--seed=N]`: a scenario script against
// real amaters-server processes (docs/chaos.md). Exit status 0 when the run passes, 1 when it
// fails, 2 for a usage error or a script with steps real clusters do not support.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "sim/chaos/runner.h"
#include "sim/chaos/soak.h"
#include "sim/chaos/support.h"
#include "sim/scenario.h"

ABSL_FLAG(std::string, scenario, "", "the scenario script to run (sim/scenarios/*.txt)");
ABSL_FLAG(int, nodes, 0, "cluster size, 1..9; 0 keeps the script's `nodes`");
ABSL_FLAG(uint64_t, seed, 0, "the workload's seed; 0 keeps the script's `seed` (default 1)");
ABSL_FLAG(int, clients, 4, "concurrent clients, 1..64");
ABSL_FLAG(int, keys, 0, "keys the clients use, 1..1024; 0: 8, or 64 in soak mode");
ABSL_FLAG(std::string, server_bin, "",
          "amaters-server-chaos to run (default: the one built with this target)");
ABSL_FLAG(std::string, bug, "",
          "plant a server-side bug the run should catch (docs/chaos.md §7): stale_reads");
ABSL_FLAG(std::string, dir, "",
          "the run's directory: node data, configs, logs, history (default: a new directory "
          "under $TMPDIR or /tmp, removed after a passing run)");
ABSL_FLAG(std::string, history, "", "where to write the history (default: DIR/history.jsonl)");
ABSL_FLAG(std::string, trace, "", "write the run's timeline as trace lines to FILE");
ABSL_FLAG(std::string, html, "",
          "draw the run's timeline as one HTML page in FILE (the simulator's --html page)");
ABSL_FLAG(bool, keep, false, "keep the run's directory after a passing run");
ABSL_FLAG(uint64_t, minutes, 0, "soak mode: run this many minutes (instead of --scenario)");
ABSL_FLAG(uint64_t, seconds, 0, "soak mode: run this many seconds (instead of --scenario)");
ABSL_FLAG(bool, random_faults, false,
          "soak mode: a random fault every few seconds from the seed's schedule");
ABSL_FLAG(std::string, export_scenario, "",
          "write the script that ran (in soak mode: the faults with their times) to FILE, for "
          "bazel run //sim -- --scenario=FILE");

namespace {

namespace fs = std::filesystem;
using amaters::sim::chaos::ChaosOptions;

// A path as the user typed it: relative to where `bazel run` was started.
std::string UserPath(const std::string& path) {
  if (path.empty() || path[0] == '/') return path;
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  return wd != nullptr ? absl::StrCat(wd, "/", path) : path;
}

// amaters-server-chaos next to this binary's runfiles (bazel run, bazel test) or in the tree.
std::string DefaultServerBin(const char* argv0) {
  std::vector<std::string> candidates;
  for (const char* var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* d = std::getenv(var)) {
      candidates.push_back(absl::StrCat(d, "/amaters/sim/chaos/amaters-server-chaos"));
    }
  }
  candidates.push_back(absl::StrCat(argv0, ".runfiles/amaters/sim/chaos/amaters-server-chaos"));
  candidates.push_back("sim/chaos/amaters-server-chaos");
  for (const std::string& c : candidates) {
    if (::access(c.c_str(), X_OK) == 0) return c;
  }
  return candidates.back();
}

// Flags are spelled with dashes in the docs (--random-faults, --export-scenario, --server-bin);
// absl's names have underscores. Rewrites "--a-b[=v]" to "--a_b[=v]".
std::vector<char*> Underscored(int argc, char** argv, std::vector<std::string>* storage) {
  storage->reserve(static_cast<size_t>(argc));
  std::vector<char*> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && a.rfind("--", 0) == 0) {
      const size_t end = std::min(a.find('='), a.size());
      for (size_t j = 2; j < end; ++j) {
        if (a[j] == '-') a[j] = '_';
      }
    }
    storage->push_back(std::move(a));
    out.push_back(storage->back().data());
  }
  return out;
}

// The script to run: the file, or in soak mode the schedule (and its text, for export).
absl::StatusOr<amaters::sim::Scenario> ScriptToRun(std::string* text) {
  const uint64_t minutes = std::min<uint64_t>(absl::GetFlag(FLAGS_minutes), 24 * 60 + 1);
  const uint64_t seconds = std::min<uint64_t>(absl::GetFlag(FLAGS_seconds), 24 * 3600 + 1);
  const uint64_t soak_s = minutes * 60 + seconds;  // clamped first: no overflow
  const std::string file = absl::GetFlag(FLAGS_scenario);
  if (soak_s == 0) {
    if (absl::GetFlag(FLAGS_random_faults)) {
      return absl::InvalidArgumentError("--random-faults needs --minutes=N or --seconds=N");
    }
    if (file.empty()) {
      return absl::InvalidArgumentError(
          "--scenario=FILE (or --minutes=N / --seconds=N) is required");
    }
    std::ifstream in(UserPath(file));
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file));
    *text = buffer.str();
    return amaters::sim::ParseScenario(*text, file);
  }
  if (!file.empty()) {
    return absl::InvalidArgumentError("--scenario and --minutes/--seconds exclude each other");
  }
  if (soak_s > 24 * 3600) return absl::InvalidArgumentError("a soak runs at most 24 hours");
  amaters::sim::chaos::SoakOptions o;
  o.nodes = absl::GetFlag(FLAGS_nodes) != 0 ? absl::GetFlag(FLAGS_nodes) : 3;
  o.seed = absl::GetFlag(FLAGS_seed) != 0 ? absl::GetFlag(FLAGS_seed) : 1;
  o.duration_ms = soak_s * 1000;
  o.random_faults = absl::GetFlag(FLAGS_random_faults);
  if (o.nodes < 1 || o.nodes > amaters::sim::kScenarioNodesMax) {
    return absl::InvalidArgumentError("--nodes must be 1..9");
  }
  *text = amaters::sim::chaos::SoakScript(o);
  return amaters::sim::ParseScenario(*text, "soak");
}

int Usage(const std::string& message) {
  std::cerr << "chaos: " << message << "\n"
            << "usage: bazel run //sim:chaos -- --scenario=FILE [--nodes=N] [--seed=N]\n"
               "       bazel run //sim:chaos -- --minutes=N|--seconds=N [--random-faults] "
               "[--export-scenario=FILE]\n"
               "(--helpfull for every flag; docs/chaos.md)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("runs a chaos scenario script against real amaters-server "
                               "processes (docs/chaos.md)");
  std::vector<std::string> storage;
  std::vector<char*> args = Underscored(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const int clients = absl::GetFlag(FLAGS_clients);
  if (clients < 1 || clients > 64) return Usage("--clients must be 1..64");
  const int keys = absl::GetFlag(FLAGS_keys);
  if (keys < 0 || keys > 1024) return Usage("--keys must be 1..1024");
  std::string text;
  absl::StatusOr<amaters::sim::Scenario> scenario = ScriptToRun(&text);
  if (!scenario.ok()) {
    if (scenario.status().code() == absl::StatusCode::kInvalidArgument &&
        scenario.status().message().find(':') == std::string::npos) {
      return Usage(std::string(scenario.status().message()));
    }
    std::cerr << scenario.status().message() << "\n";
    return 2;
  }
  const bool soak = absl::GetFlag(FLAGS_scenario).empty();
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
  options.bug = absl::GetFlag(FLAGS_bug);
  if (!options.bug.empty() && options.bug != "stale_reads") {
    return Usage("--bug must be stale_reads (or empty)");
  }
  options.history_path = UserPath(absl::GetFlag(FLAGS_history));
  options.trace_path = UserPath(absl::GetFlag(FLAGS_trace));
  options.html_path = UserPath(absl::GetFlag(FLAGS_html));
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
  if (!absl::GetFlag(FLAGS_export_scenario).empty()) {
    const std::string out = UserPath(absl::GetFlag(FLAGS_export_scenario));
    std::ofstream f(out, std::ios::trunc);
    f << text;
    f.close();
    if (!f) return Usage(absl::StrCat("cannot write ", out));
    std::cout << "chaos: the script is in " << out << " (bazel run //sim -- --scenario=FILE)\n";
  }
  if (soak) options.progress_every = absl::Seconds(10);
  options.keys = keys != 0 ? keys : (soak ? 64 : 8);
  std::cout << "chaos: " << (soak ? std::string("soak") : absl::GetFlag(FLAGS_scenario)) << " on "
            << scenario->nodes
            << " real nodes, seed " << scenario->seed << ", directory " << options.dir << "\n";
  const amaters::sim::chaos::ChaosResult r =
      amaters::sim::chaos::RunChaos(*scenario, options, std::cout);
  std::cout << r.Report() << "\n";
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
