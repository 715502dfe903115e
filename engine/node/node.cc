#include "engine/node/node.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/wal/format.h"

namespace amaters::node {
namespace {

// A read's context in Raft is the request id, 8 bytes little-endian.
std::string ReadContext(RequestId id) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>(id >> (8 * i));
  return s;
}

std::optional<RequestId> ParseReadContext(const std::string& s) {
  if (s.size() != 8) return std::nullopt;
  RequestId id = 0;
  for (int i = 0; i < 8; ++i) {
    id |= static_cast<RequestId>(static_cast<uint8_t>(s[static_cast<size_t>(i)])) << (8 * i);
  }
  return id;
}

// Larger chunks than any configuration allows are refused (snapshot_transfer.cc).
constexpr uint64_t kMaxSnapshotChunkBytes = 8u << 20;

}  // namespace

absl::Status NodeConfig::Validate() const {
  if (absl::Status s = raft.Validate(); !s.ok()) return s;
  if (absl::Status s = wal.Validate(); !s.ok()) return s;
  if (absl::Status s = failover.Validate(); !s.ok()) return s;
  if (absl::Status s = alerts.Validate(); !s.ok()) return s;
  if (absl::Status s = snapshot_transfer.Validate(); !s.ok()) return s;
  if (max_snapshots == 0) return absl::InvalidArgumentError("max_snapshots must be >= 1");
  if (max_pending_requests == 0) {
    return absl::InvalidArgumentError("max_pending_requests must be > 0");
  }
  if (max_entry_bytes == 0 ||
      max_entry_bytes + wal::kEntryPayloadOverheadBytes > wal::kMaxRecordPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_entry_bytes must be in 1..", wal::kMaxRecordPayloadBytes - wal::kEntryPayloadOverheadBytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Node>> Node::Create(const NodeConfig& config,
                                                   const wal::ReplayResult& recovered,
                                                   raft::Index applied) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  absl::StatusOr<wal::Writer> writer = wal::Writer::Open(config.wal, recovered);
  if (!writer.ok()) return writer.status();
  raft::RestoredState restored;
  restored.hard_state = recovered.hard_state;
  restored.snapshot = recovered.snapshot;
  restored.entries = recovered.entries;
  restored.applied = applied;
  const raft::Index last = recovered.snapshot.index + recovered.entries.size();
  if (applied > last) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the state machine has applied up to index ", applied, " but the WAL ends at ", last,
        ": the WAL lost entries the state machine already applied (was sync_mode \"none\" or "
        "\"interval\" in use when the machine lost power?). Restore this replica from a peer"));
  }
  // (With sync_mode "none"/"interval" a power loss can also lose an overwrite, leaving an older
  // entry at an index the state machine applied; this check cannot see that — documented in
  // docs/wal-format.md as a risk of those modes.)
  // Entries are applied only once committed, and the node applies them as soon as they are
  // durable locally — without waiting for the commit index to be made durable too (that would
  // add an fsync to every commit). So after a crash the state machine may be ahead of the WAL's
  // commit record; the applied entries were committed, so raising the commit index is safe.
  restored.hard_state.commit = std::max(restored.hard_state.commit, applied);
  absl::StatusOr<std::unique_ptr<raft::Raft>> r = raft::Raft::Create(config.raft, std::move(restored));
  if (!r.ok()) return r.status();
  absl::StatusOr<alerts::AlertManager> am = alerts::AlertManager::Create(
      config.alerts, alerts::default_rules(config.failover.slow_replication_threshold_entries));
  if (!am.ok()) return am.status();
  return std::unique_ptr<Node>(
      new Node(config, *std::move(r), *std::move(writer), applied, *std::move(am)));
}

Node::Node(const NodeConfig& config, std::unique_ptr<raft::Raft> raft, wal::Writer writer,
           raft::Index applied, alerts::AlertManager alert_manager)
    : config_(config),
      raft_(std::move(raft)),
      writer_(std::make_unique<wal::Writer>(std::move(writer))),
      applied_(applied),
      last_term_(raft_->term()),
      alert_manager_(std::move(alert_manager)),
      sender_(config.snapshot_transfer),
      receiver_(raft_->id(), kMaxSnapshotChunkBytes),
      snapshot_base_(std::max(applied, raft_->snapshot().index)),
      handled_snapshot_(raft_->snapshot().index) {
  if (handled_snapshot_ > 0) kept_snapshots_.push_back(handled_snapshot_);
}

