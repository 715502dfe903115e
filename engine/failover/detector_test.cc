#include "engine/failover/detector.h"

#include <memory>
#include <utility>
#include <vector>

#include "engine/alerts/event.h"
#include "gtest/gtest.h"

namespace amaters::failover {
namespace {

using alerts::Event;
using alerts::LeaderChanged;
using alerts::NodeFailed;
using alerts::NodeRecovered;
using alerts::QuorumLost;
using alerts::QuorumRestored;
using alerts::SlowReplication;
using alerts::SlowReplicationCleared;
using alerts::TimedEvent;
using raft::NodeId;
using raft::Role;
using Events = std::vector<Event>;
using Timed = std::vector<TimedEvent>;

// Defaults: heartbeat 100 ms, 3 rounds -> failed after 300 ms of silence, election timeout
// 300 ms, slow replication at 1000 entries.
FailureDetector Make(NodeId self, std::vector<NodeId> voters, uint64_t now_ms = 0,
                     FailoverConfig config = {}) {
  absl::StatusOr<FailureDetector> d = FailureDetector::Create(config, self, std::move(voters), now_ms);
  EXPECT_TRUE(d.ok()) << d.status();
  return *std::move(d);
}

RaftView Leader(NodeId self, raft::Term term, raft::Index last_index = 0,
                std::vector<PeerProgress> progress = {}) {
  RaftView v;
  v.self = self;
  v.role = Role::kLeader;
  v.leader = self;
  v.term = term;
  v.last_index = last_index;
  v.progress = std::move(progress);
  return v;
}

RaftView NonLeader(NodeId self, NodeId leader, raft::Term term, Role role = Role::kFollower) {
  RaftView v;
  v.self = self;
  v.role = role;
  v.leader = leader;
  v.term = term;
  return v;
}

// A driver ticks at least once per heartbeat interval (100 ms here); a longer gap is a stall
// (detector.h). Ticks with `view` every 100 ms after `from_ms`, strictly before `to_ms`.
void TickBetween(FailureDetector& d, uint64_t from_ms, uint64_t to_ms, const RaftView& view) {
  for (uint64_t t = from_ms + 100; t < to_ms; t += 100) d.Tick(t, view);
}

Events Take(FailureDetector& d) {
  Events out;
  for (TimedEvent& e : d.TakeEvents()) out.push_back(std::move(e.event));
  return out;
}

// --- Peer failure on the leader ----------------------------------------------------------------

TEST(FailureDetector, LeaderMarksASilentFollowerFailedAfterExactlyNRoundsNotNMinusOne) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  for (uint64_t t = 100; t <= 1000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    d.Tick(t, Leader(1, 1));
    // Node 3 was silent since 0: failed after 3 rounds (300 ms), not after 2.
    if (t < 300) {
      EXPECT_TRUE(Take(d).empty()) << t;
      EXPECT_FALSE(d.IsFailed(3));
    } else if (t == 300) {
      EXPECT_EQ(d.TakeEvents(), (Timed{{300, NodeFailed{3}}}));
      EXPECT_TRUE(d.IsFailed(3));
    } else {
      EXPECT_TRUE(Take(d).empty()) << "failed once, not every round: " << t;
    }
  }
  EXPECT_FALSE(d.IsFailed(2));
  EXPECT_EQ(d.failed_peers(), std::vector<NodeId>{3});
}

TEST(FailureDetector, TheBoundaryIsMeasuredFromTheLastMessageToTheMillisecond) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  ASSERT_TRUE(d.OnHeardFrom(2, 50).ok());
  for (uint64_t t = 50; t <= 1000; t += 50) {
    ASSERT_TRUE(d.OnHeardFrom(3, t).ok());  // keeps 3 alive throughout
    d.Tick(t, Leader(1, 1));
  }
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}}));  // 950 ms silent
  FailureDetector e = Make(1, {1, 2, 3});
  e.Tick(0, Leader(1, 1));
  ASSERT_TRUE(e.OnHeardFrom(2, 50).ok());
  ASSERT_TRUE(e.OnHeardFrom(3, 50).ok());
  TickBetween(e, 0, 349, Leader(1, 1));
  e.Tick(349, Leader(1, 1));
  EXPECT_TRUE(Take(e).empty());
  e.Tick(350, Leader(1, 1));
  EXPECT_EQ(Take(e), (Events{NodeFailed{2}, NodeFailed{3}, QuorumLost{3, 1}}));
}

