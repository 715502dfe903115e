#include "engine/alerts/rules.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::alerts {
namespace {

Action Fire(std::string key, Severity severity, std::string message, std::vector<Field> fields) {
  Action a;
  a.kind = Action::Kind::kFire;
  a.dedup_key = std::move(key);
  a.severity = severity;
  a.message = std::move(message);
  a.fields = std::move(fields);
  return a;
}

Action Clear(std::string key) {
  Action a;
  a.kind = Action::Kind::kClear;
  a.dedup_key = std::move(key);
  return a;
}

template <class T>
const T* As(const Event& e) {
  return std::get_if<T>(&e);
}

}  // namespace

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo: return "info";
    case Severity::kWarning: return "warning";
    case Severity::kCritical: return "critical";
  }
  return "unknown";
}

std::string NodeFailedKey(raft::NodeId node_id) { return absl::StrCat("node_failed:", node_id); }
std::string NodeRecoveredKey(raft::NodeId node_id) {
  return absl::StrCat("node_recovered:", node_id);
}
std::string LeaderChangedKey(raft::NodeId new_leader) {
  return absl::StrCat("leader_changed:", new_leader);
}
std::string QuorumLostKey() { return "quorum_lost"; }
std::string SlowReplicationKey(raft::NodeId follower) {
  return absl::StrCat("slow_replication:", follower);
}
std::string CertificateExpiringKey(const std::string& path) {
  return absl::StrCat("certificate_expiring:", path);
}

std::vector<Rule> default_rules(uint64_t slow_repl_threshold) {
  AM_CHECK(slow_repl_threshold > 0, "slow replication threshold must be > 0");
  std::vector<Rule> rules;

  rules.push_back({"node_failed", [](const Event& e) -> std::optional<Action> {
                     if (const auto* f = As<NodeFailed>(e)) {
                       // A learner does not count for the quorum: its loss is a warning.
                       std::vector<Field> fields = {{"node_id", absl::StrCat(f->node_id)}};
                       if (f->learner) fields.push_back({"learner", "true"});
                       return Fire(NodeFailedKey(f->node_id),
                                   f->learner ? Severity::kWarning : Severity::kCritical,
                                   absl::StrCat(f->learner ? "learner " : "node ", f->node_id,
                                                " failed: no message from it for "
                                                "max_consecutive_failures heartbeat rounds"),
                                   std::move(fields));
                     }
                     if (const auto* r = As<NodeRecovered>(e)) return Clear(NodeFailedKey(r->node_id));
                     return std::nullopt;
                   }});

  rules.push_back({"node_recovered", [](const Event& e) -> std::optional<Action> {
                     if (const auto* r = As<NodeRecovered>(e)) {
                       return Fire(NodeRecoveredKey(r->node_id), Severity::kInfo,
                                   absl::StrCat("node ", r->node_id, " recovered: heard from it again"),
                                   {{"node_id", absl::StrCat(r->node_id)}});
                     }
                     // A new failure starts a new episode: the next recovery is news again.
                     if (const auto* f = As<NodeFailed>(e)) return Clear(NodeRecoveredKey(f->node_id));
                     return std::nullopt;
                   }});

  rules.push_back({"leader_changed", [](const Event& e) -> std::optional<Action> {
                     const auto* c = As<LeaderChanged>(e);
                     if (c == nullptr) return std::nullopt;
                     return Fire(LeaderChangedKey(c->new_leader), Severity::kWarning,
                                 absl::StrCat("leader changed from node ", c->old_leader, " to node ",
                                              c->new_leader, " (term ", c->term, ")"),
                                 {{"old_leader", absl::StrCat(c->old_leader)},
                                  {"new_leader", absl::StrCat(c->new_leader)},
                                  {"term", absl::StrCat(c->term)}});
                   }});

  rules.push_back({"quorum_lost", [](const Event& e) -> std::optional<Action> {
                     if (const auto* q = As<QuorumLost>(e)) {
                       return Fire(QuorumLostKey(), Severity::kCritical,
                                   absl::StrCat("quorum lost: ", q->reachable, " of ", q->cluster_size,
                                                " nodes reachable, ", q->cluster_size / 2 + 1,
                                                " needed; writes and linearizable reads stall"),
                                   {{"cluster_size", absl::StrCat(q->cluster_size)},
                                    {"reachable", absl::StrCat(q->reachable)},
                                    {"quorum", absl::StrCat(q->cluster_size / 2 + 1)}});
                     }
                     if (As<QuorumRestored>(e) != nullptr) return Clear(QuorumLostKey());
                     return std::nullopt;
                   }});

  rules.push_back({"slow_replication",
                   [slow_repl_threshold](const Event& e) -> std::optional<Action> {
                     if (const auto* s = As<SlowReplication>(e)) {
                       if (s->lag_entries < slow_repl_threshold) return std::nullopt;
                       return Fire(SlowReplicationKey(s->follower), Severity::kWarning,
                                   absl::StrCat("follower ", s->follower, " is ", s->lag_entries,
                                                " entries behind the leader (threshold ",
                                                slow_repl_threshold, ")"),
                                   {{"follower", absl::StrCat(s->follower)},
                                    {"lag_entries", absl::StrCat(s->lag_entries)},
                                    {"threshold", absl::StrCat(slow_repl_threshold)}});
                     }
                     if (const auto* c = As<SlowReplicationCleared>(e)) {
                       return Clear(SlowReplicationKey(c->follower));
                     }
                     return std::nullopt;
                   }});

  rules.push_back({"certificate_expiring", [](const Event& e) -> std::optional<Action> {
                     const auto* c = As<CertificateExpiring>(e);
                     if (c == nullptr) return std::nullopt;
                     // A certificate with 30 days or more left (renewed, or never close) ends
                     // the episode.
                     if (c->days_left >= kCertificateWarningDays) {
                       return Clear(CertificateExpiringKey(c->path));
                     }
                     Severity sev = c->days_left < kCertificateCriticalDays ? Severity::kCritical
                                                                            : Severity::kWarning;
                     std::string what = c->days_left < 0
                                            ? absl::StrCat("expired ", -c->days_left, " days ago")
                                            : absl::StrCat("expires in ", c->days_left, " days");
                     return Fire(CertificateExpiringKey(c->path), sev,
                                 absl::StrCat("certificate ", c->path, " ", what,
                                              "; rotate it (RB-004)"),
                                 {{"path", c->path}, {"days_left", absl::StrCat(c->days_left)}});
                   }});
  return rules;
}

}  // namespace amaters::alerts
