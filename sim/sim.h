// The deterministic simulator (docs/simulation.md): one thread, one seed, virtual time.
//
// A Simulation runs N node::Node replicas — each with a SimDisk and an in-memory key-value
// state machine — over a simulated network, with clients issuing put / get / delete /
// compare-and-swap. Every random choice comes from PRNG streams derived from the seed, so the
// same seed and the same code give the same event trace, byte for byte (trace_hash).
//
// Checkers run on every event: election safety, committed entries never change (log matching,
// leader completeness), state machine safety, terms and commit indexes never decrease. At the
// end: liveness (after healing, a leader emerges, every replica applies the same log, final
// reads complete) and linearizability of the whole client history (sim/checker).
#ifndef AMATERS_SIM_SIM_H_
#define AMATERS_SIM_SIM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/rand.h"
#include "engine/kv/auto_compaction.h"
#include "engine/kv/lessor.h"
#include "engine/kv/memory_state_machine.h"
#include "engine/kv/watch.h"
#include "engine/node/node.h"
#include "engine/raft/types.h"
#include "engine/wal/sim_disk.h"
#include "sim/checker/linearizability.h"

namespace amaters::sim {

using raft::NodeId;
constexpr uint64_t kMs = 1000 * 1000;  // virtual time is in nanoseconds
constexpr uint64_t kSec = 1000 * kMs;

// Planted bugs (docs/design.md §4.8): test-only switches the checkers must catch.
std::vector<std::string> PlantedBugNames();

// Everything one run depends on besides the seed's PRNG streams. DrawConfig() picks these from
// the seed (swarm testing: each seed its own fault mix and cluster options).
struct SimConfig {
  uint64_t seed = 1;
  int nodes = 3;
  // Raft timing: one tick is tick_ms of virtual time (each node drifts by up to drift_ppm).
  uint64_t tick_ms = 50;
  uint64_t drift_ppm = 10000;
  int heartbeat_ticks = 2;   // 100 ms
  int election_ticks = 6;    // 300-600 ms
  // Production timing instead of the tick counts above: the operator's [cluster] keys, mapped
  // onto ticks by node::ConfigureTiming exactly as the server maps them (tick_ms and the tick
  // counts above are then what that mapping chose).
  bool production_timing = false;
  uint64_t heartbeat_interval_ms = 100;
  uint64_t election_timeout_ms = 300;
  uint64_t election_jitter_min_ms = 150;
  uint64_t election_jitter_max_ms = 300;
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;
  uint64_t max_msg_bytes = 1 << 20;     // entries per append message, by size (Raft batching)
  uint64_t max_inflight_msgs = 256;
  wal::SyncMode sync_mode = wal::SyncMode::kAlways;
  // Failure detector: a follower this many entries behind raises slow_replication.
  uint64_t slow_replication_entries = 1000;
  // Network.
  uint64_t latency_min_us = 100;
  uint64_t latency_max_us = 5000;
  double drop = 0.0;
  double duplicate = 0.0;
  // Disk: write latency per batch, fsync latency; slow disks multiply both.
  uint64_t write_us = 50;
  uint64_t fsync_us = 1000;
  // Fault mix for the safety phase: mean time between fault events, and which kinds are on.
  uint64_t fault_interval_ms = 1000;
  bool partitions = true;
  bool crashes = true;
  bool pauses = true;
  bool clogs = true;
  bool slow_disks = true;
  bool disk_full = true;
  bool corruption = false;
  // Snapshots (docs/snapshots.md): small thresholds so that snapshots, compaction and installs
  // happen within a run; 0 never snapshots. Chunks in flight are corrupted with this chance.
  uint64_t snapshot_threshold = 0;
  uint64_t snapshot_catchup = 5;
  uint64_t max_snapshots = 2;
  uint64_t snapshot_chunk_bytes = 1024;
  uint64_t wal_segment_bytes = 64 << 10;  // small segments: roll-over and compaction happen
  double chunk_corruption = 0.0;
  // Membership changes (docs/membership.md): nodes above initial_voters (0: none) start outside
  // the configuration; with `reconfig` the leader is asked every reconfig_interval_ms (on
  // average) to add a learner, promote one, remove a member or replace a voter (joint).
  int initial_voters = 0;
  bool reconfig = false;
  uint64_t reconfig_interval_ms = 1500;
  // Targeted faults (FoundationDB's buggify): at the moments where Raft's rules matter most —
  // a leader just elected, a leader's log just grown, a leader's commit just advanced — the
  // leader is crashed (or paused, or isolated, per the fault kinds that are on) at once or
  // after up to two network latencies, with these chances in percent; 0 is off. One targeted
  // fault per node at a time; a crashed node restarts, a paused one resumes, an isolated one
  // rejoins after 200-2000 ms.
  uint64_t buggify_elected_percent = 0;
  uint64_t buggify_appended_percent = 0;
  uint64_t buggify_committed_percent = 0;
  // Which kinds a targeted fault may take (bits: 1 crash, 2 pause, 4 isolate), among the
  // kinds the seed has on.
  uint32_t buggify_kinds = 7;
  // Workload.
  int clients = 4;
  // The lease client (grants, keep-alives, revokes; the lease checker's history). Scenario
  // scripts turn it on with `option lease_client on`.
  bool lease_client = true;
  int keys = 4;
  uint64_t client_timeout_ms = 2000;
  uint64_t think_ms = 20;
  // Phases.
  uint64_t safety_ms = 30000;
  uint64_t liveness_ms = 30000;  // bound for recovery after healing
  std::string bug;               // planted bug, or empty

