#include "engine/failover/config.h"

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace amaters::failover {
namespace {

TEST(FailoverConfig, DefaultsAreTheRunbookFigures) {
  FailoverConfig c;
  EXPECT_EQ(c.heartbeat_interval_ms, 100u);
  EXPECT_EQ(c.max_consecutive_failures, 3u);
  EXPECT_EQ(c.election_timeout_ms, 300u);
  EXPECT_EQ(c.election_jitter_min_ms, 150u);
  EXPECT_EQ(c.election_jitter_max_ms, 300u);
  EXPECT_EQ(c.slow_replication_threshold_entries, 1000u);
  EXPECT_EQ(c.failure_timeout_ms(), 300u);
  EXPECT_TRUE(c.Validate().ok());
}

TEST(FailoverConfig, ValidateNamesTheClusterKey) {
  struct Case {
    std::string name;
    std::function<void(FailoverConfig&)> edit;
    std::string error;  // "" = valid
  };
  const std::vector<Case> cases = {
      {"heartbeat 0", [](FailoverConfig& c) { c.heartbeat_interval_ms = 0; },
       "[cluster] heartbeat_interval_ms = 0: must be in 1..3600000"},
      {"heartbeat too long",
       [](FailoverConfig& c) {
         c.heartbeat_interval_ms = 3600001;
         c.election_timeout_ms = 3600000;
       },
       "[cluster] heartbeat_interval_ms = 3600001: must be in 1..3600000"},
      {"failures 0", [](FailoverConfig& c) { c.max_consecutive_failures = 0; },
       "[cluster] max_consecutive_failures = 0: must be in 1..1000"},
      {"failures 1", [](FailoverConfig& c) { c.max_consecutive_failures = 1; }, ""},
      {"failures 1001", [](FailoverConfig& c) { c.max_consecutive_failures = 1001; },
       "[cluster] max_consecutive_failures = 1001: must be in 1..1000"},
      {"election = heartbeat", [](FailoverConfig& c) { c.election_timeout_ms = 100; },
       "[cluster] election_timeout_ms = 100: must be greater than heartbeat_interval_ms (100)"},
      {"election = heartbeat + 1", [](FailoverConfig& c) { c.election_timeout_ms = 101; }, ""},
      {"election too long", [](FailoverConfig& c) { c.election_timeout_ms = 3600001; },
       "[cluster] election_timeout_ms = 3600001: must be at most 3600000"},
      {"jitter min 0", [](FailoverConfig& c) { c.election_jitter_min_ms = 0; },
       "[cluster] election_jitter_min_ms = 0: must be in 1..3600000"},
      {"jitter max = min", [](FailoverConfig& c) { c.election_jitter_max_ms = 150; },
       "[cluster] election_jitter_max_ms = 150: must be greater than election_jitter_min_ms "
       "(150)"},
      {"jitter max < min", [](FailoverConfig& c) { c.election_jitter_max_ms = 100; },
       "[cluster] election_jitter_max_ms = 100: must be greater than election_jitter_min_ms "
       "(150)"},
      {"jitter max = min + 1", [](FailoverConfig& c) { c.election_jitter_max_ms = 151; }, ""},
      {"jitter max too long", [](FailoverConfig& c) { c.election_jitter_max_ms = 3600001; },
       "[cluster] election_jitter_max_ms = 3600001: must be at most 3600000"},
      {"slow threshold 0", [](FailoverConfig& c) { c.slow_replication_threshold_entries = 0; },
       "[cluster] slow_replication_threshold_entries = 0: must be > 0"},
      {"slow threshold 1", [](FailoverConfig& c) { c.slow_replication_threshold_entries = 1; }, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FailoverConfig config;
    c.edit(config);
    absl::Status s = config.Validate();
    if (c.error.empty()) {
      EXPECT_TRUE(s.ok()) << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(s.message(), c.error);
    }
  }
}

TEST(ElectionTiming, DefaultsWithTheHeartbeatAsTick) {
  absl::StatusOr<ElectionTiming> t = ElectionTimingFor(FailoverConfig{}, 100);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->heartbeat_ticks, 1);
  EXPECT_EQ(t->election_ticks, 2);       // round(2 * 300 / (3 * 100))
  EXPECT_EQ(t->timeout_min_ms, 100u);    // (E-1) * tick, exclusive
  EXPECT_EQ(t->timeout_max_ms, 300u);    // (2E-1) * tick
  EXPECT_EQ(t->check_quorum_ms, 200u);
  EXPECT_EQ(t->failure_timeout_ms, 300u);
  EXPECT_EQ(t->Describe(),
            "tick 100 ms; heartbeat every 1 ticks; election timeout 2..3 ticks, i.e. (100, 300] ms "
            "after the leader's last message; check-quorum every 200 ms; a silent peer is failed "
            "after 300 ms");
  EXPECT_EQ(*ElectionTicks(FailoverConfig{}, 100), 2);
}

TEST(ElectionTiming, AFinerTickGivesThreeHundredMsPlusMinusAThird) {
  absl::StatusOr<ElectionTiming> t = ElectionTimingFor(FailoverConfig{}, 10);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->heartbeat_ticks, 10);
  EXPECT_EQ(t->election_ticks, 20);
  EXPECT_EQ(t->timeout_min_ms, 190u);
  EXPECT_EQ(t->timeout_max_ms, 390u);
  t = ElectionTimingFor(FailoverConfig{}, 1);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->election_ticks, 200);
  EXPECT_EQ(t->timeout_min_ms, 199u);
  EXPECT_EQ(t->timeout_max_ms, 399u);
}

