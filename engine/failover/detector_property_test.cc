// rapidcheck: random schedules of ticks (with arbitrary role, leader and progress views) and
// received messages, checked step by step against a direct model of the rules in detector.h.
//
// Replay a failure with
//   ./bazelw test //engine/failover:detector_property_test --test_env=RC_PARAMS="seed=<seed>"
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/alerts/event.h"
#include "engine/failover/detector.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace amaters::failover {
namespace {

using alerts::Event;
using raft::NodeId;
using raft::Role;

// The rules of detector.h, written the direct way. Times are on the awake clock: every step
// moves it by the real step, up to one heartbeat interval (a longer step is a stall), and
// every duration counts from no earlier than the end of the last stall.
struct Model {
  FailoverConfig config;
  NodeId self = 0;
  std::vector<NodeId> peers;
  uint64_t awake = 0;
  uint64_t resumed = 0;
  std::map<NodeId, uint64_t> last_heard;
  std::map<NodeId, std::optional<uint64_t>> judged_since;
  NodeId known_leader = raft::kNone;
  std::optional<uint64_t> leaderless_since;
  bool quorum_lost = false;

  void Step(uint64_t real_step_ms) {
    awake += std::min(real_step_ms, config.heartbeat_interval_ms);
    if (real_step_ms > config.heartbeat_interval_ms) resumed = awake;
  }
  uint64_t Since(uint64_t t) const { return awake - std::max(t, resumed); }
  // A judged peer becomes failed when its silence reaches the timeout, and stays failed until
  // it is heard from or no longer judged (a stall's fresh round does not clear it).
  std::set<NodeId> failed;
  void UpdateFailed(NodeId p) {
    const std::optional<uint64_t>& since = judged_since.at(p);
    if (!since) {
      failed.erase(p);
    } else if (Since(std::max(last_heard.at(p), *since)) >= config.failure_timeout_ms()) {
      failed.insert(p);
    }
  }
  bool Failed(NodeId p) const { return failed.count(p) > 0; }
};

template <class T>
std::vector<T> OfType(const std::vector<alerts::TimedEvent>& events) {
  std::vector<T> out;
  for (const alerts::TimedEvent& e : events) {
    if (const T* t = std::get_if<T>(&e.event)) out.push_back(*t);
  }
  return out;
}

RC_GTEST_PROP(FailureDetectorProperty, FollowsTheRulesOnEverySchedule, ()) {
  const int n = *rc::gen::inRange(1, 6);
  const NodeId self = static_cast<NodeId>(*rc::gen::inRange(1, n + 1));
  const int steps = *rc::gen::inRange(0, 300);
  const auto actions = *rc::gen::container<std::vector<std::tuple<int, int, int, int>>>(
      static_cast<size_t>(steps),
      rc::gen::tuple(rc::gen::inRange(0, 3), rc::gen::inRange(0, 251), rc::gen::inRange(0, 100),
                     rc::gen::inRange(0, 100)));

  Model m;
  m.self = self;
  std::vector<NodeId> voters;
  for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) {
    voters.push_back(id);
    if (id == self) continue;
    m.peers.push_back(id);
    m.last_heard[id] = 0;
    m.judged_since[id] = std::nullopt;
  }
  m.leaderless_since = 0;
  absl::StatusOr<FailureDetector> created = FailureDetector::Create(m.config, self, voters, 0);
  RC_ASSERT(created.ok());
  FailureDetector d = *std::move(created);
  const uint64_t timeout = m.config.failure_timeout_ms();
  const uint64_t threshold = m.config.slow_replication_threshold_entries;
  const uint64_t quorum = static_cast<uint64_t>(n) / 2 + 1;