  std::string Describe() const;
};

// Swarm testing: a configuration drawn from the seed.
SimConfig DrawConfig(uint64_t seed);
// Sets production_timing and derives tick_ms and the tick counts from the [cluster]-style
// timing fields, as the server does (node::ConfigureTiming).
void SetProductionTiming(SimConfig* c);

struct RunStats {
  uint64_t events = 0;
  uint64_t messages = 0;
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_unknown = 0;
  uint64_t leader_changes = 0;
  uint64_t crashes = 0;
  uint64_t faults = 0;
  uint64_t commits = 0;  // highest commit index reached
  uint64_t snapshots = 0;  // snapshots taken (all nodes)
  uint64_t installs = 0;   // snapshots installed from a leader (all nodes), each checked
  uint64_t conf_changes = 0;  // configuration changes applied (each checked)
};

struct RunResult {
  bool ok = true;
  std::string failure;   // what broke (first failure)
  uint64_t trace_hash = 0;
  double sim_seconds = 0;
  RunStats stats;
  checker::CheckResult linearizability;
  std::vector<std::string> trace;  // readable event log, if requested
};

class Simulation {
 public:
  Simulation(const SimConfig& config, bool keep_trace);
  ~Simulation();

  // --- Fault controls (the random fault schedule and scenario scripts use these). ---
  // Symmetric partition into groups; nodes not listed are isolated.
  void Partition(const std::vector<std::set<NodeId>>& groups);
  void BlockLink(NodeId from, NodeId to);  // one direction only
  void Clog(NodeId from, NodeId to, uint64_t extra_ns);  // delays every message on the link
  void Heal();  // network only
  void Crash(NodeId id);
  void Restart(NodeId id);
  void Pause(NodeId id);
  void Resume(NodeId id);
  void SetSlowDisk(NodeId id, bool slow);
  void SetDiskFull(NodeId id, bool full);
  // Flips a bit in a durable WAL record followed by another durable record of its segment (so
  // that no crash can leave it last, mistaken for a torn tail), in both the current and the
  // durable contents; the caller then crashes the node, which detects it at its next start and
  // refuses to start.
  bool CorruptWal(NodeId id);
  // A down node gets an empty disk: no WAL, no snapshots. False if it is up.
  bool Wipe(NodeId id);
  // Snapshots node `id` installed from a leader, over all its incarnations.
  uint64_t installs(NodeId id) const;
  // Stops new client operations (pending ones continue).
  void StopWorkload() { workload_on_ = false; }
  void StartWorkload();  // clients the stop left idle start again
  // Admin commands (scenario scripts): node `from` hands leadership to `to` (thesis §3.10);
  // node `id` starts an election now. FailedPrecondition if the node is down or paused,
  // otherwise the node's own answer.
  absl::Status TransferLeadership(NodeId from, NodeId to);
  absl::Status Campaign(NodeId id);
  // Adds a line to the event trace, hashed like every other (e.g. a scenario command).
  void Note(const std::string& line) { Trace(line); }

