#include "engine/wal/writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/check.h"
#include "engine/wal/format.h"

namespace amaters::wal {

const char* SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kAlways:
      return "always";
    case SyncMode::kInterval:
      return "interval";
    case SyncMode::kNone:
      return "none";
  }
  return "unknown";
}

absl::StatusOr<SyncMode> ParseSyncMode(const std::string& name) {
  if (name == "always") return SyncMode::kAlways;
  if (name == "interval") return SyncMode::kInterval;
  if (name == "none") return SyncMode::kNone;
  return absl::InvalidArgumentError(absl::StrCat(
      "sync_mode \"", name, "\" is not one of \"always\", \"interval\", \"none\""));
}

absl::Status WriterOptions::Validate() const {
  // The configuration (segment_size_mb) has a 1 MiB minimum; tests use small segments.
  if (segment_size_bytes < 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "segment_size_bytes ", segment_size_bytes, " is below the minimum of 4096"));
  }
  if (sync_mode == SyncMode::kInterval && sync_interval_ms == 0) {
    return absl::InvalidArgumentError("sync_interval_ms must be > 0 with sync_mode interval");
  }
  if (max_batch_bytes == 0) return absl::InvalidArgumentError("max_batch_bytes must be > 0");
  return absl::OkStatus();
}

std::string DescribeDiskOp(const DiskOp& op) {
  switch (op.kind) {
    case DiskOp::Kind::kCreate:
      return absl::StrCat("create ", op.file);
    case DiskOp::Kind::kWrite:
      return absl::StrCat("write ", op.file, " @", op.offset, " +", op.data.size());
    case DiskOp::Kind::kSync:
      return absl::StrCat("fdatasync ", op.file);
    case DiskOp::Kind::kSyncDir:
      return "fsync dir";
    case DiskOp::Kind::kTruncate:
      return absl::StrCat("truncate ", op.file, " to ", op.offset);
    case DiskOp::Kind::kDelete:
      return absl::StrCat("delete ", op.file);
  }
  return "unknown";
}

std::string Writer::SegmentName(uint64_t seq) { return absl::StrFormat("%016x.wal", seq); }

uint64_t Writer::RecordBytes(const PendingRecord& r) {
  switch (r.type) {
    case RecordType::kEntry:
      return kRecordHeaderBytes + kEntryPayloadOverheadBytes + r.entry.data.size();
    case RecordType::kHardState:
      return kHardStateRecordBytes;
    case RecordType::kSnapshot:
      return SnapshotRecordBytes(r.snapshot);
  }
  return 0;
}

absl::StatusOr<Writer> Writer::Open(const WriterOptions& options,
                                    const ReplayResult& recovered) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  Writer w(options);
  w.segments_ = recovered.segments;
  for (size_t i = 0; i < w.segments_.size(); ++i) {
    const SegmentInfo& seg = w.segments_[i];
    if (seg.size_bytes < kSegmentHeaderBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat("segment ", seg.name, " has no complete header; run recovery first"));
    }
    if (i > 0 && seg.seq != w.segments_[i - 1].seq + 1) {
      return absl::FailedPreconditionError(absl::StrCat("segment ", seg.name,
                                                        " does not follow ",
                                                        w.segments_[i - 1].name));
    }
    w.size_bytes_ += seg.size_bytes;
  }
  w.last_record_seq_ = recovered.last_record_seq;
  w.batched_hard_state_ = recovered.hard_state;
  w.hard_state_ = recovered.hard_state;
  w.batched_snapshot_ = recovered.snapshot;
  // A crash can cut the newest segment back to its header, hard state copy included; then no
  // segment but older ones holds the hard state, and compaction could delete it. The same
  // holds for the newest snapshot record (a torn tail can take the original with it).
  w.force_roll_ = !w.segments_.empty() &&
                  ((!w.segments_.back().has_hard_state &&
                    recovered.hard_state != raft::HardState{}) ||
                   w.segments_.back().snapshot_index != recovered.snapshot.index);
  return w;
}

