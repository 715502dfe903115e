// node::StartFromDisk — the one start-up path of a node from its durable state: recover the
// WAL (wal::Recover), bring the state machine up to the WAL's newest snapshot if it is behind
// it (a crash between keeping a received snapshot and installing it), create the node
// (Node::Create, which replays the entries after the state machine's applied index) and hand it
// a snapshot copy staged before the restart. The server (server/runtime), the simulator's starts
// and restarts, the benchmarks and the recovery tool all start nodes through it.
#ifndef AMATERS_ENGINE_NODE_STARTUP_H_
#define AMATERS_ENGINE_NODE_STARTUP_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/node/node.h"
#include "engine/node/snapshot_transfer.h"
#include "engine/raft/types.h"
#include "engine/wal/disk.h"

namespace amaters::node {

// The driver's durable state besides the WAL: its state machine and its snapshot store.
class DurableState {
 public:
  virtual ~DurableState() = default;
  // The state machine's durable applied index.
  virtual raft::Index applied_index() const = 0;
  // Replaces the state machine's state with the kept snapshot `meta` (the WAL's newest, above
  // applied_index()). An error (the snapshot is not kept, or cannot be read) stops the start.
  virtual absl::Status RestoreSnapshot(const raft::SnapshotMeta& meta) = 0;
  // A partial copy of a leader's snapshot staged before the restart, if any.
  virtual std::optional<StagedSnapshot> Staged() const { return std::nullopt; }
};

// A state machine that has applied nothing and keeps no snapshot (a node rebuilt from its
// log alone: benchmarks, fuzz targets).
class EmptyDurableState : public DurableState {
 public:
  raft::Index applied_index() const override { return 0; }
  absl::Status RestoreSnapshot(const raft::SnapshotMeta& meta) override;
};

struct Started {
  std::unique_ptr<Node> node;
  std::vector<std::string> notes;  // wal::ReplayResult::notes, for the log
  size_t segments = 0;             // WAL segments recovered
  size_t entries = 0;              // entries the WAL held past its newest snapshot
  raft::Index applied = 0;         // the state machine's applied index the node started from
  std::optional<StagedSnapshot> resumed;  // the staged copy handed to the node, if any
};

// Errors: the WAL's, prefixed with `wal_label` and ": " (kDataLoss for corruption under
// kRefuseStart, naming file and offset), the state's RestoreSnapshot, and Node::Create's.
absl::StatusOr<Started> StartFromDisk(const NodeConfig& config, wal::Disk* disk,
                                      wal::CorruptionPolicy policy, absl::string_view wal_label,
                                      DurableState& state);

}  // namespace amaters::node

#endif  // AMATERS_ENGINE_NODE_STARTUP_H_