  // --- Running. ---
  void RunFor(uint64_t ns);
  // Runs until `done` holds (checked after every event) or `max_ns` passes; returns done().
  bool RunUntil(const std::function<bool()>& done, uint64_t max_ns);
  // The random fault schedule of the safety phase, until `until_ns`.
  void StartRandomFaults(uint64_t until_ns);
  // Targeted faults (SimConfig buggify_*: docs/simulation.md §4) until `until_ns`.
  void StartTargetedFaults(uint64_t until_ns);
  // Random membership changes through the leader until `until_ns` (config reconfig).
  void StartReconfiguration(uint64_t until_ns);
  // Asks the current leader for `change`: kUnavailable if no leader runs, or the leader's
  // refusal (the change takes effect when applied: raft().configuration()).
  absl::Status ProposeConfChange(const raft::ConfChange& change);
  // Heals everything (network, pauses, disks), restarts crashed nodes, stops faults.
  void HealAll();
  // Liveness: a leader, every running replica applied the same log, pending client operations
  // finished, final reads of every key completed. Sets the failure on timeout.
  bool CheckLiveness(uint64_t max_ns);
  // Replicas that finished agree on the applied state.
  bool CheckConvergence();
  // The watch checker's end (after convergence): every watcher got its range's whole
  // committed history, once, in order.
  bool CheckWatchers();
  // The lease checker's end: once nobody keeps leases alive, every lease expires (its revoke
  // commits) and takes its keys, within a bound.
  bool CheckLeases();
  // A leader exists and every replica that runs has applied exactly its commit index.
  bool AllCaughtUp() const;
  // Linearizability of the history so far.
  checker::CheckResult CheckLinearizability();

  // --- State. ---
  uint64_t now() const { return now_; }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }
  void Fail(const std::string& why);
  std::optional<NodeId> Leader() const;  // the up leader with the highest term
  bool IsUp(NodeId id) const;
  bool IsPaused(NodeId id) const;
  bool IsRefused(NodeId id) const;
  // Alerts a node fired (node::Node's Effects::alerts), over all its incarnations, in order.
  struct AlertRecord {
    std::string key;  // dedup key, e.g. "node_failed:3"
    uint64_t at_ms = 0;
  };
  const std::vector<AlertRecord>& alerts(NodeId id) const;  // refused to start: its WAL corruption was detected
  int nodes() const { return config_.nodes; }
  const node::Node* node(NodeId id) const;
  uint64_t trace_hash() const { return hash_; }
  const RunStats& stats() const { return stats_; }
  std::vector<std::string> TakeTrace() { return std::move(trace_); }
  const SimConfig& config() const { return config_; }

 private:
  struct SimNode;
  class SimDurableState;
  struct ClientOp;
  struct Client;
  // What an event does. The frequent kinds carry their argument inline, so that an event is
  // four trivially copyable words (no allocation, cheap heap moves); anything else is a
  // std::function waiting in fns_, and the event holds its slot.
  enum class EventKind : uint8_t {
    kFunction,    // arg: slot in fns_
    kDeliver,     // arg: slot in in_flight_
    kTick,        // arg: node key (id << 32 | incarnation)
    kDiskDone,    // arg: node key
    kClientStep,  // arg: client index
    kOpDeadline,  // arg: op index
  };
  struct Event {
    uint64_t time;
    uint64_t seq;
    uint64_t arg;
    EventKind kind;
    bool operator>(const Event& o) const {
      return time != o.time ? time > o.time : seq > o.seq;
    }
  };

  void At(uint64_t time, std::function<void()> fn);
  void At(uint64_t time, EventKind kind, uint64_t arg);
  bool Step();  // runs one event; false if none
  void Trace(const std::string& line);
  void Mix(uint64_t v);

  // Nodes.
  void Start(SimNode& n);
  void Process(SimNode& n);
  // Client requests the node's lifecycle finished without a result.
  void Finished(SimNode& n);
  void ApplyEntries(SimNode& n, std::vector<node::ApplyItem>& items);
  void ApplyRun(SimNode& n, std::vector<node::ApplyItem>& items, size_t from, size_t to);
  void InstallSnapshot(SimNode& n, const raft::SnapshotMeta& meta);
  // Imports snapshot bytes into a fresh state machine (nullptr and a failure if they do not).
  std::unique_ptr<kv::MemoryStateMachine> LoadSnapshot(SimNode& n, const std::string& bytes);
  // The snapshot file of the committed prefix up to `index`, built from the log every
  // replica applied (the checker's reference for a snapshot's contents).
  std::string ExpectedSnapshot(raft::Index index);
  void RunSnapshotEffects(SimNode& n, node::Effects& e);
  void CheckNode(SimNode& n);
  void StartDisk(SimNode& n, wal::DiskBatch batch);
  void ScheduleTick(SimNode& n);
  SimNode* Incarnation(uint64_t key);  // the node of a key, if it is still that incarnation
  void TickEvent(uint64_t key);
  // Evaluates the node's health as the server does, so its invariants hold under every fault.
  void CheckHealth(SimNode& n);
  void DiskDoneEvent(uint64_t key);
  void Send(raft::Message m);
  uint64_t Park(raft::Message m);         // stores a message in flight, returns its slot
  void DeliverParked(uint64_t slot);
  void Deliver(const raft::Message& m);

