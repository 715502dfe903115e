// WAL benchmarks (docs/design.md §4.9: figures are measured; bench/RESULTS.md quotes real runs).
//
//   BM_WalAppend/sync_always/real_time/threads:N   N appender threads (1, 16, 256), each
//       appending one 256-byte entry at a time and waiting for its acknowledgement; one I/O
//       thread runs the writer (group commit). sync_mode=always: acknowledged once on disk.
//   BM_WalAppend/sync_none/...                      the same with sync_mode=none (acknowledged
//       after write(2)): the cost of everything except the fdatasync.
//   BM_RawFdatasync/append_4k, /overwrite_4k        one thread: pwrite 4 KiB + fdatasync, in a
//       loop, appending to / overwriting the start of one file — the device's own sync rate.
//   BM_RawFdatasync/fallocated_4k, /zero_filled_4k  the same, appending inside 256 MiB
//       reserved beforehand with fallocate(2) / written with zeros and synced beforehand: what
//       a preallocated WAL segment would cost.
//
// Counters (per run; "Time" is wall time per append across all threads, i.e. 1/throughput,
// not latency):
//   appends_per_s      acknowledged appends / (first Append call .. last acknowledgement)
//   fsyncs_per_s       fdatasync calls per second over the same window (the directory fsync
//                      of a new segment, once per 64 MiB, is not counted)
//   records_per_fsync  acknowledged appends per fdatasync: the group commit factor
//   lat_mean_us, lat_p50_us, lat_p99_us   per-append latency seen by the appender thread
//       (submit .. woken with the acknowledgement), over every append of the run
#include "bench/wal_benchmark.h"

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/bench_dir.h"
#include "benchmark/benchmark.h"
#include "engine/base/check.h"
#include "engine/wal/disk.h"

namespace amaters::bench {

// ---------------------------------------------------------------------------------------------
// GroupCommitWal

int64_t GroupCommitWal::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::unique_ptr<GroupCommitWal>> GroupCommitWal::Start(
    const std::string& dir, const wal::WriterOptions& options) {
  absl::StatusOr<std::unique_ptr<storage::PosixDisk>> disk = storage::PosixDisk::Open(dir);
  if (!disk.ok()) return disk.status();
  absl::StatusOr<wal::ReplayResult> recovered =
      wal::Recover(disk->get(), wal::CorruptionPolicy::kRefuseStart);
  if (!recovered.ok()) return recovered.status();
  absl::StatusOr<wal::Writer> writer = wal::Writer::Open(options, *recovered);
  if (!writer.ok()) return writer.status();
  const raft::Index last = recovered->entries.empty() ? 0 : recovered->entries.back().index;
  return std::unique_ptr<GroupCommitWal>(
      new GroupCommitWal(*std::move(disk), *std::move(writer), options, last));
}

GroupCommitWal::GroupCommitWal(std::unique_ptr<storage::PosixDisk> disk, wal::Writer writer,
                               const wal::WriterOptions& options, raft::Index last_index)
    : options_(options), start_ns_(NowNs()), last_index_(last_index), disk_(std::move(disk)) {
  writer_.emplace(std::move(writer));
  io_ = std::thread([this] { Loop(); });
}

GroupCommitWal::~GroupCommitWal() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  io_.join();
}

absl::Status GroupCommitWal::Append(std::string data) {
  Waiter w;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!failed_.ok()) return failed_;
    AM_CHECK(!stopping_, "Append after the WAL was stopped");
    int64_t unset = -1;
    first_append_ns_.compare_exchange_strong(unset, NowNs());
    // Seq and index are assigned under the lock, in submission order, as the Raft leader
    // assigns log indexes: the writer requires increasing seqs and contiguous entries.
    raft::PersistRequest req;
    req.seq = ++next_seq_;
    req.entries.push_back(raft::Entry{1, ++last_index_, raft::EntryType::kNormal,
                                      std::move(data)});
    queue_.push_back({std::move(req), &w});
  }
  cv_.notify_one();
  std::unique_lock<std::mutex> l(w.mu);
  w.cv.wait(l, [&w] { return w.done; });
  return w.status;
}

