// WAL on-disk format: segment header and records (byte layout in docs/wal-format.md).
//
// All integers are little-endian. A segment file starts with a 32-byte header:
//   0  magic "AMTRSWAL" (8 bytes)
//   8  u32 format version (kFormatVersion)
//  12  u32 flags (0)
//  16  u64 segment sequence number (0, 1, 2, ... in file-name order)
//  24  u32 reserved (0)
//  28  u32 CRC-32C of bytes 0..27
// followed by records, each a 24-byte header and a payload:
//   0  u32 CRC-32C of the payload
//   4  u32 payload length
//   8  u64 record sequence number (consecutive across all segments, starting at 1)
//  16  u8  record type (RecordType)
//  17  u8[3] reserved (0)
//  20  u32 CRC-32C of header bytes 4..19
//  24  payload
// The header has its own checksum so that a damaged length field is reported as corruption
// instead of looking like a record cut short by a crash (a torn tail).
// Payloads: kEntry = u64 term, u64 index, u8 entry type, data (rest of payload);
//           kHardState = u64 term, u64 vote, u64 commit;
//           kSnapshot = u8 kind (0 taken locally, 1 replaces the log), u64 index, u64 term,
//                       u32 voter count n, n x u64 voter id, then the configuration tail:
//                       u32 outgoing voter count o, o x u64 id, u32 learner count l,
//                       l x u64 id, u8 auto_leave (0/1).
//           An entry's type may be kConfChange (2) from version 3 on.
// Version 2 added kSnapshot; version 3 the configuration tail and kConfChange entries.
// Segments of versions 1 and 2 are read unchanged (a snapshot record without the tail has no
// outgoing voters and no learners).
#ifndef AMATERS_ENGINE_WAL_FORMAT_H_
#define AMATERS_ENGINE_WAL_FORMAT_H_

#include <cstdint>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/raft/types.h"

namespace amaters::wal {

inline constexpr char kMagic[8] = {'A', 'M', 'T', 'R', 'S', 'W', 'A', 'L'};
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr size_t kSegmentHeaderBytes = 32;
inline constexpr size_t kRecordHeaderBytes = 24;
inline constexpr size_t kHardStateRecordBytes = kRecordHeaderBytes + 24;
// An entry payload is u64 term, u64 index, u8 type, then the data.
inline constexpr size_t kEntryPayloadOverheadBytes = 17;
// Upper bound on one record's payload; a larger length field is corruption, not a huge entry.
inline constexpr uint32_t kMaxRecordPayloadBytes = 64u << 20;

enum class RecordType : uint8_t {
  kEntry = 1,
  kHardState = 2,
  kSnapshot = 3,
};
// The most voters a snapshot record may list (a larger count is corruption).
inline constexpr uint32_t kMaxSnapshotVoters = 4096;

struct SegmentHeader {
  uint32_t version = kFormatVersion;
  uint64_t segment_seq = 0;
};

std::string EncodeSegmentHeader(const SegmentHeader& h);
// Errors: kDataLoss for wrong magic / checksum, kFailedPrecondition for a newer version.
absl::StatusOr<SegmentHeader> DecodeSegmentHeader(absl::string_view bytes);

struct Record {
  uint64_t seq = 0;
  RecordType type = RecordType::kEntry;
  raft::Entry entry;          // kEntry
  raft::HardState hard_state;  // kHardState
  raft::SnapshotMeta snapshot;  // kSnapshot
  bool snapshot_replaces_log = false;  // kSnapshot: received from a leader (kind 1)
};

std::string EncodeEntryRecord(uint64_t seq, const raft::Entry& e);
std::string EncodeHardStateRecord(uint64_t seq, const raft::HardState& hs);
void AppendEntryRecord(uint64_t seq, const raft::Entry& e, std::string* out);
void AppendHardStateRecord(uint64_t seq, const raft::HardState& hs, std::string* out);
void AppendSnapshotRecord(uint64_t seq, const raft::SnapshotMeta& snapshot, bool replaces_log,
                          std::string* out);
// Bytes of a snapshot record (header included) with the configuration of `snapshot`.
inline size_t SnapshotRecordBytes(const raft::SnapshotMeta& snapshot) {
  return kRecordHeaderBytes + 21 + 8 * snapshot.voters.size() + 4 +
         8 * snapshot.voters_outgoing.size() + 4 + 8 * snapshot.learners.size() + 1 +
         raft::MemberListBytes(snapshot.members);
}

// Outcome of decoding one record at the start of `bytes`.
struct DecodeResult {
  enum class Kind {
    kOk,         // `record` is valid and occupies `size` bytes
    kIncomplete, // fewer bytes than the header or the declared payload: a possibly torn tail
    kCorrupt,    // bad header checksum or an impossible header/payload; `error` says which
    kCorruptPayload,  // the header is valid but the payload checksum fails; `size` is the
                      // record's declared size, so the caller can see what follows it
  };
  Kind kind = Kind::kCorrupt;
  Record record;
  size_t size = 0;
  std::string error;
};
DecodeResult DecodeRecord(absl::string_view bytes);

// Whether `bytes` starts with a record header that passes its checksum and sanity checks
// (the payload is not examined). Replay uses it to tell a torn tail from damage in the middle.
bool IsValidRecordHeader(absl::string_view bytes);

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_FORMAT_H_
