// The chaos runner's clients (docs/chaos.md): threads issuing puts and linearizable gets on a
// few keys to the nodes of a real cluster, recording every operation in a History.
//
// Each client talks to one node at a time (followers forward to the leader) and moves to the
// next node after an error or after ops_per_node operations, so that every node keeps
// answering some of the reads whatever the faults. A put that fails in any way is recorded as info (it may have been
// applied); a get that fails is recorded as fail (it changed nothing).
#ifndef AMATERS_SIM_CHAOS_WORKLOAD_H_
#define AMATERS_SIM_CHAOS_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "sim/chaos/history.h"

namespace amaters::sim::chaos {

struct WorkloadOptions {
  std::vector<std::string> endpoints;  // node i's client address at index i - 1
  int clients = 4;
  int keys = 8;                               // "k0".."k<keys-1>"
  uint64_t seed = 1;                          // each client's choices
  absl::Duration op_timeout = absl::Seconds(1);
  absl::Duration think_time = absl::Milliseconds(5);  // between a client's operations
  int ops_per_node = 16;                              // then the client moves to the next node
  // The history's bound (about 150 bytes an operation): clients stop at it. A 10-minute soak
  // makes about 300,000.
  size_t max_ops = 1000000;
};

class Workload {
 public:
  explicit Workload(WorkloadOptions options);
  ~Workload();  // stops the clients

  // Starts / stops issuing operations (a stop waits for the operations in flight).
  void Start();
  void Stop();
  bool running() const { return !threads_.empty(); }

  // Nanoseconds on the history's clock (monotonic, from construction).
  uint64_t NowNs() const;
  // A copy of the history so far (pending operations as they are).
  std::vector<ClientOp> Snapshot() const;
  // Its tally, without the copy.
  Tally CurrentTally() const;
  // A linearizable get of `key` through `endpoint`, recorded in the history; the value read.
  absl::StatusOr<std::optional<std::string>> FinalRead(const std::string& endpoint,
                                                       const std::string& key);
  std::vector<std::string> Keys() const;
  // Whether the clients stopped at max_ops.
  bool capped() const;

 private:
  void ClientMain(int client);
  // Records an invocation; nullopt when `bounded` and the history holds max_ops already.
  std::optional<size_t> Invoke(ClientOp op, bool bounded);
  void Complete(size_t index, Outcome outcome, std::optional<std::string> read,
                std::string error);

  const WorkloadOptions options_;
  const absl::Time start_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  mutable std::mutex mu_;
  std::vector<ClientOp> history_;  // guarded by mu_; at most max_ops + final reads
  std::vector<uint64_t> next_seq_;  // per client, guarded by the client's own thread
};

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_WORKLOAD_H_