void GroupCommitWal::Complete(Waiter* w, const absl::Status& status) {
  // Notify while holding the waiter's lock: once it sees `done` it returns and destroys `w`.
  std::lock_guard<std::mutex> l(w->mu);
  w->done = true;
  w->status = status;
  w->cv.notify_one();
}

void GroupCommitWal::FailEverything(const absl::Status& status) {
  std::vector<Submitted> queued;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (failed_.ok()) failed_ = status;
    queued.swap(queue_);
  }
  for (auto& [seq, w] : unacked_) Complete(w, status);
  unacked_.clear();
  for (Submitted& s : queued) Complete(s.waiter, status);
}

void GroupCommitWal::Loop() {
  std::vector<Submitted> take;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      auto ready = [this] { return !queue_.empty() || stopping_; };
      if (options_.sync_mode == wal::SyncMode::kInterval) {
        // The interval timer needs a turn of the loop even without new requests.
        cv_.wait_for(l, std::chrono::milliseconds(options_.sync_interval_ms), ready);
      } else {
        cv_.wait(l, ready);
      }
      if (stopping_ && queue_.empty()) break;
      take.swap(queue_);
    }
    for (Submitted& s : take) {
      if (absl::Status st = writer_->Append(s.request); !st.ok()) {
        Complete(s.waiter, st);
        continue;
      }
      unacked_.emplace_back(s.request.seq, s.waiter);
    }
    take.clear();
    const uint64_t now_ms = static_cast<uint64_t>((NowNs() - start_ns_) / 1000000);
    while (std::optional<wal::DiskBatch> batch = writer_->NextBatch(now_ms)) {
      const absl::Status st = wal::ExecuteBatch(*batch, disk_.get());
      if (st.ok()) {
        for (const wal::DiskOp& op : batch->ops) {
          if (op.kind == wal::DiskOp::Kind::kSync) fdatasyncs_.fetch_add(1);
          if (op.kind == wal::DiskOp::Kind::kSyncDir) dir_fsyncs_.fetch_add(1);
        }
      }
      batches_.fetch_add(1);
      absl::StatusOr<std::vector<uint64_t>> acked = writer_->OnBatchDone(batch->id, st);
      if (!acked.ok()) {
        FailEverything(acked.status());
        break;
      }
      // Counted before the appenders are woken: one that returns may read the stats at once.
      if (!acked->empty()) {
        appends_acked_.fetch_add(acked->size());
        last_ack_ns_.store(NowNs());
      }
      for (uint64_t seq : *acked) {
        AM_CHECK(!unacked_.empty(), "acknowledged seq ", seq, " was never submitted");
        AM_CHECK_EQ(unacked_.front().first, seq);
        Complete(unacked_.front().second, absl::OkStatus());
        unacked_.pop_front();
      }
    }
  }
  // Stopped: nothing is queued, and every appender has been answered (appenders wait for
  // their answer, so none can be running when the destructor is called).
  AM_CHECK(unacked_.empty() || !writer_->error().ok(), unacked_.size(),
           " appends were never acknowledged");
}

