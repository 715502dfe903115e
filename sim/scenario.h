// Chaos scenario scripts: a small line-oriented language that drives a cluster
// through faults and checks what it observes, run deterministically by the simulator
// (`bazel run //sim -- --scenario=FILE`). sim/scenarios/README.md is the user guide; this is
// the reference.
//
// One command per line; `#` starts a comment; blank lines are ignored. Node ids are 1..N,
// durations are whole numbers with a unit, `ms` or `s` (300ms, 2s; at most 3600s), a node set
// is `{1,2,3}` and a link is `FROM->TO` (one direction). `leader` stands for the node that
// leads when the line runs (the line fails if none does) in isolate, crash, pause, slow-disk,
// disk-full, corrupt-wal, at either end of block and clog, and as the source of transfer.
//
// Setup (before the first other command; a later line of the same kind wins):
//   nodes N                      cluster size, 1..9 (default 3)
//   seed N                       PRNG seed (default 1): latency, clients, election jitter
//   option NAME VALUE            a SimConfig field (ScenarioOptionNames(); e.g. pre_vote off,
//                                election_ticks 10, sync_mode interval, drop 0.01, bug NAME)
// Defaults otherwise: no random faults, no loss or duplication, the client workload on.
//
// Actions (take no virtual time unless they say so):
//   workload on|off              clients start / stop issuing operations (pending ones go on)
//   partition {1,2} {3,4,5}      only nodes of one group talk; nodes in no group are isolated.
//                                Replaces the current partition and one-way blocks.
//   isolate N                    partition {N} {the others}
//   block A->B                   drop every message from A to B (adds to the current blocks)
//   clog A->B DURATION           delay every message from A to B by DURATION more
//   heal                         the network only: no partition, blocks or clogs
//   heal-all                     the network, resume paused nodes, restart crashed ones, disks
//                                back to normal; loss and duplication stop for good
//   crash N / restart N          N loses power (unsynced disk data lost or torn) / starts
//                                from its disk (a node that refused to start stays down)
//   pause N / resume N           the process stops / continues (GC pause, SIGSTOP)
//   slow-disk N on|off           writes and fsyncs on N take 20 times longer
//   disk-full N on|off           N's disk refuses writes beyond what it holds now
//   corrupt-wal N                flip bits in one durable WAL record of N (not the last of its
//                                segment), detected the next time N starts
//   wipe N                       N (which must be down) gets an empty disk: no WAL, no
//                                snapshots (a replaced disk, or a deleted data directory)
//   campaign N                   N starts an election now (fails if N is down or paused)
//   transfer A->B                leader A hands leadership to B (fails if A refuses; a no-op
//                                when `leader->B` and B leads already)
//   add-learner N                the leader is asked to add N as a learner; promote N: to make
//   promote N                    learner N a voter; remove N: to remove member N (N may be
//   remove N                     `leader`); replace A->B: to make learner B a voter and remove
//   replace A->B                 A in one change (joint consensus; A may be `leader`). Each
//                                fails if no leader runs or the leader refuses the change at
//                                once (another change pending, a learner behind); it takes
//                                effect when applied (docs/membership.md). Nodes above
//                                `option initial_voters` start outside the configuration.
//   wait DURATION                let virtual time pass
//   wait-for CONDITION DURATION  wait until CONDITION holds; fails if it does not within DURATION
//
// Checks (fail the scenario with the line and what was observed):
//   expect CONDITION             holds now
//   expect linearizable          the client history so far is linearizable (verdict ok)
//   expect converged DURATION    within DURATION: a leader, every running replica applied the
//                                leader's commit index, and the replicas hold the same data
//   expect progress [N] DURATION    the commit index (of N, or the highest of running nodes)
//                                   rises within DURATION
//   expect no-progress [N] DURATION it does not rise during DURATION (runs for DURATION)
//
// Conditions (observable on real servers too: role, term, commit index, up/down):
//   leader | leader N | no-leader | leader-in {A,B}    the running, unpaused leader with the
//                                                       highest term (none: no-leader)
//   term [N] OP V | committed [N] OP V   OP is one of >= <= == != > <; without N the highest
//                                        value over running nodes
//   snapshot [N] OP V                    the index of the newest durable snapshot (of N, or the
//                                        highest over running nodes)
//   installs N OP V                      snapshots N installed from a leader (all incarnations)
//   voters N {A,B} | learners N {A,B}    N's configuration has exactly these voters (and is not
//                                        joint) / these learners
//   up N | down N | refused N            N runs / does not / refused to start (corruption)
//   alert N KEY | alerts N KEY OP V      an alert with dedup key KEY (e.g. node_failed:3,
//                                        quorum_lost) fired on node N at least once / that many
//                                        times since the scenario began (all incarnations of N)
//
// At the end of a script the simulator's own checks have run on every event (election safety,
// committed entries never change, state machine safety, terms and commits never decrease), and
// the client history is checked for linearizability unless the last command did just that.
//
// Parsing is pure and separate from running, and the commands speak of nodes and links only
// (what an operator can do to and observe of real servers). The simulator runs every step; the
// chaos runner (sim/chaos/runner.h, docs/chaos.md) runs the ones real processes support.
#ifndef AMATERS_SIM_SCENARIO_H_
#define AMATERS_SIM_SCENARIO_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "sim/checker/linearizability.h"
#include "sim/sim.h"

