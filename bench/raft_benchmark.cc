// Raft propose -> commit on an in-memory 3-node loop of the real engine (docs/design.md §4.9:
// figures are measured; bench/RESULTS.md quotes real runs).
//
// Three node::Node replicas (Raft + WAL writer + failure detector, exactly what both drivers
// run), wired by a FIFO "network" in one thread. Each replica's WAL goes to an in-memory disk:
// simdisk:1 = wal::SimDisk, the simulator's disk model (keeps every byte twice: as written and
// as synced); simdisk:0 = a NullDisk that keeps only file sizes (the engine alone: Raft, node
// bookkeeping, WAL record encoding and batching, message passing). Node 1 is elected first;
// every proposal goes to it. No ticks during the measurement (no heartbeats: only the
// replication traffic the proposals cause).
//
// One loop iteration ("round") is what a driver does: for every node in turn, take its effects
// and execute them until it has none left (disk batch -> the disk, then OnDiskDone; committed
// entries -> applied, OnApplied), collecting the messages it sends; then deliver every message
// collected in this round. A message sent in round r is received at the end of round r.
//
//   BM_RaftProposeCommit/inflight:K/simdisk:D   K = 1: one proposal at a time (each waits for
//       the previous to be applied on the leader); K = 64: 64 proposals in flight, a new one as
//       soon as one completes (the leader batches what arrived meanwhile into one append and
//       one WAL batch). Each benchmark iteration proposes one command of 256 data bytes;
//       `Time` is therefore wall time per committed proposal (1 / throughput), not latency.
//
// Counters:
//   ops_per_s          proposals applied on the leader / (first Propose .. last completion)
//   rounds_per_op      loop iterations executed per completed proposal (work per round grows
//                      with the batch)
//   lat_rounds_mean/p50/p99  loop iterations from Propose (between two rounds) to the round in
//                      which the leader hands the entry to its state machine with the request
//   lat_us_mean/p50/p99  the same in wall time
// After the measured loop the harness ticks the cluster until the followers have applied the
// leader's commit index and checks that all three applied the same commands in the same order,
// each exactly once, and that every proposal completed successfully (SkipWithError otherwise).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/node/node.h"
#include "engine/node/startup.h"
#include "engine/raft/types.h"
#include "engine/wal/disk.h"
#include "engine/wal/sim_disk.h"

namespace amaters::bench {
namespace {

constexpr size_t kDataBytes = 256;
constexpr int kNodes = 3;

// A wal::Disk that keeps no data, only file sizes: what the engine costs without any disk
// model. (Nothing is ever read back: the replicas start empty and never restart.)
class NullDisk final : public wal::Disk {
 public:
  absl::StatusOr<std::vector<std::string>> List() override {
    std::vector<std::string> names;
    for (const auto& [name, size] : sizes_) names.push_back(name);
    return names;
  }
  absl::StatusOr<std::string> Read(const std::string& name) override {
    return absl::UnimplementedError("NullDisk keeps no data");
  }
  absl::Status Create(const std::string& name) override {
    if (!sizes_.emplace(name, 0).second) return absl::AlreadyExistsError(name);
    return absl::OkStatus();
  }
  absl::Status Write(const std::string& name, uint64_t offset, absl::string_view data) override {
    auto it = sizes_.find(name);
    if (it == sizes_.end()) return absl::NotFoundError(name);
    it->second = std::max<uint64_t>(it->second, offset + data.size());
    return absl::OkStatus();
  }
  absl::Status Sync(const std::string& name) override { return absl::OkStatus(); }
  absl::Status SyncDir() override { return absl::OkStatus(); }
  absl::Status Truncate(const std::string& name, uint64_t size) override {
    auto it = sizes_.find(name);
    if (it == sizes_.end()) return absl::NotFoundError(name);
    it->second = size;
    return absl::OkStatus();
  }
  absl::Status Delete(const std::string& name) override {
    sizes_.erase(name);
    return absl::OkStatus();
  }

