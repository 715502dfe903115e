#include "engine/raft/configuration.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace amaters::raft {
namespace {

using Type = ConfChangeStep::Type;

ConfChange Change(std::vector<ConfChangeStep> steps, std::vector<MemberInfo> members = {}) {
  return ConfChange{std::move(steps), std::move(members), std::nullopt};
}

MemberInfo Info(NodeId id, std::string peer_url) {
  return MemberInfo{id, "m" + std::to_string(id), {std::move(peer_url)}, {"http://c:2379"}};
}

TEST(ConfChange, EncodesAndDecodes) {
  ConfChange cc = Change({{Type::kAddVoter, 4}, {Type::kAddLearner, 5}, {Type::kRemove, 1}},
                         {Info(4, "http://a:2380"), MemberInfo{5, std::string("x\0y", 3), {}, {}}});
  absl::StatusOr<ConfChange> back = DecodeConfChange(EncodeConfChange(cc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, cc);
  // With the result the leader records.
  cc.result = Configuration::Of({2, 3, 4}, {5});
  cc.result->outgoing = {1, 2, 3};
  cc.result->auto_leave = true;
  cc.result->member_info = {Info(4, "http://a:2380")};
  back = DecodeConfChange(EncodeConfChange(cc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, cc);
  EXPECT_EQ(DescribeConfChange(cc), "add-voter 4, add-learner 5, remove 1, info 4, info 5");
  EXPECT_EQ(DescribeConfChange(ConfChange{}), "leave-joint");
  absl::StatusOr<ConfChange> empty = DecodeConfChange(EncodeConfChange(ConfChange{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->steps.empty());
}

TEST(ConfChange, EveryTruncationAndBadFieldIsRefused) {
  ConfChange change = Change({{Type::kAddVoter, 4}}, {Info(4, "http://a")});
  const std::string no_result = EncodeConfChange(change);
  change.result = Configuration::Of({1, 4});
  change.result->member_info = {Info(4, "http://a")};
  const std::string good = EncodeConfChange(change);
  ASSERT_TRUE(DecodeConfChange(no_result).ok());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(DecodeConfChange(good.substr(0, n)).ok()) << "truncated to " << n;
  }
  EXPECT_FALSE(DecodeConfChange(good + "x").ok()) << "trailing byte";
  std::string invalid_result = no_result;
  invalid_result.back() = 1;  // a result flag ...
  invalid_result += std::string(4 * 3, '\0') + std::string(1, '\0') + std::string(4, '\0');
  EXPECT_FALSE(DecodeConfChange(invalid_result).ok()) << "a result without voters";
  std::string bad = good;
  bad[0] = 2;
  EXPECT_FALSE(DecodeConfChange(bad).ok()) << "version";
  bad = good;
  bad[5] = 3;
  EXPECT_FALSE(DecodeConfChange(bad).ok()) << "step type";
  bad = good;
  for (int i = 6; i < 14; ++i) bad[i] = 0;
  EXPECT_FALSE(DecodeConfChange(bad).ok()) << "node 0";
  bad = good;
  bad[1] = static_cast<char>(0xff);
  EXPECT_FALSE(DecodeConfChange(bad).ok()) << "step count";
  bad = good;
  bad[14] = static_cast<char>(65);  // 65 members
  EXPECT_FALSE(DecodeConfChange(bad).ok()) << "member count";
}

TEST(ConfChangeApply, MemberRecordsFollowTheMembers) {
  const Configuration three = Configuration::Of({1, 2, 3});
  // Adding a learner records its info; a change without steps updates it (MemberUpdate).
  absl::StatusOr<Configuration> added =
      ApplyConfChange(three, Change({{Type::kAddLearner, 4}}, {Info(4, "http://a:2380")}));
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_NE(added->InfoOf(4), nullptr);
  EXPECT_EQ(added->InfoOf(4)->peer_urls, std::vector<std::string>{"http://a:2380"});
  EXPECT_EQ(added->InfoOf(1), nullptr);  // a bootstrap member has no record
  absl::StatusOr<Configuration> updated =
      ApplyConfChange(*added, Change({}, {Info(4, "http://b:2380"), Info(1, "http://one:2380")}));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->voters, added->voters);
  EXPECT_EQ(updated->learners, added->learners);
  EXPECT_EQ(updated->InfoOf(4)->peer_urls, std::vector<std::string>{"http://b:2380"});
  EXPECT_EQ(updated->member_info.size(), 2u);
  // A promotion keeps the record; a removal drops it.
  absl::StatusOr<Configuration> promoted = ApplyConfChange(*updated, Change({{Type::kAddVoter, 4}}));
  ASSERT_TRUE(promoted.ok());
  EXPECT_NE(promoted->InfoOf(4), nullptr);
  absl::StatusOr<Configuration> removed = ApplyConfChange(*promoted, Change({{Type::kRemove, 4}}));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->InfoOf(4), nullptr);
  EXPECT_NE(removed->InfoOf(1), nullptr);
  EXPECT_TRUE(removed->Validate().ok());
  // Refused: info of a non-member, info beyond the bounds, an empty change outside a joint
  // configuration.
  EXPECT_FALSE(ApplyConfChange(three, Change({}, {Info(9, "http://x")})).ok());
  EXPECT_FALSE(ApplyConfChange(three, Change({}, {MemberInfo{1, std::string(300, 'n'), {}, {}}})).ok());
  EXPECT_FALSE(ApplyConfChange(three, Change({}, {MemberInfo{1, "n", std::vector<std::string>(9, "u"),
                                                              {}}})).ok());
  EXPECT_FALSE(ApplyConfChange(three, Change({})).ok());
  // The records travel in snapshots.
  SnapshotMeta meta(7, 2);
  RecordConfiguration(*updated, &meta);
  EXPECT_EQ(ConfigurationOf(meta), *updated);
}

TEST(Configuration, MajorityOfASingleSet) {
  Configuration c = Configuration::Of({1, 2, 3}, {4});
  EXPECT_EQ(c.Tally({{1, true}}), VoteResult::kPending);
  EXPECT_EQ(c.Tally({{1, true}, {2, true}}), VoteResult::kWon);
  EXPECT_EQ(c.Tally({{1, true}, {2, false}, {3, false}}), VoteResult::kLost);
  EXPECT_EQ(c.Tally({{1, true}, {4, true}}), VoteResult::kPending) << "a learner's vote counts for nothing";
  std::map<NodeId, Index> match = {{1, 9}, {2, 7}, {3, 3}, {4, 100}};
  EXPECT_EQ(c.CommittedIndex([&](NodeId id) { return match[id]; }), 7u);
  EXPECT_TRUE(c.QuorumActive([](NodeId id) { return id != 3; }));
  EXPECT_FALSE(c.QuorumActive([](NodeId id) { return id == 1 || id == 4; }));
  EXPECT_TRUE(c.IsVoter(2));
  EXPECT_FALSE(c.IsVoter(4));
  EXPECT_TRUE(c.IsLearner(4));
  EXPECT_EQ(c.Members(), (std::vector<NodeId>{1, 2, 3, 4}));
}

TEST(Configuration, AJointConfigurationNeedsAMajorityOfBothSets) {
  Configuration c;
  c.voters = {3, 4, 5};
  c.outgoing = {1, 2, 3};
  ASSERT_TRUE(c.Validate().ok());
  EXPECT_EQ(c.Tally({{1, true}, {2, true}, {3, true}}), VoteResult::kPending)
      << "old majority only";
  EXPECT_EQ(c.Tally({{3, true}, {4, true}, {5, true}}), VoteResult::kPending)
      << "new majority only";
  EXPECT_EQ(c.Tally({{1, true}, {3, true}, {4, true}}), VoteResult::kWon);
  EXPECT_EQ(c.Tally({{1, false}, {2, false}}), VoteResult::kLost);
  std::map<NodeId, Index> match = {{1, 10}, {2, 10}, {3, 5}, {4, 8}, {5, 2}};
  EXPECT_EQ(c.CommittedIndex([&](NodeId id) { return match[id]; }), 5u)
      << "old set would commit 10, new set only 5";
  EXPECT_EQ(c.AllVoters(), (std::vector<NodeId>{1, 2, 3, 4, 5}));
  EXPECT_EQ(c.Describe(), "voters=3,4,5&&1,2,3");
}

TEST(ConfChangeApply, OneVoterAtATimeIsASimpleChange) {
  Configuration c = Configuration::Of({1, 2, 3});
  auto add = ApplyConfChange(c, Change({{Type::kAddLearner, 4}}));
  ASSERT_TRUE(add.ok()) << add.status();
  EXPECT_EQ(*add, Configuration::Of({1, 2, 3}, {4}));
  auto promote = ApplyConfChange(*add, Change({{Type::kAddVoter, 4}}));
  ASSERT_TRUE(promote.ok());
  EXPECT_EQ(*promote, Configuration::Of({1, 2, 3, 4}));
  auto remove = ApplyConfChange(*promote, Change({{Type::kRemove, 1}}));
  ASSERT_TRUE(remove.ok());
  EXPECT_EQ(*remove, Configuration::Of({2, 3, 4}));
  auto demote = ApplyConfChange(*remove, Change({{Type::kAddLearner, 2}}));
  ASSERT_TRUE(demote.ok());
  EXPECT_EQ(*demote, Configuration::Of({3, 4}, {2}));
  // Learners come and go freely alongside one voter change.
  auto both = ApplyConfChange(*demote, Change({{Type::kRemove, 2}, {Type::kAddVoter, 7}}));
  ASSERT_TRUE(both.ok());
  EXPECT_FALSE(both->joint());
  EXPECT_EQ(*both, Configuration::Of({3, 4, 7}));
}

TEST(ConfChangeApply, SeveralVotersAtOnceGoThroughAJointConfiguration) {
  Configuration c = Configuration::Of({1, 2, 3});
  auto replace = ApplyConfChange(c, Change({{Type::kAddVoter, 4}, {Type::kRemove, 1}}));
  ASSERT_TRUE(replace.ok()) << replace.status();
  EXPECT_TRUE(replace->joint());
  EXPECT_TRUE(replace->auto_leave);
  EXPECT_EQ(replace->voters, (std::vector<NodeId>{2, 3, 4}));
  EXPECT_EQ(replace->outgoing, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_FALSE(ApplyConfChange(*replace, Change({{Type::kAddVoter, 9}})).ok())
      << "only leaving is allowed while joint";
  auto left = ApplyConfChange(*replace, ConfChange{});
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(*left, Configuration::Of({2, 3, 4}));
  EXPECT_FALSE(ApplyConfChange(*left, ConfChange{}).ok()) << "leaving when not joint";
}

TEST(ConfChangeApply, RefusedChanges) {
  Configuration c = Configuration::Of({1});
  EXPECT_FALSE(ApplyConfChange(c, Change({{Type::kRemove, 1}})).ok()) << "last voter";
  EXPECT_FALSE(ApplyConfChange(c, Change({{Type::kAddLearner, 1}})).ok()) << "last voter demoted";
  EXPECT_FALSE(ApplyConfChange(c, Change({{Type::kAddVoter, 2}, {Type::kRemove, 2}})).ok())
      << "named twice";
  Configuration three = Configuration::Of({1, 2, 3});
  EXPECT_FALSE(ApplyConfChange(three, Change({{Type::kAddLearner, 1}, {Type::kAddVoter, 5},
                                              {Type::kAddVoter, 6}}))
                   .ok())
      << "a demotion inside a joint change";
  Configuration big = Configuration::Of({1});
  for (NodeId id = 2; id <= kMaxMembers; ++id) big.learners.push_back(id);
  EXPECT_FALSE(ApplyConfChange(big, Change({{Type::kAddLearner, 1000}})).ok()) << "size bound";
}

// Any majority of the configurations a change moves between overlaps (thesis §4.1): checked
// over every simple change of every voter set of up to 5 nodes out of 6.
TEST(ConfChangeApply, SimpleChangesKeepMajoritiesOverlapping) {
  for (uint32_t mask = 1; mask < 64; ++mask) {
    std::vector<NodeId> voters;
    for (NodeId id = 1; id <= 6; ++id) {
      if (mask & (1u << (id - 1))) voters.push_back(id);
    }
    Configuration from = Configuration::Of(voters);
    for (NodeId id = 1; id <= 6; ++id) {
      for (Type t : {Type::kAddVoter, Type::kRemove}) {
        absl::StatusOr<Configuration> to = ApplyConfChange(from, Change({{t, id}}));
        if (!to.ok()) continue;
        ASSERT_FALSE(to->joint());
        // Two disjoint vote sets, one winning in each configuration, must not exist.
        for (uint32_t a = 0; a < 64; ++a) {
          std::map<NodeId, bool> va, vb;
          for (NodeId n = 1; n <= 6; ++n) {
            va[n] = (a >> (n - 1)) & 1;
            vb[n] = !va[n];
          }
          EXPECT_FALSE(from.Tally(va) == VoteResult::kWon && to->Tally(vb) == VoteResult::kWon)
              << from.Describe() << " -> " << to->Describe();
        }
      }
    }
  }
}

}  // namespace
}  // namespace amaters::raft
