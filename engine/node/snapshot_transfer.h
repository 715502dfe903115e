// Streaming a snapshot's state from the leader to a follower in bounded chunks (pure).
//
// Raft decides *that* a follower needs the leader's snapshot (raft::MessageType::kSnapshot,
// metadata only); these two state machines move the bytes, and node::Node wires them to Raft and
// to the driver, which reads and writes the snapshot files.
//
// Protocol (docs/snapshots.md), stop-and-wait, one transfer per follower:
//   leader   kSnapshot{snapshot, chunk{offset, data, crc, total_bytes, total_crc}}
//   follower kSnapshotResp{snapshot, index = the offset it wants next}  (reject: it will not
//            take this snapshot: its commit index is at or past it)
// The follower takes a chunk only at the offset it expects and only if the chunk's CRC-32C
// matches: a corrupt, duplicated or reordered chunk is refused and the leader resends from the
// offset the follower names; a chunk whose acknowledgment does not come within resend_ms is sent
// again (lost messages cost a resend, not the transfer). Chunks are written to the driver's
// staging area; after the last one
// the driver verifies the whole snapshot's CRC-32C and keeps it (SnapshotReceiver::OnFinished).
// Only then does Raft see the snapshot (it installs it atomically). A leader that restarts a
// transfer of the same snapshot resumes where the follower stopped: the follower answers its
// first chunk with the offset it expects. A transfer that makes no progress for timeout_ms
// fails; Raft then retries (raft::Raft::ReportSnapshotFailed).
#ifndef AMATERS_ENGINE_NODE_SNAPSHOT_TRANSFER_H_
#define AMATERS_ENGINE_NODE_SNAPSHOT_TRANSFER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/raft/types.h"

namespace amaters::node {

struct SnapshotTransferConfig {
  uint64_t chunk_bytes = 1 << 20;  // `[storage] snapshot_chunk_kb` * 1024
  uint64_t timeout_ms = 10000;     // no progress for this long: the transfer fails
  uint64_t resend_ms = 500;        // a chunk unacknowledged this long is sent again
  absl::Status Validate() const;
};

// The driver reads `max_bytes` bytes at `offset` of the snapshot `meta` for `peer`
// (node::Node::OnSnapshotRead answers).
struct SnapshotRead {
  raft::NodeId peer = raft::kNone;
  raft::SnapshotMeta meta;
  uint64_t offset = 0;
  uint64_t max_bytes = 0;
};

// What the driver read: bytes at the requested offset and the whole snapshot's size and CRC-32C.
struct SnapshotBytes {
  std::string data;
  uint64_t total_bytes = 0;
  uint32_t total_crc = 0;
};

// The driver writes `data` at `offset` of the staged copy of `meta` (offset 0 starts it anew;
// the driver then also records meta, total_bytes and total_crc with the copy, so that after a
// restart it can hand them back with SnapshotReceiver::Resume).
struct SnapshotWrite {
  raft::SnapshotMeta meta;
  uint64_t offset = 0;
  std::string data;
  uint64_t total_bytes = 0;
  uint32_t total_crc = 0;
};

// A copy the driver staged before a restart: the first `bytes` bytes of the snapshot `meta`
// whose whole size and CRC-32C are total_bytes and total_crc.
struct StagedSnapshot {
  raft::SnapshotMeta meta;
  uint64_t total_bytes = 0;
  uint32_t total_crc = 0;
  uint64_t bytes = 0;
};

// Every byte of `meta` is staged: the driver checks the whole copy against total_crc, makes it
// durable and keeps it as the snapshot at meta.index (node::Node::OnSnapshotReceived answers).
struct SnapshotFinish {
  raft::SnapshotMeta meta;
  uint64_t total_bytes = 0;
  uint32_t total_crc = 0;
};

class SnapshotSender {
 public:
  struct Output {
    std::vector<SnapshotRead> reads;
    std::vector<raft::Message> messages;
    std::vector<raft::NodeId> failed;  // transfers that failed: report to Raft
  };
  explicit SnapshotSender(const SnapshotTransferConfig& config) : config_(config) {}

