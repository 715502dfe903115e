#include "engine/node/node.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/base/crc32c.h"
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
  // Snapshots of `state` by index (on "disk": they survive crashes), and copies being received.
  std::map<Index, std::string> snapshots;
  std::map<Index, std::string> staging;
  std::map<Index, StagedSnapshot> staged;  // what the driver records with each copy
};

// The toy state as snapshot bytes: "index=data;" per applied command.
std::string Serialize(const std::vector<std::pair<Index, std::string>>& state, Index upto) {
  std::string out;
  for (const auto& [i, d] : state) {
    if (i <= upto) out += std::to_string(i) + "=" + d + ";";
  }
  return out.empty() ? std::string("empty;") : out;
}

std::vector<std::pair<Index, std::string>> Deserialize(const std::string& bytes) {
  std::vector<std::pair<Index, std::string>> state;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find(';', pos);
    std::string item = bytes.substr(pos, end - pos);
    pos = end + 1;
    if (item == "empty") continue;
    size_t eq = item.find('=');
    state.push_back({std::stoull(item.substr(0, eq)), item.substr(eq + 1)});
  }
  return state;
}

class Cluster {
 public:
  explicit Cluster(int n, uint64_t max_pending = 10000,
                   std::function<void(NodeConfig&)> tweak = {}) {
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) voters_.push_back(id);
    max_pending_ = max_pending;
    tweak_ = std::move(tweak);
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
    if (tweak_) tweak_(c);
    // A state machine behind the WAL's snapshot restarts from that snapshot.
    if (rec->snapshot.index > r.sm_applied) {
      ASSERT_TRUE(r.snapshots.count(rec->snapshot.index)) << "snapshot " << rec->snapshot.index;
      r.state = Deserialize(r.snapshots[rec->snapshot.index]);
      r.sm_applied = rec->snapshot.index;
    }
    absl::StatusOr<std::unique_ptr<Node>> node = Node::Create(c, *rec, r.sm_applied);
    ASSERT_TRUE(node.ok()) << node.status();
    r.node = *std::move(node);
    if (!r.staged.empty()) {  // resume the newest copy being received
      StagedSnapshot staged = r.staged.rbegin()->second;
      staged.bytes = r.staging[staged.meta.index].size();
      r.node->ResumeSnapshotReceive(staged);
    }
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
        if (intercept_ && !intercept_(m)) continue;
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
        if (item.snapshot) {
          EXPECT_TRUE(r.snapshots.count(item.snapshot->index));
          r.state = Deserialize(r.snapshots[item.snapshot->index]);
          r.sm_applied = item.snapshot->index;
          continue;
        }
        if (item.entry.type == raft::EntryType::kNormal) {
          r.state.push_back({item.entry.index, item.entry.data});
        }
        r.applied_indexes.push_back(item.entry.index);
        if (item.request) r.succeeded.push_back(*item.request);
        r.sm_applied = item.entry.index;
      }
      r.node->OnApplied(r.sm_applied);
    }
    RunSnapshotEffects(r, e);
    for (RequestId id2 : e.reads) r.reads.push_back(id2);
    if (e.disk) {
      absl::Status s = wal::ExecuteBatch(*e.disk, &r.disk);
      r.node->OnDiskDone(e.disk->id, s);
    }
    return true;
  }

  // The driver's side of snapshots: take, keep, read, stage and verify them.
  void RunSnapshotEffects(Replica& r, const Effects& e) {
    if (e.take_snapshot) {
      EXPECT_GE(r.sm_applied, *e.take_snapshot);
      r.snapshots[r.sm_applied] = Serialize(r.state, r.sm_applied);
      r.node->OnSnapshotTaken(r.sm_applied, absl::OkStatus());
    }
    if (e.delete_snapshots_below) {
      r.snapshots.erase(r.snapshots.begin(), r.snapshots.lower_bound(*e.delete_snapshots_below));
    }
    for (const SnapshotRead& read : e.snapshot_reads) {
      auto it = r.snapshots.find(read.meta.index);
      if (it == r.snapshots.end()) {
        r.node->OnSnapshotRead(read, absl::NotFoundError("no such snapshot"));
        continue;
      }
      SnapshotBytes b{it->second.substr(read.offset, read.max_bytes), it->second.size(),
                      Crc32c(it->second)};
      r.node->OnSnapshotRead(read, b);
    }
    for (const SnapshotWrite& w : e.snapshot_writes) {
      std::string& staged = r.staging[w.meta.index];
      staged.resize(w.offset);
      staged += w.data;
      if (w.offset == 0) r.staged[w.meta.index] = {w.meta, w.total_bytes, w.total_crc, 0};
      r.node->OnSnapshotWritten(w.meta, w.offset, w.data.size(), absl::OkStatus());
    }
    if (e.snapshot_finish) {
      std::string& staged = r.staging[e.snapshot_finish->meta.index];
      absl::Status s = Crc32c(staged) == e.snapshot_finish->total_crc &&
                               staged.size() == e.snapshot_finish->total_bytes
                           ? absl::OkStatus()
                           : absl::DataLossError("snapshot checksum mismatch");
      if (s.ok()) {
        r.snapshots[e.snapshot_finish->meta.index] = staged;
        r.staged.erase(e.snapshot_finish->meta.index);
      }
      ++finishes_;
      r.node->OnSnapshotReceived(e.snapshot_finish->meta, s);
    }
  }

  // Messages for which `f` returns false are dropped; it may change them.
  void Intercept(std::function<bool(raft::Message&)> f) { intercept_ = std::move(f); }
  int finishes() const { return finishes_; }

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
  std::function<void(NodeConfig&)> tweak_;
  std::function<bool(raft::Message&)> intercept_;
  int finishes_ = 0;
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