void Node::Fail(const absl::Status& status) {
  if (fatal_.ok()) fatal_ = status;
  effects_.fatal = fatal_;
}

void Node::Tick(uint64_t now_ms) {
  if (!fatal_.ok()) return;
  now_ms_ = std::max(now_ms_, now_ms);
  raft_->Tick();
  TickSnapshotSends();
  Collect();
  if (!detector_) {
    absl::StatusOr<failover::FailureDetector> d = failover::FailureDetector::Create(
        config_.failover, raft_->id(), raft_->configuration(), now_ms_);
    AM_CHECK(d.ok(), "failure detector: ", d.status().ToString());  // config validated
    detector_.emplace(*std::move(d));
  }
  SyncDetectorConfiguration();
  detector_->Tick(now_ms_, failover::ViewOf(*raft_));
  RunDetector();
}

void Node::SyncDetectorConfiguration() {
  if (detector_ && detector_->configuration() != raft_->configuration()) {
    detector_->SetConfiguration(raft_->configuration(), now_ms_);
  }
}

absl::Status Node::Receive(const raft::Message& message) {
  if (!fatal_.ok()) return fatal_;
  // Snapshots travel as chunks between nodes; a snapshot without data is this node's own
  // Raft talking to itself (SnapshotReceiver) and never comes from a peer.
  absl::Status s = message.type == raft::MessageType::kSnapshot ||
                           message.type == raft::MessageType::kSnapshotResp
                       ? ReceiveSnapshotMessage(message)
                       : raft_->Step(message);
  Collect();
  SyncDetectorConfiguration();
  if (s.ok() && detector_ && detector_->configuration().IsMember(message.from)) {
    // Step accepted it from a member other than us: OnHeardFrom cannot refuse it. (A node
    // not yet in its own configuration hears from leaders it does not know as members.)
    absl::Status heard = detector_->OnHeardFrom(message.from, now_ms_);
    AM_CHECK(heard.ok(), heard.ToString());
    RunDetector();
  }
  return s;
}

// ---- Snapshots ------------------------------------------------------------------------------

absl::Status Node::ReceiveSnapshotMessage(const raft::Message& m) {
  if (absl::Status s = raft_->CheckAddressed(m); !s.ok()) return s;
  if (m.snapshot.index == 0 || m.snapshot.term == 0 || m.snapshot.term > m.term) {
    return absl::InvalidArgumentError(absl::StrCat("malformed snapshot message: ",
                                                   raft::DescribeMessage(m)));
  }
  if (m.type == raft::MessageType::kSnapshot && m.chunk == raft::SnapshotChunk{}) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot message without data: ", raft::DescribeMessage(m)));
  }
  if (m.type == raft::MessageType::kSnapshotResp) {
    SnapshotSender::Output out;
    sender_.OnResponse(m, now_ms_, &out);
    Emit(std::move(out));
    return absl::OkStatus();
  }
  if (m.term < raft_->term()) return absl::OkStatus();  // a deposed leader's: ignored
  SnapshotReceiver::Output out;
  receiver_.set_install_unverified_chunk(raft_->planted_bugs().install_unverified_chunk);
  receiver_.OnChunk(m, raft_->WouldInstall(m.snapshot), &out);
  Emit(std::move(out));
  return absl::OkStatus();
}

void Node::Emit(SnapshotSender::Output out) {
  for (SnapshotRead& r : out.reads) effects_.snapshot_reads.push_back(std::move(r));
  for (raft::Message& m : out.messages) effects_.messages.push_back(std::move(m));
  for (raft::NodeId peer : out.failed) {
    ++snapshot_stats_.sends_failed;
    raft_->ReportSnapshotFailed(peer);
  }
  Collect();
}

void Node::Emit(SnapshotReceiver::Output out) {
  for (SnapshotWrite& w : out.writes) effects_.snapshot_writes.push_back(std::move(w));
  if (out.finish) {
    AM_CHECK(!effects_.snapshot_finish, "two snapshot finishes in one round");
    effects_.snapshot_finish = std::move(out.finish);
  }
  for (raft::Message& m : out.messages) effects_.messages.push_back(std::move(m));
  if (out.step) (void)raft_->Step(*out.step);  // Step re-checks what it needs
  Collect();
}

