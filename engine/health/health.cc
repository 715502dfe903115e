#include "engine/health/health.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/check.h"

namespace amaters::health {
namespace {

bool Contains(const std::vector<raft::NodeId>& ids, raft::NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

const char* StateName(State state) {
  switch (state) {
    case State::kStarting: return "starting";
    case State::kHealthy: return "healthy";
    case State::kDegraded: return "degraded";
    case State::kUnhealthy: return "unhealthy";
    case State::kShuttingDown: return "shutting_down";
  }
  return "unknown";
}

bool IsAlive(State state) {
  return state == State::kStarting || state == State::kHealthy || state == State::kDegraded;
}

bool IsServing(State state) { return state == State::kHealthy || state == State::kDegraded; }

absl::Status HealthConfig::Validate() const {
  if (fsync_latency_degraded_ms == 0) {
    return absl::InvalidArgumentError(
        "[storage.wal] fsync_latency_degraded_ms = 0: must be > 0");
  }
  return absl::OkStatus();
}

Probe StorageProbe(const HealthInputs& in) {
  if (!in.storage.ok()) {
    return {"storage", State::kUnhealthy, absl::StrCat("failed: ", in.storage.ToString())};
  }
  return {"storage", State::kHealthy, "ok"};
}

Probe WalProbe(const HealthConfig& config, const HealthInputs& in) {
  if (!in.wal.ok()) return {"wal", State::kUnhealthy, absl::StrCat("failed: ", in.wal.ToString())};
  if (in.wal_fsync_latency_ms && *in.wal_fsync_latency_ms > config.fsync_latency_degraded_ms) {
    return {"wal", State::kDegraded,
            absl::StrCat("slow fsync: ", *in.wal_fsync_latency_ms, " ms > ",
                         config.fsync_latency_degraded_ms, " ms")};
  }
  if (in.wal_fsync_latency_ms) {
    return {"wal", State::kHealthy, absl::StrCat("ok; fsync ", *in.wal_fsync_latency_ms, " ms")};
  }
  return {"wal", State::kHealthy, "ok"};
}

Probe DiskSpaceProbe(const HealthConfig& config, const HealthInputs& in) {
  if (!in.disk_free_bytes) return {"disk_space", State::kHealthy, "not measured"};
  const uint64_t free = *in.disk_free_bytes;
  const uint64_t min = config.min_free_bytes;
  if (free >= min) {
    return {"disk_space", State::kHealthy,
            absl::StrCat(free, " bytes free (min_free_bytes ", min, ")")};
  }
  if (free >= min / 4) {
    return {"disk_space", State::kDegraded,
            absl::StrCat(free, " bytes free, below min_free_bytes (", min, ")")};
  }
  return {"disk_space", State::kUnhealthy,
          absl::StrCat(free, " bytes free, below min_free_bytes/4 (", min / 4,
                       "); writes refused")};
}

void SetClusterInputs(const ClusterView& v, HealthInputs* in) {
  AM_CHECK(in != nullptr);
  AM_CHECK(!v.voters.empty(), "a configuration without voters");
  in->role = v.role;
  in->leader = v.leader;
  in->leader_seen = v.known_leader != raft::kNone || v.leader != raft::kNone;
  in->cluster_size = v.voters.size();
  in->self_voter = Contains(v.voters, v.self);
  in->quorum_lost = v.quorum_lost;
  in->failed_peers.clear();
  in->failed_learners.clear();
  for (raft::NodeId id : v.failed) {
    if (id == v.self) continue;
    if (Contains(v.voters, id)) {
      in->failed_peers.push_back(id);
    } else if (Contains(v.learners, id)) {
      in->failed_learners.push_back(id);
    }
  }
  AM_CHECK_LE(in->failed_peers.size(), v.voters.size());
}

Probe ClusterProbe(const HealthInputs& in) {
  const size_t quorum = in.cluster_size / 2 + 1;
  if (in.quorum_lost) {
    return {"cluster", State::kDegraded,
            absl::StrCat("quorum lost: fewer than ", quorum, " of ", in.cluster_size,
                         " nodes reachable")};
  }
  if (in.leader == raft::kNone) return {"cluster", State::kDegraded, "no leader known"};
  if (in.role == raft::Role::kLeader) {
    const size_t followers = in.cluster_size - (in.self_voter ? 1 : 0);
    if (!in.failed_peers.empty()) {
      return {"cluster", State::kDegraded,
              absl::StrCat("leader; followers failed: ", absl::StrJoin(in.failed_peers, ","),
                           " (", in.cluster_size - in.failed_peers.size(), " of ",
                           in.cluster_size, " nodes reachable)")};
    }
    if (!in.failed_learners.empty()) {
      return {"cluster", State::kDegraded,
              absl::StrCat("leader; learners failed: ", absl::StrJoin(in.failed_learners, ","),
                           " (all ", followers, " followers reachable)")};
    }
    return {"cluster", State::kHealthy,
            absl::StrCat("leader; all ", followers, " followers reachable")};
  }
  if (Contains(in.failed_peers, in.leader)) {
    return {"cluster", State::kDegraded,
            absl::StrCat("leader ", in.leader, " failed: no message from it within the failure "
                                               "timeout")};
  }
  return {"cluster", State::kHealthy, absl::StrCat("leader is ", in.leader)};
}

HealthReport Evaluate(const HealthConfig& config, const HealthInputs& in) {
  AM_CHECK(config.Validate().ok(), config.Validate().ToString());
  AM_CHECK(in.cluster_size >= 1, "cluster_size 0");
  // A learner, or a node removed from the configuration, may find every voter failed.
  AM_CHECK_LE(in.failed_peers.size(), in.cluster_size, "more failed voters than voters");
  AM_CHECK(in.role != raft::Role::kLeader || !in.self_voter ||
               in.failed_peers.size() < in.cluster_size,
           "a leader that counts itself failed");
  AM_CHECK(in.role != raft::Role::kLeader || in.leader != raft::kNone,
           "a leader with no leader id");

  HealthReport r;
  r.probes = {StorageProbe(in), WalProbe(config, in), DiskSpaceProbe(config, in),
              ClusterProbe(in)};
  bool any_unhealthy = false;
  bool any_degraded = false;
  for (const Probe& p : r.probes) {
    AM_CHECK(p.state == State::kHealthy || p.state == State::kDegraded ||
                 p.state == State::kUnhealthy,
             "probe ", p.name, " in state ", StateName(p.state));
    any_unhealthy = any_unhealthy || p.state == State::kUnhealthy;
    any_degraded = any_degraded || p.state == State::kDegraded;
  }
  if (in.shutting_down) {
    r.state = State::kShuttingDown;
  } else if (any_unhealthy) {
    r.state = State::kUnhealthy;
  } else if (!in.leader_seen) {
    r.state = State::kStarting;
  } else if (any_degraded) {
    r.state = State::kDegraded;
  } else {
    r.state = State::kHealthy;
  }
  r.alive = IsAlive(r.state);

  // Readiness: the first unmet condition is the reason.
  if (!IsServing(r.state)) {
    r.not_ready_reason = absl::StrCat("node is ", StateName(r.state));
  } else if (in.leader == raft::kNone) {
    r.not_ready_reason = "no leader known";
  } else if (in.role == raft::Role::kLeader && in.quorum_lost) {
    r.not_ready_reason = "leader without a quorum";
  } else if (in.role != raft::Role::kLeader && Contains(in.failed_peers, in.leader)) {
    r.not_ready_reason = absl::StrCat("not hearing from leader ", in.leader);
  } else if (in.commit > in.applied && in.commit - in.applied > config.ready_max_apply_lag_entries) {
    r.not_ready_reason = absl::StrCat("applying: applied index ", in.applied,
                                      " behind commit index ", in.commit);
  }
  r.ready = r.not_ready_reason.empty();

  // The write gate.
  const Probe& disk = r.probes[2];
  if (in.shutting_down) {
    r.reject_reason = "shutting down";
  } else if (disk.state == State::kUnhealthy) {
    r.reject_reason = absl::StrCat("disk nearly full: ", disk.detail);
  } else if (!in.wal.ok()) {
    r.reject_reason = absl::StrCat("WAL failed: ", in.wal.ToString());
  } else if (!in.storage.ok()) {
    r.reject_reason = absl::StrCat("storage failed: ", in.storage.ToString());
  }
  r.accept_writes = r.reject_reason.empty();

  // The negative space.
  AM_CHECK(!r.ready || r.alive, "ready but not alive");
  AM_CHECK(r.accept_writes || !r.reject_reason.empty(), "writes refused without a reason");
  AM_CHECK(r.state != State::kHealthy || !any_degraded, "healthy with a degraded probe");
  return r;
}

}  // namespace amaters::health
