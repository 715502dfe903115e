// server::Runtime — drives one node::Node with the real clock, real files and real sockets
// (docs/design.md §2; docs/architecture.md §7 lists the rules a driver follows).
//
// Threads (each owns what it touches; they talk through bounded queues, never shared state;
// the inbox holds at most requests.max_requests client requests and kMaxInboxBatches peer
// batches, the lifecycle tracks at most requests.max_requests, one disk batch is in flight):
//   loop    owns the Node and the WAL's PosixDisk. Wakes on an input or at the next tick;
//           feeds ticks, peer messages, apply progress and client requests in; hands the
//           effects out in etcd's order: messages to the peer senders first, then it executes
//           the WAL batch itself (writes and fdatasync; followers write theirs meanwhile) and
//           reports it done at once; committed entries go to the apply thread.
//   apply   owns the RocksDB state machine and its snapshots (storage::SnapshotStore): applies
//           committed entries in order, answers the clients whose entries they were, serves
//           reads, reports the applied index back; takes, reads, stages, keeps, installs and
//           deletes snapshots as the node asks (docs/snapshots.md), in the same order.
//   peers   one sender per peer (server/runtime/peer_sender.h) streaming message batches.
// Client callbacks run on the loop or the apply thread and must not block.
//
// Client requests: Propose and Read answer exactly once, through their callback, by the
// request deadline at the latest. While no leader is known (an election is running) or a
// leadership change dropped the request, the runtime retries it itself until the deadline; when
// another node is the known leader it answers kFailedPrecondition with `leader` set, and the
// caller forwards the request there (server/service).
#ifndef AMATERS_SERVER_RUNTIME_RUNTIME_H_
#define AMATERS_SERVER_RUNTIME_RUNTIME_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/alerts/alert_manager.h"
#include "engine/alerts/event.h"
#include "engine/kv/apply.h"
#include "engine/kv/auto_compaction.h"
#include "engine/kv/lessor.h"
#include "engine/kv/state_machine.h"
#include "engine/kv/watch.h"
#include "engine/node/node.h"
#include "engine/node/requests.h"
#include "engine/raft/configuration.h"
#include "engine/raft/types.h"
#include "server/runtime/peer_sender.h"
#include "server/runtime/test_faults.h"

