#include "engine/raft/testing/harness.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/check.h"

namespace amaters::raft::testing {

Harness::Harness(int n, std::function<void(Config&)> tweak, uint64_t seed) {
  std::vector<NodeId> voters;
  for (int i = 1; i <= n; ++i) voters.push_back(static_cast<NodeId>(i));
  for (NodeId id : voters) {
    NodeState& ns = nodes_[id];
    ns.config.id = id;
    ns.config.voters = voters;
    ns.config.rng_seed = seed;
    if (tweak) tweak(ns.config);
  }
  bool record = record_;
  record_ = false;
  for (NodeId id : voters) Restart(id);
  record_ = record;
}

Raft& Harness::node(NodeId id) {
  NodeState& n = state(id);
  AM_CHECK(n.raft != nullptr, "node ", id, " is crashed");
  return *n.raft;
}

std::vector<NodeId> Harness::ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

void Harness::Event(const std::string& line) {
  if (record_) absl::StrAppend(&events_, line, "\n");
}

std::string Harness::TakeEvents() { return std::exchange(events_, ""); }

void Harness::NoteRoleChange(NodeId id) {
  NodeState& n = state(id);
  if (!n.raft) return;
  if (n.raft->role() != n.last_role || n.raft->term() != n.last_term) {
    Event(absl::StrCat("n", id, " becomes ", RoleName(n.raft->role()), " at term ",
                       n.raft->term()));
    n.last_role = n.raft->role();
    n.last_term = n.raft->term();
  }
}

void Harness::WriteToDisk(NodeState& n, const PersistRequest& req) {
  if (req.snapshot) {
    const Index old_base = n.durable_snapshot.index;
    const Index drop = req.snapshot_replaces_log
                           ? n.durable_log.size()
                           : std::min<Index>(n.durable_log.size(), req.snapshot->index - old_base);
    AM_CHECK_GE(req.snapshot->index, old_base, "snapshot older than the durable one");
    n.durable_log.erase(n.durable_log.begin(), n.durable_log.begin() + static_cast<long>(drop));
    n.durable_snapshot = *req.snapshot;
  }
  if (!req.entries.empty()) {
    const Index base = n.durable_snapshot.index;
    Index first = req.entries.front().index;
    AM_CHECK_LE(first, base + n.durable_log.size() + 1, "write leaves a gap in the durable log");
    AM_CHECK(first > base, "write at ", first, " below the durable snapshot ", base);
    n.durable_log.resize(first - base - 1);
    for (const Entry& e : req.entries) n.durable_log.push_back(e);
  }
  if (req.hard_state) n.durable_hs = *req.hard_state;
}

void Harness::Drain(NodeId id) {
  NodeState& n = state(id);
  NoteRoleChange(id);
  while (n.raft && n.raft->HasReady()) {
    Ready rd = n.raft->TakeReady();
    if (rd.persist) {
      const PersistRequest& p = *rd.persist;
      std::string line = absl::StrCat("n", id, " persist");
      if (p.hard_state) {
        absl::StrAppend(&line, " hs={term=", p.hard_state->term, " vote=", p.hard_state->vote,
                        " commit=", p.hard_state->commit, "}");
      }
      if (!p.entries.empty()) {
        absl::StrAppend(&line, " entries=[");
        for (size_t i = 0; i < p.entries.size(); ++i) {
          absl::StrAppend(&line, i ? ", " : "", DescribeEntry(p.entries[i]));
        }
        absl::StrAppend(&line, "]");
      }
      if (p.snapshot) {
        absl::StrAppend(&line, " snapshot=", p.snapshot->term, "/", p.snapshot->index,
                        p.snapshot_replaces_log ? " (replaces log)" : "");
      }
      if (p.hard_state || !p.entries.empty() || p.snapshot) Event(line);
      n.pending_writes.push_back(p);
    }
    for (Message& m : rd.messages) {
      Event(absl::StrCat("n", id, " send ", DescribeMessage(m)));
      in_flight_.push_back(std::move(m));
    }
    if (rd.snapshot) {
      InstallSnapshot(id, *rd.snapshot);
      n.raft->OnApplied(rd.snapshot->index);
    }
    for (const Entry& e : rd.committed_entries) {
      Event(absl::StrCat("n", id, " apply ", DescribeEntry(e)));
      // State-machine safety (paper §5.4.3): every node applies the same entry at an index.
      auto [it, inserted] = committed_.emplace(e.index, e);
      if (!inserted && !(it->second == e)) {
        violations_.push_back(absl::StrCat("state machine safety: node ", id, " applied ",
                                           DescribeEntry(e), " where another node applied ",
                                           DescribeEntry(it->second)));
      }
      auto [mine, fresh] = n.applied.emplace(e.index, e);
      if (!fresh && !(mine->second == e)) {
        violations_.push_back(absl::StrCat("node ", id, " re-applied a different entry at ",
                                           e.index));
      }
    }
    if (!rd.committed_entries.empty()) n.raft->OnApplied(rd.committed_entries.back().index);
    for (const ReadState& rs : rd.read_states) {
      Event(absl::StrCat("n", id, " read-state ctx=", rs.context, " index=", rs.index));
      n.read_states.push_back(rs);
    }
    if (!n.manual_persist) Persist(id);
    NoteRoleChange(id);
  }
}

void Harness::InstallSnapshot(NodeId id, const SnapshotMeta& snap) {
  NodeState& n = state(id);
  Event(absl::StrCat("n", id, " install snapshot ", snap.term, "/", snap.index));
  n.applied.clear();
  for (Index i = 1; i <= snap.index; ++i) {
    auto it = committed_.find(i);
    if (it == committed_.end()) {
      violations_.push_back(absl::StrCat("node ", id, " installed a snapshot at ", snap.index,
                                         " covering index ", i, " that no node applied"));
      continue;
    }
    n.applied.emplace(i, it->second);
  }
}

absl::Status Harness::TakeSnapshot(NodeId id) {
  NodeState& n = state(id);
  absl::Status s = n.raft->SnapshotTaken(n.raft->applied());
  if (s.ok()) Event(absl::StrCat("n", id, " snapshot at ", n.raft->applied()));
  Drain(id);
  return s;
}

absl::Status Harness::Compact(NodeId id, Index index) {
  absl::Status s = state(id).raft->CompactLog(index);
  if (s.ok()) Event(absl::StrCat("n", id, " compact to ", index));
  Drain(id);
  return s;
}

int Harness::Persist(NodeId id) {
  NodeState& n = state(id);
  int count = 0;
  while (!n.pending_writes.empty()) {
    PersistRequest req = std::move(n.pending_writes.front());
    n.pending_writes.erase(n.pending_writes.begin());
    WriteToDisk(n, req);
    n.raft->OnPersisted(req.seq);
    ++count;
  }
  if (count > 0 && n.manual_persist) Drain(id);
  return count;
}

void Harness::SetManualPersist(NodeId id, bool manual) {
  state(id).manual_persist = manual;
  if (!manual) {
    Persist(id);
    Drain(id);
  }
}

void Harness::Tick(NodeId id, int n) {
  for (int i = 0; i < n; ++i) {
    node(id).Tick();
    Drain(id);
  }
}

void Harness::Campaign(NodeId id) {
  node(id).Campaign();
  Drain(id);
}

ProposeResult Harness::Propose(NodeId id, std::string data) {
  ProposeResult r = node(id).Propose(std::move(data));
  Drain(id);
  return r;
}

ProposeResult Harness::ProposeConfChange(NodeId id, const ConfChange& cc) {
  ProposeResult r = node(id).ProposeConfChange(cc);
  Event(absl::StrCat("n", id, " propose ", DescribeConfChange(cc), ": ",
                     r.status.ok() ? absl::StrCat("index ", r.index) : r.status.ToString()));
  Drain(id);
  return r;
}

void Harness::AddNode(NodeId id) {
  AM_CHECK(nodes_.count(id) == 0, "node ", id, " exists");
  AM_CHECK(!nodes_.empty());
  NodeState& ns = nodes_[id];
  ns.config = nodes_.begin()->second.config;  // the bootstrap configuration of nodes 1..n
  ns.config.id = id;
  Restart(id);
}

void Harness::AddNode(NodeId id, std::vector<NodeId> bootstrap_voters) {
  AM_CHECK(nodes_.count(id) == 0, "node ", id, " exists");
  AM_CHECK(!nodes_.empty());
  NodeState& ns = nodes_[id];
  ns.config = nodes_.begin()->second.config;
  ns.config.id = id;
  ns.config.voters = std::move(bootstrap_voters);
  ns.config.learners.clear();
  Restart(id);
}

absl::Status Harness::ReadIndex(NodeId id, std::string ctx) {
  absl::Status s = node(id).ReadIndex(std::move(ctx));
  Drain(id);
  return s;
}

absl::Status Harness::TransferLeadership(NodeId id, NodeId target) {
  absl::Status s = node(id).TransferLeadership(target);
  Drain(id);
  return s;
}

bool Harness::Connected(NodeId a, NodeId b) const {
  if (group_.empty()) return true;
  auto ga = group_.find(a);
  auto gb = group_.find(b);
  int x = ga == group_.end() ? -1 : ga->second;
  int y = gb == group_.end() ? -1 : gb->second;
  return x == y;
}

int Harness::Deliver(std::function<bool(const Message&)> filter) {
  std::vector<Message> batch;
  std::vector<Message> keep;
  for (Message& m : in_flight_) {
    if (!filter || filter(m)) {
      batch.push_back(std::move(m));
    } else {
      keep.push_back(std::move(m));
    }
  }
  in_flight_ = std::move(keep);
  int delivered = 0;
  for (const Message& m : batch) {
    if (!Connected(m.from, m.to) || !alive(m.to)) {
      Dropped(m);
      continue;
    }
    DeliverMessage(m);
    ++delivered;
  }
  return delivered;
}

void Harness::DeliverMessage(const Message& m) {
  Raft& to = node(m.to);
  absl::Status s = to.Step(m);
  if (!s.ok() && !to.configuration().IsMember(m.from)) {
    Event(absl::StrCat("n", m.to, " refused ", DescribeMessage(m), ": not a member"));
    return;  // e.g. a removed node that does not know it yet
  }
  AM_CHECK(s.ok(), "step failed: ", s.ToString());
  Drain(m.to);
}

void Harness::DeliverAt(size_t k) {
  AM_CHECK_LT(k, in_flight_.size());
  Message m = std::move(in_flight_[k]);
  in_flight_.erase(in_flight_.begin() + static_cast<long>(k));
  if (!Connected(m.from, m.to) || !alive(m.to)) {
    Dropped(m);
    return;
  }
  DeliverMessage(m);
}

void Harness::Dropped(const Message& m) {
  Event(absl::StrCat("drop ", DescribeMessage(m)));
  // A snapshot transfer that cannot complete is reported to the leader (node::Node does so
  // when the transfer fails or stalls).
  if (m.type == MessageType::kSnapshot && alive(m.from)) {
    node(m.from).ReportSnapshotFailed(m.to);
    Drain(m.from);
  }
}

void Harness::DropAt(size_t k) {
  AM_CHECK_LT(k, in_flight_.size());
  Message m = std::move(in_flight_[k]);
  in_flight_.erase(in_flight_.begin() + static_cast<long>(k));
  Dropped(m);
}

void Harness::DuplicateAt(size_t k) {
  AM_CHECK_LT(k, in_flight_.size());
  in_flight_.push_back(in_flight_[k]);
}

int Harness::Drop(std::function<bool(const Message&)> filter) {
  std::vector<Message> keep, dropped;
  for (Message& m : in_flight_) (filter(m) ? dropped : keep).push_back(std::move(m));
  in_flight_ = std::move(keep);
  for (const Message& m : dropped) Dropped(m);
  return static_cast<int>(dropped.size());
}

bool Harness::Stabilize(int max_rounds) {
  for (int i = 0; i < max_rounds; ++i) {
    if (in_flight_.empty()) return true;
    Deliver();
  }
  return in_flight_.empty();
}

void Harness::Partition(const std::vector<std::set<NodeId>>& groups) {
  group_.clear();
  int g = 0;
  for (const auto& set : groups) {
    for (NodeId id : set) group_[id] = g;
    ++g;
  }
}

void Harness::Heal() { group_.clear(); }

void Harness::Crash(NodeId id) {
  NodeState& n = state(id);
  n.raft.reset();
  n.pending_writes.clear();  // never completed: lost with the process
  n.applied.clear();         // the in-memory state machine is rebuilt by re-applying
  n.read_states.clear();
  Event(absl::StrCat("n", id, " crashed"));
}

void Harness::Restart(NodeId id) {
  NodeState& n = state(id);
  RestoredState rs;
  rs.hard_state = n.durable_hs;
  rs.snapshot = n.durable_snapshot;
  rs.entries = n.durable_log;
  rs.applied = n.durable_snapshot.index;  // the state machine restarts from the snapshot
  absl::StatusOr<std::unique_ptr<Raft>> r = Raft::Create(n.config, std::move(rs));
  AM_CHECK(r.ok(), "restart failed: ", r.status().ToString());
  n.raft = *std::move(r);
  n.raft->set_planted_bugs(bugs_);
  n.last_role = n.raft->role();
  n.last_term = n.raft->term();
  Event(absl::StrCat("n", id, " restarted: ", n.raft->Describe()));
  if (n.durable_snapshot.index > 0) InstallSnapshot(id, n.durable_snapshot);
  Drain(id);
}

void Harness::RestoreNode(NodeId id, const std::vector<Term>& log_terms, HardState hs) {
  NodeState& n = state(id);
  n.raft.reset();
  n.pending_writes.clear();
  n.applied.clear();
  n.durable_log.clear();
  n.durable_snapshot = {};
  for (size_t i = 0; i < log_terms.size(); ++i) {
    Entry e;
    e.term = log_terms[i];
    e.index = i + 1;
    e.data = absl::StrCat("t", e.term, "i", e.index);
    n.durable_log.push_back(e);
  }
  n.durable_hs = hs;
  Restart(id);
}

void Harness::SetPlantedBugs(const Raft::PlantedBugs& bugs) {
  bugs_ = bugs;
  for (auto& [id, n] : nodes_) {
    if (n.raft) n.raft->set_planted_bugs(bugs);
  }
}

NodeId Harness::Leader() const {
  NodeId best = kNone;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (n.raft && n.raft->role() == Role::kLeader && n.raft->term() >= best_term) {
      best = id;
      best_term = n.raft->term();
    }
  }
  return best;
}

