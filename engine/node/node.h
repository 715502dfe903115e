// node::Node — one replica as a single pure state machine: Raft + the WAL writer + the failure
// detector (engine/failover) and the alert rules (engine/alerts). Both drivers run exactly this:
// the simulator (virtual time, SimDisk, in-memory state machine) and the server (real clock,
// PosixDisk, RocksDB). Health (engine/health) is evaluated by the server, not here.
//
// Inputs:  Tick(now_ms), Receive(message), OnDiskDone(batch, status), Propose(request, data),
//          Read(request), Abandon(request), OnApplied(index), TransferLeadership(target),
//          Campaign(), Report(alert event), and the snapshot completions OnSnapshotTaken,
//          OnSnapshotRead, OnSnapshotWritten, OnSnapshotReceived.
// Outputs: TakeEffects() — messages to send, at most one disk batch to execute, committed
//          entries to apply (each tagged with the local client waiting for it; or a received
//          snapshot to restore), reads that may be served now, error replies for requests that
//          will not complete, alert firings, and snapshot work for the driver (take one, read
//          or write a chunk, keep a received one, delete old ones).
//
// Snapshots (docs/snapshots.md): once snapshot_threshold_entries entries were applied since the
// last snapshot, the node asks the driver to snapshot its state machine (Effects::take_snapshot);
// when the driver reports it durable, the WAL records it, and once that record is durable the
// log and the WAL are compacted up to snapshot_catchup_entries below it. A follower that needs
// compacted entries gets the leader's snapshot streamed in chunks (snapshot_transfer.h).
//
// The rules the node enforces (docs/design.md §2, docs/architecture.md "Node"):
//  - Persist before sending what depends on it: Raft holds such messages until the WAL writer
//    acknowledges the persist request (sync_mode = always: after fdatasync).
//  - Apply committed entries in order, and only entries that are durable locally.
//  - Acknowledge a client only after apply: a proposal's success reply is produced by the driver
//    from the ApplyItem that names the request, after the state machine applied it. A request
//    whose entry was replaced (leadership changed) gets an error reply instead: kUnavailable
//    when another entry committed at its index (it certainly did not take effect; safe to
//    retry), kAborted when this node's log lost it before anything committed there (it may
//    still commit through another replica: the outcome is unknown; do not retry blindly).
//  - Serve a read only after the state machine has applied the read index.
//
// Driver loop: after every input call TakeEffects(); send the messages; execute `disk` (one
// batch at a time) and report OnDiskDone; apply `apply` in order and report OnApplied; reply to
// the clients in `replies`; serve `reads`. If `fatal` is set the WAL failed: stop the node and
// restart it from disk (docs/architecture.md explains why a failed fsync is not retried).
#ifndef AMATERS_ENGINE_NODE_NODE_H_
#define AMATERS_ENGINE_NODE_NODE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/alerts/alert_manager.h"
#include "engine/alerts/event.h"
#include "engine/alerts/rules.h"
#include "engine/failover/config.h"
#include "engine/failover/detector.h"
#include "engine/node/snapshot_transfer.h"
#include "engine/raft/raft.h"
#include "engine/raft/types.h"
#include "engine/wal/replay.h"
#include "engine/wal/writer.h"

