#include "engine/alerts/rules.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/alerts/event.h"
#include "gtest/gtest.h"

namespace amaters::alerts {
namespace {

// (rule name, action) for every rule concerned by `event`.
std::vector<std::pair<std::string, Action>> RunRules(const Event& event, uint64_t threshold = 1000) {
  std::vector<std::pair<std::string, Action>> out;
  for (const Rule& r : default_rules(threshold)) {
    if (std::optional<Action> a = r.evaluate(event)) out.emplace_back(r.name, *a);
  }
  return out;
}

TEST(DefaultRules, NamesInOrder) {
  std::vector<std::string> names;
  for (const Rule& r : default_rules(1000)) names.push_back(r.name);
  EXPECT_EQ(names, (std::vector<std::string>{"node_failed", "node_recovered", "leader_changed",
                                             "quorum_lost", "slow_replication",
                                             "certificate_expiring"}));
}

TEST(DefaultRules, DedupKeysExactly) {
  EXPECT_EQ(NodeFailedKey(3), "node_failed:3");
  EXPECT_EQ(NodeRecoveredKey(3), "node_recovered:3");
  EXPECT_EQ(LeaderChangedKey(2), "leader_changed:2");
  EXPECT_EQ(QuorumLostKey(), "quorum_lost");
  EXPECT_EQ(SlowReplicationKey(4), "slow_replication:4");
  EXPECT_EQ(CertificateExpiringKey("/etc/amaters/tls/server.crt"),
            "certificate_expiring:/etc/amaters/tls/server.crt");
}

TEST(DefaultRules, NodeFailedIsCriticalAndClearsTheLastRecovery) {
  auto out = RunRules(NodeFailed{3});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "node_failed");
  EXPECT_EQ(out[0].second.kind, Action::Kind::kFire);
  EXPECT_EQ(out[0].second.severity, Severity::kCritical);
  EXPECT_EQ(out[0].second.dedup_key, "node_failed:3");
  EXPECT_EQ(out[0].second.fields, (std::vector<Field>{{"node_id", "3"}}));
  EXPECT_NE(out[0].second.message.find("node 3 failed"), std::string::npos);
  EXPECT_EQ(out[1].first, "node_recovered");
  EXPECT_EQ(out[1].second.kind, Action::Kind::kClear);
  EXPECT_EQ(out[1].second.dedup_key, "node_recovered:3");
}

TEST(DefaultRules, NodeRecoveredIsInfoAndClearsTheFailure) {
  auto out = RunRules(NodeRecovered{3});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].first, "node_failed");
  EXPECT_EQ(out[0].second.kind, Action::Kind::kClear);
  EXPECT_EQ(out[0].second.dedup_key, "node_failed:3");
  EXPECT_EQ(out[1].first, "node_recovered");
  EXPECT_EQ(out[1].second.kind, Action::Kind::kFire);
  EXPECT_EQ(out[1].second.severity, Severity::kInfo);
  EXPECT_EQ(out[1].second.dedup_key, "node_recovered:3");
}

TEST(DefaultRules, LeaderChangedIsWarningKeyedByTheNewLeader) {
  auto out = RunRules(LeaderChanged{1, 2, 7});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, "leader_changed");
  EXPECT_EQ(out[0].second.severity, Severity::kWarning);
  EXPECT_EQ(out[0].second.dedup_key, "leader_changed:2");
  EXPECT_EQ(out[0].second.fields,
            (std::vector<Field>{{"old_leader", "1"}, {"new_leader", "2"}, {"term", "7"}}));
}

TEST(DefaultRules, QuorumLostIsCriticalAndQuorumRestoredClearsIt) {
  auto lost = RunRules(QuorumLost{5, 2});
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].first, "quorum_lost");
  EXPECT_EQ(lost[0].second.kind, Action::Kind::kFire);
  EXPECT_EQ(lost[0].second.severity, Severity::kCritical);
  EXPECT_EQ(lost[0].second.dedup_key, "quorum_lost");
  EXPECT_EQ(lost[0].second.fields, (std::vector<Field>{{"cluster_size", "5"},
                                                       {"reachable", "2"},
                                                       {"quorum", "3"}}));
  auto restored = RunRules(QuorumRestored{5, 3});
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0].second.kind, Action::Kind::kClear);
  EXPECT_EQ(restored[0].second.dedup_key, "quorum_lost");
}