  // Coverage, printed by rapidcheck as a distribution of tags.
  bool saw_failed = false, saw_quorum_lost = false, saw_slow = false, saw_leader_changed = false;
  bool saw_stall = false;
  uint64_t now = 0;
  Role role = Role::kFollower;
  NodeId leader = raft::kNone;
  raft::Term term = 0;
  raft::Index last_index = 0;
  for (const auto& [kind, b, c, e] : actions) {
    const std::vector<NodeId> failed_list = d.failed_peers();
    const std::set<NodeId> failed_before(failed_list.begin(), failed_list.end());
    if (kind == 2) {
      if (m.peers.empty()) continue;
      NodeId p = m.peers[static_cast<size_t>(b) % m.peers.size()];
      now += static_cast<uint64_t>(c % 50);
      m.Step(static_cast<uint64_t>(c % 50));
      RC_ASSERT(d.OnHeardFrom(p, now).ok());
      m.last_heard[p] = m.awake;
      m.failed.erase(p);
      std::vector<alerts::TimedEvent> events = d.TakeEvents();
      // Exactly one NodeRecovered, for p, iff p was failed.
      RC_ASSERT(events.size() == (failed_before.count(p) ? 1u : 0u));
      if (!events.empty()) {
        RC_ASSERT(events[0] == (alerts::TimedEvent{now, alerts::NodeRecovered{p}}));
      }
      RC_ASSERT(!d.IsFailed(p));
      continue;
    }

    // A tick with an arbitrary (but well-formed) view; steps above 100 ms are stalls.
    now += static_cast<uint64_t>(b);
    m.Step(static_cast<uint64_t>(b));
    if (c % 7 == 0) ++term;
    last_index += static_cast<uint64_t>(e) * 15;
    RaftView v;
    v.self = self;
    v.term = term;
    v.last_index = last_index;
    // Roles and leaders change now and then (one tick in five), so that judgments get time
    // to mature.
    const Role roles[] = {Role::kFollower, Role::kPreCandidate, Role::kCandidate, Role::kLeader};
    if (c % 5 == 0) {
      role = roles[(c / 5) % 4];
      NodeId l = static_cast<NodeId>(e % (n + 1));
      leader = (l == self) ? raft::kNone : l;
    }
    v.role = role;
    if (v.role == Role::kLeader) {
      v.leader = self;
      for (NodeId p : m.peers) {
        uint64_t lag = std::min<uint64_t>(last_index, ((c * p + e) % 40) * 100);
        v.progress.push_back({p, last_index - lag});
      }
    } else {
      v.leader = leader;
    }
    std::set<NodeId> slow_before;
    for (const PeerState& p : d.peers()) {
      if (p.slow) slow_before.insert(p.id);
    }
    const bool quorum_lost_before = d.quorum_lost();
    const NodeId known_before = m.known_leader;

    d.Tick(now, v);
    std::vector<alerts::TimedEvent> events = d.TakeEvents();
    for (const alerts::TimedEvent& te : events) RC_ASSERT(te.at_ms == now);

    // Model: known leader, leaderless period, judgments.
    if (v.leader != raft::kNone) m.known_leader = v.leader;
    if (v.leader == raft::kNone) {
      if (!m.leaderless_since) m.leaderless_since = m.awake;
    } else {
      m.leaderless_since.reset();
    }
    const bool is_leader = v.role == Role::kLeader;
    for (NodeId p : m.peers) {
      bool judge = is_leader || p == m.known_leader;
      if (judge && !m.judged_since[p]) m.judged_since[p] = m.awake;
      if (!judge) m.judged_since[p].reset();
    }

    // LeaderChanged: exactly when the known leader changed from a known one.
    std::vector<alerts::LeaderChanged> changes = OfType<alerts::LeaderChanged>(events);
    if (known_before != raft::kNone && m.known_leader != known_before) {
      RC_ASSERT(changes.size() == 1u);
      RC_ASSERT(changes[0] == (alerts::LeaderChanged{known_before, m.known_leader, term}));
    } else {
      RC_ASSERT(changes.empty());
    }
    RC_ASSERT(d.known_leader() == m.known_leader);

    // Failures: the detector agrees with the formula for every peer, and NodeFailed was
    // emitted exactly for the peers that became failed in this tick.
    std::set<NodeId> newly_failed;
    for (NodeId p : m.peers) {
      m.UpdateFailed(p);
      bool failed = m.Failed(p);
      RC_ASSERT(d.IsFailed(p) == failed);
      if (failed && !failed_before.count(p)) newly_failed.insert(p);
      // A non-leader only ever judges its last known leader: never another follower.
      if (!is_leader && p != m.known_leader) RC_ASSERT(!d.IsFailed(p));
    }
    std::set<NodeId> reported;
    for (const alerts::NodeFailed& f : OfType<alerts::NodeFailed>(events)) {
      RC_ASSERT(reported.insert(f.node_id).second);
    }
    RC_ASSERT(reported == newly_failed);
    RC_ASSERT(OfType<alerts::NodeRecovered>(events).empty());

    // Slow replication: leader only, at the threshold, cleared at half of it.
    for (const alerts::SlowReplication& s : OfType<alerts::SlowReplication>(events)) {
      RC_ASSERT(is_leader);
      RC_ASSERT(s.lag_entries >= threshold);
      RC_ASSERT(!slow_before.count(s.follower));
      RC_ASSERT(!d.IsFailed(s.follower));
    }
    for (const alerts::SlowReplicationCleared& s : OfType<alerts::SlowReplicationCleared>(events)) {
      RC_ASSERT(is_leader);
      RC_ASSERT(s.lag_entries <= threshold / 2);
      RC_ASSERT(slow_before.count(s.follower) > 0);
    }
    for (const PeerState& p : d.peers()) {
      if (!is_leader) RC_ASSERT(!p.slow);
      if (is_leader && p.slow) {
        uint64_t lag = 0;
        for (const PeerProgress& pr : v.progress) {
          if (pr.id == p.id) lag = last_index - pr.match;
        }
        // Hysteresis: a slow follower stays slow above threshold / 2 (or while failed).
        RC_ASSERT(lag > threshold / 2 || d.IsFailed(p.id) ||
                  m.Since(*m.judged_since[p.id]) < timeout);
      }
    }

    // Quorum, directly from the rules.
    uint64_t reachable = 1;
    for (NodeId p : m.peers) {
      if (is_leader ? !m.Failed(p) : m.awake - m.last_heard[p] < timeout) ++reachable;
    }
    if (!m.quorum_lost) {
      // A non-leader that has known no leader since start is waiting, never cut off.
      bool lost = is_leader ? reachable < quorum
                            : (m.known_leader != raft::kNone && m.leaderless_since &&
                               m.Since(*m.leaderless_since) >= LeaderlessQuorumLossMs(m.config) &&
                               reachable < quorum);
      m.quorum_lost = lost;
    } else {
      bool restored = is_leader ? reachable >= quorum : (v.leader != raft::kNone || reachable >= quorum);
      m.quorum_lost = !restored;
    }
    RC_ASSERT(d.quorum_lost() == m.quorum_lost);
    std::vector<alerts::QuorumLost> lost = OfType<alerts::QuorumLost>(events);
    std::vector<alerts::QuorumRestored> restored = OfType<alerts::QuorumRestored>(events);
    if (m.quorum_lost != quorum_lost_before) {
      if (m.quorum_lost) {
        RC_ASSERT(lost.size() == 1u);
        RC_ASSERT(restored.empty());
        RC_ASSERT(lost[0] == (alerts::QuorumLost{static_cast<uint64_t>(n), reachable}));
        RC_ASSERT(lost[0].reachable < quorum);
      } else {
        RC_ASSERT(restored.size() == 1u);
        RC_ASSERT(lost.empty());
        RC_ASSERT(restored[0] == (alerts::QuorumRestored{static_cast<uint64_t>(n), reachable}));
      }
    } else {
      RC_ASSERT(lost.empty());
      RC_ASSERT(restored.empty());
    }
    RC_ASSERT(n > 1 || !d.quorum_lost());
    saw_failed = saw_failed || !newly_failed.empty();
    saw_stall = saw_stall || b > static_cast<int>(m.config.heartbeat_interval_ms);
    RC_ASSERT(d.stalled_ms() == now - m.awake);
    saw_quorum_lost = saw_quorum_lost || !lost.empty();
    saw_slow = saw_slow || !OfType<alerts::SlowReplication>(events).empty();
    saw_leader_changed = saw_leader_changed || !changes.empty();
  }
  RC_TAG(saw_failed ? "failed" : "-", saw_quorum_lost ? "quorum_lost" : "-",
         saw_slow ? "slow" : "-", saw_leader_changed ? "leader_changed" : "-",
         saw_stall ? "stall" : "-");
}

}  // namespace
}  // namespace amaters::failover