// ---- Configurations with learners and membership changes (docs/membership.md) ---------------

TEST(FailureDetector, ALearnersFailureIsReportedButNeverCostsTheQuorum) {
  absl::StatusOr<FailureDetector> made =
      FailureDetector::Create({}, 1, raft::Configuration::Of({1, 2, 3}, {4, 5}), 0);
  ASSERT_TRUE(made.ok()) << made.status();
  FailureDetector& d = *made;
  EXPECT_EQ(d.cluster_size(), 3u) << "learners are not counted";
  for (uint64_t t = 0; t <= 400; t += 50) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  EXPECT_EQ(Take(d), (Events{NodeFailed{3, false}, NodeFailed{4, true}, NodeFailed{5, true}}))
      << "two of three voters are reachable: no quorum loss";
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, FollowsConfigurationChanges) {
  FailureDetector d = Make(1, {1, 2, 3});
  for (uint64_t t = 0; t <= 400; t += 50) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
  EXPECT_FALSE(d.OnHeardFrom(4, 400).ok()) << "not a member yet";
  // 3 is replaced by 4 (joint first): 4 gets a full failure timeout of grace, 3 is forgotten.
  raft::Configuration joint;
  joint.voters = {1, 2, 4};
  joint.outgoing = {1, 2, 3};
  d.SetConfiguration(joint, 400);
  ASSERT_TRUE(d.OnHeardFrom(2, 450).ok());
  d.Tick(450, Leader(1, 1));
  EXPECT_TRUE(Take(d).empty()) << "4 is new";
  d.SetConfiguration(raft::Configuration::Of({1, 2, 4}), 500);
  EXPECT_EQ(d.peers().size(), 2u);
  EXPECT_FALSE(d.IsFailed(3)) << "removed: forgotten";
  for (uint64_t t = 550; t <= 1000; t += 50) {
    ASSERT_TRUE(d.OnHeardFrom(4, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}})) << "2 fell silent at 450";
  EXPECT_FALSE(d.quorum_lost()) << "1 and 4 are a majority of {1, 2, 4}";
}

TEST(FailureDetector, ANodeThatStopsBeingAVoterEndsItsQuorumEpisode) {
  FailureDetector d = Make(1, {1, 2, 3});
  TickBetween(d, 0, 400, Leader(1, 1));
  d.Tick(400, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}, NodeFailed{3}, QuorumLost{3, 1}}));
  d.SetConfiguration(raft::Configuration::Of({2, 3}, {1}), 450);  // demoted to learner
  d.Tick(450, NonLeader(1, raft::kNone, 2));
  EXPECT_EQ(Take(d), (Events{QuorumRestored{2, 0}})) << "so that quorum_lost clears";
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, AJointConfigurationNeedsAMajorityOfBothSets) {
  raft::Configuration joint;
  joint.voters = {1, 4, 5};
  joint.outgoing = {1, 2, 3};
  absl::StatusOr<FailureDetector> made = FailureDetector::Create({}, 1, joint, 0);
  ASSERT_TRUE(made.ok()) << made.status();
  FailureDetector& d = *made;
  for (uint64_t t = 0; t <= 400; t += 50) {
    ASSERT_TRUE(d.OnHeardFrom(4, t).ok());
    ASSERT_TRUE(d.OnHeardFrom(5, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  EXPECT_TRUE(d.quorum_lost()) << "the new set is all there, the old one is not";
}

TEST(FailureDetector, RecoveredOnTheNextMessageAndFailedAgainAfterTheNextSilence) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  TickBetween(d, 0, 300, Leader(1, 1));
  ASSERT_TRUE(d.OnHeardFrom(2, 300).ok());
  d.Tick(300, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
  d.Tick(400, Leader(1, 1));
  ASSERT_TRUE(d.OnHeardFrom(3, 420).ok());
  EXPECT_EQ(d.TakeEvents(), (Timed{{420, NodeRecovered{3}}}));
  EXPECT_FALSE(d.IsFailed(3));
  ASSERT_TRUE(d.OnHeardFrom(3, 430).ok());
  EXPECT_TRUE(Take(d).empty()) << "recovered once";
  for (uint64_t t = 500; t <= 700; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  d.Tick(729, Leader(1, 1));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(730, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
}

TEST(FailureDetector, ANewLeaderJudgesEveryFollowerFromItsElection) {
  // Node 2 was a follower of 1 and never heard from 3 (followers do not talk to each other).
  FailureDetector d = Make(2, {1, 2, 3});
  for (uint64_t t = 0; t <= 900; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(1, t).ok());
    d.Tick(t, NonLeader(2, 1, 1));
  }
  d.Tick(1000, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  d.Tick(1100, Leader(2, 2));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 2, 2}}));
  // The old leader was judged all along: silent since 900, failed at 1200.
  d.Tick(1199, Leader(2, 2));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(1200, Leader(2, 2));
  EXPECT_EQ(Take(d), (Events{NodeFailed{1}}));
  // Node 3 was never due to talk to node 2 before: its silence counts from the election.
  d.Tick(1300, Leader(2, 2));
  d.Tick(1399, Leader(2, 2));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(1400, Leader(2, 2));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}, QuorumLost{3, 1}}));
}

