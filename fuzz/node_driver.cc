#include "fuzz/node_driver.h"

#include <memory>
#include <utility>
#include <vector>

#include "engine/base/check.h"
#include "engine/kv/command.h"
#include "engine/wal/disk.h"
#include "engine/wal/replay.h"

namespace amaters::fuzz {
namespace {

// Far beyond any fuzz input's ticks (10 ms each): requests never time out.
constexpr uint64_t kDeadlineMs = uint64_t{1} << 40;

}  // namespace

NodeDriver::NodeDriver(raft::NodeId id, std::vector<raft::NodeId> voters)
    : id_(id), voters_(std::move(voters)) {
  Start();
}

void NodeDriver::Start() {
  absl::StatusOr<wal::ReplayResult> rec = wal::Recover(&disk_, wal::CorruptionPolicy::kRefuseStart);
  AM_CHECK(rec.ok(), "node ", id_, " cannot recover its own WAL: ", rec.status().ToString());
  node::NodeConfig c;
  c.raft.id = id_;
  c.raft.voters = voters_;
  c.raft.rng_seed = id_;
  c.raft.election_ticks = 5;
  c.wal.segment_size_bytes = 4096;
  c.failover.heartbeat_interval_ms = 10;
  c.failover.election_timeout_ms = 100;
  // The in-memory state machine is rebuilt from the log after a restart.
  absl::StatusOr<std::unique_ptr<node::Node>> n = node::Node::Create(c, *rec, 0);
  AM_CHECK(n.ok(), "node ", id_, " does not start from its own WAL: ", n.status().ToString());
  node_ = *std::move(n);
  requests_.emplace(node::ClientRequestsConfig());
  sm_ = std::make_unique<kv::MemoryStateMachine>();
  Pump();
}

void NodeDriver::Propose(uint64_t token, std::string data) {
  if (!node_) return;
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kPropose;
  r.data = std::move(data);
  r.deadline_ms = now_ms_ + kDeadlineMs;
  requests_->Submit(*node_, token, std::move(r), now_ms_);
  Pump();
}

void NodeDriver::Read(uint64_t token) {
  if (!node_) return;
  node::ClientRequest r;
  r.kind = node::ClientRequest::Kind::kRead;
  r.deadline_ms = now_ms_ + kDeadlineMs;
  requests_->Submit(*node_, token, std::move(r), now_ms_);
  Pump();
}

void NodeDriver::Restart() {
  node_.reset();
  disk_.Crash(wal::SimDisk::CrashMode::kLoseUnsynced, nullptr);
  Start();
}

void NodeDriver::Tick() {
  if (!node_) return;
  now_ms_ += 10;
  node_->Tick(now_ms_);
  requests_->Advance(*node_, now_ms_);
  Pump();
}

void NodeDriver::Pump() {
  for (int round = 0; node_ && round < 1000; ++round) {
    for (node::Finished& f : requests_->TakeFinished()) failed[f.token] = f.status;
    node::Effects e = node_->TakeEffects();
    if (e.Empty()) return;
    requests_->Route(e, now_ms_);  // tokens for request ids; replies become Finished
    messages_sent += e.messages.size();
    if (!e.apply.empty()) {
      std::vector<kv::ApplyItem> items;
      for (const node::ApplyItem& a : e.apply) {
        if (a.entry.type == raft::EntryType::kNormal) {
          items.push_back(kv::DecodeEntry(a.entry.index, a.entry.data));
        } else {
          items.push_back(kv::ApplyItem::Noop(a.entry.index));
        }
      }
      absl::StatusOr<std::vector<kv::ApplyResult>> results = sm_->Apply(items);
      AM_CHECK(results.ok(),
               "state machine refuses a committed batch: ", results.status().ToString());
      AM_CHECK_EQ(results->size(), e.apply.size());
      for (size_t i = 0; i < e.apply.size(); ++i) {
        if (e.apply[i].request) applied[*e.apply[i].request] = (*results)[i];
      }
      node_->OnApplied(e.apply.back().entry.index);
    }
    for (uint64_t r : e.reads) reads_ready.push_back(r);
    if (e.disk) {
      absl::Status s = wal::ExecuteBatch(*e.disk, &disk_);
      node_->OnDiskDone(e.disk->id, s);
    }
    if (!e.fatal.ok()) {
      node_.reset();
      return;
    }
  }
}

}  // namespace amaters::fuzz
