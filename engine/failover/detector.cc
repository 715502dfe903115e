#include "engine/failover/detector.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::failover {

RaftView ViewOf(const raft::Raft& r) {
  RaftView v;
  v.self = r.id();
  v.role = r.role();
  v.leader = r.leader();
  v.term = r.term();
  v.last_index = r.log().LastIndex();
  if (r.role() == raft::Role::kLeader) {
    for (raft::NodeId id : r.configuration().Members()) {
      if (id == r.id()) continue;
      const raft::Progress* p = r.progress(id);
      AM_CHECK(p != nullptr, "leader ", r.id(), " has no progress for voter ", id);
      v.progress.push_back({id, p->match});
    }
  }
  return v;
}

absl::StatusOr<FailureDetector> FailureDetector::Create(const FailoverConfig& config,
                                                        raft::NodeId self,
                                                        const raft::Configuration& conf,
                                                        uint64_t now_ms) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (self == raft::kNone) return absl::InvalidArgumentError("failure detector: self id must be > 0");
  if (absl::Status s = conf.Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("failure detector: ", s.message()));
  }
  if (conf.Members().size() > kMaxVoters) {
    return absl::InvalidArgumentError(absl::StrCat("failure detector: ", conf.Members().size(),
                                                   " members, at most ", kMaxVoters));
  }
  FailureDetector d(config, self, now_ms);
  d.conf_ = conf;
  for (raft::NodeId id : conf.Members()) {
    if (id != self) d.AddPeer(id);
  }
  return d;
}

void FailureDetector::AddPeer(raft::NodeId id) {
  AM_CHECK(id != self_ && id != raft::kNone, id);
  Peer p;
  p.last_heard_ms = now_ms_;
  p.heard_awake_ms = awake_ms_;  // grace: a full failure timeout from now
  AM_CHECK(peers_.emplace(id, p).second, "peer ", id, " twice");
}

void FailureDetector::SetConfiguration(const raft::Configuration& conf, uint64_t now_ms) {
  AM_CHECK(conf.Validate().ok(), conf.Describe());
  AM_CHECK_LE(conf.Members().size(), kMaxVoters);
  Advance(now_ms);
  for (auto it = peers_.begin(); it != peers_.end();) {
    it = conf.IsMember(it->first) ? std::next(it) : peers_.erase(it);
  }
  for (raft::NodeId id : conf.Members()) {
    if (id != self_ && peers_.count(id) == 0) AddPeer(id);
  }
  conf_ = conf;
}

absl::StatusOr<FailureDetector> FailureDetector::Create(const FailoverConfig& config,
                                                        raft::NodeId self,
                                                        std::vector<raft::NodeId> voters,
                                                        uint64_t now_ms) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (self == raft::kNone) return absl::InvalidArgumentError("failure detector: self id must be > 0");
  if (voters.size() > kMaxVoters) {
    return absl::InvalidArgumentError(absl::StrCat("failure detector: ", voters.size(),
                                                   " voters, at most ", kMaxVoters));
  }
  std::set<raft::NodeId> unique(voters.begin(), voters.end());
  if (unique.size() != voters.size()) {
    return absl::InvalidArgumentError("failure detector: duplicate voter id");
  }
  if (unique.count(raft::kNone) > 0) {
    return absl::InvalidArgumentError("failure detector: voter id 0");
  }
  if (unique.count(self) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("failure detector: voters must include self (", self, ")"));
  }
  return Create(config, self, raft::Configuration::Of(std::move(voters)), now_ms);
}

void FailureDetector::Advance(uint64_t now_ms) {
  AM_CHECK(now_ms >= now_ms_, "failure detector time went backwards: ", now_ms_, " -> ", now_ms);
  const uint64_t gap = now_ms - now_ms_;
  const uint64_t counted = std::min(gap, config_.heartbeat_interval_ms);
  awake_ms_ += counted;
  if (gap > counted) {
    ++stalls_;
    stalled_ms_ += gap - counted;
    resumed_awake_ms_ = awake_ms_;
  }
  now_ms_ = now_ms;
  AM_CHECK_EQ(awake_ms_ + stalled_ms_, now_ms_ - start_ms_, "clocks disagree");
}

uint64_t FailureDetector::AwakeSince(uint64_t since_awake_ms) const {
  AM_CHECK_LE(since_awake_ms, awake_ms_, "a moment after now on the awake clock");
  AM_CHECK_LE(resumed_awake_ms_, awake_ms_, "a stall ended after now");
  return awake_ms_ - std::max(since_awake_ms, resumed_awake_ms_);
}

