// End to end, three real processes (runbooks RB-001 and RB-002):
// kill a follower -> the leader's GET /alerts shows node_failed:<id> once; restart it ->
// node_recovered:<id>; kill two of three -> quorum_lost on the survivor, /readyz not ready,
// writes rejected with a clear error; restore -> ready again. A paused leader and a restarted
// follower raise no quorum_lost while a majority is up.
#include <signal.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
  // writes at once with a clear error. It was restarted above: it must have known the leader
  // (a node that has known none since start is waiting, and reports nothing).
  const int survivor = f;
  ASSERT_TRUE(c.WaitReady(survivor).ok());
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

// A steady write load spread over every node (followers forward), as etcdctl users produce:
// counts the writes refused with "no quorum" (the quorum_lost fast path) and how many
// succeeded.
class Load {
 public:
  explicit Load(TestCluster& c) {
    for (int i = 0; i < c.size(); ++i) {
      clients_.push_back(std::make_unique<EtcdClient>(c.client_address(i)));
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_; }
  int no_quorum() const { return no_quorum_; }
  std::string last_no_quorum() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_no_quorum_;
  }

 private:
  void Run() {
    for (int n = 0; !stop_; ++n) {
      EtcdClient& client = *clients_[static_cast<size_t>(n) % clients_.size()];
      absl::Status s = client.Put(absl::StrCat("load", n % 16), absl::StrCat(n));
      if (s.ok()) {
        ++ok_;
      } else if (absl::StrContains(s.message(), "no quorum")) {
        ++no_quorum_;
        std::lock_guard<std::mutex> lock(mu_);
        last_no_quorum_ = s.ToString();
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  std::vector<std::unique_ptr<EtcdClient>> clients_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0};
  std::atomic<int> no_quorum_{0};
  std::mutex mu_;
  std::string last_no_quorum_;
  std::thread thread_;
};

int QuorumLostCount(TestCluster& c) {
  int n = 0;
  for (int i = 0; i < c.size(); ++i) {
    if (c.Running(i)) n += Count(Get(c.node(i).admin_port, "/alerts").body, "\"quorum_lost\"");
  }
  return n;
}

// A leader paused (SIGSTOP) for 2 s and resumed, then a follower killed and restarted at once:
// a majority is up the whole time, so no node may raise quorum_lost and no write may be refused
// with "no quorum" (the paused leader used to, within milliseconds of resuming, from the
// silence it slept through; the restarted follower used to, while the leader's channel to it
// sat in reconnect backoff).
TEST(AlertsTest, APausedLeaderAndARestartedFollowerRaiseNoFalseQuorumLost) {
  TestCluster c(3, "alerts-pause");
  ASSERT_TRUE(c.StartAll().ok());
  absl::StatusOr<int> leader = c.WaitForLeader(absl::Seconds(20));
  ASSERT_TRUE(leader.ok()) << leader.status();
  ASSERT_TRUE(c.ConnectClients());
  Load load(c);
  absl::SleepFor(absl::Milliseconds(500));

  c.node(*leader).process->Signal(SIGSTOP);
  absl::SleepFor(absl::Seconds(2));
  c.node(*leader).process->Signal(SIGCONT);
  absl::SleepFor(absl::Seconds(2));
  EXPECT_EQ(QuorumLostCount(c), 0) << "after the pause:\n" << c.Describe();
  EXPECT_EQ(load.no_quorum(), 0) << load.last_no_quorum();

  absl::StatusOr<int> now_leader = c.WaitForLeader(absl::Seconds(20));
  ASSERT_TRUE(now_leader.ok()) << now_leader.status();
  const int f = (*now_leader + 1) % 3;
  c.Kill(f);
  ASSERT_TRUE(c.Start(f).ok());
  absl::SleepFor(absl::Seconds(3));  // longer than the leaderless period (1.15 s here)
  EXPECT_TRUE(c.WaitReady(f).ok()) << c.Log(f);
  EXPECT_EQ(QuorumLostCount(c), 0) << "after the restart:\n" << c.Describe();
  load.Stop();
  EXPECT_EQ(load.no_quorum(), 0) << load.last_no_quorum();
  EXPECT_GT(load.ok(), 0);
}

}  // namespace
}  // namespace amaters::server::testing
