#include "sim/sim.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/health/health.h"
#include "engine/kv/command.h"
#include "engine/node/requests.h"
#include "engine/node/startup.h"
#include "engine/node/timing.h"
#include "engine/wal/disk.h"
#include "engine/wal/format.h"
#include "sim/trace_events.h"

namespace amaters::sim {
namespace {

// Independent PRNG streams derived from the seed (docs/design.md §4.1).
constexpr uint64_t kConfigStream = 0x636f6e666967ull;
constexpr uint64_t kNetStream = 0x6e6574ull;
constexpr uint64_t kFaultStream = 0x6661756c74ull;
constexpr uint64_t kWorkStream = 0x776f726bull;
constexpr uint64_t kDiskStream = 0x6469736bull;
constexpr uint64_t kReconfigStream = 0x7265636f6e66ull;
constexpr uint64_t kBuggifyStream = 0x6275676779ull;
constexpr uint64_t kWatchStream = 0x7761746368ull;
constexpr uint64_t kLeaseStream = 0x6c65617365ull;

// The leader's auto-compaction in the simulator: periodic with a 5 s retention, so that runs
// of tens of seconds compact several times under their faults (the server's default, 10000
// revisions checked every 5 minutes, would never fire in a run).
kv::AutoCompactionPolicy SimAutoCompaction() {
  kv::AutoCompactionPolicy p;
  p.mode = kv::AutoCompactionPolicy::Mode::kPeriodic;
  p.retention_ms = 5000;  // several compactions per run, each under every fault
  return p;
}


uint64_t Derive(uint64_t seed, uint64_t stream) {
  SplitMix64 r(seed ^ (stream * 0x9e3779b97f4a7c15ull));
  return r.Next();
}

uint64_t HashBytes(uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t EntryHash(const raft::Entry& e) {
  uint64_t h = HashBytes(1469598103934665603ull, e.data);
  return (h ^ e.term) * 1099511628211ull ^ static_cast<uint64_t>(e.type);
}

// Bound on the events of one run (docs/design.md §4.4); a typical 30 s seed has a few hundred
// thousand.
constexpr uint64_t kMaxEventsPerRun = 20'000'000;

// A client retries a failed request after this long (virtual ms).
constexpr uint64_t kRetryBackoffMinMs = 10;
constexpr uint64_t kRetryBackoffMaxMs = 100;

double Chance(SplitMix64& r) { return static_cast<double>(r.Next() >> 11) * 0x1.0p-53; }

uint64_t Between(SplitMix64& r, uint64_t lo, uint64_t hi) {
  return hi <= lo ? lo : lo + r.Uniform(hi - lo + 1);
}

}  // namespace

std::vector<std::string> PlantedBugNames() {
  return {"vote_twice",          "commit_old_terms",       "read_without_quorum", "skip_fsync",
          "apply_before_commit", "install_stale_snapshot", "compact_past_snapshot",
          "install_unverified_chunk", "overlapping_conf_changes", "learner_in_quorum",
          "removed_node_votes", "retry_aborted", "vote_stale_log", "ack_before_fsync",
          "watch_resend_old_events", "watch_forget_restore", "lease_renew_ignored"};
}

std::string SimConfig::Describe() const {
  return absl::StrFormat(
      "nodes=%d sync=%s prevote=%d checkquorum=%d lease=%d msg_bytes=%d inflight=%d "
      "latency=%d-%dus drop=%.3f dup=%.3f "
      "fsync=%dus faults_every=%dms partitions=%d crashes=%d pauses=%d clogs=%d slow_disks=%d "
      "disk_full=%d corruption=%d snapshot=%d/%d/%d chunk=%d chunk_corruption=%.3f segment=%d "
      "clients=%d keys=%d safety=%dms timing=%s%s%s%s",
      nodes, wal::SyncModeName(sync_mode), pre_vote, check_quorum, lease_reads, max_msg_bytes,
      max_inflight_msgs, latency_min_us,
      latency_max_us, drop, duplicate, fsync_us, fault_interval_ms, partitions, crashes, pauses,
      clogs, slow_disks, disk_full, corruption, snapshot_threshold, snapshot_catchup,
      max_snapshots, snapshot_chunk_bytes, chunk_corruption, wal_segment_bytes, clients, keys,
      safety_ms,
      production_timing
          ? absl::StrCat(heartbeat_interval_ms, "/", election_timeout_ms, "+",
                         election_jitter_min_ms, "-", election_jitter_max_ms, "ms")
          : absl::StrCat(tick_ms, "ms*", heartbeat_ticks, "/", election_ticks),
      reconfig ? absl::StrCat(" reconfig initial_voters=", initial_voters) : "",
      buggify_elected_percent + buggify_appended_percent + buggify_committed_percent == 0
          ? ""
          : absl::StrCat(" buggify=", buggify_elected_percent, "/", buggify_appended_percent,
                         "/", buggify_committed_percent, "%:",
                         (buggify_kinds & 1) ? "c" : "", (buggify_kinds & 2) ? "p" : "",
                         (buggify_kinds & 4) ? "i" : ""),
      bug.empty() ? "" : absl::StrCat(" bug=", bug));
}

namespace {

failover::FailoverConfig OperatorTiming(const SimConfig& c) {
  failover::FailoverConfig f;
  f.heartbeat_interval_ms = c.heartbeat_interval_ms;
  f.election_timeout_ms = c.election_timeout_ms;
  f.election_jitter_min_ms = c.election_jitter_min_ms;
  f.election_jitter_max_ms = c.election_jitter_max_ms;
  f.slow_replication_threshold_entries = c.slow_replication_entries;
  return f;
}

// The node's timing and the driver's: the server's mapping (node::ConfigureTiming) for
// production timing, else the raw tick counts of the config (scenarios that need exact ticks).
node::DriverTiming ConfigureSimTiming(const SimConfig& c, node::NodeConfig* nc) {
  if (c.production_timing) {
    // Snapshot transfers fail after twenty election timeouts, without the server's 30 s floor
    // (runs are short).
    absl::StatusOr<node::DriverTiming> t = node::ConfigureTiming(OperatorTiming(c), 0, nc);
    AM_CHECK(t.ok(), t.status().ToString());
    AM_CHECK_EQ(t->tick_ms, c.tick_ms, "SetProductionTiming was not applied");
    return *t;
  }
  nc->raft.election_ticks = c.election_ticks;
  nc->raft.heartbeat_ticks = c.heartbeat_ticks;
  // The failure detector counts heartbeat rounds of the engine's real heartbeat period.
  nc->failover.heartbeat_interval_ms = static_cast<uint64_t>(c.heartbeat_ticks) * c.tick_ms;
  nc->failover.election_timeout_ms = static_cast<uint64_t>(c.election_ticks) * c.tick_ms;
  nc->failover.slow_replication_threshold_entries = c.slow_replication_entries;
  nc->snapshot_transfer.timeout_ms = 20 * c.election_ticks * c.tick_ms;
  nc->snapshot_transfer.resend_ms = 2 * c.heartbeat_ticks * c.tick_ms;
  node::DriverTiming t;
  t.tick_ms = c.tick_ms;
  t.requests.read_reask_ms = static_cast<uint64_t>(c.election_ticks) * c.tick_ms;
  t.requests.max_requests = nc->max_pending_requests;
  return t;
}

}  // namespace

void SetProductionTiming(SimConfig* c) {
  c->production_timing = true;
  node::NodeConfig scratch;
  absl::StatusOr<node::DriverTiming> t = node::ConfigureTiming(OperatorTiming(*c), 0, &scratch);
  AM_CHECK(t.ok(), t.status().ToString());
  c->tick_ms = t->tick_ms;
  c->heartbeat_ticks = scratch.raft.heartbeat_ticks;
  c->election_ticks = scratch.raft.election_ticks;
}

SimConfig DrawConfig(uint64_t seed) {
  SplitMix64 r(Derive(seed, kConfigStream));
  SimConfig c;
  c.seed = seed;
  c.nodes = r.Uniform(2) == 0 ? 5 : 3;
  c.pre_vote = r.Uniform(4) != 0;
  c.check_quorum = r.Uniform(4) != 0;
  const bool lease = r.Uniform(4) == 0;
  // Small append messages and windows open the gaps between an old entry and the new leader's
  // no-op reaching followers, where commit-rule bugs (Figure 8) show.
  const uint64_t msg_bytes[] = {1, 1, 256, 4096, 1 << 20};
  c.max_msg_bytes = msg_bytes[r.Uniform(5)];
  const uint64_t inflight[] = {1, 4, 256};
  c.max_inflight_msgs = inflight[r.Uniform(3)];
  c.latency_min_us = Between(r, 50, 500);
  c.latency_max_us = c.latency_min_us + Between(r, 100, 20000);
  const double drops[] = {0, 0, 0.01, 0.05, 0.2};
  c.drop = drops[r.Uniform(5)];
  const double dups[] = {0, 0, 0.01, 0.05};
  c.duplicate = dups[r.Uniform(4)];
  c.fsync_us = Between(r, 100, 5000);
  const uint64_t intervals[] = {100, 200, 300, 500, 1000, 3000};
  c.fault_interval_ms = intervals[r.Uniform(6)];
  c.partitions = r.Uniform(5) != 0;
  c.crashes = r.Uniform(5) != 0;
  c.pauses = r.Uniform(3) == 0;
  // Lease reads trust the leader's tick count; a paused process stops counting while real
  // time goes on, so leases are only safe without pauses (docs/simulation.md).
  c.lease_reads = lease && c.check_quorum && !c.pauses;
  c.clogs = r.Uniform(3) == 0;
  c.slow_disks = r.Uniform(3) == 0;
  c.disk_full = r.Uniform(6) == 0;
  c.corruption = r.Uniform(6) == 0;
  c.clients = static_cast<int>(Between(r, 1, 8));
  c.keys = static_cast<int>(Between(r, 1, 6));
  c.client_timeout_ms = Between(r, 500, 3000);
  c.think_ms = Between(r, 0, 50);
  // Mostly the consensus default; sometimes the relaxed modes, whose crashes are then process
  // crashes only (their documented guarantee).
  const wal::SyncMode modes[] = {wal::SyncMode::kAlways, wal::SyncMode::kAlways,
                                 wal::SyncMode::kAlways, wal::SyncMode::kInterval,
                                 wal::SyncMode::kNone};
  c.sync_mode = modes[r.Uniform(5)];
  // Snapshots in most seeds, with thresholds small enough that followers fall behind the
  // compacted log and need installs; margins from none to larger than the threshold.
  const uint64_t thresholds[] = {0, 10, 25, 50, 100};
  c.snapshot_threshold = thresholds[r.Uniform(5)];
  const uint64_t catchups[] = {0, 3, 20, 200};
  c.snapshot_catchup = catchups[r.Uniform(4)];
  c.max_snapshots = Between(r, 1, 3);
  const uint64_t chunks[] = {1024, 1024, 4096, 65536};
  c.snapshot_chunk_bytes = chunks[r.Uniform(4)];
  const double chunk_corruption[] = {0, 0, 0.01, 0.1};
  c.chunk_corruption = chunk_corruption[r.Uniform(4)];
  const uint64_t segments[] = {4096, 16384, 65536};
  c.wal_segment_bytes = segments[r.Uniform(3)];
  // Membership changes in a third of the seeds, with one or two spare nodes to add (drawn
  // last, so the draws above stay what they were before membership changes existed).
  c.reconfig = r.Uniform(3) == 0;
  if (c.reconfig) {
    c.initial_voters = c.nodes;
    c.nodes += static_cast<int>(Between(r, 1, 2));
  }
  // Production timing (the server's mapping, node::ConfigureTiming) in three seeds of four,
  // the server's defaults among them; the others keep a coarse 50 ms tick and etcd's [E, 2E)
  // election draw. Drawn last, like membership.
  if (r.Uniform(4) != 0) {
    struct Timing {
      uint64_t heartbeat, election, jitter_min, jitter_max;
    };
    const Timing timings[] = {{100, 300, 150, 300},   // the server's defaults
                              {100, 300, 150, 300},
                              {50, 200, 25, 100},     // fast, little jitter
                              {100, 500, 1, 400},     // wide jitter
                              {200, 1000, 150, 300}};  // a WAN-like setting
    const Timing& t = timings[r.Uniform(5)];
    c.heartbeat_interval_ms = t.heartbeat;
    c.election_timeout_ms = t.election;
    c.election_jitter_min_ms = t.jitter_min;
    c.election_jitter_max_ms = t.jitter_max;
    SetProductionTiming(&c);
  }
  // Targeted faults in two seeds of three, each moment on or off by itself, so that some seeds
  // concentrate on one moment (drawn last, like membership and timing).
  if (r.Uniform(3) != 0) {
    const uint64_t elected[] = {0, 11, 27, 50};
    c.buggify_elected_percent = elected[r.Uniform(4)];
    const uint64_t appended[] = {0, 2, 5, 9};  // appends are frequent
    c.buggify_appended_percent = appended[r.Uniform(4)];
    const uint64_t committed[] = {0, 50, 90, 90};  // once per term
    c.buggify_committed_percent = committed[r.Uniform(4)];
    const uint32_t kinds[] = {7, 4, 4, 1};  // any, isolate only (twice), crash only
    c.buggify_kinds = kinds[r.Uniform(4)];
  }
  return c;
}

// ---------------------------------------------------------------------------------------------

struct Simulation::SimNode {
  NodeId id = 0;
  bool up = false;
  bool paused = false;
  bool refused = false;  // refused to start (detected corruption); stays down
  std::vector<Simulation::AlertRecord> alerts;  // every incarnation's alerts, in order
  bool corrupted = false;  // a record of its WAL was corrupted on purpose
  uint64_t incarnation = 0;
  uint64_t tick_ns = 0;  // this node's tick period (drift)
  bool slow_disk = false;
  wal::SimDisk disk;
  std::unique_ptr<kv::MemoryStateMachine> sm;
  // Watchers of this incarnation, over `sm` (hub_sm: the state machine the hub reads).
  std::unique_ptr<kv::WatchHub> hub;
  const kv::StateMachine* hub_sm = nullptr;
  // Auto-compaction of the history (engine/kv/auto_compaction.h), as the server's leader.
  std::optional<kv::AutoCompactor> compactor;
  // Lease expiry (engine/kv/lessor.h), as the server's apply thread; primary while leading.
  std::unique_ptr<kv::Lessor> lessor;
  bool lessor_primary = false;
  std::unique_ptr<node::Node> node;
  // The client request lifecycle of this incarnation (engine/node/requests.h), as the server.
  std::optional<node::ClientRequests> requests;
  std::optional<wal::DiskBatch> in_flight;  // batch handed to the disk, not yet done
  std::vector<raft::Message> held;          // delivered while paused
  bool disk_done_while_paused = false;
  // The driver's snapshot store by index, and copies being received: files, so they survive
  // crashes (each is written whole and synced before the node hears of it).
  std::map<raft::Index, std::string> snapshots;
  std::map<raft::Index, node::StagedSnapshot> staged;  // meta and totals of each copy
  std::map<raft::Index, std::string> staging;
  uint64_t installs = 0;  // over all incarnations
  raft::Configuration conf;  // at the last check (what the node decides with until the next)
  // CheckHealth's inputs at its last evaluation (this incarnation).
  uint64_t health_key = ~uint64_t{0};
  raft::Configuration health_conf;
  // Checker state, per incarnation.
  raft::Term term = 0;
  raft::Index commit = 0;
  raft::Index checked_commit = 0;
  raft::Index last_index = 0;
  raft::Role role = raft::Role::kFollower;
  // The incarnation a targeted fault (buggify) is scheduled on or not over yet (0: none; a
  // restart ends a crash's).
  uint64_t targeted_incarnation = 0;
  raft::Term committed_in_term = 0;  // the last term in which it committed as leader
};

struct Simulation::WatchClient {
  std::string key, range_end;
  NodeId node = 0;  // connected to (0: not connected)
  kv::WatchStreamId stream = 0;
  uint64_t generation = 0;  // only the newest scheduled (re)connect runs
  std::optional<kv::KeyValue> last;  // the last event received
  int64_t resume = 1;  // the start revision of its next watch
  size_t cursor = 0;  // committed_versions_ up to here were checked against what it got
  uint64_t events = 0;
};

struct Simulation::LeaseClient {
  int64_t next_id = 1000;
  int64_t current = 0;  // the lease being kept alive (0: none)
  int64_t ttl_s = 0;
  int rounds_left = 0;  // keep-alives still to send before abandoning or revoking it
  NodeId target = 1;
  bool idle = false;  // stopped by StopWorkload, nothing scheduled; StartWorkload wakes it
};

struct Simulation::LeaseRecord {
  int64_t ttl_s = 0;
  // When the leader renewed it for the last keep-alive it acknowledged (0: none): its expiry
  // must not commit before TTL after that.
  uint64_t last_ack_ns = 0;
  uint64_t expired_ns = 0;  // when its expiry's revoke committed (0: not yet)
};

struct Simulation::ClientOp {
  checker::Operation op;
  bool pending = true;
  NodeId node = 0;
  uint64_t request = 0;
};

struct Simulation::Client {
  int id = 0;
  NodeId target = 1;
  uint64_t counter = 0;
  bool idle = false;  // stopped by StopWorkload, nothing scheduled; StartWorkload wakes it
};

Simulation::Simulation(const SimConfig& config, bool keep_trace)
    : config_(config),
      keep_trace_(keep_trace),
      net_rng_(Derive(config.seed, kNetStream)),
      fault_rng_(Derive(config.seed, kFaultStream)),
      work_rng_(Derive(config.seed, kWorkStream)),
      disk_rng_(Derive(config.seed, kDiskStream)),
      reconfig_rng_(Derive(config.seed, kReconfigStream)),
      buggify_rng_(Derive(config.seed, kBuggifyStream)),
      watch_rng_(Derive(config.seed, kWatchStream)),
      lease_rng_(Derive(config.seed, kLeaseStream)),
      lease_client_(std::make_unique<LeaseClient>()) {
  AM_CHECK(config.nodes >= 1 && config.nodes <= 9);
  AM_CHECK(config.initial_voters >= 0 && config.initial_voters <= config.nodes);
  if (config.crashes && (config.buggify_kinds & 1)) targeted_kinds_.push_back('c');
  if (config.pauses && (config.buggify_kinds & 2)) targeted_kinds_.push_back('p');
  if (config.partitions && (config.buggify_kinds & 4)) targeted_kinds_.push_back('i');
  {
    std::vector<NodeId> voters;
    const int initial = config.initial_voters > 0 ? config.initial_voters : config.nodes;
    for (int i = 1; i <= initial; ++i) voters.push_back(static_cast<NodeId>(i));
    conf_history_.emplace_back(0, raft::Configuration::Of(std::move(voters)));
  }
  Trace(trace::Config(config.seed, config.Describe()));
  for (int i = 0; i < config.nodes; ++i) {
    auto n = std::make_unique<SimNode>();
    n->id = static_cast<NodeId>(i + 1);
    // Drift: each node's clock runs up to drift_ppm fast or slow.
    const uint64_t base = config.tick_ms * kMs;
    const int64_t ppm = static_cast<int64_t>(Between(fault_rng_, 0, 2 * config.drift_ppm)) -
                        static_cast<int64_t>(config.drift_ppm);
    n->tick_ns = static_cast<uint64_t>(static_cast<int64_t>(base) +
                                       static_cast<int64_t>(base) * ppm / 1000000);
    nodes_.push_back(std::move(n));
  }
  for (auto& n : nodes_) Start(*n);
  ops_.reserve(1 << 14);
  for (int c = 0; c < config.clients; ++c) {
    Client cl;
    cl.id = c + 1;
    cl.target = static_cast<NodeId>(1 + work_rng_.Uniform(static_cast<uint64_t>(config.nodes)));
    clients_.push_back(cl);
    At(Between(work_rng_, 0, 50) * kMs, EventKind::kClientStep, static_cast<uint64_t>(c));
  }
  // Two watchers: every key, and one key (the workload's keys are k0..k<keys-1>).
  watch_clients_.resize(2);
  watch_clients_[0].key = "k";
  watch_clients_[0].range_end = "l";
  watch_clients_[1].key = absl::StrCat("k", watch_rng_.Uniform(static_cast<uint64_t>(config.keys)));
  if (config.lease_client) At(Between(lease_rng_, 0, 100) * kMs, [this] { LeaseStep(); });
  for (size_t w = 0; w < watch_clients_.size(); ++w) {
    At(Between(watch_rng_, 0, 100) * kMs, [this, w] { WatchConnect(w); });
  }
}

Simulation::~Simulation() = default;

void Simulation::At(uint64_t time, std::function<void()> fn) {
  uint64_t slot;
  if (free_fns_.empty()) {
    slot = fns_.size();
    fns_.push_back(std::move(fn));
  } else {
    slot = free_fns_.back();
    free_fns_.pop_back();
    fns_[slot] = std::move(fn);
  }
  At(time, EventKind::kFunction, slot);
}

void Simulation::At(uint64_t time, EventKind kind, uint64_t arg) {
  queue_.push(Event{std::max(time, now_), ++seq_, arg, kind});
}

void Simulation::Mix(uint64_t v) { hash_ = (hash_ ^ v) * 1099511628211ull; }

void Simulation::Trace(const std::string& line) {
  Mix(now_);
  hash_ = HashBytes(hash_, line);
  if (keep_trace_) trace_.push_back(trace::Line(now_, line));
}

void Simulation::Fail(const std::string& why) {
  if (!failure_.empty()) return;
  failure_ = absl::StrFormat("at t=%.6fs: %s", now_ / 1e9, why);
  Trace(trace::Fail(why));
}

bool Simulation::Step() {
  if (queue_.empty()) return false;
  const Event e = queue_.top();
  queue_.pop();
  now_ = e.time;
  if (++stats_.events > kMaxEventsPerRun) {
    // An event storm (e.g. a message loop) would otherwise hang the run: report it.
    Fail(absl::StrCat("event storm: more than ", kMaxEventsPerRun, " events in one run (",
                      stats_.messages, " messages sent)"));
    return false;
  }
  switch (e.kind) {
    case EventKind::kFunction: {
      std::function<void()> fn = std::move(fns_[e.arg]);
      fns_[e.arg] = nullptr;
      free_fns_.push_back(e.arg);
      fn();
      break;
    }
    case EventKind::kDeliver:
      DeliverParked(e.arg);
      break;
    case EventKind::kTick:
      TickEvent(e.arg);
      break;
    case EventKind::kDiskDone:
      DiskDoneEvent(e.arg);
      break;
    case EventKind::kClientStep:
      ClientStep(static_cast<int>(e.arg));
      break;
    case EventKind::kOpDeadline:
      OpDeadline(e.arg);
      break;
  }
  return true;
}

void Simulation::RunFor(uint64_t ns) {
  const uint64_t end = now_ + ns;
  while (!failed() && !queue_.empty() && queue_.top().time <= end) Step();
  now_ = std::max(now_, end);
}

bool Simulation::RunUntil(const std::function<bool()>& done, uint64_t max_ns) {
  const uint64_t end = now_ + max_ns;
  while (!failed()) {
    if (done()) return true;
    if (queue_.empty() || queue_.top().time > end) break;
    Step();
  }
  if (!failed() && done()) return true;
  now_ = std::max(now_, end);
  return false;
}

// --- Nodes ----------------------------------------------------------------------------------

// A simulated node's durable state for node::StartFromDisk: the state machine is volatile, so
// it restarts from the WAL's newest snapshot (if any) and re-applies the entries after it.
class Simulation::SimDurableState : public node::DurableState {
 public:
  SimDurableState(Simulation& sim, SimNode& n) : sim_(sim), n_(n) {}
  raft::Index applied_index() const override { return n_.sm->applied_index(); }
  absl::Status RestoreSnapshot(const raft::SnapshotMeta& meta) override {
    auto it = n_.snapshots.find(meta.index);
    if (it == n_.snapshots.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the WAL's snapshot ", meta.index, " is not in its snapshot store"));
    }
    std::unique_ptr<kv::MemoryStateMachine> sm = sim_.LoadSnapshot(n_, it->second);
    if (sm == nullptr) return absl::DataLossError("the snapshot does not load");
    n_.sm = std::move(sm);
    return absl::OkStatus();
  }
  std::optional<node::StagedSnapshot> Staged() const override {
    if (n_.staged.empty()) return std::nullopt;
    // The newest copy this node was receiving when it went down.
    node::StagedSnapshot staged = n_.staged.rbegin()->second;
    staged.bytes = n_.staging[staged.meta.index].size();
    return staged;
  }

