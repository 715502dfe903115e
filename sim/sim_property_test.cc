// rapidcheck drives the simulator with generated fault schedules, so that a failing
// schedule shrinks to a small reproducer: the printed counterexample lists the faults.
//
// Replay with the RC_PARAMS line rapidcheck prints; more cases:
//   RC_PARAMS="max_success=500" bazel-bin/sim/sim_property_test
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"
#include "sim/sim.h"

namespace amaters::sim {
namespace {

enum class FaultKind {
  kPartition, kIsolate, kBlock, kClog, kHeal, kCrash, kRestart, kPause, kResume, kSlowDisk,
  kDiskFull, kCorrupt,
};

struct Fault {
  uint64_t after_ms;
  FaultKind kind;
  NodeId a;
  NodeId b;
  uint64_t mask;  // partition: bit i set = node i+1 in the first group
};

void Apply(Simulation& sim, const Fault& f) {
  const int n = sim.nodes();
  const NodeId a = 1 + f.a % static_cast<NodeId>(n), b = 1 + f.b % static_cast<NodeId>(n);
  switch (f.kind) {
    case FaultKind::kPartition: {
      std::vector<std::set<NodeId>> g(2);
      for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) g[(f.mask >> (id - 1)) & 1].insert(id);
      sim.Partition(g);
      break;
    }
    case FaultKind::kIsolate: {
      std::set<NodeId> rest;
      for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) {
        if (id != a) rest.insert(id);
      }
      sim.Partition({{a}, rest});
      break;
    }
    case FaultKind::kBlock:
      if (a != b) sim.BlockLink(a, b);
      break;
    case FaultKind::kClog:
      if (a != b) sim.Clog(a, b, (f.mask % 2000 + 1) * kMs);
      break;
    case FaultKind::kHeal:
      sim.Heal();
      break;
    case FaultKind::kCrash:
      sim.Crash(a);
      break;
    case FaultKind::kRestart:
      sim.Restart(a);
      break;
    case FaultKind::kPause:
      sim.Pause(a);
      break;
    case FaultKind::kResume:
      sim.Resume(a);
      break;
    case FaultKind::kSlowDisk:
      sim.SetSlowDisk(a, f.mask % 2 == 0);
      break;
    case FaultKind::kDiskFull:
      sim.SetDiskFull(a, f.mask % 2 == 0);
      break;
    case FaultKind::kCorrupt:
      if (sim.CorruptWal(a)) sim.Crash(a);
      break;
  }
}

std::string Show(const std::vector<Fault>& faults) {
  std::string out;
  for (const Fault& f : faults) {
    absl::StrAppend(&out, "\n  +", f.after_ms, "ms kind=", static_cast<int>(f.kind), " a=", f.a,
                    " b=", f.b, " mask=", f.mask);
  }
  return out;
}

RC_GTEST_PROP(SimProperty, GeneratedFaultSchedulesBreakNoChecker, ()) {
  const uint64_t seed = *rc::gen::inRange<uint64_t>(1, 1u << 30);
  const int nodes = *rc::gen::element(3, 5);
  const bool corrupt_allowed = *rc::gen::arbitrary<bool>();
  const auto faults = *rc::gen::container<std::vector<Fault>>(
      rc::gen::build<Fault>(
          rc::gen::set(&Fault::after_ms, rc::gen::inRange<uint64_t>(0, 2000)),
          rc::gen::set(&Fault::kind,
                       rc::gen::map(rc::gen::inRange(0, 12),
                                    [](int k) { return static_cast<FaultKind>(k); })),
          rc::gen::set(&Fault::a, rc::gen::inRange<NodeId>(0, 5)),
          rc::gen::set(&Fault::b, rc::gen::inRange<NodeId>(0, 5)),
          rc::gen::set(&Fault::mask, rc::gen::inRange<uint64_t>(0, 1u << 20))));
  SimConfig c = DrawConfig(seed);
  c.nodes = nodes;
  c.initial_voters = 0;  // every node a voter: the schedule here is the faults alone
  c.reconfig = false;
  c.liveness_ms = 20000;
  // AMATERS_SIM_BUG=NAME: show that the property fails, and shrinks, with a planted bug.
  if (const char* bug = std::getenv("AMATERS_SIM_BUG")) c.bug = bug;
  RunResult r = RunScripted(c, false, [&](Simulation& sim) {
    bool corrupted = false;
    for (const Fault& f : faults) {
      sim.RunFor(f.after_ms * kMs);
      if (sim.failed()) return;
      // At most one node's disk is corrupted per run (the fault model: never on a quorum).
      if (f.kind == FaultKind::kCorrupt && (corrupted || !corrupt_allowed)) continue;
      corrupted |= f.kind == FaultKind::kCorrupt;
      Apply(sim, f);
    }
    sim.RunFor(1000 * kMs);
  });
  if (!r.ok) {
    RC_FAIL(absl::StrCat("seed ", seed, " nodes ", nodes, ": ", r.failure, "\nschedule:",
                         Show(faults)));
  }
}

}  // namespace
}  // namespace amaters::sim