  // Clients.
  void ClientStep(int client);
  void Complete(uint64_t op, std::optional<std::string> output, bool cas_ok);
  void FailOp(uint64_t op, bool definite);
  void OpDeadline(uint64_t op);
  void FinalReads();

  // Watchers (engine/kv/watch.h), the watch checker (docs/simulation.md): a few clients watch
  // a range from revision 1 through one node at a time, move to another node when theirs
  // crashes (and now and then on their own), resuming from the revision after the last event
  // they got; every event they get must be the next of the committed history in their range.
  struct WatchClient;
  kv::WatchHub& Hub(SimNode& n);       // n's hub, new when its state machine is
  // To `target`, or to a random running node when 0.
  void WatchConnect(size_t client, NodeId target = 0);
  void WatchDisconnect(SimNode& n);    // every client of n's streams (n crashed)
  void WatchDeliver(SimNode& n);       // catch up and hand out n's hub output
  void RecordCommitted(raft::Index first, raft::Index last);  // the reference history
  // The leader's auto-compaction (SimAutoCompaction: periodic, 5 s), proposed like a client's
  // write with a token of its own.
  void AutoCompact(SimNode& n);

  // Leases (engine/kv/lessor.h) and the lease checker (docs/simulation.md): every node keeps a
  // Lessor mirroring its applied leases; the leader's decides expiry on its own drifting clock
  // and proposes revokes and checkpoints, as the server's. One lease client grants leases,
  // attaches a key, keeps some alive (a ReadIndex round, then Renew on the node that leads,
  // as the server) and abandons or revokes them. Checker: no leader decides a lease expired
  // earlier than TTL after a keep-alive (or the grant) was acknowledged, allowing for clock
  // drift; at the end every abandoned lease expires and takes its keys.
  struct LeaseClient;
  struct LeaseRecord;
  uint64_t LocalMs(const SimNode& n) const;  // n's own clock, drifting as its ticks
  void ResetLessor(SimNode& n);
  void MirrorLease(SimNode& n, const kv::ApplyItem& item, const kv::ApplyResult& result);
  void LeaseTick(SimNode& n);
  void LeaseStep();
  // Submits `c` (a lease command) to node `target`; `done` gets the result once n applied it,
  // or nullptr when it did not (refused, timed out, node down).
  void LeasePropose(NodeId target, kv::Command c,
                    std::function<void(const kv::ApplyResult*)> done);
  void LeaseKeepAlive(NodeId target, int64_t id, std::function<void(bool acked)> done);
  // Answers a lease request or keep-alive barrier (once), in an event of its own.
  void LeaseRequestDone(uint64_t request, const kv::ApplyResult* result);
  // The checker, for each committed entry: an expiry's revoke commits no earlier than TTL
  // after the lease's last acknowledged keep-alive (allowing for drift).
  void CheckExpiry(const kv::ApplyItem& item);
  void LeaseReadDone(uint64_t request, bool confirmed);

  void RandomFault(uint64_t until_ns);
  // A targeted fault on leader `n` at `moment` with `percent` chance (SimConfig buggify_*).
  void Buggify(SimNode& n, const char* moment, uint64_t percent);
  void TargetedFault(NodeId id, uint64_t incarnation, const char* moment);
  void RandomConfChange(uint64_t until_ns);
  // Hands `m` to n's node; a refusal is a failure unless it comes from a non-member.
  void Receive(SimNode& n, const raft::Message& m);
  // Configuration checkers (docs/simulation.md): the changes applied form one history whose
  // steps keep quorums overlapping; every node's configuration is the one its applied log
  // decided; a leader has at most one change pending; a leader commits only what a quorum of
  // its configuration holds.
  void RecordConfChange(SimNode& n, const raft::Entry& e);
  void CheckConfiguration(SimNode& n);
  void CheckCommitQuorum(SimNode& n, raft::Index index);
  raft::Configuration ConfigurationAt(raft::Index index) const;
  bool IsMember(NodeId id) const;  // of the current leader's configuration (all if none)

