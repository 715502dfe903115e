#include "engine/alerts/alert_manager.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::alerts {
namespace {

constexpr size_t kMaxBound = 1000000;

// Bare if it is a non-empty run of printable characters without spaces, quotes or '=',
// otherwise quoted with C escapes.
std::string LogValue(const std::string& v) {
  bool bare = !v.empty();
  for (char c : v) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c)) || c == '"' || c == '=' || c == '\\') {
      bare = false;
      break;
    }
  }
  if (bare) return v;
  return absl::StrCat("\"", absl::CEscape(v), "\"");
}

}  // namespace

std::string DescribeFiring(const Firing& f) {
  std::string out = absl::StrCat("alert rule=", LogValue(f.rule),
                                 " severity=", SeverityName(f.severity),
                                 " dedup_key=", LogValue(f.dedup_key),
                                 " fired_at_ms=", f.fired_at_ms);
  for (const Field& field : f.fields) {
    absl::StrAppend(&out, " ", LogValue(field.name), "=", LogValue(field.value));
  }
  absl::StrAppend(&out, " message=", LogValue(f.message));
  return out;
}

absl::Status AlertManagerConfig::Validate() const {
  if (max_keys == 0 || max_keys > kMaxBound) {
    return absl::InvalidArgumentError(
        absl::StrCat("[alerts] max_keys = ", max_keys, ": must be in 1..", kMaxBound));
  }
  if (max_recent == 0 || max_recent > kMaxBound) {
    return absl::InvalidArgumentError(
        absl::StrCat("[alerts] max_recent = ", max_recent, ": must be in 1..", kMaxBound));
  }
  return absl::OkStatus();
}

absl::StatusOr<AlertManager> AlertManager::Create(const AlertManagerConfig& config,
                                                  std::vector<Rule> rules) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  std::set<std::string> names;
  for (const Rule& r : rules) {
    if (r.name.empty()) return absl::InvalidArgumentError("alert rule with an empty name");
    if (!r.evaluate) {
      return absl::InvalidArgumentError(absl::StrCat("alert rule ", r.name, " has no evaluate"));
    }
    if (!names.insert(r.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate alert rule ", r.name));
    }
  }
  return AlertManager(config, std::move(rules));
}

std::vector<Firing> AlertManager::Process(const Event& event, uint64_t now_ms) {
  AM_CHECK(now_ms >= last_now_ms_, "alert time went backwards: ", last_now_ms_, " -> ", now_ms,
           " at ", DescribeEvent(event));
  last_now_ms_ = now_ms;

  std::vector<Firing> out;
  for (const Rule& rule : rules_) {
    std::optional<Action> action = rule.evaluate(event);
    if (!action) continue;
    AM_CHECK(!action->dedup_key.empty(), "rule ", rule.name, " gave an empty dedup key for ",
             DescribeEvent(event));
    if (action->kind == Action::Kind::kClear) {
      if (keys_.count(action->dedup_key) > 0) {
        Forget(action->dedup_key);
        ++counters_.cleared;
      }
      continue;
    }
    auto it = keys_.find(action->dedup_key);
    if (it != keys_.end()) {
      const KeyState& k = it->second;
      AM_CHECK_LE(k.fired_at_ms, now_ms, action->dedup_key);
      bool in_window = now_ms - k.fired_at_ms < config_.dedup_window_ms;
      bool escalation = action->severity > k.severity;
      if (in_window && !escalation) {
        ++counters_.suppressed;
        continue;
      }
    }
    Remember(action->dedup_key, now_ms, action->severity);
    Firing f;
    f.rule = rule.name;
    f.severity = action->severity;
    f.dedup_key = std::move(action->dedup_key);
    f.fired_at_ms = now_ms;
    f.message = std::move(action->message);
    f.fields = std::move(action->fields);
    recent_.push_back(f);
    while (recent_.size() > config_.max_recent) recent_.pop_front();
    ++counters_.fired;
    out.push_back(std::move(f));
  }
  CheckInvariants();
  return out;
}

void AlertManager::Forget(const std::string& key) {
  auto it = keys_.find(key);
  AM_CHECK(it != keys_.end(), "forgetting an unknown key ", key);
  size_t erased = by_fired_at_.erase({it->second.fired_at_ms, key});
  AM_CHECK_EQ(erased, 1u, key);
  keys_.erase(it);
}

void AlertManager::Remember(const std::string& key, uint64_t now_ms, Severity severity) {
  if (keys_.count(key) > 0) Forget(key);
  while (keys_.size() >= config_.max_keys) {
    // The key fired longest ago: the most likely to be past its window already.
    std::string oldest = by_fired_at_.begin()->second;
    Forget(oldest);
    ++counters_.evicted_keys;
  }
  keys_.emplace(key, KeyState{now_ms, severity});
  by_fired_at_.emplace(now_ms, key);
}

void AlertManager::CheckInvariants() const {
  AM_CHECK_EQ(keys_.size(), by_fired_at_.size());
  AM_CHECK_LE(keys_.size(), config_.max_keys);
  AM_CHECK_LE(recent_.size(), config_.max_recent);
}

}  // namespace amaters::alerts
