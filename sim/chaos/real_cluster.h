// Real amaters-server processes on 127.0.0.1 for the chaos runner (docs/chaos.md): one TOML
// file, data directory and log per node under the run's directory, started, killed (SIGKILL),
// paused (SIGSTOP / SIGCONT) and restarted on the same data, and observed through etcd's
// Maintenance.Status on each node's client port.
//
// Not thread-safe: the runner's thread owns it (the workload's clients have their own channels).
#ifndef AMATERS_SIM_CHAOS_REAL_CLUSTER_H_
#define AMATERS_SIM_CHAOS_REAL_CLUSTER_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "sim/chaos/fault_state.h"

namespace amaters::sim::chaos {

inline constexpr int kRealNodesMax = 9;

struct RealClusterOptions {
  int nodes = 3;
  std::string server_bin;  // amaters-server-chaos (sim/chaos/chaos_server.cc)
  std::string dir;         // the run's directory (exists, empty)
  std::string faults_file;  // its --chaos-faults (sim/chaos/fault_state.h)
  std::string bug;          // its --chaos-bug; empty: none
  // Written into every node's [cluster] section: quick failover on loopback.
  uint64_t heartbeat_interval_ms = 50;
  uint64_t election_timeout_ms = 500;
};

// What Maintenance.Status said, or that the node did not answer.
struct NodeView {
  bool running = false;  // the process exists (paused or not)
  bool paused = false;
  bool refused = false;  // it exited on its own with an error (e.g. refused to start)
  bool answered = false;
  uint64_t leader = 0;  // node id; 0 = none known
  uint64_t term = 0;
  uint64_t commit = 0;   // raftIndex
  uint64_t applied = 0;  // raftAppliedIndex
};

// A gRPC channel argument set for clients of a cluster whose nodes come and go: a subchannel
// of its own and reconnect backoff from 100 ms to 1 s (gRPC's default starts at 1 s and grows
// to 120 s, which keeps a client away from a restarted node for a long time).
grpc::ChannelArguments ClientChannelArguments();

class RealCluster {
 public:
  // Picks free ports, writes each node's configuration. Starts nothing.
  static absl::StatusOr<std::unique_ptr<RealCluster>> Create(RealClusterOptions options);
  ~RealCluster();  // kills what still runs

  int size() const { return static_cast<int>(nodes_.size()); }
  // Node ids are 1..size().
  std::string client_address(int id) const;
  std::vector<std::string> client_addresses() const;
  std::string data_dir(int id) const;
  std::string log_path(int id) const;

  absl::Status Start(int id);
  absl::Status StartAll();
  absl::Status Kill(int id);    // SIGKILL and reap (a paused node too)
  absl::Status Pause(int id);   // SIGSTOP
  absl::Status Resume(int id);  // SIGCONT
  // Deletes the data directory of a node that is down (a replaced disk).
  absl::Status Wipe(int id);
  // Flips one bit in a whole WAL record of a node that is down, one that has another record
  // after it (PickWalDamage), in a segment chosen by `random`. Says where.
  struct Corruption {
    std::string file;  // the segment's path
    WalDamage damage;
  };
  absl::StatusOr<Corruption> CorruptWal(int id, uint64_t random);
  // SIGCONT to paused nodes, SIGTERM to all, SIGKILL after `grace`. The exit codes of the
  // nodes that were running (128 + signal when killed).
  std::map<int, int> StopAll(absl::Duration grace = absl::Seconds(20));

  bool Running(int id);
  bool Paused(int id) const;
  // It exited on its own with an error (e.g. refused to start), not killed by us.
  bool Refused(int id);
  // Observes every node (one Status call each, 500 ms deadline; paused nodes are not asked).
  std::map<int, NodeView> Observe();
  // Asks node `via` (the leader) to hand leadership to `target` (Maintenance.MoveLeader).
  absl::Status MoveLeader(int via, int target, absl::Duration timeout = absl::Seconds(5));
  // Every key and value of node `id`, read serializably (its applied state).
  absl::StatusOr<std::map<std::string, std::string>> Contents(int id);

 private:
  struct Node {
    int id = 0;
    int client_port = 0;
    int peer_port = 0;
    int admin_port = 0;
    std::string dir;
    pid_t pid = -1;
    bool paused = false;
    std::optional<int> last_exit;  // of the last process, once reaped
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
  };

  explicit RealCluster(RealClusterOptions options) : options_(std::move(options)) {}
  Node& node(int id);
  const Node& node(int id) const;
  void Reap(Node& n);  // non-blocking: notices an exited process
  absl::Status StopOrContinue(int id, bool stop);  // SIGSTOP / SIGCONT
  absl::Status WriteConfig(const Node& n) const;

  RealClusterOptions options_;
  std::vector<Node> nodes_;
};

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_REAL_CLUSTER_H_
