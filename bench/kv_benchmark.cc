// KV apply on RocksDB on disk (docs/design.md §4.9: figures are measured; bench/RESULTS.md quotes
// real runs). The server's own state machine, storage::RocksDbStateMachine, with its default
// options (sync_writes = false: the Raft WAL is the durability source), in a fresh directory
// under --kv_dir per run.
//
//   BM_KvApplyPut/batch:B    one iteration = one StateMachine::Apply of B put commands
//       (key 8 B, value 256 B; every key new, in scattered order: the hex of i * 2654435761 mod
//       2^32), i.e. what the server's apply thread does with B committed entries. Each item is
//       built as the server builds it: the command bytes (kv::EncodeCommand, done by the
//       proposing node) decoded by kv::DecodeEntry (done by the apply thread); both are inside
//       the timed loop. B = 1, 64, 512.
//   BM_KvPointRead/keys:K/flushed:F   one iteration = one StateMachine::Range of one existing
//       key (what a serializable or an already-confirmed linearizable read costs in the
//       state machine), over K = 100000 keys (the `keys` counter; the smoke test loads fewer) loaded before the loop (batches of 512 puts),
//       picked in a scattered order. F = 0: the data is still in RocksDB's memtable; F = 1: the
//       memtable was flushed to an SST file first (reads go through the block cache / page
//       cache; the file is ~30 MB, so it stays in memory).
//
// Counters: ops_per_s = puts (or reads) / wall time of the loop, counted by the harness (the
// built-in items_per_second would divide by the main thread's CPU time, and RocksDB works in
// background threads too). After the loop the harness checks the outcome (applied index,
// revision, a value read back; every read found its key with its value) and reports
// SkipWithError otherwise.
#include "bench/kv_benchmark.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_dir.h"
#include "benchmark/benchmark.h"
#include "engine/kv/command.h"
#include "engine/kv/state_machine.h"
#include "rocksdb/db.h"
#include "server/storage/rocksdb_state_machine.h"

