#include "engine/wal/testing/disk_suite.h"

#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "engine/wal/format.h"
#include "engine/wal/writer.h"

namespace amaters::wal::testing {
namespace {

raft::Entry E(raft::Term t, raft::Index i, size_t size = 16) {
  raft::Entry e;
  e.term = t;
  e.index = i;
  e.data = std::string(size, static_cast<char>('a' + i % 26));
  return e;
}

// Drives a Writer on a Disk the way a node does: append, then run batches until idle.
class Driver {
 public:
  Driver(Disk* disk, WriterOptions options, raft::Index snapshot_index = 0)
      : disk_(disk), options_(options) {
    absl::StatusOr<ReplayResult> r = Recover(disk_, CorruptionPolicy::kRefuseStart,
                                             snapshot_index);
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) recovered = *r;
    absl::StatusOr<Writer> w = Writer::Open(options_, recovered);
    EXPECT_TRUE(w.ok()) << w.status();
    if (w.ok()) writer.emplace(*std::move(w));
  }
  void Append(std::vector<raft::Entry> entries, std::optional<raft::HardState> hs = {},
              std::optional<raft::SnapshotMeta> snapshot = {}, bool replaces_log = false) {
    raft::PersistRequest req;
    req.seq = ++seq_;
    req.entries = std::move(entries);
    req.hard_state = hs;
    req.snapshot = std::move(snapshot);
    req.snapshot_replaces_log = replaces_log;
    ASSERT_TRUE(writer->Append(req).ok());
  }
  // Runs batches until the writer has no work; returns the number of batches.
  int Run(uint64_t now_ms = 0) {
    int n = 0;
    while (std::optional<DiskBatch> b = writer->NextBatch(now_ms)) {
      ++n;
      absl::Status s = ExecuteBatch(*b, disk_);
      EXPECT_TRUE(s.ok()) << s;
      absl::StatusOr<std::vector<uint64_t>> done = writer->OnBatchDone(b->id, s);
      EXPECT_TRUE(done.ok()) << done.status();
      if (done.ok()) acked.insert(acked.end(), done->begin(), done->end());
      batches.push_back(*b);
    }
    return n;
  }
  ReplayResult recovered;
  std::optional<Writer> writer;
  std::vector<uint64_t> acked;
  std::vector<DiskBatch> batches;

