// SnapshotStore: the server's side of Raft snapshots (docs/snapshots.md), on the apply thread.
//
// A node's snapshots are RocksDB checkpoints in <data>/kv/snapshots/snap-<index as 16 hex>
// (RocksDbStateMachine::CreateSnapshot). To move one to another node it is exported once as a
// snapshot file (engine/kv/snapshot_file.h) to <data>/snap/snap-<index>.snap, whose size and
// CRC-32C the leader sends with every chunk; reads are served from that file. A follower stages
// the chunks it receives in <data>/snap/incoming-<index>.part (with the snapshot's metadata in
// incoming-<index>.meta, so a restarted follower resumes the copy); once the last one is written the
// whole file is checked against the leader's CRC-32C, fsynced, imported as the checkpoint
// snap-<index> and kept as snap-<index>.snap (so it can be sent on in turn). Nothing reaches
// the live state until Raft installs it (RocksDbStateMachine::RestoreSnapshot, crash-safe).
//
// Not thread-safe: the apply thread owns it, like the state machine.
#ifndef AMATERS_SERVER_STORAGE_SNAPSHOT_STORE_H_
#define AMATERS_SERVER_STORAGE_SNAPSHOT_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/node/snapshot_transfer.h"
#include "engine/raft/types.h"
#include "server/storage/rocksdb_state_machine.h"

namespace amaters::storage {

class SnapshotStore {
 public:
  struct Info {
    raft::Index index = 0;
    uint64_t checkpoint_bytes = 0;  // files of the checkpoint
    uint64_t file_bytes = 0;        // the exported snapshot file (0 if not exported)
  };

  // `dir` is <data>/snap (created if missing); `sm` the node's state machine.
  static absl::StatusOr<SnapshotStore> Open(const std::string& dir, RocksDbStateMachine* sm);

  static std::string Name(raft::Index index);
  // Checkpoints made for Maintenance.Snapshot are named <kExportPrefix><n>; Open removes them.
  static constexpr char kExportPrefix[] = "export-";

  // Snapshots the live state at its applied index (returned).
  absl::StatusOr<raft::Index> Take();
  // Bytes of snapshot `index` at `offset` (exports it on first use).
  absl::StatusOr<node::SnapshotBytes> Read(raft::Index index, uint64_t offset, uint64_t max_bytes);
  // Stages a received chunk. Offset 0 starts the copy anew and records the snapshot's
  // metadata and totals beside it (<data>/snap/incoming-<index>.meta), for Staged().
  absl::Status Stage(const node::SnapshotWrite& write);
  // The newest copy staged before a restart, if its metadata is intact (the receive resumes
  // from it: node::Node::ResumeSnapshotReceive); bytes = what the file holds.
  std::optional<node::StagedSnapshot> Staged() const;
  // Checks the staged copy of `index` whole and keeps it as snapshot `index`.
  absl::Status Keep(raft::Index index, uint64_t total_bytes, uint32_t total_crc);
  // Replaces the live state with snapshot `index`.
  absl::Status Install(raft::Index index);
  // Deletes every snapshot below `index` (checkpoints, exported files, staged copies).
  absl::Status DeleteBelow(raft::Index index);
  // The snapshots kept, oldest first.
  absl::StatusOr<std::vector<Info>> List() const;
  bool Has(raft::Index index) const;

 private:
  SnapshotStore(std::string dir, RocksDbStateMachine* sm) : dir_(std::move(dir)), sm_(sm) {}
  struct FileInfo {
    uint64_t size = 0;
    uint32_t crc = 0;
  };
  std::string FilePath(raft::Index index) const;
  std::string StagePath(raft::Index index) const;
  std::string StageMetaPath(raft::Index index) const;
  absl::StatusOr<FileInfo> Export(raft::Index index);

  std::string dir_;
  RocksDbStateMachine* sm_;
  std::map<raft::Index, FileInfo> files_;  // exported or kept snapshot files, by index
};

}  // namespace amaters::storage

#endif  // AMATERS_SERVER_STORAGE_SNAPSHOT_STORE_H_
