#include "engine/node/startup.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::node {

absl::Status EmptyDurableState::RestoreSnapshot(const raft::SnapshotMeta& meta) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the WAL's newest snapshot is at index ", meta.index, " but this state keeps none"));
}

absl::StatusOr<Started> StartFromDisk(const NodeConfig& config, wal::Disk* disk,
                                      wal::CorruptionPolicy policy, absl::string_view wal_label,
                                      DurableState& state) {
  AM_CHECK(disk != nullptr);
  absl::StatusOr<wal::ReplayResult> recovered = wal::Recover(disk, policy);
  if (!recovered.ok()) {
    return absl::Status(recovered.status().code(),
                        absl::StrCat(wal_label, ": ", recovered.status().message()));
  }
  if (recovered->snapshot.index > state.applied_index()) {
    if (absl::Status s = state.RestoreSnapshot(recovered->snapshot); !s.ok()) return s;
    AM_CHECK_GE(state.applied_index(), recovered->snapshot.index,
                "RestoreSnapshot left the state machine behind the WAL's snapshot");
  }
  Started out;
  out.applied = state.applied_index();
  out.notes = std::move(recovered->notes);
  out.segments = recovered->segments.size();
  out.entries = recovered->entries.size();
  absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(config, *recovered, out.applied);
  if (!node.ok()) return node.status();
  out.node = *std::move(node);
  out.resumed = state.Staged();
  if (out.resumed) out.node->ResumeSnapshotReceive(*out.resumed);
  AM_CHECK_EQ(out.node->applied(), out.applied);
  return out;
}

}  // namespace amaters::node