  SimConfig config_;
  bool keep_trace_;
  SplitMix64 net_rng_;
  SplitMix64 fault_rng_;
  SplitMix64 work_rng_;
  SplitMix64 disk_rng_;
  SplitMix64 reconfig_rng_;
  SplitMix64 buggify_rng_;
  // The kinds a targeted fault may take: 'c'rash, 'p'ause, 'i'solate, those the seed has on
  // and buggify_kinds allows (from the config; empty: no targeted faults).
  std::vector<char> targeted_kinds_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::vector<std::unique_ptr<SimNode>> nodes_;  // index id - 1
  std::set<std::pair<NodeId, NodeId>> blocked_;  // (from, to)
  std::set<NodeId> isolated_;  // cut off by a targeted fault, apart from partitions and heals
  bool Cut(NodeId from, NodeId to) const {
    return blocked_.count({from, to}) > 0 || isolated_.count(from) > 0 || isolated_.count(to) > 0;
  }
  std::map<std::pair<NodeId, NodeId>, uint64_t> clogged_;
  std::vector<std::function<void()>> fns_;  // EventKind::kFunction bodies, by slot
  std::vector<uint64_t> free_fns_;
  std::vector<raft::Message> in_flight_;  // messages in flight, by slot
  std::vector<uint64_t> free_slots_;
  std::string failure_;
  bool faults_off_ = false;
  uint64_t faults_until_ns_ = 0;    // end of targeted faults (StartTargetedFaults)
  uint64_t hash_ = 1469598103934665603ull;
  std::vector<std::string> trace_;
  RunStats stats_;

  // Checker state.
  std::map<raft::Term, NodeId> leaders_;                    // election safety
  // index-1 -> (entry term, lowest term in which any node saw it committed): an upper bound
  // of the term that committed it.
  std::vector<std::pair<raft::Term, raft::Term>> committed_;
  std::vector<uint64_t> applied_;                            // index-1 -> entry hash
  // index-1 -> the entry decoded once (kv::DecodeEntry) by the first node that applied it.
  // Every replica applies the same bytes at an index (checked through applied_), so the others
  // apply this copy instead of parsing the same protobuf again.
  std::vector<kv::ApplyItem> decoded_;
  // (index, configuration after the change at that index), in log order; the bootstrap one at 0.
  std::vector<std::pair<raft::Index, raft::Configuration>> conf_history_;
  static constexpr uint64_t kConfRequestBase = uint64_t{1} << 62;
  uint64_t next_conf_request_ = kConfRequestBase;  // requests of ProposeConfChange
  static constexpr uint64_t kCompactRequestBase = uint64_t{1} << 61;
  uint64_t next_compact_request_ = kCompactRequestBase;  // requests of AutoCompact
  std::map<uint64_t, absl::Status> conf_refusals_;  // the last change's refusal, if any

  // Watch checker state.
  SplitMix64 watch_rng_;
  std::vector<WatchClient> watch_clients_;
  kv::WatchStreamId next_watch_stream_ = 1;
  kv::MemoryStateMachine watch_ref_;            // the committed entries, applied once
  std::vector<kv::KeyValue> committed_versions_;  // their versions, in revision order

  // Lease checker state.
  SplitMix64 lease_rng_;
  std::unique_ptr<LeaseClient> lease_client_;
  std::map<int64_t, LeaseRecord> leases_;  // every lease granted, by id
  static constexpr uint64_t kLeaseRequestBase = uint64_t{1} << 60;
  uint64_t next_lease_request_ = kLeaseRequestBase;
  // Lease requests in flight: request id -> what to do when applied (or not).
  std::map<uint64_t, std::function<void(const kv::ApplyResult*)>> lease_requests_;
  std::map<uint64_t, std::function<void(bool)>> lease_reads_;  // keep-alive barriers
  std::set<uint64_t> expiry_revokes_;  // request ids of the revokes lessors decided

  // Workload.
  bool workload_on_ = true;
  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;
  uint64_t next_request_ = 1;
  std::map<uint64_t, uint64_t> request_op_;  // node request id -> op index
  int final_reads_pending_ = 0;
  uint64_t pending_ops_ = 0;  // ops_ entries still pending
};

// One run, start to finish: `script` drives the safety phase (faults, waiting), then every
// fault is healed and liveness, convergence and linearizability are checked. Invariant
// assertions inside the engine (AM_CHECK) become this run's failure instead of aborting.
// `keep_trace` keeps the readable event log.
RunResult RunScripted(const SimConfig& config, bool keep_trace,
                      const std::function<void(Simulation&)>& script);

// One seed: RunScripted with the seed's random fault schedule for config.safety_ms.
RunResult RunSeed(const SimConfig& config, bool keep_trace);

}  // namespace amaters::sim

#endif  // AMATERS_SIM_SIM_H_
