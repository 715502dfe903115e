#include "sim/chaos/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/base/check.h"
#include "sim/chaos/fault_state.h"
#include "sim/chaos/real_cluster.h"
#include "sim/chaos/support.h"
#include "sim/chaos/workload.h"
#include "sim/html.h"
#include "sim/trace_events.h"

namespace amaters::sim::chaos {

namespace {

constexpr absl::Duration kPoll = absl::Milliseconds(50);
constexpr absl::Duration kObserveEvery = absl::Milliseconds(100);  // during `wait`: leader changes
constexpr size_t kTraceLinesMax = 100000;  // the timeline's lines, client operations apart
constexpr absl::Duration kStartTimeout = absl::Seconds(30);  // a leader after (re)starting all

trace::Node N(int id) {
  AM_CHECK(id >= 1);
  return static_cast<trace::Node>(id);
}

std::vector<std::set<trace::Node>> TraceGroups(const std::vector<std::set<int>>& groups) {
  std::vector<std::set<trace::Node>> out;
  for (const std::set<int>& g : groups) {
    out.emplace_back();
    for (int id : g) out.back().insert(N(id));
  }
  return out;
}

// The running, unpaused node that says it leads, with the highest term; 0 if none.
int LeaderOf(const std::map<int, NodeView>& views) {
  int leader = 0;
  uint64_t term = 0;
  for (const auto& [id, v] : views) {
    if (v.answered && !v.paused && v.leader == static_cast<uint64_t>(id) && v.term >= term) {
      leader = id;
      term = v.term;
    }
  }
  return leader;
}

std::string Describe(const std::map<int, NodeView>& views) {
  std::vector<std::string> parts;
  const int leader = LeaderOf(views);
  for (const auto& [id, v] : views) {
    if (!v.running) {
      parts.push_back(absl::StrCat("n", id, v.refused ? " refused" : " down"));
    } else if (v.paused) {
      parts.push_back(absl::StrCat("n", id, " paused"));
    } else if (!v.answered) {
      parts.push_back(absl::StrCat("n", id, " not answering"));
    } else {
      parts.push_back(absl::StrCat("n", id, id == leader ? " leader" : " follower", " term ",
                                   v.term, " commit ", v.commit, " applied ", v.applied));
    }
  }
  return absl::StrCat("[", absl::StrJoin(parts, "; "), "]");
}

// The highest value of `field` over the nodes that answered (or node `id`'s); nullopt when
// none answered.
std::optional<uint64_t> ValueOf(const std::map<int, NodeView>& views, const std::set<NodeId>& of,
                                uint64_t NodeView::*field) {
  std::optional<uint64_t> best;
  for (const auto& [id, v] : views) {
    if (!v.answered || (!of.empty() && of.count(static_cast<NodeId>(id)) == 0)) continue;
    best = std::max(best.value_or(0), v.*field);
  }
  return best;
}

// `term_offset`: real terms minus the script's (Runner::Campaign).
bool Holds(const Condition& c, const std::map<int, NodeView>& views, uint64_t term_offset) {
  using K = Condition::Kind;
  const int leader = LeaderOf(views);
  const auto view = [&](NodeId n) -> const NodeView* {
    auto it = views.find(static_cast<int>(n));
    return it == views.end() ? nullptr : &it->second;
  };
  switch (c.kind) {
    case K::kLeader:
      return leader != 0 && (c.nodes.empty() || c.nodes.count(static_cast<NodeId>(leader)) > 0);
    case K::kNoLeader:
      return leader == 0;
    case K::kLeaderIn:
      return leader != 0 && c.nodes.count(static_cast<NodeId>(leader)) > 0;
    case K::kTerm:
    case K::kCommitted: {
      std::optional<uint64_t> v =
          ValueOf(views, c.nodes, c.kind == K::kTerm ? &NodeView::term : &NodeView::commit);
      if (v.has_value() && c.kind == K::kTerm) *v -= std::min(*v, term_offset);
      return v.has_value() && Compare(*v, c.op, c.value);
    }
    case K::kUp:
    case K::kDown:
    case K::kRefused: {
      const NodeView* v = view(*c.nodes.begin());
      if (v == nullptr) return false;
      if (c.kind == K::kUp) return v->running;
      if (c.kind == K::kDown) return !v->running;
      return v->refused;
    }
    default:
      AM_CHECK(false, "condition not supported for real clusters reached the runner");
  }
  return false;
}

class Runner {
 public:
  Runner(const Scenario& scenario, const ChaosOptions& options, std::ostream& log)
      : scenario_(scenario), options_(options), log_(log), start_(absl::Now()) {}