TEST(DefaultRules, SlowReplicationAtTheThresholdNotBelow) {
  EXPECT_TRUE(RunRules(SlowReplication{2, 99}, 100).empty());
  auto at = RunRules(SlowReplication{2, 100}, 100);
  ASSERT_EQ(at.size(), 1u);
  EXPECT_EQ(at[0].first, "slow_replication");
  EXPECT_EQ(at[0].second.kind, Action::Kind::kFire);
  EXPECT_EQ(at[0].second.severity, Severity::kWarning);
  EXPECT_EQ(at[0].second.dedup_key, "slow_replication:2");
  EXPECT_EQ(at[0].second.fields, (std::vector<Field>{{"follower", "2"},
                                                     {"lag_entries", "100"},
                                                     {"threshold", "100"}}));
  auto cleared = RunRules(SlowReplicationCleared{2, 10}, 100);
  ASSERT_EQ(cleared.size(), 1u);
  EXPECT_EQ(cleared[0].second.kind, Action::Kind::kClear);
  EXPECT_EQ(cleared[0].second.dedup_key, "slow_replication:2");
}

TEST(DefaultRules, CertificateSeverityThresholds) {
  struct Case {
    int64_t days;
    std::optional<Severity> fires;  // nullopt: clears
  };
  const std::vector<Case> cases = {
      {365, std::nullopt}, {31, std::nullopt}, {30, std::nullopt},
      {29, Severity::kWarning}, {8, Severity::kWarning}, {7, Severity::kWarning},
      {6, Severity::kCritical}, {1, Severity::kCritical}, {0, Severity::kCritical},
      {-3, Severity::kCritical},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.days);
    auto out = RunRules(CertificateExpiring{"/tls/ca.pem", c.days});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].first, "certificate_expiring");
    EXPECT_EQ(out[0].second.dedup_key, "certificate_expiring:/tls/ca.pem");
    if (!c.fires) {
      EXPECT_EQ(out[0].second.kind, Action::Kind::kClear);
      continue;
    }
    EXPECT_EQ(out[0].second.kind, Action::Kind::kFire);
    EXPECT_EQ(out[0].second.severity, *c.fires);
    EXPECT_EQ(out[0].second.fields, (std::vector<Field>{{"path", "/tls/ca.pem"},
                                                        {"days_left", std::to_string(c.days)}}));
  }
  EXPECT_NE(RunRules(CertificateExpiring{"c", -3})[0].second.message.find("expired 3 days ago"),
            std::string::npos);
  EXPECT_NE(RunRules(CertificateExpiring{"c", 6})[0].second.message.find("expires in 6 days"),
            std::string::npos);
}

TEST(DefaultRules, EveryEventConcernsOnlyItsRules) {
  // The negative space: no rule reacts to an event outside its table row.
  EXPECT_EQ(RunRules(LeaderChanged{1, 2, 3}).size(), 1u);
  EXPECT_EQ(RunRules(QuorumRestored{3, 2}).size(), 1u);
  EXPECT_EQ(RunRules(SlowReplicationCleared{2, 0}).size(), 1u);
  EXPECT_EQ(RunRules(CertificateExpiring{"p", 100}).size(), 1u);
}

TEST(Severity, NamesAndOrder) {
  EXPECT_STREQ(SeverityName(Severity::kInfo), "info");
  EXPECT_STREQ(SeverityName(Severity::kWarning), "warning");
  EXPECT_STREQ(SeverityName(Severity::kCritical), "critical");
  EXPECT_LT(Severity::kInfo, Severity::kWarning);
  EXPECT_LT(Severity::kWarning, Severity::kCritical);
}

TEST(Event, Describe) {
  EXPECT_EQ(DescribeEvent(NodeFailed{3}), "NodeFailed{node_id=3}");
  EXPECT_EQ(DescribeEvent(LeaderChanged{1, 2, 5}), "LeaderChanged{old=1 new=2 term=5}");
  EXPECT_EQ(DescribeEvent(QuorumLost{3, 1}), "QuorumLost{cluster_size=3 reachable=1}");
  EXPECT_EQ(DescribeEvent(SlowReplication{2, 1500}), "SlowReplication{follower=2 lag_entries=1500}");
  EXPECT_EQ(DescribeEvent(CertificateExpiring{"/a b", 3}),
            "CertificateExpiring{path=\"/a b\" days_left=3}");
  EXPECT_STREQ(EventName(Event{QuorumRestored{3, 2}}), "QuorumRestored");
  EXPECT_STREQ(EventName(Event{SlowReplicationCleared{3, 2}}), "SlowReplicationCleared");
}

}  // namespace
}  // namespace amaters::alerts
