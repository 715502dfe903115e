// End to end, three real amaters-server processes: what the leader's lessor promises across
// leadership changes and restarts (docs/leases.md).
//  - A lease kept alive through a follower outlives a SIGKILLed leader: the new leader starts
//    every lease's clock over (plus an election timeout) and the keep-alives reach it.
//  - With [storage] lease_checkpoint_interval_ms set, a whole-cluster restart continues from
//    the remaining TTL the leader recorded, not from the full TTL.
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

std::unique_ptr<etcdserverpb::Lease::Stub> LeaseStub(TestCluster& cluster, int i) {
  return etcdserverpb::Lease::NewStub(
      grpc::CreateChannel(cluster.client_address(i), grpc::InsecureChannelCredentials()));
}

template <typename Call>
grpc::Status WithDeadline(Call call) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return call(&context);
}

absl::StatusOr<int64_t> Grant(etcdserverpb::Lease::Stub* stub, int64_t ttl) {
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl);
  etcdserverpb::LeaseGrantResponse resp;
  grpc::Status s = WithDeadline(
      [&](grpc::ClientContext* c) { return stub->LeaseGrant(c, req, &resp); });
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp.id();
}

// The lease's remaining TTL as the leader sees it (-1: gone); an error when not answered.
absl::StatusOr<int64_t> Remaining(etcdserverpb::Lease::Stub* stub, int64_t id) {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  etcdserverpb::LeaseTimeToLiveResponse resp;
  grpc::Status s = WithDeadline(
      [&](grpc::ClientContext* c) { return stub->LeaseTimeToLive(c, req, &resp); });
  if (!s.ok()) return absl::UnavailableError(s.error_message());
  return resp.ttl();
}

TEST(Lease, AKeptAliveLeaseOutlivesAKilledLeader) {
  TestCluster cluster(3, "leasefailover");
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  absl::StatusOr<int> leader = cluster.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int follower = (*leader + 1) % 3;
  auto stub = LeaseStub(cluster, follower);
  absl::StatusOr<int64_t> id = Grant(stub.get(), 3);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(cluster.client(follower).Put("failover/k", "v").ok());
  {
    etcdserverpb::PutRequest put;
    put.set_key("failover/leased");
    put.set_value("v");
    put.set_lease(*id);
    etcdserverpb::PutResponse resp;
    grpc::Status s = WithDeadline([&](grpc::ClientContext* c) {
      return cluster.client(follower).kv()->Put(c, put, &resp);
    });
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // Keep-alives every second through the follower on one stream (reopened when it breaks),
  // while the leader is killed 2 s in; 8 s in all, well past the 3 s TTL.
  grpc::ClientContext context;
  auto stream = stub->LeaseKeepAlive(&context);
  std::unique_ptr<grpc::ClientContext> retry_context;
  int acknowledged = 0;
  const absl::Time start = absl::Now();
  bool killed = false;
  while (absl::Now() - start < absl::Seconds(8)) {
    if (!killed && absl::Now() - start > absl::Seconds(2)) {
      cluster.Kill(*leader);
      killed = true;
    }
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(*id);
    etcdserverpb::LeaseKeepAliveResponse resp;
    if (stream->Write(req) && stream->Read(&resp)) {
      EXPECT_GT(resp.ttl(), 0) << "the lease expired while kept alive";
      ++acknowledged;
    } else {
      // The follower answered UNAVAILABLE during the election: a new stream, as clientv3 does.
      retry_context = std::make_unique<grpc::ClientContext>();
      stream = stub->LeaseKeepAlive(retry_context.get());
    }
    absl::SleepFor(absl::Milliseconds(1000));
  }
  EXPECT_GE(acknowledged, 4);
  absl::StatusOr<int> next = cluster.WaitForLeader();
  ASSERT_TRUE(next.ok()) << next.status();
  absl::StatusOr<int64_t> left = Remaining(stub.get(), *id);
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_GT(*left, 0) << "kept alive across the election";
  etcdserverpb::RangeRequest get;
  get.set_key("failover/leased");
  absl::StatusOr<etcdserverpb::RangeResponse> got = cluster.client(follower).Range(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->kvs_size(), 1);
}

TEST(Lease, ARestartedClusterContinuesFromTheCheckpointedTtl) {
  TestCluster cluster(3, "leasecheckpoint", "[storage]\nlease_checkpoint_interval_ms = 500\n");
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  absl::StatusOr<int> leader = cluster.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  auto stub = LeaseStub(cluster, *leader);
  absl::StatusOr<int64_t> id = Grant(stub.get(), 40);
  ASSERT_TRUE(id.ok()) << id.status();
  absl::SleepFor(absl::Seconds(6));  // checkpoints record about 34 s left
  for (int i = 0; i < 3; ++i) ASSERT_EQ(cluster.Stop(i), std::optional<int>(0)) << i;
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  leader = cluster.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  stub = LeaseStub(cluster, *leader);
  absl::StatusOr<int64_t> left = Remaining(stub.get(), *id);
  ASSERT_TRUE(left.ok()) << left.status();
  // From the checkpoint (<= 34 s plus the 0.5 s election extension), not the full 40 s.
  EXPECT_GT(*left, 20);
  EXPECT_LE(*left, 36) << "the restart started the lease over from its full TTL";
  EXPECT_NE(cluster.Log(*leader).find("leases: this member decides expiry"), std::string::npos);
}

}  // namespace
}  // namespace amaters::server::testing