namespace amaters::server {

class Metrics;
class RuntimeStorage;

struct RuntimePeer {
  raft::NodeId id = raft::kNone;
  std::string address;  // host:port of its peer listener
};

struct RuntimeOptions {
  raft::NodeId node_id = 1;
  // The other members at bootstrap (empty for a single node); the configuration in effect
  // takes over once the node applies a change or a snapshot (docs/membership.md).
  std::vector<RuntimePeer> peers;
  // `[cluster] initial_cluster_state = "existing"`: the node joins a running cluster. It starts
  // outside its bootstrap configuration (`peers` without itself), so it never campaigns until
  // a change it applies makes it a voter.
  bool join_existing = false;
  std::string data_dir;            // absolute; holds wal/ and kv/
  node::NodeConfig node;           // raft ids and voters are filled in by Open
  uint64_t tick_ms = 100;          // one Raft tick
  // The client request lifecycle (engine/node/requests.h); node::ConfigureTiming fills it with
  // tick_ms. max_requests bounds the requests tracked at once (max_inflight_requests).
  node::ClientRequestsConfig requests;
  uint64_t request_timeout_ms = 5000;
  // When this node leads, it proposes compactions of the revision history as this policy says
  // (engine/kv/auto_compaction.h; off unless set: the server sets it from [storage]).
  kv::AutoCompactionPolicy auto_compaction;
  kv::WatchLimits watch_limits;
  // The leader checkpoints the remaining TTL of every lease this often (0: never), so that a
  // new leader or a restarted cluster continues from it (docs/leases.md).
  uint64_t lease_checkpoint_interval_ms = kv::kDefaultLeaseCheckpointIntervalMs;
  // Progress notifications to watchers that asked for them (etcd: 10 minutes).
  uint64_t watch_progress_interval_ms = 10 * 60 * 1000;
  uint64_t cluster_id = 0;
  std::string client_address;      // advertised to peers
  std::string peer_address;        // our own peer listener (empty for a single node)
  PeerSenderOptions peer_sender;
  Metrics* metrics = nullptr;      // optional; outlives the runtime
  // Called once, on the loop thread, if the node stops because its WAL failed.
  std::function<void(const absl::Status&)> on_fatal;
  // Called on the loop thread for every alert the node fires (after deduplication); must not
  // block (queue the work).
  std::function<void(const alerts::Firing&)> on_alert;
  // Fault hooks of the chaos runner's server binary (server/runtime/test_faults.h); null in
  // amaters-server. Outlives the runtime.
  TestFaults* test_faults = nullptr;
};

// An alert as the runtime keeps it for GET /alerts: the firing and its wall-clock time.
struct AlertRecord {
  alerts::Firing firing;
  absl::Time fired_at;
};
inline constexpr size_t kRecentAlertsMax = 1000;

// What the admin endpoints and the gRPC headers report; a copy published by the loop.
struct RuntimeStatus {
  raft::NodeId node_id = raft::kNone;
  raft::Role role = raft::Role::kFollower;
  raft::NodeId leader = raft::kNone;
  raft::Term term = 0;
  raft::Index commit = 0;
  raft::Index last_index = 0;
  raft::Index applied = 0;
  int64_t revision = 0;
  uint64_t num_nodes = 1;  // voters of the configuration (both sets while joint)
  // The configuration in effect (docs/membership.md): voters, outgoing voters (while joint),
  // learners; sorted.
  std::vector<raft::NodeId> voters;
  std::vector<raft::NodeId> voters_outgoing;
  std::vector<raft::NodeId> learners;
  // Names and URLs recorded for members (raft::Configuration::member_info).
  std::vector<raft::MemberInfo> member_info;
  uint64_t pending_requests = 0;
  uint64_t wal_size_bytes = 0;
  uint64_t compaction_count = 0;  // WAL compactions that deleted a segment (this process)
  raft::Index snapshot_index = 0;   // the newest durable snapshot (0: none)
  raft::Index first_log_index = 1;  // the first entry still in the log
  uint64_t leader_changes = 0;
  uint64_t elections = 0;
  bool fatal = false;
  std::string fatal_message;
  std::string wal_error;      // set when the WAL failed (the node stopped)
  std::string storage_error;  // set when applying to RocksDB failed (the node stopped)
  // The failure detector's view (docs/failover-and-alerts.md).
  raft::NodeId known_leader = raft::kNone;  // the last leader known (kept during elections)
  bool quorum_lost = false;
  std::vector<raft::NodeId> failed_peers;
  std::optional<uint64_t> last_fsync_ms;  // duration of the last WAL batch that synced
  struct Peer {
    raft::NodeId id = raft::kNone;
    std::string address;
    std::string client_address;  // learned from its batches
    bool connected = false;
    raft::Index match = 0;       // leader only
    raft::Index next = 0;        // leader only
    bool learner = false;        // a learner in the configuration in effect
  };
  std::vector<Peer> peers;
};

class Runtime {
 public:
  using ProposeDone =
      std::function<void(absl::StatusOr<kv::CommandResponse> result, raft::NodeId leader)>;
  using ReadDone =
      std::function<void(absl::StatusOr<kv::RangeResponse> result, raft::NodeId leader)>;
  // The configuration a change led to, once applied here; or the error with a leader hint.
  using ConfChangeDone =
      std::function<void(absl::StatusOr<raft::Configuration> result, raft::NodeId leader)>;

  // Opens the data directory (creating it), recovers the WAL (refusing to start on corruption,
  // naming the file and offset) and the RocksDB store, and builds the Node. No thread runs yet.
  static absl::StatusOr<std::unique_ptr<Runtime>> Open(RuntimeOptions options);
  ~Runtime();

  void Start();
  // Stops the threads: the loop stops taking inputs (after the WAL batch it is writing), the
  // apply thread drains what it was given, RocksDB is synced and closed, pending requests fail
  // with kUnavailable. Idempotent. Returns the first error met while closing storage.
  absl::Status Stop();

  // A replicated write. Answers with the state machine's response after the entry is applied
  // locally (never before it is committed and durable on a quorum).
  void Propose(kv::Command command, ProposeDone done);
  // A configuration change (docs/membership.md), on the leader: answers once the change is
  // applied on this node; kFailedPrecondition with `leader` set on a follower (the caller
  // forwards), refusals as Raft gives them (UNAVAILABLE "a configuration change is pending"
  // included). Retried while no leader is known, until the request deadline.
  void ProposeConfChange(raft::ConfChange change, ConfChangeDone done);
  // A read: linearizable (ReadIndex, thesis §6.4) or serializable (local state, may be stale).
  void Read(kv::RangeRequest request, bool serializable, ReadDone done);