namespace amaters::node {

// Identifies one client request within this node; chosen by the driver, never reused while the
// request is pending.
using RequestId = uint64_t;

struct NodeConfig {
  raft::Config raft;
  wal::WriterOptions wal;
  // Client requests (proposals and reads) waiting for their outcome on this node.
  uint64_t max_pending_requests = 10000;
  // Largest command accepted by Propose (kInvalidArgument beyond it). Must stay below the WAL's
  // record limit (wal::kMaxRecordPayloadBytes, 64 MiB); etcd's default request limit is 1.5 MiB.
  uint64_t max_entry_bytes = 8ull << 20;
  // Failure detection and alerting (docs/failover-and-alerts.md). The detector only observes
  // and reports; Raft's own timers decide elections.
  failover::FailoverConfig failover;
  alerts::AlertManagerConfig alerts;
  // Snapshots (`[storage] snapshot_threshold_entries`, `snapshot_catchup_entries`,
  // `max_snapshots`, `snapshot_chunk_kb`). A threshold of 0 never snapshots.
  uint64_t snapshot_threshold_entries = 10000;
  uint64_t snapshot_catchup_entries = 5000;
  uint64_t max_snapshots = 3;
  SnapshotTransferConfig snapshot_transfer;
  // Group commit for a driver that executes the WAL batch on the thread that feeds the node
  // (the server): the batch is cut in TakeEffects instead of after every input, so everything
  // handed in since the last TakeEffects goes into one batch and one fdatasync. HasEffects then
  // does not count a batch not cut yet: such a driver calls TakeEffects until it returns empty.
  bool cut_disk_batch_on_take = false;
  absl::Status Validate() const;
};

// A committed entry for the state machine.
struct ApplyItem {
  raft::Entry entry;
  // The local request that proposed this entry, if it is still waiting (its reply is due
  // after the entry is applied).
  std::optional<RequestId> request;
  // If set, this item is not an entry: replace the state machine's state with the snapshot
  // at snapshot->index (received from the leader and kept by OnSnapshotReceived), then report
  // OnApplied(snapshot->index).
  std::optional<raft::SnapshotMeta> snapshot;
};

// A request that finished without a state machine result (errors), with a leader hint.
struct Reply {
  RequestId request = 0;
  absl::Status status;
  raft::NodeId leader = raft::kNone;  // for redirecting/forwarding when this node is not leader
};

struct Effects {
  std::vector<raft::Message> messages;
  std::optional<wal::DiskBatch> disk;  // at most one batch in flight
  std::vector<ApplyItem> apply;
  std::vector<RequestId> reads;        // linearizable reads that may be served now
  std::vector<Reply> replies;          // requests that failed
  absl::Status fatal;                  // the WAL failed: stop this node
  std::vector<alerts::Firing> alerts;  // alerts that fired (deduplicated), in order
  // Snapshot the state machine at its applied index (at least this one, which it has already
  // applied, or is about to in `apply`); report OnSnapshotTaken with the index it covers.
  std::optional<raft::Index> take_snapshot;
  // Delete every kept snapshot whose index is below this one (`max_snapshots` retention).
  std::optional<raft::Index> delete_snapshots_below;
  std::vector<SnapshotRead> snapshot_reads;    // report OnSnapshotRead
  std::vector<SnapshotWrite> snapshot_writes;  // report OnSnapshotWritten
  std::optional<SnapshotFinish> snapshot_finish;  // report OnSnapshotReceived
  bool Empty() const {
    return messages.empty() && !disk && apply.empty() && reads.empty() && replies.empty() &&
           fatal.ok() && alerts.empty() && !take_snapshot && !delete_snapshots_below &&
           snapshot_reads.empty() && snapshot_writes.empty() && !snapshot_finish;
  }
};

// Snapshot counters for metrics.
struct SnapshotStats {
  uint64_t taken = 0;           // local snapshots made durable
  uint64_t installed = 0;       // snapshots received from a leader and installed
  uint64_t sends_started = 0;   // transfers this node started as leader
  uint64_t sends_failed = 0;
};

class Node {
 public:
  // `recovered` comes from wal::Recover; `applied` is the state machine's durable applied index.
  static absl::StatusOr<std::unique_ptr<Node>> Create(const NodeConfig& config,
                                                      const wal::ReplayResult& recovered,
                                                      raft::Index applied);

  // One logical tick (NodeConfig::raft election/heartbeat ticks count these); `now_ms` is the
  // driver's monotonic clock, for the WAL's interval sync.
  void Tick(uint64_t now_ms);
  // A message from a peer. Malformed or misaddressed messages are rejected with an error and
  // change nothing.
  absl::Status Receive(const raft::Message& message);
  void OnDiskDone(uint64_t batch_id, const absl::Status& status);
  // A client command. Its outcome arrives as an ApplyItem naming `request` (success, reply
  // after apply) or as a Reply with an error (not leader, overloaded, leadership changed).
  void Propose(RequestId request, std::string data);
  // A configuration change (raft::Raft::ProposeConfChange, docs/membership.md). Its outcome
  // arrives like a command's: an ApplyItem of a kConfChange entry naming `request` once it is
  // applied (the configuration then is raft().configuration()), or a Reply with an error.
  void ProposeConfChange(RequestId request, const raft::ConfChange& change);
  // A linearizable read (ReadIndex, thesis §6.4): `request` shows up in Effects::reads once the
  // state machine has applied the read point, or in Effects::replies if it failed.
  void Read(RequestId request);
  // The driver stopped waiting for `request` (its deadline passed). The node forgets it: no
  // reply or read will name it, and it no longer counts against max_pending_requests. A
  // proposal's entry may still commit and be applied (without a request). Unknown ids are
  // ignored. Needed because a ReadIndex round lost within one term never reports back.
  void Abandon(RequestId request);
  // The state machine applied every ApplyItem up to `index`.
  void OnApplied(raft::Index index);
  absl::Status TransferLeadership(raft::NodeId target);
  void Campaign();
  // Right after Create: the driver found a partial copy of a leader's snapshot it staged
  // before a restart; a leader sending that snapshot again resumes where the copy stops.
  void ResumeSnapshotReceive(const StagedSnapshot& staged);
  // The operator asks for a snapshot now (amaters-ctl snapshot create), as at the threshold.
  // Returns the index it will cover once durable (raft().snapshot() reaches it): the applied
  // index, or the current snapshot's when nothing was applied since.
  raft::Index SnapshotNow();

