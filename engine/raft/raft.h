// A pure, deterministic Raft state machine (Ongaro's thesis; etcd/raft's structure).
//
// Inputs:  Tick(), Step(message), Propose(data), ReadIndex(context), TransferLeadership(target),
//          Campaign(), and the driver's completions OnPersisted(seq) / OnApplied(index).
// Outputs: TakeReady() returns, as data, what to persist, which messages may be sent now, which
//          committed entries to apply, and which reads are ready to serve.
//
// No I/O, clocks, threads or global randomness: time is a count of Tick() calls and the
// randomized election timeout comes from a PRNG seeded through Config::rng_seed.
//
// Driver contract (see docs/architecture.md):
//  1. After any input, call TakeReady() (HasReady() says whether it has anything).
//  2. Persist `ready.persist` (truncate the durable log at persist.entries[0].index, append the
//     entries, then write the hard state), in order of `seq`, and call OnPersisted(seq) once it is
//     durable. A request must survive a crash whole or as a prefix (entries before the hard
//     state); Create() rejects a hard state whose commit is beyond the durable log. Messages
//     that depend on durable state are held inside the engine until then (thesis §3.8:
//     persist before responding); `ready.messages` may be sent at once.
//  3. Apply `ready.committed_entries` in order and call OnApplied(last index applied). They are
//     always durable locally already, but the hard state carrying their commit index may not
//     be: Create() rejects an applied index beyond the restored commit, so a driver whose state
//     machine can get ahead raises the restored commit to its applied index (node::Node does;
//     applied entries were committed, so this is safe).
//  4. Serve each ReadState once the state machine has applied its index.
#ifndef AMATERS_ENGINE_RAFT_RAFT_H_
#define AMATERS_ENGINE_RAFT_RAFT_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/rand.h"
#include "engine/raft/configuration.h"
#include "engine/raft/log.h"
#include "engine/raft/progress.h"
#include "engine/raft/types.h"

namespace amaters::raft {

enum class ReadOnlyOption : uint8_t {
  // ReadIndex (thesis §6.4): the leader confirms it is still leader with a heartbeat round
  // acknowledged by a quorum before a read is served. Safe under any clock behaviour.
  kSafe,
  // Lease reads (thesis §6.4.1): the leader serves reads at its commit index without a round
  // while it holds a lease: election_ticks - 1 ticks from the *send* time of the newest
  // heartbeat round a quorum acknowledged (no other leader can be elected sooner, because
  // followers ignore vote requests for election_ticks after hearing from the leader). Without a
  // lease (or during a leadership transfer) reads fall back to a ReadIndex round. Correct only
  // if clock drift between nodes is bounded and small relative to the election timeout.
  // Requires check_quorum (which enables the followers' stickiness).
  kLeaseBased,
};

struct Config {
  NodeId id = kNone;
  // The bootstrap configuration: the voters and learners a cluster starts with. `id` need
  // not be among them: a node joining a running cluster learns its membership from the leader
  // (it never campaigns before it is a voter). A snapshot's configuration, and the configuration
  // changes in the log after it, replace it (docs/membership.md).
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  // Ticks without hearing from a leader before a follower campaigns. The actual timeout is
  // election_ticks plus a jitter drawn uniformly (paper §5.2) each time the timer resets: from
  // [election_jitter_min_ticks, election_jitter_max_ticks] when election_jitter_max_ticks >= 0,
  // else from [0, election_ticks) (etcd's [election_ticks, 2 * election_ticks)). The jitter
  // only adds: leases and vote refusal still use election_ticks.
  int election_ticks = 10;
  int election_jitter_min_ticks = 0;
  int election_jitter_max_ticks = -1;
  // Ticks between leader heartbeats; must be < election_ticks.
  int heartbeat_ticks = 1;
  bool pre_vote = true;      // thesis §9.6
  bool check_quorum = true;  // thesis §6.2: a leader without a quorum for an election timeout steps down
  ReadOnlyOption read_only = ReadOnlyOption::kSafe;