  // Raft asks to send `m` (kSnapshot, metadata only): (re)start the transfer to m.to.
  void Start(const raft::Message& m, uint64_t now_ms, Output* out);
  void OnRead(raft::NodeId peer, const raft::SnapshotMeta& meta, uint64_t offset,
              const absl::StatusOr<SnapshotBytes>& bytes, uint64_t now_ms, Output* out);
  void OnResponse(const raft::Message& resp, uint64_t now_ms, Output* out);
  // Drops transfers Raft no longer wants (`wanted(peer)` false) and fails stalled ones.
  void Tick(uint64_t now_ms, const std::function<bool(raft::NodeId)>& wanted, Output* out);

  size_t active() const { return transfers_.size(); }
  uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  enum class State : uint8_t { kReading, kAwaitingAck, kDone };
  struct Transfer {
    raft::Message header;  // from, to, term, snapshot
    State state = State::kReading;
    uint64_t offset = 0;  // of the chunk being read or awaiting acknowledgment
    uint64_t total_bytes = 0;
    uint64_t last_progress_ms = 0;
    uint64_t sent_ms = 0;  // when the chunk awaiting acknowledgment was sent
  };
  void RequestRead(Transfer& t, Output* out) const;

  SnapshotTransferConfig config_;
  std::map<raft::NodeId, Transfer> transfers_;
  uint64_t bytes_sent_ = 0;
};

class SnapshotReceiver {
 public:
  struct Output {
    std::vector<SnapshotWrite> writes;
    std::optional<SnapshotFinish> finish;
    std::vector<raft::Message> messages;  // to the leader
    // For this node's Raft: the snapshot (metadata only) from the leader, once every byte of
    // it is durable here, or at once when it will not be installed (Raft then answers with
    // its commit index).
    std::optional<raft::Message> step;
  };
  SnapshotReceiver(raft::NodeId self, uint64_t max_chunk_bytes)
      : self_(self), max_chunk_bytes_(max_chunk_bytes) {}

  // After a restart, before any chunk: continue the copy the driver staged. A leader sending
  // the same snapshot resumes at `staged.bytes` (the first chunk is answered with it); a
  // staged tail the crash damaged fails the whole-copy check and is received again.
  void Resume(const StagedSnapshot& staged);
  // A chunk from the leader. `would_install`: Raft would take this snapshot now.
  void OnChunk(const raft::Message& m, bool would_install, Output* out);
  void OnWritten(const raft::SnapshotMeta& meta, uint64_t offset, uint64_t length,
                 const absl::Status& status, Output* out);
  void OnFinished(const raft::SnapshotMeta& meta, const absl::Status& status, Output* out);

  // The staged copy in progress, if any: (snapshot index, bytes received).
  std::optional<std::pair<raft::Index, uint64_t>> progress() const;

  // The simulator's planted bug install_unverified_chunk (docs/simulation.md): the last chunk
  // is taken without its CRC-32C and Raft gets the snapshot at once, before the driver checked
  // and kept the whole copy.
  void set_install_unverified_chunk(bool on) { install_unverified_chunk_ = on; }

 private:
  struct Receive {
    raft::SnapshotMeta meta;
    raft::NodeId leader = raft::kNone;
    raft::Term term = 0;
    uint64_t next = 0;  // every byte before it is staged
    uint64_t total_bytes = 0;
    uint32_t total_crc = 0;
    bool busy = false;  // a write or the finish is with the driver
  };
  void Reply(const Receive& r, bool reject, Output* out) const;
  raft::Message StepFor(const Receive& r) const;  // Raft's kSnapshot (metadata only)

  const raft::NodeId self_;
  const uint64_t max_chunk_bytes_;
  std::optional<Receive> receive_;
  // The last snapshot received whole: late duplicates of its chunks are answered "complete".
  std::optional<Receive> completed_;
  bool install_unverified_chunk_ = false;
};

}  // namespace amaters::node

#endif  // AMATERS_ENGINE_NODE_SNAPSHOT_TRANSFER_H_
