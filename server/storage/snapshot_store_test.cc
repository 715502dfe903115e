#include "server/storage/snapshot_store.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/crc32c.h"
#include "gtest/gtest.h"

namespace amaters::storage {
namespace {

namespace fs = std::filesystem;

std::string NewTempDir(const std::string& tag) {
  static int counter = 0;
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", tag, "-", ::getpid(), "-",
                                 counter++);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  return dir;
}

// A node's storage: a RocksDB state machine and its snapshot store.
struct Node {
  explicit Node(const std::string& tag) : dir(NewTempDir(tag)) {
    auto opened = RocksDbStateMachine::Open(dir + "/kv");
    EXPECT_TRUE(opened.ok()) << opened.status();
    sm = *std::move(opened);
    auto s = SnapshotStore::Open(dir + "/snap", sm.get());
    EXPECT_TRUE(s.ok()) << s.status();
    store.emplace(*std::move(s));
  }
  void Put(const std::string& key, const std::string& value) {
    kv::Command c;
    c.op = kv::PutRequest{key, value, false};
    auto r = sm->Apply({kv::ApplyItem::Of(sm->applied_index() + 1, c)});
    ASSERT_TRUE(r.ok()) << r.status();
  }
  std::string Get(const std::string& key) {
    kv::RangeRequest rr;
    rr.key = key;
    auto r = sm->Range(rr);
    return r.ok() && !r->kvs.empty() ? r->kvs[0].value : "<none>";
  }
  std::string dir;
  std::unique_ptr<RocksDbStateMachine> sm;
  std::optional<SnapshotStore> store;
};

// Streams snapshot `index` of `from` to `to` in chunks from `offset`, as the transfer protocol
// does; stops (without keeping it) once `stop_at` bytes are staged.
absl::Status Transfer(Node& from, Node& to, raft::Index index, uint64_t chunk, bool corrupt = false,
                      uint64_t offset = 0, uint64_t stop_at = UINT64_MAX) {
  node::SnapshotBytes b;
  do {
    auto r = from.store->Read(index, offset, chunk);
    if (!r.ok()) return r.status();
    b = *std::move(r);
    raft::SnapshotMeta meta{index, 3, {1, 2, 3}};
    meta.learners = {4};
    meta.members = {{4, "n4", {"http://127.0.0.1:2380"}, {"http://127.0.0.1:2379"}}};
    node::SnapshotWrite w{meta, offset, b.data, b.total_bytes, b.total_crc};
    if (corrupt && offset == 0) w.data[w.data.size() / 2] ^= 1;
    if (absl::Status s = to.store->Stage(w); !s.ok()) return s;
    offset += w.data.size();
    if (offset >= stop_at) return absl::OkStatus();
  } while (offset < b.total_bytes);
  return to.store->Keep(index, b.total_bytes, b.total_crc);
}

TEST(SnapshotStore, ASnapshotMovesToAnotherNodeAndReplacesItsState) {
  Node leader("leader"), follower("follower");
  for (int i = 0; i < 500; ++i) leader.Put(absl::StrCat("key", i), std::string(300, 'a' + i % 26));
  auto index = leader.store->Take();
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(*index, 500u);
  leader.Put("later", "x");  // not in the snapshot
  follower.Put("stale", "y");
  ASSERT_TRUE(Transfer(leader, follower, *index, 4096).ok());
  EXPECT_EQ(follower.Get("key7"), "<none>") << "kept, not installed yet";
  ASSERT_TRUE(follower.store->Install(*index).ok());
  EXPECT_EQ(follower.sm->applied_index(), 500u);
  EXPECT_EQ(follower.Get("key7"), std::string(300, 'a' + 7));
  EXPECT_EQ(follower.Get("stale"), "<none>");
  EXPECT_EQ(follower.Get("later"), "<none>");
  // The follower can send it on: same bytes, same checksum.
  auto a = leader.store->Read(*index, 0, 1 << 20);
  auto b = follower.store->Read(*index, 0, 1 << 20);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->total_crc, b->total_crc);
  EXPECT_EQ(a->data, b->data);
}

