// FailureDetector: failure detection from one node's point of view
// (docs/failover-and-alerts.md "The failure detector").
//
// One per node. Pure: the driver (in practice node::Node) feeds it
//   OnHeardFrom(peer, now_ms)  for every valid message received from `peer` (any type);
//   Tick(now_ms, view)         with a snapshot of Raft (ViewOf(raft)), at every Raft tick or
//                              more often;
// and collects TimedEvents with TakeEvents(). `now_ms` is the driver's monotonic clock (or the
// simulator's virtual clock) and never decreases across all calls. The detector never reads a
// clock and never acts: Raft decides elections and step-downs (see config.h "Who decides
// what"); this class only observes and reports.
//
// Whom a node judges. In Raft, followers hear only from the leader (and from candidates during
// elections), never from each other, so silence means something only where a message is due:
//  - The leader judges every follower (followers answer every heartbeat).
//  - A non-leader judges the last leader it knew (known_leader(), kept while no leader is
//    known, e.g. during the election that follows the leader's crash) and nobody else. A
//    follower never reports another follower.
//  - A peer starts being judged when the role or known leader makes it due; silence is counted
//    from max(last message from it, the moment it became judged). When a node stops judging a
//    peer (it lost leadership; a different leader became known) the peer's failed and slow
//    marks are dropped without an event: this node can no longer tell, and the new leader now
//    judges every follower (including the old leader) and reports for the cluster.
//
// Silence counts only while this node runs. The driver calls Tick at least once per
// heartbeat interval; a longer gap between two calls (Tick or OnHeardFrom) is a stall: this
// process was stopped or starved (SIGSTOP, a VM pause, a stalled loop) and could not have
// heard anyone meanwhile. Of such a gap only heartbeat_interval_ms counts: every duration
// below ("silent for", "leaderless for", "led for") is measured on that awake clock. And the
// end of a stall asks for a fresh round: silence and the leaderless period count from no
// earlier than the end of the last stall, so after waking up every peer gets a full failure
// timeout to be heard from (a resumed process first works through what piled up while it was
// stopped) instead of the silence it slept through being read as everyone's failure. Event
// times stay real (`now_ms`); stalls() and stalled_ms() count what was discounted.
//
// Events:
//  - NodeFailed{id}: a judged peer was silent for max_consecutive_failures heartbeat rounds,
//    i.e. awake silence >= max_consecutive_failures * heartbeat_interval_ms (after exactly N
//    silent rounds, not N-1). Once per failure.
//  - NodeRecovered{id}: the first message from a peer marked failed (OnHeardFrom).
//  - LeaderChanged{old, new, term}: the known leader became a different node. Not emitted when
//    the first leader is learned after start (old would be none) nor when the same node is
//    re-elected; periods with no known leader emit nothing by themselves.
//  - QuorumLost{cluster_size, reachable} / QuorumRestored: once per episode.
//      leader:     reachable = 1 + followers not failed; lost when reachable < quorum
//                  (cluster_size / 2 + 1), restored when reachable >= quorum.
//      non-leader: reachable = 1 + peers heard from within the last max_consecutive_failures
//                  rounds (awake silence < failure timeout, without the fresh round after a
//                  stall: reachability needs a message; candidates hear vote responses
//                  from reachable peers); lost when a leader was known at some point since
//                  start, none has been known for at least LeaderlessQuorumLossMs (config.h),
//                  and reachable < quorum; restored when a leader is known or reachable >=
//                  quorum. (Entering needs the leaderless period, leaving does not: a leader
//                  that steps down after losing its quorum stays in the episode instead of
//                  flapping.) A node that has known no leader since it started is waiting,
//                  not cut off: a restarted node cannot tell "nobody answers" from "nobody
//                  has dialled me back yet", and health reports it as starting.
//  - SlowReplication{follower, lag} (leader only): lag = last_index - match >= threshold, for a
//    follower that is not failed (NodeFailed covers that), once the leader has led for a full
//    failure timeout (a new leader's progress starts at match 0 until the first append
//    responses). SlowReplicationCleared{follower, lag} when lag <= threshold / 2: the
//    hysteresis keeps a follower hovering at the threshold from alerting every round.
//
// Bounds: at most kMaxVoters members; at most kMaxPendingEvents events wait for TakeEvents
// (beyond that the oldest are dropped and counted in dropped_events()).
#ifndef AMATERS_ENGINE_FAILOVER_DETECTOR_H_
#define AMATERS_ENGINE_FAILOVER_DETECTOR_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/alerts/event.h"
#include "engine/failover/config.h"
#include "engine/raft/raft.h"
#include "engine/raft/types.h"

namespace amaters::failover {

// A follower's replication progress as the leader sees it.
struct PeerProgress {
  raft::NodeId id = raft::kNone;
  raft::Index match = 0;
};

// What the detector needs to know about Raft at one moment.
struct RaftView {
  raft::NodeId self = raft::kNone;
  raft::Role role = raft::Role::kFollower;
  raft::NodeId leader = raft::kNone;  // kNone: no leader known right now
  raft::Term term = 0;
  raft::Index last_index = 0;         // last index of the local log
  std::vector<PeerProgress> progress;  // leader only: every other voter; empty otherwise
};

// The view of `raft` right now.
RaftView ViewOf(const raft::Raft& raft);

// The detector's opinion of one peer (for /status and health).
struct PeerState {
  raft::NodeId id = raft::kNone;
  bool judged = false;  // this node currently judges the peer's liveness
  bool failed = false;  // judged and silent for the failure timeout
  bool slow = false;    // leader only: in a SlowReplication episode
  std::optional<uint64_t> last_heard_ms;  // last message received from it, if any
};

class FailureDetector {
 public:
  static constexpr size_t kMaxVoters = raft::kMaxMembers;
  static constexpr size_t kMaxPendingEvents = 4096;

