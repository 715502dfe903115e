// Rebuilding the Raft log and hard state from WAL segments at start (pure: bytes in, plan out).
//
// Rules (docs/wal-format.md):
//  - Segments are read in name order; their header sequence numbers must be consecutive.
//  - Record sequence numbers must be consecutive across segments.
//  - An entry record at index i replaces every entry >= i (a leader overwrote an uncommitted
//    suffix); an index beyond last + 1 is corruption. The first entry may have any index:
//    the first segments may have been compacted (Writer::Compact), and then a snapshot
//    record must cover everything before it.
//  - A snapshot record covers every entry up to its index (they are dropped); one that
//    replaces the log (installed from a leader) drops every entry before it too.
//  - A torn tail — damage in the newest segment after which no valid record header follows
//    (an incomplete record, zero fill, garbage) — is the expected result of a crash during a
//    write: it is truncated and reported. Damage confined to the final record cannot be told
//    from a torn write and is treated as one.
//  - Anything else that fails to decode is corruption. Policy kRefuseStart (the default)
//    returns kDataLoss naming the file and offset and changes nothing; kTruncateToLastGood
//    truncates there, drops later segments, and reports what was dropped.
#ifndef AMATERS_ENGINE_WAL_REPLAY_H_
#define AMATERS_ENGINE_WAL_REPLAY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/raft/types.h"

namespace amaters::wal {

enum class CorruptionPolicy : uint8_t { kRefuseStart, kTruncateToLastGood };

struct SegmentFile {
  std::string name;   // file name, e.g. "0000000000000003.wal"
  std::string bytes;  // whole contents
};

// A segment that survives replay (after the truncation and deletions below), for the writer.
struct SegmentInfo {
  std::string name;
  uint64_t seq = 0;
  uint64_t size_bytes = 0;        // valid bytes, header included
  raft::Index max_entry_index = 0;  // largest entry index recorded in it (0 if none)
  bool has_hard_state = false;      // it holds at least one hard state record
  raft::Index snapshot_index = 0;   // index of the last snapshot record in it (0 if none)
};

struct ReplayResult {
  raft::HardState hard_state;
  // The newest snapshot record (index 0: none): the state machine's snapshot at that index
  // must be durable and is what a restarting node starts from.
  raft::SnapshotMeta snapshot;
  // Contiguous from max(snapshot.index, the caller's snapshot_index) + 1: records at or
  // below it are dropped.
  std::vector<raft::Entry> entries;
  std::vector<SegmentInfo> segments;  // in order
  uint64_t last_record_seq = 0;      // the next record written gets last_record_seq + 1

  // What the driver must do to the files before appending (in this order): truncate
  // `truncate_file` to `truncate_to_bytes` (if non-empty), then delete `delete_files`.
  std::string truncate_file;
  uint64_t truncate_to_bytes = 0;
  std::vector<std::string> delete_files;

  // Human-readable reports for the log: torn tail or corruption handled, with file and offset.
  std::vector<std::string> notes;
  bool torn_tail = false;
  bool corruption_truncated = false;
};

// `snapshot_index`: a snapshot index known from elsewhere (0 if the WAL's own snapshot records
// say it all); entries at or below it are dropped like those a snapshot record covers.
absl::StatusOr<ReplayResult> Replay(const std::vector<SegmentFile>& segments,
                                    CorruptionPolicy policy, raft::Index snapshot_index = 0);

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_REPLAY_H_
