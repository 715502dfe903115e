#include "engine/node/timing.h"

#include <algorithm>

#include "engine/base/check.h"

namespace amaters::node {

absl::StatusOr<DriverTiming> ConfigureTiming(const failover::FailoverConfig& timing,
                                             uint64_t snapshot_timeout_floor_ms,
                                             NodeConfig* config) {
  AM_CHECK(config != nullptr);
  if (absl::Status s = timing.Validate(); !s.ok()) return s;
  const uint64_t ticks_per_heartbeat = std::min<uint64_t>(10, timing.heartbeat_interval_ms);
  DriverTiming out;
  out.tick_ms = timing.heartbeat_interval_ms / ticks_per_heartbeat;
  AM_CHECK_GE(out.tick_ms, 1u);
  // Every quotient is at most kMaxIntervalMs (3.6e6), far below INT_MAX.
  raft::Config& r = config->raft;
  r.heartbeat_ticks = static_cast<int>(ticks_per_heartbeat);
  r.election_ticks = static_cast<int>(
      std::max<uint64_t>(3 * ticks_per_heartbeat, timing.election_timeout_ms / out.tick_ms));
  r.election_jitter_min_ticks = static_cast<int>(timing.election_jitter_min_ms / out.tick_ms);
  r.election_jitter_max_ticks = static_cast<int>(std::max<uint64_t>(
      timing.election_jitter_max_ms / out.tick_ms,
      static_cast<uint64_t>(r.election_jitter_min_ticks)));
  AM_CHECK_LT(r.heartbeat_ticks, r.election_ticks);

  config->failover = timing;

  config->snapshot_transfer.resend_ms = 2 * timing.heartbeat_interval_ms;
  config->snapshot_transfer.timeout_ms =
      std::max<uint64_t>(snapshot_timeout_floor_ms, 20 * timing.election_timeout_ms);

  out.requests.read_reask_ms = static_cast<uint64_t>(r.election_ticks) * out.tick_ms;
  out.requests.max_requests = config->max_pending_requests;
  AM_CHECK(out.requests.Validate().ok());
  return out;
}

}  // namespace amaters::node
