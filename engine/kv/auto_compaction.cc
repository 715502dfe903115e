#include "engine/kv/auto_compaction.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "engine/base/check.h"

namespace amaters::kv {

absl::StatusOr<AutoCompactionPolicy> ParseAutoCompaction(const std::string& mode,
                                                         const std::string& retention) {
  AutoCompactionPolicy p;
  if (mode == "revision") {
    p.mode = AutoCompactionPolicy::Mode::kRevision;
    if (!absl::SimpleAtoi(retention, &p.retention_revisions) || p.retention_revisions < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "auto_compaction_retention \"", retention,
          "\": revision mode wants a whole number of revisions (0 = off)"));
    }
    return p;
  }
  if (mode != "periodic") {
    return absl::InvalidArgumentError(absl::StrCat("auto_compaction_mode \"", mode,
                                                   "\": must be one of periodic, revision"));
  }
  p.mode = AutoCompactionPolicy::Mode::kPeriodic;
  int64_t hours = 0;
  absl::Duration d;
  if (absl::SimpleAtoi(retention, &hours) && hours >= 0) {
    d = absl::Hours(hours);  // etcd: a bare number in periodic mode counts hours
  } else if (!absl::ParseDuration(retention, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auto_compaction_retention \"", retention,
        "\": periodic mode wants a duration such as 30m or 1h (or a whole number of hours)"));
  }
  if (d > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError(
        absl::StrCat("auto_compaction_retention \"", retention, "\": at most a year"));
  }
  p.retention_ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(d));
  return p;
}

std::optional<int64_t> AutoCompactor::Tick(uint64_t now_ms, bool leader, int64_t revision,
                                           int64_t compact_revision) {
  AM_CHECK_LE(compact_revision, revision);
  if (!policy_.enabled()) return std::nullopt;
  if (!leader) {
    leading_ = false;
    samples_.clear();
    return std::nullopt;
  }
  if (!leading_) {  // a new term of leadership starts the clocks over
    leading_ = true;
    const uint64_t first = policy_.mode == AutoCompactionPolicy::Mode::kRevision
                               ? kRevisionCheckMs
                               : std::min(policy_.retention_ms, kMaxPeriodicIntervalMs);
    next_check_ms_ = now_ms + first;
    next_sample_ms_ = now_ms;
  }
  return policy_.mode == AutoCompactionPolicy::Mode::kRevision
             ? TickRevision(now_ms, revision, compact_revision)
             : TickPeriodic(now_ms, revision, compact_revision);
}

std::optional<int64_t> AutoCompactor::TickRevision(uint64_t now_ms, int64_t revision,
                                                   int64_t compact_revision) {
  if (now_ms < next_check_ms_) return std::nullopt;
  next_check_ms_ = now_ms + kRevisionCheckMs;
  const int64_t target = revision - policy_.retention_revisions;
  if (target <= compact_revision) return std::nullopt;
  return target;
}

std::optional<int64_t> AutoCompactor::TickPeriodic(uint64_t now_ms, int64_t revision,
                                                   int64_t compact_revision) {
  const uint64_t retention = policy_.retention_ms;
  if (now_ms >= next_sample_ms_) {
    samples_.push_back(Sample{now_ms, revision});
    next_sample_ms_ = now_ms + std::max<uint64_t>(1, retention / 10);
    // Keep one sample at least `retention` old (the candidate), drop older ones.
    while (samples_.size() > 1 && now_ms - samples_[1].at_ms >= retention) samples_.pop_front();
    while (samples_.size() > kMaxRevisionSamples) samples_.pop_front();
  }
  AM_CHECK_LE(samples_.size(), kMaxRevisionSamples);
  if (now_ms < next_check_ms_) return std::nullopt;
  next_check_ms_ = now_ms + std::min(retention, kMaxPeriodicIntervalMs);
  if (samples_.empty() || now_ms - samples_.front().at_ms < retention) return std::nullopt;
  const int64_t target = samples_.front().revision;
  if (target <= compact_revision) return std::nullopt;
  return target;
}

}  // namespace amaters::kv
