#include "engine/kv/auto_compaction.h"

#include <optional>

#include "gtest/gtest.h"

namespace amaters::kv {
namespace {

using Mode = AutoCompactionPolicy::Mode;

TEST(ParseAutoCompaction, EtcdSpellings) {
  absl::StatusOr<AutoCompactionPolicy> p = ParseAutoCompaction("revision", "1000");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->mode, Mode::kRevision);
  EXPECT_EQ(p->retention_revisions, 1000);
  EXPECT_TRUE(p->enabled());
  p = ParseAutoCompaction("periodic", "30m");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->retention_ms, 30u * 60 * 1000);
  EXPECT_EQ(ParseAutoCompaction("periodic", "2")->retention_ms, 2u * 3600 * 1000) << "hours";
  EXPECT_EQ(ParseAutoCompaction("periodic", "1h30m")->retention_ms, 90u * 60 * 1000);
  EXPECT_FALSE(ParseAutoCompaction("periodic", "0")->enabled());
  EXPECT_FALSE(ParseAutoCompaction("revision", "0")->enabled());
  for (auto [mode, retention] : {std::pair{"revision", "1h"}, {"revision", "-1"},
                                 {"periodic", "soon"}, {"periodic", "-5m"}, {"daily", "1"},
                                 {"periodic", "100000h"}}) {
    absl::StatusOr<AutoCompactionPolicy> bad = ParseAutoCompaction(mode, retention);
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << mode << " " << retention;
  }
}

TEST(AutoCompactor, RevisionModeChecksEveryFiveMinutesOnTheLeaderOnly) {
  AutoCompactor c(*ParseAutoCompaction("revision", "100"));
  EXPECT_EQ(c.Tick(0, /*leader=*/false, 500, 1), std::nullopt);
  EXPECT_EQ(c.Tick(1000, true, 500, 1), std::nullopt) << "first check one interval after election";
  EXPECT_EQ(c.Tick(1000 + kRevisionCheckMs - 1, true, 500, 1), std::nullopt);
  EXPECT_EQ(c.Tick(1000 + kRevisionCheckMs, true, 500, 1), 400);
  EXPECT_EQ(c.Tick(1000 + kRevisionCheckMs + 100, true, 900, 400), std::nullopt) << "interval";
  EXPECT_EQ(c.Tick(1000 + 2 * kRevisionCheckMs, true, 450, 400), std::nullopt)
      << "nothing older than the retention yet";
  EXPECT_EQ(c.Tick(1000 + 3 * kRevisionCheckMs, true, 900, 400), 800);
  EXPECT_EQ(c.Tick(1000 + 4 * kRevisionCheckMs, false, 2000, 800), std::nullopt);
}

TEST(AutoCompactor, PeriodicModeCompactsToTheRevisionOfOneRetentionAgo) {
  const uint64_t hour = 3600 * 1000;
  AutoCompactor c(*ParseAutoCompaction("periodic", "1h"));
  int64_t rev = 10;
  std::optional<int64_t> got;
  uint64_t now = 0;
  // One tick a second, ten writes a second, for three hours.
  for (; now <= 3 * hour && !got; now += 1000, rev += 10) got = c.Tick(now, true, rev, 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(now - 1000, hour) << "the first compaction one retention after the election";
  EXPECT_EQ(*got, 10) << "the revision sampled at the election";
  // The next ones every hour (the interval is min(retention, 1h)), each to ~1h ago.
  std::optional<int64_t> next;
  const int64_t compacted = *got;
  for (; now <= 3 * hour && !next; now += 1000, rev += 10) next = c.Tick(now, true, rev, compacted);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(now - 1000, 2 * hour);
  EXPECT_GE(*next, rev - 10 - 36000 - 3600) << "at most a tenth of the retention older";
  EXPECT_LE(*next, rev - 10 - 36000);
}

TEST(AutoCompactor, PeriodicModeStartsOverOnANewLeadership) {
  AutoCompactor c(*ParseAutoCompaction("periodic", "10s"));
  EXPECT_EQ(c.Tick(0, true, 5, 1), std::nullopt);
  EXPECT_EQ(c.Tick(5000, false, 50, 1), std::nullopt);
  EXPECT_EQ(c.Tick(6000, true, 60, 1), std::nullopt);
  EXPECT_EQ(c.Tick(15000, true, 150, 1), std::nullopt) << "only 9 s of this leadership";
  EXPECT_EQ(c.Tick(16000, true, 160, 1), 60);
}

TEST(AutoCompactor, OffDoesNothing) {
  AutoCompactor c(*ParseAutoCompaction("revision", "0"));
  for (uint64_t now = 0; now < 10 * kRevisionCheckMs; now += 1000) {
    ASSERT_EQ(c.Tick(now, true, 1000000, 1), std::nullopt);
  }
}

}  // namespace
}  // namespace amaters::kv
