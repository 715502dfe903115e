// amaters simulator: `bazel run //sim -- --seed=N` (docs/simulation.md).
//
//   --seed=N            one seed
//   --seeds=A..B        seeds A to B inclusive, with a progress line
//   --scenario=FILE     run a chaos scenario script (sim/scenarios/README.md)
//   --bug=NAME          switch on a planted bug (--list-bugs prints them)
//   --trace=FILE        write the readable event log of a single seed
//   --safety_ms / --liveness_ms   phase lengths (defaults 30000 / 30000)
//   --jobs=N            run the seeds on N threads (same output, summary and trace hash)
//
// The last line is always the summary:
//   result: pass seeds=200 failed=0 sim_seconds=12000.0 wall_seconds=7.9 trace_hash=9f3c...
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sim/scenario.h"
#include "sim/html.h"
#include "sim/sim.h"

ABSL_FLAG(std::string, seed, "", "run one seed");
ABSL_FLAG(std::string, seeds, "", "run a range of seeds, A..B inclusive");
ABSL_FLAG(std::string, scenario, "", "run a chaos scenario script (sim/scenarios/README.md)");
ABSL_FLAG(std::string, bug, "", "switch on a planted bug (see --list-bugs)");
ABSL_FLAG(bool, list_bugs, false, "print the planted bugs, one a line, and exit");
ABSL_FLAG(std::string, trace, "", "write the readable event log of a single seed to FILE");
ABSL_FLAG(std::string, html, "",
          "write a self-contained HTML timeline of a single seed or scenario to FILE");
ABSL_FLAG(uint64_t, safety_ms, 30000, "length of the safety phase (faults on), virtual ms");
ABSL_FLAG(uint64_t, liveness_ms, 30000, "bound for recovery after healing, virtual ms");
ABSL_FLAG(int, nodes, 0, "cluster size (3 or 5); 0 lets each seed choose (swarm)");
ABSL_FLAG(uint64_t, fault_interval_ms, 0, "mean time between faults; 0 lets each seed choose");
ABSL_FLAG(int, jobs, 1,
          "run the seeds on N threads; the output, summary and trace hash are those of one");

namespace {

using amaters::sim::RunResult;
using amaters::sim::SimConfig;

std::string Hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Resolves a user-given path against the directory `bazel run` was started in.
std::string UserPath(const std::string& path) {
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || wd == nullptr) return path;
  return absl::StrCat(wd, "/", path);
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "sim: %s\nusage: bazel run //sim -- --seed=N | --seeds=A..B [--bug=NAME] "
               "[--trace=FILE] [--html=FILE] | --scenario=FILE [--bug=NAME] [--trace=FILE] [--html=FILE] "
               "| --list-bugs\n",
               why.c_str());
  return 2;
}

// Writes the readable trace (--trace) and the HTML timeline (--html) of one run.
void WriteTraceOutputs(const std::vector<std::string>& trace, const std::string& title) {
  const std::string trace_file = absl::GetFlag(FLAGS_trace);
  if (!trace_file.empty()) {
    std::ofstream out(UserPath(trace_file));
    for (const std::string& line : trace) out << line << "\n";
    if (!out) std::fprintf(stderr, "sim: cannot write %s\n", trace_file.c_str());
  }
  const std::string html_file = absl::GetFlag(FLAGS_html);
  if (!html_file.empty()) {
    std::ofstream out(UserPath(html_file));
    out << amaters::sim::RenderHtml(trace, title);
    if (!out) std::fprintf(stderr, "sim: cannot write %s\n", html_file.c_str());
  }
}

bool WantTrace() { return !absl::GetFlag(FLAGS_trace).empty() || !absl::GetFlag(FLAGS_html).empty(); }

