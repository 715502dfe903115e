// rapidcheck properties over random message schedules on the in-test network.
//
// Each case draws a cluster size and a schedule of actions (ticks, deliveries in any order,
// drops, duplicates, proposals, reads, crashes that lose unpersisted writes, restarts,
// partitions, transfers). After every action the Raft safety properties of paper Figure 3 are
// checked: election safety, log matching, leader completeness, state-machine safety; committed
// entries never change. Then the faults heal and the cluster must converge (liveness).
//
// A failure prints rapidcheck's seed and the shrunk schedule; replay with
//   ./bazelw test //engine/raft:raft_property_test --test_env=RC_PARAMS="seed=<seed>"
// More cases: --test_env=RC_PARAMS="max_success=2000" (the default run keeps a short slice).
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/raft/testing/harness.h"
#include "gtest/gtest.h"
#include "rapidcheck.h"
#include "rapidcheck/gtest.h"

namespace amaters::raft {
namespace {

using testing::Harness;
using Action = std::tuple<int, int, int>;

class SafetyChecker {
 public:
  // Returns a description of the first violated property, or "".
  std::string Check(Harness& h) {
    if (!h.violations().empty()) return h.violations().front();
    std::vector<NodeId> alive;
    for (NodeId id : h.ids()) {
      if (h.alive(id)) alive.push_back(id);
    }
    // Election safety: at most one leader per term, ever.
    for (NodeId id : alive) {
      Raft& r = h.node(id);
      if (r.role() != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(r.term(), id);
      if (!inserted && it->second != id) {
        return absl::StrCat("election safety: nodes ", it->second, " and ", id,
                            " both leader in term ", r.term());
      }
      if (inserted) {
        // Leader completeness: a new leader holds every entry committed before its election
        // (those below its log's start are in its snapshot, which covers only committed ones).
        for (const auto& [idx, e] : committed_) {
          if (idx <= r.log().snapshot_index()) continue;
          if (idx > r.log().LastIndex() || !(r.log().At(idx) == e)) {
            return absl::StrCat("leader completeness: leader ", id, " of term ", r.term(),
                                " lacks committed entry ", DescribeEntry(e));
          }
        }
      }
    }
    // Committed entries never change; record newly committed ones.
    for (NodeId id : alive) {
      Raft& r = h.node(id);
      for (Index i = r.log().FirstIndex(); i <= r.commit(); ++i) {
        const Entry& e = r.log().At(i);
        auto [it, inserted] = committed_.emplace(i, e);
        if (!inserted && !(it->second == e)) {
          return absl::StrCat("committed entry changed at index ", i, ": ",
                              DescribeEntry(it->second), " then ", DescribeEntry(e), " on node ", id);
        }
      }
    }
    // Log matching: same index and term implies identical prefixes.
    for (size_t a = 0; a < alive.size(); ++a) {
      for (size_t b = a + 1; b < alive.size(); ++b) {
        const RaftLog& la = h.node(alive[a]).log();
        const RaftLog& lb = h.node(alive[b]).log();
        // Compared where both logs still hold entries (snapshots cover the rest).
        const Index first = std::max(la.FirstIndex(), lb.FirstIndex());
        Index hi = std::min(la.LastIndex(), lb.LastIndex());
        Index match = 0;
        for (Index i = hi; i >= first; --i) {
          if (la.At(i).term == lb.At(i).term) {
            match = i;
            break;
          }
        }
        for (Index i = first; i <= match; ++i) {
          if (!(la.At(i) == lb.At(i))) {
            return absl::StrCat("log matching: nodes ", alive[a], " and ", alive[b],
                                " agree at ", match, " but differ at ", i);
          }
        }
      }
    }
    return "";
  }

 private:
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> committed_;
};

void Apply(Harness& h, const Action& act, int* proposals) {
  auto [kind, a, b] = act;
  testing::ApplyScheduleStep(h, kind, a, b, proposals);
}

// The whole property, with optional planted bugs (to prove the checker can fail).
void RunProperty(const Raft::PlantedBugs& bugs) {
  const int n = *rc::gen::element(3, 5);
  const bool pre_vote = *rc::gen::arbitrary<bool>();
  const bool check_quorum = *rc::gen::arbitrary<bool>();
  const uint64_t seed = *rc::gen::inRange<uint64_t>(1, 1000000);
  const int length = *rc::gen::inRange(1, 1500);
  const auto schedule = *rc::gen::container<std::vector<Action>>(
      static_cast<size_t>(length),
      rc::gen::tuple(rc::gen::inRange(0, 100), rc::gen::inRange(0, 64), rc::gen::inRange(0, 4096)));
  RC_TAG(n);

  Harness h(
      n,
      [&](Config& c) {
        c.pre_vote = pre_vote;
        c.check_quorum = check_quorum;
        c.election_ticks = 5;
        c.max_inflight_msgs = 4;
      },
      seed);
  h.set_record_events(false);
  h.SetPlantedBugs(bugs);
  SafetyChecker checker;
  int proposals = 0;
  for (size_t step = 0; step < schedule.size(); ++step) {
    Apply(h, schedule[step], &proposals);
    std::string v = checker.Check(h);
    if (!v.empty()) RC_FAIL(absl::StrCat("after step ", step, ": ", v));
  }
  Index max_commit = 0;
  for (NodeId id : h.ids()) {
    if (h.alive(id)) max_commit = std::max(max_commit, h.node(id).commit());
  }
  RC_CLASSIFY(max_commit > 1, "committed proposals during faults");

  // Liveness: heal everything, restart crashed nodes, persist normally; a leader must emerge
  // and every node must converge on one committed log.
  h.Heal();
  for (NodeId id : h.ids()) {
    if (!h.alive(id)) h.Restart(id);
    h.SetManualPersist(id, false);
  }
  NodeId leader = kNone;
  for (int round = 0; round < 400 && leader == kNone; ++round) {
    for (NodeId id : h.ids()) h.Tick(id, 1);
    h.Stabilize();
    leader = h.Leader();
    if (leader != kNone && !h.Propose(leader, "final").status.ok()) leader = kNone;
  }
  RC_ASSERT(leader != kNone);
  for (int round = 0; round < 50; ++round) {
    for (NodeId id : h.ids()) h.Tick(id, 1);
    h.Stabilize();
    std::string v = checker.Check(h);
    if (!v.empty()) RC_FAIL(absl::StrCat("during liveness phase: ", v));
  }
  leader = h.Leader();
  RC_ASSERT(leader != kNone);
  const Index last = h.node(leader).log().LastIndex();
  for (NodeId id : h.ids()) {
    RC_ASSERT(h.node(id).commit() == last);
    RC_ASSERT(h.node(id).applied() == last);
  }
}

RC_GTEST_PROP(RaftProperties, SafetyUnderRandomSchedulesThenLiveness, ()) {
  RunProperty(Raft::PlantedBugs{});
}

// docs/design.md §4.8: a checker that cannot fail proves nothing. With a planted bug switched on,
// the same property must find a violation.
TEST(RaftProperties, CheckerCatchesPlantedBugs) {
  rc::detail::TestParams params;
  params.seed = 42;  // fixed: this test must be deterministic
  params.maxSuccess = 2000;
  params.disableShrinking = true;
  auto fails = [&](const char* name, const Raft::PlantedBugs& bugs) {
    rc::detail::TestMetadata meta;
    meta.id = name;
    rc::detail::TestResult result =
        rc::detail::checkTestable([&] { RunProperty(bugs); }, meta, params);
    return result.template is<rc::detail::FailureResult>();
  };
  Raft::PlantedBugs vote_twice;
  vote_twice.vote_twice = true;
  EXPECT_TRUE(fails("vote twice", vote_twice)) << "granting a second vote per term went unnoticed";
  // commit_old_terms (Figure 8) needs a precise crash/election sequence that these short
  // schedules rarely produce; RaftCommit.PlantedOldTermCommitIsCaught covers it
  // deterministically; the simulator catches it at scale (sim/sim_test.cc).
}

}  // namespace
}  // namespace amaters::raft