 private:
  std::map<std::string, uint64_t> sizes_;
};

struct Replica {
  std::unique_ptr<wal::Disk> disk;
  std::unique_ptr<node::Node> node;
  uint64_t applied_normal = 0;   // normal entries applied
  uint64_t hash = 1469598103934665603ull;  // FNV-1a over (index, data) of applied normal entries
  raft::Index last_applied = 0;
};

// The in-memory 3-node loop. One thread; deterministic.
class Loop {
 public:
  // `sim_disk`: each replica's WAL goes to a wal::SimDisk (the simulator's in-memory disk,
  // which keeps every byte, twice: written and durable); otherwise to a NullDisk.
  static absl::StatusOr<std::unique_ptr<Loop>> Create(bool sim_disk) {
    std::unique_ptr<Loop> loop(new Loop());
    for (raft::NodeId id = 1; id <= kNodes; ++id) loop->voters_.push_back(id);
    for (raft::NodeId id : loop->voters_) {
      auto r = std::make_unique<Replica>();
      if (sim_disk) {
        r->disk = std::make_unique<wal::SimDisk>();
      } else {
        r->disk = std::make_unique<NullDisk>();
      }
      node::NodeConfig c;
      c.raft.id = id;
      c.raft.voters = loop->voters_;
      c.raft.rng_seed = id;
      c.failover.heartbeat_interval_ms = 10;  // one tick = 10 ms, as in node_test
      c.failover.election_timeout_ms = 100;
      node::EmptyDurableState empty;
      absl::StatusOr<node::Started> n = node::StartFromDisk(
          c, r->disk.get(), wal::CorruptionPolicy::kRefuseStart, "WAL", empty);
      if (!n.ok()) return n.status();
      r->node = std::move(n->node);
      loop->replicas_[id] = std::move(r);
    }
    return loop;
  }

  // Node 1 campaigns and wins.
  absl::Status ElectLeader() {
    leader_ = 1;
    replicas_[leader_]->node->Campaign();
    for (int i = 0; i < 100; ++i) {
      if (absl::Status s = Round(); !s.ok()) return s;
      if (replicas_[leader_]->node->raft().role() == raft::Role::kLeader) break;
    }
    if (replicas_[leader_]->node->raft().role() != raft::Role::kLeader) {
      return absl::InternalError("node 1 did not become leader");
    }
    return Settle();
  }

  void Propose(node::RequestId id, std::string data) {
    replicas_[leader_]->node->Propose(id, std::move(data));
  }

  // One loop iteration. Requests the leader completed are appended to `completed_`.
  absl::Status Round() {
    ++rounds_;
    std::vector<raft::Message> out;
    for (raft::NodeId id : voters_) {
      if (absl::Status s = Drain(id, &out); !s.ok()) return s;
    }
    for (raft::Message& m : out) {
      if (absl::Status s = replicas_[m.to]->node->Receive(m); !s.ok()) {
        return absl::InternalError(absl::StrCat("Receive: ", s.ToString()));
      }
    }
    return absl::OkStatus();
  }

  // Ticks (heartbeats carry the commit index) and runs rounds until every replica applied the
  // leader's commit index and nothing is left to do.
  absl::Status Settle() {
    for (int i = 0; i < 1000; ++i) {
      bool done = true;
      const raft::Index commit = replicas_[leader_]->node->raft().hard_state().commit;
      for (raft::NodeId id : voters_) done &= replicas_[id]->last_applied >= commit;
      if (done && i > 0) return absl::OkStatus();
      now_ms_ += 10;
      for (raft::NodeId id : voters_) replicas_[id]->node->Tick(now_ms_);
      for (int k = 0; k < 10; ++k) {
        if (absl::Status s = Round(); !s.ok()) return s;
      }
    }
    return absl::InternalError("the followers did not catch up with the leader's commit index");
  }

  // Every replica applied the same normal entries (same count, same order and bytes).
  absl::Status CheckAgreement(uint64_t expected_normal) const {
    const Replica& l = *replicas_.at(leader_);
    for (raft::NodeId id : voters_) {
      const Replica& r = *replicas_.at(id);
      if (r.applied_normal != expected_normal || r.hash != l.hash) {
        return absl::InternalError(absl::StrCat("node ", id, " applied ", r.applied_normal,
                                                " commands (hash ", r.hash, "), expected ",
                                                expected_normal, " (hash ", l.hash, ")"));
      }
    }
    return absl::OkStatus();
  }

  std::vector<node::RequestId>& completed() { return completed_; }
  uint64_t rounds() const { return rounds_; }

 private:
  Loop() = default;

  absl::Status Drain(raft::NodeId id, std::vector<raft::Message>* out) {
    Replica& r = *replicas_[id];
    for (int guard = 0; guard < 1000; ++guard) {
      node::Effects e = r.node->TakeEffects();
      if (e.Empty()) return absl::OkStatus();
      if (!e.fatal.ok()) return e.fatal;
      if (!e.replies.empty()) {
        return absl::InternalError(absl::StrCat("request ", e.replies[0].request,
                                                " failed: ", e.replies[0].status.ToString()));
      }
      for (raft::Message& m : e.messages) out->push_back(std::move(m));
      if (!e.apply.empty()) {
        for (const node::ApplyItem& item : e.apply) {
          if (item.entry.type == raft::EntryType::kNormal) {
            ++r.applied_normal;
            uint64_t h = r.hash;
            auto mix = [&h](const char* p, size_t n) {
              for (size_t i = 0; i < n; ++i) {
                h ^= static_cast<unsigned char>(p[i]);
                h *= 1099511628211ull;
              }
            };
            mix(reinterpret_cast<const char*>(&item.entry.index), sizeof(item.entry.index));
            mix(item.entry.data.data(), item.entry.data.size());
            r.hash = h;
          }
          if (item.request && id == leader_) completed_.push_back(*item.request);
        }
        r.last_applied = e.apply.back().entry.index;
        r.node->OnApplied(r.last_applied);
      }
      if (e.disk) {
        const absl::Status s = wal::ExecuteBatch(*e.disk, r.disk.get());
        r.node->OnDiskDone(e.disk->id, s);
      }
    }
    return absl::InternalError(absl::StrCat("node ", id, " never ran out of effects"));
  }