 private:
  Simulation& sim_;
  SimNode& n_;
};

void Simulation::Start(SimNode& n) {
  if (n.refused) return;
  n.sm = std::make_unique<kv::MemoryStateMachine>();
  node::NodeConfig c;
  c.raft.id = n.id;
  // Every node starts from the bootstrap configuration; one outside it learns its membership
  // from the leader's log (or snapshot) once added.
  c.raft.voters = conf_history_.front().second.voters;
  const node::DriverTiming timing = ConfigureSimTiming(config_, &c);
  c.raft.pre_vote = config_.pre_vote;
  c.raft.check_quorum = config_.check_quorum;
  c.raft.max_msg_bytes = config_.max_msg_bytes;
  c.raft.max_inflight_msgs = config_.max_inflight_msgs;
  c.raft.read_only =
      config_.lease_reads ? raft::ReadOnlyOption::kLeaseBased : raft::ReadOnlyOption::kSafe;
  c.raft.rng_seed = Derive(config_.seed, 0x7261667400ull + n.id * 1000 + n.incarnation);
  c.wal.segment_size_bytes = config_.wal_segment_bytes;
  c.wal.sync_mode = config_.bug == "skip_fsync" ? wal::SyncMode::kNone : config_.sync_mode;
  c.snapshot_threshold_entries = config_.snapshot_threshold;
  c.snapshot_catchup_entries = config_.snapshot_catchup;
  c.max_snapshots = config_.max_snapshots;
  c.snapshot_transfer.chunk_bytes = config_.snapshot_chunk_bytes;
  SimDurableState durable(*this, n);
  absl::StatusOr<node::Started> started = node::StartFromDisk(
      c, &n.disk, wal::CorruptionPolicy::kRefuseStart, absl::StrCat("n", n.id, "'s WAL"), durable);
  if (!started.ok()) {
    if (failed()) return;  // LoadSnapshot reported it
    if (started.status().code() == absl::StatusCode::kDataLoss && n.corrupted) {
      // Detected corruption: the node refuses to start, as an operator would see it.
      n.refused = true;
      Trace(trace::Refused(n.id, started.status().message()));
      return;
    }
    Fail(absl::StrCat("n", n.id, " cannot start: ", started.status().ToString()));
    return;
  }
  for (const std::string& note : started->notes) {
    Trace(absl::StrCat("n", n.id, " recovery: ", note));
  }
  n.node = std::move(started->node);
  n.compactor.emplace(SimAutoCompaction());
  n.lessor.reset();  // a new process: a follower's lessor over what it recovered
  ResetLessor(n);
  node::ClientRequestsConfig rc = timing.requests;
  rc.planted_retry_aborted = config_.bug == "retry_aborted";
  n.requests.emplace(rc);
  raft::Raft::PlantedBugs bugs;
  bugs.vote_twice = config_.bug == "vote_twice";
  bugs.commit_old_terms = config_.bug == "commit_old_terms";
  bugs.read_without_quorum = config_.bug == "read_without_quorum";
  bugs.apply_before_commit = config_.bug == "apply_before_commit";
  bugs.install_stale_snapshot = config_.bug == "install_stale_snapshot";
  bugs.compact_past_snapshot = config_.bug == "compact_past_snapshot";
  bugs.install_unverified_chunk = config_.bug == "install_unverified_chunk";
  bugs.overlapping_conf_changes = config_.bug == "overlapping_conf_changes";
  bugs.learner_in_quorum = config_.bug == "learner_in_quorum";
  bugs.removed_node_votes = config_.bug == "removed_node_votes";
  bugs.vote_stale_log = config_.bug == "vote_stale_log";
  bugs.ack_before_fsync = config_.bug == "ack_before_fsync";
  n.node->set_planted_bugs(bugs);
  n.up = true;
  n.paused = false;
  ++n.incarnation;
  n.in_flight.reset();
  n.held.clear();
  n.term = n.node->raft().term();
  n.commit = n.node->raft().commit();
  n.checked_commit = 0;
  n.last_index = n.node->raft().log().LastIndex();
  n.conf = n.node->raft().configuration();
  n.role = raft::Role::kFollower;
  n.health_key = ~uint64_t{0};
  Trace(trace::Start(n.id, absl::StrCat("(incarnation ", n.incarnation, ") ",
                                         n.node->raft().Describe())));
  ScheduleTick(n);
  CheckNode(n);
}

void Simulation::ScheduleTick(SimNode& n) {
  At(now_ + n.tick_ns, EventKind::kTick, n.id << 32 | n.incarnation);
}

Simulation::SimNode* Simulation::Incarnation(uint64_t key) {
  SimNode& n = *nodes_[(key >> 32) - 1];
  return n.up && n.incarnation == (key & 0xffffffffu) ? &n : nullptr;
}

void Simulation::TickEvent(uint64_t key) {
  SimNode* n = Incarnation(key);
  if (n == nullptr) return;  // crashed (and maybe restarted, with a tick of its own) since
  if (!n->paused) {
    n->node->Tick(now_ / kMs);
    n->requests->Advance(*n->node, now_ / kMs);
    Process(*n);
    if (n->up && !failed()) CheckHealth(*n);
    if (n->up && !failed()) AutoCompact(*n);
    if (n->up && !failed()) LeaseTick(*n);
  }
  ScheduleTick(*n);
}

void Simulation::CheckHealth(SimNode& n) {
  const failover::FailureDetector* d = n.node->detector();
  if (d == nullptr) return;
  const raft::Raft& r = n.node->raft();
  // Evaluated again only when what it depends on changed (ids are below 16, checked in the
  // constructor): commit and applied decide readiness alone, never liveness or an invariant.
  uint64_t key = static_cast<uint64_t>(r.role()) | r.leader() << 4 | d->known_leader() << 8 |
                 uint64_t{d->quorum_lost()} << 12;
  for (NodeId id = 1; id <= static_cast<NodeId>(config_.nodes); ++id) {
    if (d->IsFailed(id)) key |= uint64_t{1} << (16 + id);
  }
  if (key == n.health_key && r.configuration() == n.health_conf) return;
  n.health_key = key;
  n.health_conf = r.configuration();
  health::ClusterView v;
  v.self = n.id;
  v.role = r.role();
  v.leader = r.leader();
  v.known_leader = d->known_leader();
  v.voters = r.voters();
  v.learners = r.configuration().learners;
  v.quorum_lost = d->quorum_lost();
  v.failed = d->failed_peers();
  health::HealthInputs in;
  in.commit = r.commit();
  in.applied = n.node->applied();
  health::SetClusterInputs(v, &in);
  const health::HealthReport report = health::Evaluate(health::HealthConfig(), in);
  AM_CHECK(report.alive, "n", n.id, " is not alive by its cluster state alone");
}

void Simulation::Finished(SimNode& n) {
  for (const node::Finished& f : n.requests->TakeFinished()) {
    if (f.token >= kConfRequestBase) conf_refusals_[f.token] = f.status;
    if (lease_requests_.count(f.token) != 0) {
      LeaseRequestDone(f.token, nullptr);
      continue;
    }
    if (lease_reads_.count(f.token) != 0) {
      LeaseReadDone(f.token, false);
      continue;
    }
    auto it = request_op_.find(f.token);
    if (it == request_op_.end()) continue;  // the client gave up on it already
    const uint64_t op = it->second;
    request_op_.erase(it);
    // A request that finished without a result did not take effect (it was refused, or
    // another leader's entry committed at its index, thesis §6.3) unless the lifecycle says
    // its outcome is unknown (aborted, or timed out in the node: node/requests.h).
    if (ops_[op].op.client != 0) {
      clients_[ops_[op].op.client - 1].target =
          f.leader != raft::kNone
              ? f.leader
              : static_cast<NodeId>(1 + work_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
    }
    FailOp(op, /*definite=*/!f.outcome_unknown);
  }
}

void Simulation::Process(SimNode& n) {
  if (n.up && !failed()) Finished(n);
  while (n.up && !failed() && n.node->HasEffects()) {
    node::Effects e = n.node->TakeEffects();
    for (raft::Message& m : e.messages) Send(std::move(m));
    n.requests->Route(e, now_ / kMs);
    Finished(n);
    for (const alerts::Firing& f : e.alerts) {
      Trace(absl::StrCat("n", n.id, " alert ", f.dedup_key, " ", alerts::SeverityName(f.severity)));
      n.alerts.push_back({f.dedup_key, now_ / kMs});
    }
    if (!e.apply.empty()) ApplyEntries(n, e.apply);
    if (failed() || !n.up) return;
    RunSnapshotEffects(n, e);
    for (node::RequestId req : e.reads) {
      if (lease_reads_.count(req) != 0) {
        LeaseReadDone(req, true);
        continue;
      }
      auto it = request_op_.find(req);
      if (it == request_op_.end()) continue;
      const uint64_t op = it->second;
      request_op_.erase(it);
      kv::RangeRequest rr;
      rr.key = ops_[op].op.key;
      absl::StatusOr<kv::RangeResponse> resp = n.sm->Range(rr);
      AM_CHECK(resp.ok(), resp.status().ToString());
      std::optional<std::string> value;
      if (!resp->kvs.empty()) value = resp->kvs[0].value;
      Complete(op, value, false);
    }
    if (e.disk) StartDisk(n, std::move(*e.disk));
    if (!e.fatal.ok()) {
      Trace(trace::Fatal(n.id, e.fatal.message()));
      const NodeId id = n.id;
      Crash(id);
      At(now_ + 500 * kMs, [this, id] {
        if (!IsUp(id)) Restart(id);
      });
      return;
    }
    CheckNode(n);
  }
}

void Simulation::ApplyEntries(SimNode& n, std::vector<node::ApplyItem>& items) {
  // Runs of entries between received snapshots, in order.
  size_t from = 0;
  for (size_t i = 0; i <= items.size() && !failed(); ++i) {
    if (i < items.size() && !items[i].snapshot) continue;
    if (i > from) ApplyRun(n, items, from, i);
    if (i < items.size() && !failed()) InstallSnapshot(n, *items[i].snapshot);
    from = i + 1;
  }
}

void Simulation::ApplyRun(SimNode& n, std::vector<node::ApplyItem>& all, size_t from, size_t to) {
  const absl::Span<node::ApplyItem> items(&all[from], to - from);
  const raft::Index first = items.front().entry.index;
  AM_CHECK_EQ(first, n.sm->applied_index() + 1, "n", n.id, " applies out of order");
  const raft::Index known = applied_.size();  // indexes applied somewhere before this run
  for (size_t i = 0; i < items.size(); ++i) {
    const raft::Entry& e = items[i].entry;
    AM_CHECK(e.index == first + i, "n", n.id, " applies index ", e.index, " after ", first + i - 1);
    // State machine safety: no two replicas apply different entries at one index.
    const uint64_t h = EntryHash(e);
    if (applied_.size() < e.index) {
      applied_.resize(e.index, 0);
      decoded_.resize(e.index);
    }
    if (applied_[e.index - 1] == 0) {
      applied_[e.index - 1] = h;
      decoded_[e.index - 1] = e.type == raft::EntryType::kNormal
                                  ? kv::DecodeEntry(e.index, e.data)
                                  : kv::ApplyItem::Noop(e.index);
      if (e.type == raft::EntryType::kConfChange) RecordConfChange(n, e);
    } else if (applied_[e.index - 1] != h) {
      Fail(absl::StrCat("state machine safety: n", n.id, " applied a different entry at index ",
                        e.index, " (term ", e.term, ")"));
      return;
    }
  }
  if (applied_.size() > known) RecordCommitted(known + 1, applied_.size());
  const absl::Span<const kv::ApplyItem> batch(&decoded_[first - 1], items.size());
  absl::StatusOr<std::vector<kv::ApplyResult>> results = n.sm->Apply(batch);
  if (!results.ok()) {
    Fail(absl::StrCat("n", n.id, " apply failed: ", results.status().ToString()));
    return;
  }
  Hub(n).OnApplied();
  WatchDeliver(n);
  for (size_t i = 0; i < items.size(); ++i) MirrorLease(n, batch[i], (*results)[i]);
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].request) continue;
    if (lease_requests_.count(*items[i].request) != 0) {
      LeaseRequestDone(*items[i].request, &(*results)[i]);
      continue;
    }
    auto it = request_op_.find(*items[i].request);
    if (it == request_op_.end()) continue;
    const uint64_t op = it->second;
    request_op_.erase(it);
    const kv::ApplyResult& r = (*results)[i];
    if (!r.status.ok() || !r.response) {
      Fail(absl::StrCat("n", n.id, " rejected a valid command at index ", r.index, ": ",
                        r.status.ToString()));
      return;
    }
    bool cas_ok = false;
    if (const auto* txn = std::get_if<kv::TxnResponse>(&*r.response)) cas_ok = txn->succeeded;
    Complete(op, std::nullopt, cas_ok);
  }
  n.node->OnApplied(items.back().entry.index);
}