absl::Status FailureDetector::OnHeardFrom(raft::NodeId peer, uint64_t now_ms) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    return absl::InvalidArgumentError(
        peer == self_ ? absl::StrCat("failure detector: heard from self (", peer, ")")
                      : absl::StrCat("failure detector: ", peer, " is not a member"));
  }
  Advance(now_ms);
  Peer& p = it->second;
  p.last_heard_ms = now_ms;
  p.heard_awake_ms = awake_ms_;
  p.heard = true;
  if (p.failed) {
    AM_CHECK(p.judged, "peer ", peer, " failed but not judged");
    p.failed = false;
    Emit(alerts::NodeRecovered{peer});
  }
  return absl::OkStatus();
}

void FailureDetector::Tick(uint64_t now_ms, const RaftView& view) {
  AM_CHECK_EQ(view.self, self_, "view of another node");
  AM_CHECK(now_ms >= now_ms_, "failure detector time went backwards: ", now_ms_, " -> ", now_ms);
  AM_CHECK(view.term >= term_, "term went backwards: ", term_, " -> ", view.term);
  const bool is_leader = view.role == raft::Role::kLeader;
  if (is_leader) {
    AM_CHECK_EQ(view.leader, self_, "a leader's view must name itself as leader");
  } else {
    AM_CHECK(view.leader != self_, "a ", raft::RoleName(view.role), " names itself as leader");
    AM_CHECK(view.progress.empty(), "progress in the view of a ", raft::RoleName(view.role));
  }
  Advance(now_ms);
  term_ = view.term;

  // The known leader, and leader changes.
  if (view.leader != raft::kNone && view.leader != known_leader_) {
    if (known_leader_ != raft::kNone) {
      Emit(alerts::LeaderChanged{known_leader_, view.leader, view.term});
    }
    known_leader_ = view.leader;
  }
  if (view.leader == raft::kNone) {
    if (!leaderless_since_awake_ms_) leaderless_since_awake_ms_ = awake_ms_;
  } else {
    leaderless_since_awake_ms_.reset();
  }

  UpdateJudgments(is_leader);
  UpdateSlowReplication(view);
  UpdateQuorum(view);
  CheckInvariants(is_leader);
}

void FailureDetector::UpdateJudgments(bool is_leader) {
  const uint64_t timeout = config_.failure_timeout_ms();
  for (auto& [id, p] : peers_) {
    // A leader judges every follower; anyone else judges only the last leader it knew.
    bool judge = is_leader || id == known_leader_;
    if (judge && !p.judged) {
      p.judged = true;
      p.judged_since_awake_ms = awake_ms_;
    } else if (!judge && p.judged) {
      // Dropped without an event: this node can no longer tell (see detector.h).
      p.judged = false;
      p.failed = false;
    }
    if (!is_leader) p.slow = false;  // only a leader measures replication
    if (!p.judged || p.failed) continue;
    if (AwakeSince(std::max(p.heard_awake_ms, p.judged_since_awake_ms)) >= timeout) {
      p.failed = true;
      Emit(alerts::NodeFailed{id, conf_.IsLearner(id)});
    }
  }
}

void FailureDetector::UpdateSlowReplication(const RaftView& view) {
  if (view.role != raft::Role::kLeader) return;
  const uint64_t threshold = config_.slow_replication_threshold_entries;
  const uint64_t grace = config_.failure_timeout_ms();
  for (const PeerProgress& pr : view.progress) {
    auto it = peers_.find(pr.id);
    AM_CHECK(it != peers_.end(), "progress for unknown peer ", pr.id);
    Peer& p = it->second;
    AM_CHECK(p.judged, "a leader judges every follower; ", pr.id, " is not judged");
    // A new leader's progress starts at match 0 until the first append responses arrive.
    if (AwakeSince(p.judged_since_awake_ms) < grace) continue;
    // A failed follower is covered by NodeFailed; its slow mark waits for it to come back.
    if (p.failed) continue;
    uint64_t lag = view.last_index > pr.match ? view.last_index - pr.match : 0;
    if (!p.slow && lag >= threshold) {
      p.slow = true;
      Emit(alerts::SlowReplication{pr.id, lag});
    } else if (p.slow && lag <= threshold / 2) {
      p.slow = false;
      Emit(alerts::SlowReplicationCleared{pr.id, lag});
    }
  }
}

