// Health: the node's state for /health, /healthz, /readyz and the write gate
// (docs/failover-and-alerts.md "Health").
//
// A pure function of its inputs: the driver gathers the readings (disk space, fsync latency,
// storage and WAL status, Raft and failure-detector state) and calls Evaluate whenever it
// needs a report. Nothing here reads a disk or a clock.
//
// Probes (each Healthy, Degraded or Unhealthy):
//   storage     the state machine (RocksDB) is writable: the last write/apply succeeded.
//               Failed: Unhealthy.
//   wal         WAL appends and fsyncs succeed, and fsync is fast enough. Failed: Unhealthy;
//               fsync latency > fsync_latency_degraded_ms: Degraded.
//   disk_space  free bytes on the data directory's filesystem: >= min_free_bytes Healthy;
//               >= min_free_bytes / 4 (integer division) Degraded; below that Unhealthy. No
//               reading yet: Healthy ("not measured").
//   cluster     a leader is known and, on the leader, a quorum is reachable, with every
//               judged peer alive. Problems here are Degraded, never Unhealthy: the node itself
//               is fine, and Unhealthy means "not alive", which would make a liveness probe
//               restart a node that a restart cannot help.
//
// Overall state, in this order: ShuttingDown once shutdown began; Unhealthy if any probe is;
// Starting until a leader has been known once since start (a node waiting for its first
// election is not degraded); Degraded if any probe is; Healthy.
//
// alive  = Starting, Healthy or Degraded (/healthz, /livez).
// ready  = Healthy or Degraded, a leader known now, the leader sees a quorum (on the leader) or
//          the leader is not marked failed by the failure detector (on a follower: a follower
//          cannot measure its own replication lag — its commit index is what the leader told
//          it, capped at its own log — so "not lagging" means it has heard from its leader
//          within the failure timeout), and the state machine is caught up:
//          applied + ready_max_apply_lag_entries >= commit.
// accept_writes = false, with a reason, when the disk space probe is Unhealthy ("a node whose
//          disk is nearly full stops accepting writes before it corrupts anything, and says
//          why"), when the WAL or storage failed, and during shutdown. It gates client writes
//          proposed through this node; entries replicated from a leader are not refused (a
//          follower that refused them would only stall), they fail the WAL when the disk is
//          actually full, which stops the node (§7 of docs/architecture.md).
#ifndef AMATERS_ENGINE_HEALTH_HEALTH_H_
#define AMATERS_ENGINE_HEALTH_HEALTH_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/raft/types.h"

namespace amaters::health {

enum class State : uint8_t { kStarting, kHealthy, kDegraded, kUnhealthy, kShuttingDown };
// "starting", "healthy", "degraded", "unhealthy", "shutting_down" (the /health strings).
const char* StateName(State state);
bool IsAlive(State state);    // starting, healthy, degraded
bool IsServing(State state);  // healthy, degraded (/health answers 200)

struct HealthConfig {
  // [storage] min_free_bytes: below it the disk space probe is Degraded, below a quarter of it
  // Unhealthy (writes refused). 0 disables the probe's thresholds.
  uint64_t min_free_bytes = 1ull << 30;  // 1 GiB
  // [storage.wal] fsync_latency_degraded_ms: an fsync slower than this is Degraded.
  uint64_t fsync_latency_degraded_ms = 500;
  // [server] ready_max_apply_lag_entries: committed entries the state machine may trail by and
  // still be ready. 0: applied >= commit.
  uint64_t ready_max_apply_lag_entries = 0;
  // kInvalidArgument naming the key: fsync_latency_degraded_ms must be > 0.
  absl::Status Validate() const;
};

struct HealthInputs {
  bool shutting_down = false;
  // The last state-machine write or apply (OK: writable).
  absl::Status storage;
  // WAL appends and fsyncs: OK, or the node's fatal() status once one failed.
  absl::Status wal;
  // A recent fsync latency (the driver chooses: the last one, or a p99); nullopt: none yet.
  std::optional<uint64_t> wal_fsync_latency_ms;
  // Free bytes on the data directory's filesystem; nullopt: not measured yet.
  std::optional<uint64_t> disk_free_bytes;
  // Raft.
  raft::Role role = raft::Role::kFollower;
  raft::NodeId leader = raft::kNone;  // the leader known now (kNone: none)
  raft::Index commit = 0;
  raft::Index applied = 0;
  // Failure detector.
  bool leader_seen = false;                // FailureDetector::known_leader() != kNone
  size_t cluster_size = 1;                 // voters (this node included when it is one)
  // Whether this node is one of those voters. A leader that removed itself from the
  // configuration leads until it hands over, and then all cluster_size voters are followers
  // (all of them may be failed).
  bool self_voter = true;
  bool quorum_lost = false;                // FailureDetector::quorum_lost()
  // FailureDetector::failed_peers(), split by role in the configuration in effect: voters
  // other than this node, and learners (SplitFailedPeers). A learner's failure degrades the
  // leader's cluster probe but never counts against the voters.
  std::vector<raft::NodeId> failed_peers;
  std::vector<raft::NodeId> failed_learners;
};

// What a node's Raft and failure detector report, as both drivers read it.
struct ClusterView {
  raft::NodeId self = raft::kNone;
  raft::Role role = raft::Role::kFollower;
  raft::NodeId leader = raft::kNone;
  raft::NodeId known_leader = raft::kNone;  // FailureDetector::known_leader()
  std::vector<raft::NodeId> voters;         // of the configuration in effect, both sets if joint
  std::vector<raft::NodeId> learners;
  bool quorum_lost = false;
  std::vector<raft::NodeId> failed;  // FailureDetector::failed_peers()
};

// Fills the Raft and failure-detector fields of `in`: the failed peers split into voters other
// than this node and learners (peers in neither set, removed ones, are left out).
void SetClusterInputs(const ClusterView& view, HealthInputs* in);

struct Probe {
  std::string name;  // "storage", "wal", "disk_space", "cluster"
  State state = State::kHealthy;  // kHealthy, kDegraded or kUnhealthy
  std::string detail;
};

struct HealthReport {
  State state = State::kStarting;
  std::vector<Probe> probes;  // in the order storage, wal, disk_space, cluster
  bool alive = false;
  bool ready = false;
  std::string not_ready_reason;  // empty when ready
  bool accept_writes = false;
  std::string reject_reason;     // empty when accept_writes
};

// `config` must be valid (AM_CHECK).
HealthReport Evaluate(const HealthConfig& config, const HealthInputs& inputs);

// The probes on their own (exposed for tests).
Probe StorageProbe(const HealthInputs& inputs);
Probe WalProbe(const HealthConfig& config, const HealthInputs& inputs);
Probe DiskSpaceProbe(const HealthConfig& config, const HealthInputs& inputs);
Probe ClusterProbe(const HealthInputs& inputs);

}  // namespace amaters::health

#endif  // AMATERS_ENGINE_HEALTH_HEALTH_H_