// --- Snapshots ------------------------------------------------------------------------------

std::unique_ptr<kv::MemoryStateMachine> Simulation::LoadSnapshot(SimNode& n,
                                                                 const std::string& bytes) {
  auto sm = std::make_unique<kv::MemoryStateMachine>();
  bool fed = false;
  absl::Status s = sm->ImportSnapshot("load", [&]() -> absl::StatusOr<std::string> {
    if (fed) return std::string();
    fed = true;
    return bytes;
  });
  if (s.ok()) s = sm->RestoreSnapshot("load");
  if (s.ok()) s = sm->DeleteSnapshot("load");
  if (!s.ok()) {
    Fail(absl::StrCat("n", n.id, " cannot load a snapshot from its store: ", s.ToString()));
    return nullptr;
  }
  return sm;
}

std::string Simulation::ExpectedSnapshot(raft::Index index) {
  kv::MemoryStateMachine ref;
  for (raft::Index i = 1; i <= index; ++i) {
    if (applied_.size() < i || applied_[i - 1] == 0) return "";  // never applied anywhere
  }
  if (index > 0) {
    absl::StatusOr<std::vector<kv::ApplyResult>> r =
        ref.Apply(absl::Span<const kv::ApplyItem>(decoded_.data(), index));
    AM_CHECK(r.ok(), r.status().ToString());
  }
  AM_CHECK(ref.CreateSnapshot("ref").ok());
  std::string out;
  AM_CHECK(ref.ExportSnapshot("ref", [&out](absl::string_view p) {
                out.append(p.data(), p.size());
                return absl::OkStatus();
              }).ok());
  return out;
}

void Simulation::InstallSnapshot(SimNode& n, const raft::SnapshotMeta& meta) {
  auto it = n.snapshots.find(meta.index);
  if (it == n.snapshots.end()) {
    Fail(absl::StrCat("n", n.id, " installs snapshot ", meta.index, " it never kept"));
    return;
  }
  // Checker: the installed state is exactly the committed prefix at the snapshot's index.
  const std::string expected = ExpectedSnapshot(meta.index);
  if (it->second != expected) {
    Fail(absl::StrCat("snapshot install: n", n.id, " installs a snapshot at ", meta.index,
                      expected.empty() ? " covering entries no replica applied"
                                       : " whose state differs from the committed prefix"));
    return;
  }
  // Into the state machine the node's watchers read, as the server does (they catch up).
  kv::WatchHub& hub = Hub(n);
  bool fed = false;
  absl::Status load = n.sm->ImportSnapshot("install", [&]() -> absl::StatusOr<std::string> {
    if (fed) return std::string();
    fed = true;
    return it->second;
  });
  if (load.ok()) load = n.sm->RestoreSnapshot("install");
  if (load.ok()) load = n.sm->DeleteSnapshot("install");
  if (!load.ok()) {
    Fail(absl::StrCat("n", n.id, " cannot install snapshot ", meta.index, ": ", load.ToString()));
    return;
  }
  if (n.sm->applied_index() != meta.index) {
    Fail(absl::StrCat("n", n.id, " snapshot ", meta.index, " holds applied index ",
                      n.sm->applied_index()));
    return;
  }
  if (config_.bug != "watch_forget_restore") hub.OnRestored();
  WatchDeliver(n);
  ResetLessor(n);
  ++stats_.installs;
  ++n.installs;
  Trace(absl::StrCat("n", n.id, " installed snapshot ", meta.term, "/", meta.index));
  n.node->OnApplied(meta.index);
}

