// WAL group-commit benchmark (bench/wal_benchmark.cc): the real wal::Writer on a PosixDisk,
// driven the way the server drives it — many threads submit persist requests and wait for
// their acknowledgement, one I/O thread executes the writer's batches.
//
// Exposed here so that the smoke test (wal_benchmark_smoke_test.cc) can run the registered
// benchmarks with a tiny time budget and check the harness for correctness (every
// acknowledged entry is recovered after a restart). Speed is never asserted in tests.
#ifndef AMATERS_BENCH_WAL_BENCHMARK_H_
#define AMATERS_BENCH_WAL_BENCHMARK_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <deque>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/raft/types.h"
#include "engine/raft/raft.h"
#include "engine/wal/writer.h"
#include "server/storage/posix_disk.h"

namespace amaters::bench {

// Entry payload size for the WAL benchmarks. A record is 24 (header) + 17 (term, index, type)
// + 256 = 297 bytes on disk.
inline constexpr size_t kEntryDataBytes = 256;

// A WAL with group commit: Append may be called from any number of threads; one I/O thread
// loops: take every submitted request -> Writer::Append each, in seq order -> NextBatch ->
// ExecuteBatch on the PosixDisk -> OnBatchDone -> wake the acknowledged appenders. While one
// batch is on the disk, new requests queue up and all go into the next batch (one fdatasync).
//
// The queue is bounded by the number of appender threads: each blocks until its request is
// acknowledged. The first disk error stops the WAL (writer.h "Errors"): every waiting and later
// Append returns it.
class GroupCommitWal {
 public:
  struct Stats {
    uint64_t appends_acked = 0;
    uint64_t fdatasyncs = 0;   // kSync operations executed (record syncs and segment roll-over)
    uint64_t dir_fsyncs = 0;   // kSyncDir operations executed
    uint64_t batches = 0;
    double window_seconds = 0;  // from the first Append call to the last acknowledgement
  };

  // Opens (creating if needed) the WAL directory `dir`, recovers it and starts the I/O thread.
  static absl::StatusOr<std::unique_ptr<GroupCommitWal>> Start(const std::string& dir,
                                                               const wal::WriterOptions& options);
  // Stops the I/O thread after it has finished everything submitted. No Append may be running.
  ~GroupCommitWal();

  // Appends one entry carrying `data` at the next log index (term 1) and blocks until the
  // writer acknowledges it (for sync_mode=always: until it is on stable storage).
  absl::Status Append(std::string data);

  Stats stats() const;

 private:
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    absl::Status status;
  };
  struct Submitted {
    raft::PersistRequest request;
    Waiter* waiter;
  };

  GroupCommitWal(std::unique_ptr<storage::PosixDisk> disk, wal::Writer writer,
                 const wal::WriterOptions& options, raft::Index last_index);
  void Loop();  // the I/O thread
  static void Complete(Waiter* w, const absl::Status& status);
  void FailEverything(const absl::Status& status);
  static int64_t NowNs();

  const wal::WriterOptions options_;
  const int64_t start_ns_;

  // Shared between appenders and the I/O thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Submitted> queue_;
  bool stopping_ = false;
  absl::Status failed_;
  uint64_t next_seq_ = 0;
  raft::Index last_index_ = 0;

  // I/O thread only.
  std::unique_ptr<storage::PosixDisk> disk_;
  std::optional<wal::Writer> writer_;
  std::deque<std::pair<uint64_t, Waiter*>> unacked_;  // persist seq, in seq order

  // Written by the I/O thread (and the first appender), read by stats().
  std::atomic<uint64_t> appends_acked_{0};
  std::atomic<uint64_t> fdatasyncs_{0};
  std::atomic<uint64_t> dir_fsyncs_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<int64_t> first_append_ns_{-1};
  std::atomic<int64_t> last_ack_ns_{-1};

  std::thread io_;
};

// Where the benchmarks put their files: each run gets a fresh subdirectory of this one, removed
// afterwards. Must be set before the benchmarks run.
void SetBenchDir(const std::string& dir);
const std::string& BenchDir();

// File system type of `path` ("ext4", "tmpfs", "xfs", ..., or "0x<magic>"), for the report:
// fsync on tmpfs or overlay costs nothing and would make the figures meaningless.
std::string FileSystemType(const std::string& path);

}  // namespace amaters::bench

#endif  // AMATERS_BENCH_WAL_BENCHMARK_H_