  // `conf` is the configuration in effect (self need not be a member: a node that joins, or
  // was removed); at most kMaxVoters members. `now_ms` is the start: every peer gets a full
  // failure timeout of grace from it, and the leaderless period starts there.
  static absl::StatusOr<FailureDetector> Create(const FailoverConfig& config, raft::NodeId self,
                                                const raft::Configuration& conf,
                                                uint64_t now_ms);
  // The same for a configuration of `voters` only (which includes `self`).
  static absl::StatusOr<FailureDetector> Create(const FailoverConfig& config, raft::NodeId self,
                                                std::vector<raft::NodeId> voters,
                                                uint64_t now_ms);
  // The configuration changed (Raft applied a change) at `now_ms`: new members get a full
  // failure timeout of grace; removed ones are forgotten without an event; the quorum is
  // judged on the new configuration from the next Tick. Learners are judged like voters (a
  // learner's failure is NodeFailed{learner = true}) but never count for the quorum; a node
  // that is not a voter reports no quorum episodes (one it was in ends with QuorumRestored).
  void SetConfiguration(const raft::Configuration& conf, uint64_t now_ms);
  const raft::Configuration& configuration() const { return conf_; }

  // A valid message from `peer` arrived at `now_ms`. kInvalidArgument (and nothing changes)
  // for this node's own id or a non-member.
  absl::Status OnHeardFrom(raft::NodeId peer, uint64_t now_ms);
  // Re-evaluates every judgment at `now_ms` against Raft's state `view` (view.self must be this
  // node; a leader's view names itself as leader; progress only on a leader).
  void Tick(uint64_t now_ms, const RaftView& view);

  bool HasEvents() const { return !pending_.empty(); }
  // Events since the last call, in the order they were detected.
  std::vector<alerts::TimedEvent> TakeEvents();

  const FailoverConfig& config() const { return config_; }
  raft::NodeId self() const { return self_; }
  // Voters of the configuration (of its incoming set when joint), and a majority of them.
  size_t cluster_size() const { return conf_.voters.size(); }
  size_t quorum() const { return cluster_size() / 2 + 1; }
  // The last leader known since start (kNone before the first); kept while no leader is known.
  raft::NodeId known_leader() const { return known_leader_; }
  bool quorum_lost() const { return quorum_lost_; }
  bool IsFailed(raft::NodeId peer) const;
  // Failed peers in increasing id order.
  std::vector<raft::NodeId> failed_peers() const;
  // Every peer (not this node) in increasing id order.
  std::vector<PeerState> peers() const;
  uint64_t dropped_events() const { return dropped_events_; }
  // Gaps longer than a heartbeat interval between two inputs, and the time they did not count.
  uint64_t stalls() const { return stalls_; }
  uint64_t stalled_ms() const { return stalled_ms_; }

 private:
  FailureDetector(const FailoverConfig& config, raft::NodeId self, uint64_t now_ms)
      : config_(config), self_(self), start_ms_(now_ms), now_ms_(now_ms),
        leaderless_since_awake_ms_(0) {}

  struct Peer {
    uint64_t last_heard_ms = 0;        // real time of the last message (for reports)
    uint64_t heard_awake_ms = 0;       // the same on the awake clock; the start if none
    bool heard = false;                // a message ever arrived
    bool judged = false;
    uint64_t judged_since_awake_ms = 0;  // valid while judged
    bool failed = false;
    bool slow = false;
  };

  // Moves both clocks to `now_ms` (see "Silence counts only while this node runs").
  void Advance(uint64_t now_ms);
  // Awake time since `since_awake_ms`, or since the end of the last stall if that is later.
  uint64_t AwakeSince(uint64_t since_awake_ms) const;
  void Emit(alerts::Event event);
  void UpdateJudgments(bool is_leader);
  void UpdateSlowReplication(const RaftView& view);
  void UpdateQuorum(const RaftView& view);
  void AddPeer(raft::NodeId id);
  void CheckInvariants(bool is_leader) const;

  FailoverConfig config_;
  raft::NodeId self_;
  raft::Configuration conf_;
  std::map<raft::NodeId, Peer> peers_;  // every member of conf_ but self_
  uint64_t start_ms_;  // (declared after conf_, peers_)
  uint64_t now_ms_;
  uint64_t awake_ms_ = 0;  // awake time since start_ms_; awake_ms_ + stalled_ms_ == now - start
  uint64_t stalled_ms_ = 0;
  uint64_t stalls_ = 0;
  uint64_t resumed_awake_ms_ = 0;  // awake time at the end of the last stall (0: none yet)
  raft::Term term_ = 0;
  raft::NodeId known_leader_ = raft::kNone;
  // Awake time since which no leader is known (while none is).
  std::optional<uint64_t> leaderless_since_awake_ms_;
  bool quorum_lost_ = false;
  std::deque<alerts::TimedEvent> pending_;
  uint64_t dropped_events_ = 0;
};

}  // namespace amaters::failover

#endif  // AMATERS_ENGINE_FAILOVER_DETECTOR_H_