void Node::TickSnapshotSends() {
  SnapshotSender::Output out;
  sender_.Tick(now_ms_, [this](raft::NodeId peer) {
    const raft::Progress* pr = raft_->progress(peer);
    return pr != nullptr && pr->state == raft::ProgressState::kSnapshot;
  }, &out);
  Emit(std::move(out));
}

void Node::OnSnapshotTaken(raft::Index index, const absl::Status& status) {
  if (!fatal_.ok()) return;
  AM_CHECK(snapshot_requested_.has_value(), "a snapshot the node did not ask for");
  AM_CHECK(!status.ok() || index >= *snapshot_requested_, "snapshot at ", index,
           " below the requested ", *snapshot_requested_);
  snapshot_requested_.reset();
  // A failed snapshot is tried again after another threshold of entries, not at once.
  snapshot_base_ = std::max(snapshot_base_, status.ok() ? index : applied_);
  // An index Raft already covers (an install overtook it) is ignored.
  if (status.ok() && raft_->SnapshotTaken(index).ok()) ++snapshot_stats_.taken;
  Collect();
}

void Node::OnSnapshotRead(const SnapshotRead& read,
                          const absl::StatusOr<SnapshotBytes>& bytes) {
  if (!fatal_.ok()) return;
  SnapshotSender::Output out;
  sender_.OnRead(read.peer, read.meta, read.offset, bytes, now_ms_, &out);
  Emit(std::move(out));
}

void Node::OnSnapshotWritten(const raft::SnapshotMeta& meta, uint64_t offset, uint64_t length,
                             const absl::Status& status) {
  if (!fatal_.ok()) return;
  SnapshotReceiver::Output out;
  receiver_.OnWritten(meta, offset, length, status, &out);
  Emit(std::move(out));
}

void Node::OnSnapshotReceived(const raft::SnapshotMeta& meta, const absl::Status& status) {
  if (!fatal_.ok()) return;
  SnapshotReceiver::Output out;
  receiver_.OnFinished(meta, status, &out);
  Emit(std::move(out));
}

void Node::ResumeSnapshotReceive(const StagedSnapshot& staged) {
  AM_CHECK(fatal_.ok() && now_ms_ == 0, "ResumeSnapshotReceive after the node ran");
  // A copy at or below what this node holds is no longer wanted: the first chunk of a newer
  // snapshot replaces it, and retention deletes it.
  if (staged.meta.index <= raft_->commit()) return;
  receiver_.Resume(staged);
}

raft::Index Node::SnapshotNow() {
  if (!fatal_.ok() || applied_ <= raft_->snapshot().index) return raft_->snapshot().index;
  if (!snapshot_requested_) {
    snapshot_requested_ = applied_;
    effects_.take_snapshot = applied_;
  }
  return applied_;
}

void Node::MaybeSnapshot() {
  if (config_.snapshot_threshold_entries == 0 || snapshot_requested_) return;
  if (applied_ < snapshot_base_ + config_.snapshot_threshold_entries) return;
  snapshot_requested_ = applied_;
  effects_.take_snapshot = applied_;
}

void Node::MaybeCompact() {
  const raft::SnapshotMeta& snap = raft_->snapshot();
  if (raft_->planted_bugs().compact_past_snapshot && snap.index > 0) writer_->Compact(applied_);
  if (snap.index <= handled_snapshot_) return;
  handled_snapshot_ = snap.index;
  snapshot_base_ = std::max(snapshot_base_, snap.index);
  kept_snapshots_.push_back(snap.index);
  while (kept_snapshots_.size() > config_.max_snapshots) kept_snapshots_.pop_front();
  if (kept_snapshots_.front() > 1) effects_.delete_snapshots_below = kept_snapshots_.front();
  // Keep a margin of entries below the snapshot, so that a briefly slow follower catches up
  // from the log rather than by a snapshot (etcd's SnapshotCatchUpEntries).
  if (snap.index <= config_.snapshot_catchup_entries) return;
  const raft::Index to = std::min({snap.index - config_.snapshot_catchup_entries,
                                   raft_->applied(), raft_->persisted_index()});
  AM_CHECK_LE(to, snap.index, "compaction past the durable snapshot");
  if (raft_->CompactLog(to).ok()) writer_->Compact(to);
}

void Node::AbortProposalsCoveredBy(const raft::SnapshotMeta& snapshot) {
  // Entries up to the snapshot are never handed out here: whether this node's proposals among
  // them committed is unknown.
  while (!proposals_.empty() && proposals_.begin()->first <= snapshot.index) {
    effects_.replies.push_back(
        {proposals_.begin()->second.request,
         absl::AbortedError("a snapshot from the leader replaced this node's log; the request "
                            "may or may not have committed"),
         raft_->leader()});
    proposals_.erase(proposals_.begin());
  }
}

