#include "engine/raft/log.h"

#include <algorithm>
#include <utility>

#include "engine/base/check.h"

namespace amaters::raft {

void RaftLog::Restore(Index snapshot_index, Term snapshot_term, std::vector<Entry> entries) {
  snapshot_index_ = snapshot_index;
  snapshot_term_ = snapshot_term;
  entries_.clear();
  Term prev_term = snapshot_term;
  for (Entry& e : entries) {
    AM_CHECK_EQ(e.index, LastIndex() + 1, "restored log is not contiguous");
    AM_CHECK_GE(e.term, prev_term, "restored log terms decrease at index ", e.index);
    prev_term = e.term;
    entries_.push_back(std::move(e));
  }
  unstable_from_ = LastIndex() + 1;
}

Term RaftLog::LastTerm() const {
  return entries_.empty() ? snapshot_term_ : entries_.back().term;
}

std::optional<Term> RaftLog::TermAt(Index i) const {
  if (i == snapshot_index_) return snapshot_term_;
  if (i < snapshot_index_ || i > LastIndex()) return std::nullopt;
  return entries_[i - snapshot_index_ - 1].term;
}

bool RaftLog::MatchTerm(Index i, Term t) const {
  std::optional<Term> term = TermAt(i);
  return term.has_value() && *term == t;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  Term my_term = LastTerm();
  return last_term > my_term || (last_term == my_term && last_index >= LastIndex());
}

Index RaftLog::FindConflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, LastIndex());
  while (index > snapshot_index_) {
    Term t = *TermAt(index);
    if (t <= term) return {index, t};
    --index;
  }
  return {snapshot_index_, snapshot_term_};
}

void RaftLog::TruncateAndAppend(std::vector<Entry> ents) {
  if (ents.empty()) return;
  Index first = ents.front().index;
  AM_CHECK(first > snapshot_index_, "append at ", first, " below snapshot ", snapshot_index_);
  AM_CHECK_LE(first, LastIndex() + 1, "append leaves a gap");
  while (LastIndex() >= first) entries_.pop_back();
  unstable_from_ = std::min(unstable_from_, first);
  for (Entry& e : ents) Append(std::move(e));
}

void RaftLog::Compact(Index index) {
  AM_CHECK(index > snapshot_index_ && index <= LastIndex(), "compact to ", index,
           " outside log [", FirstIndex(), ", ", LastIndex(), "]");
  AM_CHECK_LT(index, unstable_from_, "compacting entries not yet handed out for persistence");
  snapshot_term_ = At(index).term;
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(index - snapshot_index_));
  snapshot_index_ = index;
  AM_CHECK_EQ(FirstIndex(), index + 1, "compaction");
}

void RaftLog::Append(Entry e) {
  AM_CHECK_EQ(e.index, LastIndex() + 1, "append is not contiguous");
  AM_CHECK_GE(e.term, LastTerm(), "terms in the log must not decrease");
  entries_.push_back(std::move(e));
}

const Entry& RaftLog::At(Index i) const {
  AM_CHECK(i > snapshot_index_ && i <= LastIndex(), "index ", i, " outside log [",
           FirstIndex(), ", ", LastIndex(), "]");
  return entries_[i - snapshot_index_ - 1];
}

std::vector<Entry> RaftLog::Slice(Index lo, Index hi, uint64_t max_bytes) const {
  std::vector<Entry> out;
  hi = std::min(hi, LastIndex() + 1);
  if (lo < hi) out.reserve(std::min<Index>(hi - lo, 64));
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = At(i);
    bytes += e.PayloadSize();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

std::vector<Entry> RaftLog::TakeUnstable() {
  std::vector<Entry> out;
  if (unstable_from_ <= LastIndex()) out.reserve(LastIndex() - unstable_from_ + 1);
  for (Index i = unstable_from_; i <= LastIndex(); ++i) out.push_back(At(i));
  unstable_from_ = LastIndex() + 1;
  return out;
}

}  // namespace amaters::raft
