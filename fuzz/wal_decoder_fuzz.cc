// Fuzz target: WAL segment and record decoding, replay and recovery (engine/wal).
//
// Input: one control byte, then the bytes of one or more segment files back to back; the
// input is cut before every occurrence of the segment magic "AMTRSWAL", so a concatenation of
// real segment files (the seed corpus) is a valid input. At most kMaxSegments files.
//   control bit 0     corruption policy (0 kRefuseStart, 1 kTruncateToLastGood)
//   control bits 1-3  snapshot index (0..7)
//
// Never crashes, and checks what the format promises:
//  - a segment header or record that decodes re-encodes to exactly the bytes it came from;
//  - whatever Replay accepts is self-consistent: entries contiguous from the snapshot (the
//    control byte's or the WAL's newest snapshot record) + 1, segment
//    sequence numbers consecutive, repairs name existing files and sizes within them;
//  - policies agree: an input kRefuseStart accepts gives the same result under
//    kTruncateToLastGood;
//  - replay is idempotent: after Recover executes the repairs on a SimDisk, a second Recover
//    finds nothing to repair and the same log and hard state;
//  - the writer continues from the result: Writer::Open succeeds, one more entry and hard state
//    go to disk, and the next Recover returns the old log plus that entry.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "engine/base/check.h"
#include "engine/raft/raft.h"
#include "engine/raft/types.h"
#include "engine/wal/disk.h"
#include "engine/wal/format.h"
#include "engine/wal/replay.h"
#include "engine/wal/sim_disk.h"
#include "engine/wal/writer.h"

