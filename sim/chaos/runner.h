// The chaos runner (docs/chaos.md): a scenario script (sim/scenario.h) executed against real
// amaters-server processes with a concurrent client workload, ending with a checked history.
//
//   bazel run //sim:chaos -- --scenario=FILE [--nodes=N] [--seed=N]
//
// The script must pass CheckRealClusterSupport (sim/chaos/support.h). Its steps run in real
// time. At the end the runner stops the clients, resumes paused nodes and restarts crashed
// ones, reads every key linearizably, checks the whole history with sim/checker and counts
// acknowledged writes that did not survive; the last line printed is the summary
//   chaos: result=pass|fail ops=N ok=N fail=N info=N faults=N linearizable=yes|no|unknown
//   lost_acked=N wall_s=S
#ifndef AMATERS_SIM_CHAOS_RUNNER_H_
#define AMATERS_SIM_CHAOS_RUNNER_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "absl/time/time.h"

#include "sim/chaos/history.h"
#include "sim/checker/linearizability.h"
#include "sim/scenario.h"

namespace amaters::sim::chaos {

struct ChaosOptions {
  std::string server_bin;    // amaters-server-chaos (sim/chaos/chaos_server.cc)
  std::string bug;           // a planted server bug (its --chaos-bug); empty: none
  std::string dir;           // the run's directory: node data, configs, logs (exists)
  std::string history_path;  // where the JSON-lines history goes (empty: DIR/history.jsonl)
  std::string trace_path;    // the timeline's lines (sim/trace_events.h); empty: none
  std::string html_path;     // the timeline drawn by sim/html.h; empty: none
  int clients = 4;
  // Keys the clients use. The checker's memory grows with the square of the operations on one
  // key, so long runs spread them over more keys (soak mode: 64).
  int keys = 8;
  // A progress line this often during `wait` steps (soak mode); zero: none.
  absl::Duration progress_every = absl::ZeroDuration();
};

struct ChaosResult {
  bool pass = false;
  std::string failure;  // the first thing that went wrong (empty on pass)
  Tally tally;
  // Fault steps executed: crash, pause, campaign, transfer, partition, isolate, block, clog,
  // slow-disk on, disk-full on, wipe (the kinds, as the steps are named).
  uint64_t faults = 0;
  std::map<std::string, uint64_t> faults_by_kind;
  Availability availability;  // of the whole history (unavailable: no success for >= 1 s)
  // The longest time the nodes' Status showed no leader after the first one (polled every
  // 50-100 ms while the script waits): the longest leader failover.
  double longest_failover_s = 0;
  checker::Verdict verdict = checker::Verdict::kUnknown;
  uint64_t lost_acked = 0;
  double wall_s = 0;

  // The summary line (without newline), as documented above.
  std::string Summary() const;
  // The report line printed before it: acknowledged puts, faults by kind, unavailability
  // windows, latency of the operations that succeeded.
  std::string Report() const;
};

// Runs `scenario` (its node count and seed as given: the caller applies --nodes and --seed).
// Progress goes to `log`, one line per step. Never throws; a cluster that cannot start is a
// failed run.
ChaosResult RunChaos(const Scenario& scenario, const ChaosOptions& options, std::ostream& log);

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_RUNNER_H_
