// Keeps //bench:raft_benchmark, :kv_benchmark and :codec_benchmark compiling and working
// under `bazel test //...`: runs every benchmark they register with a tiny time budget. Each
// benchmark checks its own outcome after its loop (the 3 replicas agree, round trips give the
// original back, RocksDB holds what was applied) and reports SkipWithError otherwise; this test
// fails on any such error and checks that the counters are there and plausible. Never asserts
// on speed (the figures live in bench/RESULTS.md).
#include <stdint.h>
#include <stdlib.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/kv_benchmark.h"
#include "benchmark/benchmark.h"
#include "gtest/gtest.h"

namespace amaters::bench {
namespace {

class RecordingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& reported) override {
    runs.insert(runs.end(), reported.begin(), reported.end());
    ConsoleReporter::ReportRuns(reported);
  }
  std::vector<Run> runs;
};

constexpr uint64_t kSmokeReadKeys = 5000;

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(MicroBenchmarkSmokeTest, EveryBenchmarkRunsAndChecksItsOutcome) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  SetKvBenchDir(absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/kv"));
  // Loading 100,000 keys for each of the harness's calls takes most of a minute under
  // AddressSanitizer; the smoke test checks that reads work, not how fast.
  SetKvBenchMaxKeys(kSmokeReadKeys);
  std::string arg0 = "micro_benchmark_smoke_test";
  std::string min_time = "--benchmark_min_time=0.01";
  std::vector<char*> argv = {arg0.data(), min_time.data()};
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());
  RecordingReporter reporter;
  const size_t n = benchmark::RunSpecifiedBenchmarks(&reporter);
  // raft: 4 (inflight 1, 64 x SimDisk, NullDisk); kv: 3 apply + 2 read; WAL record
  // encode/decode: 2 x 2 (entries 1, 64); peer encode/decode: 2 x 2.
  EXPECT_EQ(n, 17u);
  ASSERT_EQ(reporter.runs.size(), n);
  std::map<std::string, int> families;
  for (const auto& run : reporter.runs) {
    const std::string name = run.benchmark_name();
    SCOPED_TRACE(name);
    EXPECT_FALSE(run.error_occurred) << run.error_message;
    EXPECT_GT(run.iterations, 0);
    ++families[name.substr(0, name.find('/'))];
    if (Contains(name, "BM_Raft")) {
      ASSERT_TRUE(run.counters.count("ops_per_s"));
      EXPECT_GT(run.counters.at("ops_per_s").value, 0);
      // A proposal needs at least the leader's append, the followers' answers and the commit.
      EXPECT_GE(run.counters.at("lat_rounds_p50").value, 1);
      EXPECT_GE(run.counters.at("lat_rounds_p99").value, run.counters.at("lat_rounds_p50").value);
    } else if (Contains(name, "BM_Kv")) {
      ASSERT_TRUE(run.counters.count("ops_per_s"));
      EXPECT_GT(run.counters.at("ops_per_s").value, 0);
      if (Contains(name, "BM_KvPointRead")) {
        ASSERT_TRUE(run.counters.count("keys"));
        EXPECT_EQ(run.counters.at("keys").value, kSmokeReadKeys);
      }
    } else {
      ASSERT_TRUE(run.counters.count("bytes_per_second"));
      ASSERT_TRUE(run.counters.count("items_per_second"));
      EXPECT_GT(run.counters.at("bytes_per_second").value, 0);
      // 256 data bytes per entry: the encoded form is at least that.
      const double per_entry_bytes = run.counters.at("bytes_per_second").value /
                                     run.counters.at("items_per_second").value;
      EXPECT_GT(per_entry_bytes, 256);
    }
  }
  EXPECT_EQ(families["BM_RaftProposeCommit"], 4);
  EXPECT_EQ(families["BM_WalEncode"], 2);
  EXPECT_EQ(families["BM_WalDecode"], 2);
  EXPECT_EQ(families["BM_PeerEncode"], 2);
  EXPECT_EQ(families["BM_PeerDecode"], 2);
  EXPECT_EQ(families["BM_KvApplyPut"], 3);
  EXPECT_EQ(families["BM_KvPointRead"], 2);
  benchmark::Shutdown();
}

}  // namespace
}  // namespace amaters::bench
