#include "server/runtime/runtime.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/kv/command.h"
#include "engine/node/startup.h"
#include "engine/wal/disk.h"
#include "server/admin/metrics.h"
#include "server/log.h"
#include "server/storage/posix_disk.h"
#include "server/storage/rocksdb_state_machine.h"
#include "server/storage/snapshot_store.h"

namespace amaters::server {

using storage::PosixDisk;
using storage::RocksDbStateMachine;
using storage::SnapshotStore;

// The durable state of one node: the WAL directory, the applied key-value store and its
// snapshots.
class RuntimeStorage {
 public:
  std::unique_ptr<wal::Disk> wal_disk;               // loop thread only (after Open)
  std::unique_ptr<RocksDbStateMachine> state;        // apply thread only (after Open)
  std::optional<SnapshotStore> snapshots;            // apply thread only (after Open)
};

namespace {

absl::Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0750) == 0 || errno == EEXIST) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(absl::StrCat(path, " exists and is not a directory"));
    }
    if (access(path.c_str(), W_OK) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("data directory ", path, " is not writable: ", std::strerror(errno)));
    }
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("cannot create directory ", path, ": ", std::strerror(errno)));
}

// The runtime's durable state for node::StartFromDisk: RocksDB and the snapshot store. A
// restart starts from the WAL's newest snapshot when the state store is behind it (a crash
// between keeping a received snapshot and installing it), then replays the WAL after it.
class RuntimeDurableState : public node::DurableState {
 public:
  explicit RuntimeDurableState(RuntimeStorage& storage) : storage_(storage) {}
  raft::Index applied_index() const override { return storage_.state->applied_index(); }
  std::optional<node::StagedSnapshot> Staged() const override {
    return storage_.snapshots->Staged();
  }
  absl::Status RestoreSnapshot(const raft::SnapshotMeta& snapshot) override {
    if (!storage_.snapshots->Has(snapshot.index)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the WAL's newest snapshot is at index ", snapshot.index, " but ",
          SnapshotStore::Name(snapshot.index), " is missing from kv/snapshots and the state "
          "store has applied only up to ", storage_.state->applied_index(),
          ": this node cannot rebuild its state; rebuild it from its peers "
          "(docs/runbooks.md RB-001)"));
    }
    const uint64_t before = storage_.state->applied_index();
    if (absl::Status s = storage_.snapshots->Install(snapshot.index); !s.ok()) return s;
    LogInfo("state restored from snapshot", {F("snapshot_index", snapshot.index),
                                             F("applied_before", before)});
    return absl::OkStatus();
  }

 private:
  RuntimeStorage& storage_;
};

}  // namespace

Runtime::Runtime(RuntimeOptions options)
    : options_(std::move(options)),
      auto_compactor_(options_.auto_compaction),
      epoch_(std::chrono::steady_clock::now()) {}

absl::StatusOr<std::unique_ptr<Runtime>> Runtime::Open(RuntimeOptions options) {
  if (options.tick_ms == 0) return absl::InvalidArgumentError("tick_ms must be > 0");
  if (absl::Status s = options.requests.Validate(); !s.ok()) return s;
  if (absl::Status s = MakeDir(options.data_dir); !s.ok()) return s;
  const std::string wal_dir = options.data_dir + "/wal";
  const std::string kv_dir = options.data_dir + "/kv";
  if (absl::Status s = MakeDir(wal_dir); !s.ok()) return s;

  auto storage = std::make_unique<RuntimeStorage>();
  absl::StatusOr<std::unique_ptr<PosixDisk>> disk = PosixDisk::Open(wal_dir);
  if (!disk.ok()) return disk.status();
  storage->wal_disk = *std::move(disk);
  if (options.test_faults != nullptr) {
    storage->wal_disk = options.test_faults->WrapWalDisk(std::move(storage->wal_disk));
    AM_CHECK(storage->wal_disk != nullptr);
  }
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> state = RocksDbStateMachine::Open(kv_dir);
  if (!state.ok()) {
    return absl::Status(state.status().code(),
                        absl::StrCat("state store in ", kv_dir, ": ", state.status().message()));
  }
  storage->state = *std::move(state);
  absl::StatusOr<SnapshotStore> snapshots =
      SnapshotStore::Open(options.data_dir + "/snap", storage->state.get());
  if (!snapshots.ok()) return snapshots.status();
  storage->snapshots.emplace(*std::move(snapshots));

  node::NodeConfig config = options.node;
  config.raft.id = options.node_id;
  // The loop writes the WAL itself: what it handed the node since the last write goes into
  // the next batch (group commit), cut when it takes the effects.
  config.cut_disk_batch_on_take = true;
  // A node joining a running cluster starts outside its bootstrap configuration.
  config.raft.voters.clear();
  if (!options.join_existing) config.raft.voters.push_back(options.node_id);
  for (const RuntimePeer& p : options.peers) config.raft.voters.push_back(p.id);
  if (config.raft.voters.empty()) {
    return absl::InvalidArgumentError(
        "initial_cluster_state \"existing\" needs the cluster's members in [cluster] peers");
  }
  config.raft.rng_seed = std::random_device()() ^ (uint64_t{std::random_device()()} << 32);
  RuntimeDurableState durable(*storage);
  absl::StatusOr<node::Started> started =
      node::StartFromDisk(config, storage->wal_disk.get(), wal::CorruptionPolicy::kRefuseStart,
                          absl::StrCat("WAL in ", wal_dir), durable);
  if (!started.ok()) return started.status();
  for (const std::string& note : started->notes) LogInfo("wal recovery", {F("note", note)});
  if (const std::optional<node::StagedSnapshot>& staged = started->resumed) {
    LogInfo("resuming a snapshot receive", {F("index", staged->meta.index),
                                             F("staged_bytes", staged->bytes),
                                             F("total_bytes", staged->total_bytes)});
  }
  const raft::Index applied = started->applied;

  std::unique_ptr<Runtime> rt(new Runtime(std::move(options)));
  rt->storage_ = std::move(storage);
  rt->node_ = std::move(started->node);
  rt->requests_.emplace(rt->options_.requests);
  rt->SyncPeers();
  LogInfo("recovered", {F("node_id", rt->options_.node_id),
                        F("raft", rt->node_->raft().Describe()), F("applied", applied),
                        F("revision", rt->storage_->state->revision()),
                        F("wal_segments", started->segments)});
  rt->PublishStatus();
  {
    std::lock_guard<std::mutex> lock(rt->status_mu_);
    rt->status_.applied = applied;
    rt->status_.revision = rt->storage_->state->revision();
  }
  rt->applied_revisions_ = {rt->storage_->state->revision(),
                            rt->storage_->state->compact_revision()};
  rt->watch_hub_ = std::make_unique<kv::WatchHub>(*rt->storage_->state, options.watch_limits);
  kv::LessorOptions lessor;
  lessor.min_ttl_s = rt->MinLeaseTtl();
  lessor.checkpoint_interval_ms = options.lease_checkpoint_interval_ms;
  rt->lessor_ = std::make_unique<kv::Lessor>(lessor);
  if (absl::Status s = rt->ResetLessor(); !s.ok()) return s;
  return rt;
}

Runtime::~Runtime() { (void)Stop(); }

uint64_t Runtime::NowMs() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - epoch_)
                                   .count());
}

