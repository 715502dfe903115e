// The snapshot file: the whole applied key-value state as one byte stream (pure).
//
// Used for everything that moves a snapshot between processes: a leader streaming its snapshot
// to a follower (node::SnapshotSender), etcd's Maintenance.Snapshot (`etcdctl snapshot save`),
// and `amaters-server restore FILE` (docs/snapshots.md has the byte layout).
//
// All integers little-endian.
//   header  "AMTRSSNP", u32 version (3), u32 reserved (0), u64 applied index, i64 revision,
//           i64 compact revision
//   pairs   u32 key length, key, u32 value length, value, i64 create_revision,
//           i64 mod_revision, i64 version, i64 lease   (every version of the history,
//           tombstones included (version 0, no value, create_revision 0, lease 0), in strictly
//           increasing (key, mod_revision) order)
//   leases  "AMTRSLSE", u64 lease count, then per lease i64 id, i64 ttl, i64 remaining ttl
//           (strictly increasing ids)
//   trailer "AMTRSEND", u64 pair count, u32 CRC-32C of every byte before the trailer's CRC
// Older files are read too. Version 2 (written before leases): pairs without the lease field
// and no lease section. Version 1 (written before the store kept history): as version 2, but
// the header has no compact revision and the pairs are each key's latest version; it reads as a
// store compacted at its revision.
// The CRC covers header, pairs and the trailer's marker and count, so a truncated, extended or
// damaged file is refused: a snapshot is used whole or not at all.
#ifndef AMATERS_ENGINE_KV_SNAPSHOT_FILE_H_
#define AMATERS_ENGINE_KV_SNAPSHOT_FILE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/kv/state_machine.h"

namespace amaters::kv {

inline constexpr char kSnapshotFileMagic[8] = {'A', 'M', 'T', 'R', 'S', 'S', 'N', 'P'};
inline constexpr char kSnapshotFileEndMagic[8] = {'A', 'M', 'T', 'R', 'S', 'E', 'N', 'D'};
inline constexpr char kSnapshotFileLeaseMagic[8] = {'A', 'M', 'T', 'R', 'S', 'L', 'S', 'E'};
inline constexpr uint32_t kSnapshotFileVersion = 3;
// More leases than this in one file is corruption.
inline constexpr uint64_t kSnapshotMaxLeases = 100u << 20;
inline constexpr size_t kSnapshotFileHeaderBytes = 40;
inline constexpr size_t kSnapshotFileV1HeaderBytes = 32;
inline constexpr size_t kSnapshotFileTrailerBytes = 20;
// Keys and values above these sizes are corruption, not allocations to attempt.
inline constexpr uint32_t kSnapshotMaxKeyBytes = 64u << 10;
inline constexpr uint32_t kSnapshotMaxValueBytes = 64u << 20;

// Writes a snapshot file in pieces: the header on construction, then one piece per Add, the
// lease section (BeginLeases, then AddLease `count` times), then the trailer on Finish. Every
// piece goes to `sink` as it is produced.
class SnapshotFileWriter {
 public:
  using Sink = std::function<absl::Status(absl::string_view)>;
  SnapshotFileWriter(uint64_t applied_index, int64_t revision, int64_t compact_revision,
                     Sink sink);
  // Versions must come in strictly increasing (key, mod_revision) order.
  absl::Status Add(const KeyValue& kv);
  // AM_CHECK: called once, after the last Add; then exactly `count` AddLease calls with
  // strictly increasing ids before Finish.
  absl::Status BeginLeases(uint64_t count);
  absl::Status AddLease(const Lease& lease);
  absl::Status Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  absl::Status Emit(const std::string& piece);
  Sink sink_;
  absl::Status status_;
  uint32_t crc_ = 0;
  uint64_t bytes_ = 0;
  uint64_t count_ = 0;
  std::string last_key_;
  int64_t last_mod_ = 0;
  bool leases_begun_ = false;
  uint64_t leases_left_ = 0;
  int64_t last_lease_ = 0;
};

// Reads a snapshot file fed in pieces of any size. Versions are handed to `visit` as they decode;
// Finish verifies the trailer and the checksum. A caller must not use what it was handed until
// Finish returned OK (the CRC covers the whole file).
class SnapshotFileReader {
 public:
  using Visit = std::function<absl::Status(const KeyValue&)>;
  using VisitLease = std::function<absl::Status(const Lease&)>;
  SnapshotFileReader(Visit visit, VisitLease visit_lease)
      : visit_(std::move(visit)), visit_lease_(std::move(visit_lease)) {}
  absl::Status Feed(absl::string_view piece);
  absl::Status Finish();
  // Zero bytes after the trailer are accepted (and ignored): etcdctl's snapshot files are
  // padded to a multiple of 512 bytes (docs/snapshots.md).
  void AllowTrailingZeros() { trailing_zeros_ok_ = true; }
  // Valid after Finish: the snapshot file's own length (header, pairs, trailer).
  uint64_t file_bytes() const { return file_bytes_; }
  // Valid once the header was read.
  uint64_t applied_index() const { return applied_index_; }
  int64_t revision() const { return revision_; }
  int64_t compact_revision() const { return compact_revision_; }
  uint64_t count() const { return count_; }

 private:
  absl::Status Parse();
  bool TrailingZeros() const;
  absl::Status ParseHeader();
  // Decodes one pair at the front of buf_; false if more bytes are needed.
  absl::StatusOr<bool> ParsePair();
  // Decodes the lease section's count or one lease; false if more bytes are needed.
  absl::StatusOr<bool> ParseLease();

  Visit visit_;
  VisitLease visit_lease_;
  absl::Status status_;
  const char* at() const { return buf_.data() + pos_; }
  size_t avail() const { return buf_.size() - pos_; }

  std::string buf_;          // bytes fed; those before pos_ are decoded
  size_t pos_ = 0;
  uint32_t crc_ = 0;         // over bytes decoded and consumed
  bool header_done_ = false;
  bool ended_ = false;       // the end marker was read
  uint64_t applied_index_ = 0;
  int64_t revision_ = 0;
  int64_t compact_revision_ = 0;
  uint32_t version_ = 0;
  uint64_t count_ = 0;
  std::string last_key_;
  int64_t last_mod_ = 0;
  bool in_leases_ = false;      // the lease marker was read
  bool lease_count_read_ = false;
  uint64_t leases_left_ = 0;
  int64_t last_lease_ = 0;
  bool trailing_zeros_ok_ = false;
  uint64_t consumed_ = 0;  // bytes dropped from buf_ (decoded) before pos_
  uint64_t file_bytes_ = 0;
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_SNAPSHOT_FILE_H_
