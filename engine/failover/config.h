// Failover timing: the [cluster] keys of failure detection, and how the election timeout maps
// onto Raft's election ticks (docs/failover-and-alerts.md "Timing").
//
// Who decides what:
//  - Raft (engine/raft) alone decides elections and step-downs: a follower campaigns when its
//    own randomized election timer expires (drawn uniformly from [election_ticks,
//    2 * election_ticks) ticks, paper §5.2, pre-vote first, thesis §9.6); a leader steps down
//    when check-quorum (thesis §6.2) finds it did not hear from a quorum during an election
//    timeout. Nothing else triggers, delays or vetoes an election.
//  - The failure detector (detector.h) only observes and reports: NodeFailed, NodeRecovered,
//    LeaderChanged, QuorumLost/QuorumRestored, SlowReplication/SlowReplicationCleared. It never
//    starts an election and never changes what Raft does.
//  - The alert manager (engine/alerts) turns those events into alerts; health
//    (engine/health) turns them, with the disk and storage readings, into a health state.
//
// How the configured timing maps onto Raft (ElectionTimingFor):
//  - The driver ticks Raft every `tick_ms`. heartbeat_ticks = heartbeat_interval_ms / tick_ms
//    (the heartbeat interval must be a multiple of the tick).
//  - "election timeout 300 ms ± 33 %" is the range [200, 400) ms = [2T/3, 4T/3) for
//    T = election_timeout_ms, which has exactly Raft's shape [E, 2E) with E = 2T/3. So
//    election_ticks = round(2T / (3 * tick_ms)), at least heartbeat_ticks + 1 (Raft requires
//    election_ticks > heartbeat_ticks).
//  - Raft counts ticks, not milliseconds: it draws D uniformly from {E, ..., 2E-1} ticks and
//    campaigns on the D-th tick after it last heard from the leader. Measured from that
//    message the timeout is therefore in ((E-1) * tick_ms, (2E-1) * tick_ms] ms. With the
//    defaults and tick_ms = heartbeat_interval_ms = 100 ms that is E = 2, i.e. (100, 300] ms —
//    a coarse approximation; with tick_ms = 10 ms (heartbeat_ticks = 10) it is E = 20,
//    (190, 390] ms, which is 300 ms ± 33 % to within one tick. ElectionTiming reports the
//    real bounds so that the driver can log them.
//  - election_jitter_min_ms / election_jitter_max_ms are validated here. The failure detector
//    uses them only for LeaderlessQuorumLossMs; the server turns them into Raft's own jitter
//    (raft::Config::election_jitter_{min,max}_ticks, server/app.cc), so its followers campaign
//    election_timeout_ms + [jitter_min, jitter_max] after the leader's last message instead
//    of the T ± 33 % shape that ElectionTimingFor describes
//    (docs/failover-and-alerts.md "Timing").
//  - Check-quorum runs every E ticks on the leader; so a leader cut off from its followers
//    steps down within 2E ticks, and lease reads (if enabled) last E-1 ticks.
//  - Failure detection is independent of E: a peer is failed after max_consecutive_failures
//    heartbeat rounds of silence (3 * 100 ms = 300 ms by default).
#ifndef AMATERS_ENGINE_FAILOVER_CONFIG_H_
#define AMATERS_ENGINE_FAILOVER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace amaters::failover {

// Upper bounds that keep every product of these values far from overflow.
inline constexpr uint64_t kMaxIntervalMs = 3600 * 1000;  // one hour
inline constexpr uint32_t kMaxConsecutiveFailures = 1000;

struct FailoverConfig {
  // Length of one heartbeat round: the leader's heartbeat interval.
  uint64_t heartbeat_interval_ms = 100;
  // A peer is failed after this many consecutive heartbeat rounds without a message from it.
  uint32_t max_consecutive_failures = 3;
  // The nominal election timeout T; Raft's timeout is T ± 33 % (see ElectionTimingFor).
  uint64_t election_timeout_ms = 300;
  // Raft's election jitter in the server; the detector's leaderless period (top of this file).
  uint64_t election_jitter_min_ms = 150;
  uint64_t election_jitter_max_ms = 300;
  // Leader only: a follower this many entries behind the leader's last index is slow.
  uint64_t slow_replication_threshold_entries = 1000;

  // kInvalidArgument naming the [cluster] key, e.g.
  //   "[cluster] election_jitter_max_ms = 150: must be greater than election_jitter_min_ms (150)".
  // heartbeat_interval_ms > 0, max_consecutive_failures > 0, election_timeout_ms >
  // heartbeat_interval_ms, election_jitter_min_ms > 0, election_jitter_max_ms >
  // election_jitter_min_ms, slow_replication_threshold_entries > 0; the millisecond values at
  // most kMaxIntervalMs and max_consecutive_failures at most kMaxConsecutiveFailures.
  absl::Status Validate() const;

  // Silence after which a peer is failed: max_consecutive_failures * heartbeat_interval_ms.
  uint64_t failure_timeout_ms() const {
    return static_cast<uint64_t>(max_consecutive_failures) * heartbeat_interval_ms;
  }
};

// What Raft is configured with, and what that means in milliseconds.
struct ElectionTiming {
  uint64_t tick_ms = 0;
  int heartbeat_ticks = 0;  // raft::Config::heartbeat_ticks
  int election_ticks = 0;   // raft::Config::election_ticks (E)
  // Real bounds of a follower's election timeout, measured from the last message it got from
  // the leader: in (timeout_min_ms, timeout_max_ms] = ((E-1) * tick_ms, (2E-1) * tick_ms].
  uint64_t timeout_min_ms = 0;
  uint64_t timeout_max_ms = 0;
  // The leader's check-quorum period: E * tick_ms.
  uint64_t check_quorum_ms = 0;
  // When the failure detector marks a silent peer failed: FailoverConfig::failure_timeout_ms().
  uint64_t failure_timeout_ms = 0;
  // One line for the start-up log.
  std::string Describe() const;
};

// Maps `config` onto Raft's ticks for a driver that calls Tick() every `tick_ms`.
// kInvalidArgument if the config is invalid, tick_ms is 0, or heartbeat_interval_ms is not a
// multiple of tick_ms.
absl::StatusOr<ElectionTiming> ElectionTimingFor(const FailoverConfig& config, uint64_t tick_ms);

// ElectionTimingFor(config, tick_ms)->election_ticks.
// How long a non-leader must have gone without a leader before it may report QuorumLost:
// long enough that an election has certainly been tried — Raft's randomized timeout is below
// max(2 * election_timeout_ms, election_timeout_ms + election_jitter_max_ms), whichever way it
// draws — and its vote responses had a failure timeout to arrive. Shorter,
// every node of a cluster that is just starting would report a quorum loss before its first
// election.
uint64_t LeaderlessQuorumLossMs(const FailoverConfig& config);

absl::StatusOr<int> ElectionTicks(const FailoverConfig& config, uint64_t tick_ms);

}  // namespace amaters::failover

#endif  // AMATERS_ENGINE_FAILOVER_CONFIG_H_
