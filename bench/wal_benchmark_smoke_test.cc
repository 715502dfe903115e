// Keeps //bench:wal_benchmark compiling and working under `bazel test //...`: runs every
// registered benchmark with a tiny time budget and checks the group-commit harness for
// correctness. Never asserts on speed (speed targets do not belong in unit tests; the figures
// live in bench/RESULTS.md).
#include <stdlib.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/wal_benchmark.h"
#include "benchmark/benchmark.h"
#include "engine/wal/disk.h"
#include "gtest/gtest.h"
#include "server/storage/posix_disk.h"

namespace amaters::bench {
namespace {

std::string TestDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  return absl::StrCat(base != nullptr ? base : "/tmp", "/", name);
}

// Every acknowledged append from many threads is in the WAL after a restart, in order.
TEST(GroupCommitWalTest, AcknowledgedAppendsAreRecovered) {
  const std::string dir = TestDir("harness");
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  {
    wal::WriterOptions options;  // sync_mode = always
    absl::StatusOr<std::unique_ptr<GroupCommitWal>> w = GroupCommitWal::Start(dir, options);
    ASSERT_TRUE(w.ok()) << w.status();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&w, t] {
        for (int i = 0; i < kPerThread; ++i) {
          absl::Status s = (*w)->Append(absl::StrCat("t", t, "-", i));
          EXPECT_TRUE(s.ok()) << s;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    GroupCommitWal::Stats st = (*w)->stats();
    EXPECT_EQ(st.appends_acked, uint64_t{kThreads * kPerThread});
    EXPECT_GE(st.fdatasyncs, 1u);
    // At most one fdatasync per append, plus the new segment's header.
    EXPECT_LE(st.fdatasyncs, st.appends_acked + 1);
  }
  absl::StatusOr<std::unique_ptr<storage::PosixDisk>> disk = storage::PosixDisk::Open(dir);
  ASSERT_TRUE(disk.ok()) << disk.status();
  absl::StatusOr<wal::ReplayResult> r =
      wal::Recover(disk->get(), wal::CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->entries.size(), size_t{kThreads * kPerThread});
  std::map<int, int> next_per_thread;  // each thread's entries appear in its own order
  for (size_t i = 0; i < r->entries.size(); ++i) {
    EXPECT_EQ(r->entries[i].index, i + 1);
    int t = 0, n = 0;
    ASSERT_EQ(std::sscanf(r->entries[i].data.c_str(), "t%d-%d", &t, &n), 2);
    EXPECT_EQ(n, next_per_thread[t]++) << r->entries[i].data;
  }
}

// Records every run and passes it on to the console.
class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& reported) override {
    runs.insert(runs.end(), reported.begin(), reported.end());
    ConsoleReporter::ReportRuns(reported);
  }
  std::vector<Run> runs;
};

TEST(WalBenchmarkSmokeTest, EveryBenchmarkRuns) {
  SetBenchDir(TestDir("bench"));
  std::string arg0 = "wal_benchmark_smoke_test";
  std::string min_time = "--benchmark_min_time=0.01";
  std::vector<char*> argv = {arg0.data(), min_time.data()};
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());
  RecordingReporter reporter;
  const size_t n = benchmark::RunSpecifiedBenchmarks(&reporter);
  EXPECT_EQ(n, 10u) << "2 sync modes x 3 appender counts + 4 raw fsync variants";
  ASSERT_EQ(reporter.runs.size(), n);
  for (const auto& run : reporter.runs) {
    const std::string name = run.benchmark_name();
    SCOPED_TRACE(name);
    EXPECT_FALSE(run.error_occurred) << run.error_message;
    EXPECT_GT(run.iterations, 0);
    ASSERT_TRUE(run.counters.count("lat_p99_us"));
    EXPECT_GE(run.counters.at("lat_p99_us").value, run.counters.at("lat_p50_us").value);
    if (name.find("sync_none") == std::string::npos) {
      EXPECT_GT(run.counters.at("fsyncs_per_s").value, 0);
    }
    if (name.find("BM_WalAppend") != std::string::npos) {
      EXPECT_GT(run.counters.at("appends_per_s").value, 0);
      EXPECT_GT(run.counters.at("records_per_fsync").value, 0);
    }
  }
  benchmark::Shutdown();
}

}  // namespace
}  // namespace amaters::bench