  ChaosResult Run();

 private:
  absl::Status SetUp();
  absl::Status Execute(const Command& c);
  absl::Status WaitFor(const std::function<bool(const std::map<int, NodeView>&)>& done,
                       absl::Duration timeout, const std::string& what);
  absl::StatusOr<int> Resolve(NodeId node);  // `leader` or a node id
  absl::Status Campaign(int target);
  // The first campaign of the script sets term_offset_ (the simulator's cluster starts without
  // a leader, so its first campaign makes term 1; a real cluster has elected one already).
  void CountTermsFrom(int target);
  // Starts a node that is down and waits until it answers or exits (it refused to start), as
  // a restart in the simulator is done when the line ends.
  absl::Status Restart(int id);
  absl::Status Transfer(const Command& c);
  absl::Status HandOver(int from, int to);  // MoveLeader; a transfer not finished is no error
  absl::Status HealAll();
  absl::Status Network(const Command& c, int node);  // partition, isolate, block, clog, heal
  absl::Status Disk(const Command& c, int node);     // slow-disk, disk-full
  // Restarts `node` if it stopped on its own while its disk was full (the simulator's driver
  // restarts such a node).
  absl::Status RestartAfterFullDisk(int node);
  absl::Status WriteFaults();  // the control file; waits until every node has read it
  absl::Status Converged(absl::Duration timeout);
  absl::Status ConvergedNow(absl::Duration timeout);
  absl::Status Progress(const Command& c, bool expect_progress);
  absl::Status CheckHistory(const std::vector<ClientOp>& ops, const std::string& when);
  // The end (docs/chaos.md §1): heal, final reads, the checks, the history file, stop.
  void Finish();
  absl::Status HealAndReadFinals(std::map<std::string, std::optional<std::string>>* finals);
  void FailAtEnd(const std::string& why);  // keeps the first failure
  void Log(const std::string& line);
  void CountFault(const std::string& kind);
  void Fault(const std::string& kind, const std::string& event);  // counted and traced
  void Wait(absl::Duration d);  // observes the nodes; progress lines if asked for
  void Progress();
  // Every node's Status; a new leader or term goes into the timeline.
  std::map<int, NodeView> Observe();
  uint64_t NowNs() const;  // since the run's start
  void NoteFailover(bool has_leader);  // longest_failover_s
  void Trace(const std::string& text);  // a line of sim/trace_events.h, now
  // --trace / --html: the timeline's lines with the client operations, in time order.
  void WriteTimeline();