// --- Followers -----------------------------------------------------------------------------

TEST(FailureDetector, AFollowerNeverReportsAnotherFollower) {
  FailureDetector d = Make(2, {1, 2, 3, 4, 5});
  for (uint64_t t = 0; t <= 10000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(1, t).ok());
    d.Tick(t, NonLeader(2, 1, 1));
  }
  EXPECT_TRUE(Take(d).empty());
  for (const PeerState& p : d.peers()) {
    EXPECT_EQ(p.judged, p.id == 1) << p.id;
    EXPECT_FALSE(p.failed) << p.id;
  }
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, FollowersSeeTheLeaderFail) {
  FailureDetector d = Make(2, {1, 2, 3});
  for (uint64_t t = 0; t <= 1000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(1, t).ok());
    d.Tick(t, NonLeader(2, 1, 1));
  }
  EXPECT_TRUE(Take(d).empty());
  // The leader crashes after its message at 1000.
  d.Tick(1100, NonLeader(2, 1, 1));
  d.Tick(1200, NonLeader(2, 1, 1));
  d.Tick(1299, NonLeader(2, 1, 1));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(1300, NonLeader(2, 1, 1));
  EXPECT_EQ(d.TakeEvents(), (Timed{{1300, NodeFailed{1}}}));
  EXPECT_EQ(d.failed_peers(), std::vector<NodeId>{1});
  // It restarts and sends again: recovered.
  ASSERT_TRUE(d.OnHeardFrom(1, 1500).ok());
  EXPECT_EQ(Take(d), (Events{NodeRecovered{1}}));
}

TEST(FailureDetector, TheLastKnownLeaderIsStillJudgedDuringTheElection) {
  FailureDetector d = Make(2, {1, 2, 3});
  ASSERT_TRUE(d.OnHeardFrom(1, 0).ok());
  d.Tick(0, NonLeader(2, 1, 1));
  d.Tick(100, NonLeader(2, 1, 1));
  // Raft's timer fired: pre-candidate, no leader known (Raft clears it), 1 still judged.
  d.Tick(200, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  d.Tick(250, NonLeader(2, raft::kNone, 2, Role::kCandidate));
  ASSERT_TRUE(d.OnHeardFrom(3, 260).ok());  // a vote response
  d.Tick(300, NonLeader(2, raft::kNone, 2, Role::kCandidate));
  EXPECT_EQ(Take(d), (Events{NodeFailed{1}}));
  EXPECT_EQ(d.known_leader(), 1u);
}

TEST(FailureDetector, ADifferentLeaderDropsTheOldLeadersMarkSilently) {
  FailureDetector d = Make(2, {1, 2, 3});
  d.Tick(0, NonLeader(2, 1, 1));
  TickBetween(d, 0, 300, NonLeader(2, 1, 1));
  d.Tick(300, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_EQ(Take(d), (Events{NodeFailed{1}}));
  ASSERT_TRUE(d.OnHeardFrom(3, 350).ok());
  d.Tick(350, NonLeader(2, 3, 2));
  // No NodeRecovered{1}: nothing was heard from 1; it just is not ours to judge any more.
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 3, 2}}));
  EXPECT_FALSE(d.IsFailed(1));
  ASSERT_TRUE(d.OnHeardFrom(1, 400).ok());
  EXPECT_TRUE(Take(d).empty());
  // The new leader is judged from now on.
  TickBetween(d, 350, 649, NonLeader(2, 3, 2));
  d.Tick(649, NonLeader(2, 3, 2));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(650, NonLeader(2, 3, 2));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
}