TEST(ElectionTiming, RoundsToTheNearestTick) {
  FailoverConfig c;
  c.election_timeout_ms = 1000;  // 2T/3 = 666.7 ms
  EXPECT_EQ(*ElectionTicks(c, 100), 7);  // 6.67 -> 7
  c.election_timeout_ms = 1200;  // 800 ms exactly
  EXPECT_EQ(*ElectionTicks(c, 100), 8);
  c.election_timeout_ms = 1125;  // 750 ms: 7.5 ticks rounds up
  EXPECT_EQ(*ElectionTicks(c, 100), 8);
  c.election_timeout_ms = 1124;  // 749.3 ms
  EXPECT_EQ(*ElectionTicks(c, 100), 7);
}

TEST(ElectionTiming, NeverBelowHeartbeatTicksPlusOne) {
  FailoverConfig c;
  c.election_timeout_ms = 101;  // 2T/3 = 67 ms < one 100 ms tick
  absl::StatusOr<ElectionTiming> t = ElectionTimingFor(c, 100);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->heartbeat_ticks, 1);
  EXPECT_EQ(t->election_ticks, 2);
  c.heartbeat_interval_ms = 100;
  c.election_timeout_ms = 120;  // 80 ms = 8 ticks of 10 ms, but heartbeats take 10
  EXPECT_EQ(*ElectionTicks(c, 10), 11);
}

TEST(ElectionTiming, TheRangeBracketsTwoThirdsToFourThirdsWithinATick) {
  for (uint64_t tick : {1, 5, 10, 20, 50, 100}) {
    for (uint64_t t_ms = 300; t_ms <= 5000; t_ms += 100) {
      FailoverConfig c;
      c.election_timeout_ms = t_ms;
      absl::StatusOr<ElectionTiming> t = ElectionTimingFor(c, tick);
      ASSERT_TRUE(t.ok()) << t.status();
      SCOPED_TRACE(t->Describe());
      double low = 2.0 * t_ms / 3;
      double high = 4.0 * t_ms / 3;
      double e_ms = static_cast<double>(t->election_ticks * tick);
      if (t->election_ticks > t->heartbeat_ticks + 1) {
        EXPECT_LE(std::abs(e_ms - low), tick / 2.0 + 1e-9);
        EXPECT_LE(std::abs(2 * e_ms - high), tick + 1e-9);
      }
      EXPECT_GT(t->election_ticks, t->heartbeat_ticks);
      EXPECT_EQ(t->timeout_max_ms - t->timeout_min_ms, t->election_ticks * tick);
    }
  }
}

TEST(ElectionTiming, Errors) {
  EXPECT_EQ(ElectionTimingFor(FailoverConfig{}, 0).status().message(),
            "election timing: tick_ms must be > 0");
  EXPECT_EQ(ElectionTimingFor(FailoverConfig{}, 30).status().message(),
            "[cluster] heartbeat_interval_ms = 100: must be a multiple of the tick (30 ms)");
  EXPECT_EQ(ElectionTimingFor(FailoverConfig{}, 200).status().code(),
            absl::StatusCode::kInvalidArgument);
  FailoverConfig bad;
  bad.max_consecutive_failures = 0;
  EXPECT_EQ(ElectionTimingFor(bad, 100).status().message(),
            "[cluster] max_consecutive_failures = 0: must be in 1..1000");
  EXPECT_FALSE(ElectionTicks(bad, 100).ok());
}

}  // namespace
}  // namespace amaters::failover