  const Scenario& scenario_;
  const ChaosOptions& options_;
  std::ostream& log_;
  const absl::Time start_;
  std::unique_ptr<RealCluster> cluster_;
  std::unique_ptr<Workload> workload_;
  ChaosResult result_;
  absl::Time next_progress_ = absl::InfiniteFuture();
  FaultState faults_;            // in force, as written to faults_path_
  std::string faults_path_;
  std::set<int> disk_was_full_;  // nodes whose disk filled since they last started
  bool campaigned_ = false;      // the script's first campaign ran
  uint64_t term_offset_ = 0;     // real terms minus the script's
  std::mt19937_64 damage_rng_{scenario_.seed};  // where corrupt-wal flips a bit
  std::vector<std::pair<uint64_t, std::string>> trace_;  // (ns since start, text); bounded
  uint64_t trace_dropped_ = 0;
  int traced_leader_ = 0;
  uint64_t traced_term_ = 0;
  std::optional<absl::Time> no_leader_since_;  // the last observation saw no leader
  std::set<int> traced_refused_;  // nodes whose exit is in the timeline
  std::set<int> answered_since_start_;  // so an exit is a stop (fatal), not a refusal
  int64_t history_offset_ns_ = 0;  // the history's clock + this = ours
};

void Runner::CountFault(const std::string& kind) {
  ++result_.faults;
  ++result_.faults_by_kind[kind];
}

void Runner::Fault(const std::string& kind, const std::string& event) {
  CountFault(kind);
  Trace(event);
}

void Runner::Wait(absl::Duration d) {
  const absl::Time end = absl::Now() + d;
  absl::Time next_observe = absl::Now() + kObserveEvery;
  while (absl::Now() < end) {
    const absl::Time until = std::min({end, next_progress_, next_observe});
    absl::SleepFor(until - absl::Now());
    if (absl::Now() >= next_progress_) Progress();
    if (absl::Now() >= next_observe && absl::Now() < end) {
      Observe();
      next_observe = absl::Now() + kObserveEvery;
    }
  }
}

std::map<int, NodeView> Runner::Observe() {
  std::map<int, NodeView> views = cluster_->Observe();
  for (const auto& [id, v] : views) {
    if (v.answered) answered_since_start_.insert(id);
    if (!v.refused || !traced_refused_.insert(id).second) continue;
    const std::string why = absl::StrCat("exited on its own (", cluster_->log_path(id), ")");
    Trace(answered_since_start_.count(id) > 0 ? trace::Fatal(N(id), why)
                                              : trace::Refused(N(id), why));
  }
  const int leader = LeaderOf(views);
  NoteFailover(leader != 0);
  if (leader != 0 && (leader != traced_leader_ || views.at(leader).term != traced_term_)) {
    traced_leader_ = leader;
    traced_term_ = views.at(leader).term;
    Trace(trace::Leader(N(leader), traced_term_));
  }
  return views;
}

void Runner::NoteFailover(bool has_leader) {
  if (!has_leader) {
    // From the first leader on (the first election is the cluster starting).
    if (!no_leader_since_.has_value() && traced_leader_ != 0) no_leader_since_ = absl::Now();
    return;
  }
  if (!no_leader_since_.has_value()) return;
  result_.longest_failover_s = std::max(
      result_.longest_failover_s, absl::ToDoubleSeconds(absl::Now() - *no_leader_since_));
  no_leader_since_.reset();
}

uint64_t Runner::NowNs() const {
  return static_cast<uint64_t>(absl::ToInt64Nanoseconds(absl::Now() - start_));
}

void Runner::Trace(const std::string& text) {
  if (trace_.size() >= kTraceLinesMax) {
    ++trace_dropped_;
    return;
  }
  trace_.emplace_back(NowNs(), text);
}

void Runner::WriteTimeline() {
  if (options_.trace_path.empty() && options_.html_path.empty()) return;
  std::vector<std::pair<uint64_t, std::string>> timed = trace_;
  if (workload_ != nullptr) {
    for (checker::Operation op : CheckerOperations(workload_->Snapshot())) {
      op.invoke_ns += history_offset_ns_;
      op.complete_ns += history_offset_ns_;
      const bool done = op.outcome != checker::OpOutcome::kUnknown;
      timed.emplace_back(done ? op.complete_ns : op.invoke_ns, trace::Client(op));
    }
  }
  std::stable_sort(timed.begin(), timed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> lines;
  lines.reserve(timed.size());
  for (const auto& [t, text] : timed) lines.push_back(trace::Line(t, text));
  if (trace_dropped_ > 0) {
    Log(absl::StrCat("the timeline kept its first ", kTraceLinesMax, " lines; ", trace_dropped_,
                     " more were not kept"));
  }
  const auto write = [&](const std::string& path, const std::string& what, auto body) {
    if (path.empty()) return;
    std::ofstream f(path, std::ios::trunc);
    body(f);
    f.close();
    Log(absl::StrCat(what, ": ", path, f ? "" : " (could not be written)"));
  };
  write(options_.trace_path, "trace", [&](std::ofstream& f) {
    for (const std::string& line : lines) f << line << "\n";
  });
  write(options_.html_path, "timeline", [&](std::ofstream& f) {
    f << RenderHtml(lines, absl::StrCat("chaos ", scenario_.file, " (real processes)"));
  });
}

void Runner::Progress() {
  next_progress_ = absl::Now() + options_.progress_every;
  const Tally t = workload_->CurrentTally();
  const std::map<int, NodeView> views = Observe();
  const int leader = LeaderOf(views);
  Log(absl::StrCat("progress: ops=", t.ops, " ok=", t.ok, " fail=", t.fail, " info=", t.info,
                   " faults=", result_.faults, " leader=",
                   leader == 0 ? std::string("none")
                               : absl::StrCat("n", leader, " term ", views.at(leader).term)));
}

void Runner::Log(const std::string& line) {
  log_ << absl::StrFormat("[%8.3fs] ", absl::ToDoubleSeconds(absl::Now() - start_)) << line
       << "\n"
       << std::flush;
}

absl::Status Runner::SetUp() {
  faults_path_ = options_.dir + "/faults";
  if (absl::Status s = WriteFaults(); !s.ok()) return s;
  RealClusterOptions co;
  co.nodes = scenario_.nodes;
  co.server_bin = options_.server_bin;
  co.dir = options_.dir;
  co.faults_file = faults_path_;
  co.bug = options_.bug;
  absl::StatusOr<std::unique_ptr<RealCluster>> c = RealCluster::Create(co);
  if (!c.ok()) return c.status();
  cluster_ = *std::move(c);
  Trace(trace::Config(scenario_.seed,
                      absl::StrCat("nodes=", scenario_.nodes, " clients=", options_.clients,
                                   " keys=", options_.keys, " real-processes heartbeat=",
                                   co.heartbeat_interval_ms, "ms election_timeout=",
                                   co.election_timeout_ms, "ms", options_.bug.empty() ? "" : " bug=",
                                   options_.bug)));
  if (absl::Status s = cluster_->StartAll(); !s.ok()) return s;
  for (int id = 1; id <= cluster_->size(); ++id) Trace(trace::Start(N(id), ""));
  if (absl::Status s = WaitFor([](const auto& v) { return LeaderOf(v) != 0; }, kStartTimeout,
                               "a leader after starting");
      !s.ok()) {
    return s;
  }
  WorkloadOptions wo;
  wo.endpoints = cluster_->client_addresses();
  wo.clients = options_.clients;
  wo.keys = options_.keys;
  wo.seed = scenario_.seed;
  workload_ = std::make_unique<Workload>(wo);
  history_offset_ns_ = static_cast<int64_t>(NowNs()) - static_cast<int64_t>(workload_->NowNs());
  workload_->Start();
  if (options_.progress_every > absl::ZeroDuration()) {
    next_progress_ = absl::Now() + options_.progress_every;
  }
  Log(absl::StrCat("started ", scenario_.nodes, " nodes under ", options_.dir, ", ",
                   options_.clients, " clients on ", options_.keys, " keys, seed ",
                   scenario_.seed, ": ",
                   Describe(Observe())));
  return absl::OkStatus();
}

absl::Status Runner::WaitFor(const std::function<bool(const std::map<int, NodeView>&)>& done,
                             absl::Duration timeout, const std::string& what) {
  const absl::Time deadline = absl::Now() + timeout;
  std::map<int, NodeView> views;
  while (true) {
    views = Observe();
    if (done(views)) return absl::OkStatus();
    if (absl::Now() >= deadline) break;
    absl::SleepFor(kPoll);
  }
  return absl::DeadlineExceededError(absl::StrCat("not within ", absl::FormatDuration(timeout),
                                                  ": ", what, "; observed ", Describe(views)));
}

absl::StatusOr<int> Runner::Resolve(NodeId node) {
  if (node != kLeaderNode) return static_cast<int>(node);
  const std::map<int, NodeView> views = Observe();
  const int leader = LeaderOf(views);
  if (leader == 0) {
    return absl::FailedPreconditionError(absl::StrCat("no leader; observed ", Describe(views)));
  }
  return leader;
}

absl::Status Runner::Campaign(int target) {
  // A real node cannot be told to start an election; the leader hands leadership to it
  // (Raft's leadership transfer makes the target campaign at once).
  const std::map<int, NodeView> views = Observe();
  const int leader = LeaderOf(views);
  absl::Status s = absl::OkStatus();
  if (leader == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no leader to hand over to ", target, "; observed ", Describe(views)));
  }
  if (leader != target) s = HandOver(leader, target);
  if (s.ok() && !campaigned_) CountTermsFrom(target);
  return s;
}

void Runner::CountTermsFrom(int target) {
  campaigned_ = true;
  const absl::Status led = WaitFor([&](const auto& v) { return LeaderOf(v) == target; },
                                   absl::Seconds(5), "the first campaign's node leads");
  if (!led.ok()) return;  // the script's own wait-for will say so; terms are not shifted
  const uint64_t term = Observe().at(target).term;
  term_offset_ = term - std::min<uint64_t>(term, 1);
  Log(absl::StrCat("terms count from n", target, "'s first campaign: the script's term 1 is ",
                   "term ", term, " here"));
}

absl::Status Runner::Restart(int id) {
  Trace(trace::Restart(N(id)));
  traced_refused_.erase(id);
  answered_since_start_.erase(id);
  if (absl::Status s = cluster_->Start(id); !s.ok()) return s;
  absl::Status s = WaitFor(
      [id](const auto& v) { return v.at(id).answered || !v.at(id).running; }, kStartTimeout,
      absl::StrCat("n", id, " answers or exits"));
  if (s.ok() && cluster_->Running(id)) Trace(trace::Start(N(id), ""));
  return s;
}

absl::Status Runner::HandOver(int from, int to) {
  Trace(trace::Transfer(N(from), N(to)));
  // As in the simulator, a transfer fails only when the leader refuses it; one it accepted
  // that does not finish in time (the target was catching up, an election intervened) is a
  // fault that happened, and the script goes on.
  absl::Status s = cluster_->MoveLeader(from, to);
  if (s.code() == absl::StatusCode::kDeadlineExceeded ||
      s.code() == absl::StatusCode::kUnavailable) {
    Log(absl::StrCat("the transfer from n", from, " to n", to, " did not finish: ", s.message()));
    return absl::OkStatus();
  }
  return s;
}

absl::Status Runner::Transfer(const Command& c) {
  absl::StatusOr<int> from = Resolve(c.node);
  if (!from.ok()) return from.status();
  const int to = static_cast<int>(c.peer);
  const std::map<int, NodeView> views = Observe();
  if (LeaderOf(views) == to && c.node == kLeaderNode) return absl::OkStatus();
  return HandOver(*from, to);
}

absl::Status Runner::WriteFaults() {
  const std::string tmp = faults_path_ + ".tmp";
  std::ofstream f(tmp, std::ios::trunc);
  f << RenderFaults(faults_);
  f.close();
  if (!f || std::rename(tmp.c_str(), faults_path_.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", faults_path_));
  }
  absl::SleepFor(absl::Milliseconds(3 * kRereadMs));  // every running node has reread it
  return absl::OkStatus();
}

absl::Status Runner::Network(const Command& c, int node) {
  using K = Command::Kind;
  const int n = cluster_->size();
  std::vector<std::set<int>> groups;
  switch (c.kind) {
    case K::kPartition:
      for (const std::set<NodeId>& g : c.groups) {
        groups.emplace_back();
        for (NodeId id : g) groups.back().insert(static_cast<int>(id));
      }
      faults_.Partition(groups, n);
      Trace(trace::Partition(TraceGroups(groups)));
      break;
    case K::kIsolate:
      groups = {{node}, {}};
      for (int id = 1; id <= n; ++id) {
        if (id != node) groups[1].insert(id);
      }
      faults_.Partition(groups, n);
      Trace(trace::Partition(TraceGroups(groups)));
      break;
    case K::kBlock:
    case K::kClog: {
      absl::StatusOr<int> to = Resolve(c.peer);
      if (!to.ok()) return to.status();
      if (*to == node) return absl::OkStatus();  // `block leader->1` while n1 leads
      if (c.kind == K::kBlock) {
        faults_.Block(node, *to);
        Trace(trace::Block(N(node), N(*to)));
      } else {
        faults_.Clog(node, *to, c.duration_ms);
        Trace(trace::Clog(N(node), N(*to), c.duration_ms));
      }
      break;
    }
    case K::kHeal:
      faults_.Heal();
      Trace(trace::HealNetwork());
      return WriteFaults();
    default:
      AM_CHECK(false, "not a network step");
  }
  CountFault(c.text.substr(0, c.text.find(' ')));
  return WriteFaults();
}

absl::Status Runner::Disk(const Command& c, int node) {
  std::set<int>& set = c.kind == Command::Kind::kSlowDisk ? faults_.slow_disk : faults_.full_disk;
  const bool slow = c.kind == Command::Kind::kSlowDisk;
  Trace(slow ? trace::SlowDisk(N(node), c.on) : trace::DiskFull(N(node), c.on));
  if (c.on) {
    CountFault(slow ? "slow-disk" : "disk-full");
    set.insert(node);
    if (c.kind == Command::Kind::kDiskFull) disk_was_full_.insert(node);
    return WriteFaults();
  }
  set.erase(node);
  if (absl::Status s = WriteFaults(); !s.ok()) return s;
  return c.kind == Command::Kind::kDiskFull ? RestartAfterFullDisk(node) : absl::OkStatus();
}

absl::Status Runner::RestartAfterFullDisk(int node) {
  if (disk_was_full_.erase(node) == 0 || !cluster_->Refused(node)) return absl::OkStatus();
  Log(absl::StrCat("n", node, " stopped while its disk was full: restarting it"));
  return Restart(node);
}

absl::Status Runner::HealAll() {
  Trace(trace::HealAll());
  faults_.HealAll();
  if (absl::Status s = WriteFaults(); !s.ok()) return s;
  for (int id : std::set<int>(disk_was_full_)) {
    if (absl::Status s = RestartAfterFullDisk(id); !s.ok()) return s;
  }
  for (int id = 1; id <= cluster_->size(); ++id) {
    if (cluster_->Running(id)) {
      if (cluster_->Paused(id)) {
        Trace(trace::Resume(N(id)));
        if (absl::Status s = cluster_->Resume(id); !s.ok()) return s;
      }
      continue;
    }
    if (cluster_->Refused(id)) continue;  // stays down, as in the simulator
    if (absl::Status s = Restart(id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Runner::Converged(absl::Duration timeout) {
  // Replicas hold the same data only between writes: the clients pause for the check (their
  // operations in flight complete first) and go on after it.
  const bool clients_were_running = workload_->running();
  workload_->Stop();
  absl::Status s = ConvergedNow(timeout);
  if (clients_were_running) workload_->Start();
  return s;
}

absl::Status Runner::ConvergedNow(absl::Duration timeout) {
  std::string why = "no leader";
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const std::map<int, NodeView> views = Observe();
    const int leader = LeaderOf(views);
    if (leader != 0) {
      const uint64_t commit = views.at(leader).commit;
      std::optional<std::map<std::string, std::string>> first;
      why.clear();
      for (const auto& [id, v] : views) {
        if (!v.running || v.paused) continue;
        if (!v.answered || v.applied < commit) {
          why = absl::StrCat("n", id, " has not applied the leader's commit index ", commit);
          break;
        }
        absl::StatusOr<std::map<std::string, std::string>> data = cluster_->Contents(id);
        if (!data.ok()) {
          why = std::string(data.status().message());
          break;
        }
        if (!first.has_value()) {
          first = *std::move(data);
        } else if (*first != *data) {
          why = absl::StrCat("n", id, "'s data differs from the first replica's");
          break;
        }
      }
      if (why.empty()) return absl::OkStatus();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "not converged within ", absl::FormatDuration(timeout), ": ", why, "; observed ",
          Describe(views)));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status Runner::Progress(const Command& c, bool expect_progress) {
  std::set<NodeId> of;
  if (c.node != 0) of.insert(c.node);
  const std::optional<uint64_t> base = ValueOf(Observe(), of, &NodeView::commit);
  const absl::Duration d = absl::Milliseconds(static_cast<int64_t>(c.duration_ms));
  const auto rose = [&](const std::map<int, NodeView>& v) {
    const std::optional<uint64_t> now = ValueOf(v, of, &NodeView::commit);
    return now.has_value() && now > base;
  };
  absl::Status s = WaitFor(rose, d, "the commit index rises");
  if (expect_progress) return s;
  if (s.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the commit index rose from ", base.value_or(0), " within ",
                     absl::FormatDuration(d), "; observed ", Describe(Observe())));
  }
  return absl::OkStatus();
}

absl::Status Runner::CheckHistory(const std::vector<ClientOp>& ops, const std::string& when) {
  absl::StatusOr<checker::CheckResult> r = checker::CheckLinearizability(CheckerOperations(ops));
  if (!r.ok()) return r.status();
  result_.verdict = r->verdict;
  Log(absl::StrCat(when, ": ", r->Summary()));
  if (r->verdict == checker::Verdict::kOk) return absl::OkStatus();
  std::string explanation;
  if (!r->violations.empty()) explanation = r->violations.front().explanation;
  return absl::FailedPreconditionError(
      absl::StrCat("the history is not linearizable (", checker::VerdictName(r->verdict), ")",
                   explanation.empty() ? "" : ":\n", explanation));
}

absl::Status Runner::Execute(const Command& c) {
  using K = Command::Kind;
  const absl::Duration d = absl::Milliseconds(static_cast<int64_t>(c.duration_ms));
  absl::StatusOr<int> node = c.node == 0 ? absl::StatusOr<int>(0) : Resolve(c.node);
  if (!node.ok()) return node.status();
  switch (c.kind) {
    case K::kWorkload:
      c.on ? workload_->Start() : workload_->Stop();
      return absl::OkStatus();
    case K::kCrash:
      Fault("crash", trace::Crash(N(*node)));
      return cluster_->Kill(*node);
    case K::kRestart:
      return Restart(*node);
    case K::kPause:
      Fault("pause", trace::Pause(N(*node)));
      return cluster_->Pause(*node);
    case K::kResume:
      Trace(trace::Resume(N(*node)));
      return cluster_->Resume(*node);
    case K::kCampaign:
      Fault("campaign", trace::Campaign(N(*node)));
      return Campaign(*node);
    case K::kTransfer:
      CountFault("transfer");
      return Transfer(c);
    case K::kHealAll:
      return HealAll();
    case K::kPartition:
    case K::kIsolate:
    case K::kBlock:
    case K::kClog:
    case K::kHeal:
      return Network(c, *node);
    case K::kSlowDisk:
    case K::kDiskFull:
      return Disk(c, *node);
    case K::kWipe:
      Fault("wipe", trace::Wipe(N(*node)));
      return cluster_->Wipe(*node);
    case K::kCorruptWal: {
      absl::StatusOr<RealCluster::Corruption> where = cluster_->CorruptWal(*node, damage_rng_());
      if (!where.ok()) return where.status();
      Fault("corrupt-wal", trace::Corrupt(N(*node), where->file, where->damage.offset));
      Log(absl::StrCat("flipped bit ", where->damage.bit, " of ", where->file, " at ",
                       where->damage.offset));
      return absl::OkStatus();
    }
    case K::kWait:
      Wait(d);
      return absl::OkStatus();
    case K::kWaitFor:
      return WaitFor([&](const auto& v) { return Holds(c.condition, v, term_offset_); }, d,
                     "the condition");
    case K::kExpect: {
      const std::map<int, NodeView> views = Observe();
      if (Holds(c.condition, views, term_offset_)) return absl::OkStatus();
      return absl::FailedPreconditionError(absl::StrCat("observed ", Describe(views)));
    }
    case K::kExpectLinearizable:
      return CheckHistory(workload_->Snapshot(), absl::StrCat("line ", c.line));
    case K::kExpectConverged:
      return Converged(d);
    case K::kExpectProgress:
    case K::kExpectNoProgress:
      return Progress(c, c.kind == K::kExpectProgress);
    default:
      return absl::UnimplementedError(absl::StrCat("not supported for real clusters: ",
                                                   WhyUnsupported(c)));
  }
}

absl::Status Runner::HealAndReadFinals(
    std::map<std::string, std::optional<std::string>>* finals) {
  if (absl::Status s = HealAll(); !s.ok()) return s;
  if (absl::Status s = WaitFor([](const auto& v) { return LeaderOf(v) != 0; }, kStartTimeout,
                               "a leader after healing");
      !s.ok()) {
    return s;
  }
  const int leader = LeaderOf(Observe());
  for (const std::string& key : workload_->Keys()) {
    absl::StatusOr<std::optional<std::string>> v =
        workload_->FinalRead(cluster_->client_address(leader), key);
    if (!v.ok()) return v.status();
    (*finals)[key] = *v;
  }
  AM_CHECK_EQ(finals->size(), workload_->Keys().size());
  return absl::OkStatus();
}

void Runner::FailAtEnd(const std::string& why) {
  if (result_.failure.empty()) result_.failure = absl::StrCat("at the end: ", why);
}

void Runner::Finish() {
  workload_->Stop();
  std::map<std::string, std::optional<std::string>> finals;
  const absl::Status healed = HealAndReadFinals(&finals);
  if (!healed.ok()) FailAtEnd(std::string(healed.message()));
  if (workload_->capped()) Log("the clients stopped early: the history reached its bound");
  const std::vector<ClientOp> ops = workload_->Snapshot();
  result_.tally = TallyOf(ops);
  result_.availability = AvailabilityOf(ops, /*min_gap_ns=*/1'000'000'000);
  if (healed.ok()) {
    result_.lost_acked = CountLostAcknowledged(ops, finals);
    if (absl::Status h = CheckHistory(ops, "final history"); !h.ok()) {
      FailAtEnd(std::string(h.message()));
    }
    if (result_.lost_acked > 0) {
      FailAtEnd(absl::StrCat(result_.lost_acked, " acknowledged puts are not in the final state"));
    }
  }
  const std::string path =
      options_.history_path.empty() ? options_.dir + "/history.jsonl" : options_.history_path;
  std::ofstream f(path, std::ios::trunc);
  f << HistoryJsonLines(ops);
  f.close();
  Log(absl::StrCat("history: ", path, f ? "" : " (could not be written)"));
  for (const auto& [id, code] : cluster_->StopAll()) {
    if (code != 0) Log(absl::StrCat("n", id, " exited with ", code, " when stopped"));
  }
}

ChaosResult Runner::Run() {
  absl::Status s = SetUp();
  if (!s.ok()) {
    result_.failure = absl::StrCat("setting up: ", s.message());
  } else {
    for (const Command& c : scenario_.commands) {
      Trace(trace::ScenarioStep(scenario_.file, c.line, c.text));
      absl::Status step = Execute(c);
      Log(absl::StrCat(scenario_.file, ":", c.line, ": ", c.text, ": ",
                       step.ok() ? "ok" : std::string(step.message())));
      if (!step.ok()) {
        result_.failure =
            absl::StrCat(scenario_.file, ":", c.line, ": `", c.text, "`: ", step.message());
        break;
      }
    }
    Finish();
  }
  result_.wall_s = absl::ToDoubleSeconds(absl::Now() - start_);
  result_.pass = result_.failure.empty() && result_.verdict == checker::Verdict::kOk &&
                 result_.lost_acked == 0;
  if (!result_.pass && result_.failure.empty()) result_.failure = "the history was not checked";
  if (!result_.pass) Trace(trace::Fail(result_.failure));
  WriteTimeline();
  return result_;
}

}  // namespace

std::string ChaosResult::Summary() const {
  return absl::StrFormat(
      "chaos: result=%s ops=%d ok=%d fail=%d info=%d faults=%d linearizable=%s lost_acked=%d "
      "wall_s=%.1f",
      pass ? "pass" : "fail", tally.ops, tally.ok, tally.fail, tally.info, faults,
      LinearizableWord(verdict), lost_acked, wall_s);
}

std::string ChaosResult::Report() const {
  std::string kinds;
  for (const auto& [kind, n] : faults_by_kind) absl::StrAppend(&kinds, " ", kind, "=", n);
  const Availability& a = availability;
  return absl::StrFormat(
      "chaos: report: acked_puts=%d faults=%d%s unavailable_windows=%d longest_unavailable_s=%.1f "
      "longest_failover_s=%.1f p50_ms=%.2f p99_ms=%.2f",
      a.acked_puts, faults, kinds, a.unavailable.size(), a.longest_unavailable_ns / 1e9,
      longest_failover_s, a.p50_ns / 1e6, a.p99_ns / 1e6);
}

ChaosResult RunChaos(const Scenario& scenario, const ChaosOptions& options, std::ostream& log) {
  AM_CHECK(CheckRealClusterSupport(scenario).ok(), "the caller checks the scenario first");
  Runner runner(scenario, options, log);
  return runner.Run();
}

}  // namespace amaters::sim::chaos