TEST(FailureDetector, LosingLeadershipDropsFollowerMarksSilently) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  TickBetween(d, 0, 250, Leader(1, 1));
  ASSERT_TRUE(d.OnHeardFrom(2, 250).ok());
  d.Tick(300, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
  ASSERT_TRUE(d.OnHeardFrom(2, 350).ok());
  d.Tick(350, NonLeader(1, 2, 2));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 2, 2}}));
  EXPECT_TRUE(d.failed_peers().empty());
  for (const PeerState& p : d.peers()) EXPECT_EQ(p.judged, p.id == 2) << p.id;
}

// --- Leader changes ------------------------------------------------------------------------

TEST(FailureDetector, LeaderChangedOnlyForADifferentKnownLeader) {
  FailureDetector d = Make(3, {1, 2, 3});
  d.Tick(0, NonLeader(3, raft::kNone, 0));
  d.Tick(10, NonLeader(3, 1, 1));
  EXPECT_TRUE(Take(d).empty()) << "learning the first leader is not a change";
  d.Tick(20, NonLeader(3, raft::kNone, 1, Role::kPreCandidate));
  d.Tick(30, NonLeader(3, 1, 1));
  EXPECT_TRUE(Take(d).empty()) << "the same leader after a gap";
  d.Tick(40, NonLeader(3, raft::kNone, 2, Role::kCandidate));
  d.Tick(50, NonLeader(3, 1, 3));
  EXPECT_TRUE(Take(d).empty()) << "the same node re-elected in a new term";
  d.Tick(60, NonLeader(3, 2, 4));
  EXPECT_EQ(d.TakeEvents(), (Timed{{60, LeaderChanged{1, 2, 4}}}));
  d.Tick(70, Leader(3, 5));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{2, 3, 5}}));
  d.Tick(80, NonLeader(3, 1, 6));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{3, 1, 6}}));
  EXPECT_EQ(d.known_leader(), 1u);
}

// --- Quorum ----------------------------------------------------------------------------------