GroupCommitWal::Stats GroupCommitWal::stats() const {
  Stats s;
  s.appends_acked = appends_acked_.load();
  s.fdatasyncs = fdatasyncs_.load();
  s.dir_fsyncs = dir_fsyncs_.load();
  s.batches = batches_.load();
  const int64_t first = first_append_ns_.load();
  const int64_t last = last_ack_ns_.load();
  s.window_seconds = first >= 0 && last > first ? static_cast<double>(last - first) / 1e9 : 0;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Benchmark plumbing

namespace {

std::string& MutableBenchDir() {
  static std::string* dir = new std::string();
  return *dir;
}

// A fresh, empty directory for one run; removed by the RunDir destructor.
const std::string& CheckedBenchDir() {
  AM_CHECK(!BenchDir().empty(), "SetBenchDir was not called");
  return BenchDir();
}
class RunDir : public ScratchDir {
 public:
  RunDir() : ScratchDir(CheckedBenchDir(), "run") {}
};

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::min(std::max<size_t>(rank, 1), sorted.size());
  return static_cast<double>(sorted[rank - 1]);
}

void SetLatencyCounters(benchmark::State& state, std::vector<int64_t>* latencies_ns) {
  std::sort(latencies_ns->begin(), latencies_ns->end());
  double sum = 0;
  for (int64_t v : *latencies_ns) sum += static_cast<double>(v);
  const double n = static_cast<double>(std::max<size_t>(latencies_ns->size(), 1));
  state.counters["lat_mean_us"] = sum / n / 1e3;
  state.counters["lat_p50_us"] = Percentile(*latencies_ns, 0.50) / 1e3;
  state.counters["lat_p99_us"] = Percentile(*latencies_ns, 0.99) / 1e3;
}

// State shared by the threads of one BM_WalAppend run. Thread 0 creates it before the loop and
// destroys it after; Google Benchmark starts no thread's loop until all threads reach it and
// lets no thread leave its loop until all have finished, so the others only touch it inside.
struct WalRun {
  RunDir dir;
  std::unique_ptr<GroupCommitWal> wal;
  std::vector<std::vector<int64_t>> latencies_ns;  // one slot per thread: no locking
  std::string error;
};
WalRun* g_wal_run = nullptr;

void BM_WalAppend(benchmark::State& state, wal::SyncMode mode) {
  if (state.thread_index() == 0) {
    g_wal_run = new WalRun();
    wal::WriterOptions options;
    options.sync_mode = mode;
    absl::StatusOr<std::unique_ptr<GroupCommitWal>> w =
        GroupCommitWal::Start(g_wal_run->dir.path(), options);
    if (w.ok()) {
      g_wal_run->wal = *std::move(w);
    } else {
      g_wal_run->error = w.status().ToString();
    }
    g_wal_run->latencies_ns.resize(static_cast<size_t>(state.threads()));
    for (auto& v : g_wal_run->latencies_ns) v.reserve(static_cast<size_t>(state.max_iterations));
  }
  const std::string payload(kEntryDataBytes, 'x');
  for (auto _ : state) {
    WalRun* run = g_wal_run;
    if (run->wal == nullptr) {
      state.SkipWithError(run->error.c_str());
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    absl::Status s = run->wal->Append(payload);
    const auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) {
      state.SkipWithError(s.ToString().c_str());
      break;
    }
    run->latencies_ns[static_cast<size_t>(state.thread_index())].push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  if (state.thread_index() == 0) {
    WalRun* run = g_wal_run;
    g_wal_run = nullptr;
    if (run->wal != nullptr) {
      // Only thread 0 sets counters: Google Benchmark sums them over threads.
      const GroupCommitWal::Stats st = run->wal->stats();
      std::vector<int64_t> all;
      for (const auto& v : run->latencies_ns) all.insert(all.end(), v.begin(), v.end());
      // fdatasync only: a directory fsync happens once per new segment (every 64 MiB), so it
      // would only blur the group commit factor at low counts.
      const double syncs = static_cast<double>(st.fdatasyncs);
      const double window = st.window_seconds > 0 ? st.window_seconds : 1e-9;
      state.counters["appends_per_s"] = static_cast<double>(st.appends_acked) / window;
      state.counters["fsyncs_per_s"] = syncs / window;
      state.counters["records_per_fsync"] =
          syncs > 0 ? static_cast<double>(st.appends_acked) / syncs : 0;
      SetLatencyCounters(state, &all);
    }
    run->wal.reset();  // joins the I/O thread before the directory is removed
    delete run;
  }
}

// The device's own rate: 4 KiB pwrite + fdatasync on one file. `append` grows the file (as the
// WAL does: each fdatasync must also persist the new size); otherwise block 0 is overwritten
// (data only, no metadata).
// Where each 4 KiB write of BM_RawFdatasync lands.
enum class RawMode {
  kAppend,      // past the end of the file: every fdatasync also persists a new size
  kOverwrite,   // always offset 0: the block and the size already exist
  kFallocated,  // appending inside 256 MiB reserved with fallocate(2) (unwritten extents)
  kZeroFilled,  // appending inside 256 MiB written with zeros and synced beforehand
};

// Prepares `fd` for `mode`: reserves or zero-fills the region the writes go to.
bool PrepareRawFile(int fd, RawMode mode) {
  constexpr off_t kRegion = off_t{256} << 20;
  if (mode == RawMode::kFallocated) return ::fallocate(fd, 0, 0, kRegion) == 0;
  if (mode != RawMode::kZeroFilled) return true;
  const std::string zeros(1 << 20, '\0');
  for (off_t at = 0; at < kRegion; at += static_cast<off_t>(zeros.size())) {
    if (::pwrite(fd, zeros.data(), zeros.size(), at) != static_cast<ssize_t>(zeros.size())) {
      return false;
    }
  }
  return ::fdatasync(fd) == 0;
}

void BM_RawFdatasync(benchmark::State& state, RawMode mode) {
  RunDir dir;
  std::error_code ec;
  std::filesystem::create_directories(dir.path(), ec);
  const std::string path = dir.path() + "/raw";
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (ec || fd < 0 || !PrepareRawFile(fd, mode)) {
    state.SkipWithError(absl::StrCat("cannot create or prepare ", path).c_str());
    if (fd >= 0) ::close(fd);
    return;
  }
  const std::string block(4096, 'r');
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(static_cast<size_t>(state.max_iterations));
  off_t offset = 0;
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (::pwrite(fd, block.data(), block.size(), offset) != static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError(absl::StrCat("pwrite/fdatasync ", path, " failed").c_str());
      break;
    }
    if (mode != RawMode::kOverwrite) offset += static_cast<off_t>(block.size());
    latencies_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now() - t0)
                               .count());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::close(fd);
  state.counters["fsyncs_per_s"] = static_cast<double>(latencies_ns.size()) / seconds;
  SetLatencyCounters(state, &latencies_ns);
}

