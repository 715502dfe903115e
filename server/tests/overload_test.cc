// End to end, three real amaters-server processes with a small request limit
// (`[server] max_inflight_requests`, here through AMATERS_SERVER_MAX_INFLIGHT_REQUESTS): many
// concurrent writers get etcd's RESOURCE_EXHAUSTED "etcdserver: too many requests" for what
// does not fit, and every write acknowledged OK is there afterwards, on every member
// (docs/architecture.md "Client requests").
#include <stdlib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/testing/cluster.h"

namespace amaters::server::testing {
namespace {

TEST(Overload, TooManyRequestsAreRefusedAndNoAcknowledgedWriteIsLost) {
  ASSERT_EQ(setenv("AMATERS_SERVER_MAX_INFLIGHT_REQUESTS", "4", 1), 0);
  TestCluster cluster(3, "overload");
  ASSERT_TRUE(cluster.StartAll().ok()) << cluster.Describe();
  absl::StatusOr<int> leader = cluster.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status() << cluster.Describe();
  ASSERT_TRUE(cluster.ConnectClients()) << cluster.Describe();

  // 24 writers on one channel to the leader, 30 puts each, as fast as they are answered.
  constexpr int kWriters = 24;
  constexpr int kPutsEach = 30;
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;
  std::map<std::string, int> other_errors;  // message -> count
  std::atomic<int> too_many{0};
  std::vector<std::thread> writers;
  EtcdClient& client = cluster.client(*leader);
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPutsEach; ++i) {
        const std::string key = absl::StrCat("overload/", w, "/", i);
        const std::string value = absl::StrCat("v", w, "-", i);
        absl::Status s = client.Put(key, value);
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          acknowledged[key] = value;
        } else if (s.code() == absl::StatusCode::kResourceExhausted &&
                   s.message() == "etcdserver: too many requests") {
          ++too_many;
        } else {
          ++other_errors[s.ToString()];
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  std::printf("acknowledged=%zu too_many_requests=%d\n", acknowledged.size(), too_many.load());
  for (const auto& [message, count] : other_errors) {
    ADD_FAILURE() << count << " puts failed otherwise: " << message;
  }
  EXPECT_GT(too_many.load(), 0) << "24 writers never exceeded a limit of 4";
  EXPECT_GT(acknowledged.size(), 0u);

  // Every acknowledged write, read linearizably through each member.
  for (int i = 0; i < cluster.size(); ++i) {
    int missing = 0;
    for (const auto& [key, value] : acknowledged) {
      absl::StatusOr<std::optional<std::string>> got = cluster.client(i).Get(key);
      ASSERT_TRUE(got.ok()) << "node " << i << ": " << got.status();
      if (*got != std::optional<std::string>(value)) ++missing;
    }
    EXPECT_EQ(missing, 0) << "node " << i << " lost acknowledged writes";
  }
}

}  // namespace
}  // namespace amaters::server::testing