void Runtime::Start() {
  AM_CHECK(!started_.exchange(true), "Runtime::Start called twice");
  next_tick_ms_ = NowMs() + options_.tick_ms;
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (auto& [id, p] : peers_) p->Start();
  }
  apply_thread_ = std::thread([this] { ApplyMain(); });
  loop_thread_ = std::thread([this] { LoopMain(); });
}

absl::Status Runtime::Stop() {
  if (stopped_.exchange(true)) return absl::OkStatus();
  if (options_.test_faults != nullptr) options_.test_faults->Close();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_thread_.joinable()) loop_thread_.join();
  {
    // Events posted before a loop ever ran (a server that failed to start) are answered here.
    std::vector<Event> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(inbox_);
    }
    const absl::Status stopped = absl::UnavailableError("server is shutting down");
    for (Event& e : left) Refuse(e, stopped);
  }
  std::map<raft::NodeId, std::shared_ptr<PeerSender>> senders;
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    senders = peers_;
  }
  for (auto& [id, p] : senders) p->Stop();
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_stop_ = true;
  }
  apply_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  absl::Status result = storage_error_;
  if (storage_ && storage_->state) {
    absl::Status s = storage_->state->Sync();
    if (result.ok()) result = s;
    s = storage_->state->Close();
    if (result.ok()) result = s;
  }
  return result;
}

// Answers a client event that will never be handled (the runtime is stopping).
void Runtime::Refuse(Event& event, const absl::Status& status) {
  if (auto* pe = std::get_if<ProposeEvent>(&event)) {
    if (pe->done) pe->done(status, raft::kNone);
    if (pe->conf_done) pe->conf_done(status, raft::kNone);
  } else if (auto* re = std::get_if<ReadEvent>(&event)) {
    if (re->done) re->done(status, raft::kNone);
  } else if (auto* te = std::get_if<TransferEvent>(&event)) {
    if (te->done) te->done(status);
  } else if (auto* sn = std::get_if<SnapshotNowEvent>(&event)) {
    if (sn->done) sn->done(status);
  }
}

void Runtime::Post(Event event) {
  // The inbox is bounded where its producers are: client requests by the request limit (the
  // lifecycle's own bound), peer batches by kMaxInboxBatches (Raft tolerates a lost batch).
  // Completions from the disk and apply threads are bounded by the work handed to them.
  const bool client =
      std::holds_alternative<ProposeEvent>(event) || std::holds_alternative<ReadEvent>(event);
  const bool batch = std::holds_alternative<MessagesEvent>(event);
  absl::Status refused = absl::UnavailableError("server is shutting down");
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      if (client && inbox_clients_ >= options_.requests.max_requests) {
        refused = absl::ResourceExhaustedError("etcdserver: too many requests");
      } else if (batch && inbox_batches_ >= kMaxInboxBatches) {
        ++dropped_batches_;
        return;
      } else {
        inbox_clients_ += client;
        inbox_batches_ += batch;
        inbox_.push_back(std::move(event));
        cv_.notify_one();
        return;
      }
    }
  }
  // Nobody will handle it (the loop is stopping, or the inbox is full): answer now, outside mu_.
  Refuse(event, refused);
}

void Runtime::Propose(kv::Command command, ProposeDone done) {
  Post(ProposeEvent{std::move(command), std::move(done), NowMs() + options_.request_timeout_ms,
                    std::nullopt, nullptr});
}

void Runtime::ProposeConfChange(raft::ConfChange change, ConfChangeDone done) {
  ProposeEvent e{kv::Command{}, nullptr, NowMs() + options_.request_timeout_ms, std::move(change),
                 std::move(done)};
  Post(std::move(e));
}

void Runtime::Read(kv::RangeRequest request, bool serializable, ReadDone done) {
  if (options_.test_faults != nullptr && options_.test_faults->ServeReadsLocally()) {
    serializable = true;  // the planted bug stale_reads (test_faults.h)
  }
  Post(ReadEvent{std::move(request), serializable, std::move(done),
                 NowMs() + options_.request_timeout_ms});
}

void Runtime::TransferLeadership(raft::NodeId target, std::function<void(absl::Status)> done) {
  Post(TransferEvent{target, std::move(done), NowMs() + options_.request_timeout_ms});
}

void Runtime::Report(alerts::Event event) { Post(std::move(event)); }

std::vector<AlertRecord> Runtime::recent_alerts() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return {recent_alerts_.begin(), recent_alerts_.end()};
}

void Runtime::Deliver(std::vector<raft::Message> messages) {
  Post(MessagesEvent{std::move(messages)});
}

void Runtime::LearnClientAddress(raft::NodeId peer, std::string address) {
  std::lock_guard<std::mutex> lock(status_mu_);
  client_addresses_[peer] = std::move(address);
}

void Runtime::PeerDialedUs(raft::NodeId peer_id) {
  if (std::shared_ptr<PeerSender> sender = peer(peer_id)) sender->Reconnect();
}

std::shared_ptr<PeerSender> Runtime::peer(raft::NodeId id) const {
  std::lock_guard<std::mutex> lock(peers_mu_);
  auto it = peers_.find(id);
  return it == peers_.end() ? nullptr : it->second;
}

bool Runtime::AcceptsPeer(raft::NodeId id) const {
  if (joining_.load()) return true;
  std::lock_guard<std::mutex> lock(peers_mu_);
  return peers_.count(id) > 0;
}

namespace {

// host:port of the first peer URL recorded for a member ("http://10.0.0.4:2380" ->
// "10.0.0.4:2380"), or "" when none is recorded.
std::string RecordedPeerAddress(const raft::Configuration& conf, raft::NodeId id) {
  const raft::MemberInfo* info = conf.InfoOf(id);
  if (info == nullptr || info->peer_urls.empty()) return "";
  absl::string_view url = info->peer_urls.front();
  if (size_t at = url.find("://"); at != absl::string_view::npos) url.remove_prefix(at + 3);
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return std::string(url);
}

}  // namespace

void Runtime::SyncPeers() {
  const raft::Configuration& conf = node_->raft().configuration();
  if (synced_conf_ && *synced_conf_ == conf) return;
  synced_conf_ = conf;
  joining_.store(!conf.IsMember(options_.node_id));
  // Wanted: every member, at the recorded address if there is one, else at its configured one
  // (a member removed from the configuration loses its sender, even if `peers` lists it).
  std::map<raft::NodeId, std::string> configured;
  for (const RuntimePeer& p : options_.peers) configured[p.id] = p.address;
  std::map<raft::NodeId, std::string> want;
  for (raft::NodeId id : conf.Members()) {
    std::string a = RecordedPeerAddress(conf, id);
    if (a.empty() && configured.count(id) > 0) a = configured[id];
    want[id] = a;
  }
  want.erase(options_.node_id);
  std::vector<std::shared_ptr<PeerSender>> stop, start;
  {
    std::lock_guard<std::mutex> lock(peers_mu_);
    for (auto it = peers_.begin(); it != peers_.end();) {
      auto w = want.find(it->first);
      if (w != want.end() && w->second == it->second->address()) {
        ++it;
        continue;
      }
      stop.push_back(std::move(it->second));
      it = peers_.erase(it);
    }
    for (const auto& [id, address] : want) {
      if (address.empty() || peers_.count(id) > 0) continue;
      PeerSenderOptions so = options_.peer_sender;
      so.cluster_id = options_.cluster_id;
      so.from = options_.node_id;
      so.client_address = options_.client_address;
      auto sender = std::make_shared<PeerSender>(id, address, so, options_.metrics);
      peers_[id] = sender;
      start.push_back(std::move(sender));
    }
  }
  AM_CHECK_LE(peers_.size(), raft::kMaxMembers);
  for (std::shared_ptr<PeerSender>& p : stop) {
    LogInfo("peer sender stopped", {F("peer", p->id()), F("address", p->address())});
    p->Stop();
  }
  for (std::shared_ptr<PeerSender>& p : start) {
    if (started_.load()) p->Start();
    if (synced_conf_) LogInfo("peer sender added", {F("peer", p->id()), F("address", p->address())});
  }
}