TEST(FailureDetector, QuorumLostAndRestoredOnTheLeader) {
  FailureDetector d = Make(1, {1, 2, 3, 4, 5});
  d.Tick(0, Leader(1, 1));
  TickBetween(d, 0, 250, Leader(1, 1));
  ASSERT_TRUE(d.OnHeardFrom(2, 250).ok());
  ASSERT_TRUE(d.OnHeardFrom(3, 250).ok());
  d.Tick(300, Leader(1, 1));
  // 4 and 5 failed: 3 of 5 reachable, still a quorum.
  EXPECT_EQ(Take(d), (Events{NodeFailed{4}, NodeFailed{5}}));
  EXPECT_FALSE(d.quorum_lost());
  TickBetween(d, 300, 550, Leader(1, 1));
  d.Tick(550, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}, NodeFailed{3}, QuorumLost{5, 1}}));
  EXPECT_TRUE(d.quorum_lost());
  d.Tick(600, Leader(1, 1));
  EXPECT_TRUE(Take(d).empty()) << "once per episode";
  ASSERT_TRUE(d.OnHeardFrom(2, 610).ok());
  d.Tick(610, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeRecovered{2}}));  // 2 of 5: still lost
  ASSERT_TRUE(d.OnHeardFrom(4, 620).ok());
  d.Tick(620, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeRecovered{4}, QuorumRestored{5, 3}}));
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, AnIsolatedNonLeaderLosesQuorumAfterAnElectionTimeoutWithoutALeader) {
  FailureDetector d = Make(2, {1, 2, 3});
  for (uint64_t t = 0; t <= 1000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(1, t).ok());
    d.Tick(t, NonLeader(2, 1, 1));
  }
  // Cut off at 1000. Raft's timer fires at 1200; from then no leader is known.
  d.Tick(1100, NonLeader(2, 1, 1));
  d.Tick(1200, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  d.Tick(1300, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_EQ(Take(d), (Events{NodeFailed{1}}));
  // LeaderlessQuorumLossMs = 2 * 300 + 3 * 100 = 900 ms after the leader was lost at 1200.
  TickBetween(d, 1300, 2099, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  d.Tick(2099, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_TRUE(Take(d).empty()) << "leaderless for 899 ms only";
  d.Tick(2100, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_EQ(d.TakeEvents(), (Timed{{2100, QuorumLost{3, 1}}}));
  d.Tick(5000, NonLeader(2, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_TRUE(Take(d).empty()) << "once per episode";
  // The partition heals: the leader's heartbeat arrives.
  ASSERT_TRUE(d.OnHeardFrom(1, 5100).ok());
  d.Tick(5100, NonLeader(2, 1, 1));
  EXPECT_EQ(Take(d), (Events{NodeRecovered{1}, QuorumRestored{3, 2}}));
}

TEST(FailureDetector, ANodeWithoutALeaderButWithAReachableQuorumHasNotLostIt) {
  // A long election in which vote responses keep arriving from 3.
  FailureDetector d = Make(2, {1, 2, 3});
  for (uint64_t t = 0; t <= 2000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(3, t).ok());
    d.Tick(t, NonLeader(2, raft::kNone, t / 100, Role::kCandidate));
  }
  EXPECT_TRUE(Take(d).empty());
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, ANodeThatHasKnownNoLeaderSinceStartIsWaitingNotCutOff) {
  // A restarted follower whose peers have not dialled it back yet hears nothing, exactly like
  // a node started alone: neither has evidence that the cluster lost its quorum.
  FailureDetector d = Make(2, {1, 2, 3}, /*now_ms=*/1000);
  for (uint64_t t = 1000; t <= 10000; t += 100) {
    d.Tick(t, NonLeader(2, raft::kNone, t / 1000, Role::kPreCandidate));
  }
  EXPECT_TRUE(Take(d).empty());
  EXPECT_FALSE(d.quorum_lost());
  // Once it has known a leader, losing it is judged as usual.
  ASSERT_TRUE(d.OnHeardFrom(1, 10000).ok());
  d.Tick(10000, NonLeader(2, 1, 10));
  for (uint64_t t = 10100; t <= 11300; t += 100) d.Tick(t, NonLeader(2, raft::kNone, 10));
  EXPECT_EQ(Take(d), (Events{NodeFailed{1}, QuorumLost{3, 1}}));
}

// --- Stalls: silence counts only while the node runs -------------------------------------------

TEST(FailureDetector, ALeaderResumingFromAPauseAsksForAFreshRoundBeforeJudging) {
  FailureDetector d = Make(1, {1, 2, 3});
  for (uint64_t t = 0; t <= 1000; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    ASSERT_TRUE(d.OnHeardFrom(3, t).ok());
    d.Tick(t, Leader(1, 1));
  }
  // SIGSTOP for 3 s: the first tick after it sees 3 s of real silence, 100 ms of it awake.
  // Then the resumed process works through its backlog for 250 ms before it reads a message:
  // silence counts from the end of the stall, so that is still within a failure timeout.
  d.Tick(4000, Leader(1, 1));
  d.Tick(4100, Leader(1, 1));
  d.Tick(4200, Leader(1, 1));
  d.Tick(4250, Leader(1, 1));
  EXPECT_TRUE(Take(d).empty());
  EXPECT_FALSE(d.quorum_lost());
  EXPECT_EQ(d.stalls(), 1u);
  EXPECT_EQ(d.stalled_ms(), 2900u);
  // The followers answer (or the others elected a new leader and this one steps down):
  // nothing was reported either way.
  ASSERT_TRUE(d.OnHeardFrom(2, 4260).ok());
  d.Tick(4270, NonLeader(1, 2, 2));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 2, 2}}));
  EXPECT_FALSE(d.quorum_lost());
}

TEST(FailureDetector, AfterAPauseRealSilenceIsStillFoundOneFailureTimeoutLater) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  d.Tick(3000, Leader(1, 1));  // paused; nobody was heard before either
  EXPECT_TRUE(Take(d).empty());
  // A fresh round after the pause: silence counts from its end, failed 300 ms later.
  d.Tick(3100, Leader(1, 1));
  d.Tick(3200, Leader(1, 1));
  d.Tick(3299, Leader(1, 1));
  EXPECT_TRUE(Take(d).empty());
  d.Tick(3300, Leader(1, 1));
  EXPECT_EQ(d.TakeEvents(), (Timed{{3300, NodeFailed{2}}, {3300, NodeFailed{3}},
                                   {3300, QuorumLost{3, 1}}}));
}