namespace amaters::fuzz {
namespace {

using wal::CorruptionPolicy;
using wal::ReplayResult;
using wal::SegmentFile;

constexpr size_t kMaxSegments = 8;

std::vector<SegmentFile> SplitSegments(absl::string_view bytes) {
  const absl::string_view magic(wal::kMagic, sizeof(wal::kMagic));
  std::vector<absl::string_view> pieces;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t next = bytes.find(magic, start + 1);
    if (next == absl::string_view::npos || pieces.size() + 1 == kMaxSegments) {
      next = bytes.size();
    }
    pieces.push_back(bytes.substr(start, next - start));
    start = next;
  }
  std::vector<SegmentFile> files;
  for (size_t i = 0; i < pieces.size(); ++i) {
    files.push_back({absl::StrFormat("%016d.wal", i), std::string(pieces[i])});
  }
  return files;
}

// Decoding one record or header and encoding it again gives back the same bytes.
void CheckRoundTrips(const SegmentFile& f) {
  absl::string_view bytes = f.bytes;
  absl::StatusOr<wal::SegmentHeader> h = wal::DecodeSegmentHeader(bytes);
  if (h.ok()) {
    AM_CHECK(bytes.size() >= wal::kSegmentHeaderBytes, "header decoded from ", bytes.size(),
             " bytes");
    AM_CHECK(wal::EncodeSegmentHeader(*h) == bytes.substr(0, wal::kSegmentHeaderBytes),
             "segment header of ", f.name, " does not re-encode to its bytes");
  }
  size_t offset = bytes.size() < wal::kSegmentHeaderBytes ? 0 : wal::kSegmentHeaderBytes;
  while (offset < bytes.size()) {
    absl::string_view rest = bytes.substr(offset);
    wal::DecodeResult d = wal::DecodeRecord(rest);
    if (d.kind == wal::DecodeResult::Kind::kOk) {
      AM_CHECK(d.size >= wal::kRecordHeaderBytes && d.size <= rest.size(), "record size ", d.size,
               " of ", rest.size(), " bytes");
      AM_CHECK(wal::IsValidRecordHeader(rest), "decoded record with an invalid header at ", offset);
      std::string again;
      switch (d.record.type) {
        case wal::RecordType::kEntry:
          again = wal::EncodeEntryRecord(d.record.seq, d.record.entry);
          break;
        case wal::RecordType::kHardState:
          again = wal::EncodeHardStateRecord(d.record.seq, d.record.hard_state);
          break;
        case wal::RecordType::kSnapshot:
          wal::AppendSnapshotRecord(d.record.seq, d.record.snapshot,
                                    d.record.snapshot_replaces_log, &again);
          break;
      }
      AM_CHECK(again == rest.substr(0, d.size), "record at ", offset, " of ", f.name,
               " does not re-encode to its bytes");
      offset += d.size;
    } else if (d.kind == wal::DecodeResult::Kind::kCorruptPayload) {
      AM_CHECK(wal::IsValidRecordHeader(rest), "payload-corrupt record with a bad header");
      AM_CHECK(d.size >= wal::kRecordHeaderBytes && d.size <= rest.size(), "record size ", d.size,
               " of ", rest.size(), " bytes");
      offset += d.size;
    } else {
      break;
    }
  }
}

// The index replayed entries start after: the caller's snapshot index or the WAL's own.
raft::Index Base(const ReplayResult& r, raft::Index snapshot) {
  return std::max(snapshot, r.snapshot.index);
}

void CheckSelfConsistent(const std::vector<SegmentFile>& files, const ReplayResult& r,
                         raft::Index snapshot) {
  snapshot = Base(r, snapshot);
  if (!r.entries.empty() && r.snapshot.index > 0) {
    AM_CHECK_GE(r.entries.front().term, r.snapshot.term, "entry older than the snapshot");
  }
  std::map<std::string, uint64_t> sizes;
  for (const SegmentFile& f : files) sizes[f.name] = f.bytes.size();
  for (size_t i = 0; i < r.entries.size(); ++i) {
    AM_CHECK_EQ(r.entries[i].index, snapshot + 1 + i, "replayed log is not contiguous");
  }
  for (size_t i = 0; i < r.segments.size(); ++i) {
    const wal::SegmentInfo& s = r.segments[i];
    AM_CHECK(sizes.count(s.name) == 1, "replay invented segment ", s.name);
    AM_CHECK_LE(s.size_bytes, sizes[s.name], s.name);
    AM_CHECK_GE(s.size_bytes, wal::kSegmentHeaderBytes, s.name);
    if (i > 0) {
      AM_CHECK_EQ(s.seq, r.segments[i - 1].seq + 1, "segment sequence gap");
      AM_CHECK(s.name > r.segments[i - 1].name, "segments out of name order");
    }
    for (const std::string& d : r.delete_files) AM_CHECK(d != s.name, "kept and deleted ", d);
  }
  AM_CHECK_LE(r.entries.size(), r.last_record_seq);
  if (!r.truncate_file.empty()) {
    AM_CHECK(sizes.count(r.truncate_file) == 1, "truncate of unknown file ", r.truncate_file);
    AM_CHECK_LE(r.truncate_to_bytes, sizes[r.truncate_file]);
  }
  for (const std::string& d : r.delete_files) {
    AM_CHECK(sizes.count(d) == 1, "delete of unknown file ", d);
  }
  if (r.torn_tail || r.corruption_truncated) {
    AM_CHECK(!r.notes.empty(), "repair without a note");
  }
}

void CheckSameLog(const ReplayResult& a, const ReplayResult& b, const char* what) {
  AM_CHECK(a.hard_state == b.hard_state, what, ": hard state differs");
  AM_CHECK(a.snapshot == b.snapshot, what, ": snapshot differs");
  AM_CHECK_EQ(a.entries.size(), b.entries.size(), what);
  for (size_t i = 0; i < a.entries.size(); ++i) {
    AM_CHECK(a.entries[i] == b.entries[i], what, ": entry ", i, " differs");
  }
  AM_CHECK_EQ(a.last_record_seq, b.last_record_seq, what);
}

void RunInput(absl::string_view data) {
  if (data.empty()) return;
  const uint8_t control = static_cast<uint8_t>(data[0]);
  const CorruptionPolicy policy =
      (control & 1) ? CorruptionPolicy::kTruncateToLastGood : CorruptionPolicy::kRefuseStart;
  const raft::Index snapshot = (control >> 1) & 7;
  std::vector<SegmentFile> files = SplitSegments(data.substr(1));
  for (const SegmentFile& f : files) CheckRoundTrips(f);

  absl::StatusOr<ReplayResult> r = wal::Replay(files, policy, snapshot);
  if (!r.ok()) {
    AM_CHECK(!r.status().message().empty(), "error without a message");
    return;
  }
  CheckSelfConsistent(files, *r, snapshot);
  if (policy == CorruptionPolicy::kRefuseStart) {
    absl::StatusOr<ReplayResult> t =
        wal::Replay(files, CorruptionPolicy::kTruncateToLastGood, snapshot);
    AM_CHECK(t.ok(),
             "kTruncateToLastGood refuses what kRefuseStart accepts: ", t.status().ToString());
    CheckSameLog(*r, *t, "policies disagree");
  }

  // Recovery on a disk: repairs, then a second recovery finds nothing to do.
  wal::SimDisk disk;
  for (const SegmentFile& f : files) {
    AM_CHECK(disk.Create(f.name).ok());
    AM_CHECK(disk.Write(f.name, 0, f.bytes).ok());
    AM_CHECK(disk.Sync(f.name).ok());
  }
  AM_CHECK(disk.SyncDir().ok());
  absl::StatusOr<ReplayResult> first = wal::Recover(&disk, policy, snapshot);
  AM_CHECK(first.ok(), "Recover fails where Replay succeeded: ", first.status().ToString());
  CheckSameLog(*r, *first, "Recover vs Replay");
  absl::StatusOr<ReplayResult> second =
      wal::Recover(&disk, CorruptionPolicy::kRefuseStart, snapshot);
  AM_CHECK(second.ok(), "recovery is not idempotent: ", second.status().ToString());
  AM_CHECK(!second->torn_tail && !second->corruption_truncated, "second recovery repaired again");
  AM_CHECK(second->truncate_file.empty() && second->delete_files.empty(),
           "second recovery asks for repairs");
  CheckSameLog(*first, *second, "second recovery");

  // The writer carries on from the recovered state.
  wal::WriterOptions options;
  options.segment_size_bytes = 4096;
  absl::StatusOr<wal::Writer> w = wal::Writer::Open(options, *second);
  AM_CHECK(w.ok(), "Writer::Open rejects a recovered WAL: ", w.status().ToString());
  raft::Entry next;
  next.index = Base(*second, snapshot) + second->entries.size() + 1;
  next.term = std::max<raft::Term>({second->hard_state.term, second->snapshot.term,
                                    second->entries.empty() ? 0 : second->entries.back().term});
  next.data = "fuzz";
  raft::PersistRequest req;
  req.seq = 1;
  req.entries.push_back(next);
  raft::HardState hs = second->hard_state;
  hs.term = next.term;
  req.hard_state = hs;
  AM_CHECK(w->Append(req).ok());
  std::vector<uint64_t> acked;
  for (int i = 0; i < 10 && acked.empty(); ++i) {
    std::optional<wal::DiskBatch> b = w->NextBatch(0);
    if (!b) break;
    absl::Status s = wal::ExecuteBatch(*b, &disk);
    AM_CHECK(s.ok(), "writer batch fails on the recovered disk: ", s.ToString());
    absl::StatusOr<std::vector<uint64_t>> a = w->OnBatchDone(b->id, s);
    AM_CHECK(a.ok(), a.status().ToString());
    acked.insert(acked.end(), a->begin(), a->end());
  }
  AM_CHECK(acked.size() == 1 && acked[0] == 1, "the appended request was not acknowledged");
  absl::StatusOr<ReplayResult> third =
      wal::Recover(&disk, CorruptionPolicy::kRefuseStart, snapshot);
  AM_CHECK(third.ok(),
           "WAL unreadable after appending to a recovered one: ", third.status().ToString());
  AM_CHECK(third->hard_state == hs, "appended hard state lost");
  AM_CHECK(third->snapshot == second->snapshot, "snapshot changed after append");
  AM_CHECK_EQ(third->entries.size(), second->entries.size() + 1);
  for (size_t i = 0; i < second->entries.size(); ++i) {
    AM_CHECK(third->entries[i] == second->entries[i], "old entry ", i, " changed after append");
  }
  AM_CHECK(third->entries.back() == next, "appended entry lost");
}

}  // namespace
}  // namespace amaters::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  amaters::fuzz::RunInput(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
