#include "engine/alerts/alert_manager.h"

#include <string>
#include <utility>
#include <vector>

#include "engine/alerts/event.h"
#include "engine/alerts/rules.h"
#include "gtest/gtest.h"

namespace amaters::alerts {
namespace {

constexpr uint64_t kWindow = 300000;  // the default, 5 minutes

AlertManager Make(AlertManagerConfig config = {}) {
  absl::StatusOr<AlertManager> m = AlertManager::Create(config, default_rules(1000));
  EXPECT_TRUE(m.ok()) << m.status();
  return *std::move(m);
}

std::vector<std::string> Keys(const std::vector<Firing>& firings) {
  std::vector<std::string> out;
  for (const Firing& f : firings) out.push_back(f.dedup_key);
  return out;
}

using Strings = std::vector<std::string>;

TEST(AlertManager, DefaultConfig) {
  AlertManagerConfig c;
  EXPECT_EQ(c.dedup_window_ms, kWindow);
  EXPECT_EQ(c.max_keys, 1000u);
  EXPECT_EQ(c.max_recent, 1000u);
  EXPECT_TRUE(c.Validate().ok());
}

TEST(AlertManager, FiringCarriesRuleSeverityKeyTimeAndFields) {
  AlertManager m = Make();
  std::vector<Firing> f = m.Process(NodeFailed{3}, 1234);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].rule, "node_failed");
  EXPECT_EQ(f[0].severity, Severity::kCritical);
  EXPECT_EQ(f[0].dedup_key, "node_failed:3");
  EXPECT_EQ(f[0].fired_at_ms, 1234u);
  EXPECT_EQ(f[0].fields, (std::vector<Field>{{"node_id", "3"}}));
  ASSERT_EQ(m.recent().size(), 1u);
  EXPECT_EQ(m.recent()[0].dedup_key, "node_failed:3");
  EXPECT_EQ(m.counters().fired, 1u);
}

TEST(AlertManager, SameKeySuppressedInsideTheWindowAndFiresAtItsEnd) {
  AlertManager m = Make();
  EXPECT_EQ(Keys(m.Process(LeaderChanged{1, 2, 2}, 1000)), Strings{"leader_changed:2"});
  EXPECT_TRUE(m.Process(LeaderChanged{3, 2, 4}, 1000).empty());  // same instant
  EXPECT_TRUE(m.Process(LeaderChanged{3, 2, 6}, 1000 + kWindow - 1).empty());
  EXPECT_EQ(m.counters().suppressed, 2u);
  // Exactly at the boundary the window is over (half-open [fired_at, fired_at + window)).
  EXPECT_EQ(Keys(m.Process(LeaderChanged{3, 2, 8}, 1000 + kWindow)), Strings{"leader_changed:2"});
  // ... and the new firing starts a new window.
  EXPECT_TRUE(m.Process(LeaderChanged{3, 2, 9}, 1000 + 2 * kWindow - 1).empty());
  EXPECT_EQ(m.recent().size(), 2u);
}

TEST(AlertManager, DifferentKeysAreIndependent) {
  AlertManager m = Make();
  EXPECT_EQ(Keys(m.Process(NodeFailed{2}, 10)), Strings{"node_failed:2"});
  EXPECT_EQ(Keys(m.Process(NodeFailed{3}, 11)), Strings{"node_failed:3"});
  EXPECT_EQ(Keys(m.Process(LeaderChanged{1, 2, 2}, 12)), Strings{"leader_changed:2"});
  EXPECT_EQ(Keys(m.Process(LeaderChanged{2, 3, 3}, 13)), Strings{"leader_changed:3"});
  EXPECT_TRUE(m.Process(NodeFailed{2}, 14).empty());
}

TEST(AlertManager, RepeatedFailureWithoutRecoveryFiresOnce) {
  AlertManager m = Make();
  int fired = 0;
  for (uint64_t t = 0; t < kWindow; t += 1000) fired += m.Process(NodeFailed{3}, t).size();
  EXPECT_EQ(fired, 1);
}

