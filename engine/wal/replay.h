// Rebuilding the Raft log and hard state from WAL segments at start (pure: bytes in, plan out).
//
// Rules (docs/wal-format.md):
//  - Segments are read in name order; their header sequence numbers must be consecutive.
//  - Record sequence numbers must be consecutive across segments.
//  - An entry record at index i replaces every entry >= i (a leader overwrote an uncommitted
//    suffix); an index beyond last + 1 is corruption.
//  - A torn tail — an incomplete record, a checksum failure in the very last record, or zero
//    fill after the last good record, all in the last segment — is the expected result of a
//    crash during a write: it is truncated and reported.
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

struct ReplayResult {
  raft::HardState hard_state;
  std::vector<raft::Entry> entries;  // contiguous from index 1
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

absl::StatusOr<ReplayResult> Replay(const std::vector<SegmentFile>& segments,
                                    CorruptionPolicy policy);

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_REPLAY_H_