  // Raft leadership transfer (thesis §3.10), on the leader only: `done` gets OK once `target`
  // leads, kFailedPrecondition on a follower, or kUnavailable when the transfer does not
  // finish by the request deadline.
  void TransferLeadership(raft::NodeId target, std::function<void(absl::Status)> done);

  // Maintenance.Snapshot: a checkpoint of the applied state, made on the apply thread after
  // every entry handed to it so far. `done` gets its directory (an openable RocksDB database:
  // export it with storage::RocksDbStateMachine::ExportDatabase, from any thread) and must hand
  // it back with ReleaseCheckpoint. Checkpoints left by a crash are removed at the next start.
  void Checkpoint(std::function<void(absl::StatusOr<std::string> dir)> done);
  void ReleaseCheckpoint(std::string dir);
  // amaters-ctl snapshot create: the node snapshots now (as at its threshold); `done` gets the
  // index once it is durable... or the error. amaters-ctl snapshot list: the snapshots kept.
  void SnapshotNow(std::function<void(absl::StatusOr<uint64_t> index)> done);
  struct SnapshotInfo {
    raft::Index index = 0;
    uint64_t checkpoint_bytes = 0;
    uint64_t file_bytes = 0;
  };
  void ListSnapshots(std::function<void(absl::StatusOr<std::vector<SnapshotInfo>>)> done);
  // Compacts the state store (RocksDbStateMachine::Defragment) on the apply thread, between
  // applied batches; `done` runs there. Thread-safe.
  void Defragment(std::function<void(absl::Status)> done);
  // The state store's HashKV of the state at `revision` (0 = current), with the store's
  // revisions, on the apply thread (between applied batches, so they agree). Errors as
  // StateMachine::HashKV. Thread-safe.
  struct KvHash {
    uint32_t hash = 0;
    int64_t revision = 0;          // the store's current revision
    int64_t hash_revision = 0;     // the revision hashed
    int64_t compact_revision = 0;  // the store's compact revision
  };
  void HashKV(int64_t revision, std::function<void(absl::StatusOr<KvHash>)> done);

  // Leases (docs/leases.md). The Lessor (engine/kv/lessor.h) lives on the apply thread next
  // to the state machine whose leases it mirrors; while this node leads it decides expiry:
  // each tick it proposes revokes of expired leases and checkpoints of remaining TTLs. These
  // calls post to the apply thread and are thread-safe; `done` runs there.
  //  - LeaseKeepAlive: the lease's TTL after renewing it (and, for a lease with a checkpoint,
  //    after a clearing checkpoint committed); kNotFound kErrLeaseNotFound;
  //    kFailedPrecondition kErrNotPrimary on a follower (the caller forwards to the leader).
  //  - LeaseTimeToLive: the lease's granted and remaining TTL (and its keys when asked); the
  //    same errors.
  //  - LeaseList: every lease this member's state holds, ascending.
  struct LeaseInfo {
    int64_t id = 0;
    int64_t granted_ttl = 0;
    int64_t remaining = 0;
    std::vector<std::string> keys;
    int64_t revision = 0;  // the store revision the answer saw
  };
  void LeaseKeepAlive(int64_t id, std::function<void(absl::StatusOr<int64_t> ttl)> done);
  void LeaseTimeToLive(int64_t id, bool keys,
                       std::function<void(absl::StatusOr<LeaseInfo>)> done);
  void LeaseList(std::function<void(absl::StatusOr<std::vector<int64_t>>)> done);
  // The TTL a grant asking for `requested` seconds gets (at least the minimum: 1.5 election
  // timeouts in whole seconds, as etcd). kOutOfRange kErrLeaseTtlTooLarge.
  absl::StatusOr<int64_t> LeaseGrantTtl(int64_t requested) const;

  // Watch streams (etcd's Watch, docs/watch.md). The watchers (kv::WatchHub) live on the apply
  // thread, next to the state machine whose history they read; these calls post to it and
  // are thread-safe. A stream's responses go to its sink, on the apply thread.
  class WatchSink {
   public:
    virtual ~WatchSink() = default;
    // Queues `response`, or returns false without queuing it when it holds events and the
    // stream's send queue is full: the hub then sends the stream no events (its watchers fall
    // behind and catch up from the history) until WatchResume. Responses without events are
    // always queued (their number is bounded by the client's requests, which the stream
    // stops reading while its queue is full).
    virtual bool Send(const kv::WatchResponse& response) = 0;
  };
  kv::WatchStreamId OpenWatchStream(std::shared_ptr<WatchSink> sink);
  void WatchCreate(kv::WatchStreamId stream, kv::WatchCreate request);
  void WatchCancel(kv::WatchStreamId stream, kv::WatchId id);
  void WatchProgress(kv::WatchStreamId stream);
  // The sink has room again.
  void WatchResume(kv::WatchStreamId stream);
  void CloseWatchStream(kv::WatchStreamId stream);