void Node::TakeMessages(std::vector<raft::Message> messages) {
  for (raft::Message& m : messages) {
    if (m.type == raft::MessageType::kSnapshot) {
      // Raft wants the follower to get the snapshot: stream it.
      ++snapshot_stats_.sends_started;
      SnapshotSender::Output out;
      sender_.Start(m, now_ms_, &out);
      for (SnapshotRead& r : out.reads) effects_.snapshot_reads.push_back(std::move(r));
      continue;
    }
    effects_.messages.push_back(std::move(m));
  }
}

void Node::RunDetector() {
  if (!detector_->HasEvents()) return;
  for (alerts::TimedEvent& e : detector_->TakeEvents()) {
    for (alerts::Firing& f : alert_manager_.Process(e.event, e.at_ms)) {
      effects_.alerts.push_back(std::move(f));
    }
  }
}

void Node::Report(const alerts::Event& event) {
  for (alerts::Firing& f : alert_manager_.Process(event, now_ms_)) {
    effects_.alerts.push_back(std::move(f));
  }
}

void Node::OnDiskDone(uint64_t batch_id, const absl::Status& status) {
  if (!fatal_.ok()) return;
  absl::StatusOr<std::vector<uint64_t>> acked = writer_->OnBatchDone(batch_id, status);
  if (!acked.ok()) {
    Fail(acked.status());
    return;
  }
  for (uint64_t seq : *acked) raft_->OnPersisted(seq);
  Collect();
}

bool Node::Overloaded(RequestId request) {
  if (pending_requests() < config_.max_pending_requests) return false;
  effects_.replies.push_back(
      {request,
       absl::ResourceExhaustedError(absl::StrCat("too many pending requests on this node (",
                                                 config_.max_pending_requests, "); retry later")),
       raft_->leader()});
  return true;
}

void Node::Propose(RequestId request, std::string data) {
  if (!fatal_.ok()) {
    effects_.replies.push_back({request, absl::UnavailableError("node stopped"), raft::kNone});
    return;
  }
  if (Overloaded(request)) return;
  if (data.size() > config_.max_entry_bytes) {
    effects_.replies.push_back(
        {request,
         absl::InvalidArgumentError(absl::StrCat("command of ", data.size(),
                                                 " bytes exceeds max_entry_bytes (",
                                                 config_.max_entry_bytes, ")")),
         raft_->leader()});
    return;
  }
  Track(request, raft_->Propose(std::move(data)));
}

void Node::ProposeConfChange(RequestId request, const raft::ConfChange& change) {
  if (!fatal_.ok()) {
    effects_.replies.push_back({request, absl::UnavailableError("node stopped"), raft::kNone});
    return;
  }
  if (Overloaded(request)) return;
  const size_t bytes = raft::EncodeConfChange(change).size();
  if (bytes > config_.max_entry_bytes) {
    effects_.replies.push_back(
        {request,
         absl::InvalidArgumentError(absl::StrCat("configuration change of ", bytes,
                                                 " bytes exceeds max_entry_bytes (",
                                                 config_.max_entry_bytes, ")")),
         raft_->leader()});
    return;
  }
  Track(request, raft_->ProposeConfChange(change));
}

void Node::Track(RequestId request, const raft::ProposeResult& r) {
  if (!r.status.ok()) {
    effects_.replies.push_back({request, r.status, r.leader});
    return;
  }
  AM_CHECK_LT(raft_->commit(), r.index, "a new proposal is already committed");
  // An older proposal at this index, from an earlier term of this node's leadership, is gone
  // from this node's log. It did not commit (this leader would hold it), but it may still: a
  // replica that kept it can win a later election and commit it (found in review; see
  // node.h). So its outcome is unknown: kAborted, which a driver must not retry blindly.
  if (auto old = proposals_.find(r.index); old != proposals_.end()) {
    AM_CHECK_LT(old->second.term, r.term);
    effects_.replies.push_back(
        {old->second.request,
         absl::AbortedError("leadership changed before the request committed; it may still "
                            "commit elsewhere"),
         raft_->leader()});
    proposals_.erase(old);
  }
  proposals_[r.index] = {request, r.term};
  Collect();
}