void Simulation::RunSnapshotEffects(SimNode& n, node::Effects& e) {
  if (e.take_snapshot) {
    std::string bytes;
    AM_CHECK(n.sm->CreateSnapshot("take").ok());
    AM_CHECK(n.sm->ExportSnapshot("take", [&bytes](absl::string_view p) {
                   bytes.append(p.data(), p.size());
                   return absl::OkStatus();
                 }).ok());
    AM_CHECK(n.sm->DeleteSnapshot("take").ok());
    const raft::Index index = n.sm->applied_index();
    n.snapshots[index] = std::move(bytes);
    ++stats_.snapshots;
    Trace(absl::StrCat("n", n.id, " snapshot at ", index));
    n.node->OnSnapshotTaken(index, absl::OkStatus());
  }
  if (e.delete_snapshots_below) {
    const raft::Index below = *e.delete_snapshots_below;
    n.snapshots.erase(n.snapshots.begin(), n.snapshots.lower_bound(below));
    n.staging.erase(n.staging.begin(), n.staging.lower_bound(below));
    n.staged.erase(n.staged.begin(), n.staged.lower_bound(below));
  }
  for (const node::SnapshotRead& read : e.snapshot_reads) {
    auto it = n.snapshots.find(read.meta.index);
    if (it == n.snapshots.end()) {
      n.node->OnSnapshotRead(read, absl::NotFoundError("snapshot deleted"));
      continue;
    }
    const std::string& bytes = it->second;
    n.node->OnSnapshotRead(read, node::SnapshotBytes{bytes.substr(read.offset, read.max_bytes),
                                                     bytes.size(), Crc32c(bytes)});
  }
  for (const node::SnapshotWrite& w : e.snapshot_writes) {
    std::string& staged = n.staging[w.meta.index];
    staged.resize(w.offset);
    staged += w.data;
    if (w.offset == 0) n.staged[w.meta.index] = {w.meta, w.total_bytes, w.total_crc, 0};
    n.node->OnSnapshotWritten(w.meta, w.offset, w.data.size(), absl::OkStatus());
  }
  if (e.snapshot_finish) {
    const node::SnapshotFinish& f = *e.snapshot_finish;
    auto it = n.staging.find(f.meta.index);
    const bool whole = it != n.staging.end() && it->second.size() == f.total_bytes &&
                       Crc32c(it->second) == f.total_crc;
    if (whole) {
      n.snapshots[f.meta.index] = std::move(it->second);
      n.staging.erase(it);
      n.staged.erase(f.meta.index);
    }
    n.node->OnSnapshotReceived(f.meta, whole ? absl::OkStatus()
                                             : absl::DataLossError("snapshot checksum mismatch"));
  }
}

void Simulation::CheckNode(SimNode& n) {
  if (!n.up) return;
  const raft::Raft& r = n.node->raft();
  if (r.term() < n.term) Fail(absl::StrCat("n", n.id, " term went back from ", n.term));
  if (r.commit() < n.commit) Fail(absl::StrCat("n", n.id, " commit went back from ", n.commit));
  const bool committed = r.role() == raft::Role::kLeader && r.commit() > n.commit;
  if (committed) {
    CheckCommitQuorum(n, r.commit());
    if (failed()) return;
  }
  if (r.role() == raft::Role::kLeader) {
    if (n.role != raft::Role::kLeader) {
      Buggify(n, "elected", config_.buggify_elected_percent);
    } else if (r.log().LastIndex() > n.last_index) {
      Buggify(n, "appended", config_.buggify_appended_percent);
    }
    // A leader's first commit of its term (its no-op, with what it re-replicated before it).
    if (committed && n.committed_in_term != r.term()) {
      n.committed_in_term = r.term();
      Buggify(n, "first commit", config_.buggify_committed_percent);
    }
  }
  n.last_index = r.log().LastIndex();
  n.term = r.term();
  n.commit = r.commit();
  stats_.commits = std::max<uint64_t>(stats_.commits, r.commit());
  CheckConfiguration(n);
  n.conf = r.configuration();
  if (failed()) return;
  if (r.role() == raft::Role::kLeader) {
    if (n.role != raft::Role::kLeader) Trace(trace::Leader(n.id, r.term()));
    auto [it, inserted] = leaders_.emplace(r.term(), n.id);
    if (!inserted && it->second != n.id) {
      Fail(absl::StrCat("election safety: n", n.id, " and n", it->second,
                        " are both leader in term ", r.term()));
      return;
    }
    if (n.role != raft::Role::kLeader) {
      ++stats_.leader_changes;
      // Leader completeness (paper §5.4.1): an entry committed in term T is in the log of every
      // leader of a term above T. (A leader of an older term can still appear — e.g. a paused
      // candidate that collects its old votes on resume — and need not hold later commits.)
      for (raft::Index i = r.log().snapshot_index() + 1; i <= committed_.size(); ++i) {
        if (committed_[i - 1].second >= r.term()) continue;
        if (r.log().TermAt(i) != std::optional<raft::Term>(committed_[i - 1].first)) {
          Fail(absl::StrCat("leader completeness: n", n.id, " leads term ", r.term(),
                            " without committed entry ", i));
          return;
        }
      }
    }
  }
  n.role = r.role();
  // Committed entries never change (log matching on the committed prefix).
  // (Entries below the log's start are in a snapshot, checked when it is installed.)
  for (raft::Index i = std::max(n.checked_commit + 1, r.log().snapshot_index());
       i <= r.commit(); ++i) {
    if (i == 0) continue;
    const std::optional<raft::Term> at = r.log().TermAt(i);
    AM_CHECK(at.has_value(), "commit ", r.commit(), " beyond the log of n", n.id);
    const raft::Term t = *at;
    if (committed_.size() < i) {
      committed_.push_back({t, r.term()});
    } else if (committed_[i - 1].first == t) {
      committed_[i - 1].second = std::min(committed_[i - 1].second, r.term());
    } else {
      Fail(absl::StrCat("committed entry changed: n", n.id, " has term ", t, " at index ", i,
                        ", committed with term ", committed_[i - 1].first));
      return;
    }
  }
  n.checked_commit = r.commit();
}

void Simulation::StartDisk(SimNode& n, wal::DiskBatch batch) {
  AM_CHECK(!n.in_flight.has_value());
  uint64_t ns = config_.write_us * 1000 + batch.record_bytes;  // ~1 GB/s
  if (batch.syncs) ns += Between(disk_rng_, config_.fsync_us / 2, config_.fsync_us * 3 / 2) * 1000;
  if (n.slow_disk) ns *= 20;
  n.in_flight = std::move(batch);
  At(now_ + ns, EventKind::kDiskDone, n.id << 32 | n.incarnation);
}

void Simulation::DiskDoneEvent(uint64_t key) {
  SimNode* n = Incarnation(key);
  if (n == nullptr || !n->in_flight) return;
  if (n->paused) {
    n->disk_done_while_paused = true;
    return;
  }
  wal::DiskBatch b = std::move(*n->in_flight);
  n->in_flight.reset();
  absl::Status s = wal::ExecuteBatch(b, &n->disk);
  if (!s.ok()) Trace(absl::StrCat("n", n->id, " disk error: ", s.message()));
  n->node->OnDiskDone(b.id, s);
  Process(*n);
}

void Simulation::Send(raft::Message m) {
  ++stats_.messages;
  Mix(static_cast<uint64_t>(m.type) << 56 ^ m.from << 48 ^ m.to << 40 ^ m.term << 20 ^ m.index);
  if (keep_trace_) {
    // Not hashed on its own (Mix above covers it), so traces with and without it hash alike.
    trace_.push_back(absl::StrFormat("%12.6f   send %s", now_ / 1e9, raft::DescribeMessage(m)));
  }
  if (Cut(m.from, m.to)) return;
  if (!faults_off_ && config_.drop > 0 && Chance(net_rng_) < config_.drop) return;
  if (!faults_off_ && config_.chunk_corruption > 0 && !m.chunk.data.empty() &&
      Chance(net_rng_) < config_.chunk_corruption) {
    m.chunk.data[net_rng_.Uniform(m.chunk.data.size())] ^= 0x04;  // the checksum must catch it
  }
  uint64_t delay = Between(net_rng_, config_.latency_min_us, config_.latency_max_us) * 1000;
  if (auto it = clogged_.find({m.from, m.to}); it != clogged_.end()) delay += it->second;
  const bool dup = !faults_off_ && config_.duplicate > 0 && Chance(net_rng_) < config_.duplicate;
  if (dup) {
    const uint64_t d2 =
        Between(net_rng_, config_.latency_min_us, config_.latency_max_us * 4) * 1000;
    const uint64_t copy = Park(raft::Message(m));
    At(now_ + d2, EventKind::kDeliver, copy);
  }
  // Messages in flight wait in a slab, so that an event is two words (no allocation).
  const uint64_t slot = Park(std::move(m));
  At(now_ + delay, EventKind::kDeliver, slot);
}

uint64_t Simulation::Park(raft::Message m) {
  if (free_slots_.empty()) {
    in_flight_.push_back(std::move(m));
    return in_flight_.size() - 1;
  }
  const uint64_t slot = free_slots_.back();
  free_slots_.pop_back();
  in_flight_[slot] = std::move(m);
  return slot;
}

void Simulation::DeliverParked(uint64_t slot) {
  raft::Message m = std::move(in_flight_[slot]);
  in_flight_[slot] = raft::Message();
  free_slots_.push_back(slot);
  // A link cut while the message was on it loses it (a partition drops packets in flight).
  if (Cut(m.from, m.to)) return;
  Deliver(m);
}

void Simulation::Deliver(const raft::Message& m) {
  SimNode& n = *nodes_[m.to - 1];
  if (keep_trace_) {  // not hashed on its own, like `send`
    trace_.push_back(absl::StrFormat("%12.6f   recv %d->%d %s%s", now_ / 1e9, m.from, m.to,
                                     raft::MessageTypeName(m.type),
                                     !n.up ? " (dropped: down)" : n.paused ? " (held: paused)" : ""));
  }
  if (!n.up) return;
  if (n.paused) {
    if (n.held.size() < 10000) n.held.push_back(m);  // the socket buffers it
    return;
  }
  Receive(n, m);
  Process(n);
}

void Simulation::Receive(SimNode& n, const raft::Message& m) {
  absl::Status s = n.node->Receive(m);
  if (s.ok()) return;
  const raft::Configuration& conf = n.node->raft().configuration();
  if (!conf.IsMember(m.from)) {
    // From a node outside this one's configuration (removed, not knowing it yet): refused.
    Trace(absl::StrCat("n", n.id, " refused ", raft::MessageTypeName(m.type), " from n", m.from,
                       ": not a member"));
    return;
  }
  Fail(absl::StrCat("n", n.id, " rejected a message: ", s.ToString()));
}

// --- Faults ---------------------------------------------------------------------------------

bool Simulation::IsUp(NodeId id) const { return nodes_[id - 1]->up; }
bool Simulation::IsPaused(NodeId id) const {
  return nodes_[id - 1]->up && nodes_[id - 1]->paused;
}
bool Simulation::IsRefused(NodeId id) const { return nodes_[id - 1]->refused; }

const std::vector<Simulation::AlertRecord>& Simulation::alerts(NodeId id) const {
  return nodes_[id - 1]->alerts;
}

absl::Status Simulation::TransferLeadership(NodeId from, NodeId to) {
  SimNode& n = *nodes_[from - 1];
  if (!n.up || n.paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("n", from, n.up ? " is paused" : " is down"));
  }
  Trace(trace::Transfer(from, to));
  absl::Status s = n.node->TransferLeadership(to);
  Process(n);
  return s;
}

absl::Status Simulation::Campaign(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (!n.up || n.paused) {
    return absl::FailedPreconditionError(
        absl::StrCat("n", id, n.up ? " is paused" : " is down"));
  }
  Trace(trace::Campaign(id));
  n.node->Campaign();
  Process(n);
  return absl::OkStatus();
}

const node::Node* Simulation::node(NodeId id) const { return nodes_[id - 1]->node.get(); }

std::optional<NodeId> Simulation::Leader() const {
  std::optional<NodeId> best;
  raft::Term term = 0;
  for (const auto& n : nodes_) {
    if (n->up && !n->paused && n->node->raft().role() == raft::Role::kLeader &&
        n->node->raft().term() >= term) {
      best = n->id;
      term = n->node->raft().term();
    }
  }
  return best;
}

void Simulation::Partition(const std::vector<std::set<NodeId>>& groups) {
  blocked_.clear();
  std::map<NodeId, int> group_of;
  for (size_t g = 0; g < groups.size(); ++g) {
    for (NodeId id : groups[g]) group_of[id] = static_cast<int>(g);
  }
  for (NodeId a = 1; a <= static_cast<NodeId>(config_.nodes); ++a) {
    for (NodeId b = 1; b <= static_cast<NodeId>(config_.nodes); ++b) {
      if (a == b) continue;
      auto ga = group_of.find(a), gb = group_of.find(b);
      if (ga == group_of.end() || gb == group_of.end() || ga->second != gb->second) {
        blocked_.insert({a, b});
      }
    }
  }
  Trace(trace::Partition(groups));
}

void Simulation::BlockLink(NodeId from, NodeId to) {
  blocked_.insert({from, to});
  Trace(trace::Block(from, to));
}

void Simulation::Clog(NodeId from, NodeId to, uint64_t extra_ns) {
  clogged_[{from, to}] = extra_ns;
  Trace(trace::Clog(from, to, extra_ns / kMs));
}

void Simulation::Heal() {
  blocked_.clear();
  clogged_.clear();
  Trace(trace::HealNetwork());
}