RuntimeStatus Runtime::status() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  RuntimeStatus s = status_;
  for (RuntimeStatus::Peer& p : s.peers) {
    auto it = client_addresses_.find(p.id);
    if (it != client_addresses_.end()) p.client_address = it->second;
    if (std::shared_ptr<PeerSender> sender = peer(p.id)) p.connected = sender->connected();
  }
  return s;
}

// --- Loop thread ------------------------------------------------------------------------------

void Runtime::LoopMain() {
  std::vector<Event> events;
  uint64_t dropped = 0;  // peer batches dropped since the last wake
  // A single-node cluster is its own quorum: no reason to wait out an election timeout.
  if (options_.peers.empty()) {
    node_->Campaign();
    ProcessEffects(NowMs());
    PublishStatus();
  }
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      uint64_t wake_ms = next_tick_ms_;
      if (std::optional<uint64_t> retry = requests_->NextRetryMs()) {
        wake_ms = std::min(wake_ms, *retry);
      }
      const auto wake = epoch_ + std::chrono::milliseconds(wake_ms);
      cv_.wait_until(lock, wake, [&] { return stopping_ || !inbox_.empty(); });
      if (stopping_) break;
      events.swap(inbox_);
      inbox_clients_ = 0;
      inbox_batches_ = 0;
      dropped = dropped_batches_;
      dropped_batches_ = 0;
    }
    if (dropped > 0) {
      LogWarn("peer batches dropped: the loop's inbox was full", {F("batches", dropped)});
      dropped = 0;
    }
    uint64_t now = NowMs();
    for (Event& e : events) Handle(e, now);
    events.clear();
    bool advance = false;
    if (now >= next_tick_ms_) {
      // A stopped node (storage failure) must not keep leading with heartbeats.
      if (!fatal_) node_->Tick(now);
      next_tick_ms_ += options_.tick_ms;
      // After a stall (a paused process, an overloaded machine) do not replay missed ticks in
      // a burst: that would fire election timeouts the peers never saw coming.
      if (next_tick_ms_ <= now) next_tick_ms_ = now + options_.tick_ms;
      advance = true;
      if (!fatal_) {
        MaybeAutoCompact(now);
        TickLessor(now);
      }
      if (now >= next_watch_progress_ms_) {
        if (next_watch_progress_ms_ != 0) {
          TryPostApply(WatchWork{WatchWork::Op::kNotifyProgress, 0, {}, 0, nullptr});
        }
        next_watch_progress_ms_ = now + options_.watch_progress_interval_ms;
      }
    }
    if (std::optional<uint64_t> retry = requests_->NextRetryMs(); retry && *retry <= now) {
      advance = true;
    }
    if (advance && !fatal_) {
      requests_->Advance(*node_, now);
      AnswerFinished();
    }
    ProcessEffects(now);
    SyncPeers();
    PublishStatus();
    CheckTransfers(now);
    for (auto it = snapshot_waiters_.begin(); it != snapshot_waiters_.end();) {
      if (node_->raft().snapshot().index < it->first) {
        ++it;
        continue;
      }
      it->second(node_->raft().snapshot().index);
      it = snapshot_waiters_.erase(it);
    }
  }
  // Shutting down: nothing pending will complete any more.
  const absl::Status stopped = absl::UnavailableError("server is shutting down");
  FailAll(stopped);
  for (auto& [target, w] : snapshot_waiters_) w(stopped);
  snapshot_waiters_.clear();
  std::vector<Event> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(inbox_);
  }
  for (Event& e : left) Refuse(e, stopped);
}

void Runtime::Handle(Event& event, uint64_t now_ms) {
  if (auto* pe = std::get_if<ProposeEvent>(&event)) {
    Submit(std::move(*pe), now_ms);
  } else if (auto* re = std::get_if<ReadEvent>(&event)) {
    Submit(std::move(*re), now_ms);
  } else if (auto* ae = std::get_if<AppliedEvent>(&event)) {
    if (!ae->status.ok()) {
      if (!fatal_) {
        fatal_ = true;
        fatal_message_ = ae->status.ToString();
        storage_error_message_ = fatal_message_;
        LogError("state machine failed; node stops", {F("error", ae->status.ToString())});
        FailAll(absl::UnavailableError(absl::StrCat("node stopped: ", ae->status.message())));
        if (options_.on_fatal) options_.on_fatal(ae->status);
      }
      return;
    }
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      status_.revision = ae->revisions.current;
    }
    applied_revisions_ = ae->revisions;
    if (!fatal_) node_->OnApplied(ae->index);
  } else if (auto* te = std::get_if<TransferEvent>(&event)) {
    const raft::Raft& r = node_->raft();
    if (fatal_) {
      te->done(absl::UnavailableError("node stopped after a storage failure"));
    } else if (r.role() != raft::Role::kLeader) {
      te->done(absl::FailedPreconditionError(
          absl::StrCat("etcdserver: not leader (leader is ", r.leader(), ")")));
    } else if (te->target == options_.node_id) {
      te->done(absl::OkStatus());  // already leads
    } else if (absl::Status s = node_->TransferLeadership(te->target); !s.ok()) {
      te->done(s);
    } else {
      LogInfo("leadership transfer started", {F("target", te->target), F("term", r.term())});
      transfers_.push_back(std::move(*te));
    }
  } else if (auto* ev = std::get_if<alerts::Event>(&event)) {
    node_->Report(*ev);
  } else if (auto* me = std::get_if<MessagesEvent>(&event)) {
    if (fatal_) return;
    for (const raft::Message& m : me->messages) {
      if (absl::Status s = node_->Receive(m); !s.ok()) {
        LogDebug("peer message refused", {F("from", m.from), F("error", s.ToString())});
      }
    }
  } else if (auto* sn = std::get_if<SnapshotNowEvent>(&event)) {
    if (fatal_) {
      sn->done(absl::UnavailableError("node stopped after a storage failure"));
      return;
    }
    const raft::Index target = node_->SnapshotNow();
    if (target <= node_->raft().snapshot().index) {
      sn->done(node_->raft().snapshot().index);
    } else {
      snapshot_waiters_.emplace_back(target, std::move(sn->done));
    }
  } else if (!fatal_) {
    HandleSnapshotEvent(event);
  }
}

