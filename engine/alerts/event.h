// The events the alert rules accept (docs/failover-and-alerts.md "Events").
//
// Plain data. Most are produced by failover::FailureDetector (engine/failover/detector.h) from
// one node's point of view; CertificateExpiring is produced by the server, which reads its
// certificate files (the engine never opens a file). An event says what happened; whether it
// becomes an alert, how severe, and whether it is suppressed as a duplicate is decided by the
// rules and the AlertManager (engine/alerts/rules.h, alert_manager.h).
#ifndef AMATERS_ENGINE_ALERTS_EVENT_H_
#define AMATERS_ENGINE_ALERTS_EVENT_H_

#include <cstdint>
#include <string>
#include <variant>

#include "engine/raft/types.h"

namespace amaters::alerts {

// A peer sent nothing during max_consecutive_failures consecutive heartbeat rounds, as judged
// by this node (a leader judges its followers; a non-leader judges the last leader it knew).
struct NodeFailed {
  raft::NodeId node_id = raft::kNone;
  bool learner = false;  // a learner: it does not count for the quorum
  bool operator==(const NodeFailed& o) const {
    return node_id == o.node_id && learner == o.learner;
  }
};

// A peer marked failed by this node sent a message again.
struct NodeRecovered {
  raft::NodeId node_id = raft::kNone;
  bool operator==(const NodeRecovered& o) const { return node_id == o.node_id; }
};

// The leader this node knows became a different node. `old_leader` is the previously known
// leader (never kNone: learning the first leader after start is not a change), `new_leader`
// the new one (never kNone, never equal to old_leader); `term` is the new leader's term as
// this node saw it.
struct LeaderChanged {
  raft::NodeId old_leader = raft::kNone;
  raft::NodeId new_leader = raft::kNone;
  raft::Term term = 0;
  bool operator==(const LeaderChanged& o) const {
    return old_leader == o.old_leader && new_leader == o.new_leader && term == o.term;
  }
};

// This node cannot see a quorum: reachable < cluster_size / 2 + 1. `reachable` counts this
// node itself. Once per episode; QuorumRestored ends the episode.
struct QuorumLost {
  uint64_t cluster_size = 0;
  uint64_t reachable = 0;
  bool operator==(const QuorumLost& o) const {
    return cluster_size == o.cluster_size && reachable == o.reachable;
  }
};

// The end of a QuorumLost episode (this node sees a quorum again, or knows a leader).
struct QuorumRestored {
  uint64_t cluster_size = 0;
  uint64_t reachable = 0;
  bool operator==(const QuorumRestored& o) const {
    return cluster_size == o.cluster_size && reachable == o.reachable;
  }
};

// Leader only: a follower's match index trails the leader's last index by `lag_entries` >=
// the threshold. Once per episode; SlowReplicationCleared ends it.
struct SlowReplication {
  raft::NodeId follower = raft::kNone;
  uint64_t lag_entries = 0;
  bool operator==(const SlowReplication& o) const {
    return follower == o.follower && lag_entries == o.lag_entries;
  }
};

// The follower caught up again (lag <= threshold / 2; see the detector for the hysteresis).
struct SlowReplicationCleared {
  raft::NodeId follower = raft::kNone;
  uint64_t lag_entries = 0;
  bool operator==(const SlowReplicationCleared& o) const {
    return follower == o.follower && lag_entries == o.lag_entries;
  }
};

// A certificate file (TLS cert or CA) expires in `days_left` whole days (negative: expired).
// Produced by the server; the rules turn it into a warning below 30 days, critical below 7,
// and clear the alert at 30 days or more (a renewed certificate).
struct CertificateExpiring {
  std::string path;
  int64_t days_left = 0;
  bool operator==(const CertificateExpiring& o) const {
    return path == o.path && days_left == o.days_left;
  }
};

using Event = std::variant<NodeFailed, NodeRecovered, LeaderChanged, QuorumLost, QuorumRestored,
                           SlowReplication, SlowReplicationCleared, CertificateExpiring>;

// An event and the driver time (ms) at which it was detected.
struct TimedEvent {
  uint64_t at_ms = 0;
  Event event;
  bool operator==(const TimedEvent& o) const { return at_ms == o.at_ms && event == o.event; }
};

// "NodeFailed", "QuorumLost", ... (the names used in docs and runbooks).
const char* EventName(const Event& event);
// One line, e.g. "NodeFailed{node_id=3}", "LeaderChanged{old=1 new=2 term=5}".
std::string DescribeEvent(const Event& event);

}  // namespace amaters::alerts

#endif  // AMATERS_ENGINE_ALERTS_EVENT_H_