  // A batch of Raft messages from a peer (decoded; addressing is checked by the Node).
  void Deliver(std::vector<raft::Message> messages);
  void LearnClientAddress(raft::NodeId peer, std::string address);
  // A stream from `peer` opened: our sender to it reconnects at once if it is down
  // (PeerSender::Reconnect). Thread-safe; ignores unknown ids.
  void PeerDialedUs(raft::NodeId peer);

  RuntimeStatus status() const;
  // The most recent alerts (at most kRecentAlertsMax), oldest first.
  std::vector<AlertRecord> recent_alerts() const;
  // An event the server observed itself (e.g. CertificateExpiring): through the node's rules.
  void Report(alerts::Event event);
  // The current Raft term (cheap; for response headers).
  raft::Term term() const { return term_.load(std::memory_order_relaxed); }
  // The failure detector reports that no quorum is reachable (cheap; for the write path).
  bool quorum_lost() const { return quorum_lost_.load(std::memory_order_relaxed); }
  const RuntimeOptions& options() const { return options_; }
  // The sender that reaches `peer`'s Peer service (for forwarding), or null for unknown ids.
  // Senders follow the configuration: one per member (at its recorded peer URL, else its
  // `peers` entry) and per configured peer.
  std::shared_ptr<PeerSender> peer(raft::NodeId id) const;
  // Whether a stream or call from `peer` is accepted: a member, a configured peer, or anyone
  // while this node is not a member of its own configuration (joining: the leader that adds
  // it may be one it was not told about).
  bool AcceptsPeer(raft::NodeId id) const;

 private:
  struct ProposeEvent {
    kv::Command command;
    ProposeDone done;
    uint64_t deadline_ms;
    // A configuration change instead of `command`; answered through `conf_done`.
    std::optional<raft::ConfChange> conf_change;
    ConfChangeDone conf_done;
  };
  struct ReadEvent {
    kv::RangeRequest request;
    bool serializable;
    ReadDone done;
    uint64_t deadline_ms;
  };
  struct AppliedEvent {
    raft::Index index;
    kv::Revisions revisions;
    absl::Status status;
  };
  struct MessagesEvent {
    std::vector<raft::Message> messages;
  };
  struct TransferEvent {
    raft::NodeId target;
    std::function<void(absl::Status)> done;
    uint64_t deadline_ms;
  };
  // Snapshot work the apply thread finished (node::Node's completions).
  struct SnapshotTakenEvent {
    raft::Index index;
    absl::Status status;
  };
  struct SnapshotReadEvent {
    node::SnapshotRead read;
    absl::StatusOr<node::SnapshotBytes> bytes;
  };
  struct SnapshotWrittenEvent {
    raft::SnapshotMeta meta;
    uint64_t offset;
    uint64_t length;
    absl::Status status;
  };
  struct SnapshotReceivedEvent {
    raft::SnapshotMeta meta;
    absl::Status status;
  };
  struct SnapshotNowEvent {
    std::function<void(absl::StatusOr<uint64_t>)> done;
  };
  using Event = std::variant<ProposeEvent, ReadEvent, AppliedEvent, MessagesEvent,
                             TransferEvent, alerts::Event, SnapshotTakenEvent, SnapshotReadEvent,
                             SnapshotWrittenEvent, SnapshotReceivedEvent, SnapshotNowEvent>;

  // A client request the loop is tracking (its callback), by its node::Token.
  using Waiting = std::variant<ProposeEvent, ReadEvent>;

