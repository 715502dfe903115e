#include "engine/node/requests.h"

#include <memory>
#include <string>
#include <vector>

#include "engine/node/timing.h"
#include "engine/wal/disk.h"
#include "engine/wal/sim_disk.h"
#include "gtest/gtest.h"

namespace amaters::node {
namespace {

using raft::NodeId;

// One node (id 1) of `voters`, driven through ClientRequests as a driver does: every effect is
// routed first; messages are recorded, never delivered.
class Driver {
 public:
  Driver(std::vector<NodeId> voters, ClientRequestsConfig rc = {}) : requests_(rc) {
    absl::StatusOr<wal::ReplayResult> rec =
        wal::Recover(&disk_, wal::CorruptionPolicy::kRefuseStart);
    EXPECT_TRUE(rec.ok()) << rec.status();
    NodeConfig c;
    c.raft.id = 1;
    c.raft.voters = std::move(voters);
    c.raft.rng_seed = 7;
    c.raft.pre_vote = false;  // Campaign() makes a candidate at once
    c.max_pending_requests = rc.max_requests;
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(c, *rec, 0);
    EXPECT_TRUE(node.ok()) << node.status();
    node_ = *std::move(node);
  }

  void Submit(Token token, ClientRequest::Kind kind, uint64_t deadline_ms) {
    ClientRequest r;
    r.kind = kind;
    r.data = "command";
    r.deadline_ms = deadline_ms;
    requests_.Submit(*node_, token, std::move(r), now_);
    Pump();
  }
  void AdvanceTo(uint64_t now_ms) {
    now_ = now_ms;
    requests_.Advance(*node_, now_);
    Pump();
  }
  void Pump() {
    while (node_->HasEffects()) {
      Effects e = node_->TakeEffects();
      requests_.Route(e, now_);
      EXPECT_TRUE(e.replies.empty());
      for (raft::Message& m : e.messages) sent_.push_back(std::move(m));
      raft::Index last = 0;
      for (const ApplyItem& item : e.apply) {
        if (item.request) applied_.push_back(*item.request);
        last = item.entry.index;
      }
      for (RequestId token : e.reads) reads_.push_back(token);
      if (e.disk) node_->OnDiskDone(e.disk->id, wal::ExecuteBatch(*e.disk, &disk_));
      if (last > 0) node_->OnApplied(last);
    }
    for (Finished& f : requests_.TakeFinished()) finished_.push_back(std::move(f));
  }
  // A heartbeat from `leader` in `term`: the node learns who leads.
  void HeartbeatFrom(NodeId leader, raft::Term term) {
    raft::Message m;
    m.type = raft::MessageType::kHeartbeat;
    m.from = leader;
    m.to = 1;
    m.term = term;
    EXPECT_TRUE(node_->Receive(m).ok());
    Pump();
  }
  size_t ReadIndexRequestsSent() const {
    size_t n = 0;
    for (const raft::Message& m : sent_) n += m.type == raft::MessageType::kReadIndex;
    return n;
  }

  Node& node() { return *node_; }
  ClientRequests& requests() { return requests_; }
  std::vector<Finished> finished_;
  std::vector<Token> applied_, reads_;
  std::vector<raft::Message> sent_;

 private:
  wal::SimDisk disk_;
  std::unique_ptr<Node> node_;
  ClientRequests requests_;
  uint64_t now_ = 0;
};

TEST(ClientRequests, AnAppliedProposalAndAServedReadNameTheDriversTokens) {
  Driver d({1});
  d.node().Campaign();
  d.Pump();
  ASSERT_EQ(d.node().raft().role(), raft::Role::kLeader);
  d.Submit(501, ClientRequest::Kind::kPropose, 5000);
  d.Submit(502, ClientRequest::Kind::kRead, 5000);
  EXPECT_EQ(d.applied_, std::vector<Token>{501});
  EXPECT_EQ(d.reads_, std::vector<Token>{502});
  EXPECT_TRUE(d.finished_.empty());
  EXPECT_EQ(d.requests().size(), 0u);
}

TEST(ClientRequests, WithoutALeaderARequestIsRetriedUntilItsDeadline) {
  ClientRequestsConfig rc;
  rc.retry_delay_ms = 50;
  Driver d({1, 2, 3}, rc);
  d.Submit(7, ClientRequest::Kind::kPropose, 200);
  ASSERT_TRUE(d.finished_.empty()) << d.finished_[0].status;
  ASSERT_EQ(d.requests().NextRetryMs(), std::optional<uint64_t>(50));
  d.AdvanceTo(50);
  d.AdvanceTo(100);
  EXPECT_TRUE(d.finished_.empty());
  d.AdvanceTo(150);  // a retry at 200 would be past the deadline
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].token, 7u);
  EXPECT_EQ(d.finished_[0].status.message(), "etcdserver: no leader");
  EXPECT_FALSE(d.finished_[0].outcome_unknown);  // never reached a log
  EXPECT_EQ(d.requests().size(), 0u);
}