absl::Status Writer::Append(raft::PersistRequest request) {
  if (!error_.ok()) return error_;
  AM_CHECK(request.seq > last_persist_seq_);
  // Replay treats a longer payload as corruption, so it must never be acknowledged. Drivers
  // bound entries far below this (node::NodeConfig::max_entry_bytes); reaching it is a bug.
  for (const raft::Entry& e : request.entries) {
    if (e.data.size() + kEntryPayloadOverheadBytes > kMaxRecordPayloadBytes) {
      error_ = absl::InvalidArgumentError(absl::StrCat(
          "entry ", e.index, " of ", e.data.size(), " bytes exceeds the WAL record limit of ",
          kMaxRecordPayloadBytes, " bytes"));
      return error_;
    }
  }
  last_persist_seq_ = request.seq;
  if (request.snapshot) {
    // Before the entries: an installed snapshot replaces the log they continue.
    PendingRecord r{++appended_ordinal_, RecordType::kSnapshot, {}, {}, true,
                    *request.snapshot, request.snapshot_replaces_log};
    pending_bytes_ += RecordBytes(r);
    pending_.push_back(std::move(r));
  }
  for (raft::Entry& e : request.entries) {
    PendingRecord r{++appended_ordinal_, RecordType::kEntry, std::move(e), {}, true, {}, false};
    pending_bytes_ += RecordBytes(r);
    pending_.push_back(std::move(r));
  }
  if (request.hard_state) {
    const bool must_sync =
        request.hard_state->term != hard_state_.term || request.hard_state->vote != hard_state_.vote;
    hard_state_ = *request.hard_state;
    PendingRecord r{++appended_ordinal_, RecordType::kHardState, {}, *request.hard_state,
                    must_sync, {}, false};
    pending_bytes_ += RecordBytes(r);
    pending_.push_back(std::move(r));
  }
  acks_.push_back({request.seq, appended_ordinal_});
  return absl::OkStatus();
}

void Writer::RollSegment(DiskBatch* batch) {
  if (!segments_.empty()) {
    // Everything in the old segment becomes durable before the new file exists, so a torn
    // write can only be found in the newest segment (replay relies on it).
    batch->ops.push_back({DiskOp::Kind::kSync, segments_.back().name, 0, ""});
    ++syncs_;
  }
  uint64_t seq = segments_.empty() ? 0 : segments_.back().seq + 1;
  SegmentInfo seg{SegmentName(seq), seq, kSegmentHeaderBytes, 0};
  // The header — and a copy of the current hard state, so that deleting older segments never
  // deletes the last copy of term, vote and commit — are written and made durable, with the
  // directory entry, before any record goes in. A crash can therefore tear a new segment only
  // within these first bytes, and replay treats a newest segment holding no more than a header
  // and a hard state record as an interrupted creation.
  // The newest snapshot record is copied the same way (as "taken locally": the copy must not
  // drop the entries written since), so compaction never deletes the last one.
  std::string head = EncodeSegmentHeader({kFormatVersion, seq});
  if (batched_hard_state_ != raft::HardState{}) {
    const size_t before = head.size();
    AppendHardStateRecord(++last_record_seq_, batched_hard_state_, &head);
    seg.has_hard_state = true;
    batch->record_bytes += head.size() - before;
    ++records_written_;
  }
  if (batched_snapshot_.index > 0) {
    const size_t before = head.size();
    AppendSnapshotRecord(++last_record_seq_, batched_snapshot_, /*replaces_log=*/false, &head);
    seg.snapshot_index = batched_snapshot_.index;
    batch->record_bytes += head.size() - before;
    ++records_written_;
  }
  newest_creation_bytes_ = head.size();
  seg.size_bytes = head.size();
  batch->ops.push_back({DiskOp::Kind::kCreate, seg.name, 0, ""});
  batch->ops.push_back({DiskOp::Kind::kWrite, seg.name, 0, std::move(head)});
  batch->ops.push_back({DiskOp::Kind::kSync, seg.name, 0, ""});
  batch->ops.push_back({DiskOp::Kind::kSyncDir, "", 0, ""});
  syncs_ += 2;
  size_bytes_ += seg.size_bytes;
  segments_.push_back(seg);
  force_roll_ = false;
}