TEST(FailureDetector, AFollowerResumingFromAPauseDoesNotReportItsLeader) {
  FailureDetector d = Make(2, {1, 2, 3});
  for (uint64_t t = 0; t <= 500; t += 100) {
    ASSERT_TRUE(d.OnHeardFrom(1, t).ok());
    d.Tick(t, NonLeader(2, 1, 1));
  }
  d.Tick(2500, NonLeader(2, 1, 1));
  EXPECT_TRUE(Take(d).empty());
  ASSERT_TRUE(d.OnHeardFrom(1, 2510).ok());
  d.Tick(2600, NonLeader(2, 1, 1));
  EXPECT_TRUE(Take(d).empty());
  EXPECT_FALSE(d.IsFailed(1));
}

TEST(FailureDetector, GapsUpToAHeartbeatIntervalAreNotStalls) {
  FailureDetector d = Make(1, {1, 2, 3});
  for (uint64_t t = 0; t <= 300; t += 100) d.Tick(t, Leader(1, 1));
  EXPECT_EQ(d.stalls(), 0u);
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}, NodeFailed{3}, QuorumLost{3, 1}}));
}

TEST(FailureDetector, ALeaderThatStepsDownWithoutQuorumStaysInTheEpisode) {
  FailureDetector d = Make(1, {1, 2, 3});
  for (uint64_t t = 0; t <= 300; t += 100) d.Tick(t, Leader(1, 1));
  EXPECT_EQ(Take(d), (Events{NodeFailed{2}, NodeFailed{3}, QuorumLost{3, 1}}));
  // Check-quorum: Raft steps down. No leader known, nobody heard: no QuorumRestored.
  d.Tick(400, NonLeader(1, raft::kNone, 1));
  d.Tick(500, NonLeader(1, raft::kNone, 1, Role::kPreCandidate));
  EXPECT_TRUE(Take(d).empty());
  EXPECT_TRUE(d.quorum_lost());
  // The majority elected 2; the partition heals.
  ASSERT_TRUE(d.OnHeardFrom(2, 900).ok());
  d.Tick(900, NonLeader(1, 2, 2));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 2, 2}, QuorumRestored{3, 2}}));
}

TEST(FailureDetector, ASingleNodeClusterNeverReportsAnything) {
  FailureDetector d = Make(1, {1});
  d.Tick(0, NonLeader(1, raft::kNone, 0));
  for (uint64_t t = 100; t <= 100000; t += 100) d.Tick(t, Leader(1, 1, t));
  EXPECT_TRUE(Take(d).empty());
  EXPECT_EQ(d.cluster_size(), 1u);
  EXPECT_EQ(d.quorum(), 1u);
  EXPECT_FALSE(d.quorum_lost());
}

// --- Slow replication ------------------------------------------------------------------------

