#include "engine/node/node.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/wal/disk.h"
#include "engine/wal/sim_disk.h"
#include "gtest/gtest.h"

namespace amaters::node {
namespace {

using raft::Index;
using raft::NodeId;

// A replica with a simulated disk and a toy state machine (a list of applied commands whose
// applied index is durable as soon as it is reported).
struct Replica {
  wal::SimDisk disk;
  std::unique_ptr<Node> node;
  // (index, data) of applied normal entries, in order.
  std::vector<std::pair<Index, std::string>> state;
  Index sm_applied = 0;            // the state machine's durable applied index
  std::vector<Index> applied_indexes;  // every index applied since the last start
  std::vector<RequestId> succeeded;
  std::vector<Reply> failed;
  std::vector<RequestId> reads;
  std::vector<alerts::Firing> alerts;
};

class Cluster {
 public:
  explicit Cluster(int n, uint64_t max_pending = 10000) {
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) voters_.push_back(id);
    max_pending_ = max_pending;
    for (NodeId id : voters_) {
      replicas_[id] = std::make_unique<Replica>();
      Start(id);
    }
  }

  void Start(NodeId id) {
    Replica& r = *replicas_[id];
    absl::StatusOr<wal::ReplayResult> rec = wal::Recover(&r.disk, wal::CorruptionPolicy::kRefuseStart);
    ASSERT_TRUE(rec.ok()) << rec.status();
    NodeConfig c;
    c.raft.id = id;
    c.raft.voters = voters_;
    c.raft.rng_seed = id;
    c.wal.segment_size_bytes = 4096;
    c.max_pending_requests = max_pending_;
    // One tick = 10 ms (TickAll); heartbeats every tick.
    c.failover.heartbeat_interval_ms = 10;
    c.failover.election_timeout_ms = 100;
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(c, *rec, r.sm_applied);
    ASSERT_TRUE(node.ok()) << node.status();
    r.node = *std::move(node);
    r.applied_indexes.clear();
    // The toy state machine is rebuilt from the durable prefix (a real one is on disk).
    while (!r.state.empty() && r.state.back().first > r.sm_applied) r.state.pop_back();
  }

  void Crash(NodeId id) {
    Replica& r = *replicas_[id];
    r.node.reset();
    r.disk.Crash(wal::SimDisk::CrashMode::kLoseUnsynced, nullptr);
    down_.insert(id);
  }
  void Restart(NodeId id) {
    down_.erase(id);
    Start(id);
  }

  Replica& at(NodeId id) { return *replicas_[id]; }
  Node& node(NodeId id) { return *replicas_[id]->node; }

  // Runs every node's effects (disk, apply, messages) until nothing is left to do.
  void Pump(int max_rounds = 1000) {
    for (int round = 0; round < max_rounds; ++round) {
      bool any = false;
      for (NodeId id : voters_) {
        if (down_.count(id)) continue;
        any |= Drain(id);
      }
      while (!net_.empty()) {
        raft::Message m = std::move(net_.front());
        net_.pop_front();
        any = true;
        if (down_.count(m.to) || Cut(m.from, m.to)) continue;
        EXPECT_TRUE(node(m.to).Receive(m).ok());
      }
      if (!any) return;
    }
    FAIL() << "cluster did not quiesce";
  }

  // Executes one node's pending effects; returns whether there were any.
  bool Drain(NodeId id) {
    Replica& r = at(id);
    Effects e = r.node->TakeEffects();
    if (e.Empty()) return false;
    for (raft::Message& m : e.messages) net_.push_back(std::move(m));
    for (const Reply& rep : e.replies) r.failed.push_back(rep);
    for (alerts::Firing& f : e.alerts) r.alerts.push_back(std::move(f));
    if (!e.apply.empty()) {
      for (const ApplyItem& item : e.apply) {
        if (item.entry.type == raft::EntryType::kNormal) {
          r.state.push_back({item.entry.index, item.entry.data});
        }
        r.applied_indexes.push_back(item.entry.index);
        if (item.request) r.succeeded.push_back(*item.request);
      }
      r.sm_applied = e.apply.back().entry.index;
      r.node->OnApplied(r.sm_applied);
    }
    for (RequestId id2 : e.reads) r.reads.push_back(id2);
    if (e.disk) {
      absl::Status s = wal::ExecuteBatch(*e.disk, &r.disk);
      r.node->OnDiskDone(e.disk->id, s);
    }
    return true;
  }