  // Work for the apply thread.
  struct ApplyWork {
    std::vector<node::ApplyItem> items;
    std::vector<ProposeDone> done;  // per item; empty function = nobody waits
    std::vector<ConfChangeDone> conf_done;  // per item, for configuration changes
  };
  struct ReadWork {
    kv::RangeRequest request;
    ReadDone done;
  };
  struct TakeSnapshotWork {};
  struct DeleteSnapshotsWork {
    raft::Index below;
  };
  struct CheckpointWork {
    std::function<void(absl::StatusOr<std::string>)> done;  // empty: release `dir`
    std::string dir;
  };
  struct ListSnapshotsWork {
    std::function<void(absl::StatusOr<std::vector<SnapshotInfo>>)> done;
  };
  struct DefragmentWork {
    std::function<void(absl::Status)> done;
  };
  struct HashWork {
    int64_t revision = 0;
    std::function<void(absl::StatusOr<KvHash>)> done;
  };
  struct WatchWork {
    enum class Op : uint8_t { kOpen, kCreate, kCancel, kProgress, kResume, kClose, kSync,
                              kNotifyProgress };
    Op op = Op::kSync;
    kv::WatchStreamId stream = 0;
    kv::WatchCreate create;
    kv::WatchId id = 0;
    std::shared_ptr<WatchSink> sink;
  };
  struct LeaseWork {
    enum class Op : uint8_t { kTick, kPromote, kDemote, kKeepAlive, kTimeToLive, kList };
    Op op = Op::kTick;
    uint64_t now_ms = 0;
    int64_t id = 0;
    bool keys = false;
    std::function<void(absl::StatusOr<int64_t>)> keepalive_done;
    std::function<void(absl::StatusOr<LeaseInfo>)> ttl_done;
    std::function<void(absl::StatusOr<std::vector<int64_t>>)> list_done;
  };
  using ApplyTask =
      std::variant<ApplyWork, ReadWork, TakeSnapshotWork, DeleteSnapshotsWork, node::SnapshotRead,
                   node::SnapshotWrite, node::SnapshotFinish, CheckpointWork, ListSnapshotsWork,
                   DefragmentWork, HashWork, WatchWork, LeaseWork>;


  explicit Runtime(RuntimeOptions options);

  void Post(Event event);
  static void Refuse(Event& event, const absl::Status& status);
  void LoopMain();
  void Handle(Event& event, uint64_t now_ms);
  void Submit(Waiting request, uint64_t now_ms);
  void ProcessEffects(uint64_t now_ms);
  static void Answer(Waiting& request, const absl::Status& status, raft::NodeId leader);
  // Answers the requests the lifecycle finished (node::ClientRequests::TakeFinished).
  void AnswerFinished();
  void FailAll(const absl::Status& status);  // every pending request, retry and transfer
  void PublishStatus();
  // Loop thread, on every tick: proposes a compaction when this leader's policy asks for one.
  void MaybeAutoCompact(uint64_t now);
  // Loop thread, on every tick: tells the Lessor about leadership changes and, while leading,
  // gives it the tick.
  void TickLessor(uint64_t now);
  uint64_t election_timeout_ms() const;
  int64_t MinLeaseTtl() const;
  // Loop thread: senders for the members of the configuration in effect (docs/membership.md).
  void SyncPeers();
  // Answers the configuration changes of `w` that are applied (or the error).
  static void AnswerConfChanges(ApplyWork& w, const absl::Status& status);
  void CheckTransfers(uint64_t now_ms);
  // Loop thread: executes the node's disk batch on the WAL's PosixDisk and reports it done.
  void WriteWal(wal::DiskBatch batch);
  void ApplyMain();
  void PostApply(ApplyTask task);
  // For callers outside the loop (gRPC threads): false, and nothing queued, once the apply
  // thread is stopping.
  bool TryPostApply(ApplyTask task);
  // TryPostApply for a task with a `done` callback, which gets UNAVAILABLE if it is refused.
  template <typename Work>
  void PostOrRefuse(Work work);
  void HandleSnapshotEvent(Event& event);
  void PostSnapshotWork(node::Effects& e);
  // Apply thread: one task of each kind.
  void RunApply(ApplyWork& w);
  void RunSnapshotTask(ApplyTask& task);
  void RunCheckpoint(CheckpointWork& c);
  void RunHash(HashWork& h);
  absl::Status InstallSnapshot(const raft::SnapshotMeta& meta);
  uint64_t NowMs() const;

  const RuntimeOptions options_;
  std::unique_ptr<RuntimeStorage> storage_;      // PosixDisk + RocksDB
  std::unique_ptr<node::Node> node_;               // loop thread only
  mutable std::mutex peers_mu_;  // guards peers_ (changed by the loop, read by gRPC threads)
  std::map<raft::NodeId, std::shared_ptr<PeerSender>> peers_;
  std::atomic<bool> joining_{false};  // not a member of its own configuration
  std::optional<raft::Configuration> synced_conf_;  // loop: the configuration SyncPeers last saw