void Simulation::Crash(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (!n.up) return;
  ++stats_.crashes;
  // A batch the disk was executing is cut short: some prefix of its operations happened.
  if (n.in_flight) {
    wal::DiskBatch part = *n.in_flight;
    part.ops.resize(disk_rng_.Uniform(part.ops.size() + 1));
    (void)wal::ExecuteBatch(part, &n.disk);  // a disk error here is just a shorter prefix
    n.in_flight.reset();
  }
  // With sync_mode always a crash is a power loss (unsynced data lost or torn). The other modes
  // promise only to survive a process crash (docs/wal-format.md), so that is what they get;
  // the skip_fsync planted bug keeps the power-loss model to show why fsync matters.
  const bool power_loss = config_.sync_mode == wal::SyncMode::kAlways;
  n.disk.Crash(power_loss ? wal::SimDisk::CrashMode::kRandom : wal::SimDisk::CrashMode::kProcessOnly,
               &disk_rng_);
  // Staged chunks are not synced one by one (the whole copy is, before it is kept): a power
  // loss keeps some prefix of the copy being received.
  if (power_loss && !n.staging.empty()) {
    std::string& copy = n.staging.rbegin()->second;
    copy.resize(disk_rng_.Uniform(copy.size() + 1));
  }
  n.up = false;
  WatchDisconnect(n);
  n.node.reset();
  n.sm.reset();
  n.held.clear();
  Trace(trace::Crash(id));
}

bool Simulation::Wipe(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (n.up) return false;
  n.disk = wal::SimDisk();
  n.snapshots.clear();
  n.staging.clear();
  n.staged.clear();
  n.refused = false;
  n.corrupted = false;
  Trace(trace::Wipe(id));
  return true;
}

uint64_t Simulation::installs(NodeId id) const { return nodes_[id - 1]->installs; }

void Simulation::Restart(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (n.up || n.refused) return;
  Trace(trace::Restart(id));
  Start(n);
}

void Simulation::Pause(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (!n.up || n.paused) return;
  n.paused = true;
  Trace(trace::Pause(id));
}

void Simulation::Resume(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  if (!n.up || !n.paused) return;
  n.paused = false;
  Trace(trace::Resume(id));
  // A resumed process finds its tick timer long overdue and ticks before it reads what arrived
  // meanwhile (the server's loop does, after SIGCONT): the node's first view of time after the
  // pause is a silence it slept through, which it must not read as its peers' failure.
  n.node->Tick(now_ / kMs);
  Process(n);
  std::vector<raft::Message> held = std::move(n.held);
  n.held.clear();
  for (const raft::Message& m : held) {
    if (!n.up) break;
    Receive(n, m);
    Process(n);
  }
  if (n.up && n.disk_done_while_paused && n.in_flight) {
    n.disk_done_while_paused = false;
    wal::DiskBatch b = std::move(*n.in_flight);
    n.in_flight.reset();
    absl::Status s = wal::ExecuteBatch(b, &n.disk);
    n.node->OnDiskDone(b.id, s);
    Process(n);
  }
}

void Simulation::SetSlowDisk(NodeId id, bool slow) {
  nodes_[id - 1]->slow_disk = slow;
  Trace(trace::SlowDisk(id, slow));
}

void Simulation::SetDiskFull(NodeId id, bool full) {
  SimNode& n = *nodes_[id - 1];
  n.disk.set_capacity_bytes(full ? n.disk.used_bytes() + 1024 : 0);
  Trace(trace::DiskFull(id, full));
}

bool Simulation::CorruptWal(NodeId id) {
  SimNode& n = *nodes_[id - 1];
  absl::StatusOr<std::vector<std::string>> names = n.disk.List();
  if (!names.ok() || names->empty()) return false;
  const std::string& name = (*names)[disk_rng_.Uniform(names->size())];
  // Only what a crash keeps: a record whose successor a crash could drop would become the last
  // one, indistinguishable from a torn write (docs/simulation.md §13).
  std::optional<std::string> bytes = n.disk.DurableContents(name);
  if (!bytes.has_value()) return false;
  // Record boundaries; pick a durable record with another valid durable record after it.
  std::vector<std::pair<size_t, size_t>> records;
  size_t off = wal::kSegmentHeaderBytes;
  while (off < bytes->size()) {
    wal::DecodeResult d = wal::DecodeRecord(absl::string_view(*bytes).substr(off));
    if (d.kind != wal::DecodeResult::Kind::kOk) break;
    records.push_back({off, d.size});
    off += d.size;
  }
  if (records.size() < 2) return false;
  const auto [start, size] = records[disk_rng_.Uniform(records.size() - 1)];
  const uint64_t at = start + disk_rng_.Uniform(size);
  n.disk.Corrupt(name, at, static_cast<int>(disk_rng_.Uniform(8)));
  n.corrupted = true;
  Trace(trace::Corrupt(id, name, at));
  return true;
}

void Simulation::StartTargetedFaults(uint64_t until_ns) {
  faults_until_ns_ = std::max(faults_until_ns_, until_ns);
}

void Simulation::StartRandomFaults(uint64_t until_ns) {
  At(now_ + Between(fault_rng_, config_.fault_interval_ms / 2, config_.fault_interval_ms * 3 / 2) * kMs,
     [this, until_ns] { RandomFault(until_ns); });
}