// A flapping follower: crash it -> one node_failed; restart -> node_recovered; crash
// again later (inside the window) -> node_failed fires again, and so does the next recovery.
TEST(AlertManager, AClearedKeyFiresAgainAtItsNextEpisodeInsideTheWindow) {
  AlertManager m = Make();
  EXPECT_EQ(Keys(m.Process(NodeFailed{3}, 1000)), Strings{"node_failed:3"});
  EXPECT_TRUE(m.Process(NodeFailed{3}, 1300).empty());
  EXPECT_EQ(Keys(m.Process(NodeRecovered{3}, 5000)), Strings{"node_recovered:3"});
  EXPECT_FALSE(m.Remembers("node_failed:3"));
  EXPECT_EQ(Keys(m.Process(NodeFailed{3}, 65000)), Strings{"node_failed:3"});
  EXPECT_FALSE(m.Remembers("node_recovered:3"));
  EXPECT_EQ(Keys(m.Process(NodeRecovered{3}, 70000)), Strings{"node_recovered:3"});
  EXPECT_EQ(m.counters().fired, 4u);
  EXPECT_EQ(m.counters().cleared, 3u);  // failed, recovered, failed
  EXPECT_EQ(m.counters().suppressed, 1u);
}

TEST(AlertManager, QuorumLostOncePerEpisode) {
  AlertManager m = Make();
  EXPECT_EQ(Keys(m.Process(QuorumLost{3, 1}, 0)), Strings{"quorum_lost"});
  EXPECT_TRUE(m.Process(QuorumLost{3, 1}, 100).empty());
  EXPECT_TRUE(m.Process(QuorumRestored{3, 2}, 200).empty());  // a clear fires nothing
  EXPECT_EQ(Keys(m.Process(QuorumLost{3, 1}, 300)), Strings{"quorum_lost"});
}

TEST(AlertManager, SlowReplicationClearedByCatchingUp) {
  AlertManager m = Make();
  EXPECT_EQ(Keys(m.Process(SlowReplication{2, 1000}, 0)), Strings{"slow_replication:2"});
  EXPECT_TRUE(m.Process(SlowReplication{2, 5000}, 10).empty());
  EXPECT_TRUE(m.Process(SlowReplicationCleared{2, 400}, 20).empty());
  EXPECT_EQ(Keys(m.Process(SlowReplication{2, 1200}, 30)), Strings{"slow_replication:2"});
  // A lag below the rule's threshold is no alert at all.
  EXPECT_TRUE(m.Process(SlowReplication{3, 999}, 40).empty());
  EXPECT_FALSE(m.Remembers("slow_replication:3"));
}

TEST(AlertManager, ClearingAnUnknownKeyIsANoOp) {
  AlertManager m = Make();
  EXPECT_TRUE(m.Process(NodeRecovered{9}, 0).size() == 1);  // fires node_recovered:9 only
  EXPECT_EQ(m.counters().cleared, 0u);
  EXPECT_TRUE(m.Process(QuorumRestored{3, 3}, 1).empty());
  EXPECT_EQ(m.counters().cleared, 0u);
}

TEST(AlertManager, EscalationPassesTheWindowButNotTheOtherWay) {
  AlertManager m = Make();
  std::vector<Firing> w = m.Process(CertificateExpiring{"/tls/server.crt", 20}, 0);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].severity, Severity::kWarning);
  EXPECT_TRUE(m.Process(CertificateExpiring{"/tls/server.crt", 8}, 1000).empty());
  std::vector<Firing> c = m.Process(CertificateExpiring{"/tls/server.crt", 6}, 2000);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].severity, Severity::kCritical);
  EXPECT_TRUE(m.Process(CertificateExpiring{"/tls/server.crt", 5}, 3000).empty());
  // The escalation restarted the window at 2000.
  EXPECT_TRUE(m.Process(CertificateExpiring{"/tls/server.crt", 5}, 2000 + kWindow - 1).empty());
  EXPECT_EQ(m.Process(CertificateExpiring{"/tls/server.crt", 4}, 2000 + kWindow).size(), 1u);
  // Renewed: the key is cleared, a later warning fires at once.
  EXPECT_TRUE(m.Process(CertificateExpiring{"/tls/server.crt", 365}, 2000 + kWindow + 1).empty());
  EXPECT_EQ(m.Process(CertificateExpiring{"/tls/server.crt", 29}, 2000 + kWindow + 2).size(), 1u);
}