  // Loop inbox.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> inbox_;
  uint64_t inbox_clients_ = 0;   // client requests in inbox_ (at most requests.max_requests)
  uint64_t inbox_batches_ = 0;   // peer batches in inbox_ (at most kMaxInboxBatches)
  uint64_t dropped_batches_ = 0;  // peer batches dropped because the inbox was full
  static constexpr uint64_t kMaxInboxBatches = 4096;
  bool stopping_ = false;

  // Loop-thread state.
  std::optional<node::ClientRequests> requests_;  // the request lifecycle (engine/node)
  node::Token next_token_ = 1;
  std::map<node::Token, Waiting> waiting_;  // callbacks of the requests in requests_
  std::vector<TransferEvent> transfers_;  // leadership transfers waiting for their outcome
  // amaters-ctl snapshot create calls waiting for the next snapshot to be durable.
  std::vector<std::pair<raft::Index, std::function<void(absl::StatusOr<uint64_t>)>>>
      snapshot_waiters_;  // (index the snapshot must reach, callback)
  uint64_t checkpoints_ = 0;  // apply thread: names Maintenance.Snapshot checkpoints
  uint64_t next_tick_ms_ = 0;
  bool fatal_ = false;
  std::string fatal_message_;
  std::string wal_error_;
  std::string storage_error_message_;
  raft::NodeId last_leader_ = raft::kNone;
  static constexpr uint64_t kStallLogIntervalMs = 10'000;
  uint64_t logged_stalls_ = 0;  // failure-detector stalls already logged
  uint64_t next_stall_log_ms_ = 0;
  raft::Role last_role_ = raft::Role::kFollower;
  // Apply thread: leases.
  void RunLease(LeaseWork& w);
  void LeaseTick(uint64_t now_ms);
  // Mirrors an applied grant, revoke or checkpoint into the Lessor.
  void MirrorLease(const kv::ApplyItem& item, const kv::ApplyResult& result);
  // Reloads the Lessor from the state machine (after opening or installing a snapshot).
  absl::Status ResetLessor();
  std::unique_ptr<kv::Lessor> lessor_;
  // Loop thread: whether the Lessor was last told this node leads; when it gets its next tick
  // (every kLeaseTickMs while leading: expiry is decided to within that).
  bool lessor_primary_ = false;
  uint64_t next_lease_tick_ms_ = 0;
  static constexpr uint64_t kLeaseTickMs = 100;
  // Apply thread: lease proposals (revokes and checkpoints) not yet answered; bounded.
  std::atomic<int64_t> lease_proposals_{0};
  static constexpr int64_t kMaxLeaseProposals = 1000;
  // Apply thread: the watchers, the sinks of open streams, whether a catch-up is queued.
  void RunWatch(WatchWork& w);
  void SyncWatchers();
  void DispatchWatchOutput();
  std::unique_ptr<kv::WatchHub> watch_hub_;
  std::map<kv::WatchStreamId, std::shared_ptr<WatchSink>> watch_sinks_;
  bool watch_sync_posted_ = false;
  std::atomic<kv::WatchStreamId> next_watch_stream_{1};
  uint64_t next_watch_progress_ms_ = 0;  // loop thread
  // Loop thread: the auto-compaction policy and the store revisions it is given.
  kv::AutoCompactor auto_compactor_;
  kv::Revisions applied_revisions_;
  std::atomic<bool> auto_compaction_pending_{false};  // one proposal at a time

  // Apply thread.
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;
  std::deque<ApplyTask> apply_queue_;
  bool apply_stop_ = false;
  absl::Status storage_error_;  // apply thread: first state machine error
  double install_seconds_ = 0;  // apply thread: keeping the snapshot being installed

  // Published status.
  mutable std::mutex status_mu_;
  RuntimeStatus status_;
  std::map<raft::NodeId, std::string> client_addresses_;  // guarded by status_mu_
  std::deque<AlertRecord> recent_alerts_;                 // guarded by status_mu_
  std::atomic<int64_t> last_fsync_us_{-1};                // loop thread; -1: none yet

  std::thread loop_thread_, apply_thread_;
  std::atomic<raft::Term> term_{0};
  std::atomic<bool> quorum_lost_{false};
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point epoch_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_RUNTIME_RUNTIME_H_