TEST(SnapshotStore, ADamagedCopyIsRefusedAndNothingIsKept) {
  Node leader("leader"), follower("follower");
  for (int i = 0; i < 100; ++i) leader.Put(absl::StrCat("k", i), "v");
  auto index = leader.store->Take();
  ASSERT_TRUE(index.ok());
  absl::Status s = Transfer(leader, follower, *index, 1024, /*corrupt=*/true);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_FALSE(follower.store->Has(*index));
  EXPECT_EQ(follower.store->Install(*index).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Transfer(leader, follower, *index, 1024).ok()) << "a second, clean copy is kept";
  EXPECT_TRUE(follower.store->Has(*index));
}

TEST(SnapshotStore, AReceiveInterruptedByARestartResumesFromTheStagedCopy) {
  Node leader("leader"), follower("follower");
  for (int i = 0; i < 200; ++i) leader.Put(absl::StrCat("k", i), std::string(100, 'x'));
  auto index = leader.store->Take();
  ASSERT_TRUE(index.ok());
  EXPECT_FALSE(follower.store->Staged().has_value()) << "nothing staged yet";
  ASSERT_TRUE(Transfer(leader, follower, *index, 1024, false, 0, /*stop_at=*/3000).ok());
  // The follower restarts: a new store over the same directory finds the copy.
  auto reopened = SnapshotStore::Open(follower.dir + "/snap", follower.sm.get());
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  follower.store.emplace(*std::move(reopened));
  std::optional<node::StagedSnapshot> staged = follower.store->Staged();
  ASSERT_TRUE(staged.has_value());
  raft::SnapshotMeta meta{*index, 3, {1, 2, 3}};
  meta.learners = {4};
  meta.members = {{4, "n4", {"http://127.0.0.1:2380"}, {"http://127.0.0.1:2379"}}};
  EXPECT_EQ(staged->meta, meta);
  EXPECT_EQ(staged->bytes, 3072u);
  auto whole = leader.store->Read(*index, 0, 1 << 20);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(staged->total_bytes, whole->total_bytes);
  EXPECT_EQ(staged->total_crc, whole->total_crc);
  ASSERT_TRUE(Transfer(leader, follower, *index, 1024, false, staged->bytes).ok());
  EXPECT_TRUE(follower.store->Has(*index));
  EXPECT_FALSE(follower.store->Staged().has_value()) << "kept: nothing left to resume";
}

TEST(SnapshotStore, AStagedCopyWithoutIntactMetadataIsNotResumed) {
  Node leader("leader"), follower("follower");
  for (int i = 0; i < 50; ++i) leader.Put(absl::StrCat("k", i), "v");
  auto index = leader.store->Take();
  ASSERT_TRUE(index.ok());
  ASSERT_TRUE(Transfer(leader, follower, *index, 256, false, 0, /*stop_at=*/256).ok());
  ASSERT_TRUE(follower.store->Staged().has_value());
  const std::string meta = absl::StrCat(follower.dir, "/snap/", "incoming-",
                                        absl::StrFormat("%016x", *index), ".meta");
  ASSERT_TRUE(fs::exists(meta));
  fs::resize_file(meta, fs::file_size(meta) - 1);  // torn: no final newline
  EXPECT_FALSE(follower.store->Staged().has_value());
  fs::remove(meta);
  EXPECT_FALSE(follower.store->Staged().has_value());
}

TEST(SnapshotStore, RetentionDeletesOlderSnapshotsAndTheirFiles) {
  Node n("retention");
  std::vector<raft::Index> taken;
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 10; ++i) n.Put(absl::StrCat("k", i), absl::StrCat(round));
    auto index = n.store->Take();
    ASSERT_TRUE(index.ok());
    taken.push_back(*index);
    ASSERT_TRUE(n.store->Read(*index, 0, 100).ok());  // exported
  }
  ASSERT_TRUE(n.store->DeleteBelow(taken[2]).ok());
  auto kept = n.store->List();
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[0].index, taken[2]);
  EXPECT_GT((*kept)[0].checkpoint_bytes, 0u);
  EXPECT_GT((*kept)[0].file_bytes, 0u);
  EXPECT_FALSE(fs::exists(n.dir + "/snap/" + SnapshotStore::Name(taken[0]) + ".snap"));
  EXPECT_EQ(n.store->Read(taken[0], 0, 10).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace amaters::storage