TEST(AlertManager, ZeroWindowDisablesDeduplication) {
  AlertManagerConfig c;
  c.dedup_window_ms = 0;
  AlertManager m = Make(c);
  EXPECT_EQ(m.Process(LeaderChanged{1, 2, 2}, 5).size(), 1u);
  EXPECT_EQ(m.Process(LeaderChanged{1, 2, 2}, 5).size(), 1u);
  EXPECT_EQ(m.counters().suppressed, 0u);
}

TEST(AlertManager, RememberedKeysAreBoundedOldestForgottenFirst) {
  AlertManagerConfig c;
  c.max_keys = 2;
  AlertManager m = Make(c);
  EXPECT_EQ(m.Process(NodeFailed{1}, 10).size(), 1u);
  EXPECT_EQ(m.Process(NodeFailed{2}, 20).size(), 1u);
  EXPECT_EQ(m.Process(NodeFailed{3}, 30).size(), 1u);
  EXPECT_EQ(m.remembered_keys(), 2u);
  EXPECT_EQ(m.counters().evicted_keys, 1u);
  EXPECT_FALSE(m.Remembers("node_failed:1"));
  EXPECT_TRUE(m.Remembers("node_failed:2"));
  EXPECT_TRUE(m.Remembers("node_failed:3"));
  // The documented cost: a forgotten key can fire again inside its window.
  EXPECT_EQ(m.Process(NodeFailed{1}, 40).size(), 1u);
  EXPECT_FALSE(m.Remembers("node_failed:2"));
  EXPECT_TRUE(m.Process(NodeFailed{3}, 50).empty());
}

TEST(AlertManager, RecentIsABoundedRingOldestFirst) {
  AlertManagerConfig c;
  c.max_recent = 3;
  AlertManager m = Make(c);
  for (uint64_t id = 1; id <= 5; ++id) m.Process(NodeFailed{id}, id * 10);
  std::vector<Firing> r = m.recent();
  EXPECT_EQ(Keys(r), (Strings{"node_failed:3", "node_failed:4", "node_failed:5"}));
  EXPECT_EQ(r.front().fired_at_ms, 30u);
  EXPECT_EQ(m.counters().fired, 5u);
}

TEST(AlertManager, CreateValidates) {
  AlertManagerConfig c;
  c.max_keys = 0;
  EXPECT_EQ(AlertManager::Create(c, {}).status().message(),
            "[alerts] max_keys = 0: must be in 1..1000000");
  c = {};
  c.max_recent = 0;
  EXPECT_EQ(AlertManager::Create(c, {}).status().message(),
            "[alerts] max_recent = 0: must be in 1..1000000");
  std::vector<Rule> rules = default_rules(10);
  rules.push_back(rules.front());
  EXPECT_EQ(AlertManager::Create({}, rules).status().message(),
            "duplicate alert rule node_failed");
  EXPECT_FALSE(AlertManager::Create({}, {Rule{"", default_rules(10)[0].evaluate}}).ok());
  EXPECT_FALSE(AlertManager::Create({}, {Rule{"x", nullptr}}).ok());
  EXPECT_TRUE(AlertManager::Create({}, {}).ok());
}

TEST(AlertManager, DescribeFiringIsOneStructuredLine) {
  AlertManager m = Make();
  std::vector<Firing> f = m.Process(NodeFailed{3}, 1200);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(DescribeFiring(f[0]),
            "alert rule=node_failed severity=critical dedup_key=node_failed:3 fired_at_ms=1200 "
            "node_id=3 message=\"node 3 failed: no message from it for max_consecutive_failures "
            "heartbeat rounds\"");
  std::vector<Firing> c = m.Process(CertificateExpiring{"/a \"b\"", 3}, 1300);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(DescribeFiring(c[0]).find("path=\"/a \\\"b\\\"\""), std::string::npos)
      << DescribeFiring(c[0]);
}

TEST(AlertManagerDeathTest, TimeMustNotGoBackwards) {
  AlertManager m = Make();
  m.Process(NodeFailed{3}, 100);
  EXPECT_DEATH(m.Process(NodeFailed{3}, 99), "alert time went backwards: 100 -> 99");
}

}  // namespace
}  // namespace amaters::alerts
