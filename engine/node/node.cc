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

}  // namespace

absl::Status NodeConfig::Validate() const {
  if (absl::Status s = raft.Validate(); !s.ok()) return s;
  if (absl::Status s = wal.Validate(); !s.ok()) return s;
  if (absl::Status s = failover.Validate(); !s.ok()) return s;
  if (absl::Status s = alerts.Validate(); !s.ok()) return s;
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
  restored.entries = recovered.entries;
  restored.applied = applied;
  if (!recovered.entries.empty() && recovered.entries.front().index != 1) {
    // Raft snapshots (and so a compacted log) are not supported yet: Recover must be called
    // with snapshot_index 0.
    return absl::FailedPreconditionError(absl::StrCat(
        "the WAL starts at index ", recovered.entries.front().index,
        " (compacted), but restoring from a snapshot is not supported yet"));
  }
  const raft::Index last = recovered.entries.empty() ? 0 : recovered.entries.back().index;
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
      alert_manager_(std::move(alert_manager)) {}

void Node::Fail(const absl::Status& status) {
  if (fatal_.ok()) fatal_ = status;
  effects_.fatal = fatal_;
}

void Node::Tick(uint64_t now_ms) {
  if (!fatal_.ok()) return;
  now_ms_ = std::max(now_ms_, now_ms);
  raft_->Tick();
  Collect();
  if (!detector_) {
    absl::StatusOr<failover::FailureDetector> d = failover::FailureDetector::Create(
        config_.failover, raft_->id(), raft_->voters(), now_ms_);
    AM_CHECK(d.ok(), "failure detector: ", d.status().ToString());  // config validated
    detector_.emplace(*std::move(d));
  }
  detector_->Tick(now_ms_, failover::ViewOf(*raft_));
  RunDetector();
}

absl::Status Node::Receive(const raft::Message& message) {
  if (!fatal_.ok()) return fatal_;
  absl::Status s = raft_->Step(message);
  Collect();
  if (s.ok() && detector_) {
    // Step accepted it, so `from` is a voter other than us: OnHeardFrom cannot refuse it.
    absl::Status heard = detector_->OnHeardFrom(message.from, now_ms_);
    AM_CHECK(heard.ok(), heard.ToString());
    RunDetector();
  }
  return s;
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
  raft::ProposeResult r = raft_->Propose(std::move(data));
  if (!r.status.ok()) {
    effects_.replies.push_back({request, r.status, r.leader});
    return;
  }
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
    if (effects_.messages.empty()) {
      effects_.messages = std::move(rd.messages);
    } else {
      effects_.messages.insert(effects_.messages.end(), std::make_move_iterator(rd.messages.begin()),
                               std::make_move_iterator(rd.messages.end()));
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
      if (it != reads_.end() && !it->second.index) it->second.index = rs.index;
    }
  }
  if (raft_->term() != last_term_) {
    last_term_ = raft_->term();
    FailStaleRequests();
  }
  ReleaseReads();
  if (!writer_->batch_in_flight()) {
    if (std::optional<wal::DiskBatch> b = writer_->NextBatch(now_ms_)) {
      AM_CHECK(!effects_.disk.has_value());
      effects_.disk = std::move(*b);
    }
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
  Effects out = std::move(effects_);
  effects_ = Effects();
  return out;
}

}  // namespace amaters::node