TEST(FailureDetector, SlowReplicationSetAtTheThresholdAndClearedAtHalf) {
  FailureDetector d = Make(1, {1, 2, 3});
  auto tick = [&](uint64_t t, raft::Index last, raft::Index match2) {
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    ASSERT_TRUE(d.OnHeardFrom(3, t).ok());
    d.Tick(t, Leader(1, 1, last, {{2, match2}, {3, last}}));
  };
  tick(0, 5000, 0);
  tick(100, 5000, 0);
  tick(200, 5000, 0);
  tick(299, 5000, 0);
  EXPECT_TRUE(Take(d).empty()) << "a new leader's progress is not judged for one failure timeout";
  tick(300, 5000, 4001);  // lag 999
  EXPECT_TRUE(Take(d).empty());
  tick(400, 5000, 4000);  // lag 1000
  EXPECT_EQ(d.TakeEvents(), (Timed{{400, SlowReplication{2, 1000}}}));
  tick(500, 9000, 4000);  // lag 5000: still the same episode
  EXPECT_TRUE(Take(d).empty());
  tick(600, 9000, 8499);  // lag 501
  EXPECT_TRUE(Take(d).empty()) << "hysteresis: cleared only at <= threshold / 2";
  tick(700, 9000, 8500);  // lag 500
  EXPECT_EQ(Take(d), (Events{SlowReplicationCleared{2, 500}}));
  tick(800, 10000, 8500);  // lag 1500: a new episode
  EXPECT_EQ(Take(d), (Events{SlowReplication{2, 1500}}));
  bool slow = false;
  for (const PeerState& p : d.peers()) slow = slow || (p.id == 2 && p.slow);
  EXPECT_TRUE(slow);
}

TEST(FailureDetector, AFailedFollowerIsNotAlsoReportedSlow) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1, 10, {{2, 10}, {3, 10}}));
  TickBetween(d, 0, 300, Leader(1, 1, 10, {{2, 10}, {3, 10}}));
  ASSERT_TRUE(d.OnHeardFrom(2, 300).ok());
  d.Tick(300, Leader(1, 1, 5000, {{2, 5000}, {3, 10}}));
  EXPECT_EQ(Take(d), (Events{NodeFailed{3}}));
  // Back, far behind: now it is slow.
  ASSERT_TRUE(d.OnHeardFrom(2, 400).ok());
  ASSERT_TRUE(d.OnHeardFrom(3, 400).ok());
  d.Tick(400, Leader(1, 1, 5000, {{2, 5000}, {3, 10}}));
  EXPECT_EQ(Take(d), (Events{NodeRecovered{3}, SlowReplication{3, 4990}}));
}

TEST(FailureDetector, SlowReplicationIsALeaderOnlyJudgmentDroppedOnStepDown) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1, 0, {{2, 0}, {3, 0}}));
  TickBetween(d, 0, 300, Leader(1, 1, 0, {{2, 0}, {3, 0}}));
  ASSERT_TRUE(d.OnHeardFrom(2, 300).ok());
  ASSERT_TRUE(d.OnHeardFrom(3, 300).ok());
  d.Tick(300, Leader(1, 1, 2000, {{2, 0}, {3, 2000}}));
  EXPECT_EQ(Take(d), (Events{SlowReplication{2, 2000}}));
  ASSERT_TRUE(d.OnHeardFrom(3, 350).ok());
  d.Tick(350, NonLeader(1, 3, 2));
  EXPECT_EQ(Take(d), (Events{LeaderChanged{1, 3, 2}}));
  for (const PeerState& p : d.peers()) EXPECT_FALSE(p.slow) << p.id;
}

// --- Boundaries --------------------------------------------------------------------------------

TEST(FailureDetector, CreateValidates) {
  FailoverConfig bad;
  bad.max_consecutive_failures = 0;
  EXPECT_EQ(FailureDetector::Create(bad, 1, {1, 2, 3}, 0).status().message(),
            "[cluster] max_consecutive_failures = 0: must be in 1..1000");
  EXPECT_FALSE(FailureDetector::Create({}, 0, {1, 2, 3}, 0).ok());
  EXPECT_FALSE(FailureDetector::Create({}, 4, {1, 2, 3}, 0).ok());
  EXPECT_FALSE(FailureDetector::Create({}, 1, {1, 2, 2}, 0).ok());
  EXPECT_FALSE(FailureDetector::Create({}, 1, {0, 1, 2}, 0).ok());
  std::vector<NodeId> many;
  for (NodeId id = 1; id <= FailureDetector::kMaxVoters + 1; ++id) many.push_back(id);
  EXPECT_FALSE(FailureDetector::Create({}, 1, many, 0).ok());
  many.pop_back();
  EXPECT_TRUE(FailureDetector::Create({}, 1, many, 0).ok());
}

