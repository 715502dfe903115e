// node::ConfigureTiming — the one mapping from an operator's timing (`[cluster]`
// heartbeat_interval_ms, election_timeout_ms, election_jitter_{min,max}_ms,
// max_consecutive_failures: failover::FailoverConfig) to what a node and its driver run with.
// The server and the simulator's swarm both call it (docs/failover-and-alerts.md "Timing").
//
//  - The driver ticks every heartbeat_interval_ms / 10 (at least 1 ms): heartbeat_ticks = 10
//    (fewer when the heartbeat is under 10 ms), so timers, the failure detector and the WAL's
//    interval sync have a resolution of a tenth of a heartbeat.
//  - election_ticks = election_timeout_ms / tick (at least 3 heartbeats): leases and vote
//    refusal use it alone; a follower campaigns election_timeout_ms + J after the leader's last
//    message, J drawn from [election_jitter_min_ms, election_jitter_max_ms] in ticks.
//  - A snapshot chunk unacknowledged for two heartbeats is sent again; a transfer without
//    progress for twenty election timeouts (and at least `snapshot_timeout_floor_ms`) fails and
//    Raft starts over.
//  - Client requests (requests.h): an unconfirmed read is asked again after one election
//    timeout; at most max_pending_requests are tracked.
#ifndef AMATERS_ENGINE_NODE_TIMING_H_
#define AMATERS_ENGINE_NODE_TIMING_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/failover/config.h"
#include "engine/node/node.h"
#include "engine/node/requests.h"

namespace amaters::node {

// What the driver itself needs besides the NodeConfig.
struct DriverTiming {
  uint64_t tick_ms = 10;             // call Node::Tick this often
  ClientRequestsConfig requests;     // for the driver's ClientRequests
};

// Sets config->failover to `timing` (validated: kInvalidArgument names the key) and fills
// config->raft's tick counts and config->snapshot_transfer's timers from it.
// config->max_pending_requests must be set first.
absl::StatusOr<DriverTiming> ConfigureTiming(const failover::FailoverConfig& timing,
                                             uint64_t snapshot_timeout_floor_ms,
                                             NodeConfig* config);

}  // namespace amaters::node

#endif  // AMATERS_ENGINE_NODE_TIMING_H_