void Runtime::HandleSnapshotEvent(Event& event) {
  if (auto* t = std::get_if<SnapshotTakenEvent>(&event)) {
    if (t->status.ok()) {
      LogInfo("snapshot taken", {F("index", t->index)});
    } else {
      LogError("snapshot failed", {F("error", t->status.ToString())});
      for (auto& [target, w] : snapshot_waiters_) w(t->status);
      snapshot_waiters_.clear();
    }
    node_->OnSnapshotTaken(t->index, t->status);
  } else if (auto* r = std::get_if<SnapshotReadEvent>(&event)) {
    if (!r->bytes.ok()) {
      LogWarn("snapshot read failed", {F("peer", r->read.peer), F("error", r->bytes.status().ToString())});
    }
    node_->OnSnapshotRead(r->read, r->bytes);
  } else if (auto* w = std::get_if<SnapshotWrittenEvent>(&event)) {
    node_->OnSnapshotWritten(w->meta, w->offset, w->length, w->status);
  } else if (auto* k = std::get_if<SnapshotReceivedEvent>(&event)) {
    if (k->status.ok()) {
      LogInfo("snapshot received", {F("index", k->meta.index), F("term", k->meta.term)});
    } else {
      LogWarn("received snapshot refused", {F("index", k->meta.index), F("error", k->status.ToString())});
    }
    node_->OnSnapshotReceived(k->meta, k->status);
  }
}

void Runtime::Submit(Waiting request, uint64_t now_ms) {
  const uint64_t deadline_ms = std::visit([](auto& r) { return r.deadline_ms; }, request);
  if (fatal_) {
    Answer(request, absl::UnavailableError("node stopped after a storage failure"), raft::kNone);
    return;
  }
  if (auto* re = std::get_if<ReadEvent>(&request); re != nullptr && re->serializable) {
    if (deadline_ms <= now_ms) {
      Answer(request, absl::UnavailableError("etcdserver: request timed out"), raft::kNone);
      return;
    }
    PostApply(ReadWork{std::move(re->request), std::move(re->done)});
    return;
  }
  const node::Token token = next_token_++;
  node::ClientRequest r;
  r.deadline_ms = deadline_ms;
  if (auto* pe = std::get_if<ProposeEvent>(&request); pe != nullptr && pe->conf_change) {
    r.kind = node::ClientRequest::Kind::kConfChange;
    r.change = *pe->conf_change;
  } else if (pe != nullptr) {
    r.kind = node::ClientRequest::Kind::kPropose;
    pe->command.request_id = token;
    r.data = kv::EncodeCommand(pe->command);
  } else {
    r.kind = node::ClientRequest::Kind::kRead;
  }
  AM_CHECK(waiting_.emplace(token, std::move(request)).second, "token ", token, " reused");
  requests_->Submit(*node_, token, std::move(r), now_ms);
  AnswerFinished();
}

void Runtime::Answer(Waiting& request, const absl::Status& status, raft::NodeId leader) {
  if (auto* pe = std::get_if<ProposeEvent>(&request)) {
    if (pe->done) pe->done(status, leader);
    if (pe->conf_done) pe->conf_done(status, leader);
    pe->done = nullptr;
    pe->conf_done = nullptr;
  } else if (auto* re = std::get_if<ReadEvent>(&request)) {
    if (re->done) re->done(status, leader);
    re->done = nullptr;
  }
}

void Runtime::AnswerFinished() {
  for (node::Finished& f : requests_->TakeFinished()) {
    auto it = waiting_.find(f.token);
    AM_CHECK(it != waiting_.end(), "a finished request nobody waits for: ", f.token);
    Answer(it->second, f.status, f.leader);
    waiting_.erase(it);
  }
}

void Runtime::FailAll(const absl::Status& status) {
  requests_->FailAll(status);
  AnswerFinished();
  AM_CHECK(waiting_.empty());
  for (TransferEvent& t : transfers_) t.done(status);
  transfers_.clear();
}

void Runtime::ProcessEffects(uint64_t now_ms) {
  while (true) {
    // Every callback belongs to a request the lifecycle tracks, and the other way round.
    AM_CHECK_EQ(waiting_.size(), requests_->size());
    node::Effects e = node_->TakeEffects();
    if (e.Empty()) break;

    if (!e.messages.empty()) {
      std::map<raft::NodeId, std::vector<raft::Message>> by_peer;
      for (raft::Message& m : e.messages) by_peer[m.to].push_back(std::move(m));
      for (auto& [to, msgs] : by_peer) {
        if (std::shared_ptr<PeerSender> p = peer(to)) {
          p->Send(std::move(msgs));
        } else {
          LogError("message for an unknown peer dropped", {F("to", to)});
        }
      }
    }

    requests_->Route(e, now_ms);  // replies become answers or retries; ids become tokens
    AnswerFinished();

    if (!e.apply.empty()) {
      ApplyWork work;
      work.done.resize(e.apply.size());
      work.conf_done.resize(e.apply.size());
      for (size_t i = 0; i < e.apply.size(); ++i) {
        if (!e.apply[i].request) continue;
        auto it = waiting_.find(*e.apply[i].request);
        AM_CHECK(it != waiting_.end(), "an applied request nobody waits for");
        if (auto* pe = std::get_if<ProposeEvent>(&it->second)) {
          work.done[i] = std::move(pe->done);
          work.conf_done[i] = std::move(pe->conf_done);
        }
        waiting_.erase(it);
      }
      work.items = std::move(e.apply);
      PostApply(std::move(work));
    }
    PostSnapshotWork(e);  // after the entries it may cover

    for (node::Token token : e.reads) {
      auto it = waiting_.find(token);
      AM_CHECK(it != waiting_.end(), "a read nobody waits for");
      if (auto* re = std::get_if<ReadEvent>(&it->second)) {
        // Queued behind every apply handed out so far, which covers the read index.
        PostApply(ReadWork{std::move(re->request), std::move(re->done)});
      }
      waiting_.erase(it);
    }

    if (e.disk) {
      // After the messages above went out: followers write while we do (etcd's order: send,
      // persist, apply). The completion goes back to the node at once; what it releases is in
      // the next round of effects.
      WriteWal(std::move(*e.disk));
    }

    for (alerts::Firing& f : e.alerts) {
      LogFields fields = {F("rule", f.rule), F("severity", alerts::SeverityName(f.severity)),
                          F("dedup_key", f.dedup_key), F("message", f.message)};
      for (const alerts::Field& field : f.fields) fields.push_back(F(field.name, field.value));
      if (f.severity == alerts::Severity::kInfo) {
        LogInfo("alert", fields);
      } else if (f.severity == alerts::Severity::kWarning) {
        LogWarn("alert", fields);
      } else {
        LogError("alert", fields);
      }
      if (options_.metrics != nullptr) {
        options_.metrics->IncAlert(f.rule, alerts::SeverityName(f.severity));
      }
      if (options_.on_alert) options_.on_alert(f);
      std::lock_guard<std::mutex> lock(status_mu_);
      recent_alerts_.push_back({std::move(f), absl::Now()});
      if (recent_alerts_.size() > kRecentAlertsMax) recent_alerts_.pop_front();
    }

    if (!e.fatal.ok() && !fatal_) {
      fatal_ = true;
      fatal_message_ = e.fatal.ToString();
      wal_error_ = fatal_message_;
      LogError("WAL failed; node stops", {F("error", e.fatal.ToString())});
      FailAll(absl::UnavailableError(absl::StrCat("node stopped: ", e.fatal.message())));
      if (options_.on_fatal) options_.on_fatal(e.fatal);
    }
  }
}

