// Linearizability checker for the simulator's client histories (docs/design.md §1).
//
// Model: a key-value store of registers. Every operation touches exactly one key, so the
// history is checked per key (P-compositionality: a history of independent objects is
// linearizable iff each object's sub-history is: locality, Herlihy & Wing 1990). On one key:
//   put(key, value)              -> ok
//   get(key)                     -> value, or absent
//   delete(key)                  -> ok; the key becomes absent
//   cas(key, expected, new)      -> succeeded / failed; `expected` may be absent
//                                   (create-if-absent), as an etcd Txn comparing the value.
//
// Outcomes. A *completed* operation took effect exactly once, at one instant inside
// [invoke_ns, complete_ns] (both ends inclusive: two operations are ordered in real time only
// when one completes strictly before the other is invoked). An *unknown* operation (the
// client timed out, the node crashed) may have taken effect once at any instant after its
// invocation, or never; its output is unconstrained. A get with an unknown outcome constrains
// nothing and is dropped. A *failed* operation (the server certainly did not apply it) is
// dropped.
//
// Algorithm: Wing & Gong's search with Lowe's just-in-time linearization and memoization of
// visited (linearized set, model state) nodes, as Porcupine's checkSingle, run per key, with
// rules that keep unknown operations from multiplying the search and that refute a read as
// soon as no write is left for its value (linearizability.cc). Reads of values that nothing
// writes in time are reported before any search. The search is bounded per key (steps and
// memo memory); a key whose bound is hit is reported *unknown*, never as passing. See
// README.md in this directory.
//
// Pure and deterministic: no clock, thread or randomness; the same history and options give
// the same result, counters included.
#ifndef AMATERS_SIM_CHECKER_LINEARIZABILITY_H_
#define AMATERS_SIM_CHECKER_LINEARIZABILITY_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace amaters::sim::checker {

enum class OpKind : uint8_t { kPut, kGet, kDelete, kCas };

enum class OpOutcome : uint8_t {
  kCompleted,  // took effect once within [invoke_ns, complete_ns]; outputs are valid
  kUnknown,    // may have taken effect once at any time >= invoke_ns, or never
  kFailed,     // certainly did not take effect; dropped from the history
};

// One client operation of the history. Build with the factories below.
struct Operation {
  uint64_t client = 0;
  std::string key;
  OpKind kind = OpKind::kGet;
  OpOutcome outcome = OpOutcome::kCompleted;

  // Inputs.
  std::string value;                    // kPut: the value written; kCas: the new value
  std::optional<std::string> expected;  // kCas: compared value; nullopt = "key is absent"

  // Virtual times in nanoseconds. complete_ns is read only for kCompleted (>= invoke_ns).
  uint64_t invoke_ns = 0;
  uint64_t complete_ns = 0;

  // Outputs, read only for kCompleted.
  std::optional<std::string> read;  // kGet: the value returned; nullopt = absent
  bool cas_succeeded = false;       // kCas

  // Completed operations.
  static Operation Put(uint64_t client, std::string key, std::string value, uint64_t invoke_ns,
                       uint64_t complete_ns);
  static Operation Get(uint64_t client, std::string key, std::optional<std::string> read,
                       uint64_t invoke_ns, uint64_t complete_ns);
  static Operation Delete(uint64_t client, std::string key, uint64_t invoke_ns,
                          uint64_t complete_ns);
  static Operation Cas(uint64_t client, std::string key, std::optional<std::string> expected,
                       std::string new_value, bool succeeded, uint64_t invoke_ns,
                       uint64_t complete_ns);

  // The same operation with another outcome (outputs and complete_ns become irrelevant).
  Operation Unknown() const;
  Operation Failed() const;
};

// Search bounds. A key whose search exceeds one of them is reported unknown.
inline constexpr uint64_t kDefaultMaxStepsPerKey = 2'000'000;
inline constexpr uint64_t kDefaultMaxMemoBytesPerKey = uint64_t{256} << 20;  // 256 MiB
// How many operations of each list a violation's explanation shows.
inline constexpr size_t kDefaultExplanationOpsMax = 12;