  // Batching and flow control (thesis §10.2).
  uint64_t max_msg_bytes = 1 << 20;          // entries per append message, by payload size
  uint64_t max_inflight_msgs = 256;          // appends in flight per follower
  uint64_t max_inflight_bytes = 32 << 20;    // bytes in flight per follower (0 = no limit)
  uint64_t max_uncommitted_bytes = 64 << 20; // proposals accepted but not committed (0 = no limit)
  uint64_t max_committed_bytes_per_ready = 16 << 20;
  uint64_t max_pending_reads = 10000;
  // Snapshot transfers (kSnapshot) a leader runs at once; at most one per follower always.
  uint64_t max_snapshot_sends = 2;

  uint64_t rng_seed = 0;

  absl::Status Validate() const;
};

// What the node recovered from durable storage at start.
struct RestoredState {
  HardState hard_state;
  SnapshotMeta snapshot;       // the newest durable snapshot (index 0: none)
  std::vector<Entry> entries;  // contiguous, starting at snapshot.index + 1
  Index applied = 0;           // last index the state machine has durably applied
};

struct PersistRequest {
  uint64_t seq = 0;
  std::optional<HardState> hard_state;
  // If non-empty: drop every durable entry with index >= entries[0].index, then append these.
  std::vector<Entry> entries;
  // Written first, if set: a snapshot now durable in the state machine's store covers every
  // entry up to snapshot->index. If `snapshot_replaces_log`, it was received from the leader
  // and replaces the whole log (every durable entry is dropped); otherwise it was taken
  // locally and the entries above it stay. (Then the entries, then the hard state.)
  std::optional<SnapshotMeta> snapshot;
  bool snapshot_replaces_log = false;
};

struct Ready {
  std::optional<PersistRequest> persist;
  std::vector<Message> messages;
  // A snapshot received from the leader and now durable: restore the state machine from it
  // before applying `committed_entries` (which follow it), then report OnApplied(index).
  std::optional<SnapshotMeta> snapshot;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;

  bool Empty() const {
    return !persist && messages.empty() && !snapshot && committed_entries.empty() &&
           read_states.empty();
  }
};

struct ProposeResult {
  absl::Status status;     // OK, or why the proposal was not accepted
  Index index = 0;         // where the entry was appended (when OK)
  Term term = 0;           // the term it was appended in (when OK)
  NodeId leader = kNone;   // the known leader, for forwarding, when this node is not it
};

class Raft {
 public:
  static absl::StatusOr<std::unique_ptr<Raft>> Create(const Config& config,
                                                      RestoredState restored);

  // Advances logical time by one tick (election and heartbeat timers).
  void Tick();
  // Handles a message from a peer. Returns an error, and changes nothing, for messages that
  // are malformed, not addressed to this node, or from an unknown node.
  absl::Status Step(const Message& m);
  // The addressing checks of Step alone (to this node, from another voter, with a term).
  absl::Status CheckAddressed(const Message& m) const;
  // Appends a command if this node is the leader; otherwise rejects it naming the leader.
  ProposeResult Propose(std::string data);
  // Appends a configuration change if this node is the leader and no other change is pending
  // (appended but not yet applied here); kFailedPrecondition if the change is refused
  // (ApplyConfChange's rules, a learner promoted before it caught up, a leadership transfer
  // in progress), kUnavailable while another change is pending. It takes effect on each node
  // when applied; a leader removed by it then steps down; a joint configuration is left by
  // an empty change the leader appends as soon as the joint one is applied.
  ProposeResult ProposeConfChange(const ConfChange& cc);
  // Requests a linearizable read point (thesis §6.4). The result arrives later as a ReadState
  // carrying `context`. Fails at once if no leader is known.
  absl::Status ReadIndex(std::string context);
  // Asks the leader to hand leadership to `target` (thesis §3.10).
  absl::Status TransferLeadership(NodeId target);
  // Starts an election now (as if the election timer had fired).
  void Campaign();