TEST(ClientRequests, AFollowerThatKnowsTheLeaderHandsBackTheHint) {
  Driver d({1, 2, 3});
  d.HeartbeatFrom(2, 1);
  d.Submit(9, ClientRequest::Kind::kPropose, 5000);
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(d.finished_[0].leader, 2u);
}

TEST(ClientRequests, AnUnconfirmedReadIsAskedAgainAndTimesOutAtItsDeadline) {
  ClientRequestsConfig rc;
  rc.read_reask_ms = 300;
  Driver d({1, 2, 3}, rc);
  d.HeartbeatFrom(2, 1);
  d.Submit(11, ClientRequest::Kind::kRead, 1000);
  EXPECT_EQ(d.ReadIndexRequestsSent(), 1u);
  d.AdvanceTo(299);
  EXPECT_EQ(d.ReadIndexRequestsSent(), 1u);
  d.AdvanceTo(300);  // the leader never answered: asked again under a new id
  EXPECT_EQ(d.ReadIndexRequestsSent(), 2u);
  EXPECT_EQ(d.node().pending_requests(), 1u);  // the first id was abandoned
  d.AdvanceTo(1000);
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].status.message(), "etcdserver: request timed out");
  EXPECT_EQ(d.node().pending_requests(), 0u);
}

TEST(ClientRequests, AWriteTimedOutInTheNodeHasAnUnknownOutcome) {
  Driver d({1, 2, 3});
  // Node 1 leads a three-node cluster whose followers never answer: the entry cannot commit.
  d.node().Campaign();
  d.Pump();
  ASSERT_EQ(d.node().raft().role(), raft::Role::kCandidate);
  raft::Message vote;
  vote.type = raft::MessageType::kVoteResp;
  vote.from = 2;
  vote.to = 1;
  vote.term = d.node().raft().term();
  ASSERT_TRUE(d.node().Receive(vote).ok());
  d.Pump();
  ASSERT_EQ(d.node().raft().role(), raft::Role::kLeader);
  d.Submit(21, ClientRequest::Kind::kPropose, 500);
  d.AdvanceTo(500);
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].status.message(), "etcdserver: request timed out");
  EXPECT_TRUE(d.finished_[0].outcome_unknown);
  EXPECT_EQ(d.node().pending_requests(), 0u);
}

TEST(ClientRequests, BeyondMaxRequestsARequestIsRefusedAsTooManyRequests) {
  ClientRequestsConfig rc;
  rc.max_requests = 2;
  Driver d({1, 2, 3}, rc);  // no leader: every request waits for a retry
  d.Submit(1, ClientRequest::Kind::kPropose, 5000);
  d.Submit(2, ClientRequest::Kind::kRead, 5000);
  d.Submit(3, ClientRequest::Kind::kPropose, 5000);
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].token, 3u);
  EXPECT_EQ(d.finished_[0].status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(d.finished_[0].status.message(), "etcdserver: too many requests");
  EXPECT_EQ(d.requests().size(), 2u);
}

ClientRequest AddLearner(NodeId id, uint64_t deadline_ms) {
  ClientRequest r;
  r.kind = ClientRequest::Kind::kConfChange;
  raft::ConfChange change;
  change.steps = {{raft::ConfChangeStep::Type::kAddLearner, id}};
  r.change = change;
  r.deadline_ms = deadline_ms;
  return r;
}

