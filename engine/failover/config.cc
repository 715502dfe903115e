#include "engine/failover/config.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace amaters::failover {
namespace {

absl::Status Invalid(const char* key, uint64_t value, const std::string& rule) {
  return absl::InvalidArgumentError(absl::StrCat("[cluster] ", key, " = ", value, ": ", rule));
}

}  // namespace

absl::Status FailoverConfig::Validate() const {
  if (heartbeat_interval_ms == 0 || heartbeat_interval_ms > kMaxIntervalMs) {
    return Invalid("heartbeat_interval_ms", heartbeat_interval_ms,
                   absl::StrCat("must be in 1..", kMaxIntervalMs));
  }
  if (max_consecutive_failures == 0 || max_consecutive_failures > kMaxConsecutiveFailures) {
    return Invalid("max_consecutive_failures", max_consecutive_failures,
                   absl::StrCat("must be in 1..", kMaxConsecutiveFailures));
  }
  if (election_timeout_ms > kMaxIntervalMs) {
    return Invalid("election_timeout_ms", election_timeout_ms,
                   absl::StrCat("must be at most ", kMaxIntervalMs));
  }
  if (election_timeout_ms <= heartbeat_interval_ms) {
    return Invalid("election_timeout_ms", election_timeout_ms,
                   absl::StrCat("must be greater than heartbeat_interval_ms (",
                                heartbeat_interval_ms, ")"));
  }
  if (election_jitter_min_ms == 0 || election_jitter_min_ms > kMaxIntervalMs) {
    return Invalid("election_jitter_min_ms", election_jitter_min_ms,
                   absl::StrCat("must be in 1..", kMaxIntervalMs));
  }
  if (election_jitter_max_ms > kMaxIntervalMs) {
    return Invalid("election_jitter_max_ms", election_jitter_max_ms,
                   absl::StrCat("must be at most ", kMaxIntervalMs));
  }
  if (election_jitter_max_ms <= election_jitter_min_ms) {
    return Invalid("election_jitter_max_ms", election_jitter_max_ms,
                   absl::StrCat("must be greater than election_jitter_min_ms (",
                                election_jitter_min_ms, ")"));
  }
  if (slow_replication_threshold_entries == 0) {
    return Invalid("slow_replication_threshold_entries", slow_replication_threshold_entries,
                   "must be > 0");
  }
  return absl::OkStatus();
}

std::string ElectionTiming::Describe() const {
  return absl::StrCat("tick ", tick_ms, " ms; heartbeat every ", heartbeat_ticks,
                      " ticks; election timeout ", election_ticks, "..", 2 * election_ticks - 1,
                      " ticks, i.e. (", timeout_min_ms, ", ", timeout_max_ms,
                      "] ms after the leader's last message; check-quorum every ", check_quorum_ms,
                      " ms; a silent peer is failed after ", failure_timeout_ms, " ms");
}

absl::StatusOr<ElectionTiming> ElectionTimingFor(const FailoverConfig& config, uint64_t tick_ms) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  if (tick_ms == 0) return absl::InvalidArgumentError("election timing: tick_ms must be > 0");
  if (config.heartbeat_interval_ms % tick_ms != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[cluster] heartbeat_interval_ms = ", config.heartbeat_interval_ms,
        ": must be a multiple of the tick (", tick_ms, " ms)"));
  }
  ElectionTiming t;
  t.tick_ms = tick_ms;
  // Both quotients are at most kMaxIntervalMs (3.6e6), far below INT_MAX.
  t.heartbeat_ticks = static_cast<int>(config.heartbeat_interval_ms / tick_ms);
  // round(2T / (3 tick)) = floor((4T + 3 tick) / (6 tick)).
  uint64_t e = (4 * config.election_timeout_ms + 3 * tick_ms) / (6 * tick_ms);
  t.election_ticks = static_cast<int>(std::max<uint64_t>(e, t.heartbeat_ticks + 1));
  uint64_t ticks = static_cast<uint64_t>(t.election_ticks);
  t.timeout_min_ms = (ticks - 1) * tick_ms;
  t.timeout_max_ms = (2 * ticks - 1) * tick_ms;
  t.check_quorum_ms = ticks * tick_ms;
  t.failure_timeout_ms = config.failure_timeout_ms();
  return t;
}

uint64_t LeaderlessQuorumLossMs(const FailoverConfig& config) {
  return std::max(2 * config.election_timeout_ms,
                  config.election_timeout_ms + config.election_jitter_max_ms) +
         config.failure_timeout_ms();
}

absl::StatusOr<int> ElectionTicks(const FailoverConfig& config, uint64_t tick_ms) {
  absl::StatusOr<ElectionTiming> t = ElectionTimingFor(config, tick_ms);
  if (!t.ok()) return t.status();
  return t->election_ticks;
}

}  // namespace amaters::failover
