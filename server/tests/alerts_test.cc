// End to end, three real processes (issue 6's acceptance test; runbooks RB-001 and RB-002):
// kill a follower -> the leader's GET /alerts shows node_failed:<id> once; restart it ->
// node_recovered:<id>; kill two of three -> quorum_lost on the survivor, /readyz not ready,
// writes rejected with a clear error; restore -> ready again.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/testing/cluster.h"

namespace amaters::server::testing {
namespace {

struct Http {
  int status = -1;
  std::string body;
};

Http Get(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  httplib::Result r = client.Get(path.c_str());
  if (!r) return {};
  return {r->status, r->body};
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Polls GET /alerts on node i until `key` shows up `times` times (or the timeout passes).
std::string WaitForAlert(TestCluster& c, int i, const std::string& key, int times,
                         absl::Duration timeout) {
  const std::string needle = absl::StrCat("\"dedup_key\":\"", key, "\"");
  const absl::Time deadline = absl::Now() + timeout;
  Http h;
  while (absl::Now() < deadline) {
    h = Get(c.node(i).admin_port, "/alerts");
    if (Count(h.body, needle) >= times) return h.body;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return h.body;
}

TEST(AlertsTest, FollowerFailureRecoveryAndQuorumLoss) {
  TestCluster c(3, "alerts");
  ASSERT_TRUE(c.StartAll().ok());
  absl::StatusOr<int> leader = c.WaitForLeader(absl::Seconds(20));
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_TRUE(c.client(*leader).Put("k", "v").ok());
  const int f = (*leader + 1) % 3;  // a follower
  const int other = (*leader + 2) % 3;
  const std::string failed = absl::StrCat("node_failed:", f + 1);
  const std::string recovered = absl::StrCat("node_recovered:", f + 1);
  const int admin = c.node(*leader).admin_port;
  EXPECT_EQ(Count(Get(admin, "/alerts").body, "dedup_key"), 0) << "no alert in a healthy start";

  // RB-001: a follower dies. 3 heartbeat rounds of 50 ms later the leader reports it, once.
  c.Kill(f);
  std::string alerts = WaitForAlert(c, *leader, failed, 1, absl::Seconds(5));
  EXPECT_EQ(Count(alerts, failed), 1) << alerts;
  EXPECT_TRUE(absl::StrContains(alerts, "\"severity\":\"critical\"")) << alerts;
  absl::SleepFor(absl::Seconds(1));
  alerts = Get(admin, "/alerts").body;
  EXPECT_EQ(Count(alerts, failed), 1) << "repeated: " << alerts;
  EXPECT_EQ(Count(Get(c.node(other).admin_port, "/alerts").body, failed), 0)
      << "a follower never judges another follower";
  Http health = Get(admin, "/health");
  EXPECT_EQ(health.status, 200) << health.body;  // degraded still serves
  EXPECT_TRUE(absl::StrContains(health.body, "\"status\":\"degraded\"")) << health.body;
  const std::string metrics = Get(admin, "/metrics").body;
  EXPECT_TRUE(absl::StrContains(
      metrics, "amaters_alerts_total{rule=\"node_failed\",severity=\"critical\"} 1"))
      << metrics;
  EXPECT_TRUE(c.client(*leader).Put("k", "v2").ok()) << "two of three still commit";

  ASSERT_TRUE(c.Start(f).ok());
  alerts = WaitForAlert(c, *leader, recovered, 1, absl::Seconds(10));
  EXPECT_EQ(Count(alerts, recovered), 1) << alerts;
  EXPECT_EQ(Count(alerts, failed), 1) << "no flapping while it catches up: " << alerts;
  const absl::Time healthy_deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < healthy_deadline &&
         !absl::StrContains(Get(admin, "/health").body, "\"status\":\"healthy\"")) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(absl::StrContains(Get(admin, "/health").body, "\"status\":\"healthy\""));

  // RB-002: two of three die. The survivor reports quorum_lost, is not ready, and refuses
  // writes at once with a clear error.
  const int survivor = f;
  for (int i = 0; i < 3; ++i) {
    if (i != survivor) c.Kill(i);
  }
  alerts = WaitForAlert(c, survivor, "quorum_lost", 1, absl::Seconds(10));
  EXPECT_EQ(Count(alerts, "\"dedup_key\":\"quorum_lost\""), 1) << alerts;
  Http ready = Get(c.node(survivor).admin_port, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_TRUE(absl::StrContains(ready.body, "{\"ready\":false}")) << ready.body;
  const absl::Time before = absl::Now();
  absl::Status put = c.client(survivor).Put("k", "lost");
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_TRUE(absl::StrContains(put.message(), "no quorum")) << put;
  EXPECT_LT(absl::Now() - before, absl::Seconds(2)) << "refused at once, not after a timeout";

  // Restore: the cluster elects a leader, the survivor is ready again and accepts writes.
  for (int i = 0; i < 3; ++i) {
    if (i == survivor) continue;
    ASSERT_TRUE(c.Start(i).ok());
  }
  const absl::Time ready_deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < ready_deadline && Get(c.node(survivor).admin_port, "/readyz").status != 200) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(Get(c.node(survivor).admin_port, "/readyz").status, 200)
      << c.Log(survivor);
  absl::Status again = absl::UnavailableError("not tried");
  for (int attempt = 0; attempt < 50 && !again.ok(); ++attempt) {
    again = c.client(survivor).Put("k", "back");
    if (!again.ok()) absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_TRUE(absl::StrContains(Get(c.node(survivor).admin_port, "/alerts").body,
                                "\"dedup_key\":\"quorum_lost\""));
}

}  // namespace
}  // namespace amaters::server::testing
