#include "engine/wal/replay.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/wal/format.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace amaters::wal {
namespace {

raft::Entry E(raft::Term t, raft::Index i, std::string data = "") {
  raft::Entry e;
  e.term = t;
  e.index = i;
  e.data = data.empty() ? absl::StrFormat("v%d.%d", t, i) : std::move(data);
  return e;
}

std::string Name(uint64_t seq) { return absl::StrFormat("%016x.wal", seq); }

// Builds segments of at most `per_segment` records from a list of records.
class Builder {
 public:
  explicit Builder(size_t per_segment) : per_segment_(per_segment) {}
  void Entry(const raft::Entry& e) { Add([&](std::string* b) { AppendEntryRecord(++seq_, e, b); }); }
  void Hard(raft::HardState hs) { Add([&](std::string* b) { AppendHardStateRecord(++seq_, hs, b); }); }
  void Snap(raft::SnapshotMeta s, bool replaces_log = false) {
    Add([&](std::string* b) { AppendSnapshotRecord(++seq_, s, replaces_log, b); });
  }
  // The first `n` segments are gone (compacted).
  void DropFirst(size_t n) { segments.erase(segments.begin(), segments.begin() + n); }
  std::vector<SegmentFile> segments;
  std::vector<size_t> record_offsets;  // offsets of records in the last segment

 private:
  template <typename F>
  void Add(F f) {
    if (segments.empty() || in_segment_ == per_segment_) {
      segments.push_back({Name(segments.size()), EncodeSegmentHeader({kFormatVersion, segments.size()})});
      in_segment_ = 0;
      record_offsets.clear();
    }
    record_offsets.push_back(segments.back().bytes.size());
    f(&segments.back().bytes);
    ++in_segment_;
  }
  size_t per_segment_;
  size_t in_segment_ = 0;
  uint64_t seq_ = 0;
};

TEST(WalReplay, RebuildsLogAndHardStateAcrossSegments) {
  Builder b(3);
  for (raft::Index i = 1; i <= 5; ++i) b.Entry(E(1, i));
  b.Hard({2, 1, 3});
  b.Entry(E(2, 4));  // overwrites 4 and 5 (a new leader replaced the uncommitted suffix)
  b.Hard({2, 1, 4});
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entries.size(), 4u);
  EXPECT_EQ(r->entries[3], E(2, 4));
  EXPECT_EQ(r->hard_state, (raft::HardState{2, 1, 4}));
  EXPECT_EQ(r->last_record_seq, 8u);
  EXPECT_FALSE(r->torn_tail);
  EXPECT_TRUE(r->truncate_file.empty());
}

TEST(WalReplay, EmptyWalIsAFreshNode) {
  auto r = Replay({}, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->entries.empty());
  EXPECT_EQ(r->last_record_seq, 0u);
}

TEST(WalReplay, TornTailAtEveryCutIsTruncatedAndReported) {
  Builder b(100);
  for (raft::Index i = 1; i <= 4; ++i) b.Entry(E(1, i, std::string(40, 'a' + i)));
  const std::string full = b.segments.back().bytes;
  const size_t last_record = b.record_offsets.back();
  for (size_t cut = last_record + 1; cut < full.size(); ++cut) {
    std::vector<SegmentFile> segs = b.segments;
    segs.back().bytes = full.substr(0, cut);
    auto r = Replay(segs, CorruptionPolicy::kRefuseStart);
    ASSERT_TRUE(r.ok()) << "cut " << cut << ": " << r.status();
    EXPECT_TRUE(r->torn_tail);
    EXPECT_EQ(r->entries.size(), 3u);
    EXPECT_EQ(r->truncate_file, segs.back().name);
    EXPECT_EQ(r->truncate_to_bytes, last_record);
    ASSERT_FALSE(r->notes.empty());
    EXPECT_NE(r->notes[0].find(absl::StrCat("offset ", last_record)), std::string::npos);
  }
}

TEST(WalReplay, ZeroFilledTailIsTorn) {
  Builder b(100);
  b.Entry(E(1, 1));
  b.segments.back().bytes.append(4096, '\0');
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->torn_tail);
  EXPECT_EQ(r->entries.size(), 1u);
}

