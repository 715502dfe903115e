// End to end, one real amaters-server process and a raw gRPC Watch stream: a watcher that does
// not read while thousands of large events are written (its stream's send queue fills and the
// server stops sending to it) still gets every event exactly once and in revision order once
// it reads, caught up from the history (docs/watch.md); a second stream on the same server is
// not held up by it.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/testing/cluster.h"

namespace amaters::server::testing {
namespace {

using Stream = grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

etcdserverpb::WatchRequest Create(const std::string& prefix, int64_t start) {
  etcdserverpb::WatchRequest r;
  r.mutable_create_request()->set_key(prefix);
  r.mutable_create_request()->set_range_end(prefix.substr(0, prefix.size() - 1) +
                                            static_cast<char>(prefix.back() + 1));
  r.mutable_create_request()->set_start_revision(start);
  return r;
}

TEST(Watch, ASlowWatcherGetsEveryEventOnceInOrderAndHoldsNobodyUp) {
  TestCluster cluster(1, "watch");
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  ASSERT_TRUE(cluster.WaitForLeader().ok());
  EtcdClient& client = cluster.client(0);
  ASSERT_TRUE(client.Put("s/first", "x").ok());
  absl::StatusOr<etcdserverpb::RangeResponse> now = client.Range([] {
    etcdserverpb::RangeRequest r;
    r.set_key("s/first");
    return r;
  }());
  ASSERT_TRUE(now.ok()) << now.status();
  const int64_t start = now->header().revision() + 1;

  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      cluster.client_address(0), grpc::InsecureChannelCredentials(), TestChannelArguments());
  auto stub = etcdserverpb::Watch::NewStub(channel);
  grpc::ClientContext slow_context, fast_context;
  std::unique_ptr<Stream> slow = stub->Watch(&slow_context);
  std::unique_ptr<Stream> fast = stub->Watch(&fast_context);
  ASSERT_TRUE(slow->Write(Create("s/", start)));
  ASSERT_TRUE(fast->Write(Create("s/", start)));
  etcdserverpb::WatchResponse created;
  ASSERT_TRUE(slow->Read(&created));
  ASSERT_TRUE(created.created()) << created.DebugString();
  ASSERT_TRUE(fast->Read(&created));
  ASSERT_TRUE(created.created()) << created.DebugString();

  // 2,000 puts of 8 KiB: 16 MB of events, far more than gRPC's flow-control windows and the
  // server's queue of 128 responses, so the slow stream's queue fills while nobody reads it.
  constexpr int kPuts = 2000;
  const std::string value(8192, 'v');
  int64_t fast_next = start;
  for (int i = 0; i < kPuts; ++i) {
    ASSERT_TRUE(client.Put(absl::StrCat("s/", i % 50), value).ok()) << i;
    // The fast watcher keeps up: it reads what is there (every 100 puts).
    if (i % 100 == 99) {
      while (fast_next <= start + i) {
        etcdserverpb::WatchResponse r;
        ASSERT_TRUE(fast->Read(&r));
        for (const mvccpb::Event& e : r.events()) {
          ASSERT_EQ(e.kv().mod_revision(), fast_next) << "fast watcher";
          ++fast_next;
        }
      }
    }
  }
  EXPECT_EQ(fast_next, start + kPuts);

  // Now the slow one reads: every revision from `start`, once, in order.
  int64_t next = start;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (next < start + kPuts && absl::Now() < deadline) {
    etcdserverpb::WatchResponse r;
    ASSERT_TRUE(slow->Read(&r));
    ASSERT_FALSE(r.canceled()) << r.DebugString();
    for (const mvccpb::Event& e : r.events()) {
      ASSERT_EQ(e.kv().mod_revision(), next) << "a gap or a duplicate";
      ASSERT_EQ(e.kv().value().size(), value.size());
      ++next;
    }
  }
  EXPECT_EQ(next, start + kPuts);
  // And it is live again: a new put arrives.
  ASSERT_TRUE(client.Put("s/last", "y").ok());
  etcdserverpb::WatchResponse last;
  ASSERT_TRUE(slow->Read(&last));
  ASSERT_EQ(last.events_size(), 1);
  EXPECT_EQ(last.events(0).kv().key(), "s/last");
  EXPECT_EQ(last.events(0).kv().mod_revision(), start + kPuts);
  slow_context.TryCancel();
  fast_context.TryCancel();
}

}  // namespace
}  // namespace amaters::server::testing
