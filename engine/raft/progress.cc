#include "engine/raft/progress.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::raft {

void Inflights::Add(Index last_index, uint64_t bytes) {
  AM_CHECK(!Full(), "inflights full: count=", items_.size(), " bytes=", bytes_);
  AM_CHECK(items_.empty() || items_.back().last_index < last_index,
           "inflight appends must increase");
  items_.push_back({last_index, bytes});
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (!items_.empty() && items_.front().last_index <= index) {
    bytes_ -= items_.front().bytes;
    items_.pop_front();
  }
}

void Inflights::FreeFirst() {
  if (items_.empty()) return;
  bytes_ -= items_.front().bytes;
  items_.pop_front();
}

void Inflights::Reset() {
  items_.clear();
  bytes_ = 0;
}

bool Inflights::Full() const {
  return items_.size() >= max_msgs_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Progress::BecomeProbe() {
  // After a snapshot, probe from just past it: the follower holds it (or reports otherwise).
  next = state == ProgressState::kSnapshot ? std::max(match, pending_snapshot) + 1 : match + 1;
  state = ProgressState::kProbe;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = 0;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  AM_CHECK(snapshot_index > match, "a snapshot the follower already has");
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint, uint64_t probe) {
  // While a snapshot is in flight, rejections answer appends sent before it: stale.
  if (state == ProgressState::kSnapshot) return false;
  if (state == ProgressState::kReplicate) {
    // A rejection for an index at or below match is a stale, reordered response.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe, only the rejection of the last probe counts (next - 1 is what we sent).
  if (next == 0 || next - 1 != rejected) return false;
  if (rejected <= match) {
    // A rejection of an index the follower acknowledged. Usually a stale, reordered response
    // to an append sent before the acknowledgement; but if it answers the latest probe, the
    // follower really lost entries it had made durable (sync_mode "none"/"interval" and a
    // power loss, or a damaged disk). Then forget the match and probe down from its hint:
    // otherwise the leader would probe at match + 1 forever and the follower never catch up.
    if (probe == 0 || probe != probe_seq) return false;
    match = 0;
  }
  next = std::max<Index>(std::min(rejected, match_hint + 1), match + 1);
  next = std::max<Index>(next, 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return false;
}

std::string Progress::Describe() const {
  const char* name = state == ProgressState::kProbe       ? "probe"
                     : state == ProgressState::kReplicate ? "replicate"
                                                          : "snapshot";
  return absl::StrCat(name, pending_snapshot ? absl::StrCat("@", pending_snapshot) : "",
                      " match=", match,
                      " next=", next, inflights.Count() ? absl::StrCat(" inflight=",
                      inflights.Count()) : "", probe_sent ? " paused" : "");
}

}  // namespace amaters::raft