void Simulation::RandomFault(uint64_t until_ns) {
  if (now_ >= until_ns) return;
  ++stats_.faults;
  const NodeId n = static_cast<NodeId>(1 + fault_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
  const NodeId m = static_cast<NodeId>(1 + fault_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
  switch (fault_rng_.Uniform(10)) {
    case 0:
    case 1:
      if (config_.partitions) {
        std::vector<std::set<NodeId>> groups(2);
        for (NodeId id = 1; id <= static_cast<NodeId>(config_.nodes); ++id) {
          groups[fault_rng_.Uniform(2)].insert(id);
        }
        Partition(groups);
      }
      break;
    case 2:
      if (config_.partitions) {
        if (fault_rng_.Uniform(2) == 0) {
          if (n != m) BlockLink(n, m);
        } else {
          std::set<NodeId> rest;
          for (NodeId id = 1; id <= static_cast<NodeId>(config_.nodes); ++id) {
            if (id != n) rest.insert(id);
          }
          Partition({{n}, rest});  // isolate one node
        }
      }
      break;
    case 3:
      Heal();
      break;
    case 4:
      if (config_.crashes) Crash(n);
      break;
    case 5:
      if (config_.crashes) {
        for (NodeId id = 1; id <= static_cast<NodeId>(config_.nodes); ++id) Restart(id);
      }
      break;
    case 6:
      if (config_.pauses) {
        if (nodes_[n - 1]->paused) {
          Resume(n);
        } else if (nodes_[n - 1]->up) {
          // A pause (GC, SIGSTOP, a stalled VM) ends by itself after a while.
          Pause(n);
          const uint64_t inc = nodes_[n - 1]->incarnation;
          At(now_ + Between(fault_rng_, 50, 3000) * kMs, [this, n, inc] {
            if (nodes_[n - 1]->incarnation == inc) Resume(n);
          });
        }
      }
      break;
    case 7:
      if (config_.clogs && n != m) Clog(n, m, Between(fault_rng_, 50, 2000) * kMs);
      break;
    case 8:
      if (config_.slow_disks && !nodes_[n - 1]->slow_disk) {
        SetSlowDisk(n, true);
        At(now_ + Between(fault_rng_, 500, 5000) * kMs, [this, n] {
          if (nodes_[n - 1]->slow_disk) SetSlowDisk(n, false);
        });
      }
      if (config_.disk_full && fault_rng_.Uniform(4) == 0) SetDiskFull(m, true);
      break;
    case 9:
      // Corruption on one node only, at most once per run: it must be detected, never spread.
      if (config_.corruption) {
        bool already = false;
        for (const auto& node : nodes_) already |= node->corrupted;
        if (!already && CorruptWal(n)) Crash(n);
      }
      break;
  }
  StartRandomFaults(until_ns);
}

void Simulation::Buggify(SimNode& n, const char* moment, uint64_t percent) {
  if (percent == 0 || n.targeted_incarnation == n.incarnation || faults_off_ ||
      now_ >= faults_until_ns_) {
    return;
  }
  if (targeted_kinds_.empty()) return;
  if (buggify_rng_.Uniform(100) >= percent) return;
  n.targeted_incarnation = n.incarnation;
  // Three in four strike before anything else happens (the messages of this step are on the
  // wire: an isolation loses them, a crash or a pause does not), the others within two network
  // latencies: before or after the next round trip.
  const uint64_t delay_ns =
      buggify_rng_.Uniform(4) != 0 ? 0 : buggify_rng_.Uniform(2 * config_.latency_max_us + 1) * 1000;
  At(now_ + delay_ns, [this, id = n.id, inc = n.incarnation, moment] {
    TargetedFault(id, inc, moment);
  });
}

void Simulation::TargetedFault(NodeId id, uint64_t incarnation, const char* moment) {
  SimNode& n = *nodes_[id - 1];
  if (faults_off_ || !n.up || n.paused || n.incarnation != incarnation) {
    if (n.targeted_incarnation == incarnation) n.targeted_incarnation = 0;
    return;
  }
  AM_CHECK_EQ(n.targeted_incarnation, incarnation, "a targeted fault on n", id, " not scheduled");
  AM_CHECK(!targeted_kinds_.empty(), "Buggify schedules only with a fault kind on");
  const char kind = targeted_kinds_[buggify_rng_.Uniform(targeted_kinds_.size())];
  const uint64_t back = now_ + Between(buggify_rng_, 200, 2000) * kMs;
  ++stats_.faults;
  Trace(absl::StrCat("buggify n", id, " after ", moment, ": ",
                     kind == 'c' ? "crash" : kind == 'p' ? "pause" : "isolate"));
  // Ends the fault's hold on the node (a crash's ends with the incarnation).
  auto release = [this, id, incarnation] {
    SimNode& t = *nodes_[id - 1];
    if (t.targeted_incarnation == incarnation) t.targeted_incarnation = 0;
  };
  if (kind == 'c') {
    Crash(id);
    At(back, [this, id] { Restart(id); });
  } else if (kind == 'p') {
    Pause(id);
    At(back, [this, id, incarnation, release] {
      release();
      if (nodes_[id - 1]->incarnation == incarnation) Resume(id);
    });
  } else {
    // Apart from partitions: a heal of the network does not end it, and it ends nothing else.
    isolated_.insert(id);
    At(back, [this, id, release] {
      release();
      if (isolated_.erase(id) > 0) Trace(absl::StrCat("buggify n", id, " rejoins"));
    });
  }
}

void Simulation::HealAll() {
  Trace(trace::HealAll());
  faults_off_ = true;  // no more loss or duplication either
  Heal();
  isolated_.clear();
  for (auto& n : nodes_) {
    n->slow_disk = false;
    n->disk.set_capacity_bytes(0);
    n->disk.ClearFault();
    if (n->up && n->paused) Resume(n->id);
    if (!n->up) Restart(n->id);
  }
}

// --- Membership changes ---------------------------------------------------------------------

void Simulation::StartReconfiguration(uint64_t until_ns) {
  const uint64_t mean = config_.reconfig_interval_ms;
  At(now_ + Between(reconfig_rng_, mean / 2, mean * 3 / 2) * kMs,
     [this, until_ns] { RandomConfChange(until_ns); });
}

absl::Status Simulation::ProposeConfChange(const raft::ConfChange& change) {
  std::optional<NodeId> leader = Leader();
  if (!leader) return absl::UnavailableError("no leader");
  SimNode& n = *nodes_[*leader - 1];
  if (!n.up || n.paused) return absl::UnavailableError(absl::StrCat("leader n", n.id, " paused"));
  const uint64_t request = next_conf_request_++;
  conf_refusals_.clear();
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kConfChange;
  r.change = change;
  r.deadline_ms = (now_ + config_.client_timeout_ms * kMs) / kMs;
  n.requests->Submit(*n.node, request, std::move(r), now_ / kMs);
  Trace(absl::StrCat("n", n.id, " asked: ", raft::DescribeConfChange(change)));
  Process(n);
  auto it = conf_refusals_.find(request);
  return it == conf_refusals_.end() ? absl::OkStatus() : it->second;
}

namespace {

// The record of simulated node `id` as its `version`th address (names and URLs are opaque to
// Raft; the checkers compare them as part of each node's configuration).
raft::MemberInfo SimMemberInfo(NodeId id, uint64_t version) {
  return raft::MemberInfo{id, absl::StrCat("n", id),
                          {absl::StrCat("sim://n", id, ":", 2380 + version)},
                          {absl::StrCat("sim://n", id, ":2379")}};
}

}  // namespace

// One random change the leader may accept: add a node outside the configuration as a learner
// (a spare, or a node removed before), promote
// a learner, remove a member (the leader too), or replace a voter by a learner at once
// (joint consensus). The leader refuses what its rules forbid (a change pending, a learner
// behind); that is part of what is tested.
void Simulation::RandomConfChange(uint64_t until_ns) {
  if (now_ >= until_ns) return;
  StartReconfiguration(until_ns);
  std::optional<NodeId> leader = Leader();
  if (!leader) return;
  const raft::Configuration conf = nodes_[*leader - 1]->node->raft().configuration();
  std::vector<NodeId> outside;
  for (NodeId id = 1; id <= static_cast<NodeId>(config_.nodes); ++id) {
    if (!conf.IsMember(id)) outside.push_back(id);
  }
  auto pick = [this](const std::vector<NodeId>& from) {
    return from[reconfig_rng_.Uniform(from.size())];
  };
  using Type = raft::ConfChangeStep::Type;
  const uint64_t kind = reconfig_rng_.Uniform(10);
  const size_t min_voters = static_cast<size_t>(std::min(3, config_.initial_voters));
  raft::ConfChange change;
  if (kind < 4 && !outside.empty()) {
    // A node removed before comes back with its disk as it was (its term and vote intact):
    // an emptied disk under a known id could vote twice in a term (docs/membership.md).
    const NodeId added = pick(outside);
    change.steps = {{Type::kAddLearner, added}};
    change.members = {SimMemberInfo(added, 0)};
  } else if (kind < 7 && !conf.learners.empty()) {
    change.steps = {{Type::kAddVoter, pick(conf.learners)}};
  } else if (kind < 9 && (conf.voters.size() > min_voters || !conf.learners.empty())) {
    const bool voter = conf.voters.size() > min_voters && (conf.learners.empty() ||
                                                           reconfig_rng_.Uniform(2) == 0);
    change.steps = {{Type::kRemove, pick(voter ? conf.voters : conf.learners)}};
  } else if (!conf.learners.empty()) {
    change.steps = {{Type::kAddVoter, pick(conf.learners)}, {Type::kRemove, pick(conf.voters)}};
  } else {
    // Only a member's record changes (etcd's MemberUpdate: a new peer URL).
    change.members = {SimMemberInfo(pick(conf.Members()), 1 + reconfig_rng_.Uniform(1000))};
  }
  (void)ProposeConfChange(change);  // a refusal is one of the outcomes under test
}

void Simulation::RecordConfChange(SimNode& n, const raft::Entry& e) {
  // The first node to apply index e.index records what it decides; state machine safety makes
  // every other node apply the same entry there.
  const raft::Configuration before = ConfigurationAt(e.index - 1);
  absl::StatusOr<raft::ConfChange> cc = raft::DecodeConfChange(e.data);
  if (!cc.ok()) {
    Fail(absl::StrCat("n", n.id, " applied an undecodable configuration change at ", e.index));
    return;
  }
  absl::StatusOr<raft::Configuration> after = raft::ApplyConfChange(before, *cc);
  if (!cc->result) {
    Fail(absl::StrCat("the configuration change at ", e.index, " carries no result"));
    return;
  }
  // The leader computed the result from the configuration in effect when it appended the
  // change; it must be what the change makes of the configuration it meets here.
  if (!after.ok() || *after != *cc->result) {
    Fail(absl::StrCat("configuration change at ", e.index, " (", raft::DescribeConfChange(*cc),
                      ") records ", cc->result->Describe(), " but meets ", before.Describe(),
                      ", which it ",
                      after.ok() ? absl::StrCat("turns into ", after->Describe())
                                 : absl::StrCat("cannot apply to: ", after.status().message())));
    return;
  }
  if (conf_history_.back().first >= e.index) {
    Fail(absl::StrCat("configuration history: change at ", e.index, " recorded after ",
                      conf_history_.back().first));
    return;
  }
  // Any quorum of the configuration before and any quorum of the one after must overlap.
  const std::vector<NodeId> all = [&] {
    std::set<NodeId> u;
    for (NodeId v : before.Members()) u.insert(v);
    for (NodeId v : after->Members()) u.insert(v);
    return std::vector<NodeId>(u.begin(), u.end());
  }();
  for (uint64_t mask = 0; mask < (uint64_t{1} << all.size()); ++mask) {
    std::map<NodeId, bool> a, b;
    for (size_t k = 0; k < all.size(); ++k) {
      a[all[k]] = (mask >> k) & 1;
      b[all[k]] = !a[all[k]];
    }
    if (before.Tally(a) == raft::VoteResult::kWon && after->Tally(b) == raft::VoteResult::kWon) {
      Fail(absl::StrCat("configuration safety: the change at ", e.index, " (",
                        raft::DescribeConfChange(*cc), ") moves from ", before.Describe(), " to ",
                        after->Describe(), ", whose quorums can be disjoint"));
      return;
    }
  }
  ++stats_.conf_changes;
  Trace(absl::StrCat("configuration at ", e.index, ": ", after->Describe()));
  conf_history_.emplace_back(e.index, *std::move(after));
}

raft::Configuration Simulation::ConfigurationAt(raft::Index index) const {
  for (auto it = conf_history_.rbegin(); it != conf_history_.rend(); ++it) {
    if (it->first <= index) return it->second;
  }
  return conf_history_.front().second;
}

bool Simulation::IsMember(NodeId id) const {
  std::optional<NodeId> leader = Leader();
  if (!leader) return ConfigurationAt(UINT64_MAX).IsMember(id);
  return nodes_[*leader - 1]->node->raft().configuration().IsMember(id);
}

void Simulation::CheckConfiguration(SimNode& n) {
  const raft::Raft& r = n.node->raft();
  // The configuration in effect is the one the node's applied log decided.
  const raft::Configuration decided = ConfigurationAt(r.applied());
  if (r.configuration() != decided) {
    Fail(absl::StrCat("configuration: n", n.id, " has applied up to ", r.applied(), " but uses ",
                      r.configuration().Describe(), " instead of ", decided.Describe()));
    return;
  }
  if (r.role() != raft::Role::kLeader) return;
  // At most one change in the leader's log beyond what it has applied.
  int pending = 0;
  for (raft::Index i = std::max(r.applied(), r.log().snapshot_index()) + 1;
       i <= r.log().LastIndex(); ++i) {
    pending += r.log().At(i).type == raft::EntryType::kConfChange ? 1 : 0;
  }
  if (pending > 1) {
    Fail(absl::StrCat("configuration: leader n", n.id, " has ", pending,
                      " configuration changes pending at once"));
  }
}

void Simulation::CheckCommitQuorum(SimNode& n, raft::Index index) {
  // The leader committed `index`: a quorum of the configuration it decided with must hold that
  // entry durably. That is the configuration in effect at the last check or, if this round
  // applied a change (whose new quorum may commit at once), the one in effect now. Nodes that
  // are down count as holding it (their disk cannot be asked; never a false alarm).
  const raft::Raft& leader = n.node->raft();
  const std::optional<raft::Term> term = leader.log().TermAt(index);
  if (!term) return;
  auto holds = [&](const raft::Configuration& conf) {
    std::map<NodeId, bool> votes;
    for (NodeId v : conf.AllVoters()) {
      const SimNode& m = *nodes_[v - 1];
      if (!m.up) {
        votes[v] = true;
        continue;
      }
      const raft::Raft& r = m.node->raft();
      votes[v] = r.persisted_index() >= index &&
                 (r.log().TermAt(index) == term || r.snapshot().index >= index);
    }
    return conf.Tally(votes) == raft::VoteResult::kWon;
  };
  if (!holds(n.conf) && !holds(leader.configuration())) {
    Fail(absl::StrCat("commit quorum: leader n", n.id, " committed index ", index,
                      " which no quorum of ", n.conf.Describe(), " (nor of ",
                      leader.configuration().Describe(), ") holds"));
  }
}

// --- Clients --------------------------------------------------------------------------------

void Simulation::StartWorkload() {
  workload_on_ = true;
  for (size_t c = 0; c < clients_.size(); ++c) {
    if (!clients_[c].idle) continue;
    clients_[c].idle = false;
    At(now_, EventKind::kClientStep, c);
  }
  if (lease_client_->idle) {
    lease_client_->idle = false;
    At(now_, [this] { LeaseStep(); });
  }
}

void Simulation::ClientStep(int c) {
  Client& cl = clients_[static_cast<size_t>(c)];
  if (!workload_on_ || failed()) {
    cl.idle = true;
    return;
  }
  ClientOp op;
  op.op.client = static_cast<uint64_t>(cl.id);
  op.op.key = absl::StrCat("k", work_rng_.Uniform(static_cast<uint64_t>(config_.keys)));
  op.op.invoke_ns = now_;
  const uint64_t kind = work_rng_.Uniform(20);
  const std::string value = absl::StrCat("c", cl.id, "-", ++cl.counter);
  kv::Command cmd;
  bool read = false;
  if (kind < 6) {
    op.op.kind = checker::OpKind::kGet;
    read = true;
  } else if (kind < 13) {
    op.op.kind = checker::OpKind::kPut;
    op.op.value = value;
    cmd.op = kv::PutRequest{op.op.key, value, false};
  } else if (kind < 15) {
    op.op.kind = checker::OpKind::kDelete;
    cmd.op = kv::DeleteRangeRequest{op.op.key, "", false};
  } else {
    op.op.kind = checker::OpKind::kCas;
    op.op.value = value;
    // Compare against a value this client may have seen: one of the recent values, or absent.
    kv::Compare cmp;
    cmp.key = op.op.key;
    if (work_rng_.Uniform(3) == 0 || cl.counter < 2) {
      cmp.target = kv::Compare::Target::kVersion;  // version == 0: the key is absent
      cmp.number = 0;
    } else {
      const uint64_t who = 1 + work_rng_.Uniform(static_cast<uint64_t>(config_.clients));
      const uint64_t back = 1 + work_rng_.Uniform(3);
      const uint64_t their = who == static_cast<uint64_t>(cl.id) ? cl.counter - 1
                                                                 : clients_[who - 1].counter;
      op.op.expected = absl::StrCat("c", who, "-", their > back ? their - back + 1 : 1);
      cmp.target = kv::Compare::Target::kValue;
      cmp.value = *op.op.expected;
    }
    kv::TxnRequest txn;
    txn.compare.push_back(cmp);
    txn.success.push_back(kv::PutRequest{op.op.key, value, false});
    cmd.op = std::move(txn);
  }
  // Usually the node the client believes leads; sometimes any node (followers redirect).
  NodeId target = cl.target;
  if (work_rng_.Uniform(5) == 0) {
    target = static_cast<NodeId>(1 + work_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
  }
  op.node = target;
  op.request = next_request_++;
  const uint64_t index = ops_.size();
  ops_.push_back(op);
  ++pending_ops_;
  SimNode& n = *nodes_[target - 1];
  if (!n.up || n.paused) {
    // Connection refused (down) or not accepted (a paused process does not accept): the
    // request was never submitted.
    cl.target = static_cast<NodeId>(1 + work_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
    FailOp(index, true);
    return;
  }
  request_op_[op.request] = index;
  Mix(op.request);
  const uint64_t deadline = now_ + config_.client_timeout_ms * kMs;
  node::ClientRequest r;
  r.deadline_ms = deadline / kMs;
  if (read) {
    r.kind = node::ClientRequest::Kind::kRead;
  } else {
    cmd.request_id = op.request;
    r.kind = node::ClientRequest::Kind::kPropose;
    r.data = kv::EncodeCommand(cmd);
  }
  n.requests->Submit(*n.node, op.request, std::move(r), now_ / kMs);
  Process(n);
  At(deadline, EventKind::kOpDeadline, index);
}

void Simulation::OpDeadline(uint64_t index) {
  if (!ops_[index].pending) return;
  request_op_.erase(ops_[index].request);
  clients_[ops_[index].op.client - 1].target =
      static_cast<NodeId>(1 + work_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
  FailOp(index, /*definite=*/false);
}

void Simulation::Complete(uint64_t index, std::optional<std::string> output,
                          bool cas_ok) {
  ClientOp& op = ops_[index];
  if (!op.pending) return;
  op.pending = false;
  --pending_ops_;
  op.op.outcome = checker::OpOutcome::kCompleted;
  op.op.complete_ns = now_;
  op.op.read = std::move(output);
  op.op.cas_succeeded = cas_ok;
  ++stats_.ops_ok;
  Mix(index ^ 0xc0ffee);
  if (keep_trace_) {  // not hashed on its own: Mix above covers it
    trace_.push_back(trace::Line(now_, trace::Client(op.op)));
  }
  if (op.op.client == 0) {
    --final_reads_pending_;
    return;
  }
  Client& cl = clients_[op.op.client - 1];
  cl.target = op.node;
  const int c = cl.id - 1;
  At(now_ + Between(work_rng_, 0, config_.think_ms) * kMs, EventKind::kClientStep,
     static_cast<uint64_t>(c));
}

void Simulation::FailOp(uint64_t index, bool definite) {
  ClientOp& op = ops_[index];
  if (!op.pending) return;
  op.pending = false;
  --pending_ops_;
  op.op.outcome = definite ? checker::OpOutcome::kFailed : checker::OpOutcome::kUnknown;
  if (definite) {
    ++stats_.ops_failed;
  } else {
    ++stats_.ops_unknown;
  }
  Mix(index ^ (definite ? 0xdead : 0xbeef));
  if (op.op.client == 0) {
    --final_reads_pending_;
    return;
  }
  Client& cl = clients_[op.op.client - 1];
  const int c = cl.id - 1;
  // Back off after a failure, as real clients do: a refused request is retried elsewhere soon,
  // not in a tight loop against a node that cannot serve it.
  At(now_ + Between(work_rng_, kRetryBackoffMinMs, kRetryBackoffMaxMs) * kMs,
     EventKind::kClientStep, static_cast<uint64_t>(c));
}

void Simulation::FinalReads() {
  const std::optional<NodeId> leader = Leader();
  if (!leader) return;
  SimNode& n = *nodes_[*leader - 1];
  std::set<std::string> done;
  for (const ClientOp& op : ops_) {
    if (op.op.client == 0 && (op.pending || op.op.outcome == checker::OpOutcome::kCompleted)) {
      done.insert(op.op.key);
    }
  }
  for (int k = 0; k < config_.keys; ++k) {
    const std::string key = absl::StrCat("k", k);
    if (done.count(key)) continue;
    ClientOp op;
    op.op.client = 0;  // the checker's own client
    op.op.kind = checker::OpKind::kGet;
    op.op.key = key;
    op.op.invoke_ns = now_;
    op.node = *leader;
    op.request = next_request_++;
    request_op_[op.request] = ops_.size();
    ops_.push_back(op);
    ++pending_ops_;
    ++final_reads_pending_;
    node::ClientRequest r;
    r.kind = node::ClientRequest::Kind::kRead;
    r.deadline_ms = (now_ + 5 * kSec) / kMs;
    n.requests->Submit(*n.node, op.request, std::move(r), now_ / kMs);
    Process(n);
  }
}

// --- End-of-run checks ----------------------------------------------------------------------

bool Simulation::CheckLiveness(uint64_t max_ns) {
  if (!RunUntil([this] { return pending_ops_ == 0 && AllCaughtUp(); }, max_ns)) {
    if (failed()) return false;
    std::string state;
    for (const auto& n : nodes_) {
      absl::StrAppend(&state, "\n  n", n->id, ": ",
                      n->refused ? "refused to start (corruption detected)"
                      : n->up    ? n->node->raft().Describe() + " applied=" +
                                    std::to_string(n->node->applied())
                                 : "down");
    }
    Fail(absl::StrCat("liveness: no stable leader with every replica caught up and every client "
                      "operation finished within ",
                      max_ns / kSec, "s of healing", state));
    return false;
  }
  // Final linearizable reads of every key through the leader (retried if leadership moves).
  auto all_read = [this] {
    std::set<std::string> ok;
    for (const ClientOp& op : ops_) {
      if (op.op.client == 0 && op.op.outcome == checker::OpOutcome::kCompleted && !op.pending) {
        ok.insert(op.op.key);
      }
    }
    return ok.size() == static_cast<size_t>(config_.keys);
  };
  for (int round = 0; round < 5 && !all_read() && !failed(); ++round) {
    for (uint64_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].op.client == 0 && ops_[i].pending) {
        request_op_.erase(ops_[i].request);
        FailOp(i, /*definite=*/false);  // lost; ask again
      }
    }
    RunUntil([this] { return Leader().has_value(); }, 5 * kSec);
    FinalReads();
    RunUntil([&] { return final_reads_pending_ == 0; }, 5 * kSec);
  }
  if (!failed() && !all_read()) Fail("liveness: final reads of every key did not complete");
  return !failed();
}

bool Simulation::AllCaughtUp() const {
  std::optional<NodeId> leader = Leader();
  if (!leader) return false;
  const raft::Index commit = nodes_[*leader - 1]->node->raft().commit();
  for (const auto& n : nodes_) {
    if (n->refused || !IsMember(n->id)) continue;
    if (!n->up || n->node->applied() != commit || n->node->raft().commit() != commit) {
      return false;
    }
  }
  return true;
}

// --- Auto-compaction ---------------------------------------------------------------------------

void Simulation::AutoCompact(SimNode& n) {
  const bool leader = n.node->raft().role() == raft::Role::kLeader;
  std::optional<int64_t> target =
      n.compactor->Tick(now_ / kMs, leader, n.sm->revision(), n.sm->compact_revision());
  if (!target) return;
  kv::Command c;
  c.request_id = next_compact_request_++;
  c.op = kv::CompactRequest{*target, /*physical=*/true};
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kPropose;
  r.data = kv::EncodeCommand(c);
  r.deadline_ms = now_ / kMs + config_.client_timeout_ms;
  n.requests->Submit(*n.node, c.request_id, std::move(r), now_ / kMs);
  Process(n);
}

// --- Leases and the lease checker -------------------------------------------------------------

namespace {

// The server's minimum TTL, from the election timeout in ticks.
int64_t MinLeaseTtl(const SimConfig& c) {
  return kv::MinLeaseTtlSeconds(static_cast<uint64_t>(c.election_ticks) * c.tick_ms);
}

}  // namespace

uint64_t Simulation::LocalMs(const SimNode& n) const {
  // Whole ticks, then the fraction of the current one: no overflow for any run length.
  return now_ / n.tick_ns * config_.tick_ms + now_ % n.tick_ns * config_.tick_ms / n.tick_ns;
}

void Simulation::ResetLessor(SimNode& n) {
  if (n.lessor == nullptr) {
    kv::LessorOptions o;
    o.min_ttl_s = MinLeaseTtl(config_);
    o.checkpoint_interval_ms = 1000;  // often: checkpoints and their clearing happen in a run
    n.lessor = std::make_unique<kv::Lessor>(o);
    kv::Lessor::PlantedBugs bugs;
    bugs.renew_keeps_expiry = config_.bug == "lease_renew_ignored";
    n.lessor->set_planted_bugs(bugs);
    n.lessor_primary = false;
  }
  std::vector<kv::Lease> leases;
  absl::Status s = n.sm->ForEachLease([&](const kv::Lease& l) {
    leases.push_back(l);
    return true;
  });
  AM_CHECK(s.ok(), s.ToString());
  n.lessor->Reset(leases, LocalMs(n));
}

void Simulation::MirrorLease(SimNode& n, const kv::ApplyItem& item,
                             const kv::ApplyResult& result) {
  if (!result.status.ok() || !item.command.has_value()) return;
  const auto& op = item.command->op;
  if (const auto* g = std::get_if<kv::LeaseGrantRequest>(&op)) {
    n.lessor->Granted(kv::Lease{g->id, g->ttl, 0}, LocalMs(n));
  } else if (const auto* r = std::get_if<kv::LeaseRevokeRequest>(&op)) {
    n.lessor->Revoked(r->id);
  } else if (const auto* c = std::get_if<kv::LeaseCheckpointRequest>(&op)) {
    for (const kv::LeaseCheckpointRequest::Checkpoint& one : c->checkpoints) {
      n.lessor->Checkpointed(one.id, one.remaining_ttl);
    }
  }
}

void Simulation::LeaseTick(SimNode& n) {
  // As the server: primary once the leader applied an entry of its own term.
  const bool leader = n.node->leads_applied_term();
  if (leader != n.lessor_primary) {
    n.lessor_primary = leader;
    if (leader) {
      n.lessor->Promote(LocalMs(n), static_cast<uint64_t>(config_.election_ticks) * config_.tick_ms);
    } else {
      n.lessor->Demote();
    }
  }
  if (!leader) return;
  for (int64_t id : n.lessor->Expired(LocalMs(n))) {
    AM_CHECK(leases_.count(id) == 1, "n", n.id, " expires lease ", id, " nobody granted");
    Trace(absl::StrCat("n", n.id, " lease ", id, " expired: revoking"));
    kv::Command c;
    c.request_id = next_lease_request_;  // LeasePropose's: the checker knows it by it
    c.op = kv::LeaseRevokeRequest{id};
    expiry_revokes_.insert(c.request_id);
    LeasePropose(n.id, std::move(c), nullptr);
    if (failed() || !n.up) return;
  }
  std::vector<kv::LeaseCheckpointRequest::Checkpoint> due = n.lessor->DueCheckpoints(LocalMs(n));
  if (due.empty()) return;
  kv::Command c;
  c.op = kv::LeaseCheckpointRequest{std::move(due)};
  LeasePropose(n.id, std::move(c), nullptr);
}

void Simulation::LeasePropose(NodeId target, kv::Command c,
                              std::function<void(const kv::ApplyResult*)> done) {
  SimNode& n = *nodes_[target - 1];
  if (!n.up || n.paused) {
    if (done) done(nullptr);
    return;
  }
  const uint64_t request = next_lease_request_++;
  AM_CHECK(c.request_id == 0 || c.request_id == request, "lease request ids are LeasePropose's");
  c.request_id = request;
  lease_requests_[request] = std::move(done);
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kPropose;
  r.data = kv::EncodeCommand(c);
  const uint64_t deadline = now_ + config_.client_timeout_ms * kMs;
  r.deadline_ms = deadline / kMs;
  n.requests->Submit(*n.node, request, std::move(r), now_ / kMs);
  At(deadline, [this, request] {
    if (lease_requests_.count(request) != 0) LeaseRequestDone(request, nullptr);
  });
  Process(n);
}

void Simulation::LeaseRequestDone(uint64_t request, const kv::ApplyResult* result) {
  auto it = lease_requests_.find(request);
  AM_CHECK(it != lease_requests_.end(), "lease request ", request, " answered twice");
  auto done = std::move(it->second);
  lease_requests_.erase(it);
  if (!done) return;
  // Run as an event of its own: this may be inside a node's Process, which must not nest.
  std::optional<kv::ApplyResult> copy;
  if (result != nullptr) copy = *result;
  At(now_, [done = std::move(done), copy = std::move(copy)] {
    done(copy.has_value() ? &*copy : nullptr);
  });
}

void Simulation::LeaseReadDone(uint64_t request, bool confirmed) {
  auto it = lease_reads_.find(request);
  if (it == lease_reads_.end()) return;
  auto done = std::move(it->second);
  lease_reads_.erase(it);
  At(now_, [done = std::move(done), confirmed] { done(confirmed); });
}

void Simulation::LeaseKeepAlive(NodeId target, int64_t id, std::function<void(bool)> done) {
  SimNode& n = *nodes_[target - 1];
  if (!n.up || n.paused || !n.lessor->primary()) return done(false);
  // As the server: leadership confirmed by a ReadIndex round, then the lessor renews.
  const uint64_t request = next_lease_request_++;
  const uint64_t incarnation = n.incarnation;
  lease_reads_[request] = [this, target, id, incarnation, done](bool confirmed) {
    SimNode& at = *nodes_[target - 1];
    if (!confirmed || !at.up || at.incarnation != incarnation) return done(false);
    absl::StatusOr<kv::Lessor::Renewal> renewed = at.lessor->Renew(id, LocalMs(at));
    if (!renewed.ok()) return done(false);
    const uint64_t renewed_ns = now_;
    Trace(absl::StrCat("n", target, " renewed lease ", id,
                       renewed->clear_checkpoint ? " (clearing its checkpoint)" : ""));
    auto ack = [this, id, renewed_ns, done]() {
      LeaseRecord& rec = leases_[id];
      if (rec.expired_ns != 0) {
        Fail(absl::StrCat("lease checker: a keep-alive of lease ", id, " was acknowledged at ",
                          now_ / kMs, " ms after its expiry committed at ",
                          rec.expired_ns / kMs, " ms"));
        return;
      }
      rec.last_ack_ns = std::max(rec.last_ack_ns, renewed_ns);
      done(true);
    };
    if (!renewed->clear_checkpoint) return ack();
    kv::Command c;
    c.op = kv::LeaseCheckpointRequest{{{id, 0}}};
    LeasePropose(target, std::move(c), [this, target, incarnation, id, ack,
                                        done](const kv::ApplyResult* r) {
      // As the server: a revoke that committed before the checkpoint ended the lease.
      SimNode& node = *nodes_[target - 1];
      const bool alive = node.up && node.incarnation == incarnation && node.lessor->Has(id);
      if (r != nullptr && r->status.ok() && alive) return ack();
      done(false);
    });
  };
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kRead;
  const uint64_t deadline = now_ + config_.client_timeout_ms * kMs;
  r.deadline_ms = deadline / kMs;
  n.requests->Submit(*n.node, request, std::move(r), now_ / kMs);
  At(deadline, [this, request] { LeaseReadDone(request, false); });
  Process(n);
}

void Simulation::LeaseStep() {
  LeaseClient& c = *lease_client_;
  if (!workload_on_ || failed()) {
    c.idle = true;
    return;
  }
  const NodeId any = static_cast<NodeId>(1 + lease_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
  auto next = [this](uint64_t ms) { At(now_ + ms * kMs, [this] { LeaseStep(); }); };
  if (c.current == 0) {
    const int64_t id = c.next_id++;
    const int64_t ttl = std::max<int64_t>(MinLeaseTtl(config_),
                                          1 + static_cast<int64_t>(lease_rng_.Uniform(3)));
    leases_[id].ttl_s = ttl;
    kv::Command g;
    g.op = kv::LeaseGrantRequest{id, ttl};
    LeasePropose(any, std::move(g), [this, id, ttl, any, next](const kv::ApplyResult* r) {
      if (r == nullptr || !r->status.ok()) return next(100);
      LeaseClient& cl = *lease_client_;
      // Not an acknowledgement the checker holds the leader to: the leader that committed
      // the grant started its clock when it applied it, which may be long before the
      // proposing member (a deposed leader, lagging) applies it and answers.
      Trace(absl::StrCat("lease ", id, " granted (ttl ", ttl, " s)"));
      cl.current = id;
      cl.ttl_s = ttl;
      cl.rounds_left = static_cast<int>(lease_rng_.Uniform(7));
      kv::Command put;
      kv::PutRequest p{absl::StrCat("lease/", id), "v", false};
      p.lease = id;
      put.op = std::move(p);
      LeasePropose(any, std::move(put), [ttl, next](const kv::ApplyResult*) {
        next(static_cast<uint64_t>(ttl) * 1000 / 3);
      });
    });
    return;
  }
  if (c.rounds_left > 0) {
    --c.rounds_left;
    const uint64_t period = static_cast<uint64_t>(c.ttl_s) * 1000 / 3;
    LeaseKeepAlive(c.target, c.current, [this, period, next](bool acked) {
      if (!acked) {
        lease_client_->target =
            static_cast<NodeId>(1 + lease_rng_.Uniform(static_cast<uint64_t>(config_.nodes)));
      }
      next(acked ? period : 50);
    });
    return;
  }
  const int64_t id = c.current;
  c.current = 0;
  if (lease_rng_.Uniform(3) == 0) {
    kv::Command r;
    r.op = kv::LeaseRevokeRequest{id};
    LeasePropose(any, std::move(r), [next](const kv::ApplyResult*) { next(50); });
    return;
  }
  next(50);  // abandoned: it expires
}

bool Simulation::CheckLeases() {
  // Nobody keeps leases alive now: each expires within TTL + an election + a revoke retry.
  auto no_leases = [this]() {
    std::optional<NodeId> leader = Leader();
    if (!leader) return false;
    bool none = true;
    absl::Status s = nodes_[*leader - 1]->sm->ForEachLease([&](const kv::Lease&) {
      none = false;
      return false;
    });
    return s.ok() && none;
  };
  if (!RunUntil(no_leases, 20 * kSec)) {
    Fail("lease checker: leases nobody keeps alive did not expire within 20 s");
    return false;
  }
  std::optional<NodeId> leader = Leader();
  kv::RangeRequest r;
  r.key = "lease/";
  r.range_end = kv::PrefixEnd("lease/");
  absl::StatusOr<kv::RangeResponse> left = nodes_[*leader - 1]->sm->Range(r);
  AM_CHECK(left.ok(), left.status().ToString());
  if (left->count != 0) {
    Fail(absl::StrCat("lease checker: ", left->count, " keys outlived their leases"));
    return false;
  }
  return true;
}

// --- Watch checker ---------------------------------------------------------------------------

kv::WatchHub& Simulation::Hub(SimNode& n) {
  AM_CHECK(n.sm != nullptr, "n", n.id, " has no state machine to watch");
  if (n.hub == nullptr || n.hub_sm != n.sm.get()) {
    if (n.hub != nullptr) WatchDisconnect(n);  // its streams read a state machine that is gone
    kv::WatchLimits limits;
    limits.max_events_per_response = 16;  // small chunks: catch-up takes several
    n.hub = std::make_unique<kv::WatchHub>(*n.sm, limits);
    kv::WatchHub::PlantedBugs bugs;
    bugs.deliver_before_next = config_.bug == "watch_resend_old_events";
    n.hub->set_planted_bugs(bugs);
    n.hub_sm = n.sm.get();
  }
  return *n.hub;
}

void Simulation::RecordCommitted(raft::Index first, raft::Index last) {
  AM_CHECK_EQ(watch_ref_.applied_index() + 1, first, "committed entries recorded out of order");
  const absl::Span<const kv::ApplyItem> batch(&decoded_[first - 1], last - first + 1);
  absl::StatusOr<std::vector<kv::ApplyResult>> r = watch_ref_.Apply(batch);
  AM_CHECK(r.ok(), r.status().ToString());
  std::vector<kv::KeyValue> v = watch_ref_.last_applied_versions();
  // A watcher gets the events of one revision in key order (engine/kv/watch.h).
  std::stable_sort(v.begin(), v.end(), [](const kv::KeyValue& a, const kv::KeyValue& b) {
    return a.mod_revision != b.mod_revision ? a.mod_revision < b.mod_revision : a.key < b.key;
  });
  committed_versions_.insert(committed_versions_.end(), v.begin(), v.end());
  for (const kv::ApplyItem& item : batch) CheckExpiry(item);
}

void Simulation::CheckExpiry(const kv::ApplyItem& item) {
  if (!item.command.has_value() || expiry_revokes_.count(item.command->request_id) == 0) return;
  const auto* revoke = std::get_if<kv::LeaseRevokeRequest>(&item.command->op);
  AM_CHECK(revoke != nullptr, "an expiry that is not a revoke");
  // The lease is gone from now on: TTL (less what clock drift could take) must have passed
  // since the last keep-alive acknowledged so far.
  LeaseRecord& rec = leases_.at(revoke->id);
  if (rec.expired_ns == 0) rec.expired_ns = now_;
  const uint64_t ttl_ns = static_cast<uint64_t>(rec.ttl_s) * kSec;
  const uint64_t margin = ttl_ns / 1000000 * 2 * config_.drift_ppm + 2 * kMs;
  if (rec.last_ack_ns != 0 && now_ + margin < rec.last_ack_ns + ttl_ns) {
    Fail(absl::StrCat("lease checker: lease ", revoke->id, " expired (its revoke committed) at ",
                      now_ / kMs, " ms, but a keep-alive renewed it at ", rec.last_ack_ns / kMs,
                      " ms with TTL ", rec.ttl_s, " s"));
  }
}

void Simulation::WatchConnect(size_t w, NodeId target) {
  WatchClient& c = watch_clients_[w];
  if (failed()) return;
  if (c.node != 0) {  // a move: the old stream ends
    SimNode& old = *nodes_[c.node - 1];
    if (old.hub != nullptr) old.hub->CloseStream(c.stream);
    c.node = 0;
  }
  std::vector<NodeId> running;
  for (const auto& n : nodes_) {
    if (n->up && !n->paused && n->sm != nullptr) running.push_back(n->id);
  }
  const uint64_t generation = ++c.generation;
  if (target == 0 && running.empty()) {
    At(now_ + 200 * kMs, [this, w, generation] {
      if (watch_clients_[w].generation == generation) WatchConnect(w);
    });
    return;
  }
  SimNode& n = *nodes_[(target != 0 ? target : running[watch_rng_.Uniform(running.size())]) - 1];
  if (!n.up || n.sm == nullptr) {
    Fail(absl::StrCat("watch: cannot connect watcher ", w, " to n", n.id, ", which is down"));
    return;
  }
  // Resume after the last event received (a response never splits a revision), as clientv3.
  kv::WatchCreate create;
  create.key = c.key;
  create.range_end = c.range_end;
  create.start_revision = c.resume;
  c.stream = next_watch_stream_++;
  c.node = n.id;
  Hub(n).Create(c.stream, create);
  WatchDeliver(n);
  // Clients move between members now and then on their own too.
  At(now_ + Between(watch_rng_, 500, 3000) * kMs, [this, w, generation] {
    if (watch_clients_[w].generation == generation) WatchConnect(w);
  });
}

void Simulation::WatchDisconnect(SimNode& n) {
  for (size_t w = 0; w < watch_clients_.size(); ++w) {
    WatchClient& c = watch_clients_[w];
    if (c.node != n.id) continue;
    c.node = 0;
    const uint64_t generation = ++c.generation;
    At(now_ + Between(watch_rng_, 50, 300) * kMs, [this, w, generation] {
      if (watch_clients_[w].generation == generation) WatchConnect(w);
    });
  }
  n.hub.reset();
  n.hub_sm = nullptr;
}

void Simulation::WatchDeliver(SimNode& n) {
  if (n.hub == nullptr || failed()) return;
  while (n.hub->Sync()) {
  }
  for (const kv::WatchResponse& r : n.hub->TakeOutput()) {
    auto it = std::find_if(watch_clients_.begin(), watch_clients_.end(),
                           [&](const WatchClient& c) { return c.node == n.id && c.stream == r.stream; });
    if (it == watch_clients_.end()) continue;
    WatchClient& c = *it;
    const size_t w = static_cast<size_t>(it - watch_clients_.begin());
    if (r.canceled && r.compact_revision > 0) {
      // The history it needs was compacted (auto-compaction): as a client, it starts over
      // from the compact revision (what it missed is what a relist would show).
      if (r.compact_revision <= c.resume) {
        Fail(absl::StrCat("watch: n", n.id, " canceled watcher ", w, " from revision ",
                          c.resume, " as compacted at ", r.compact_revision));
        return;
      }
      c.resume = r.compact_revision;
      while (c.cursor < committed_versions_.size() &&
             committed_versions_[c.cursor].mod_revision < c.resume) {
        ++c.cursor;
      }
      const uint64_t generation = ++c.generation;
      c.node = 0;
      At(now_ + Between(watch_rng_, 50, 300) * kMs, [this, w, generation] {
        if (watch_clients_[w].generation == generation) WatchConnect(w);
      });
      continue;
    }
    if (r.canceled) {
      Fail(absl::StrCat("watch: n", n.id, " canceled watcher ", w, " (", r.cancel_reason, ")"));
      return;
    }
    for (const kv::WatchEvent& e : r.events) {
      // The next event must be the next committed version in the watcher's range.
      while (c.cursor < committed_versions_.size() &&
             !kv::InRange(committed_versions_[c.cursor].key, c.key, c.range_end)) {
        ++c.cursor;
      }
      if (c.cursor == committed_versions_.size() || committed_versions_[c.cursor] != e.kv) {
        Fail(absl::StrCat(
            "watch: watcher ", w, " on n", n.id, " got ", kv::Describe(e.kv), " after ",
            c.last ? kv::Describe(*c.last) : "nothing", "; the committed history has ",
            c.cursor == committed_versions_.size() ? "nothing more"
                                                   : kv::Describe(committed_versions_[c.cursor]),
            " next (a gap, a duplicate or an event out of order)"));
        return;
      }
      ++c.cursor;
      ++c.events;
      c.last = e.kv;
      c.resume = e.kv.mod_revision + 1;  // a response never splits a revision
    }
  }
}

bool Simulation::CheckWatchers() {
  std::optional<NodeId> leader = Leader();
  if (!leader) return true;  // CheckConvergence reported it
  for (size_t w = 0; w < watch_clients_.size(); ++w) {
    WatchClient& c = watch_clients_[w];
    // Through the leader, which has applied everything (a removed member may be behind). A
    // watch from a compacted revision is canceled and starts over from the compact revision.
    for (int attempt = 0; attempt < 2 && c.node != *leader && !failed(); ++attempt) {
      WatchConnect(w, *leader);
    }
    if (failed()) return false;
    AM_CHECK_EQ(c.node, *leader, "watcher ", w, " did not reach the leader");
    WatchDeliver(*nodes_[c.node - 1]);
    if (failed()) return false;
    while (c.cursor < committed_versions_.size() &&
           !kv::InRange(committed_versions_[c.cursor].key, c.key, c.range_end)) {
      ++c.cursor;
    }
    if (c.cursor != committed_versions_.size()) {
      Fail(absl::StrCat("watch: watcher ", w, " on n", c.node, " stopped at ",
                        c.last ? kv::Describe(*c.last) : "nothing", " with ",
                        kv::Describe(committed_versions_[c.cursor]),
                        " committed and applied everywhere (a lost event)"));
      return false;
    }
  }
  return true;
}

bool Simulation::CheckConvergence() {
  if (!RunUntil([this] { return AllCaughtUp(); }, 10 * kSec)) {
    if (!failed()) Fail("convergence: replicas did not reach the same applied index");
    return false;
  }
  std::optional<kv::RangeResponse> first;
  NodeId first_id = 0;
  for (const auto& n : nodes_) {
    if (!n->up || !IsMember(n->id)) continue;
    kv::RangeRequest all;
    all.key = "k";
    all.range_end = "l";
    absl::StatusOr<kv::RangeResponse> r = n->sm->Range(all);
    AM_CHECK(r.ok());
    if (!first) {
      first = *r;
      first_id = n->id;
    } else if (!(r->kvs == first->kvs)) {
      std::string a, b;
      for (const kv::KeyValue& kvp : r->kvs) absl::StrAppend(&a, " ", kv::Describe(kvp));
      for (const kv::KeyValue& kvp : first->kvs) absl::StrAppend(&b, " ", kv::Describe(kvp));
      Fail(absl::StrCat("convergence: n", n->id, " and n", first_id,
                        " applied the same log but hold different data:\n  n", n->id, " (applied ",
                        n->sm->applied_index(), ", revision ", n->sm->revision(), "):", a, "\n  n",
                        first_id, " (applied ", nodes_[first_id - 1]->sm->applied_index(),
                        ", revision ", nodes_[first_id - 1]->sm->revision(), "):", b));
      return false;
    }
  }
  return true;
}

checker::CheckResult Simulation::CheckLinearizability() {
  std::vector<checker::Operation> history;
  history.reserve(ops_.size());
  for (const ClientOp& op : ops_) {
    checker::Operation o = op.op;
    if (op.pending) o.outcome = checker::OpOutcome::kUnknown;
    history.push_back(std::move(o));
  }
  absl::StatusOr<checker::CheckResult> r = checker::CheckLinearizability(history);
  AM_CHECK(r.ok(), r.status().ToString());
  if (r->verdict == checker::Verdict::kViolation) {
    Fail(absl::StrCat("linearizability violation:\n", r->violations[0].explanation));
  }
  return *r;
}

// --- One seed -------------------------------------------------------------------------------

namespace {

struct CheckFailure {
  std::string what;
};

[[noreturn]] void ThrowOnCheckFailure(const char* file, int line, const char* condition,
                                      const std::string& message) {
  throw CheckFailure{absl::StrCat("invariant violated at ", file, ":", line, ": ", condition,
                                  ": ", message)};
}

}  // namespace

RunResult RunScripted(const SimConfig& config, bool keep_trace,
                      const std::function<void(Simulation&)>& script) {
  RunResult result;
  SetCheckFailureHandler(&ThrowOnCheckFailure);
  Simulation sim(config, keep_trace);
  try {
    script(sim);
    if (!sim.failed()) {
      sim.StopWorkload();
      sim.HealAll();
      if (sim.CheckLiveness(config.liveness_ms * kMs) && sim.CheckConvergence() &&
          sim.CheckWatchers()) {
        sim.CheckLeases();
      }
    }
    if (!sim.failed()) {
      result.linearizability = sim.CheckLinearizability();
      if (result.linearizability.verdict == checker::Verdict::kUnknown) {
        sim.Fail(absl::StrCat("linearizability unknown (search budget exhausted): ",
                              result.linearizability.Summary()));
      }
    }
  } catch (const CheckFailure& f) {
    sim.Fail(f.what);
  }
  SetCheckFailureHandler(nullptr);
  result.ok = !sim.failed();
  result.failure = sim.failure();
  result.trace_hash = sim.trace_hash();
  result.sim_seconds = static_cast<double>(sim.now()) / 1e9;
  result.stats = sim.stats();
  result.trace = sim.TakeTrace();
  return result;
}

RunResult RunSeed(const SimConfig& config, bool keep_trace) {
  return RunScripted(config, keep_trace, [&config](Simulation& sim) {
    sim.StartRandomFaults(config.safety_ms * kMs);
    sim.StartTargetedFaults(config.safety_ms * kMs);
    if (config.reconfig) sim.StartReconfiguration(config.safety_ms * kMs);
    sim.RunFor(config.safety_ms * kMs);
  });
}

}  // namespace amaters::sim