void Runtime::MaybeAutoCompact(uint64_t now) {
  const bool leader = node_->raft().role() == raft::Role::kLeader;
  std::optional<int64_t> target = auto_compactor_.Tick(
      now, leader, applied_revisions_.current, applied_revisions_.compacted);
  if (!target || auto_compaction_pending_.exchange(true)) return;
  AM_CHECK_LT(applied_revisions_.compacted, *target);
  LogInfo("auto-compaction: proposing", {F("revision", *target)});
  kv::Command c;
  c.op = kv::CompactRequest{*target, /*physical=*/true};
  // Posted like a client's proposal; its answer comes back on this thread.
  Propose(std::move(c), [this, target = *target](absl::StatusOr<kv::CommandResponse> r,
                                                 raft::NodeId) {
    auto_compaction_pending_.store(false);
    if (r.ok()) {
      LogInfo("auto-compaction: done", {F("revision", target)});
    } else {
      LogWarn("auto-compaction: not applied", {F("revision", target),
                                               F("error", r.status().ToString())});
    }
  });
}

// --- Leases ----------------------------------------------------------------------------------

uint64_t Runtime::election_timeout_ms() const {
  return static_cast<uint64_t>(options_.node.raft.election_ticks) * options_.tick_ms;
}

int64_t Runtime::MinLeaseTtl() const { return kv::MinLeaseTtlSeconds(election_timeout_ms()); }

absl::StatusOr<int64_t> Runtime::LeaseGrantTtl(int64_t requested) const {
  if (requested > kv::kMaxLeaseTtl) return absl::OutOfRangeError(kv::kErrLeaseTtlTooLarge);
  return std::max(requested, MinLeaseTtl());
}

void Runtime::TickLessor(uint64_t now) {
  // Primary once this leader applied an entry of its own term: every entry of earlier terms
  // (a checkpoint, a revoke, a grant) is then in the Lessor's mirror, so Promote starts no
  // lease from stale state.
  const bool leader = node_->leads_applied_term();
  if (leader != lessor_primary_) {
    lessor_primary_ = leader;
    LeaseWork w;
    w.op = leader ? LeaseWork::Op::kPromote : LeaseWork::Op::kDemote;
    w.now_ms = now;
    TryPostApply(std::move(w));
  }
  if (!leader || now < next_lease_tick_ms_) return;
  next_lease_tick_ms_ = now + kLeaseTickMs;
  LeaseWork tick;
  tick.op = LeaseWork::Op::kTick;
  tick.now_ms = now;
  TryPostApply(std::move(tick));
}

void Runtime::LeaseKeepAlive(int64_t id, std::function<void(absl::StatusOr<int64_t>)> done) {
  LeaseWork w;
  w.op = LeaseWork::Op::kKeepAlive;
  w.id = id;
  w.keepalive_done = std::move(done);
  auto refused = w.keepalive_done;
  if (!TryPostApply(std::move(w))) refused(absl::UnavailableError("server is shutting down"));
}

void Runtime::LeaseTimeToLive(int64_t id, bool keys,
                              std::function<void(absl::StatusOr<LeaseInfo>)> done) {
  LeaseWork w;
  w.op = LeaseWork::Op::kTimeToLive;
  w.id = id;
  w.keys = keys;
  w.ttl_done = std::move(done);
  auto refused = w.ttl_done;
  if (!TryPostApply(std::move(w))) refused(absl::UnavailableError("server is shutting down"));
}

void Runtime::LeaseList(std::function<void(absl::StatusOr<std::vector<int64_t>>)> done) {
  LeaseWork w;
  w.op = LeaseWork::Op::kList;
  w.list_done = std::move(done);
  auto refused = w.list_done;
  if (!TryPostApply(std::move(w))) refused(absl::UnavailableError("server is shutting down"));
}

absl::Status Runtime::ResetLessor() {
  std::vector<kv::Lease> leases;
  absl::Status s = storage_->state->ForEachLease([&](const kv::Lease& l) {
    leases.push_back(l);
    return true;
  });
  if (!s.ok()) return s;
  lessor_->Reset(leases, NowMs());
  return absl::OkStatus();
}

void Runtime::MirrorLease(const kv::ApplyItem& item, const kv::ApplyResult& result) {
  if (!result.status.ok() || !item.command.has_value()) return;
  const auto& op = item.command->op;
  if (const auto* g = std::get_if<kv::LeaseGrantRequest>(&op)) {
    lessor_->Granted(kv::Lease{g->id, g->ttl, 0}, NowMs());
  } else if (const auto* r = std::get_if<kv::LeaseRevokeRequest>(&op)) {
    lessor_->Revoked(r->id);
  } else if (const auto* c = std::get_if<kv::LeaseCheckpointRequest>(&op)) {
    for (const kv::LeaseCheckpointRequest::Checkpoint& one : c->checkpoints) {
      lessor_->Checkpointed(one.id, one.remaining_ttl);
    }
  }
}

void Runtime::RunLease(LeaseWork& w) {
  const uint64_t now = NowMs();
  if (!storage_error_.ok()) {
    const absl::Status stopped = absl::UnavailableError("node stopped after a storage failure");
    if (w.keepalive_done) w.keepalive_done(stopped);
    if (w.ttl_done) w.ttl_done(stopped);
    if (w.list_done) w.list_done(stopped);
    return;
  }
  switch (w.op) {
    case LeaseWork::Op::kPromote:
      lessor_->Promote(now, election_timeout_ms());
      LogInfo("leases: this member decides expiry", {F("leases", lessor_->size())});
      return;
    case LeaseWork::Op::kDemote:
      lessor_->Demote();
      return;
    case LeaseWork::Op::kTick:
      return LeaseTick(now);
    case LeaseWork::Op::kKeepAlive: {
      absl::StatusOr<kv::Lessor::Renewal> renewed = lessor_->Renew(w.id, now);
      if (!renewed.ok()) return w.keepalive_done(renewed.status());
      if (!renewed->clear_checkpoint) return w.keepalive_done(renewed->ttl);
      // The applied checkpoint is stale now: cleared through Raft before acknowledging.
      kv::Command c;
      c.op = kv::LeaseCheckpointRequest{{{w.id, 0}}};
      Propose(std::move(c), [this, id = w.id, done = std::move(w.keepalive_done),
                             ttl = renewed->ttl](absl::StatusOr<kv::CommandResponse> r,
                                                 raft::NodeId) {
        if (!r.ok()) return done(absl::UnavailableError(absl::StrCat(
                              "etcdserver: keep-alive not recorded: ", r.status().message())));
        // Applied here, so on the apply thread: a revoke committed before it ends the lease.
        if (!lessor_->Has(id)) return done(absl::NotFoundError(kv::kErrLeaseNotFound));
        done(ttl);
      });
      return;
    }
    case LeaseWork::Op::kTimeToLive: {
      absl::StatusOr<kv::Lessor::TimeToLive> t = lessor_->Remaining(w.id, now);
      if (!t.ok()) return w.ttl_done(t.status());
      LeaseInfo info{w.id, t->granted_ttl, t->remaining, {}, storage_->state->revision()};
      if (w.keys) {
        absl::Status s = storage_->state->ForEachLeaseKey(w.id, [&](const std::string& k) {
          info.keys.push_back(k);
          return true;
        });
        if (!s.ok()) return w.ttl_done(s);
      }
      return w.ttl_done(std::move(info));
    }
    case LeaseWork::Op::kList: {
      std::vector<int64_t> ids;
      absl::Status s = storage_->state->ForEachLease([&](const kv::Lease& l) {
        ids.push_back(l.id);
        return true;
      });
      if (!s.ok()) return w.list_done(s);
      return w.list_done(std::move(ids));
    }
  }
}

