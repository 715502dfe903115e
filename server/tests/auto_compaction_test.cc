// End to end, three real amaters-server processes with
//   [storage] auto_compaction_mode = "periodic", auto_compaction_retention = "2s":
// the leader compacts the revision history on its own, through Raft, so an old revision
// becomes etcd's "compacted" on every member while the current state stays whole.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.pb.h"
#include "server/testing/cluster.h"

namespace amaters::server::testing {
namespace {

etcdserverpb::RangeRequest At(const std::string& key, int64_t revision) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_revision(revision);
  return r;
}

TEST(AutoCompaction, PeriodicModeCompactsTheHistoryOnEveryMember) {
  TestCluster cluster(3, "autocompact",
                      "[storage]\nauto_compaction_mode = \"periodic\"\n"
                      "auto_compaction_retention = \"2s\"\n");
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  absl::StatusOr<int> leader = cluster.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  EtcdClient& client = cluster.client(*leader);
  ASSERT_TRUE(client.Put("ac/k", "v1").ok());
  absl::StatusOr<etcdserverpb::RangeResponse> first = client.Range(At("ac/k", 0));
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t old = first->header().revision();
  ASSERT_TRUE(client.Put("ac/k", "v2").ok());
  // Readable at first: the history holds it.
  absl::StatusOr<etcdserverpb::RangeResponse> past = client.Range(At("ac/k", old));
  ASSERT_TRUE(past.ok()) << past.status();
  ASSERT_EQ(past->kvs_size(), 1);
  EXPECT_EQ(past->kvs(0).value(), "v1");

  // Writes keep the revision moving; within a few retentions every member has compacted past
  // `old` (the first compaction comes one retention after the leader's election).
  for (int i = 0; i < 3; ++i) {
    bool compacted = false;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    std::string last;
    while (!compacted && absl::Now() < deadline) {
      ASSERT_TRUE(client.Put("ac/tick", "x").ok());
      etcdserverpb::RangeRequest r = At("ac/k", old);
      r.set_serializable(true);  // each member's own history
      absl::StatusOr<etcdserverpb::RangeResponse> got = cluster.client(i).Range(r);
      compacted = !got.ok() && got.status().code() == absl::StatusCode::kOutOfRange;
      last = got.ok() ? "served" : got.status().ToString();
      if (!compacted) absl::SleepFor(absl::Milliseconds(200));
    }
    EXPECT_TRUE(compacted) << "node " << i + 1 << ": " << last << "\n" << cluster.Log(*leader);
    absl::StatusOr<etcdserverpb::RangeResponse> now = cluster.client(i).Range(At("ac/k", 0));
    ASSERT_TRUE(now.ok()) << now.status();
    ASSERT_EQ(now->kvs_size(), 1);
    EXPECT_EQ(now->kvs(0).value(), "v2");
  }
  EXPECT_NE(cluster.Log(*leader).find("auto-compaction: done"), std::string::npos);
}

}  // namespace
}  // namespace amaters::server::testing
