// An in-memory cluster of Raft nodes for tests (testonly).
//
// Each node has a simulated disk (its durable log and hard state) and an apply log. The harness
// plays the driver: after every input it drains the node's Ready, persists synchronously (unless
// the node's persistence is switched to manual), applies committed entries and queues outgoing
// messages on an in-test network that tests deliver, drop or partition explicitly.
// Everything that happens is appended to a readable event log (used by scenario files).
#ifndef AMATERS_ENGINE_RAFT_TESTING_HARNESS_H_
#define AMATERS_ENGINE_RAFT_TESTING_HARNESS_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/raft/raft.h"

namespace amaters::raft::testing {

class Harness {
 public:
  // Creates nodes 1..n. `tweak` may adjust each node's Config before creation.
  explicit Harness(int n, std::function<void(Config&)> tweak = {}, uint64_t seed = 1);

  Raft& node(NodeId id);
  std::vector<NodeId> ids() const;
  bool alive(NodeId id) const { return nodes_.at(id).raft != nullptr; }

  // Inputs; each is followed by draining the node's Ready.
  void Tick(NodeId id, int n = 1);
  void Campaign(NodeId id);
  ProposeResult Propose(NodeId id, std::string data);
  ProposeResult ProposeConfChange(NodeId id, const ConfChange& cc);
  // Starts node `id` (new to the harness) with the bootstrap configuration of nodes 1..n: it
  // learns its own membership from the leader's log, as a node that joins a cluster does.
  void AddNode(NodeId id);
  // A node that joins with `bootstrap_voters` as its bootstrap configuration (a server started
  // with initial_cluster_state "existing" and the current members as its peers).
  void AddNode(NodeId id, std::vector<NodeId> bootstrap_voters);
  absl::Status ReadIndex(NodeId id, std::string ctx);
  absl::Status TransferLeadership(NodeId id, NodeId target);

  // Network. Messages wait in `in_flight()` until delivered or dropped.
  const std::vector<Message>& in_flight() const { return in_flight_; }
  // Delivers every in-flight message that passes `filter` (all when empty), in order, then
  // drains the receivers' Ready. Messages cut by a partition are dropped. Returns the count.
  int Deliver(std::function<bool(const Message&)> filter = {});
  // Single-message control for randomized schedules: deliver / drop / duplicate the k-th
  // in-flight message (k < in_flight().size()).
  void DeliverAt(size_t k);
  void DropAt(size_t k);
  void DuplicateAt(size_t k);
  // Drops in-flight messages that pass `filter`. Returns the count.
  int Drop(std::function<bool(const Message&)> filter);
  // Delivers until nothing is in flight (bounded). Returns false if it did not settle.
  bool Stabilize(int max_rounds = 10000);
  // Cuts every link between different groups (nodes not listed form one more group).
  void Partition(const std::vector<std::set<NodeId>>& groups);
  void Heal();
  bool Connected(NodeId a, NodeId b) const;

  // Planted bugs for every node, now and after restarts (checker self-tests).
  void SetPlantedBugs(const Raft::PlantedBugs& bugs);

  // Durability.
  void SetManualPersist(NodeId id, bool manual);
  // Completes the node's pending writes (manual mode) in order; returns how many.
  int Persist(NodeId id);
  void Crash(NodeId id);  // loses volatile state and writes not yet completed
  void Restart(NodeId id);
  // Replaces a node's durable state (log terms, hard state) and restarts it: for constructing
  // the paper's Figure 7/8 situations.
  void RestoreNode(NodeId id, const std::vector<Term>& log_terms, HardState hs);

  // Snapshots: TakeSnapshot records one at the node's applied index (Raft::SnapshotTaken; the
  // harness persists it like any write); Compact drops in-memory entries (Raft::CompactLog).
  // A snapshot's data is modelled as the committed prefix it covers: a follower that installs
  // one gets exactly the entries every node applied up to its index.
  absl::Status TakeSnapshot(NodeId id);
  absl::Status Compact(NodeId id, Index index);

  // Leader helpers.
  NodeId Leader() const;  // the leader with the highest term, kNone if none

  // Every entry each node has applied, by index (checked for state-machine safety on apply).
  const std::map<Index, Entry>& applied(NodeId id) const { return nodes_.at(id).applied; }
  std::vector<ReadState> TakeReadStates(NodeId id);

  // Safety violations seen so far (state-machine safety on apply), empty when all is well.
  const std::vector<std::string>& violations() const { return violations_; }

  // The event log since the last call (one event a line).
  std::string TakeEvents();
  void set_record_events(bool on) { record_ = on; }

 private:
  struct NodeState {
    std::unique_ptr<Raft> raft;
    Config config;
    // Disk.
    SnapshotMeta durable_snapshot;
    std::vector<Entry> durable_log;  // entries after durable_snapshot.index
    HardState durable_hs;
    bool manual_persist = false;
    std::vector<PersistRequest> pending_writes;
    // State machine (volatile; rebuilt by re-applying after a restart).
    std::map<Index, Entry> applied;
    std::vector<ReadState> read_states;
    Role last_role = Role::kFollower;
    Term last_term = 0;
  };

  void Drain(NodeId id);
  void InstallSnapshot(NodeId id, const SnapshotMeta& snap);
  void Dropped(const Message& m);
  void DeliverMessage(const Message& m);
  void WriteToDisk(NodeState& n, const PersistRequest& req);
  void Event(const std::string& line);
  void NoteRoleChange(NodeId id);
  NodeState& state(NodeId id) { return nodes_.at(id); }

  std::map<NodeId, NodeState> nodes_;
  std::vector<Message> in_flight_;
  std::map<NodeId, int> group_;  // partition group per node; empty when healed
  std::map<Index, Entry> committed_;  // every entry applied anywhere (state machine safety)
  std::vector<std::string> violations_;
  Raft::PlantedBugs bugs_;
  bool record_ = true;
  std::string events_;
};

// One step of a random schedule, shared by the Raft property test and fuzz/raft_step. `kind`
// in [0, 100) picks the action, weighted towards ticks and deliveries so that elections and
// commits happen between the faults; `a` and `b` pick nodes, messages and variants.
struct ScheduleOptions {
  // Called with a message just before it is delivered (e.g. a wire round-trip check).
  std::function<void(const Message&)> before_deliver;
  // Proposals carry 0..63 bytes of padding chosen by `b`, so that max_msg_bytes splits appends.
  bool pad_proposals = false;
};
void ApplyScheduleStep(Harness& h, int kind, int a, int b, int* proposals,
                       const ScheduleOptions& options = {});

}  // namespace amaters::raft::testing

#endif  // AMATERS_ENGINE_RAFT_TESTING_HARNESS_H_