  void TickAll(int n = 1) {
    for (int k = 0; k < n; ++k) {
      now_ms_ += 10;
      for (NodeId id : voters_) {
        if (!down_.count(id)) node(id).Tick(now_ms_);
      }
      Pump();
    }
  }

  // Ticks until a node other than `not_this` leads (e.g. after isolating the old leader).
  NodeId AwaitNewLeader(NodeId not_this) {
    for (int k = 0; k < 100; ++k) {
      TickAll(1);
      for (NodeId id : voters_) {
        if (id != not_this && !down_.count(id) && node(id).raft().role() == raft::Role::kLeader) {
          return id;
        }
      }
    }
    ADD_FAILURE() << "no new leader";
    return raft::kNone;
  }

  NodeId ElectLeader(NodeId id) {
    node(id).Campaign();
    Pump();
    EXPECT_EQ(node(id).raft().role(), raft::Role::kLeader);
    return id;
  }

  void Isolate(NodeId id) { isolated_ = id; }
  void Heal() { isolated_ = raft::kNone; }
  std::deque<raft::Message>& net() { return net_; }

 private:
  bool Cut(NodeId a, NodeId b) const {
    return isolated_ != raft::kNone && (a == isolated_ || b == isolated_);
  }
  std::vector<NodeId> voters_;
  uint64_t max_pending_ = 10000;
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::deque<raft::Message> net_;
  std::set<NodeId> down_;
  NodeId isolated_ = raft::kNone;
  uint64_t now_ms_ = 0;
};

TEST(Node, ARequestIsAcknowledgedOnlyAfterItsEntryIsDurableAndApplied) {
  Cluster c(1);
  c.ElectLeader(1);
  Node& n = c.node(1);
  n.Propose(7, "x");
  Effects e = n.TakeEffects();
  ASSERT_TRUE(e.disk.has_value()) << "the entry goes to the WAL first";
  EXPECT_TRUE(e.apply.empty()) << "nothing is applied before the entry is durable";
  ASSERT_TRUE(wal::ExecuteBatch(*e.disk, &c.at(1).disk).ok());
  bool synced = false;
  for (const wal::DiskOp& op : e.disk->ops) synced |= op.kind == wal::DiskOp::Kind::kSync;
  EXPECT_TRUE(synced) << "sync_mode always: the batch ends with fdatasync";
  n.OnDiskDone(e.disk->id, absl::OkStatus());
  e = n.TakeEffects();
  ASSERT_EQ(e.apply.size(), 1u);
  EXPECT_EQ(e.apply[0].entry.data, "x");
  ASSERT_TRUE(e.apply[0].request.has_value());
  EXPECT_EQ(*e.apply[0].request, 7u);
}

TEST(Node, AFollowerAnswersTheLeaderOnlyAfterItsWalWrite) {
  Cluster c(3);
  c.ElectLeader(1);
  c.node(1).Propose(1, "a");
  c.Drain(1);  // the leader's append messages go out before its own fsync (thesis §10.2.1)
  raft::Message append;
  bool found = false;
  for (const raft::Message& m : c.net()) {
    if (m.to == 2 && m.type == raft::MessageType::kApp && !m.entries.empty()) {
      append = m;
      found = true;
    }
  }
  ASSERT_TRUE(found);
  c.net().clear();
  ASSERT_TRUE(c.node(2).Receive(append).ok());
  Effects e = c.node(2).TakeEffects();
  ASSERT_TRUE(e.disk.has_value());
  EXPECT_TRUE(e.messages.empty()) << "the response waits for the follower's fdatasync";
  ASSERT_TRUE(wal::ExecuteBatch(*e.disk, &c.at(2).disk).ok());
  c.node(2).OnDiskDone(e.disk->id, absl::OkStatus());
  e = c.node(2).TakeEffects();
  ASSERT_EQ(e.messages.size(), 1u);
  EXPECT_EQ(e.messages[0].type, raft::MessageType::kAppResp);
  EXPECT_FALSE(e.messages[0].reject);
}

TEST(Node, ThreeReplicasApplyTheSameCommandsInOrder) {
  Cluster c(3);
  c.ElectLeader(1);
  for (RequestId id = 1; id <= 20; ++id) {
    c.node(1).Propose(id, "cmd" + std::to_string(id));
    if (id % 5 == 0) c.Pump();
  }
  c.Pump();
  c.TickAll(3);  // heartbeats carry the final commit index to the followers
  EXPECT_EQ(c.at(1).succeeded.size(), 20u);
  for (NodeId id = 1; id <= 3; ++id) {
    ASSERT_EQ(c.at(id).state.size(), 20u) << "node " << id;
    EXPECT_EQ(c.at(id).state, c.at(1).state) << "node " << id;
  }
}

TEST(Node, FollowerProposalsAreRejectedWithTheLeaderHint) {
  Cluster c(3);
  c.ElectLeader(1);
  c.node(2).Propose(9, "x");
  Effects e = c.node(2).TakeEffects();
  ASSERT_EQ(e.replies.size(), 1u);
  EXPECT_EQ(e.replies[0].request, 9u);
  EXPECT_FALSE(e.replies[0].status.ok());
  EXPECT_EQ(e.replies[0].leader, 1u);
}

TEST(Node, ReadsAreServedOnlyAfterTheReadPointIsApplied) {
  Cluster c(3);
  c.ElectLeader(1);
  c.node(1).Propose(1, "a");
  c.Pump();
  c.node(1).Read(100);
  c.node(2).Read(200);  // a follower's read goes through the leader
  c.Pump();
  EXPECT_EQ(c.at(1).reads, std::vector<RequestId>{100});
  EXPECT_EQ(c.at(2).reads, std::vector<RequestId>{200});
  EXPECT_GE(c.at(2).sm_applied, 2u) << "served after applying the leader's commit index";
}

TEST(Node, ARestartReappliesExactlyTheEntriesPastTheDurableAppliedIndex) {
  Cluster c(1);
  c.ElectLeader(1);
  for (RequestId id = 1; id <= 10; ++id) c.node(1).Propose(id, "v" + std::to_string(id));
  c.Pump();
  const Index last = c.node(1).raft().log().LastIndex();
  ASSERT_EQ(c.at(1).sm_applied, last);
  // The state machine made only part of its progress durable before the crash.
  c.at(1).sm_applied = last - 4;
  c.Crash(1);
  c.Restart(1);
  c.ElectLeader(1);
  c.Pump();
  ASSERT_FALSE(c.at(1).applied_indexes.empty());
  EXPECT_EQ(c.at(1).applied_indexes.front(), last - 3) << "re-applies from applied + 1";
  EXPECT_EQ(c.at(1).state.size(), 10u) << "every command exactly once";
  EXPECT_EQ(c.at(1).state.back().second, "v10");
}

TEST(Node, AcknowledgedWritesSurviveACrashOfEveryReplica) {
  Cluster c(3);
  c.ElectLeader(1);
  for (RequestId id = 1; id <= 5; ++id) c.node(1).Propose(id, "w" + std::to_string(id));
  c.Pump();
  ASSERT_EQ(c.at(1).succeeded.size(), 5u);
  for (NodeId id = 1; id <= 3; ++id) c.Crash(id);
  for (NodeId id = 1; id <= 3; ++id) c.Restart(id);
  c.ElectLeader(2);
  c.node(2).Propose(6, "w6");
  c.Pump();
  c.TickAll(3);
  for (NodeId id = 1; id <= 3; ++id) {
    ASSERT_EQ(c.at(id).state.size(), 6u) << "node " << id;
    EXPECT_EQ(c.at(id).state.front().second, "w1");
  }
}

TEST(Node, AProposalReplacedByAnotherLeaderFailsInsteadOfHanging) {
  Cluster c(3);
  c.ElectLeader(1);
  c.Isolate(1);
  c.node(1).Propose(42, "lost");  // appended on the old leader only
  c.Pump();
  NodeId leader = c.AwaitNewLeader(1);
  c.node(leader).Propose(43, "kept");
  c.Pump();
  c.Heal();
  c.TickAll(5);  // node 2's heartbeats make node 1 follow and take the new log
  ASSERT_EQ(c.at(1).failed.size(), 1u);
  EXPECT_EQ(c.at(1).failed[0].request, 42u);
  EXPECT_EQ(c.at(1).failed[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(c.at(1).state, c.at(leader).state);
}

TEST(Node, ReadsUnconfirmedWhenTheTermChangesFail) {
  Cluster c(3);
  c.ElectLeader(1);
  c.Isolate(1);
  c.node(1).Read(5);  // no quorum can confirm it
  c.Pump();
  c.AwaitNewLeader(1);
  c.Heal();
  c.TickAll(5);
  ASSERT_EQ(c.at(1).failed.size(), 1u);
  EXPECT_EQ(c.at(1).failed[0].request, 5u);
  EXPECT_TRUE(c.at(1).reads.empty());
}

TEST(Node, ADiskErrorStopsTheNode) {
  Cluster c(1);
  c.ElectLeader(1);
  c.at(1).disk.FailAfter(0, absl::InternalError("fdatasync: Input/output error"));
  c.node(1).Propose(1, "x");
  Effects e = c.node(1).TakeEffects();
  ASSERT_TRUE(e.disk.has_value());
  c.node(1).OnDiskDone(e.disk->id, wal::ExecuteBatch(*e.disk, &c.at(1).disk));
  e = c.node(1).TakeEffects();
  EXPECT_FALSE(e.fatal.ok());
  EXPECT_NE(e.fatal.message().find("Input/output error"), std::string::npos) << e.fatal;
  EXPECT_TRUE(e.apply.empty());
  c.node(1).Propose(2, "y");
  e = c.node(1).TakeEffects();
  ASSERT_EQ(e.replies.size(), 1u);
  EXPECT_EQ(e.replies[0].status.code(), absl::StatusCode::kUnavailable);
}

TEST(Node, PendingRequestsAreBounded) {
  Cluster c(3, /*max_pending=*/2);
  c.ElectLeader(1);
  c.Isolate(1);  // nothing commits, so requests stay pending
  c.node(1).Propose(1, "a");
  c.node(1).Propose(2, "b");
  c.node(1).Propose(3, "c");
  Effects e = c.node(1).TakeEffects();
  ASSERT_EQ(e.replies.size(), 1u);
  EXPECT_EQ(e.replies[0].request, 3u);
  EXPECT_EQ(e.replies[0].status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(Node, AbandonedRequestsAreForgottenAndFreeTheirSlots) {
  Cluster c(3, /*max_pending=*/2);
  c.ElectLeader(1);
  c.Isolate(1);  // nothing commits and no read is confirmed, so requests stay pending
  c.node(1).Propose(1, "a");
  c.node(1).Read(2);
  EXPECT_EQ(c.node(1).pending_requests(), 2u);
  c.node(1).Abandon(1);
  c.node(1).Abandon(2);
  c.node(1).Abandon(99);  // unknown: ignored
  EXPECT_EQ(c.node(1).pending_requests(), 0u);
  c.node(1).Propose(3, "c");
  c.node(1).Read(4);
  c.Drain(1);
  EXPECT_TRUE(c.at(1).failed.empty());  // both fit again
  // After healing, the abandoned proposal's entry commits and is applied without a request;
  // the abandoned read never shows up.
  c.Heal();
  c.TickAll(5);
  EXPECT_EQ(c.at(1).state.size(), 2u);
  EXPECT_EQ(c.at(1).succeeded, std::vector<RequestId>{3});
  EXPECT_EQ(c.at(1).reads, std::vector<RequestId>{4});
  EXPECT_TRUE(c.at(1).failed.empty());
}

std::vector<std::string> Keys(const std::vector<alerts::Firing>& firings) {
  std::vector<std::string> keys;
  for (const alerts::Firing& f : firings) keys.push_back(f.dedup_key);
  return keys;
}

// docs/failover-and-alerts.md: the leader reports a crashed follower once, after
// max_consecutive_failures (3) silent heartbeat rounds, and its recovery after the restart.
TEST(Node, TheLeaderAlertsOnceWhenAFollowerFailsAndAgainWhenItRecovers) {
  Cluster c(3);
  c.ElectLeader(1);
  c.TickAll(5);
  c.at(1).alerts.clear();
  c.Crash(3);
  c.TickAll(2);
  EXPECT_TRUE(c.at(1).alerts.empty()) << "too early: " << Keys(c.at(1).alerts).size();
  c.TickAll(2);  // 3 rounds of 10 ms without an answer
  EXPECT_EQ(Keys(c.at(1).alerts), std::vector<std::string>{"node_failed:3"});
  EXPECT_EQ(c.at(1).alerts[0].severity, alerts::Severity::kCritical);
  c.TickAll(50);  // still down: no repeat
  EXPECT_EQ(Keys(c.at(1).alerts), std::vector<std::string>{"node_failed:3"});
  EXPECT_TRUE(c.at(2).alerts.empty()) << "a follower never judges another follower";
  c.Restart(3);
  c.TickAll(5);
  EXPECT_EQ(Keys(c.at(1).alerts),
            (std::vector<std::string>{"node_failed:3", "node_recovered:3"}));
  ASSERT_NE(c.node(1).detector(), nullptr);
  EXPECT_FALSE(c.node(1).detector()->IsFailed(3));
  EXPECT_EQ(c.node(1).alert_manager().recent().size(), 2u);
}

// Losing two of three: the leader alerts quorum_lost (once).
TEST(Node, ALeaderThatLosesItsQuorumAlerts) {
  Cluster c(3);
  c.ElectLeader(1);
  c.TickAll(5);
  c.Crash(2);
  c.Crash(3);
  c.TickAll(8);
  std::vector<std::string> keys = Keys(c.at(1).alerts);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "quorum_lost"), 1);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "node_failed:2"), 1);
  EXPECT_EQ(std::count(keys.begin(), keys.end(), "node_failed:3"), 1);
}

TEST(Node, DriverReportedEventsGoThroughTheSameRules) {
  Cluster c(3);
  c.ElectLeader(1);
  c.node(1).Report(alerts::CertificateExpiring{"/etc/amaters/node1.crt", 5});
  c.node(1).Report(alerts::CertificateExpiring{"/etc/amaters/node1.crt", 5});  // deduplicated
  c.Drain(1);
  EXPECT_EQ(Keys(c.at(1).alerts),
            std::vector<std::string>{"certificate_expiring:/etc/amaters/node1.crt"});
  EXPECT_EQ(c.at(1).alerts[0].severity, alerts::Severity::kCritical);
}

TEST(Node, OversizedCommandsAreRejectedBeforeRaft) {
  Cluster c(1);
  c.ElectLeader(1);
  c.node(1).Propose(1, std::string((8u << 20) + 1, 'x'));
  Effects e = c.node(1).TakeEffects();
  ASSERT_EQ(e.replies.size(), 1u);
  EXPECT_EQ(e.replies[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(e.disk.has_value());
}

TEST(Node, StateMachineAheadOfTheWalIsAClearError) {
  wal::SimDisk disk;
  absl::StatusOr<wal::ReplayResult> rec = wal::Recover(&disk, wal::CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(rec.ok());
  NodeConfig c;
  c.raft.id = 1;
  c.raft.voters = {1};
  absl::StatusOr<std::unique_ptr<Node>> n = Node::Create(c, *rec, /*applied=*/5);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(n.status().message().find("applied up to index 5"), std::string::npos);
}

}  // namespace
}  // namespace amaters::node
