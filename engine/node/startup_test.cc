#include "engine/node/startup.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/wal/disk.h"
#include "engine/wal/sim_disk.h"
#include "gtest/gtest.h"

namespace amaters::node {
namespace {

// A state machine that counts what it applied, keeps the snapshots it was asked for, and can
// refuse to restore one.
class FakeState : public DurableState {
 public:
  raft::Index applied_index() const override { return applied; }
  absl::Status RestoreSnapshot(const raft::SnapshotMeta& meta) override {
    restored.push_back(meta.index);
    if (!restore_error.ok()) return restore_error;
    applied = meta.index;
    return absl::OkStatus();
  }
  std::optional<StagedSnapshot> Staged() const override { return staged; }

  raft::Index applied = 0;
  std::vector<raft::Index> restored;
  absl::Status restore_error;
  std::optional<StagedSnapshot> staged;
};

NodeConfig SingleNode() {
  NodeConfig c;
  c.raft.id = 1;
  c.raft.voters = {1};
  c.raft.rng_seed = 3;
  c.wal.segment_size_bytes = 4096;
  c.snapshot_threshold_entries = 10;
  c.snapshot_catchup_entries = 0;
  return c;
}

// Runs a single-node cluster on `disk` until it applied `puts` commands (snapshotting at the
// threshold into `state`); returns the node's snapshot index.
raft::Index Write(wal::SimDisk& disk, FakeState& state, int puts) {
  absl::StatusOr<Started> s =
      StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", state);
  EXPECT_TRUE(s.ok()) << s.status();
  Node& node = *s->node;
  node.Campaign();
  for (int i = 0; i <= puts; ++i) {
    if (i < puts) node.Propose(static_cast<RequestId>(i + 1), "put");
    while (node.HasEffects()) {
      Effects e = node.TakeEffects();
      if (!e.apply.empty()) {
        state.applied = e.apply.back().entry.index;
        node.OnApplied(state.applied);
      }
      if (e.take_snapshot) node.OnSnapshotTaken(state.applied, absl::OkStatus());
      if (e.disk) node.OnDiskDone(e.disk->id, wal::ExecuteBatch(*e.disk, &disk));
    }
  }
  return node.raft().snapshot().index;
}

TEST(StartFromDisk, AnEmptyDiskStartsANodeThatHasAppliedNothing) {
  wal::SimDisk disk;
  EmptyDurableState empty;
  absl::StatusOr<Started> s =
      StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", empty);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_NE(s->node, nullptr);
  EXPECT_EQ(s->applied, 0u);
  EXPECT_EQ(s->entries, 0u);
  EXPECT_FALSE(s->resumed.has_value());
}

TEST(StartFromDisk, AStateBehindTheWalsSnapshotIsRestoredFromItFirst) {
  wal::SimDisk disk;
  FakeState before;
  const raft::Index snapshot = Write(disk, before, 25);
  ASSERT_GE(snapshot, 10u);

  FakeState behind;  // a state store that applied nothing (lost, or never kept)
  absl::StatusOr<Started> s =
      StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", behind);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(behind.restored, std::vector<raft::Index>{snapshot});
  EXPECT_EQ(s->applied, snapshot);
  EXPECT_EQ(s->node->applied(), snapshot);

  FakeState caught_up;  // already at the snapshot: nothing to restore
  caught_up.applied = snapshot;
  s = StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", caught_up);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(caught_up.restored.empty());
}

TEST(StartFromDisk, ARestoreThatFailsStopsTheStart) {
  wal::SimDisk disk;
  FakeState before;
  ASSERT_GT(Write(disk, before, 25), 0u);
  FakeState broken;
  broken.restore_error = absl::FailedPreconditionError("snapshot missing");
  absl::StatusOr<Started> s =
      StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", broken);
  EXPECT_EQ(s.status(), broken.restore_error);
  EmptyDurableState empty;  // keeps no snapshot at all
  s = StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", empty);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StartFromDisk, AStagedCopyIsHandedBackToTheNode) {
  wal::SimDisk disk;
  FakeState state;
  StagedSnapshot staged;
  staged.meta.index = 500;
  staged.meta.term = 2;
  staged.meta.voters = {1, 2, 3};
  staged.total_bytes = 4096;
  staged.bytes = 1024;
  state.staged = staged;
  absl::StatusOr<Started> s =
      StartFromDisk(SingleNode(), &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", state);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->resumed.has_value());
  EXPECT_EQ(s->resumed->meta.index, 500u);
  std::optional<std::pair<raft::Index, uint64_t>> progress = s->node->snapshot_receive_progress();
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->first, 500u);
  EXPECT_EQ(progress->second, 1024u);
}

// NodeConfig::cut_disk_batch_on_take: proposals handed in between two TakeEffects calls share
// one WAL batch and one fdatasync (the server's group commit); without it the first proposal
// cuts a batch of its own.
TEST(CutDiskBatchOnTake, ProposalsBetweenTwoTakesShareOneSync) {
  for (bool on_take : {false, true}) {
    wal::SimDisk disk;
    NodeConfig c = SingleNode();
    c.cut_disk_batch_on_take = on_take;
    EmptyDurableState empty;
    absl::StatusOr<Started> s =
        StartFromDisk(c, &disk, wal::CorruptionPolicy::kRefuseStart, "WAL", empty);
    ASSERT_TRUE(s.ok()) << s.status();
    Node& node = *s->node;
    int syncs = 0;
    size_t applied = 0;
    auto drain = [&] {
      for (Effects e = node.TakeEffects(); !e.Empty(); e = node.TakeEffects()) {
        for (const ApplyItem& item : e.apply) applied += item.request.has_value();
        if (!e.apply.empty()) node.OnApplied(e.apply.back().entry.index);
        if (e.disk) {
          syncs += e.disk->syncs;
          node.OnDiskDone(e.disk->id, wal::ExecuteBatch(*e.disk, &disk));
        }
      }
    };
    node.Campaign();
    drain();
    ASSERT_EQ(node.raft().role(), raft::Role::kLeader);
    syncs = 0;
    node.Propose(1, "a");
    node.Propose(2, "b");
    node.Propose(3, "c");
    drain();
    EXPECT_EQ(applied, 3u);
    EXPECT_EQ(syncs, on_take ? 1 : 2) << "on_take=" << on_take;
  }
}

}  // namespace
}  // namespace amaters::node
