#include "engine/wal/disk.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace amaters::wal {

absl::Status ValidateFileName(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("invalid WAL file name \"", name, "\""));
  }
  return absl::OkStatus();
}

absl::Status ExecuteBatch(const DiskBatch& batch, Disk* disk) {
  for (const DiskOp& op : batch.ops) {
    absl::Status s;
    switch (op.kind) {
      case DiskOp::Kind::kCreate:
        s = disk->Create(op.file);
        break;
      case DiskOp::Kind::kWrite:
        s = disk->Write(op.file, op.offset, op.data);
        break;
      case DiskOp::Kind::kSync:
        s = disk->Sync(op.file);
        break;
      case DiskOp::Kind::kSyncDir:
        s = disk->SyncDir();
        break;
      case DiskOp::Kind::kTruncate:
        s = disk->Truncate(op.file, op.offset);
        break;
      case DiskOp::Kind::kDelete:
        s = disk->Delete(op.file);
        break;
    }
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat(DescribeDiskOp(op), ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ReplayResult> Recover(Disk* disk, CorruptionPolicy policy,
                                     raft::Index snapshot_index) {
  absl::StatusOr<std::vector<std::string>> names = disk->List();
  if (!names.ok()) return names.status();
  std::vector<SegmentFile> segments;
  std::vector<std::string> ignored;
  for (const std::string& name : *names) {
    if (!absl::EndsWith(name, ".wal")) {
      ignored.push_back(name);
      continue;
    }
    absl::StatusOr<std::string> bytes = disk->Read(name);
    if (!bytes.ok()) return bytes.status();
    segments.push_back({name, *std::move(bytes)});
  }
  absl::StatusOr<ReplayResult> r = Replay(segments, policy, snapshot_index);
  if (!r.ok()) return r.status();
  for (const std::string& name : ignored) {
    r->notes.push_back(absl::StrCat("ignoring ", name, " in the WAL directory (not a segment)"));
  }
  if (!r->truncate_file.empty()) {
    if (absl::Status s = disk->Truncate(r->truncate_file, r->truncate_to_bytes); !s.ok()) {
      return s;
    }
    if (absl::Status s = disk->Sync(r->truncate_file); !s.ok()) return s;
  }
  // Newest first, each made durable before the next, so that a crash here never leaves a gap
  // in the segment sequence.
  for (auto it = r->delete_files.rbegin(); it != r->delete_files.rend(); ++it) {
    if (absl::Status s = disk->Delete(*it); !s.ok()) return s;
    if (absl::Status s = disk->SyncDir(); !s.ok()) return s;
  }
  return r;
}

}  // namespace amaters::wal
