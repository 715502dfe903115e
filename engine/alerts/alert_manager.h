// AlertManager: runs the rules on every event and deduplicates the alerts they fire
// (docs/failover-and-alerts.md "Deduplication").
//
// Pure: time is passed in (now_ms, the driver's monotonic clock or the simulator's virtual
// clock; it must never decrease), nothing is read, nothing is sent. The driver logs, counts,
// exposes (/alerts) and forwards (webhook) the firings Process() returns.
//
// Deduplication, per dedup key:
//  - A key fires, then does not fire again while now_ms < fired_at_ms + dedup_window_ms
//    (the window is half-open: at exactly fired_at_ms + dedup_window_ms it fires again).
//  - Except an escalation: a firing more severe than the one the window started with passes
//    (certificate_expiring going from warning to critical); it restarts the window.
//  - A cleared key is forgotten: the episode it alerted about ended (node recovered, quorum
//    restored, follower caught up, certificate renewed), so the next episode fires at once,
//    even inside the window. Crash a follower: one node_failed:<id>; restart it:
//    node_recovered:<id> (which clears node_failed:<id>); crash it again a minute later:
//    node_failed:<id> fires again. A flapping node therefore alerts once per episode.
//  - Keys that are never cleared (leader_changed:<id>) rely on the window alone.
//
// Bounds: at most max_keys remembered keys (beyond that the key fired longest ago is
// forgotten, counted in Counters::evicted_keys; a forgotten key may fire again inside its
// window) and the max_recent newest firings for recent().
#ifndef AMATERS_ENGINE_ALERTS_ALERT_MANAGER_H_
#define AMATERS_ENGINE_ALERTS_ALERT_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/alerts/event.h"
#include "engine/alerts/rules.h"

namespace amaters::alerts {

// One alert that passed deduplication.
struct Firing {
  std::string rule;            // the rule's name, e.g. "node_failed"
  Severity severity = Severity::kInfo;
  std::string dedup_key;       // e.g. "node_failed:3"
  uint64_t fired_at_ms = 0;    // the now_ms passed to Process
  std::string message;         // one human sentence
  std::vector<Field> fields;   // structured fields, e.g. {"node_id","3"}
};

// One line for the log: `alert rule=node_failed severity=critical dedup_key=node_failed:3
// fired_at_ms=1200 node_id=3 message="node 3 failed: ..."`. Values with spaces, quotes or
// control characters are quoted and escaped.
std::string DescribeFiring(const Firing& firing);

struct AlertManagerConfig {
  uint64_t dedup_window_ms = 5 * 60 * 1000;  // 5 minutes
  size_t max_keys = 1000;                    // remembered dedup keys
  size_t max_recent = 1000;                  // firings kept for recent()
  // kInvalidArgument naming the [alerts] key: dedup_window_ms may be 0 (no deduplication),
  // max_keys and max_recent must be in 1..1000000.
  absl::Status Validate() const;
};

class AlertManager {
 public:
  struct Counters {
    uint64_t fired = 0;         // firings returned by Process
    uint64_t suppressed = 0;    // firings dropped as duplicates inside the window
    uint64_t cleared = 0;       // remembered keys cleared by an episode's end
    uint64_t evicted_keys = 0;  // remembered keys forgotten because max_keys was reached
  };

  // Rule names must be non-empty and unique, each with an `evaluate` function.
  static absl::StatusOr<AlertManager> Create(const AlertManagerConfig& config,
                                             std::vector<Rule> rules);

  // Runs every rule, in order, on `event` at `now_ms`: applies clears, then returns the
  // firings that pass deduplication (also appended to recent()). `now_ms` must not be below
  // the previous call's (AM_CHECK).
  std::vector<Firing> Process(const Event& event, uint64_t now_ms);

  // The newest max_recent firings, oldest first.
  std::vector<Firing> recent() const { return {recent_.begin(), recent_.end()}; }
  const Counters& counters() const { return counters_; }
  // Dedup keys currently remembered (fired, not cleared, not evicted).
  size_t remembered_keys() const { return keys_.size(); }
  bool Remembers(const std::string& dedup_key) const { return keys_.count(dedup_key) > 0; }
  const AlertManagerConfig& config() const { return config_; }

 private:
  AlertManager(const AlertManagerConfig& config, std::vector<Rule> rules)
      : config_(config), rules_(std::move(rules)) {}

  void Forget(const std::string& key);
  void Remember(const std::string& key, uint64_t now_ms, Severity severity);
  void CheckInvariants() const;

  AlertManagerConfig config_;
  std::vector<Rule> rules_;
  uint64_t last_now_ms_ = 0;

  struct KeyState {
    uint64_t fired_at_ms;  // start of the current window
    Severity severity;     // highest severity fired in this window
  };
  std::map<std::string, KeyState> keys_;
  std::set<std::pair<uint64_t, std::string>> by_fired_at_;  // (fired_at_ms, key), for eviction
  std::deque<Firing> recent_;
  Counters counters_;
};

}  // namespace amaters::alerts

#endif  // AMATERS_ENGINE_ALERTS_ALERT_MANAGER_H_