namespace amaters::sim {

// Bounds (docs/design.md §4.4).
inline constexpr int kScenarioNodesMax = 9;
inline constexpr uint64_t kScenarioDurationMaxMs = 3600 * 1000;
inline constexpr size_t kScenarioErrorsMax = 20;  // parse errors reported at once
// Command::node / peer value for `leader`, resolved when the command runs.
inline constexpr NodeId kLeaderNode = ~NodeId{0};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };
// `a OP b`, as conditions compare an observed value with the script's.
bool Compare(uint64_t a, CompareOp op, uint64_t b);

struct Condition {
  enum class Kind {
    kLeader,
    kNoLeader,
    kLeaderIn,
    kTerm,
    kCommitted,
    kUp,
    kDown,
    kRefused,
    kAlert,       // nodes = {N}, key: fired at least once
    kAlertCount,  // nodes = {N}, key, op, value: number of firings
    kSnapshot,    // nodes = {} or {N}, op, value: newest snapshot index
    kInstalls,    // nodes = {N}, op, value: snapshots installed from a leader
    kVoters,      // nodes = {N}, members: N's voters (not joint)
    kLearners,    // nodes = {N}, members: N's learners
  };
  Kind kind = Kind::kLeader;
  // kLeader: empty (any leader) or the one expected; kLeaderIn: the candidates; kTerm and
  // kCommitted: empty (highest over running nodes) or the one node; kUp/kDown/kRefused: one.
  std::set<NodeId> nodes;
  CompareOp op = CompareOp::kGe;  // kTerm, kCommitted, kAlertCount
  uint64_t value = 0;
  std::string key;  // kAlert, kAlertCount: the alert's dedup key
  std::set<NodeId> members;  // kVoters, kLearners
};

struct Command {
  enum class Kind {
    kWorkload,
    kPartition,
    kIsolate,
    kBlock,
    kClog,
    kHeal,
    kHealAll,
    kCrash,
    kRestart,
    kPause,
    kResume,
    kSlowDisk,
    kDiskFull,
    kCorruptWal,
    kWipe,
    kCampaign,
    kTransfer,
    kAddLearner,
    kPromote,
    kRemoveMember,
    kReplace,
    kWait,
    kWaitFor,
    kExpect,
    kExpectLinearizable,
    kExpectConverged,
    kExpectProgress,
    kExpectNoProgress,
  };
  Kind kind = Kind::kWait;
  int line = 0;      // 1-based line in the file
  std::string text;  // the command as written, without comment and outer blanks
  // The node acted on; for a link or transfer, its source; 0 = none; kLeaderNode = `leader`.
  NodeId node = 0;
  NodeId peer = 0;                       // link destination / transfer target (or kLeaderNode)
  std::vector<std::set<NodeId>> groups;  // kPartition
  bool on = false;                       // kWorkload, kSlowDisk, kDiskFull
  uint64_t duration_ms = 0;              // kClog, kWait, kWaitFor, kExpectConverged, k*Progress
  Condition condition;                   // kWaitFor, kExpect
};

struct ScenarioOption {
  int line = 0;
  std::string name;
  std::string value;
};

struct Scenario {
  std::string file;  // as errors and failures name it
  int nodes = 3;
  uint64_t seed = 1;
  std::vector<ScenarioOption> options;  // in order; validated against SimConfig
  std::vector<Command> commands;
};

// Parses a script. Pure. On error, kInvalidArgument whose message lists every error found (at
// most kScenarioErrorsMax), one per line, as "FILE:LINE: what is wrong".
absl::StatusOr<Scenario> ParseScenario(absl::string_view text,
                                       absl::string_view file = "<scenario>");
// Reads and parses `path`; errors name `display_name` (the path the user gave).
absl::StatusOr<Scenario> LoadScenario(const std::string& path, const std::string& display_name);

// The names `option` accepts, and setting one on a config (kInvalidArgument if unknown or
// the value does not fit).
std::vector<std::string> ScenarioOptionNames();
absl::Status SetSimOption(const std::string& name, const std::string& value, SimConfig* config);
// The simulator configuration a scenario runs with.
SimConfig ScenarioConfig(const Scenario& scenario);

struct ScenarioRunOptions {
  bool keep_trace = false;
  std::string bug;  // planted bug (overrides `option bug`), or empty
};

struct ScenarioResult {
  bool ok = true;
  // "FILE:LINE: `command`: what was observed", or "FILE: at the end: ..." for the final check.
  std::string failure;
  int failed_line = 0;  // 0 when the failure is not one command's (final check)
  uint64_t trace_hash = 0;
  double sim_seconds = 0;
  RunStats stats;
  checker::CheckResult linearizability;  // the last check run
  // One line per command run: virtual time, line, command and what it observed.
  std::vector<std::string> steps;
  std::vector<std::string> trace;  // readable event log, if keep_trace
};

// Runs a parsed scenario from a fresh cluster. Deterministic: the same scenario and options
// give the same trace hash.
ScenarioResult RunScenario(const Scenario& scenario, const ScenarioRunOptions& options = {});

}  // namespace amaters::sim

#endif  // AMATERS_SIM_SCENARIO_H_
