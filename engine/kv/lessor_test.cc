#include "engine/kv/lessor.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace amaters::kv {
namespace {

using Checkpoint = LeaseCheckpointRequest::Checkpoint;

constexpr uint64_t kElectionMs = 1000;

Lessor Primary(uint64_t now_ms, LessorOptions options = {}) {
  Lessor l(options);
  l.Promote(now_ms, kElectionMs);
  return l;
}

TEST(Lessor, AFollowerDecidesNothing) {
  Lessor l(LessorOptions{});
  l.Granted(Lease{1, 5, 0}, 0);
  EXPECT_TRUE(l.Expired(1'000'000).empty());
  EXPECT_TRUE(l.DueCheckpoints(1'000'000'000).empty());
  EXPECT_EQ(l.Renew(1, 0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(l.Renew(1, 0).status().message(), kErrNotPrimary);
  EXPECT_EQ(l.Remaining(1, 0).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(l.Has(1));
}

TEST(Lessor, ALeaseExpiresItsTtlAfterTheGrantUnlessRenewed) {
  Lessor l = Primary(0);
  l.Granted(Lease{1, 5, 0}, 1000);
  l.Granted(Lease{2, 5, 0}, 1000);
  EXPECT_TRUE(l.Expired(5999).empty());
  EXPECT_EQ(l.Remaining(1, 2500)->remaining, 3);  // 3.5 s left, truncated
  EXPECT_EQ(l.Remaining(1, 2500)->granted_ttl, 5);
  ASSERT_EQ(l.Renew(2, 5000)->ttl, 5);  // now expires at 10000
  EXPECT_EQ(l.Expired(6000), std::vector<int64_t>{1});
  // Handed out once; again only after the retry interval if the revoke did not come back.
  EXPECT_TRUE(l.Expired(6001).empty());
  EXPECT_EQ(l.Renew(1, 6001).status().code(), absl::StatusCode::kUnavailable) << "expiring";
  // Planted: acknowledged but not renewed.
  Lessor bad = Primary(0);
  bad.set_planted_bugs({/*renew_keeps_expiry=*/true});
  bad.Granted(Lease{7, 5, 0}, 0);
  ASSERT_TRUE(bad.Renew(7, 4000).ok());
  EXPECT_EQ(bad.Expired(5000), std::vector<int64_t>{7});
  EXPECT_EQ(l.Expired(6000 + kRevokeRetryMs), std::vector<int64_t>{1});
  l.Revoked(1);
  EXPECT_FALSE(l.Has(1));
  EXPECT_EQ(l.Remaining(1, 7000).status().message(), kErrLeaseNotFound);
  EXPECT_TRUE(l.Expired(9999).empty());
  EXPECT_EQ(l.Expired(10000), std::vector<int64_t>{2});
}

TEST(Lessor, PromoteExtendsEveryLeaseByTheElectionTimeout) {
  Lessor l(LessorOptions{});
  l.Reset({Lease{1, 10, 0}, Lease{2, 10, 4}}, 0);
  l.Promote(50'000, kElectionMs);
  // Lease 2 starts from its checkpointed 4 s, lease 1 from its TTL; both extended.
  EXPECT_TRUE(l.Expired(50'000 + 4000 + kElectionMs - 1).empty());
  EXPECT_EQ(l.Expired(50'000 + 4000 + kElectionMs), std::vector<int64_t>{2});
  l.Revoked(2);
  EXPECT_EQ(l.Expired(50'000 + 10'000 + kElectionMs), std::vector<int64_t>{1});
  // Demoted, it forgets expiry; promoted again, it starts over.
  l.Demote();
  EXPECT_TRUE(l.Expired(1'000'000).empty());
  l.Promote(1'000'000, kElectionMs);
  EXPECT_TRUE(l.Expired(1'000'000 + 4000).empty());
}

TEST(Lessor, GrantTtlHasAFloorAndACeiling) {
  LessorOptions options;
  options.min_ttl_s = 3;
  Lessor l(options);
  EXPECT_EQ(*l.GrantTtl(1), 3);
  EXPECT_EQ(*l.GrantTtl(60), 60);
  EXPECT_EQ(l.GrantTtl(kMaxLeaseTtl + 1).status().message(), kErrLeaseTtlTooLarge);
}

TEST(Lessor, CheckpointsComeEveryIntervalAndARenewalAsksToClearOne) {
  LessorOptions options;
  options.checkpoint_interval_ms = 10'000;
  Lessor l = Primary(0, options);
  l.Granted(Lease{1, 60, 0}, 0);
  EXPECT_TRUE(l.DueCheckpoints(9'999).empty());
  EXPECT_EQ(l.DueCheckpoints(10'000), (std::vector<Checkpoint>{{1, 50}}));
  EXPECT_TRUE(l.DueCheckpoints(15'000).empty());
  EXPECT_TRUE(l.Renew(1, 15'000)->clear_checkpoint)
      << "the checkpoint handed out at 10 s may apply after this renewal";
  l.Checkpointed(1, 50);
  EXPECT_TRUE(l.Renew(1, 15'500)->clear_checkpoint);
  l.Checkpointed(1, 0);
  EXPECT_FALSE(l.Renew(1, 15'600)->clear_checkpoint);
  EXPECT_TRUE(l.DueCheckpoints(16'000).empty());
  EXPECT_EQ(l.DueCheckpoints(20'000), (std::vector<Checkpoint>{{1, 56}}));  // renewed at 15.6 s
  options.checkpoint_interval_ms = 0;
  Lessor off = Primary(0, options);
  off.Granted(Lease{1, 60, 0}, 0);
  EXPECT_TRUE(off.DueCheckpoints(1'000'000).empty());
}

TEST(Lessor, ExpiredIsBoundedAndEarliestFirst) {
  Lessor l = Primary(0);
  const int64_t n = static_cast<int64_t>(kMaxRevokesPerCall) + 10;
  for (int64_t id = 1; id <= n; ++id) {
    l.Granted(Lease{id, 1, 0}, static_cast<uint64_t>(n - id));  // higher ids expire earlier
  }
  std::vector<int64_t> first = l.Expired(1'000'000);
  ASSERT_EQ(first.size(), kMaxRevokesPerCall);
  EXPECT_EQ(first.front(), n);
  std::vector<int64_t> rest = l.Expired(1'000'000);
  EXPECT_EQ(rest.size(), 10u);
  EXPECT_EQ(rest.back(), 1);
}

}  // namespace
}  // namespace amaters::kv
