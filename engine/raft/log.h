// The Raft log as the engine holds it in memory.
//
// Index ranges: the log holds entries [FirstIndex(), LastIndex()]. Everything at or below
// `snapshot_index` (the compaction point) has been compacted away: a snapshot covers it.
// TermAt(snapshot_index) is `snapshot_term`. The compaction point may lag the newest snapshot
// (raft::Raft keeps a margin of entries so that a briefly slow follower catches up from the log).
//
// Durability bookkeeping: entries at or above `unstable_from()` have not yet been handed to
// the driver for persistence. Handing them out (TakeUnstable) does not make them durable; the
// engine separately tracks what the driver has confirmed as persisted.
#ifndef AMATERS_ENGINE_RAFT_LOG_H_
#define AMATERS_ENGINE_RAFT_LOG_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "engine/raft/types.h"

namespace amaters::raft {

class RaftLog {
 public:
  RaftLog() = default;

  // Replaces the whole log with entries restored from durable storage. They count as
  // already persisted. `entries` must be contiguous and start at snapshot_index + 1.
  void Restore(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries);

  Index FirstIndex() const { return snapshot_index_ + 1; }
  Index LastIndex() const { return snapshot_index_ + entries_.size(); }
  Term LastTerm() const;

  // Term of the entry at `i`; nullopt if `i` is compacted or beyond the last index.
  std::optional<Term> TermAt(Index i) const;
  bool MatchTerm(Index i, Term t) const;

  // Election restriction (paper §5.4.1): a candidate whose last entry is (last_term,
  // last_index) is at least as up to date as this log.
  bool IsUpToDate(Index last_index, Term last_term) const;

  // The first index in `ents` whose entry conflicts with (or is missing from) this log;
  // 0 if every entry is already present with the same term.
  Index FindConflict(const std::vector<Entry>& ents) const;

  // The largest index <= `index` whose term is <= `term`, with that term: the fast
  // backtracking hint (paper §5.3, thesis §3.5; etcd's findConflictByTerm).
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Appends entries whose first index is at most LastIndex() + 1, truncating any existing
  // suffix from that index on. The caller guarantees the truncated entries are uncommitted.
  void TruncateAndAppend(std::vector<Entry> ents);

  // Drops every entry at or below `index` (FirstIndex() <= index <= LastIndex(), and the caller
  // guarantees a durable snapshot covers it); TermAt(index) stays known.
  void Compact(Index index);

  // Appends one entry at LastIndex() + 1.
  void Append(Entry e);

  // Entries [lo, hi) limited to roughly `max_bytes` (always at least one entry if lo < hi).
  std::vector<Entry> Slice(Index lo, Index hi, uint64_t max_bytes) const;
  const Entry& At(Index i) const;

  // Entries not yet handed out for persistence, and marks them handed out. The first entry's
  // index tells the driver where to truncate its durable log before writing them.
  std::vector<Entry> TakeUnstable();
  Index unstable_from() const { return unstable_from_; }
  bool HasUnstable() const { return unstable_from_ <= LastIndex(); }

  Index snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }

 private:
  Index snapshot_index_ = 0;
  Term snapshot_term_ = 0;
  std::deque<Entry> entries_;  // entries_[k] has index snapshot_index_ + 1 + k.
  Index unstable_from_ = 1;
};

}  // namespace amaters::raft

#endif  // AMATERS_ENGINE_RAFT_LOG_H_
