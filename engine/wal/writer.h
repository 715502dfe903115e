// The WAL writer as a pure state machine: it decides what to write, fsync, create and delete;
// a Disk (engine/wal/disk.h) executes its decisions and reports back.
//
// Life cycle (docs/wal-format.md, "Writer"):
//   1. Recover (disk.h) replays the segments and repairs a torn tail; Writer::Open takes the
//      replay result.
//   2. Append(persist request) for every raft::PersistRequest, in seq order. Records are
//      buffered; nothing is written yet.
//   3. NextBatch(now_ms) returns the next DiskBatch when no batch is in flight. Every record
//      appended since the previous batch goes into it (group commit: one fdatasync covers them
//      all), up to max_batch_bytes.
//   4. The driver executes the batch and calls OnBatchDone(id, status); the result lists the
//      persist seqs that are now acknowledged (raft::Raft::OnPersisted), in order.
//
// Sync modes (the `[storage.wal] sync_mode` setting):
//   kAlways   — a batch that holds entries, or a hard state whose term or vote changed, ends
//               with fdatasync; a request is acknowledged only once its records are on stable
//               storage. A hard state that changes only the commit index is written but not
//               synced on its own (as etcd's MustSync): the commit index need not survive a
//               crash (a restarted node learns it again from the leader), and the next sync
//               covers it. The default, and the only mode in which a replica that loses power
//               keeps the promises it made to the leader.
//   kInterval — acknowledged after write(2); fdatasync at most every sync_interval_ms. A power
//               loss can lose the last interval of acknowledged entries.
//   kNone     — acknowledged after write(2); never fdatasync except on segment roll-over.
//               Survives a process crash (the page cache keeps the data), not a power loss.
//
// Segments: a new segment is started when the next record would push the current one past
// segment_size_bytes (one record never spans segments). Before the new file is created the old
// one is fdatasync'ed; the new one's header and copies of the current hard state and of the
// newest snapshot record are fdatasync'ed, and the directory fsync'ed, before any record goes
// in. So a torn write can only be in the newest segment, and deleting older segments never
// loses the hard state or the snapshot record. (A newest segment that lost a copy in a crash
// is closed at the next append.)
//
// Snapshots: a persist request's snapshot record is written before its entries. Compact then
// deletes the oldest segments whose entries the snapshot covers (the node keeps a margin).
//
// Errors: a failed batch is not retried (after a failed fsync the kernel may have dropped the
// dirty pages; retrying would report data durable that is not). The writer stops accepting
// work and every later call reports the first error: the node must stop and recover from disk.
#ifndef AMATERS_ENGINE_WAL_WRITER_H_
#define AMATERS_ENGINE_WAL_WRITER_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/raft/raft.h"
#include "engine/raft/types.h"
#include "engine/wal/format.h"
#include "engine/wal/replay.h"

namespace amaters::wal {

enum class SyncMode : uint8_t { kAlways, kInterval, kNone };
const char* SyncModeName(SyncMode mode);
absl::StatusOr<SyncMode> ParseSyncMode(const std::string& name);

struct WriterOptions {
  uint64_t segment_size_bytes = 64ull << 20;  // `[storage.wal] segment_size_mb` * 2^20
  SyncMode sync_mode = SyncMode::kAlways;
  uint64_t sync_interval_ms = 100;           // kInterval only
  uint64_t max_batch_bytes = 16ull << 20;    // bytes of records per batch (at least one record)
  absl::Status Validate() const;
};

// One operation for the disk. Operations of a batch run in order; the batch fails at the
// first failing operation.
struct DiskOp {
  enum class Kind : uint8_t {
    kCreate,    // create `file` (must not exist), empty
    kWrite,     // write `data` at `offset` of `file` (offset == current size: an append)
    kSync,      // fdatasync `file`
    kSyncDir,   // fsync the WAL directory (makes creates and deletes durable)
    kTruncate,  // cut `file` to `offset` bytes
    kDelete,    // remove `file`
  };
  Kind kind = Kind::kWrite;
  std::string file;
  uint64_t offset = 0;
  std::string data;
};
std::string DescribeDiskOp(const DiskOp& op);

struct DiskBatch {
  uint64_t id = 0;
  std::vector<DiskOp> ops;
  uint64_t record_bytes = 0;  // bytes of records (segment headers excluded) in this batch
  bool syncs = false;         // whether the batch makes its records durable (fdatasync)
};

// Counters for metrics (amaters_wal_size_bytes, amaters_compaction_count, ...).
struct WriterStats {
  uint64_t size_bytes = 0;          // bytes of all live segments (as they will be on disk)
  uint64_t segments = 0;            // live segments
  uint64_t compaction_count = 0;    // compactions that deleted at least one segment
  uint64_t segments_deleted = 0;
  uint64_t records_written = 0;
  uint64_t bytes_written = 0;
  uint64_t batches = 0;
  uint64_t syncs = 0;               // fdatasync and directory fsync operations issued
  uint64_t pending_bytes = 0;       // appended, not yet handed to the disk
};

class Writer {
 public:
  // `recovered` is the result of Replay after its repairs were executed (disk.h Recover).
  static absl::StatusOr<Writer> Open(const WriterOptions& options,
                                     const ReplayResult& recovered);