TEST(FailureDetector, HearingFromSelfOrAStrangerIsRejectedAndChangesNothing) {
  FailureDetector d = Make(1, {1, 2, 3});
  EXPECT_EQ(d.OnHeardFrom(1, 10).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.OnHeardFrom(9, 10).code(), absl::StatusCode::kInvalidArgument);
  for (const PeerState& p : d.peers()) EXPECT_FALSE(p.last_heard_ms.has_value());
  EXPECT_TRUE(d.OnHeardFrom(2, 10).ok());
  EXPECT_EQ(d.peers()[0].last_heard_ms, std::optional<uint64_t>(10));
}

TEST(FailureDetector, PendingEventsAreBounded) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(0, Leader(1, 1));
  uint64_t t = 0;
  // Each cycle: 3 fails (NodeFailed), then recovers (NodeRecovered).
  const size_t cycles = FailureDetector::kMaxPendingEvents;
  for (size_t i = 0; i < cycles; ++i) {
    TickBetween(d, t, t + 300, Leader(1, 1));
    t += 300;
    ASSERT_TRUE(d.OnHeardFrom(2, t).ok());
    d.Tick(t, Leader(1, 1));
    ASSERT_TRUE(d.OnHeardFrom(3, t).ok());
  }
  EXPECT_EQ(d.dropped_events(), 2 * cycles - FailureDetector::kMaxPendingEvents);
  Timed events = d.TakeEvents();
  ASSERT_EQ(events.size(), FailureDetector::kMaxPendingEvents);
  EXPECT_EQ(events.back(), (TimedEvent{t, NodeRecovered{3}}));
  EXPECT_FALSE(d.HasEvents());
}

TEST(FailureDetectorDeathTest, InvariantsOnTheInputs) {
  FailureDetector d = Make(1, {1, 2, 3});
  d.Tick(100, Leader(1, 2));
  EXPECT_DEATH(d.Tick(99, Leader(1, 2)), "time went backwards: 100 -> 99");
  EXPECT_DEATH(d.Tick(100, Leader(2, 2)), "view of another node");
  EXPECT_DEATH(d.Tick(100, Leader(1, 1)), "term went backwards: 2 -> 1");
  EXPECT_DEATH(d.Tick(100, NonLeader(1, 1, 2)), "names itself as leader");
  EXPECT_DEATH(d.Tick(100, Leader(1, 2, 5, {{9, 0}})), "progress for unknown peer 9");
  RaftView follower_with_progress = NonLeader(1, 2, 2);
  follower_with_progress.progress = {{2, 0}};
  EXPECT_DEATH(d.Tick(100, follower_with_progress), "progress in the view of a follower");
  EXPECT_DEATH(d.OnHeardFrom(2, 50).IgnoreError(), "time went backwards");
}

// --- ViewOf ------------------------------------------------------------------------------------

TEST(ViewOf, ReflectsRaft) {
  raft::Config c;
  c.id = 1;
  c.voters = {1, 2, 3};
  absl::StatusOr<std::unique_ptr<raft::Raft>> r = raft::Raft::Create(c, raft::RestoredState{});
  ASSERT_TRUE(r.ok()) << r.status();
  RaftView v = ViewOf(**r);
  EXPECT_EQ(v.self, 1u);
  EXPECT_EQ(v.role, Role::kFollower);
  EXPECT_EQ(v.leader, raft::kNone);
  EXPECT_TRUE(v.progress.empty());

  raft::Config single;
  single.id = 1;
  single.voters = {1};
  absl::StatusOr<std::unique_ptr<raft::Raft>> s = raft::Raft::Create(single, raft::RestoredState{});
  ASSERT_TRUE(s.ok()) << s.status();
  (*s)->Campaign();
  RaftView l = ViewOf(**s);
  EXPECT_EQ(l.role, Role::kLeader);
  EXPECT_EQ(l.leader, 1u);
  EXPECT_EQ(l.term, 1u);
  EXPECT_EQ(l.last_index, 1u);  // the new leader's no-op
  EXPECT_TRUE(l.progress.empty());
}

}  // namespace
}  // namespace amaters::failover