// ---- Snapshots (docs/snapshots.md) ------------------------------------------------------------

void SmallSnapshots(NodeConfig& c) {
  c.snapshot_threshold_entries = 10;
  c.snapshot_catchup_entries = 3;
  c.snapshot_transfer.chunk_bytes = 1024;
}

std::string Value(int i) { return std::string(200, static_cast<char>('a' + i % 26)) + std::to_string(i); }

// `n` writes of ~200 bytes through node 1 (the leader), each pumped to completion.
void WriteValues(Cluster& c, int n) {
  for (int i = 0; i < n; ++i) {
    c.node(1).Propose(static_cast<RequestId>(i + 1), Value(i));
    c.Pump();
  }
}

TEST(NodeSnapshot, TakenAtTheThresholdThenTheLogAndWalAreCompactedWithAMargin) {
  Cluster c(1, 10000, SmallSnapshots);
  c.ElectLeader(1);
  WriteValues(c, 60);
  const Node& n = c.node(1);
  EXPECT_GE(n.snapshot_stats().taken, 5u);
  const Index snap = n.raft().snapshot().index;
  EXPECT_GE(snap, 51u);
  EXPECT_EQ(n.raft().log().FirstIndex(), snap - 3 + 1) << "a margin of catchup entries";
  EXPECT_GT(n.wal().stats().compaction_count, 0u);
  EXPECT_LE(c.at(1).snapshots.size(), 3u) << "max_snapshots";
  EXPECT_EQ(c.at(1).snapshots.rbegin()->first, snap);
  // A restart starts from the newest snapshot and the WAL after it.
  const auto state = c.at(1).state;
  c.Crash(1);
  c.at(1).sm_applied = 0;  // as if the state machine kept nothing but its snapshots
  c.at(1).state.clear();
  c.Restart(1);
  EXPECT_EQ(c.node(1).raft().log().FirstIndex(), snap + 1);
  c.TickAll(30);
  c.Pump();
  EXPECT_EQ(c.at(1).state, state);
}

TEST(NodeSnapshot, AFollowerBehindTheCompactedLogCatchesUpByAChunkedSnapshot) {
  Cluster c(3, 10000, SmallSnapshots);
  c.ElectLeader(1);
  c.Isolate(3);
  WriteValues(c, 60);
  ASSERT_GT(c.node(1).raft().log().FirstIndex(), 2u);
  int chunks = 0;
  c.Intercept([&](raft::Message& m) {
    chunks += m.type == raft::MessageType::kSnapshot;
    return true;
  });
  c.Heal();
  c.TickAll(20);
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  EXPECT_EQ(c.node(3).snapshot_stats().installed, 1u);
  EXPECT_GE(c.node(1).snapshot_stats().sends_started, 1u);
  EXPECT_GT(chunks, 5) << "1 KiB chunks of a ~12 KiB state";
  // It keeps up by appends afterwards.
  c.node(1).Propose(100, "after");
  c.TickAll(3);
  EXPECT_EQ(c.at(3).state.back().second, "after");
}

TEST(NodeSnapshot, ACorruptChunkIsRefusedAndSentAgain) {
  Cluster c(3, 10000, [](NodeConfig& cfg) {
    SmallSnapshots(cfg);
    cfg.snapshot_transfer.timeout_ms = 200;
  });
  c.ElectLeader(1);
  c.Isolate(3);
  WriteValues(c, 40);
  int corrupted = 0, dropped = 0, duplicated = 0;
  c.Intercept([&](raft::Message& m) {
    if (m.type != raft::MessageType::kSnapshot || m.chunk.data.empty()) return true;
    if (m.chunk.offset == 2048 && corrupted++ == 0) m.chunk.data[7] ^= 1;  // bit flip
    if (m.chunk.offset == 4096 && dropped++ == 0) return false;            // lost
    if (m.chunk.offset == 1024 && duplicated++ == 0) c.net().push_back(m);  // duplicated
    return true;
  });
  c.Heal();
  c.TickAll(200);  // the lost chunk stalls the transfer until its timeout
  EXPECT_GE(corrupted, 2) << "the corrupt chunk was sent again";
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  for (const auto& [index, bytes] : c.at(3).snapshots) {
    EXPECT_EQ(bytes, Serialize(Deserialize(bytes), index)) << "a damaged snapshot was kept";
  }
}