  // Buffers the records of one persist request: its entries (an entry at index i makes replay
  // drop every entry >= i, so no physical truncation is needed) and then its hard state.
  // Requests must come in increasing seq order. An entry too large for one record
  // (kMaxRecordPayloadBytes) stops the writer with kInvalidArgument: replay would reject it.
  absl::Status Append(raft::PersistRequest request);

  // The next batch for the disk, if there is work and no batch is in flight. `now_ms` is a
  // monotonic clock reading (kInterval decides when to fdatasync from it).
  std::optional<DiskBatch> NextBatch(uint64_t now_ms);

  // The disk finished batch `id`. Returns the persist seqs now acknowledged, in order, or the
  // (sticky) error.
  absl::StatusOr<std::vector<uint64_t>> OnBatchDone(uint64_t id, const absl::Status& status);

  // Deletes, in a later batch, the oldest segments whose entries are all at or below
  // `snapshot_index`. The caller guarantees that a durable snapshot covers that index. The
  // newest segment is never deleted.
  void Compact(raft::Index snapshot_index);

  bool batch_in_flight() const { return in_flight_.has_value(); }
  // kInterval: when written-but-unsynced data becomes due for fdatasync (call NextBatch then);
  // nullopt when nothing is waiting or in the other modes.
  std::optional<uint64_t> next_sync_due_ms() const;
  const absl::Status& error() const { return error_; }
  WriterStats stats() const;
  const raft::HardState& hard_state() const { return hard_state_; }
  const std::vector<SegmentInfo>& segments() const { return segments_; }

 private:
  explicit Writer(const WriterOptions& options) : options_(options) {}

  // A record waiting for a batch. Record sequence numbers are assigned when the record is
  // placed in a batch, because a segment roll-over inserts a hard state copy.
  struct PendingRecord {
    uint64_t ordinal;  // position in append order (1, 2, ...)
    RecordType type;
    raft::Entry entry;
    raft::HardState hard_state;
    bool must_sync = true;  // false for a hard state that changes only the commit index
    raft::SnapshotMeta snapshot;  // kSnapshot
    bool snapshot_replaces_log = false;
  };
  struct PendingAck {
    uint64_t persist_seq;
    uint64_t last_ordinal;  // acknowledged once every record up to this one is done
  };
  struct InFlight {
    uint64_t id;
    uint64_t last_ordinal;
    bool syncs;
  };

  void RollSegment(DiskBatch* batch);
  static std::string SegmentName(uint64_t seq);
  static uint64_t RecordBytes(const PendingRecord& r);

  WriterOptions options_;
  absl::Status error_;
  std::vector<SegmentInfo> segments_;  // live segments, oldest first; back() is written to
  uint64_t last_record_seq_ = 0;       // last record seq placed in a batch
  raft::HardState batched_hard_state_; // newest hard state placed in a batch
  raft::HardState hard_state_;         // newest hard state appended
  raft::SnapshotMeta batched_snapshot_;  // newest snapshot record placed in a batch
  // Bytes the newest segment held when it was created (header and copies).
  uint64_t newest_creation_bytes_ = kSegmentHeaderBytes + kHardStateRecordBytes;
  uint64_t last_persist_seq_ = 0;
  std::deque<PendingRecord> pending_;
  uint64_t pending_bytes_ = 0;
  uint64_t appended_ordinal_ = 0;      // last ordinal appended
  uint64_t written_ordinal_ = 0;       // every record up to it was written
  uint64_t synced_ordinal_ = 0;        // every record up to it is durable
  uint64_t must_sync_ordinal_ = 0;     // the last record put in a batch that must be durable
  // Whether kAlways/kInterval owe an fdatasync for records already written (kNone never does).
  bool SyncOwed() const;
  std::deque<PendingAck> acks_;
  std::optional<InFlight> in_flight_;
  uint64_t next_batch_id_ = 1;
  bool force_roll_ = false;  // the newest segment lacks a hard state record (see Open)
  uint64_t last_sync_ms_ = 0;
  raft::Index compact_to_ = 0;
  uint64_t size_bytes_ = 0;
  uint64_t compaction_count_ = 0;
  uint64_t segments_deleted_ = 0;
  uint64_t records_written_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t batches_ = 0;
  uint64_t syncs_ = 0;
};

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_WRITER_H_