std::vector<ReadState> Harness::TakeReadStates(NodeId id) {
  return std::exchange(state(id).read_states, {});
}

void ApplyScheduleStep(Harness& h, int kind, int a, int b, int* proposals,
                       const ScheduleOptions& options) {
  const int n = static_cast<int>(h.ids().size());
  const NodeId id = static_cast<NodeId>(a % n + 1);
  const NodeId other = static_cast<NodeId>(b % n + 1);
  const size_t in_flight = h.in_flight().size();
  if (kind < 20) {
    if (h.alive(id)) h.Tick(id, b % 3 + 1);
  } else if (kind < 60) {
    if (in_flight) {
      const size_t k = static_cast<size_t>(b) % in_flight;
      if (options.before_deliver) options.before_deliver(h.in_flight()[k]);
      h.DeliverAt(k);
    }
  } else if (kind < 64) {
    if (in_flight) h.DropAt(static_cast<size_t>(b) % in_flight);
  } else if (kind < 67) {
    if (in_flight) h.DuplicateAt(static_cast<size_t>(b) % in_flight);
  } else if (kind < 80) {
    // Half of the proposals go to the current leader, so that entries commit between faults.
    const NodeId target = (b % 2 == 0 && h.Leader() != kNone) ? h.Leader() : id;
    if (h.alive(target)) {
      h.Propose(target, absl::StrCat("p", (*proposals)++,
                                     std::string(options.pad_proposals ? b % 64 : 0, 'x')));
    }
  } else if (kind < 82) {
    if (h.alive(id)) h.Crash(id);
  } else if (kind < 86) {
    if (!h.alive(id)) h.Restart(id);
  } else if (kind < 88) {
    std::set<NodeId> left, right;
    for (int i = 1; i <= n; ++i) ((b >> i) & 1 ? left : right).insert(static_cast<NodeId>(i));
    h.Partition({left, right});
  } else if (kind < 91) {
    h.Heal();
  } else if (kind < 94) {
    if (h.alive(id)) h.Persist(id);
  } else if (kind < 96) {
    if (h.alive(id)) h.SetManualPersist(id, b % 2 == 0);
  } else if (kind < 98) {
    if (h.alive(id)) (void)h.ReadIndex(id, absl::StrCat("r", b));
  } else if (kind < 99) {
    if (!h.alive(id)) return;
    if (b % 3 != 0) {
      h.Campaign(id);
      return;
    }
    // A snapshot at the applied index, and compaction up to it less a margin of 0..3 entries.
    (void)h.TakeSnapshot(id);
    const Index snap = h.node(id).snapshot().index;
    const Index margin = static_cast<Index>(b / 3 % 4);
    if (snap > margin) (void)h.Compact(id, snap - margin);
  } else {
    if (h.alive(id)) (void)h.TransferLeadership(id, other);
  }
}

}  // namespace amaters::raft::testing
