// Alert rules: which events become alerts, how severe, under which dedup key
// (docs/failover-and-alerts.md "Rules").
//
// A rule looks at one event and either ignores it, fires an alert under a dedup key, or clears
// that key (the episode it alerted about is over: a failed node recovered, the quorum is back,
// a follower caught up, a certificate was renewed). Rules are pure functions of the event;
// deduplication over time is the AlertManager's job (alert_manager.h).
//
// default_rules(slow_repl_threshold):
//   rule                  fires on                       severity                  dedup key                      cleared by
//   node_failed           NodeFailed                     critical; warning for a   node_failed:<id>               NodeRecovered(id)
//                                                        learner
//   node_recovered        NodeRecovered                  info                      node_recovered:<id>            NodeFailed(id)
//   leader_changed        LeaderChanged                  warning                   leader_changed:<new id>        (never; the window ends it)
//   quorum_lost           QuorumLost                     critical                  quorum_lost                    QuorumRestored
//   slow_replication      SlowReplication, lag >= thr.   warning                   slow_replication:<follower>    SlowReplicationCleared(follower)
//   certificate_expiring  CertificateExpiring, days < 30 warning; critical if < 7  certificate_expiring:<path>    CertificateExpiring, days >= 30
#ifndef AMATERS_ENGINE_ALERTS_RULES_H_
#define AMATERS_ENGINE_ALERTS_RULES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/alerts/event.h"
#include "engine/raft/types.h"

namespace amaters::alerts {

// Ordered: a higher severity is more urgent (an escalation passes deduplication).
enum class Severity : uint8_t { kInfo = 0, kWarning = 1, kCritical = 2 };
// "info", "warning", "critical" (the label values of amaters_alerts_total{severity}).
const char* SeverityName(Severity severity);

// A structured field of an alert (for logs and /alerts JSON), e.g. {"node_id", "3"}.
struct Field {
  std::string name;
  std::string value;
  bool operator==(const Field& o) const { return name == o.name && value == o.value; }
};

// What a rule decided for one event.
struct Action {
  enum class Kind : uint8_t { kFire, kClear };
  Kind kind = Kind::kFire;
  std::string dedup_key;
  // kFire only.
  Severity severity = Severity::kInfo;
  std::string message;
  std::vector<Field> fields;
};

struct Rule {
  // Names the alert ("node_failed"); the label value of amaters_alerts_total{rule}.
  std::string name;
  // nullopt: the event does not concern this rule. Must be pure (same event, same answer).
  std::function<std::optional<Action>(const Event&)> evaluate;
};

// Certificate thresholds of the default rules, in whole days left.
inline constexpr int64_t kCertificateWarningDays = 30;   // days_left < 30: warning
inline constexpr int64_t kCertificateCriticalDays = 7;   // days_left < 7: critical

// The dedup keys, exactly as operators and runbooks see them.
std::string NodeFailedKey(raft::NodeId node_id);         // "node_failed:<id>"
std::string NodeRecoveredKey(raft::NodeId node_id);      // "node_recovered:<id>"
std::string LeaderChangedKey(raft::NodeId new_leader);   // "leader_changed:<id>"
std::string QuorumLostKey();                             // "quorum_lost"
std::string SlowReplicationKey(raft::NodeId follower);   // "slow_replication:<id>"
std::string CertificateExpiringKey(const std::string& path);  // "certificate_expiring:<path>"

// The rules in the table above. `slow_repl_threshold` (entries, > 0) is the same value as
// FailoverConfig::slow_replication_threshold_entries: the detector raises SlowReplication at
// that lag, and the rule fires only at lag >= slow_repl_threshold, so an event from a detector
// configured lower is ignored rather than alerted.
std::vector<Rule> default_rules(uint64_t slow_repl_threshold);

}  // namespace amaters::alerts

#endif  // AMATERS_ENGINE_ALERTS_RULES_H_