void Runtime::LeaseTick(uint64_t now) {
  // Proposed like clients' writes; their answers come back on this thread or the loop's. A
  // revoke that does not commit is handed out again by the Lessor after kRevokeRetryMs.
  auto answered = [this](const char* what, int64_t id) {
    return [this, what, id](absl::StatusOr<kv::CommandResponse> r, raft::NodeId) {
      lease_proposals_.fetch_sub(1);
      if (!r.ok() && r.status().code() != absl::StatusCode::kNotFound) {
        LogWarn("leases: proposal not applied",
                {F("what", what), F("lease", id), F("error", r.status().ToString())});
      }
    };
  };
  for (int64_t id : lessor_->Expired(now)) {
    if (lease_proposals_.load() >= kMaxLeaseProposals) break;  // retried after kRevokeRetryMs
    LogInfo("leases: revoking an expired lease", {F("lease", id)});
    lease_proposals_.fetch_add(1);
    kv::Command c;
    c.op = kv::LeaseRevokeRequest{id};
    Propose(std::move(c), answered("revoke", id));
  }
  if (lease_proposals_.load() >= kMaxLeaseProposals) return;  // checkpoints wait their turn
  std::vector<kv::LeaseCheckpointRequest::Checkpoint> due = lessor_->DueCheckpoints(now);
  if (due.empty()) return;
  AM_CHECK_LE(due.size(), kv::kMaxLeaseCheckpoints);
  lease_proposals_.fetch_add(1);
  kv::Command c;
  c.op = kv::LeaseCheckpointRequest{std::move(due)};
  Propose(std::move(c), answered("checkpoint", 0));
}

void Runtime::PublishStatus() {
  const raft::Raft& r = node_->raft();
  if (r.leader() != last_leader_) {
    if (r.leader() != raft::kNone) {
      LogInfo("leader changed", {F("leader", r.leader()), F("term", r.term()),
                                 F("previous", last_leader_)});
    }
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  if (r.leader() != last_leader_ && r.leader() != raft::kNone) ++status_.leader_changes;
  if (r.role() == raft::Role::kCandidate && last_role_ != raft::Role::kCandidate) {
    ++status_.elections;
  }
  last_leader_ = r.leader();
  last_role_ = r.role();
  status_.node_id = options_.node_id;
  status_.role = r.role();
  status_.leader = r.leader();
  status_.term = r.term();
  term_.store(r.term(), std::memory_order_relaxed);
  status_.commit = r.commit();
  status_.last_index = r.log().LastIndex();
  status_.applied = node_->applied();
  status_.num_nodes = r.voters().size();
  status_.voters = r.configuration().voters;
  status_.voters_outgoing = r.configuration().outgoing;
  status_.learners = r.configuration().learners;
  status_.member_info = r.configuration().member_info;
  status_.pending_requests = requests_->size();
  status_.wal_size_bytes = node_->wal().stats().size_bytes;
  status_.compaction_count = node_->wal().stats().compaction_count;
  status_.snapshot_index = r.snapshot().index;
  status_.first_log_index = r.log().FirstIndex();
  status_.fatal = fatal_;
  status_.fatal_message = fatal_message_;
  status_.wal_error = wal_error_;
  status_.storage_error = storage_error_message_;
  if (const failover::FailureDetector* d = node_->detector()) {
    const uint64_t now_ms = NowMs();
    if (d->stalls() > logged_stalls_ && now_ms >= next_stall_log_ms_) {
      // The process was stopped or starved (SIGSTOP, a VM pause, an overloaded machine):
      // silence in that gap does not count against the peers (docs/failover-and-alerts.md).
      // At most one line per kStallLogIntervalMs.
      LogWarn("loop stalled: no tick for longer than a heartbeat interval",
              {F("stalls", d->stalls()), F("stalled_ms_total", d->stalled_ms())});
      logged_stalls_ = d->stalls();
      next_stall_log_ms_ = now_ms + kStallLogIntervalMs;
    }
    status_.known_leader = d->known_leader();
    status_.quorum_lost = d->quorum_lost();
    quorum_lost_.store(d->quorum_lost(), std::memory_order_relaxed);
    status_.failed_peers = d->failed_peers();
  }
  if (const int64_t us = last_fsync_us_.load(); us >= 0) {
    status_.last_fsync_ms = static_cast<uint64_t>(us / 1000);
  }
  status_.peers.clear();
  std::map<raft::NodeId, std::string> listed;  // members but ourselves, with their addresses
  for (raft::NodeId id : r.configuration().Members()) listed[id] = "";
  for (const RuntimePeer& p : options_.peers) {
    if (listed.count(p.id) > 0) listed[p.id] = p.address;
  }
  for (auto& [id, address] : listed) {
    if (std::string a = RecordedPeerAddress(r.configuration(), id); !a.empty()) address = a;
  }
  listed.erase(options_.node_id);
  for (const auto& [id, address] : listed) {
    const raft::NodeId pid = id;
    RuntimeStatus::Peer ps;
    ps.id = pid;
    ps.address = address;
    ps.learner = r.configuration().IsLearner(pid);
    if (const raft::Progress* pr = r.progress(pid)) {
      ps.match = pr->match;
      ps.next = pr->next;
    }
    status_.peers.push_back(std::move(ps));
  }
}

void Runtime::CheckTransfers(uint64_t now_ms) {
  if (transfers_.empty()) return;
  const raft::NodeId leader = node_->raft().leader();
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    if (leader == it->target) {
      it->done(absl::OkStatus());
    } else if (now_ms >= it->deadline_ms) {
      it->done(absl::UnavailableError("etcdserver: request timed out, leader transfer took too long"));
    } else {
      ++it;
      continue;
    }
    it = transfers_.erase(it);
  }
}

template <typename Work>
void Runtime::PostOrRefuse(Work work) {
  auto refused = work.done;
  if (!TryPostApply(std::move(work))) refused(absl::UnavailableError("server is shutting down"));
}

void Runtime::Checkpoint(std::function<void(absl::StatusOr<std::string>)> done) {
  PostOrRefuse(CheckpointWork{std::move(done), ""});
}

void Runtime::ReleaseCheckpoint(std::string dir) { PostApply(CheckpointWork{nullptr, std::move(dir)}); }

void Runtime::SnapshotNow(std::function<void(absl::StatusOr<uint64_t>)> done) {
  Post(SnapshotNowEvent{std::move(done)});
}

void Runtime::ListSnapshots(std::function<void(absl::StatusOr<std::vector<SnapshotInfo>>)> done) {
  PostOrRefuse(ListSnapshotsWork{std::move(done)});
}

void Runtime::Defragment(std::function<void(absl::Status)> done) {
  PostOrRefuse(DefragmentWork{std::move(done)});
}

void Runtime::HashKV(int64_t revision, std::function<void(absl::StatusOr<KvHash>)> done) {
  PostOrRefuse(HashWork{revision, std::move(done)});
}

void Runtime::PostSnapshotWork(node::Effects& e) {
  if (e.take_snapshot) PostApply(TakeSnapshotWork{});
  if (e.delete_snapshots_below) PostApply(DeleteSnapshotsWork{*e.delete_snapshots_below});
  for (node::SnapshotRead& r : e.snapshot_reads) PostApply(std::move(r));
  for (node::SnapshotWrite& w : e.snapshot_writes) PostApply(std::move(w));
  if (e.snapshot_finish) PostApply(std::move(*e.snapshot_finish));
}

// --- WAL writes (loop thread) ------------------------------------------------------------------

