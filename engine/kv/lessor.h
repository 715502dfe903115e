// The Lessor: when leases expire (etcd's lessor, its leader-side half), as a pure state machine.
// The replicated half (grants, revokes, checkpoints, keys attached to leases) is the state
// machine's (engine/kv/state_machine.h, "Leases"); docs/kv-state-machine.md "Leases".
//
// Every member keeps a Lessor mirroring the leases its state machine holds (Reset after
// opening or installing a snapshot, Granted/Revoked/Checkpointed as entries apply). Only the
// primary — the leader's Lessor, after Promote — keeps expiry times; time comes in as
// milliseconds of the driver's monotonic clock (virtual time in the simulator), never read
// here. The primary:
//  - renews leases (keep-alives): expiry = now + TTL;
//  - hands out the leases past their expiry (Expired), which the driver proposes as revokes:
//    a lease is gone only when its revoke commits, on every replica alike. A revoke that did
//    not come back is handed out again after kRevokeRetryMs (etcd's expiredLeaseRetryInterval);
//  - hands out checkpoints (DueCheckpoints) every checkpoint interval, so that a new leader or
//    a restarted cluster continues from the remaining TTL instead of the full one. A renewal
//    makes a lease's checkpoint stale: Renew says so, and the driver commits a clearing
//    checkpoint (remaining 0) before it acknowledges the keep-alive, so that no acknowledged
//    keep-alive can be undone by a new leader starting from the stale remaining TTL.
// Promote gives every lease expiry = now + (checkpointed remaining TTL, or the TTL) + extend,
// where the driver passes its election timeout as `extend`: no lease expires because of an
// election (etcd's Promote). The driver promotes once the leader applied an entry of its own
// term, so the mirror holds every checkpoint and revoke of the terms before. A follower's Lessor has no expiry times at all: followers never
// decide expiry.
#ifndef AMATERS_ENGINE_KV_LESSOR_H_
#define AMATERS_ENGINE_KV_LESSOR_H_

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/state_machine.h"

namespace amaters::kv {

inline constexpr uint64_t kRevokeRetryMs = 3000;
inline constexpr uint64_t kDefaultLeaseCheckpointIntervalMs = 5 * 60 * 1000;
// Revokes handed out per Expired call (the driver calls it once per tick).
inline constexpr size_t kMaxRevokesPerCall = 500;
// etcd's "etcdserver: not leader" for keep-alives and time-to-live on a follower's Lessor.
inline constexpr char kErrNotPrimary[] = "etcdserver: not leader";
inline constexpr char kErrLeaseExpiring[] = "etcdserver: lease expired, its revoke is being committed";

// etcd's minimum lease TTL: 1.5 election timeouts, in whole seconds rounded up (at least 1).
int64_t MinLeaseTtlSeconds(uint64_t election_timeout_ms);

struct LessorOptions {
  // Grants asking for less are raised to it (MinLeaseTtlSeconds).
  int64_t min_ttl_s = 1;
  uint64_t checkpoint_interval_ms = kDefaultLeaseCheckpointIntervalMs;  // 0 = no checkpoints
};

class Lessor {
 public:
  explicit Lessor(LessorOptions options);

  // --- The mirror of the applied leases (every member). ----------------------------------
  // Replaces every lease (after opening or installing a snapshot). A primary gives each the
  // expiry Promote would.
  void Reset(const std::vector<Lease>& leases, uint64_t now_ms);
  // A grant applied. On the primary the lease expires TTL from now.
  void Granted(const Lease& lease, uint64_t now_ms);
  // A revoke applied (also one this member did not propose). Unknown ids are ignored.
  void Revoked(int64_t id);
  // A checkpoint applied: the remaining TTL a future primary starts from (0 = the full TTL).
  void Checkpointed(int64_t id, int64_t remaining_ttl_s);

  // --- Leadership. -------------------------------------------------------------------------
  void Promote(uint64_t now_ms, uint64_t extend_ms);
  void Demote();
  bool primary() const { return primary_; }

  // --- The primary's work. -----------------------------------------------------------------
  // The TTL a grant of `requested` seconds gets: at least min_ttl_s. kOutOfRange
  // kErrLeaseTtlTooLarge above kMaxLeaseTtl.
  absl::StatusOr<int64_t> GrantTtl(int64_t requested) const;
  // A keep-alive: the lease's TTL, its expiry moved to now + TTL, and whether its checkpoint
  // (applied, or handed out and not applied yet) must be cleared (LeaseCheckpointRequest
  // {id, 0} committed) before the keep-alive is acknowledged. kNotFound kErrLeaseNotFound; kFailedPrecondition
  // kErrNotPrimary unless primary. A lease whose revoke was handed out is not renewed
  // (kNotFound, as etcd: it is expiring).
  struct Renewal {
    int64_t ttl = 0;
    bool clear_checkpoint = false;
  };
  absl::StatusOr<Renewal> Renew(int64_t id, uint64_t now_ms);
  struct TimeToLive {
    int64_t granted_ttl = 0;  // seconds
    int64_t remaining = 0;    // whole seconds left (truncated, as etcd), >= 0
  };
  // kNotFound kErrLeaseNotFound; kFailedPrecondition kErrNotPrimary unless primary.
  absl::StatusOr<TimeToLive> Remaining(int64_t id, uint64_t now_ms) const;
  // Ids of leases past their expiry, earliest first, at most kMaxRevokesPerCall; each is
  // handed out again only after kRevokeRetryMs. Empty unless primary.
  std::vector<int64_t> Expired(uint64_t now_ms);
  // Remaining TTLs (seconds, rounded up) of leases not checkpointed for checkpoint_interval_ms,
  // at most kMaxLeaseCheckpoints. Empty unless primary or with checkpoints off.
  std::vector<LeaseCheckpointRequest::Checkpoint> DueCheckpoints(uint64_t now_ms);

  // Test-only switches the simulator's lease checker must catch (docs/simulation.md).
  struct PlantedBugs {
    bool renew_keeps_expiry = false;  // a keep-alive is acknowledged but moves no expiry
  };
  void set_planted_bugs(PlantedBugs bugs) { bugs_ = bugs; }

  size_t size() const { return leases_.size(); }
  bool Has(int64_t id) const { return leases_.count(id) != 0; }

 private:
  struct Entry {
    Lease lease;
    uint64_t expiry_ms = 0;           // primary only
    uint64_t revoke_sent_ms = 0;      // 0 = no revoke handed out
    uint64_t last_checkpoint_ms = 0;  // primary only
    // This primary handed out a checkpoint of it that has not applied yet (it may apply
    // after a renewal, with the remaining TTL from before it).
    bool checkpoint_pending = false;
  };

  // Sets the entry's expiry (primary only) and keeps by_expiry_ in step.
  void SetExpiry(int64_t id, Entry* e, uint64_t expiry_ms);
  void CheckInvariants() const;

  const LessorOptions options_;
  PlantedBugs bugs_;
  bool primary_ = false;
  std::map<int64_t, Entry> leases_;
  // (expiry, id) of every lease, primary only.
  std::set<std::pair<uint64_t, int64_t>> by_expiry_;
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_LESSOR_H_