void Node::Read(RequestId request) {
  if (!fatal_.ok()) {
    effects_.replies.push_back({request, absl::UnavailableError("node stopped"), raft::kNone});
    return;
  }
  if (Overloaded(request)) return;
  AM_CHECK(reads_.find(request) == reads_.end());
  if (absl::Status s = raft_->ReadIndex(ReadContext(request)); !s.ok()) {
    effects_.replies.push_back({request, s, raft_->leader()});
    return;
  }
  reads_[request] = {raft_->term(), std::nullopt};
  Collect();
}

void Node::Abandon(RequestId request) {
  if (reads_.erase(request) > 0) return;
  for (auto it = proposals_.begin(); it != proposals_.end(); ++it) {
    if (it->second.request == request) {
      proposals_.erase(it);
      return;
    }
  }
}

void Node::OnApplied(raft::Index index) {
  if (!fatal_.ok()) return;
  AM_CHECK_GE(index, applied_);
  applied_ = index;
  raft_->OnApplied(index);
  Collect();
}

absl::Status Node::TransferLeadership(raft::NodeId target) {
  if (!fatal_.ok()) return fatal_;
  absl::Status s = raft_->TransferLeadership(target);
  Collect();
  return s;
}

void Node::Campaign() {
  if (!fatal_.ok()) return;
  raft_->Campaign();
  Collect();
}

void Node::Collect() {
  while (raft_->HasReady()) {
    raft::Ready rd = raft_->TakeReady();
    if (rd.persist) {
      if (absl::Status s = writer_->Append(*std::move(rd.persist)); !s.ok()) {
        Fail(s);
        return;
      }
    }
    TakeMessages(std::move(rd.messages));
    if (rd.snapshot) {
      AbortProposalsCoveredBy(*rd.snapshot);
      ++snapshot_stats_.installed;
      ApplyItem item;
      item.snapshot = *rd.snapshot;
      effects_.apply.push_back(std::move(item));
    }
    for (raft::Entry& e : rd.committed_entries) {
      ApplyItem item;
      auto it = proposals_.find(e.index);
      if (it != proposals_.end()) {
        if (it->second.term == e.term) {
          item.request = it->second.request;
        } else {
          // Another leader's entry took this index: the proposal was lost (thesis §6.3).
          effects_.replies.push_back(
              {it->second.request,
               absl::UnavailableError("leadership changed before the request committed; retry"),
               raft_->leader()});
        }
        proposals_.erase(it);
      }
      item.entry = std::move(e);
      effects_.apply.push_back(std::move(item));
    }
    for (const raft::ReadState& rs : rd.read_states) {
      std::optional<RequestId> id = ParseReadContext(rs.context);
      if (!id) continue;
      auto it = reads_.find(*id);
      if (it == reads_.end() || it->second.index) continue;
      if (!rs.refused.ok()) {
        // The leader said no (its read queue is full, or it is not the leader): the client
        // hears why now instead of at its deadline.
        effects_.replies.push_back({*id, rs.refused, raft_->leader()});
        reads_.erase(it);
        continue;
      }
      it->second.index = rs.index;
    }
  }
  if (raft_->term() != last_term_) {
    last_term_ = raft_->term();
    FailStaleRequests();
  }
  ReleaseReads();
  MaybeCompact();
  MaybeSnapshot();
  if (!config_.cut_disk_batch_on_take) CutDiskBatch();
}

void Node::CutDiskBatch() {
  if (writer_->batch_in_flight()) return;
  if (std::optional<wal::DiskBatch> b = writer_->NextBatch(now_ms_)) {
    AM_CHECK(!effects_.disk.has_value());
    effects_.disk = std::move(*b);
  }
}

// A read whose read point was not confirmed before the term changed may never be answered
// (the old leader dropped it): fail it so the client retries. Confirmed reads stay valid.
void Node::FailStaleRequests() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (!it->second.index && it->second.term < raft_->term()) {
      effects_.replies.push_back(
          {it->first, absl::UnavailableError("leadership changed before the read was confirmed; retry"),
           raft_->leader()});
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void Node::ReleaseReads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied_) {
      effects_.reads.push_back(it->first);
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

Effects Node::TakeEffects() {
  if (config_.cut_disk_batch_on_take && fatal_.ok()) CutDiskBatch();
  Effects out = std::move(effects_);
  effects_ = Effects();
  return out;
}

}  // namespace amaters::node