// Registration order is run order. The raw device rate first, then sync_mode=always right after
// it (the two figures to compare), sync_mode=none last: it leaves the most dirty data behind,
// whose write-back would slow down the fdatasyncs of whatever ran next.
BENCHMARK_CAPTURE(BM_RawFdatasync, append_4k, RawMode::kAppend)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RawFdatasync, overwrite_4k, RawMode::kOverwrite)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RawFdatasync, fallocated_4k, RawMode::kFallocated)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_RawFdatasync, zero_filled_4k, RawMode::kZeroFilled)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_WalAppend, sync_always, wal::SyncMode::kAlways)
    ->Threads(1)
    ->Threads(16)
    ->Threads(256)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_WalAppend, sync_none, wal::SyncMode::kNone)
    ->Threads(1)
    ->Threads(16)
    ->Threads(256)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

void SetBenchDir(const std::string& dir) { MutableBenchDir() = dir; }
const std::string& BenchDir() { return MutableBenchDir(); }

std::string FileSystemType(const std::string& path) {
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) return "unknown";
  // Magic numbers from linux/magic.h.
  switch (static_cast<uint64_t>(fs.f_type)) {
    case 0xEF53:
      return "ext4 (ext2/3/4 magic)";
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x01021994:
      return "tmpfs (fsync is free: figures are meaningless)";
    case 0x858458F6:
      return "ramfs (fsync is free: figures are meaningless)";
    case 0x794C7630:
      return "overlayfs";
    case 0xF2F52010:
      return "f2fs";
    case 0x2FC12FC1:
      return "zfs";
    case 0x6969:
      return "nfs";
    case 0x65735546:
      return "fuse";
    default:
      return absl::StrFormat("0x%x", static_cast<uint64_t>(fs.f_type));
  }
}

}  // namespace amaters::bench