TEST(WalReplay, GarbledFinalRecordIsTorn) {
  Builder b(100);
  b.Entry(E(1, 1));
  b.Entry(E(1, 2, std::string(200, 'z')));
  b.segments.back().bytes[b.record_offsets.back() + 100] ^= 0x5a;
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->torn_tail);
  EXPECT_EQ(r->entries.size(), 1u);
}

TEST(WalReplay, CorruptionBeforeTheTailRefusesToStart) {
  Builder b(100);
  for (raft::Index i = 1; i <= 4; ++i) b.Entry(E(1, i));
  size_t second = b.record_offsets[1];
  b.segments.back().bytes[second + 22] ^= 1;
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find(b.segments.back().name), std::string::npos);
  EXPECT_NE(r.status().message().find(absl::StrCat("offset ", second)), std::string::npos);

  auto t = Replay(b.segments, CorruptionPolicy::kTruncateToLastGood);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->corruption_truncated);
  EXPECT_EQ(t->entries.size(), 1u);
  EXPECT_EQ(t->truncate_to_bytes, second);
}

TEST(WalReplay, CorruptionInAnOlderSegmentIsNeverTornTail) {
  Builder b(2);
  for (raft::Index i = 1; i <= 6; ++i) b.Entry(E(1, i));
  ASSERT_EQ(b.segments.size(), 3u);
  std::string& first = b.segments[0].bytes;
  first.resize(first.size() - 3);  // incomplete last record of segment 0
  EXPECT_EQ(Replay(b.segments, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
  auto t = Replay(b.segments, CorruptionPolicy::kTruncateToLastGood);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->entries.size(), 1u);
  EXPECT_EQ(t->delete_files, (std::vector<std::string>{Name(1), Name(2)}));
}

TEST(WalReplay, BadFilesAreClearErrors) {
  Builder b(2);
  for (raft::Index i = 1; i <= 6; ++i) b.Entry(E(1, i));
  // A missing middle segment.
  std::vector<SegmentFile> gap = {b.segments[0], b.segments[2]};
  auto r = Replay(gap, CorruptionPolicy::kTruncateToLastGood);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("missing"), std::string::npos);
  // Garbage instead of a segment.
  std::vector<SegmentFile> garbage = {{"0000000000000000.wal", std::string(100, 'g')}};
  r = Replay(garbage, CorruptionPolicy::kTruncateToLastGood);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("0000000000000000.wal"), std::string::npos);
  // A segment from a newer format version.
  std::vector<SegmentFile> newer = {{"0000000000000000.wal", EncodeSegmentHeader({kFormatVersion + 1, 0})}};
  r = Replay(newer, CorruptionPolicy::kTruncateToLastGood);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos);
}

TEST(WalReplay, GapsAndSequenceBreaksAreCorruption) {
  std::string seg = EncodeSegmentHeader({kFormatVersion, 0});
  AppendEntryRecord(1, E(1, 1), &seg);
  AppendEntryRecord(2, E(1, 3), &seg);  // index gap
  AppendEntryRecord(3, E(1, 4), &seg);
  EXPECT_EQ(Replay({{Name(0), seg}}, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
  std::string seq = EncodeSegmentHeader({kFormatVersion, 0});
  AppendEntryRecord(1, E(1, 1), &seq);
  AppendEntryRecord(5, E(1, 2), &seq);  // sequence gap
  AppendEntryRecord(6, E(1, 3), &seq);
  EXPECT_EQ(Replay({{Name(0), seq}}, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(WalReplay, ASnapshotRecordCoversTheEntriesUpToIt) {
  Builder b(100);
  for (raft::Index i = 1; i <= 6; ++i) b.Entry(E(1, i));
  b.Snap({4, 1, {1, 2, 3}});
  b.Entry(E(1, 7));
  b.Hard({1, 1, 7});
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->snapshot, (raft::SnapshotMeta{4, 1, {1, 2, 3}}));
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries[0], E(1, 5));
  EXPECT_EQ(r->entries[2], E(1, 7));
}

TEST(WalReplay, AnInstalledSnapshotDropsTheWholeLogBeforeIt) {
  Builder b(100);
  for (raft::Index i = 1; i <= 6; ++i) b.Entry(E(1, i));
  b.Snap({4, 2, {1, 2, 3}}, /*replaces_log=*/true);  // entry 4 had term 1: a different history
  b.Hard({2, 0, 4});
  b.Entry(E(2, 5));
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->snapshot.index, 4u);
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->entries[0], E(2, 5));
}

TEST(WalReplay, ACompactedWalStartsAfterItsSnapshot) {
  Builder b(3);
  for (raft::Index i = 1; i <= 7; ++i) b.Entry(E(1, i));
  b.Snap({6, 1, {1}});
  b.Entry(E(1, 8));
  b.Entry(E(1, 9));
  b.DropFirst(2);  // segments holding entries 1..6 (and no snapshot) are gone
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entries.size(), 3u);
  EXPECT_EQ(r->entries.front(), E(1, 7));
  EXPECT_EQ(r->segments.front().seq, 2u);
}

