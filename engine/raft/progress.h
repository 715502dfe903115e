// Leader-side replication progress of one follower (etcd's Progress; thesis §3.5, §10.2).
//
// States:
//   kProbe:     the leader does not know where the follower's log matches; it sends at most one
//               append per heartbeat interval and walks `next` back on rejection.
//   kReplicate: the follower's log matches up to `match`; the leader pipelines appends
//               optimistically, advancing `next` as soon as it sends, bounded by Inflights.
//   kSnapshot:  the follower needs entries the leader compacted; the leader's newest snapshot
//               (`pending_snapshot`) is being streamed to it. Nothing else is sent until the
//               follower acknowledges it (kAppResp at or above it) or the transfer fails.
#ifndef AMATERS_ENGINE_RAFT_PROGRESS_H_
#define AMATERS_ENGINE_RAFT_PROGRESS_H_

#include <cstdint>
#include <deque>
#include <string>

#include "engine/raft/types.h"

namespace amaters::raft {

// Flow control: a bounded window of appends in flight to one follower, by count and by bytes.
class Inflights {
 public:
  Inflights(uint64_t max_msgs, uint64_t max_bytes) : max_msgs_(max_msgs), max_bytes_(max_bytes) {}

  // Records an append whose last entry is `last_index`, carrying `bytes` of payload.
  void Add(Index last_index, uint64_t bytes);
  // Frees every append whose last index is <= `index` (acknowledged by the follower).
  void FreeLE(Index index);
  // Frees the oldest append (used when acknowledgments may have been lost).
  void FreeFirst();
  void Reset();
  // True when no further append may be sent. `max_bytes == 0` means no byte limit.
  bool Full() const;
  size_t Count() const { return items_.size(); }
  uint64_t Bytes() const { return bytes_; }

 private:
  struct Item {
    Index last_index;
    uint64_t bytes;
  };
  uint64_t max_msgs_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  std::deque<Item> items_;  // in increasing last_index order; at most max_msgs_ long.
};

enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };

struct Progress {
  Progress(Index next_index, uint64_t max_inflight_msgs, uint64_t max_inflight_bytes)
      : next(next_index), inflights(max_inflight_msgs, max_inflight_bytes) {}

  Index match = 0;
  uint64_t probe_seq = 0;  // number of the last probe sent (kProbe), echoed by the follower
  Index next = 1;
  ProgressState state = ProgressState::kProbe;
  // In kProbe: a probe is outstanding; no more appends until a response (acknowledgment,
  // rejection or heartbeat response) clears it.
  bool probe_sent = false;
  // Heard from this peer since the last check-quorum round (thesis §6.2).
  bool recent_active = false;
  Inflights inflights;
  // Highest ReadIndex round this peer has acknowledged in the current term.
  uint64_t read_round_acked = 0;
  // In kSnapshot: the index of the snapshot being sent.
  Index pending_snapshot = 0;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);
  // Follower acknowledged entries up to `n`. Returns true if `match` advanced.
  bool MaybeUpdate(Index n);
  // Follower rejected an append at `rejected`; `match_hint` is the highest index that may
  // match. Returns false for a stale rejection that must be ignored.
  // `probe` is the probe number the rejection echoes (0 if it answers a replicating append).
  bool MaybeDecrTo(Index rejected, Index match_hint, uint64_t probe);
  // Optimistic advance after sending entries up to `last` in kReplicate.
  void OptimisticUpdate(Index last) { next = last + 1; }
  bool IsPaused() const;

  std::string Describe() const;
};

}  // namespace amaters::raft

#endif  // AMATERS_ENGINE_RAFT_PROGRESS_H_