std::optional<DiskBatch> Writer::NextBatch(uint64_t now_ms) {
  if (!error_.ok() || in_flight_) return std::nullopt;
  // Nothing to write, sync, delete or acknowledge (the common case: drivers ask after every
  // event). Equivalent to running the code below, which would find no operation and no ack.
  if (pending_.empty() && acks_.empty() && !(compact_to_ > 0 && segments_.size() > 1) &&
      !SyncOwed()) {
    return std::nullopt;
  }
  DiskBatch batch;

  // Records, up to max_batch_bytes (at least one), appended to the newest segment; writes to
  // one segment are coalesced into one operation.
  uint64_t last_ordinal = written_ordinal_;
  bool snapshot_in_batch = false;
  std::string run;  // bytes for the current segment not yet turned into a write op
  uint64_t run_offset = 0;
  auto flush_run = [&]() {
    if (run.empty()) return;
    batch.ops.push_back({DiskOp::Kind::kWrite, segments_.back().name, run_offset, std::move(run)});
    run.clear();
  };
  // A newest segment without a hard state record (its copy was lost to a crash) is closed:
  // the next records go to a new segment, which starts with a durable copy.
  if (force_roll_ && !pending_.empty()) RollSegment(&batch);
  while (!pending_.empty() &&
         (batch.record_bytes == 0 || batch.record_bytes + RecordBytes(pending_.front()) <=
                                         options_.max_batch_bytes)) {
    PendingRecord r = std::move(pending_.front());
    pending_.pop_front();
    pending_bytes_ -= RecordBytes(r);
    const uint64_t size = RecordBytes(r);
    // A segment holding only its header and hard state copy takes the record even if it is
    // larger than a segment, so an oversized record does not roll segment after segment.
    bool has_records = !segments_.empty() && segments_.back().size_bytes > newest_creation_bytes_;
    if (segments_.empty() ||
        (has_records && segments_.back().size_bytes + size > options_.segment_size_bytes)) {
      flush_run();
      RollSegment(&batch);
    }
    if (run.empty()) run_offset = segments_.back().size_bytes;
    const uint64_t before = run.size();
    if (r.type == RecordType::kEntry) {
      AppendEntryRecord(++last_record_seq_, r.entry, &run);
      segments_.back().max_entry_index =
          std::max(segments_.back().max_entry_index, r.entry.index);
    } else if (r.type == RecordType::kSnapshot) {
      AppendSnapshotRecord(++last_record_seq_, r.snapshot, r.snapshot_replaces_log, &run);
      batched_snapshot_ = r.snapshot;
      segments_.back().snapshot_index = r.snapshot.index;
      snapshot_in_batch = true;
    } else {
      AppendHardStateRecord(++last_record_seq_, r.hard_state, &run);
      batched_hard_state_ = r.hard_state;
      segments_.back().has_hard_state = true;
    }
    AM_CHECK_EQ(run.size() - before, size);
    if (r.must_sync) must_sync_ordinal_ = r.ordinal;
    segments_.back().size_bytes += size;
    size_bytes_ += size;
    batch.record_bytes += size;
    ++records_written_;
    last_ordinal = r.ordinal;
  }
  flush_run();

  bool sync = false;
  if (batch.record_bytes > 0 || last_ordinal > synced_ordinal_) {
    switch (options_.sync_mode) {
      case SyncMode::kAlways:
        sync = must_sync_ordinal_ > synced_ordinal_;
        break;
      case SyncMode::kInterval:
        sync = now_ms >= last_sync_ms_ + options_.sync_interval_ms;
        break;
      case SyncMode::kNone:
        break;
    }
  }
  if (!sync && options_.sync_mode == SyncMode::kInterval && written_ordinal_ > synced_ordinal_ &&
      now_ms >= last_sync_ms_ + options_.sync_interval_ms) {
    sync = true;  // the interval timer fired for records written by earlier batches
  }
  // In every mode a snapshot record is durable before it is acknowledged: the node then
  // compacts and deletes older snapshots, which a lost record would still need.
  if (snapshot_in_batch) sync = true;
  if (sync && !segments_.empty()) {
    batch.ops.push_back({DiskOp::Kind::kSync, segments_.back().name, 0, ""});
    ++syncs_;
    last_sync_ms_ = now_ms;
  }

  // Compaction, after this batch's writes: delete the oldest segments wholly at or below the
  // snapshot index, one at a time with a directory fsync after each, so that a crash leaves a
  // contiguous run of segments (never a gap). The newest segment, which holds a durable hard
  // state copy or later hard state records, is never deleted.
  bool deleted_any = false;
  const bool deletes = compact_to_ > 0 && segments_.size() > 1 &&
                       segments_.front().max_entry_index <= compact_to_ && !force_roll_;
  if (deletes && !sync && written_ordinal_ + (batch.record_bytes > 0) > synced_ordinal_) {
    // In sync modes "interval" and "none" the snapshot record that allows the deletion may
    // be written but not durable: make it durable before any segment goes.
    batch.ops.push_back({DiskOp::Kind::kSync, segments_.back().name, 0, ""});
    ++syncs_;
    sync = true;
    last_sync_ms_ = now_ms;
  }
  while (compact_to_ > 0 && segments_.size() > 1 &&
         segments_.front().max_entry_index <= compact_to_ && !force_roll_) {
    batch.ops.push_back({DiskOp::Kind::kDelete, segments_.front().name, 0, ""});
    batch.ops.push_back({DiskOp::Kind::kSyncDir, "", 0, ""});
    ++syncs_;
    size_bytes_ -= segments_.front().size_bytes;
    segments_.erase(segments_.begin());
    ++segments_deleted_;
    deleted_any = true;
  }
  if (deleted_any) ++compaction_count_;

  // Acknowledgements that this batch (or an earlier one) completes.
  bool ack_ready = !acks_.empty() && acks_.front().last_ordinal <= last_ordinal;
  if (batch.ops.empty() && !ack_ready) return std::nullopt;
  batch.id = next_batch_id_++;
  batch.syncs = sync;
  bytes_written_ += batch.record_bytes;
  ++batches_;
  in_flight_ = InFlight{batch.id, last_ordinal, sync};
  return batch;
}