  bool HasReady() const;
  Ready TakeReady();
  // The persist request `seq` (handed out by TakeReady) is durable. Must be called in order.
  void OnPersisted(uint64_t seq);
  // The state machine has applied every committed entry up to `index`.
  void OnApplied(Index index);

  // Snapshots (thesis §5). The driver's state machine durably holds a snapshot of its state at
  // `index` (applied, above the current snapshot). The next persist request records it; once
  // that is durable it becomes snapshot() (the one a leader sends) and CompactLog may drop
  // the entries it covers.
  absl::Status SnapshotTaken(Index index);
  // Drops in-memory entries up to `index` (at most snapshot().index and applied()).
  absl::Status CompactLog(Index index);
  // Leader: the snapshot transfer to `peer` failed; it goes back to probing (and gets the
  // snapshot again if it still needs it).
  void ReportSnapshotFailed(NodeId peer);
  // Follower: whether a snapshot at `meta` from the current leader would be installed now
  // (not at or below the commit index). The node asks before it receives the data.
  bool WouldInstall(const SnapshotMeta& meta) const {
    return meta.index > commit_ || bugs_.install_stale_snapshot;
  }
  const SnapshotMeta& snapshot() const { return snapshot_; }

  NodeId id() const { return id_; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId leader() const { return leader_; }
  NodeId vote() const { return vote_; }
  Index commit() const { return commit_; }
  Index applied() const { return applied_; }
  Index persisted_index() const { return persisted_index_; }
  const RaftLog& log() const { return log_; }
  HardState hard_state() const { return {term_, vote_, commit_}; }
  // The configuration in effect: every change applied up to applied().
  const Configuration& configuration() const { return conf_; }
  // Voters of both sets of the configuration, sorted.
  std::vector<NodeId> voters() const { return conf_.AllVoters(); }
  // Whether a learner is close enough to the leader to be promoted (leader only): its match
  // index within 10 % of the leader's last index, as etcd requires.
  bool LearnerCaughtUp(NodeId learner) const;
  // Leader only: replication progress of a peer (nullptr otherwise).
  const Progress* progress(NodeId peer) const;
  NodeId lead_transferee() const { return lead_transferee_; }
  // One line describing role, term, leader, indexes.
  std::string Describe() const;

  // Test-only switches for the simulator's planted bugs (docs/design.md §4.8). Off in production.
  struct PlantedBugs {
    bool vote_twice = false;             // grant a vote even if already voted in this term
    bool commit_old_terms = false;       // count replicas for entries of older terms (Figure 8)
    bool read_without_quorum = false;    // serve ReadIndex without the heartbeat round
    // hand out entries for apply once durable locally, before they commit (the invariant
    // applying <= commit is skipped too, so that the simulator's checkers must find it)
    bool apply_before_commit = false;
    // take a leader's snapshot even at or below the commit index (rolls the follower back)
    bool install_stale_snapshot = false;
    // node::Node compacts the WAL up to the applied index, past what the snapshot covers
    bool compact_past_snapshot = false;
    // node::Node hands a received snapshot to Raft when its last chunk arrives, unchecked,
    // before the driver verified and kept the whole copy
    bool install_unverified_chunk = false;
    // a leader appends a configuration change while another is still pending
    bool overlapping_conf_changes = false;
    // learners count for commitment and quorum as if they were voters
    bool learner_in_quorum = false;
    // a candidate still asks the voters its configuration removed and counts their votes
    bool removed_node_votes = false;
    // grant a vote (and a pre-vote) to a candidate whose log is behind ours (paper §5.4.1)
    bool vote_stale_log = false;
    // acknowledge appended entries before they are durable (paper Figure 2: "respond to RPCs
    // only after updating stable storage")
    bool ack_before_fsync = false;
  };
  void set_planted_bugs(const PlantedBugs& bugs) { bugs_ = bugs; }
  const PlantedBugs& planted_bugs() const { return bugs_; }

 private:
  explicit Raft(const Config& config);

  // Role transitions (paper §5.2).
  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void ResetTerm(Term term);
  void ResetRandomizedElectionTimeout();
  void StartElection(bool pre_vote, bool transfer);
  // Records a vote response; returns granted/rejected/pending (+1/-1/0) once decided.
  int TallyVote(NodeId from, bool granted);

  void StepFollower(const Message& m);
  void StepCandidate(const Message& m);
  void StepLeader(const Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  void HandleReadIndexRequest(NodeId from, std::string context);
  // kReadIndexResp.reject_hint values (types.h).
  static constexpr Index kReadRefusedNotLeader = 0;
  static constexpr Index kReadRefusedFull = 1;
  // What the requester's client hears for a refusal `why`.
  static absl::Status ReadRefusal(Index why) {
    return why == kReadRefusedFull
               ? absl::ResourceExhaustedError(
                     "etcdserver: too many requests (the leader's read queue is full)")
               : absl::UnavailableError("the read reached a node that is not the leader; retry");
  }
  // Answers a read that will not be served (a ReadState for our own, a rejection for a peer's).
  void RefuseRead(NodeId from, std::string context, Index why);
  void HandleSnapshot(const Message& m);
  bool SendSnapshot(NodeId to);

  void TickElection();
  void TickHeartbeat();

  // Leader replication.
  bool SendAppend(NodeId to, bool send_if_empty);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  bool MaybeCommit();
  void CommitTo(Index index);
  void AppendLocal(EntryType type, std::string data);
  bool CommittedInCurrentTerm() const;
  Index ApplyLimit() const;
  void UpdateSelfMatch();

  // ReadIndex (thesis §6.4).
  void OnHeartbeatRoundAcked();
  bool HasLease() const;
  bool ReadRoundDue() const;  // a read round is wanted and none is in flight
  void StartPendingReadRound();
  void ServeRead(NodeId from, Index index, std::string context);

  // Outgoing messages, held until the durable state they depend on is persisted.
  void Send(Message m);
  bool HasUnhandedPersist() const;
  void ReleaseMessages();

  bool IsVoter(NodeId id) const { return conf_.IsVoter(id); }
  // The voters a candidate asks: those of `conf` (the removed_node_votes bug adds every voter of
  // an earlier configuration).
  std::vector<NodeId> ElectorateOf(const Configuration& conf) const;
  // The configuration that decides quorums (the learner_in_quorum bug widens it).
  Configuration QuorumConfiguration() const;
  // Configurations.
  void ApplyConfChangeEntry(Index index, const ConfChange& cc);
  void SetConfiguration(Index index, Configuration conf);
  Configuration ConfigurationAt(Index index) const;
  void SyncProgressWithConfiguration();
  void HandOverLeadership();
  void MaybeAutoLeave();
  void CheckInvariants();

  // Configuration.
  const NodeId id_;
  Configuration conf_;  // in effect: applied up to applied_
  // Configurations applied above the newest snapshot, by the index that made them (bounded:
  // one per change entry, dropped as snapshots cover them).
  std::vector<std::pair<Index, Configuration>> conf_history_;
  // Changes handed out for apply, not yet applied (decoded: an install may drop their entries).
  std::deque<std::pair<Index, ConfChange>> conf_to_apply_;
  // An installed snapshot handed out for apply: its configuration takes effect when applied.
  std::optional<std::pair<Index, Configuration>> install_conf_to_apply_;
  Index pending_conf_index_ = 0;  // leader: the newest change appended (applied before another)
  const int election_ticks_;
  const int jitter_min_ticks_;
  const int jitter_max_ticks_;  // < 0: [0, election_ticks_)
  const int heartbeat_ticks_;
  const bool pre_vote_;
  const bool check_quorum_;
  const ReadOnlyOption read_only_;
  const uint64_t max_msg_bytes_;
  const uint64_t max_inflight_msgs_;
  const uint64_t max_inflight_bytes_;
  const uint64_t max_uncommitted_bytes_;
  const uint64_t max_committed_bytes_per_ready_;
  const uint64_t max_pending_reads_;
  const uint64_t max_snapshot_sends_;
  SplitMix64 rng_;
  PlantedBugs bugs_;

  // Persistent state (mirrored to disk through PersistRequest).
  Term term_ = 0;
  NodeId vote_ = kNone;
  RaftLog log_;
  SnapshotMeta snapshot_;  // newest durable snapshot

  // Snapshots on their way to durability: one taken locally, not yet handed for persistence;
  // one received from the leader, not yet handed; the newest received one, which the driver
  // restores (Ready::snapshot) once it is durable.
  std::optional<SnapshotMeta> unhanded_local_snapshot_;
  bool unhanded_install_ = false;
  std::optional<SnapshotMeta> install_;
  bool install_durable_ = false;
  uint64_t log_reset_seq_ = 0;  // persist requests before this seq predate the install

  // Volatile state.
  Role role_ = Role::kFollower;
  NodeId leader_ = kNone;
  Index commit_ = 0;
  Index applying_ = 0;  // last index handed out in committed_entries
  Index applied_ = 0;   // last index the driver reported applied
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::map<NodeId, bool> votes_;
  NodeId lead_transferee_ = kNone;
  uint64_t uncommitted_bytes_ = 0;

  // Leader state.
  std::map<NodeId, Progress> progress_;
  bool broadcast_pending_ = false;  // new proposals wait for TakeReady so they batch

  // ReadIndex state (leader): reads wait for a quorum to acknowledge their round.
  struct PendingRead {
    NodeId from;  // id_ for local requests
    Index index;
    uint64_t round;
    std::string context;
  };
  std::deque<PendingRead> pending_reads_;
  std::deque<std::pair<NodeId, std::string>> reads_awaiting_commit_;
  uint64_t read_round_ = 0;       // last heartbeat round broadcast this term
  uint64_t read_round_confirmed_ = 0;  // newest round a quorum has acknowledged this term
  // (round, tick it was sent) for rounds not yet acknowledged by a quorum; bounded.
  static constexpr size_t kMaxTrackedRounds = 1024;
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ticks_;
  std::optional<uint64_t> lease_start_tick_;  // leader lease start (kLeaseBased reads)
  uint64_t ticks_ = 0;            // Tick() calls since start: the engine's only clock
  bool read_round_needed_ = false;
  std::vector<ReadState> read_states_;

  // Durability bookkeeping. Persist requests carry increasing seq numbers; messages carry
  // the seq that must be durable before they leave.
  struct HeldMessage {
    uint64_t required_seq;
    Message message;
  };
  std::vector<HeldMessage> outbox_;  // a vector: clear() keeps its capacity for the next round
  std::vector<Message> ready_messages_;
  uint64_t next_seq_ = 1;        // seq of the next persist request
  uint64_t acked_seq_ = 0;       // every request <= this is durable
  uint64_t term_vote_seq_ = 0;   // request that carries the current (term, vote)
  bool force_persist_ = false;   // a held message needs next_seq_ handed out
  HardState handed_hard_state_;  // the newest hard state handed out for persistence
  struct InFlightPersist {
    uint64_t seq;
    Index last_index;  // 0 if the request carried no entries
    Term last_term;
    std::optional<SnapshotMeta> snapshot;
    bool install = false;
  };
  std::deque<InFlightPersist> persisting_;
  Index persisted_index_ = 0;    // every entry <= this is durable on this node

  // Invariant deltas.
  Term last_checked_term_ = 0;
  Index last_checked_commit_ = 0;
};

}  // namespace amaters::raft

#endif  // AMATERS_ENGINE_RAFT_RAFT_H_
