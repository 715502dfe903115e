// Fuzz target: the simulator (sim/sim.h) with a fault schedule read from the input.
//
// Input: u16 seed (little-endian; DrawConfig(seed) picks the cluster options, the fault mix and
// the targeted faults, which run in every input, as `bazel run //sim -- --seed=N` does), one options byte (bit 0: the seed's random fault
// schedule runs as well; bits 1-2: safety phase 1, 1.5, 2 or 2.5 simulated seconds; at most
// 2 clients and 3 keys, so that an exec stays well under a second), then
// events of three bytes (kind, a, b); each event runs, then the simulation advances
// (a % 16) * 25 ms. Events stop at the end of the safety phase.
//   kind % 14: 0 partition by the bits of b   7 resume a
//              1 block link a -> b            8 slow disk on a (off if on)
//              2 clog a -> b (b * 10 ms)      9 disk full on a (off if on)
//              3 heal the network            10 corrupt a's WAL and crash it (once per run)
//              4 crash a                     11 transfer leadership a -> b
//              5 restart a                   12 campaign a
//              6 pause a (not with leases)   13 nothing (time passes)
// Then, as every simulator run: heal all, liveness, convergence and linearizability, with the
// safety checkers on every event. A failure aborts with the configuration and the failure;
// reproduce with the input file (fuzz/run.sh prints the command). With the environment
// variable AMATERS_FUZZ_SIM_BUG=<name> (sim --list-bugs) a planted bug is on: the checkers
// must then find it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_input.h"
#include "sim/sim.h"

namespace amaters::fuzz {
namespace {

using sim::kMs;
using sim::NodeId;

void Script(FuzzInput& in, sim::Simulation& s, bool random_faults) {
  const uint64_t until = s.config().safety_ms * kMs;
  if (random_faults) s.StartRandomFaults(until);
  s.StartTargetedFaults(until);  // the seed's buggify draw (docs/simulation.md §4)
  const int n = s.nodes();
  bool corrupted = false;
  std::set<NodeId> slow, full;
  while (!s.failed() && s.now() < until && in.remaining() >= 3) {
    const int kind = in.U8() % 14;
    const int a = in.U8();
    const int b = in.U8();
    const NodeId x = static_cast<NodeId>(a % n + 1);
    const NodeId y = static_cast<NodeId>(b % n + 1);
    switch (kind) {
      case 0: {
        std::set<NodeId> left, right;
        for (int i = 1; i <= n; ++i) ((b >> i) & 1 ? left : right).insert(static_cast<NodeId>(i));
        s.Partition({left, right});
        break;
      }
      case 1:
        if (x != y) s.BlockLink(x, y);
        break;
      case 2:
        if (x != y) s.Clog(x, y, static_cast<uint64_t>(b) * 10 * kMs);
        break;
      case 3:
        s.Heal();
        break;
      case 4:
        if (s.IsUp(x)) s.Crash(x);
        break;
      case 5:
        if (!s.IsUp(x) && !s.IsRefused(x)) s.Restart(x);
        break;
      case 6:
        // Lease reads are only safe without process pauses (docs/simulation.md).
        if (!s.config().lease_reads && s.IsUp(x) && !s.IsPaused(x)) s.Pause(x);
        break;
      case 7:
        if (s.IsUp(x) && s.IsPaused(x)) s.Resume(x);
        break;
      case 8:
        if (slow.count(x)) {
          slow.erase(x);
          s.SetSlowDisk(x, false);
        } else {
          slow.insert(x);
          s.SetSlowDisk(x, true);
        }
        break;
      case 9:
        if (full.count(x)) {
          full.erase(x);
          s.SetDiskFull(x, false);
        } else {
          full.insert(x);
          s.SetDiskFull(x, true);
        }
        break;
      case 10:
        // One corrupted node at most: it must be detected and never spread.
        if (!corrupted && s.IsUp(x) && s.CorruptWal(x)) {
          corrupted = true;
          s.Crash(x);
        }
        break;
      case 11:
        (void)s.TransferLeadership(x, y);
        break;
      case 12:
        (void)s.Campaign(x);
        break;
      default:
        break;
    }
    s.RunFor(static_cast<uint64_t>(a % 16) * 25 * kMs);
  }
  if (!s.failed() && s.now() < until) s.RunFor(until - s.now());
}

void RunInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  const uint64_t seed = in.U16() + 1;
  const uint8_t options = in.U8();
  sim::SimConfig config = sim::DrawConfig(seed);
  config.safety_ms = 1000 + 500 * ((options >> 1) & 3);
  config.liveness_ms = 15000;
  if (config.clients > 2) config.clients = 2;
  if (config.keys > 3) config.keys = 3;
  // Scripted corruption is one event kind; the seed's random one only with random faults.
  const bool random_faults = options & 1;
  if (!random_faults) config.corruption = false;
  // Checker self-test (docs/design.md §4.8): AMATERS_FUZZ_SIM_BUG=<planted bug> must make the
  // target crash within a short campaign (docs/fuzzing.md).
  static const char* const planted = std::getenv("AMATERS_FUZZ_SIM_BUG");
  if (planted != nullptr) config.bug = planted;
  // AMATERS_FUZZ_SIM_TRACE=<file>: the readable trace of the run (reading a crash input).
  static const char* const trace_file = std::getenv("AMATERS_FUZZ_SIM_TRACE");
  sim::RunResult r = sim::RunScripted(config, /*keep_trace=*/trace_file != nullptr,
                                      [&](sim::Simulation& s) { Script(in, s, random_faults); });
  if (trace_file != nullptr) {
    if (std::FILE* f = std::fopen(trace_file, "w")) {
      for (const std::string& line : r.trace) std::fprintf(f, "%s\n", line.c_str());
      std::fclose(f);
    }
  }
  if (!r.ok) {
    std::fprintf(stderr,
                 "sim fuzz: run failed\n  config: %s\n  failure: %s\n  sim_seconds=%.3f "
                 "trace_hash=%016llx\n",
                 config.Describe().c_str(), r.failure.c_str(), r.sim_seconds,
                 static_cast<unsigned long long>(r.trace_hash));
    std::abort();
  }
}

}  // namespace
}  // namespace amaters::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  amaters::fuzz::RunInput(data, size);
  return 0;
}