TEST(ClientRequests, AConfigurationChangeIsNotRetriedBehindAPendingOne) {
  Driver d({1});
  d.node().Campaign();
  d.Pump();
  ASSERT_EQ(d.node().raft().role(), raft::Role::kLeader);
  // Both asked before the first is applied: the second meets it pending.
  d.requests().Submit(d.node(), 31, AddLearner(2, 5000), 0);
  d.requests().Submit(d.node(), 32, AddLearner(3, 5000), 0);
  d.Pump();
  EXPECT_EQ(d.applied_, std::vector<Token>{31});
  ASSERT_EQ(d.finished_.size(), 1u);
  EXPECT_EQ(d.finished_[0].token, 32u);
  EXPECT_EQ(d.finished_[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(d.finished_[0].status.message().find("configuration change is pending"),
            absl::string_view::npos);
  EXPECT_FALSE(d.requests().NextRetryMs().has_value());
}

TEST(ClientRequests, AConfigurationChangeWaitsForALeader) {
  Driver d({1, 2, 3});
  d.requests().Submit(d.node(), 41, AddLearner(4, 5000), 0);
  d.Pump();
  EXPECT_TRUE(d.finished_.empty());
  EXPECT_EQ(d.requests().NextRetryMs(), std::optional<uint64_t>(50));
}

TEST(ClientRequests, FailAllFinishesEveryRequestOnce) {
  Driver d({1, 2, 3});
  d.Submit(1, ClientRequest::Kind::kPropose, 5000);
  d.HeartbeatFrom(2, 1);
  d.Submit(2, ClientRequest::Kind::kRead, 5000);
  d.requests().FailAll(absl::UnavailableError("node stopped"));
  d.Pump();
  ASSERT_EQ(d.finished_.size(), 2u);
  EXPECT_EQ(d.requests().size(), 0u);
  d.AdvanceTo(10000);
  EXPECT_EQ(d.finished_.size(), 2u);
}

TEST(ConfigureTiming, TheServersDefaultsTickEveryTenthOfAHeartbeat) {
  NodeConfig c;
  c.max_pending_requests = 123;
  failover::FailoverConfig f;
  f.heartbeat_interval_ms = 100;
  f.election_timeout_ms = 300;
  f.election_jitter_min_ms = 150;
  f.election_jitter_max_ms = 300;
  absl::StatusOr<DriverTiming> t = ConfigureTiming(f, 30000, &c);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->tick_ms, 10u);
  EXPECT_EQ(c.raft.heartbeat_ticks, 10);
  EXPECT_EQ(c.raft.election_ticks, 30);
  EXPECT_EQ(c.raft.election_jitter_min_ticks, 15);
  EXPECT_EQ(c.raft.election_jitter_max_ticks, 30);
  EXPECT_EQ(c.failover.election_timeout_ms, 300u);
  EXPECT_EQ(c.snapshot_transfer.resend_ms, 200u);
  EXPECT_EQ(c.snapshot_transfer.timeout_ms, 30000u);  // the floor
  EXPECT_EQ(t->requests.read_reask_ms, 300u);
  EXPECT_EQ(t->requests.max_requests, 123u);
}

TEST(ConfigureTiming, ShortHeartbeatsAndInvalidTimingsAreHandled) {
  NodeConfig c;
  failover::FailoverConfig f;
  f.heartbeat_interval_ms = 4;
  f.election_timeout_ms = 5;
  f.election_jitter_min_ms = 1;
  f.election_jitter_max_ms = 2;
  absl::StatusOr<DriverTiming> t = ConfigureTiming(f, 0, &c);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->tick_ms, 1u);
  EXPECT_EQ(c.raft.heartbeat_ticks, 4);
  EXPECT_EQ(c.raft.election_ticks, 12);  // at least three heartbeats
  EXPECT_EQ(c.snapshot_transfer.timeout_ms, 100u);
  f.election_jitter_max_ms = 1;
  t = ConfigureTiming(f, 0, &c);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("election_jitter_max_ms"), absl::string_view::npos);
}

}  // namespace
}  // namespace amaters::node