// --scenario=FILE: one script, its steps, then the usual summary line (seeds=1).
int RunScenarioFile(const std::string& file, const std::string& bug) {
  absl::StatusOr<amaters::sim::Scenario> scenario =
      amaters::sim::LoadScenario(UserPath(file), file);
  if (!scenario.ok()) {
    std::fprintf(stderr, "sim: %s\n", std::string(scenario.status().message()).c_str());
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  amaters::sim::ScenarioRunOptions options;
  options.keep_trace = WantTrace();
  options.bug = bug;
  amaters::sim::ScenarioResult r = amaters::sim::RunScenario(*scenario, options);
  for (const std::string& step : r.steps) std::printf("%s\n", step.c_str());
  WriteTraceOutputs(r.trace, absl::StrCat("scenario ", file, bug.empty() ? "" : " --bug=" + bug));
  const uint64_t seed = amaters::sim::ScenarioConfig(*scenario).seed;
  if (!r.ok) {
    std::printf("scenario %s FAILED: %s\n  replay: bazel run //sim -- --scenario=%s%s\n",
                file.c_str(), r.failure.c_str(), file.c_str(),
                bug.empty() ? "" : absl::StrCat(" --bug=", bug).c_str());
  } else {
    std::printf("scenario %s ok: ops ok=%llu failed=%llu unknown=%llu leader_changes=%llu "
                "crashes=%llu commit=%llu messages=%llu\n",
                file.c_str(), static_cast<unsigned long long>(r.stats.ops_ok),
                static_cast<unsigned long long>(r.stats.ops_failed),
                static_cast<unsigned long long>(r.stats.ops_unknown),
                static_cast<unsigned long long>(r.stats.leader_changes),
                static_cast<unsigned long long>(r.stats.crashes),
                static_cast<unsigned long long>(r.stats.commits),
                static_cast<unsigned long long>(r.stats.messages));
  }
  const uint64_t hash = (1469598103934665603ull ^ r.trace_hash) * 1099511628211ull;
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("result: %s seeds=1 failed=%d%s sim_seconds=%.1f wall_seconds=%.1f "
              "trace_hash=%s\n",
              r.ok ? "pass" : "fail", r.ok ? 0 : 1,
              r.ok ? "" : absl::StrCat(" failed_seeds=", seed).c_str(), r.sim_seconds, wall,
              Hex(hash).c_str());
  return r.ok ? 0 : 1;
}

// The configuration of seed `s`: drawn from the seed, then the command line's overrides.
SimConfig SeedConfig(uint64_t s, const std::string& bug) {
  SimConfig config = amaters::sim::DrawConfig(s);
  config.bug = bug;
  config.safety_ms = absl::GetFlag(FLAGS_safety_ms);
  config.liveness_ms = absl::GetFlag(FLAGS_liveness_ms);
  if (absl::GetFlag(FLAGS_nodes) != 0) {
    config.nodes = absl::GetFlag(FLAGS_nodes);
    // Spare nodes for membership changes only if some remain outside the first voters.
    if (config.initial_voters >= config.nodes) {
      config.initial_voters = 0;
      config.reconfig = false;
    }
  }
  if (absl::GetFlag(FLAGS_fault_interval_ms) != 0) {
    config.fault_interval_ms = absl::GetFlag(FLAGS_fault_interval_ms);
  }
  return config;
}

struct SeedOutcome {
  SimConfig config;
  RunResult result;
};

// Runs seeds first..last on `jobs` threads and hands each outcome to `consume` on the calling
// thread, in seed order, as soon as it and every seed before it are done. Seeds are independent
// (each owns its simulation; the check-failure hook is per thread), so the outcomes are those
// of a sequential run. Workers run at most `jobs * 16` seeds ahead of the consumer.
void RunSeeds(uint64_t first, uint64_t last, int jobs, const std::string& bug,
              const std::function<void(uint64_t, SeedOutcome&)>& consume) {
  auto run = [&bug](uint64_t s) {
    SeedOutcome o{SeedConfig(s, bug), {}};
    o.result = amaters::sim::RunSeed(o.config, WantTrace());
    return o;
  };
  if (jobs <= 1) {
    for (uint64_t s = first; s <= last; ++s) {
      SeedOutcome o = run(s);
      consume(s, o);
    }
    return;
  }
  const uint64_t window = static_cast<uint64_t>(jobs) * 16;
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, SeedOutcome> done;  // finished, not yet consumed (at most `window`)
  uint64_t next_claim = first, next_consume = first;
  auto worker = [&] {
    for (;;) {
      uint64_t s;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return next_claim > last || next_claim < next_consume + window; });
        if (next_claim > last) return;
        s = next_claim++;
      }
      SeedOutcome o = run(s);
      std::lock_guard<std::mutex> lock(mu);
      done.emplace(s, std::move(o));
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < jobs; ++i) threads.emplace_back(worker);
  for (uint64_t s = first; s <= last; ++s) {
    SeedOutcome o;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done.count(s) > 0; });
      o = std::move(done.at(s));
      done.erase(s);
      next_consume = s + 1;
      cv.notify_all();
    }
    consume(s, o);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("amaters deterministic simulator (docs/simulation.md)");
  // docs/design.md §5 spells it --list-bugs; absl flag names cannot hold a dash, so accept both.
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--list-bugs") {
      for (const std::string& b : amaters::sim::PlantedBugNames()) std::printf("%s\n", b.c_str());
      return 0;
    }
  }
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) return Usage(absl::StrCat("unexpected argument ", rest[1]));
  if (absl::GetFlag(FLAGS_list_bugs)) {
    for (const std::string& b : amaters::sim::PlantedBugNames()) std::printf("%s\n", b.c_str());
    return 0;
  }
  const std::string bug = absl::GetFlag(FLAGS_bug);
  if (!bug.empty()) {
    bool known = false;
    for (const std::string& b : amaters::sim::PlantedBugNames()) known |= b == bug;
    if (!known) return Usage(absl::StrCat("unknown bug \"", bug, "\" (see --list-bugs)"));
  }
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  if (!scenario.empty()) {
    if (!absl::GetFlag(FLAGS_seed).empty() || !absl::GetFlag(FLAGS_seeds).empty()) {
      return Usage("give exactly one of --seed, --seeds or --scenario");
    }
    if (absl::GetFlag(FLAGS_nodes) != 0 || absl::GetFlag(FLAGS_fault_interval_ms) != 0) {
      return Usage("--nodes and --fault_interval_ms do not apply to a scenario (use `nodes N` "
                   "and `option NAME VALUE` in the script)");
    }
    return RunScenarioFile(scenario, bug);
  }
  uint64_t first = 0, last = 0;
  const std::string seed = absl::GetFlag(FLAGS_seed), seeds = absl::GetFlag(FLAGS_seeds);
  if (!seed.empty() == !seeds.empty()) {
    return Usage("give exactly one of --seed, --seeds or --scenario");
  }
  if (!seed.empty()) {
    if (!absl::SimpleAtoi(seed, &first)) return Usage(absl::StrCat("bad --seed=", seed));
    last = first;
  } else {
    std::vector<std::string> ab = absl::StrSplit(seeds, "..");
    if (ab.size() != 2 || !absl::SimpleAtoi(ab[0], &first) || !absl::SimpleAtoi(ab[1], &last) ||
        last < first) {
      return Usage(absl::StrCat("bad --seeds=", seeds, " (expected A..B with A <= B)"));
    }
  }
  if (WantTrace() && first != last) return Usage("--trace and --html need a single seed");
  const int jobs = absl::GetFlag(FLAGS_jobs);
  if (jobs < 1 || jobs > 256) return Usage(absl::StrCat("bad --jobs=", jobs, " (1 to 256)"));

  const auto start = std::chrono::steady_clock::now();
  uint64_t hash = 1469598103934665603ull;
  double sim_seconds = 0;
  uint64_t snapshots = 0, installs = 0, seeds_installing = 0;
  std::vector<uint64_t> failed;
  auto last_progress = start;
  RunSeeds(first, last, jobs, bug, [&](uint64_t s, SeedOutcome& outcome) {
    const SimConfig& config = outcome.config;
    RunResult& r = outcome.result;
    hash = (hash ^ r.trace_hash) * 1099511628211ull;
    sim_seconds += r.sim_seconds;
    snapshots += r.stats.snapshots;
    installs += r.stats.installs;
    seeds_installing += r.stats.installs > 0;
    if (WantTrace()) {
      WriteTraceOutputs(r.trace, absl::StrCat("seed ", s, bug.empty() ? "" : " --bug=" + bug));
    }
    if (!r.ok) {
      failed.push_back(s);
      std::printf("seed %llu FAILED: %s\n  config: %s\n  replay: bazel run //sim -- --seed=%llu%s\n",
                  static_cast<unsigned long long>(s), r.failure.c_str(),
                  config.Describe().c_str(), static_cast<unsigned long long>(s),
                  bug.empty() ? "" : absl::StrCat(" --bug=", bug).c_str());
    } else if (first == last) {
      std::printf("seed %llu ok: %s\n  ops ok=%llu failed=%llu unknown=%llu leader_changes=%llu "
                  "crashes=%llu faults=%llu commit=%llu messages=%llu snapshots=%llu "
                  "installs=%llu\n  %s\n",
                  static_cast<unsigned long long>(s), config.Describe().c_str(),
                  static_cast<unsigned long long>(r.stats.ops_ok),
                  static_cast<unsigned long long>(r.stats.ops_failed),
                  static_cast<unsigned long long>(r.stats.ops_unknown),
                  static_cast<unsigned long long>(r.stats.leader_changes),
                  static_cast<unsigned long long>(r.stats.crashes),
                  static_cast<unsigned long long>(r.stats.faults),
                  static_cast<unsigned long long>(r.stats.commits),
                  static_cast<unsigned long long>(r.stats.messages),
                  static_cast<unsigned long long>(r.stats.snapshots),
                  static_cast<unsigned long long>(r.stats.installs),
                  r.linearizability.Summary().c_str());
    }
    const auto now = std::chrono::steady_clock::now();
    if (first != last && (now - last_progress > std::chrono::seconds(2) || s == last)) {
      last_progress = now;
      const double wall = std::chrono::duration<double>(now - start).count();
      std::printf("progress: seeds=%llu/%llu failed=%zu sim_seconds=%.1f wall_seconds=%.1f "
                  "speed=%.0fx snapshots=%llu installs=%llu seeds_with_installs=%llu\n",
                  static_cast<unsigned long long>(s - first + 1),
                  static_cast<unsigned long long>(last - first + 1), failed.size(), sim_seconds,
                  wall, wall > 0 ? sim_seconds / wall : 0.0,
                  static_cast<unsigned long long>(snapshots),
                  static_cast<unsigned long long>(installs),
                  static_cast<unsigned long long>(seeds_installing));
    }
    std::fflush(stdout);
  });
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::string failed_list;
  for (uint64_t f : failed) absl::StrAppend(&failed_list, failed_list.empty() ? "" : ",", f);
  std::printf("result: %s seeds=%llu failed=%zu%s sim_seconds=%.1f wall_seconds=%.1f "
              "trace_hash=%s\n",
              failed.empty() ? "pass" : "fail",
              static_cast<unsigned long long>(last - first + 1), failed.size(),
              failed.empty() ? "" : absl::StrCat(" failed_seeds=", failed_list).c_str(),
              sim_seconds, wall, Hex(hash).c_str());
  return failed.empty() ? 0 : 1;
}