struct CheckOptions {
  // One step is one iteration of the search loop: an attempt to linearize one operation, or
  // one backtrack. A linearizable history with little concurrency needs about 2 steps per
  // operation.
  uint64_t max_steps_per_key = kDefaultMaxStepsPerKey;
  // Memory held by the memo of visited search nodes of one key.
  uint64_t max_memo_bytes_per_key = kDefaultMaxMemoBytesPerKey;
  // Drop unknown-outcome writes whose value no later operation could have observed (sound and
  // complete: the verdict does not change; see README.md). Off only to test that claim.
  bool prune_unobserved_unknown_writes = true;
  size_t explanation_ops_max = kDefaultExplanationOpsMax;
};

enum class Verdict : uint8_t {
  kOk,         // every key's sub-history is linearizable
  kViolation,  // at least one key's sub-history is certainly not linearizable
  kUnknown,    // no violation found, but the search of at least one key hit its bound
};

absl::string_view VerdictName(Verdict v);  // "ok", "violation", "unknown"

// Why one key's sub-history is not linearizable. Operations are named by their index in the
// input history ("op #i").
struct Violation {
  std::string key;
  // The longest linearization the search found, in linearization order: a valid sequential
  // order of these operations, consistent with real time, exists...
  std::vector<size_t> linearized_prefix;
  // ...reaching this state (nullopt = absent)...
  std::optional<std::string> state_after_prefix;
  // ...but this completed operation must be placed next (every operation not in the prefix
  // that could still go before its completion was tried first, without success) and cannot.
  size_t unplaceable_op = 0;
  // When set, the heart of the matter: a completed read (a get, or a successful cas's
  // comparison) that needs a value no remaining operation can supply, because it was
  // overwritten after its only writes (the search went no further than the prefix, since
  // every way on would strand this read)...
  std::optional<size_t> starved_read;
  // ...or because no operation on the key writes it early enough (unwritten_read: none writes
  // it at all, or the first to, first_write, was invoked after the read completed; found
  // before any search, so the prefix is empty and unplaceable_op is the read itself).
  bool unwritten_read = false;
  std::optional<size_t> first_write;
  // The other operations not in the prefix that were invoked no later than unplaceable_op
  // completed: the candidates the search tried before giving up at that point.
  std::vector<size_t> concurrent_ops;
  // Multi-line, human-readable account of the above, with each operation's client, kind,
  // inputs, output and times (README.md explains how to read it).
  std::string explanation;
};

struct CheckStats {
  uint64_t operations_total = 0;    // size of the input history
  uint64_t operations_checked = 0;  // operations the per-key searches ran on
  uint64_t dropped_failed = 0;      // kFailed operations
  uint64_t dropped_unknown_gets = 0;
  uint64_t pruned_unknown_writes = 0;  // see CheckOptions::prune_unobserved_unknown_writes
  uint64_t keys = 0;                   // distinct keys with at least one checked operation
  uint64_t keys_violating = 0;
  uint64_t keys_unknown = 0;
  uint64_t search_steps = 0;          // summed over keys
  uint64_t max_search_steps_key = 0;  // the largest count of one key
  uint64_t memo_entries = 0;          // summed over keys
};

struct CheckResult {
  Verdict verdict = Verdict::kOk;
  std::vector<Violation> violations;      // one per violating key, sorted by key
  std::vector<std::string> unknown_keys;  // keys whose search hit a bound, sorted
  CheckStats stats;

  // One line for the simulator's summary, e.g.
  //   linearizability: ok keys=20 ops=10000 checked=9173 steps=15031 max_steps_key=1254
  std::string Summary() const;
};

// Checks `history` (any order; operations are identified by their index in it).
// kInvalidArgument when a completed operation has complete_ns < invoke_ns. Otherwise the
// verdict: every key is searched even after a violation, so all violating keys are listed.
absl::StatusOr<CheckResult> CheckLinearizability(const std::vector<Operation>& history,
                                                 const CheckOptions& options = {});

// "client 3 cas("k", absent -> "v") -> succeeded [invoke 10, complete 25]"; values are
// C-escaped and long ones shortened.
std::string DescribeOperation(const Operation& op);

}  // namespace amaters::sim::checker

#endif  // AMATERS_SIM_CHECKER_LINEARIZABILITY_H_
