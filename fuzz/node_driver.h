// A minimal synchronous driver for one node::Node (fuzz targets only): a SimDisk for its
// WAL and a MemoryStateMachine it applies to, as the server's runtime does with PosixDisk and
// RocksDB (server/runtime/runtime.cc), and its requests through node::ClientRequests, without
// threads, clocks or a network. Outgoing
// messages are counted and dropped.
#ifndef AMATERS_FUZZ_NODE_DRIVER_H_
#define AMATERS_FUZZ_NODE_DRIVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/kv/memory_state_machine.h"
#include "engine/kv/state_machine.h"
#include "engine/node/node.h"
#include "engine/node/requests.h"
#include "engine/raft/types.h"
#include "engine/wal/sim_disk.h"

namespace amaters::fuzz {

class NodeDriver {
 public:
  // Node `id` of a cluster of `voters`, on an empty disk.
  NodeDriver(raft::NodeId id, std::vector<raft::NodeId> voters);

  node::Node& node() { return *node_; }
  bool stopped() const { return node_ == nullptr; }
  kv::MemoryStateMachine& state_machine() { return *sm_; }

  // Client requests, through the same lifecycle the server and the simulator run
  // (node::ClientRequests), with a deadline far beyond any fuzz input. `token` names the
  // outcome in applied / failed / reads_ready.
  void Propose(uint64_t token, std::string data);
  void Read(uint64_t token);

  // Runs the node's effects (disk batches, apply, reads, replies) until it has none left.
  // The node stops (stopped()) when it reports a fatal error.
  void Pump();
  // Ticks once (10 ms of driver time) and pumps.
  void Tick();
  // Crash (writes not yet synced are lost) and restart from the disk.
  void Restart();

  // Outcomes by request id, filled by Pump.
  std::map<uint64_t, kv::ApplyResult> applied;
  std::map<uint64_t, absl::Status> failed;
  std::vector<uint64_t> reads_ready;
  uint64_t messages_sent = 0;

 private:
  void Start();

  raft::NodeId id_;
  std::vector<raft::NodeId> voters_;
  wal::SimDisk disk_;
  std::unique_ptr<node::Node> node_;
  std::optional<node::ClientRequests> requests_;  // per incarnation, like node_
  std::unique_ptr<kv::MemoryStateMachine> sm_;
  uint64_t now_ms_ = 0;
};

}  // namespace amaters::fuzz

#endif  // AMATERS_FUZZ_NODE_DRIVER_H_