  std::vector<raft::NodeId> voters_;
  std::map<raft::NodeId, std::unique_ptr<Replica>> replicas_;
  std::vector<node::RequestId> completed_;
  raft::NodeId leader_ = raft::kNone;
  uint64_t rounds_ = 0;
  uint64_t now_ms_ = 0;
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return sorted[rank - 1];
}

void BM_RaftProposeCommit(benchmark::State& state) {
  const size_t inflight_max = static_cast<size_t>(state.range(0));
  absl::StatusOr<std::unique_ptr<Loop>> created = Loop::Create(state.range(1) != 0);
  if (!created.ok()) {
    state.SkipWithError(created.status().ToString().c_str());
    return;
  }
  Loop& loop = **created;
  if (absl::Status s = loop.ElectLeader(); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  loop.completed().clear();

  using Clock = std::chrono::steady_clock;
  struct Pending {
    uint64_t round;
    Clock::time_point at;
  };
  std::map<node::RequestId, Pending> pending;
  std::vector<double> lat_rounds, lat_us;
  uint64_t proposed = 0, done = 0;
  const uint64_t first_round = loop.rounds();
  absl::Status error;
  std::string payload(kDataBytes, 'v');

  auto collect = [&]() {
    const Clock::time_point now = Clock::now();
    for (node::RequestId id : loop.completed()) {
      auto it = pending.find(id);
      if (it == pending.end()) {
        error = absl::InternalError(absl::StrCat("request ", id, " completed twice or unasked"));
        return;
      }
      lat_rounds.push_back(static_cast<double>(loop.rounds() - it->second.round));
      lat_us.push_back(std::chrono::duration<double, std::micro>(now - it->second.at).count());
      pending.erase(it);
      ++done;
    }
    loop.completed().clear();
  };

  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    while (pending.size() >= inflight_max && error.ok()) {
      error = loop.Round();
      if (error.ok()) collect();
    }
    if (!error.ok()) break;
    const node::RequestId id = ++proposed;
    std::memcpy(payload.data(), &id, sizeof(id));  // every command distinct
    pending[id] = Pending{loop.rounds(), Clock::now()};
    loop.Propose(id, payload);
  }
  // The proposals still in flight complete too (part of the window, not of the iterations).
  for (int i = 0; i < 100000 && !pending.empty() && error.ok(); ++i) {
    error = loop.Round();
    if (error.ok()) collect();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const uint64_t rounds = loop.rounds() - first_round;
  if (error.ok() && !pending.empty()) {
    error = absl::InternalError(absl::StrCat(pending.size(), " proposals never completed"));
  }
  // After the timed loop (Google Benchmark stops the clock when the loop ends).
  if (error.ok()) error = loop.Settle();
  if (error.ok()) error = loop.CheckAgreement(proposed);
  if (!error.ok()) {
    state.SkipWithError(error.ToString().c_str());
    return;
  }
  std::sort(lat_rounds.begin(), lat_rounds.end());
  std::sort(lat_us.begin(), lat_us.end());
  double sum = 0;
  for (double v : lat_rounds) sum += v;
  state.counters["ops_per_s"] = static_cast<double>(done) / std::max(seconds, 1e-9);
  state.counters["rounds_per_op"] =
      static_cast<double>(rounds) / static_cast<double>(std::max<uint64_t>(done, 1));
  state.counters["lat_rounds_mean"] =
      sum / static_cast<double>(std::max<size_t>(lat_rounds.size(), 1));
  state.counters["lat_rounds_p50"] = Percentile(lat_rounds, 0.50);
  state.counters["lat_rounds_p99"] = Percentile(lat_rounds, 0.99);
  double sum_us = 0;
  for (double v : lat_us) sum_us += v;
  state.counters["lat_us_mean"] = sum_us / static_cast<double>(std::max<size_t>(lat_us.size(), 1));
  state.counters["lat_us_p50"] = Percentile(lat_us, 0.50);
  state.counters["lat_us_p99"] = Percentile(lat_us, 0.99);
}

BENCHMARK(BM_RaftProposeCommit)
    ->ArgNames({"inflight", "simdisk"})
    ->Args({1, 1})
    ->Args({64, 1})
    ->Args({1, 0})
    ->Args({64, 0})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace amaters::bench