void FailureDetector::UpdateQuorum(const RaftView& view) {
  const uint64_t n = cluster_size();
  const bool is_leader = view.role == raft::Role::kLeader;
  if (!conf_.IsVoter(self_)) {
    // A learner (or a node not in the configuration) does not take part in the quorum and
    // cannot judge it. An episode it was in ends (so that its quorum_lost alert clears).
    if (quorum_lost_) Emit(alerts::QuorumRestored{n, 0});
    quorum_lost_ = false;
    return;
  }
  auto reaches = [&](raft::NodeId id) {
    if (id == self_) return true;
    auto it = peers_.find(id);
    AM_CHECK(it != peers_.end(), "voter ", id, " is not a peer");
    const Peer& p = it->second;
    // Evidence of reachability is a message, not a stall's end: no fresh-round grace here
    // (it would end a quorum-loss episode at every stall). Entering an episode after a
    // stall is held back by the leaderless period, which does count from the stall's end.
    return is_leader ? !p.failed : awake_ms_ - p.heard_awake_ms < config_.failure_timeout_ms();
  };
  uint64_t reachable = 0;
  for (raft::NodeId id : conf_.voters) reachable += reaches(id) ? 1 : 0;
  // A majority of each set of the configuration (both, while joint).
  const bool has_quorum = conf_.QuorumActive(reaches);
  AM_CHECK_LE(reachable, n);
  if (!quorum_lost_) {
    bool lost;
    if (is_leader) {
      lost = !has_quorum;
    } else {
      // known_leader_ == kNone: waiting for a first leader since start, not cut off.
      bool leaderless_long = leaderless_since_awake_ms_.has_value() &&
                             AwakeSince(*leaderless_since_awake_ms_) >=
                                 LeaderlessQuorumLossMs(config_);
      lost = known_leader_ != raft::kNone && leaderless_long && !has_quorum;
    }
    if (lost) {
      quorum_lost_ = true;
      Emit(alerts::QuorumLost{n, reachable});
    }
  } else {
    bool restored = is_leader ? has_quorum : (view.leader != raft::kNone || has_quorum);
    if (restored) {
      quorum_lost_ = false;
      Emit(alerts::QuorumRestored{n, reachable});
    }
  }
}

void FailureDetector::Emit(alerts::Event event) {
  if (pending_.size() >= kMaxPendingEvents) {
    pending_.pop_front();
    ++dropped_events_;
  }
  pending_.push_back({now_ms_, std::move(event)});
}

std::vector<alerts::TimedEvent> FailureDetector::TakeEvents() {
  std::vector<alerts::TimedEvent> out(std::make_move_iterator(pending_.begin()),
                                      std::make_move_iterator(pending_.end()));
  pending_.clear();
  return out;
}

bool FailureDetector::IsFailed(raft::NodeId peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.failed;
}

std::vector<raft::NodeId> FailureDetector::failed_peers() const {
  std::vector<raft::NodeId> out;
  for (const auto& [id, p] : peers_) {
    if (p.failed) out.push_back(id);
  }
  return out;
}

std::vector<PeerState> FailureDetector::peers() const {
  std::vector<PeerState> out;
  for (const auto& [id, p] : peers_) {
    PeerState s;
    s.id = id;
    s.judged = p.judged;
    s.failed = p.failed;
    s.slow = p.slow;
    if (p.heard) s.last_heard_ms = p.last_heard_ms;
    out.push_back(s);
  }
  return out;
}

void FailureDetector::CheckInvariants(bool is_leader) const {
  AM_CHECK_EQ(peers_.size() + (conf_.IsMember(self_) ? 1 : 0), conf_.Members().size(),
              "peers out of step with the configuration");
  size_t judged = 0;
  for (const auto& [id, p] : peers_) {
    AM_CHECK(id != self_ && id != raft::kNone, "bad peer id ", id);
    AM_CHECK(!p.failed || p.judged, "peer ", id, " failed but not judged");
    AM_CHECK(!p.slow || is_leader, "peer ", id, " slow on a non-leader");
    AM_CHECK_LE(p.last_heard_ms, now_ms_, "peer ", id);
    AM_CHECK_LE(p.heard_awake_ms, awake_ms_, "peer ", id);
    if (p.judged) ++judged;
  }
  if (is_leader) {
    AM_CHECK_EQ(judged, peers_.size(), "a leader judges every follower");
  } else {
    // The negative space: a non-leader judges at most one peer, its last known leader.
    AM_CHECK_LE(judged, size_t{1}, "a non-leader judges only its last known leader");
    for (const auto& [id, p] : peers_) {
      AM_CHECK(!p.judged || id == known_leader_, "non-leader judges ", id,
                " but its known leader is ", known_leader_);
    }
  }
  AM_CHECK_LE(pending_.size(), kMaxPendingEvents);
}

}  // namespace amaters::failover
