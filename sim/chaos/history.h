// The chaos runner's client history (docs/chaos.md): what each client asked of a real cluster
// and what it learned, as Jepsen records it, and the checks made on it at the end.
//
// Pure: no clock, thread or I/O. The workload's clients record ClientOps (sim/chaos/workload.h,
// under its lock); these functions turn them into JSON lines, into the linearizability
// checker's operations (sim/checker), and count acknowledged writes the cluster lost.
#ifndef AMATERS_SIM_CHAOS_HISTORY_H_
#define AMATERS_SIM_CHAOS_HISTORY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sim/checker/linearizability.h"

namespace amaters::sim::chaos {

// Jepsen's completion types: ok (it happened, outputs valid), fail (it certainly did not
// happen), info (unknown: it may have happened once, at any time after its invocation, or
// never). A pending operation is recorded as info.
enum class Outcome : uint8_t { kPending, kOk, kFail, kInfo };

struct ClientOp {
  uint64_t process = 0;  // the client
  bool is_put = false;   // put(key, value) or get(key)
  std::string key;
  std::string value;                // put: the value written (unique in the run)
  std::optional<std::string> read;  // get, ok: the value read (nullopt: absent)
  uint64_t invoke_ns = 0;           // monotonic clock, from the run's start
  uint64_t complete_ns = 0;         // set with the outcome
  Outcome outcome = Outcome::kPending;
  std::string error;  // fail / info: the status the client got
};

// "invoke" / "ok" / "fail" / "info".
const char* OutcomeName(Outcome outcome);

// Two JSON lines per completed operation (one for a pending one), in time order:
//   {"process":3,"type":"invoke","f":"put","key":"k1","value":"c3-17","time":1234567}
//   {"process":3,"type":"ok","f":"put","key":"k1","value":"c3-17","time":1240001}
// A get's "value" is null on invoke, the value read (or null: absent) on ok; "error" carries the
// client's status on fail and info.
std::string HistoryJsonLines(const std::vector<ClientOp>& ops);

// The checker's view: ok -> completed, info and pending -> unknown, fail -> failed.
std::vector<checker::Operation> CheckerOperations(const std::vector<ClientOp>& ops);

// Acknowledged puts the cluster lost, given the value of every key read linearizably at the
// end (after every client stopped; nullopt: absent). Values are unique, so the final value
// names its put. A put p acknowledged (ok) is lost when the final value is absent, was never
// written, or was written by a put that was acknowledged before p was invoked (p must come
// after it in any linearization). Keys missing from `final_values` are not judged.
uint64_t CountLostAcknowledged(
    const std::vector<ClientOp>& ops,
    const std::map<std::string, std::optional<std::string>>& final_values);

struct Tally {
  uint64_t ops = 0;  // operations invoked
  uint64_t ok = 0;
  uint64_t fail = 0;
  uint64_t info = 0;  // pending ones included
};
Tally TallyOf(const std::vector<ClientOp>& ops);

// What the clients saw, for the soak report: latency of the operations that succeeded, and
// windows during which no operation succeeded for at least `min_gap_ns` (a failover, a lost
// quorum), between the first and the last success.
struct Availability {
  uint64_t acked_puts = 0;
  uint64_t p50_ns = 0;  // of ok operations (0 if none)
  uint64_t p99_ns = 0;
  std::vector<std::pair<uint64_t, uint64_t>> unavailable;  // [from, to) in history time
  uint64_t longest_unavailable_ns = 0;
};
Availability AvailabilityOf(const std::vector<ClientOp>& ops, uint64_t min_gap_ns);

// "yes" (ok), "no" (violation), "unknown" (a key's search hit its bound).
const char* LinearizableWord(checker::Verdict verdict);

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_HISTORY_H_