 private:
  Disk* disk_;
  WriterOptions options_;
  uint64_t seq_ = 0;
};

std::vector<std::string> Names(Disk* disk) {
  absl::StatusOr<std::vector<std::string>> names = disk->List();
  EXPECT_TRUE(names.ok()) << names.status();
  return names.ok() ? *names : std::vector<std::string>{};
}

WriterOptions Small() {
  WriterOptions o;
  o.segment_size_bytes = 4096;
  return o;
}

TEST_P(DiskSuite, FileOperations) {
  ASSERT_TRUE(disk()->Create("a.wal").ok());
  EXPECT_EQ(disk()->Create("a.wal").code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(disk()->Write("a.wal", 0, "hello").ok());
  ASSERT_TRUE(disk()->Write("a.wal", 5, " world").ok());
  ASSERT_TRUE(disk()->Write("a.wal", 0, "J").ok());
  EXPECT_FALSE(disk()->Write("a.wal", 100, "x").ok()) << "write beyond the end";
  ASSERT_TRUE(disk()->Sync("a.wal").ok());
  ASSERT_TRUE(disk()->Create("b.wal").ok());
  ASSERT_TRUE(disk()->SyncDir().ok());
  EXPECT_EQ(*disk()->Read("a.wal"), "Jello world");
  EXPECT_EQ(Names(disk()), (std::vector<std::string>{"a.wal", "b.wal"}));
  ASSERT_TRUE(disk()->Truncate("a.wal", 4).ok());
  EXPECT_EQ(*disk()->Read("a.wal"), "Jell");
  ASSERT_TRUE(disk()->Delete("b.wal").ok());
  ASSERT_TRUE(disk()->SyncDir().ok());
  EXPECT_EQ(Names(disk()), std::vector<std::string>{"a.wal"});
  EXPECT_EQ(disk()->Read("b.wal").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(disk()->Delete("b.wal").code(), absl::StatusCode::kNotFound);
  env_->Reopen();
  EXPECT_EQ(*disk()->Read("a.wal"), "Jell");
}

TEST_P(DiskSuite, WriterRoundTripsThroughRecovery) {
  {
    Driver d(disk(), Small());
    d.Append({E(1, 1), E(1, 2)}, raft::HardState{1, 1, 0});
    d.Append({E(1, 3)}, raft::HardState{1, 1, 2});
    d.Append({E(2, 3), E(2, 4)}, raft::HardState{2, 2, 3});  // overwrites index 3
    d.Run();
    EXPECT_EQ(d.acked, (std::vector<uint64_t>{1, 2, 3}));
  }
  env_->Reopen();
  Driver d(disk(), Small());
  ASSERT_EQ(d.recovered.entries.size(), 4u);
  EXPECT_EQ(d.recovered.entries[2], E(2, 3));
  EXPECT_EQ(d.recovered.hard_state, (raft::HardState{2, 2, 3}));
  EXPECT_FALSE(d.recovered.torn_tail);
  // The writer continues the sequence after a restart.
  d.Append({E(2, 5)}, raft::HardState{2, 2, 4});
  d.Run();
  env_->Reopen();
  Driver again(disk(), Small());
  ASSERT_EQ(again.recovered.entries.size(), 5u);
  EXPECT_EQ(again.recovered.hard_state.commit, 4u);
}

TEST_P(DiskSuite, GroupCommitCoversManyRequestsWithOneSync) {
  Driver d(disk(), Small());
  for (raft::Index i = 1; i <= 50; ++i) d.Append({E(1, i, 8)});
  EXPECT_EQ(d.Run(), 1) << "one batch for everything appended while the disk was idle";
  EXPECT_EQ(d.acked.size(), 50u);
  // Creating the first segment syncs its header and the directory; then one fdatasync.
  EXPECT_EQ(d.writer->stats().syncs, 3u);
}

TEST_P(DiskSuite, SegmentsRollAndEachStartsWithTheHardState) {
  Driver d(disk(), Small());
  for (raft::Index i = 1; i <= 60; ++i) {
    d.Append({E(1, i, 200)}, raft::HardState{1, 1, i - 1});
    d.Run();
  }
  EXPECT_GE(d.writer->stats().segments, 3u);
  std::vector<std::string> names = Names(disk());
  size_t segments = 0;
  for (const std::string& name : names) {
    if (name.size() < 4 || name.substr(name.size() - 4) != ".wal") continue;
    ++segments;
    std::string bytes = *disk()->Read(name);
    EXPECT_LE(bytes.size(), 4096u) << name;
    if (name == names.front()) continue;
    DecodeResult first = DecodeRecord(absl::string_view(bytes).substr(kSegmentHeaderBytes));
    ASSERT_EQ(first.kind, DecodeResult::Kind::kOk) << name;
    EXPECT_EQ(first.record.type, RecordType::kHardState) << name;
  }
  EXPECT_EQ(segments, d.writer->stats().segments);
  env_->Reopen();
  Driver r(disk(), Small());
  EXPECT_EQ(r.recovered.entries.size(), 60u);
  EXPECT_EQ(r.recovered.hard_state.commit, 59u);
}

TEST_P(DiskSuite, ASnapshotRecordLetsCompactionDeleteSegmentsAndRecoveryFindsIt) {
  Driver d(disk(), Small());
  for (raft::Index i = 1; i <= 60; ++i) {
    d.Append({E(1, i, 200)}, raft::HardState{1, 1, i});
    d.Run();
  }
  const raft::SnapshotMeta snap{45, 1, {1, 2, 3}};
  d.Append({}, {}, snap);
  for (raft::Index i = 61; i <= 80; ++i) d.Append({E(1, i, 200)}, raft::HardState{1, 1, i});
  d.Run();
  const uint64_t before = d.writer->stats().segments;
  d.writer->Compact(40);  // a margin of 5 entries below the snapshot
  d.Run();
  EXPECT_LT(d.writer->stats().segments, before);
  EXPECT_EQ(d.writer->stats().compaction_count, 1u);
  // The snapshot record's original may be gone with its segment; every later segment starts
  // with a copy, so recovery needs nothing from elsewhere.
  env_->Reopen();
  Driver r(disk(), Small());
  EXPECT_EQ(r.recovered.snapshot, snap);
  ASSERT_EQ(r.recovered.entries.size(), 35u);
  EXPECT_EQ(r.recovered.entries.front().index, 46u);
  EXPECT_EQ(r.recovered.entries.back().index, 80u);
  EXPECT_EQ(r.recovered.hard_state.commit, 80u);
  // Appends continue after a restart, across new segments.
  for (raft::Index i = 81; i <= 120; ++i) r.Append({E(1, i, 200)}, raft::HardState{1, 1, i});
  r.Run();
  r.writer->Compact(45);
  r.Run();
  env_->Reopen();
  Driver again(disk(), Small());
  EXPECT_EQ(again.recovered.snapshot, snap);
  ASSERT_EQ(again.recovered.entries.size(), 75u);
  EXPECT_EQ(again.recovered.entries.front().index, 46u);
}

TEST_P(DiskSuite, AnInstalledSnapshotReplacesTheLog) {
  Driver d(disk(), Small());
  for (raft::Index i = 1; i <= 10; ++i) d.Append({E(1, i)}, raft::HardState{1, 1, 3});
  d.Run();
  // The leader's snapshot at 20 (term 2) replaces a log whose entries 4..10 never committed.
  const raft::SnapshotMeta snap{20, 2, {1, 2, 3}};
  d.Append({}, raft::HardState{2, 0, 20}, snap, /*replaces_log=*/true);
  d.Append({E(2, 21)}, raft::HardState{2, 0, 21});
  d.Run();
  env_->Reopen();
  Driver r(disk(), Small());
  EXPECT_EQ(r.recovered.snapshot, snap);
  ASSERT_EQ(r.recovered.entries.size(), 1u);
  EXPECT_EQ(r.recovered.entries[0], E(2, 21));
  EXPECT_EQ(r.recovered.hard_state.commit, 21u);
}

TEST_P(DiskSuite, CompactionDeletesOldSegmentsAndRecoveryStartsAfterTheSnapshot) {
  Driver d(disk(), Small());
  for (raft::Index i = 1; i <= 60; ++i) {
    d.Append({E(1, i, 200)}, raft::HardState{1, 1, i});
    d.Run();
  }
  const uint64_t before = d.writer->stats().segments;
  const uint64_t bytes_before = d.writer->stats().size_bytes;
  d.writer->Compact(40);
  d.Run();
  WriterStats s = d.writer->stats();
  EXPECT_LT(s.segments, before);
  EXPECT_LT(s.size_bytes, bytes_before);
  EXPECT_EQ(s.compaction_count, 1u);
  EXPECT_EQ(s.segments_deleted, before - s.segments);
  // The counted size is the size on disk.
  uint64_t on_disk = 0;
  for (const std::string& name : Names(disk())) {
    if (name.size() > 4 && name.substr(name.size() - 4) == ".wal") {
      on_disk += disk()->Read(name)->size();
    }
  }
  EXPECT_EQ(on_disk, s.size_bytes);
  env_->Reopen();
  Driver r(disk(), Small(), /*snapshot_index=*/40);
  ASSERT_EQ(r.recovered.entries.size(), 20u);
  EXPECT_EQ(r.recovered.entries.front().index, 41u);
  EXPECT_EQ(r.recovered.hard_state.commit, 60u);
  // Without a snapshot covering the deleted entries, recovery refuses: entries are missing.
  env_->Reopen();
  absl::StatusOr<ReplayResult> bad = Recover(disk(), CorruptionPolicy::kRefuseStart, 0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
}

TEST_P(DiskSuite, TornTailIsTruncatedAndReported) {
  {
    Driver d(disk(), Small());
    d.Append({E(1, 1), E(1, 2)}, raft::HardState{1, 1, 1});
    d.Run();
  }
  std::string seg = "0000000000000000.wal";
  std::string bytes = *disk()->Read(seg);
  std::string partial = EncodeEntryRecord(4, E(1, 3)).substr(0, 30);
  ASSERT_TRUE(disk()->Write(seg, bytes.size(), partial).ok());
  env_->Reopen();
  Driver d(disk(), Small());
  EXPECT_TRUE(d.recovered.torn_tail);
  ASSERT_FALSE(d.recovered.notes.empty());
  EXPECT_NE(d.recovered.notes[0].find(seg), std::string::npos) << d.recovered.notes[0];
  EXPECT_EQ(d.recovered.entries.size(), 2u);
  EXPECT_EQ(disk()->Read(seg)->size(), bytes.size()) << "the torn record is cut off";
  d.Append({E(1, 3)});
  d.Run();
  env_->Reopen();
  Driver again(disk(), Small());
  EXPECT_EQ(again.recovered.entries.size(), 3u);
  EXPECT_FALSE(again.recovered.torn_tail);
}

// Bad input never deletes or changes anything, and the error names the file.
TEST_P(DiskSuite, BadSegmentsAreClearErrorsAndNothingIsChanged) {
  struct Case {
    std::string what;
    std::string bytes;
    absl::StatusCode code;
  };
  std::string newer = EncodeSegmentHeader({kFormatVersion + 1, 1});
  std::vector<Case> cases = {
      {"garbage", std::string(100, 'x'), absl::StatusCode::kDataLoss},
      {"wrong magic",
       "NOTAWAL!" + EncodeSegmentHeader({kFormatVersion, 1}).substr(8) +
           EncodeEntryRecord(3, E(1, 2)),
       absl::StatusCode::kDataLoss},
      {"newer version", newer, absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    env_ = GetParam().make();
    {
      Driver d(disk(), Small());
      d.Append({E(1, 1)}, raft::HardState{1, 1, 1});
      d.Run();
    }
    // A second segment with bad contents.
    ASSERT_TRUE(disk()->Create("0000000000000001.wal").ok());
    ASSERT_TRUE(disk()->Write("0000000000000001.wal", 0, c.bytes).ok());
    std::vector<std::string> before = Names(disk());
    std::string first = *disk()->Read("0000000000000000.wal");
    env_->Reopen();
    absl::StatusOr<ReplayResult> r =
        Recover(disk(), CorruptionPolicy::kTruncateToLastGood, 0);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status();
    EXPECT_NE(r.status().message().find("0000000000000001.wal"), std::string::npos)
        << r.status();
    EXPECT_EQ(Names(disk()), before);
    EXPECT_EQ(*disk()->Read("0000000000000000.wal"), first);
    EXPECT_EQ(*disk()->Read("0000000000000001.wal"), c.bytes);
  }
}

TEST_P(DiskSuite, CorruptionBeforeTheTailFollowsThePolicy) {
  {
    Driver d(disk(), Small());
    for (raft::Index i = 1; i <= 5; ++i) d.Append({E(1, i)}, raft::HardState{1, 1, i - 1});
    d.Run();
  }
  const std::string seg = "0000000000000000.wal";
  std::string bytes = *disk()->Read(seg);
  const size_t offset = kSegmentHeaderBytes + 100;  // inside the second or third record
  bytes[offset] ^= 0x10;
  ASSERT_TRUE(disk()->Write(seg, 0, bytes).ok());
  env_->Reopen();
  absl::StatusOr<ReplayResult> refused = Recover(disk(), CorruptionPolicy::kRefuseStart, 0);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_NE(refused.status().message().find(seg), std::string::npos);
  EXPECT_NE(refused.status().message().find("offset"), std::string::npos);
  EXPECT_EQ(*disk()->Read(seg), bytes) << "refuse_start changes nothing";
  absl::StatusOr<ReplayResult> truncated =
      Recover(disk(), CorruptionPolicy::kTruncateToLastGood, 0);
  ASSERT_TRUE(truncated.ok()) << truncated.status();
  EXPECT_TRUE(truncated->corruption_truncated);
  EXPECT_LT(truncated->entries.size(), 5u);
  EXPECT_LT(disk()->Read(seg)->size(), bytes.size());
}

TEST_P(DiskSuite, SyncModes) {
  struct Case {
    SyncMode mode;
    uint64_t expected_syncs;
  };
  // Every mode syncs a new segment's header and the directory (2 syncs), then its own.
  for (Case c : {Case{SyncMode::kAlways, 2 + 3}, Case{SyncMode::kNone, 2 + 0},
                 Case{SyncMode::kInterval, 2 + 1}}) {
    SCOPED_TRACE(SyncModeName(c.mode));
    env_ = GetParam().make();
    WriterOptions o = Small();
    o.sync_mode = c.mode;
    o.sync_interval_ms = 1000;
    Driver d(disk(), o);
    // Three batches at t = 1000, 1001, 1002 ms: interval mode syncs only the first.
    for (uint64_t t = 0; t < 3; ++t) {
      d.Append({E(1, t + 1)});
      d.Run(1000 + t);
    }
    EXPECT_EQ(d.acked.size(), 3u) << "every mode acknowledges";
    EXPECT_EQ(d.writer->stats().syncs, c.expected_syncs);
    if (c.mode == SyncMode::kInterval) {
      // The timer fires for data written since the last sync, without new appends.
      EXPECT_EQ(d.writer->next_sync_due_ms(), std::optional<uint64_t>(2000));
      EXPECT_EQ(d.Run(1500), 0);
      EXPECT_EQ(d.Run(2000), 1);
      EXPECT_EQ(d.writer->stats().syncs, 2u + 2u);
      EXPECT_EQ(d.writer->next_sync_due_ms(), std::nullopt) << "nothing left to sync";
    }
  }
}

// A crash can cut the newest segment back to its header, losing its hard state copy. The writer
// must then start a new segment (with a durable copy) before compaction may delete the older
// segment that holds the only other copy.
TEST_P(DiskSuite, ANewestSegmentWithoutHardStateIsClosedBeforeCompaction) {
  {
    Driver d(disk(), Small());
    for (raft::Index i = 1; i <= 30; ++i) {
      d.Append({E(1, i, 200)}, raft::HardState{1, 1, i});
      d.Run();
    }
    ASSERT_GE(d.writer->stats().segments, 2u);
  }
  // Cut the newest segment back to its header (what a torn creation leaves after recovery).
  std::vector<std::string> names = Names(disk());
  const std::string newest = names.back();
  ASSERT_TRUE(disk()->Truncate(newest, kSegmentHeaderBytes).ok());
  ASSERT_TRUE(disk()->Sync(newest).ok());
  env_->Reopen();
  Driver d(disk(), Small(), 0);
  ASSERT_NE(d.recovered.hard_state, raft::HardState{}) << "an older segment holds it";
  EXPECT_FALSE(d.recovered.segments.back().has_hard_state);
  d.writer->Compact(1000);  // everything is "covered": only the hard state must survive
  d.Append({E(1, 31, 10)});
  d.Run();
  d.writer->Compact(1000);
  d.Run();
  env_->Reopen();
  Driver again(disk(), Small(), 31);
  EXPECT_EQ(again.recovered.hard_state, d.recovered.hard_state)
      << "the hard state survived compaction";
  EXPECT_TRUE(again.recovered.segments.back().has_hard_state);
}

TEST_P(DiskSuite, InvalidNamesAreRejected) {
  for (const std::string name : {"", ".", "..", "a/b"}) {
    EXPECT_EQ(disk()->Create(name).code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_EQ(disk()->Read(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

TEST_P(DiskSuite, AnEntryTooLargeForARecordStopsTheWriterBeforeAnythingIsWritten) {
  Driver d(disk(), Small());
  raft::PersistRequest req;
  req.seq = 1;
  req.entries.push_back(E(1, 1, kMaxRecordPayloadBytes));
  absl::Status s = d.writer->Append(req);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_FALSE(d.writer->NextBatch(0).has_value());
}

TEST_P(DiskSuite, AFailedBatchStopsTheWriter) {
  Driver d(disk(), Small());
  d.Append({E(1, 1)});
  std::optional<DiskBatch> b = d.writer->NextBatch(0);
  ASSERT_TRUE(b.has_value());
  absl::StatusOr<std::vector<uint64_t>> r =
      d.writer->OnBatchDone(b->id, absl::InternalError("fdatasync: Input/output error"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("Input/output error"), std::string::npos);
  raft::PersistRequest next;
  next.seq = 2;
  next.entries = {E(1, 2)};
  EXPECT_FALSE(d.writer->Append(next).ok());
  EXPECT_FALSE(d.writer->NextBatch(0).has_value());
}

}  // namespace
}  // namespace amaters::wal::testing
