#include "engine/kv/lessor.h"

#include <algorithm>

#include "engine/base/check.h"

namespace amaters::kv {
namespace {

uint64_t SecondsToMs(int64_t s) { return static_cast<uint64_t>(s) * 1000u; }

// The TTL a lease starts from on a new primary.
int64_t StartTtl(const Lease& lease) {
  return lease.remaining_ttl > 0 ? std::min(lease.remaining_ttl, lease.ttl) : lease.ttl;
}

}  // namespace

int64_t MinLeaseTtlSeconds(uint64_t election_timeout_ms) {
  const uint64_t ms = election_timeout_ms * 3 / 2;
  return std::max<int64_t>(1, static_cast<int64_t>((ms + 999) / 1000));
}

Lessor::Lessor(LessorOptions options) : options_(options) {
  AM_CHECK(options_.min_ttl_s >= 1 && options_.min_ttl_s <= kMaxLeaseTtl, "min ttl ",
           options_.min_ttl_s);
}

void Lessor::SetExpiry(int64_t id, Entry* e, uint64_t expiry_ms) {
  AM_CHECK(primary_, "only the primary keeps expiry times");
  by_expiry_.erase({e->expiry_ms, id});
  e->expiry_ms = expiry_ms;
  by_expiry_.insert({expiry_ms, id});
}

void Lessor::Reset(const std::vector<Lease>& leases, uint64_t now_ms) {
  leases_.clear();
  by_expiry_.clear();
  for (const Lease& lease : leases) {
    AM_CHECK(lease.id > 0 && lease.ttl > 0, "reset with ", Describe(lease));
    Entry& e = leases_[lease.id];
    e.lease = lease;
    if (primary_) {
      SetExpiry(lease.id, &e, now_ms + SecondsToMs(StartTtl(lease)));
      e.last_checkpoint_ms = now_ms;
    }
  }
  CheckInvariants();
}

void Lessor::Granted(const Lease& lease, uint64_t now_ms) {
  AM_CHECK(lease.id > 0 && lease.ttl > 0, "granted ", Describe(lease));
  Revoked(lease.id);  // a grant after a revoke the mirror missed replaces the old entry
  Entry& e = leases_[lease.id];
  e.lease = lease;
  if (primary_) {
    SetExpiry(lease.id, &e, now_ms + SecondsToMs(lease.ttl));
    e.last_checkpoint_ms = now_ms;
  }
}

void Lessor::Revoked(int64_t id) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  if (primary_) by_expiry_.erase({it->second.expiry_ms, id});
  leases_.erase(it);
}

void Lessor::Checkpointed(int64_t id, int64_t remaining_ttl_s) {
  auto it = leases_.find(id);
  if (it == leases_.end()) return;
  AM_CHECK_GE(remaining_ttl_s, 0);
  it->second.lease.remaining_ttl = remaining_ttl_s;
  it->second.checkpoint_pending = false;
}

void Lessor::Promote(uint64_t now_ms, uint64_t extend_ms) {
  primary_ = true;
  by_expiry_.clear();
  for (auto& [id, e] : leases_) {
    e.expiry_ms = 0;
    e.revoke_sent_ms = 0;
    e.checkpoint_pending = false;
    e.last_checkpoint_ms = now_ms;
    SetExpiry(id, &e, now_ms + SecondsToMs(StartTtl(e.lease)) + extend_ms);
  }
  CheckInvariants();
}

void Lessor::Demote() {
  primary_ = false;
  by_expiry_.clear();
  for (auto& [id, e] : leases_) {
    e.expiry_ms = 0;
    e.revoke_sent_ms = 0;
    e.checkpoint_pending = false;
  }
  CheckInvariants();
}

absl::StatusOr<int64_t> Lessor::GrantTtl(int64_t requested) const {
  if (requested > kMaxLeaseTtl) return absl::OutOfRangeError(kErrLeaseTtlTooLarge);
  return std::max(requested, options_.min_ttl_s);
}

absl::StatusOr<Lessor::Renewal> Lessor::Renew(int64_t id, uint64_t now_ms) {
  if (!primary_) return absl::FailedPreconditionError(kErrNotPrimary);
  auto it = leases_.find(id);
  if (it == leases_.end()) return absl::NotFoundError(kErrLeaseNotFound);
  // Its revoke is on its way: gone once it commits, back with a new leader if it does not.
  if (it->second.revoke_sent_ms != 0) return absl::UnavailableError(kErrLeaseExpiring);
  Entry& e = it->second;
  if (!bugs_.renew_keeps_expiry) SetExpiry(id, &e, now_ms + SecondsToMs(e.lease.ttl));
  // A checkpointed remaining TTL is now stale: a new primary must not start from it.
  return Renewal{e.lease.ttl, e.lease.remaining_ttl > 0 || e.checkpoint_pending};
}

absl::StatusOr<Lessor::TimeToLive> Lessor::Remaining(int64_t id, uint64_t now_ms) const {
  if (!primary_) return absl::FailedPreconditionError(kErrNotPrimary);
  auto it = leases_.find(id);
  if (it == leases_.end()) return absl::NotFoundError(kErrLeaseNotFound);
  const Entry& e = it->second;
  TimeToLive t;
  t.granted_ttl = e.lease.ttl;
  t.remaining = e.expiry_ms > now_ms ? static_cast<int64_t>((e.expiry_ms - now_ms) / 1000) : 0;
  return t;
}

std::vector<int64_t> Lessor::Expired(uint64_t now_ms) {
  std::vector<int64_t> out;
  if (!primary_) return out;
  for (auto it = by_expiry_.begin(); it != by_expiry_.end() && it->first <= now_ms; ++it) {
    if (out.size() >= kMaxRevokesPerCall) break;
    Entry& e = leases_.at(it->second);
    if (e.revoke_sent_ms != 0 && now_ms < e.revoke_sent_ms + kRevokeRetryMs) continue;
    e.revoke_sent_ms = now_ms;
    out.push_back(it->second);
  }
  AM_CHECK_LE(out.size(), kMaxRevokesPerCall);
  return out;
}

std::vector<LeaseCheckpointRequest::Checkpoint> Lessor::DueCheckpoints(uint64_t now_ms) {
  std::vector<LeaseCheckpointRequest::Checkpoint> out;
  if (!primary_ || options_.checkpoint_interval_ms == 0) return out;
  for (auto& [id, e] : leases_) {
    if (out.size() >= kMaxLeaseCheckpoints) break;
    if (now_ms < e.last_checkpoint_ms + options_.checkpoint_interval_ms) continue;
    if (e.expiry_ms <= now_ms || e.revoke_sent_ms != 0) continue;  // expiring anyway
    e.last_checkpoint_ms = now_ms;
    e.checkpoint_pending = true;
    const int64_t remaining = static_cast<int64_t>((e.expiry_ms - now_ms + 999) / 1000);
    out.push_back({id, std::min(remaining, e.lease.ttl)});
  }
  return out;
}

void Lessor::CheckInvariants() const {
  AM_CHECK_EQ(by_expiry_.size(), primary_ ? leases_.size() : 0u, "expiry index out of step");
  for (const auto& [id, e] : leases_) {
    AM_CHECK_EQ(e.lease.id, id);
    AM_CHECK(!primary_ || by_expiry_.count({e.expiry_ms, id}) == 1, "lease ", id,
             " missing from the expiry index");
  }
}

}  // namespace amaters::kv