void Runtime::WriteWal(wal::DiskBatch batch) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = wal::ExecuteBatch(batch, storage_->wal_disk.get());
  if (batch.syncs) {
    // The batch's writes plus its fdatasync: what an acknowledged write waited for.
    const auto took = std::chrono::steady_clock::now() - start;
    last_fsync_us_.store(std::chrono::duration_cast<std::chrono::microseconds>(took).count());
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveFsync(std::chrono::duration<double>(took).count());
    }
  }
  if (!s.ok()) LogError("WAL write failed", {F("error", s.ToString())});
  if (!fatal_) node_->OnDiskDone(batch.id, s);
}

// --- Apply thread -----------------------------------------------------------------------------

bool Runtime::TryPostApply(ApplyTask task) {
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    // Once the apply thread stops, nothing posted would run and its callback never fire.
    if (apply_stop_) return false;
    apply_queue_.push_back(std::move(task));
  }
  apply_cv_.notify_one();
  return true;
}

void Runtime::PostApply(ApplyTask task) {
  {
    std::lock_guard<std::mutex> lock(apply_mu_);
    apply_queue_.push_back(std::move(task));
  }
  apply_cv_.notify_one();
}

void Runtime::ApplyMain() {
  while (true) {
    ApplyTask task;
    {
      std::unique_lock<std::mutex> lock(apply_mu_);
      apply_cv_.wait(lock, [&] { return apply_stop_ || !apply_queue_.empty(); });
      if (apply_queue_.empty()) return;  // stopping and drained
      task = std::move(apply_queue_.front());
      apply_queue_.pop_front();
    }
    RocksDbStateMachine& sm = *storage_->state;
    if (auto* rw = std::get_if<ReadWork>(&task)) {
      if (!storage_error_.ok()) {
        rw->done(absl::UnavailableError("node stopped after a storage failure"), raft::kNone);
        continue;
      }
      rw->done(sm.Range(rw->request), raft::kNone);
      continue;
    }
    if (auto* w = std::get_if<ApplyWork>(&task)) {
      RunApply(*w);
    } else if (auto* d = std::get_if<DefragmentWork>(&task)) {
      d->done(storage_error_.ok() ? sm.Defragment()
                                  : absl::UnavailableError("node stopped after a storage failure"));
    } else if (auto* h = std::get_if<HashWork>(&task)) {
      RunHash(*h);
    } else if (auto* ww = std::get_if<WatchWork>(&task)) {
      RunWatch(*ww);
    } else if (auto* lw = std::get_if<LeaseWork>(&task)) {
      RunLease(*lw);
    } else {
      RunSnapshotTask(task);
    }
  }
}

void Runtime::RunHash(HashWork& h) {
  const RocksDbStateMachine& sm = *storage_->state;
  if (!storage_error_.ok()) {
    h.done(absl::UnavailableError("node stopped after a storage failure"));
    return;
  }
  absl::StatusOr<uint32_t> hash = sm.HashKV(h.revision);
  if (!hash.ok()) {
    h.done(hash.status());
    return;
  }
  h.done(KvHash{*hash, sm.revision(), h.revision > 0 ? h.revision : sm.revision(),
                sm.compact_revision()});
}