absl::StatusOr<std::vector<uint64_t>> Writer::OnBatchDone(uint64_t id,
                                                          const absl::Status& status) {
  if (!error_.ok()) return error_;
  AM_CHECK(in_flight_.has_value());
  AM_CHECK_EQ(in_flight_->id, id);
  InFlight done = *in_flight_;
  in_flight_.reset();
  if (!status.ok()) {
    error_ = absl::Status(status.code(),
                          absl::StrCat("WAL write failed; the WAL is stopped and the node must "
                                       "restart from disk: ",
                                       status.message()));
    return error_;
  }
  AM_CHECK_GE(done.last_ordinal, written_ordinal_);
  written_ordinal_ = done.last_ordinal;
  if (done.syncs) synced_ordinal_ = written_ordinal_;
  // kAlways acknowledges durable records only (every record that must be durable was synced
  // by the batch that wrote it; a commit-only hard state needs no sync); the other modes
  // acknowledge written ones.
  if (options_.sync_mode == SyncMode::kAlways) AM_CHECK_LE(must_sync_ordinal_, synced_ordinal_);
  const uint64_t ackable = written_ordinal_;
  std::vector<uint64_t> acked;
  while (!acks_.empty() && acks_.front().last_ordinal <= ackable) {
    acked.push_back(acks_.front().persist_seq);
    acks_.pop_front();
  }
  return acked;
}

bool Writer::SyncOwed() const {
  switch (options_.sync_mode) {
    case SyncMode::kAlways:
      return must_sync_ordinal_ > synced_ordinal_;
    case SyncMode::kInterval:
      return written_ordinal_ > synced_ordinal_;
    case SyncMode::kNone:
      return false;
  }
  return true;
}

std::optional<uint64_t> Writer::next_sync_due_ms() const {
  if (options_.sync_mode != SyncMode::kInterval || written_ordinal_ <= synced_ordinal_) {
    return std::nullopt;
  }
  return last_sync_ms_ + options_.sync_interval_ms;
}

void Writer::Compact(raft::Index snapshot_index) {
  compact_to_ = std::max(compact_to_, snapshot_index);
}

WriterStats Writer::stats() const {
  WriterStats s;
  s.size_bytes = size_bytes_;
  s.segments = segments_.size();
  s.compaction_count = compaction_count_;
  s.segments_deleted = segments_deleted_;
  s.records_written = records_written_;
  s.bytes_written = bytes_written_;
  s.batches = batches_;
  s.syncs = syncs_;
  s.pending_bytes = pending_bytes_;
  return s;
}

}  // namespace amaters::wal
