// Auto-compaction of the revision history (etcd's --auto-compaction-mode/-retention), as a pure
// policy: the driver gives it the time, its leadership and the store's revisions on every
// tick, and proposes a CompactRequest at the revision it returns (docs/kv-state-machine.md
// "Auto-compaction"). Only the leader compacts; a compaction is an ordinary replicated command.
//
//  - revision mode, retention R revisions: every kRevisionCheckMs, compact to revision - R when
//    that is above the compact revision (etcd's revision compactor, which also checks every
//    five minutes).
//  - periodic mode, retention P: sample the revision every P/10 (at least every tick), keep the
//    samples of the last P, and every min(P, 1 hour) compact to the newest sample at least P
//    old. A node that becomes leader starts sampling then, so its first compaction comes P
//    after its election.
#ifndef AMATERS_ENGINE_KV_AUTO_COMPACTION_H_
#define AMATERS_ENGINE_KV_AUTO_COMPACTION_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace amaters::kv {

struct AutoCompactionPolicy {
  enum class Mode : uint8_t { kRevision, kPeriodic };
  Mode mode = Mode::kRevision;
  int64_t retention_revisions = 0;  // revision mode; 0 = off
  uint64_t retention_ms = 0;        // periodic mode; 0 = off

  bool enabled() const {
    return mode == Mode::kRevision ? retention_revisions > 0 : retention_ms > 0;
  }
};

// etcd's spelling: mode "revision" or "periodic"; retention a whole number of revisions in
// revision mode, in periodic mode a duration ("90s", "30m", "1h", "1h30m") or a whole number of
// hours; "0" turns auto-compaction off. kInvalidArgument naming what is wrong.
absl::StatusOr<AutoCompactionPolicy> ParseAutoCompaction(const std::string& mode,
                                                         const std::string& retention);

inline constexpr uint64_t kRevisionCheckMs = 5 * 60 * 1000;
inline constexpr uint64_t kMaxPeriodicIntervalMs = 60 * 60 * 1000;
inline constexpr size_t kMaxRevisionSamples = 12;  // P/10 apart over P, plus the newest

class AutoCompactor {
 public:
  explicit AutoCompactor(AutoCompactionPolicy policy) : policy_(policy) {}

  // Called on every tick. Returns the revision to compact to, if the driver should propose a
  // compaction now.
  std::optional<int64_t> Tick(uint64_t now_ms, bool leader, int64_t revision,
                              int64_t compact_revision);

 private:
  struct Sample {
    uint64_t at_ms;
    int64_t revision;
  };
  std::optional<int64_t> TickRevision(uint64_t now_ms, int64_t revision, int64_t compact_revision);
  std::optional<int64_t> TickPeriodic(uint64_t now_ms, int64_t revision, int64_t compact_revision);

  const AutoCompactionPolicy policy_;
  bool leading_ = false;
  uint64_t next_check_ms_ = 0;   // the next compaction check
  uint64_t next_sample_ms_ = 0;  // periodic mode: the next sample
  std::deque<Sample> samples_;   // periodic mode: oldest first, at most kMaxRevisionSamples
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_AUTO_COMPACTION_H_