namespace amaters::bench {
namespace {

constexpr size_t kValueBytes = 256;

std::string& MutableDir() {
  static std::string* dir = new std::string();
  return *dir;
}

uint64_t& MutableMaxKeys() {
  static uint64_t max_keys = UINT64_MAX;
  return max_keys;
}

// A fresh directory for one run, removed by the destructor.
class RunDir : public ScratchDir {
 public:
  RunDir() : ScratchDir(MutableDir().empty() ? "/tmp" : MutableDir(), "kv-run") {}
};

// The i-th key: 8 hex digits, a bijection of i on 32 bits (distinct keys, scattered order).
std::string KeyOf(uint64_t i) {
  return absl::StrFormat("%08x", static_cast<uint32_t>(i * 2654435761u));
}

std::string ValueOf(uint64_t i) {
  std::string v(kValueBytes, static_cast<char>('a' + i % 26));
  v.replace(0, 16, absl::StrFormat("%016x", i));
  return v;
}

// The ApplyItem for the i-th put at log index `index`, built as the server builds it.
kv::ApplyItem PutItem(uint64_t index, uint64_t i) {
  kv::Command c;
  c.request_id = index;
  c.op = kv::PutRequest{KeyOf(i), ValueOf(i), false};
  return kv::DecodeEntry(index, kv::EncodeCommand(c));
}

absl::Status ApplyPuts(kv::StateMachine* sm, uint64_t first, uint64_t count, size_t batch) {
  std::vector<kv::ApplyItem> items;
  for (uint64_t i = first; i < first + count;) {
    items.clear();
    for (size_t k = 0; k < batch && i < first + count; ++k, ++i) {
      items.push_back(PutItem(sm->applied_index() + 1 + k, i));
    }
    absl::StatusOr<std::vector<kv::ApplyResult>> r = sm->Apply(items);
    if (!r.ok()) return r.status();
  }
  return absl::OkStatus();
}

absl::Status CheckValue(const kv::StateMachine& sm, uint64_t i) {
  absl::StatusOr<kv::RangeResponse> r = sm.Range(kv::RangeRequest{KeyOf(i), "", 0, false, false});
  if (!r.ok()) return r.status();
  if (r->kvs.size() != 1 || r->kvs[0].value != ValueOf(i)) {
    return absl::InternalError(absl::StrCat("key ", KeyOf(i), " does not hold its value"));
  }
  return absl::OkStatus();
}

void BM_KvApplyPut(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  RunDir dir;
  absl::StatusOr<std::unique_ptr<storage::RocksDbStateMachine>> opened =
      storage::RocksDbStateMachine::Open(dir.path());
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  storage::RocksDbStateMachine& sm = **opened;
  const int64_t revision0 = sm.revision();
  std::vector<kv::ApplyItem> items;
  items.reserve(batch);
  uint64_t puts = 0;
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    items.clear();
    for (size_t k = 0; k < batch; ++k) items.push_back(PutItem(puts + k + 1, puts + k));
    absl::StatusOr<std::vector<kv::ApplyResult>> r = sm.Apply(items);
    if (!r.ok() || r->size() != batch) {
      error = r.ok() ? "wrong number of results" : r.status().ToString();
      break;
    }
    for (const kv::ApplyResult& res : *r) {
      if (!res.status.ok()) error = res.status.ToString();
    }
    if (!error.empty()) break;
    puts += batch;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (error.empty() && (sm.applied_index() != puts ||
                        sm.revision() != revision0 + static_cast<int64_t>(puts))) {
    error = absl::StrCat("applied index ", sm.applied_index(), " / revision ", sm.revision(),
                         " after ", puts, " puts");
  }
  if (error.empty() && puts > 0) {
    if (absl::Status s = CheckValue(sm, puts / 2); !s.ok()) error = s.ToString();
  }
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  state.counters["ops_per_s"] = static_cast<double>(puts) / std::max(seconds, 1e-9);
  state.counters["batches_per_s"] =
      static_cast<double>(puts / batch) / std::max(seconds, 1e-9);
}

void BM_KvPointRead(benchmark::State& state) {
  const uint64_t keys = std::min(static_cast<uint64_t>(state.range(0)), MutableMaxKeys());
  if (keys == 0) {
    state.SkipWithError("no keys to read (SetKvBenchMaxKeys(0))");
    return;
  }
  const bool flushed = state.range(1) != 0;
  RunDir dir;
  absl::StatusOr<std::unique_ptr<storage::RocksDbStateMachine>> opened =
      storage::RocksDbStateMachine::Open(dir.path());
  if (!opened.ok()) {
    state.SkipWithError(opened.status().ToString().c_str());
    return;
  }
  storage::RocksDbStateMachine& sm = **opened;
  if (absl::Status s = ApplyPuts(&sm, 0, keys, 512); !s.ok()) {
    state.SkipWithError(s.ToString().c_str());
    return;
  }
  if (flushed) {
    rocksdb::Status s = sm.db_for_testing()->Flush(rocksdb::FlushOptions());
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  kv::RangeRequest req;
  uint64_t reads = 0, found = 0;
  std::string error;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const uint64_t i = (reads * 40503u + 7) % keys;  // scattered over the loaded keys
    req.key = KeyOf(i);
    absl::StatusOr<kv::RangeResponse> r = sm.Range(req);
    if (!r.ok()) {
      error = r.status().ToString();
      break;
    }
    if (r->kvs.size() == 1 && r->kvs[0].value.size() == kValueBytes) ++found;
    ++reads;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (error.empty() && found != reads) {
    error = absl::StrCat(reads - found, " of ", reads, " reads did not find their key");
  }
  if (error.empty()) {
    if (absl::Status s = CheckValue(sm, keys - 1); !s.ok()) error = s.ToString();
  }
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return;
  }
  state.counters["ops_per_s"] = static_cast<double>(reads) / std::max(seconds, 1e-9);
  state.counters["keys"] = static_cast<double>(keys);
}

BENCHMARK(BM_KvApplyPut)
    ->ArgName("batch")
    ->Arg(1)
    ->Arg(64)
    ->Arg(512)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KvPointRead)
    ->ArgNames({"keys", "flushed"})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

void SetKvBenchDir(const std::string& dir) { MutableDir() = dir; }

void SetKvBenchMaxKeys(uint64_t max_keys) { MutableMaxKeys() = max_keys; }

}  // namespace amaters::bench