TEST(NodeSnapshot, AWipedFollowerRejoinsBySnapshot) {
  Cluster c(3, 10000, SmallSnapshots);
  c.ElectLeader(1);
  WriteValues(c, 40);
  c.Crash(3);
  c.at(3) = Replica();  // a new disk: no WAL, no state, no snapshots
  c.Restart(3);
  c.TickAll(30);
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  EXPECT_EQ(c.node(3).snapshot_stats().installed, 1u);
}

TEST(NodeSnapshot, AnInterruptedTransferResumesWhereTheFollowerStopped) {
  Cluster c(3, 10000, [](NodeConfig& cfg) {
    SmallSnapshots(cfg);
    cfg.snapshot_transfer.timeout_ms = 200;
  });
  c.ElectLeader(1);
  c.Isolate(3);
  WriteValues(c, 40);
  std::map<uint64_t, int> sent;  // chunk offset -> times sent
  bool cut = false;
  c.Intercept([&](raft::Message& m) {
    if (m.type == raft::MessageType::kSnapshot && !m.chunk.data.empty()) ++sent[m.chunk.offset];
    // Lose every acknowledgment of the chunk at 3072 once: the leader gives up and restarts.
    if (m.type == raft::MessageType::kSnapshotResp && m.index == 4096 && !cut) {
      cut = true;
      return false;
    }
    return true;
  });
  c.Heal();
  c.TickAll(100);
  EXPECT_TRUE(cut);
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  EXPECT_EQ(sent[1024], 1) << "restarted from the beginning instead of resuming";
  EXPECT_GE(c.node(1).snapshot_stats().sends_failed, 1u);
}

// Runs a transfer to node 3 (cut off while node 1 wrote) until 4 KiB of it are staged, then
// holds back node 3's acknowledgments so that it stalls there. Counts chunks sent by offset.
void StallTransferAt4KiB(Cluster& c, std::map<uint64_t, int>* sent, bool* hold) {
  c.ElectLeader(1);
  c.Isolate(3);
  WriteValues(c, 40);
  c.Intercept([sent, hold](raft::Message& m) {
    if (m.type == raft::MessageType::kSnapshot && !m.chunk.data.empty()) ++(*sent)[m.chunk.offset];
    if (m.type == raft::MessageType::kSnapshotResp && m.index >= 4096) *hold = *hold || m.from == 3;
    return !(*hold && m.from == 3 && m.type == raft::MessageType::kSnapshotResp);
  });
  c.Heal();
  c.TickAll(3);
}

void TimeoutSnapshots(NodeConfig& cfg) {
  SmallSnapshots(cfg);
  cfg.snapshot_transfer.timeout_ms = 200;
}

TEST(NodeSnapshot, AFollowerRestartedDuringATransferResumesItsStagedCopy) {
  Cluster c(3, 10000, TimeoutSnapshots);
  std::map<uint64_t, int> sent;
  bool hold = false;
  StallTransferAt4KiB(c, &sent, &hold);
  ASSERT_TRUE(hold) << "the transfer did not reach 4 KiB";
  ASSERT_TRUE(c.at(3).snapshots.empty()) << "finished before the crash";
  ASSERT_EQ(c.at(3).staging.rbegin()->second.size(), 4096u);
  c.Crash(3);
  c.Restart(3);
  ASSERT_TRUE(c.node(3).snapshot_receive_progress().has_value());
  EXPECT_EQ(c.node(3).snapshot_receive_progress()->second, 4096u);
  hold = false;
  c.Intercept([&](raft::Message& m) {
    if (m.type == raft::MessageType::kSnapshot && !m.chunk.data.empty()) ++sent[m.chunk.offset];
    return true;
  });
  c.TickAll(100);
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  EXPECT_EQ(c.node(3).snapshot_stats().installed, 1u);
  EXPECT_EQ(sent[1024], 1) << "the restarted follower received its copy again from the start";
  EXPECT_GE(sent[4096], 1);
}

TEST(NodeSnapshot, AResumedCopyDamagedByTheCrashIsReceivedAgainWhole) {
  Cluster c(3, 10000, TimeoutSnapshots);
  std::map<uint64_t, int> sent;
  bool hold = false;
  StallTransferAt4KiB(c, &sent, &hold);
  ASSERT_TRUE(hold);
  c.Crash(3);
  c.at(3).staging.rbegin()->second[100] ^= 1;  // the crash damaged the staged copy
  c.Restart(3);
  c.Intercept({});
  c.TickAll(150);
  EXPECT_EQ(c.at(3).state, c.at(1).state);
  EXPECT_EQ(c.node(3).snapshot_stats().installed, 1u);
  for (const auto& [index, bytes] : c.at(3).snapshots) {
    EXPECT_EQ(bytes, Serialize(Deserialize(bytes), index)) << "a damaged snapshot was kept";
  }
}

}  // namespace
}  // namespace amaters::node