TEST(WalReplay, EntriesThatStartAfterTheSnapshotAreDataLoss) {
  Builder b(3);
  for (raft::Index i = 1; i <= 9; ++i) b.Entry(E(1, i));
  b.Snap({2, 1, {1}});
  b.DropFirst(1);  // entries 1..3 gone, but the snapshot covers only up to 2
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("start at index 4"), std::string::npos) << r.status();
  Builder none(3);
  for (raft::Index i = 1; i <= 9; ++i) none.Entry(E(1, i));
  none.DropFirst(1);
  EXPECT_EQ(Replay(none.segments, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(WalReplay, ASnapshotRecordThatContradictsTheLogIsCorruption) {
  Builder b(100);
  for (raft::Index i = 1; i <= 6; ++i) b.Entry(E(1, i));
  b.Snap({4, 3, {1}});  // entry 4 has term 1
  EXPECT_EQ(Replay(b.segments, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
  Builder older(100);
  older.Entry(E(1, 1));
  older.Snap({1, 1, {1}});
  older.Entry(E(1, 2));
  older.Entry(E(1, 3));
  older.Snap({3, 1, {1}});
  older.Snap({2, 1, {1}});  // snapshots never go back
  EXPECT_EQ(Replay(older.segments, CorruptionPolicy::kRefuseStart).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(WalReplay, Version1SegmentsAreReadUnchanged) {
  // Format version 2 added the snapshot record; a version 1 WAL replays as before.
  std::string seg = EncodeSegmentHeader({1, 0});
  AppendEntryRecord(1, E(1, 1), &seg);
  AppendHardStateRecord(2, {1, 1, 1}, &seg);
  auto r = Replay({{Name(0), seg}}, CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entries.size(), 1u);
  EXPECT_EQ(r->hard_state.commit, 1u);
  EXPECT_EQ(r->snapshot.index, 0u);
}

// Corruption injected at a random offset is always detected: replay either refuses, or (only
// when the damage is in the newest segment's final record) drops exactly that record. It never
// returns an entry that was not written.
RC_GTEST_PROP(WalReplayProperty, RandomCorruptionIsAlwaysDetected, ()) {
  const int n = *rc::gen::inRange(1, 30);
  const size_t per_segment = static_cast<size_t>(*rc::gen::inRange(1, 10));
  Builder b(per_segment);
  std::vector<raft::Entry> written;
  for (int i = 1; i <= n; ++i) {
    raft::Entry e = E(1, static_cast<raft::Index>(i), std::string(static_cast<size_t>(*rc::gen::inRange(0, 64)), 'q'));
    written.push_back(e);
    b.Entry(e);
  }
  const size_t file = static_cast<size_t>(*rc::gen::inRange<size_t>(0, b.segments.size()));
  std::string& bytes = b.segments[file].bytes;
  const size_t offset = *rc::gen::inRange<size_t>(0, bytes.size());
  const int bit = *rc::gen::inRange(0, 8);
  bytes[offset] ^= static_cast<char>(1 << bit);
  auto r = Replay(b.segments, CorruptionPolicy::kRefuseStart);
  const bool in_final_record =
      file + 1 == b.segments.size() && offset >= b.record_offsets.back();
  if (r.ok()) {
    RC_ASSERT(in_final_record);
    RC_ASSERT(r->torn_tail);
    RC_ASSERT(r->entries.size() == written.size() - 1);
  }
  if (r.ok()) {
    for (size_t i = 0; i < r->entries.size(); ++i) RC_ASSERT(r->entries[i] == written[i]);
  }
}

}  // namespace
}  // namespace amaters::wal
