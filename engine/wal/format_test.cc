#include "engine/wal/format.h"

#include <cstdint>
#include <string>

#include "engine/base/crc32c.h"
#include "gtest/gtest.h"

namespace amaters::wal {
namespace {

raft::Entry E(raft::Term t, raft::Index i, std::string data) {
  raft::Entry e;
  e.term = t;
  e.index = i;
  e.data = std::move(data);
  return e;
}

TEST(WalFormat, SegmentHeaderRoundTrip) {
  SegmentHeader h;
  h.segment_seq = 42;
  std::string b = EncodeSegmentHeader(h);
  ASSERT_EQ(b.size(), kSegmentHeaderBytes);
  auto d = DecodeSegmentHeader(b);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->segment_seq, 42u);
  EXPECT_EQ(d->version, kFormatVersion);
}

TEST(WalFormat, SegmentHeaderErrors) {
  std::string b = EncodeSegmentHeader({kFormatVersion, 1});
  std::string wrong_magic = b;
  wrong_magic[0] = 'X';
  EXPECT_EQ(DecodeSegmentHeader(wrong_magic).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(DecodeSegmentHeader(wrong_magic).status().message().find("magic"), std::string::npos);
  std::string flipped = b;
  flipped[20] ^= 1;
  EXPECT_EQ(DecodeSegmentHeader(flipped).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSegmentHeader(b.substr(0, 10)).status().code(), absl::StatusCode::kDataLoss);
  std::string newer = EncodeSegmentHeader({kFormatVersion + 1, 1});
  EXPECT_EQ(DecodeSegmentHeader(newer).status().code(), absl::StatusCode::kFailedPrecondition);
  // Non-zero flags or reserved bytes under a valid checksum (fuzz/regressions/wal_decoder).
  for (size_t offset : {12u, 24u}) {
    std::string marked = b;
    marked[offset] = 1;
    const uint32_t crc = Crc32c(absl::string_view(marked).substr(0, 28));
    for (int i = 0; i < 4; ++i) marked[28 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    EXPECT_EQ(DecodeSegmentHeader(marked).status().code(), absl::StatusCode::kFailedPrecondition)
        << "offset " << offset;
  }
}

TEST(WalFormat, RecordsRoundTrip) {
  std::string b;
  raft::Entry noop = E(3, 7, "");
  noop.type = raft::EntryType::kNoop;
  AppendEntryRecord(1, E(2, 5, "hello"), &b);
  AppendHardStateRecord(2, {3, 2, 5}, &b);
  AppendEntryRecord(3, noop, &b);
  absl::string_view rest(b);
  DecodeResult r1 = DecodeRecord(rest);
  ASSERT_EQ(r1.kind, DecodeResult::Kind::kOk) << r1.error;
  EXPECT_EQ(r1.record.seq, 1u);
  EXPECT_EQ(r1.record.entry, E(2, 5, "hello"));
  rest.remove_prefix(r1.size);
  DecodeResult r2 = DecodeRecord(rest);
  ASSERT_EQ(r2.kind, DecodeResult::Kind::kOk) << r2.error;
  EXPECT_EQ(r2.record.type, RecordType::kHardState);
  EXPECT_EQ(r2.record.hard_state, (raft::HardState{3, 2, 5}));
  rest.remove_prefix(r2.size);
  DecodeResult r3 = DecodeRecord(rest);
  ASSERT_EQ(r3.kind, DecodeResult::Kind::kOk) << r3.error;
  EXPECT_EQ(r3.record.entry, noop);
  rest.remove_prefix(r3.size);
  EXPECT_TRUE(rest.empty());
}

TEST(WalFormat, SnapshotRecordsRoundTrip) {
  std::string b;
  const raft::SnapshotMeta snap{10000, 7, {1, 2, 3}};
  AppendSnapshotRecord(9, snap, /*replaces_log=*/false, &b);
  AppendSnapshotRecord(10, snap, /*replaces_log=*/true, &b);
  ASSERT_EQ(b.size(), 2 * SnapshotRecordBytes(snap));
  DecodeResult r1 = DecodeRecord(b);
  ASSERT_EQ(r1.kind, DecodeResult::Kind::kOk) << r1.error;
  EXPECT_EQ(r1.record.type, RecordType::kSnapshot);
  EXPECT_EQ(r1.record.seq, 9u);
  EXPECT_EQ(r1.record.snapshot, snap);
  EXPECT_FALSE(r1.record.snapshot_replaces_log);
  DecodeResult r2 = DecodeRecord(absl::string_view(b).substr(r1.size));
  ASSERT_EQ(r2.kind, DecodeResult::Kind::kOk) << r2.error;
  EXPECT_TRUE(r2.record.snapshot_replaces_log);
  // A snapshot at index 0 is not a snapshot.
  std::string zero;
  AppendSnapshotRecord(1, {0, 1, {1}}, false, &zero);
  EXPECT_EQ(DecodeRecord(zero).kind, DecodeResult::Kind::kCorrupt);
}

// Rewrites a record's payload, with its length and both checksums (a record of an older
// format version, or a malformed one).
std::string WithPayload(const std::string& record, const std::string& payload) {
  std::string out = record.substr(0, kRecordHeaderBytes) + payload;
  auto put32 = [&out](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) out[at + i] = static_cast<char>(v >> (8 * i));
  };
  put32(4, static_cast<uint32_t>(payload.size()));
  put32(0, Crc32c(payload));
  put32(20, Crc32cExtend(0, out.data() + 4, 16));
  return out;
}

TEST(WalFormat, SnapshotRecordsCarryTheConfiguration) {
  raft::SnapshotMeta snap{20, 3, {2, 3, 4}};
  snap.voters_outgoing = {1, 2, 3};
  snap.learners = {7};
  snap.auto_leave = true;
  snap.members = {{4, "n4", {"http://10.0.0.4:2380"}, {"http://10.0.0.4:2379"}},
                  {7, "", {}, {}}};
  std::string b;
  AppendSnapshotRecord(4, snap, false, &b);
  ASSERT_EQ(b.size(), SnapshotRecordBytes(snap));
  DecodeResult r = DecodeRecord(b);
  ASSERT_EQ(r.kind, DecodeResult::Kind::kOk) << r.error;
  EXPECT_EQ(r.record.snapshot, snap);
  // Version 2 records end after the voters: no outgoing voters, no learners.
  const raft::SnapshotMeta plain{20, 3, {1, 2, 3}};
  std::string v3;
  AppendSnapshotRecord(4, plain, false, &v3);
  const std::string v2 = WithPayload(v3, v3.substr(kRecordHeaderBytes, 1 + 16 + 4 + 24));
  r = DecodeRecord(v2);
  ASSERT_EQ(r.kind, DecodeResult::Kind::kOk) << r.error;
  EXPECT_EQ(r.record.snapshot, plain);
  // Every cut of the tail, and an auto_leave byte other than 0/1, is corrupt.
  const std::string payload = b.substr(kRecordHeaderBytes);
  for (size_t n = 1 + 16 + 4 + 24 + 1; n < payload.size(); ++n) {
    EXPECT_EQ(DecodeRecord(WithPayload(b, payload.substr(0, n))).kind,
              DecodeResult::Kind::kCorrupt) << "payload cut to " << n;
  }
  std::string bad = payload;
  bad[1 + 16 + (4 + 24) + (4 + 24) + (4 + 8)] = 2;  // auto_leave
  EXPECT_EQ(DecodeRecord(WithPayload(b, bad)).kind, DecodeResult::Kind::kCorrupt);
}

TEST(WalFormat, ConfigurationChangeEntriesRoundTrip) {
  raft::Entry e = E(2, 5, "change");
  e.type = raft::EntryType::kConfChange;
  DecodeResult r = DecodeRecord(EncodeEntryRecord(1, e));
  ASSERT_EQ(r.kind, DecodeResult::Kind::kOk) << r.error;
  EXPECT_EQ(r.record.entry, e);
}

TEST(WalFormat, DamagedLengthIsCorruptionNotATornRecord) {
  // A flipped bit in the length field must not make a whole record look cut short.
  std::string b = EncodeEntryRecord(1, E(1, 1, "abc"));
  b[5] ^= 1;  // length += 256
  DecodeResult r = DecodeRecord(b);
  EXPECT_EQ(r.kind, DecodeResult::Kind::kCorrupt);
}

TEST(WalFormat, DamagedPayloadKeepsTheTrustedRecordSize) {
  std::string b = EncodeEntryRecord(1, E(1, 1, "abcdef"));
  b[b.size() - 1] ^= 1;
  DecodeResult r = DecodeRecord(b);
  EXPECT_EQ(r.kind, DecodeResult::Kind::kCorruptPayload);
  EXPECT_EQ(r.size, b.size());
}

TEST(WalFormat, EveryTruncationIsIncompleteNeverValid) {
  std::string b = EncodeEntryRecord(9, E(1, 1, std::string(100, 'x')));
  for (size_t cut = 0; cut < b.size(); ++cut) {
    DecodeResult r = DecodeRecord(absl::string_view(b).substr(0, cut));
    EXPECT_EQ(r.kind, DecodeResult::Kind::kIncomplete) << "cut at " << cut;
  }
}

TEST(WalFormat, EverySingleBitFlipIsDetected) {
  std::string b = EncodeEntryRecord(9, E(4, 2, "payload bytes"));
  for (size_t i = 0; i < b.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string c = b;
      c[i] ^= static_cast<char>(1 << bit);
      DecodeResult r = DecodeRecord(c);
      EXPECT_NE(r.kind, DecodeResult::Kind::kOk) << "flip at byte " << i << " bit " << bit;
    }
  }
}

TEST(WalFormat, OversizedLengthIsCorruptNotAnAllocation) {
  std::string b = EncodeEntryRecord(1, E(1, 1, "x"));
  b[7] = static_cast<char>(0x7f);  // length field near 2 GiB: the header checksum catches it
  DecodeResult r = DecodeRecord(b);
  EXPECT_EQ(r.kind, DecodeResult::Kind::kCorrupt);
  EXPECT_NE(r.error.find("header checksum"), std::string::npos);
}

}  // namespace
}  // namespace amaters::wal