void Runtime::RunApply(ApplyWork& w) {
  RocksDbStateMachine& sm = *storage_->state;
  if (!storage_error_.ok()) {
    for (ProposeDone& d : w.done) {
      if (d) d(absl::UnavailableError("node stopped after a storage failure"), raft::kNone);
    }
    AnswerConfChanges(w, absl::UnavailableError("node stopped after a storage failure"));
    return;
  }
  std::vector<kv::ApplyItem> batch;
  std::vector<size_t> positions;  // batch[k] is w.items[positions[k]]
  batch.reserve(w.items.size());
  raft::Index last = 0;
  auto apply_batch = [&]() -> bool {
    if (batch.empty()) return true;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<kv::ApplyResult>> results = sm.Apply(batch);
    if (options_.metrics != nullptr) {
      options_.metrics->ObserveApply(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    if (!results.ok()) {
      storage_error_ = results.status();
      return false;
    }
    watch_hub_->OnApplied();
    // Results line up with the items that were applied (skipped items answer nobody: a
    // restart forgot who was waiting for them).
    AM_CHECK_EQ(results->size(), positions.size());
    for (size_t k = 0; k < positions.size(); ++k) {
      const size_t i = positions[k];
      const kv::ApplyResult& result = (*results)[k];
      MirrorLease(batch[k], result);
      if (!w.done[i]) continue;
      if (options_.metrics != nullptr) options_.metrics->IncProposals(result.status.ok());
      if (!result.status.ok()) {
        w.done[i](result.status, raft::kNone);
      } else if (!result.response) {
        w.done[i](absl::InternalError("applied command produced no response"), raft::kNone);
      } else {
        w.done[i](*result.response, raft::kNone);
      }
      w.done[i] = nullptr;
    }
    batch.clear();
    positions.clear();
    return true;
  };
  for (size_t i = 0; i < w.items.size() && storage_error_.ok(); ++i) {
    if (w.items[i].snapshot) {
      // A snapshot from the leader replaces the state; the entries after it follow.
      if (!apply_batch()) break;
      if (absl::Status s = InstallSnapshot(*w.items[i].snapshot); !s.ok()) {
        storage_error_ = s;
        break;
      }
      if (absl::Status s = ResetLessor(); !s.ok()) {
        storage_error_ = s;
        break;
      }
      watch_hub_->OnRestored();
      last = w.items[i].snapshot->index;
      continue;
    }
    const raft::Entry& e = w.items[i].entry;
    last = e.index;
    if (e.index <= sm.applied_index()) continue;  // durable in RocksDB before a restart
    positions.push_back(i);
    batch.push_back(e.type == raft::EntryType::kNormal ? kv::DecodeEntry(e.index, e.data)
                                                        : kv::ApplyItem::Noop(e.index));
  }
  if (storage_error_.ok()) apply_batch();
  if (!storage_error_.ok()) {
    for (ProposeDone& d : w.done) {
      if (d) d(absl::UnavailableError("node stopped after a storage failure"), raft::kNone);
    }
    AnswerConfChanges(w, absl::UnavailableError("node stopped after a storage failure"));
    Post(AppliedEvent{0, {}, storage_error_});
    return;
  }
  AnswerConfChanges(w, absl::OkStatus());
  Post(AppliedEvent{last, kv::Revisions{sm.revision(), sm.compact_revision()}, absl::OkStatus()});
  SyncWatchers();
}

// --- Watch (apply thread) ---------------------------------------------------------------------

kv::WatchStreamId Runtime::OpenWatchStream(std::shared_ptr<WatchSink> sink) {
  const kv::WatchStreamId id = next_watch_stream_.fetch_add(1);
  WatchWork w;
  w.op = WatchWork::Op::kOpen;
  w.stream = id;
  w.sink = std::move(sink);
  TryPostApply(std::move(w));
  return id;
}

void Runtime::WatchCreate(kv::WatchStreamId stream, kv::WatchCreate request) {
  WatchWork w;
  w.op = WatchWork::Op::kCreate;
  w.stream = stream;
  w.create = std::move(request);
  TryPostApply(std::move(w));
}

void Runtime::WatchCancel(kv::WatchStreamId stream, kv::WatchId id) {
  WatchWork w;
  w.op = WatchWork::Op::kCancel;
  w.stream = stream;
  w.id = id;
  TryPostApply(std::move(w));
}

void Runtime::WatchProgress(kv::WatchStreamId stream) {
  TryPostApply(WatchWork{WatchWork::Op::kProgress, stream, {}, 0, nullptr});
}

void Runtime::WatchResume(kv::WatchStreamId stream) {
  TryPostApply(WatchWork{WatchWork::Op::kResume, stream, {}, 0, nullptr});
}

void Runtime::CloseWatchStream(kv::WatchStreamId stream) {
  TryPostApply(WatchWork{WatchWork::Op::kClose, stream, {}, 0, nullptr});
}

void Runtime::RunWatch(WatchWork& w) {
  kv::WatchHub& hub = *watch_hub_;
  switch (w.op) {
    case WatchWork::Op::kOpen: watch_sinks_[w.stream] = std::move(w.sink); break;
    case WatchWork::Op::kCreate:
      if (storage_error_.ok()) {
        hub.Create(w.stream, w.create);
      } else if (auto it = watch_sinks_.find(w.stream); it != watch_sinks_.end()) {
        kv::WatchResponse r;
        r.stream = w.stream;
        r.created = r.canceled = true;
        r.cancel_reason = "node stopped after a storage failure";
        it->second->Send(std::move(r));
      }
      break;
    case WatchWork::Op::kCancel: hub.Cancel(w.stream, w.id); break;
    case WatchWork::Op::kProgress: hub.RequestProgress(w.stream); break;
    case WatchWork::Op::kResume: hub.SetBlocked(w.stream, false); break;
    case WatchWork::Op::kClose:
      hub.CloseStream(w.stream);
      watch_sinks_.erase(w.stream);
      break;
    case WatchWork::Op::kSync: watch_sync_posted_ = false; break;
    case WatchWork::Op::kNotifyProgress: hub.NotifyProgress(); break;
  }
  SyncWatchers();
}

void Runtime::DispatchWatchOutput() {
  std::set<kv::WatchStreamId> full;  // streams that refused events in this round
  for (kv::WatchResponse& r : watch_hub_->TakeOutput()) {
    auto it = watch_sinks_.find(r.stream);
    if (it == watch_sinks_.end()) continue;  // the stream closed meanwhile
    // Once a stream refused events, its later events of the round go back too (in order).
    if (!r.events.empty() && full.count(r.stream) != 0) {
      watch_hub_->Undelivered(r);
      continue;
    }
    if (it->second->Send(r)) continue;
    AM_CHECK(!r.events.empty(), "a watch sink refused a response without events");
    full.insert(r.stream);
    watch_hub_->Undelivered(r);
  }
}

void Runtime::SyncWatchers() {
  DispatchWatchOutput();
  if (!storage_error_.ok()) return;
  const bool behind = watch_hub_->Sync();  // one chunk per watcher that is behind
  DispatchWatchOutput();
  // Catch up further after what is queued (applies come first): never a busy loop, since
  // watchers of blocked streams do not count as behind.
  if (behind && !watch_sync_posted_) {
    watch_sync_posted_ = true;
    PostApply(WatchWork{WatchWork::Op::kSync, 0, {}, 0, nullptr});
  }
}

void Runtime::AnswerConfChanges(ApplyWork& w, const absl::Status& status) {
  AM_CHECK(w.conf_done.empty() || w.conf_done.size() == w.items.size());
  for (size_t i = 0; i < w.conf_done.size(); ++i) {
    if (!w.conf_done[i]) continue;
    if (!status.ok()) {
      w.conf_done[i](status, raft::kNone);
      continue;
    }
    // The entry records the configuration it leads to (docs/membership.md).
    absl::StatusOr<raft::ConfChange> cc = raft::DecodeConfChange(w.items[i].entry.data);
    if (cc.ok() && cc->result) {
      w.conf_done[i](*cc->result, raft::kNone);
    } else {
      w.conf_done[i](absl::InternalError("the applied configuration change records no result"),
                     raft::kNone);
    }
  }
}

void Runtime::RunCheckpoint(CheckpointWork& c) {
  RocksDbStateMachine& sm = *storage_->state;
  if (!c.done) {  // release
    const std::string name = std::filesystem::path(c.dir).filename().string();
    if (absl::Status s = sm.DeleteSnapshot(name); !s.ok()) {
      LogWarn("removing an export checkpoint failed", {F("dir", c.dir), F("error", s.ToString())});
    }
    return;
  }
  if (!storage_error_.ok()) {
    c.done(absl::UnavailableError("node stopped after a storage failure"));
    return;
  }
  const std::string name = absl::StrCat(SnapshotStore::kExportPrefix, ++checkpoints_);
  if (absl::Status s = sm.CreateSnapshot(name); !s.ok()) {
    c.done(s);
    return;
  }
  c.done(absl::StrCat(sm.dir(), "/snapshots/", name));
}

absl::Status Runtime::InstallSnapshot(const raft::SnapshotMeta& meta) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status s = storage_->snapshots->Install(meta.index);
  if (!s.ok()) return s;
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  install_seconds_ += took;
  if (options_.metrics != nullptr) options_.metrics->ObserveSnapshotInstall(install_seconds_);
  install_seconds_ = 0;
  LogInfo("snapshot installed", {F("index", meta.index), F("term", meta.term),
                                 F("seconds", took)});
  return absl::OkStatus();
}

void Runtime::RunSnapshotTask(ApplyTask& task) {
  SnapshotStore& store = *storage_->snapshots;
  if (std::holds_alternative<TakeSnapshotWork>(task)) {
    if (!storage_error_.ok()) return;
    absl::StatusOr<raft::Index> index = store.Take();
    if (index.ok() && options_.metrics != nullptr) {
      options_.metrics->IncSnapshotsCreated();
      if (absl::StatusOr<std::vector<SnapshotStore::Info>> kept = store.List();
          kept.ok() && !kept->empty()) {
        options_.metrics->SetSnapshotBytes(kept->back().checkpoint_bytes);
      }
    }
    Post(SnapshotTakenEvent{index.ok() ? *index : 0, index.status()});
  } else if (auto* d = std::get_if<DeleteSnapshotsWork>(&task)) {
    if (absl::Status s = store.DeleteBelow(d->below); !s.ok()) {
      LogWarn("deleting old snapshots failed", {F("error", s.ToString())});
    }
  } else if (auto* r = std::get_if<node::SnapshotRead>(&task)) {
    Post(SnapshotReadEvent{*r, store.Read(r->meta.index, r->offset, r->max_bytes)});
  } else if (auto* w = std::get_if<node::SnapshotWrite>(&task)) {
    absl::Status s = store.Stage(*w);
    Post(SnapshotWrittenEvent{w->meta, w->offset, w->data.size(), std::move(s)});
  } else if (auto* c = std::get_if<CheckpointWork>(&task)) {
    RunCheckpoint(*c);
  } else if (auto* l = std::get_if<ListSnapshotsWork>(&task)) {
    absl::StatusOr<std::vector<SnapshotStore::Info>> kept = store.List();
    if (!kept.ok()) {
      l->done(kept.status());
      return;
    }
    std::vector<SnapshotInfo> out;
    for (const SnapshotStore::Info& i : *kept) {
      out.push_back({i.index, i.checkpoint_bytes, i.file_bytes});
    }
    l->done(std::move(out));
  } else if (auto* f = std::get_if<node::SnapshotFinish>(&task)) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = store.Keep(f->meta.index, f->total_bytes, f->total_crc);
    install_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Post(SnapshotReceivedEvent{f->meta, std::move(s)});
  }
}

}  // namespace amaters::server
