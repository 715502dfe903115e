#include "engine/node/snapshot_transfer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"

namespace amaters::node {

absl::Status SnapshotTransferConfig::Validate() const {
  if (chunk_bytes < 1024 || chunk_bytes > (8u << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot chunk size ", chunk_bytes, " must be in 1 KiB..8 MiB"));
  }
  if (timeout_ms == 0) return absl::InvalidArgumentError("snapshot transfer timeout must be > 0");
  if (resend_ms == 0) return absl::InvalidArgumentError("snapshot chunk resend time must be > 0");
  return absl::OkStatus();
}

// ---- Leader ---------------------------------------------------------------------------------

void SnapshotSender::RequestRead(Transfer& t, Output* out) const {
  t.state = State::kReading;
  out->reads.push_back({t.header.to, t.header.snapshot, t.offset, config_.chunk_bytes});
}

void SnapshotSender::Start(const raft::Message& m, uint64_t now_ms, Output* out) {
  AM_CHECK(m.type == raft::MessageType::kSnapshot && m.snapshot.index > 0, raft::DescribeMessage(m));
  Transfer t;
  t.header = m;
  t.header.chunk = {};
  t.last_progress_ms = now_ms;
  // From offset 0: a follower that already holds a prefix of this snapshot answers with the
  // offset it wants, and the transfer resumes there.
  auto [it, inserted] = transfers_.insert_or_assign(m.to, std::move(t));
  RequestRead(it->second, out);
}

void SnapshotSender::OnRead(raft::NodeId peer, const raft::SnapshotMeta& meta, uint64_t offset,
                            const absl::StatusOr<SnapshotBytes>& bytes, uint64_t now_ms,
                            Output* out) {
  auto it = transfers_.find(peer);
  if (it == transfers_.end()) return;
  Transfer& t = it->second;
  if (t.header.snapshot != meta || t.offset != offset || t.state != State::kReading) return;
  const bool valid = bytes.ok() && bytes->total_bytes > 0 && offset < bytes->total_bytes &&
                     !bytes->data.empty() && bytes->data.size() <= config_.chunk_bytes &&
                     offset + bytes->data.size() <= bytes->total_bytes;
  if (!valid) {
    // The snapshot is gone (retention) or unreadable: Raft retries with its newest one.
    transfers_.erase(it);
    out->failed.push_back(peer);
    return;
  }
  raft::Message m = t.header;
  m.chunk.offset = offset;
  m.chunk.total_bytes = bytes->total_bytes;
  m.chunk.total_crc = bytes->total_crc;
  m.chunk.crc = Crc32c(bytes->data);
  m.chunk.data = bytes->data;
  t.total_bytes = bytes->total_bytes;
  t.state = State::kAwaitingAck;
  t.last_progress_ms = now_ms;
  t.sent_ms = now_ms;
  bytes_sent_ += bytes->data.size();
  out->messages.push_back(std::move(m));
}

void SnapshotSender::OnResponse(const raft::Message& resp, uint64_t now_ms, Output* out) {
  auto it = transfers_.find(resp.from);
  if (it == transfers_.end() || it->second.header.snapshot != resp.snapshot) return;
  Transfer& t = it->second;
  if (resp.reject) {
    // The follower's commit index passed the snapshot; its Raft tells ours where it is.
    t.state = State::kDone;
    return;
  }
  if (t.state != State::kAwaitingAck) return;  // stale or duplicated
  t.last_progress_ms = now_ms;
  if (resp.index >= t.total_bytes) {
    t.state = State::kDone;  // Raft hears from the follower's Raft next
    return;
  }
  t.offset = resp.index;
  RequestRead(t, out);
}

void SnapshotSender::Tick(uint64_t now_ms, const std::function<bool(raft::NodeId)>& wanted,
                          Output* out) {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    const raft::NodeId peer = it->first;
    if (!wanted(peer)) {
      it = transfers_.erase(it);
    } else if (now_ms >= it->second.last_progress_ms + config_.timeout_ms) {
      it = transfers_.erase(it);
      out->failed.push_back(peer);
    } else {
      Transfer& t = it->second;
      if (t.state == State::kAwaitingAck && now_ms >= t.sent_ms + config_.resend_ms) {
        RequestRead(t, out);  // the chunk or its acknowledgment was lost: send it again
      }
      ++it;
    }
  }
}

// ---- Follower -------------------------------------------------------------------------------

void SnapshotReceiver::Reply(const Receive& r, bool reject, Output* out) const {
  raft::Message m;
  m.type = raft::MessageType::kSnapshotResp;
  m.from = self_;
  m.to = r.leader;
  m.term = r.term;
  m.snapshot = r.meta;
  m.index = r.next;
  m.reject = reject;
  out->messages.push_back(std::move(m));
}

void SnapshotReceiver::OnChunk(const raft::Message& m, bool would_install, Output* out) {
  AM_CHECK(m.type == raft::MessageType::kSnapshot && m.to == self_, raft::DescribeMessage(m));
  Receive incoming{m.snapshot, m.from, m.term, 0, m.chunk.total_bytes, m.chunk.total_crc, false};
  if (!would_install) {
    // Raft answers with its commit index, so a leader whose acknowledgment got lost moves on.
    Reply(incoming, /*reject=*/true, out);
    raft::Message step = m;
    step.chunk = {};
    out->step = std::move(step);
    return;
  }
  if (completed_ && completed_->meta == m.snapshot &&
      completed_->total_bytes == incoming.total_bytes &&
      completed_->total_crc == incoming.total_crc) {
    // A late duplicate, or a resend whose acknowledgment was lost, of the snapshot Raft is
    // installing now: every byte is here already.
    incoming.next = incoming.total_bytes;
    Reply(incoming, /*reject=*/false, out);
    return;
  }
  const bool same = receive_ && receive_->meta == m.snapshot &&
                    receive_->total_bytes == m.chunk.total_bytes &&
                    receive_->total_crc == m.chunk.total_crc;
  if (same && receive_->busy) return;  // a duplicate while the driver works: the leader waits
  if (!same) {
    if (receive_ && receive_->busy) return;  // finish the driver's work first
    receive_ = incoming;
  }
  Receive& r = *receive_;
  r.leader = m.from;
  r.term = m.term;
  const raft::SnapshotChunk& c = m.chunk;
  const bool fits = c.offset == r.next && !c.data.empty() && c.data.size() <= max_chunk_bytes_ &&
                    c.offset + c.data.size() <= r.total_bytes;
  const bool planted = install_unverified_chunk_ && fits &&
                       c.offset + c.data.size() == r.total_bytes;
  if (!fits || (!planted && Crc32c(c.data) != c.crc)) {
    Reply(r, /*reject=*/false, out);  // resend from where we are
    return;
  }
  r.busy = true;
  out->writes.push_back({r.meta, c.offset, c.data, r.total_bytes, r.total_crc});
  if (planted) out->step = StepFor(r);
}

void SnapshotReceiver::Resume(const StagedSnapshot& staged) {
  AM_CHECK(!receive_ && !completed_, "Resume after chunks arrived");
  if (staged.meta.index == 0 || staged.total_bytes == 0) return;
  // Every staged byte is kept but the last: the leader resends it, so the copy is finished
  // (and checked whole) by the usual path even when the crash came after the last write.
  const uint64_t next = std::min(staged.bytes, staged.total_bytes - 1);
  receive_ = Receive{staged.meta, raft::kNone, 0, next, staged.total_bytes, staged.total_crc,
                     false};
  AM_CHECK_LT(receive_->next, receive_->total_bytes);
}

raft::Message SnapshotReceiver::StepFor(const Receive& r) const {
  raft::Message step;
  step.type = raft::MessageType::kSnapshot;
  step.from = r.leader;
  step.to = self_;
  step.term = r.term;
  step.snapshot = r.meta;
  return step;
}

void SnapshotReceiver::OnWritten(const raft::SnapshotMeta& meta, uint64_t offset,
                                 uint64_t length, const absl::Status& status, Output* out) {
  if (!receive_ || receive_->meta != meta || !receive_->busy || receive_->next != offset) return;
  Receive& r = *receive_;
  r.busy = false;
  if (!status.ok()) {
    r.next = 0;  // start over
    Reply(r, false, out);
    return;
  }
  r.next = offset + length;
  AM_CHECK_LE(r.next, r.total_bytes);
  if (r.next < r.total_bytes) {
    Reply(r, false, out);
    return;
  }
  r.busy = true;
  out->finish = SnapshotFinish{r.meta, r.total_bytes, r.total_crc};
}

void SnapshotReceiver::OnFinished(const raft::SnapshotMeta& meta, const absl::Status& status,
                                  Output* out) {
  if (!receive_ || receive_->meta != meta || !receive_->busy) return;
  Receive r = *receive_;
  if (!status.ok()) {
    // The whole copy failed its checksum (or could not be kept): receive it again.
    receive_->busy = false;
    receive_->next = 0;
    Reply(*receive_, false, out);
    return;
  }
  receive_.reset();
  completed_ = r;
  Reply(r, false, out);  // next = total: every byte is here
  out->step = StepFor(r);
}

std::optional<std::pair<raft::Index, uint64_t>> SnapshotReceiver::progress() const {
  if (!receive_) return std::nullopt;
  return std::make_pair(receive_->meta.index, receive_->next);
}

}  // namespace amaters::node