  // An event the driver observed itself (e.g. CertificateExpiring), through the same rules
  // and deduplication as the node's own; firings come out in Effects::alerts.
  void Report(const alerts::Event& event);

  // Snapshot completions (see Effects).
  void OnSnapshotTaken(raft::Index index, const absl::Status& status);
  void OnSnapshotRead(const SnapshotRead& read, const absl::StatusOr<SnapshotBytes>& bytes);
  void OnSnapshotWritten(const raft::SnapshotMeta& meta, uint64_t offset, uint64_t length,
                         const absl::Status& status);
  void OnSnapshotReceived(const raft::SnapshotMeta& meta, const absl::Status& status);

  Effects TakeEffects();
  // Whether TakeEffects would return something (drivers loop until it is false).
  bool HasEffects() const { return !effects_.Empty(); }

  const raft::Raft& raft() const { return *raft_; }
  const wal::Writer& wal() const { return *writer_; }
  raft::Index applied() const { return applied_; }
  // This node leads and has applied an entry of its own term (the no-op a new leader commits
  // first), so every entry of earlier terms is applied: when the driver's kv::Lessor may
  // decide lease expiry (Promote), as etcd promotes its lessor.
  bool leads_applied_term() const {
    return raft_->role() == raft::Role::kLeader &&
           raft_->log().TermAt(applied_) == std::optional<raft::Term>(raft_->term());
  }
  size_t pending_requests() const { return proposals_.size() + reads_.size(); }
  const absl::Status& fatal() const { return fatal_; }
  // The failure detector (null until the first Tick) and the alerts fired so far.
  const failover::FailureDetector* detector() const {
    return detector_ ? &*detector_ : nullptr;
  }
  const alerts::AlertManager& alert_manager() const { return alert_manager_; }
  const SnapshotStats& snapshot_stats() const { return snapshot_stats_; }
  // The snapshot being received from the leader, if any: (index, bytes staged so far).
  std::optional<std::pair<raft::Index, uint64_t>> snapshot_receive_progress() const {
    return receiver_.progress();
  }
  // Simulator only: planted Raft bugs (docs/design.md §4.8).
  void set_planted_bugs(const raft::Raft::PlantedBugs& bugs) { raft_->set_planted_bugs(bugs); }

 private:
  Node(const NodeConfig& config, std::unique_ptr<raft::Raft> raft, wal::Writer writer,
       raft::Index applied, alerts::AlertManager alert_manager);

  void RunDetector();  // feeds the detector's events through the alert rules
  absl::Status ReceiveSnapshotMessage(const raft::Message& message);
  void Emit(SnapshotSender::Output out);
  void Emit(SnapshotReceiver::Output out);
  void TickSnapshotSends();
  void MaybeSnapshot();
  void MaybeCompact();
  void TakeMessages(std::vector<raft::Message> messages);
  void AbortProposalsCoveredBy(const raft::SnapshotMeta& snapshot);
  // The failure detector follows the configuration Raft has applied.
  void SyncDetectorConfiguration();
  // Remembers an accepted proposal (or replies with why it was not accepted).
  void Track(RequestId request, const raft::ProposeResult& r);

  void Collect();   // drains Raft's Ready into effects_ and feeds the WAL writer
  void CutDiskBatch();  // the writer's next batch into effects_, if none is in flight
  void Fail(const absl::Status& status);
  void FailStaleRequests();
  void ReleaseReads();
  bool Overloaded(RequestId request);

  const NodeConfig config_;
  std::unique_ptr<raft::Raft> raft_;
  std::unique_ptr<wal::Writer> writer_;
  uint64_t now_ms_ = 0;
  raft::Index applied_ = 0;
  raft::Term last_term_ = 0;
  absl::Status fatal_;
  Effects effects_;
  // Created at the first Tick, when the node first learns the time.
  std::optional<failover::FailureDetector> detector_;
  alerts::AlertManager alert_manager_;

  SnapshotSender sender_;
  SnapshotReceiver receiver_;
  SnapshotStats snapshot_stats_;
  std::optional<raft::Index> snapshot_requested_;  // take_snapshot asked, not yet answered
  raft::Index snapshot_base_ = 0;     // applied entries are counted from here for the threshold
  raft::Index handled_snapshot_ = 0;  // newest durable snapshot compacted for and retained
  std::deque<raft::Index> kept_snapshots_;  // durable snapshots this node knows, oldest first

  struct PendingProposal {
    RequestId request;
    raft::Term term;
  };
  std::map<raft::Index, PendingProposal> proposals_;  // by log index

  struct PendingRead {
    raft::Term term;               // the term the read was requested in
    std::optional<raft::Index> index;  // read point, once Raft confirmed it
  };
  std::map<RequestId, PendingRead> reads_;
};

}  // namespace amaters::node

#endif  // AMATERS_ENGINE_NODE_NODE_H_
