// amaters WAL benchmark (see wal_benchmark.cc for what is measured).
//
//   ./bazelw run -c opt //bench:wal_benchmark -- [--wal_dir=DIR] [--benchmark_* flags]
//
// --wal_dir (or $AMATERS_BENCH_DIR) is where the WAL files go; a relative path is taken from
// the directory `bazel run` was started in. The default is a fresh /tmp/amaters-wal-bench.XXXXXX,
// removed at the end. Put it on the file system you want to measure: the device's fsync rate is
// the whole story for sync_mode=always.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_dir.h"
#include "bench/wal_benchmark.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  std::vector<char*> rest;
  absl::StatusOr<amaters::bench::WorkDir> bench_dir =
      amaters::bench::WorkDir::FromArgs(argc, argv, "wal_dir", "amaters-wal-bench", &rest);
  if (!bench_dir.ok()) {
    std::fprintf(stderr, "%s\n", std::string(bench_dir.status().message()).c_str());
    return 1;
  }
  const std::string& dir = bench_dir->path();
  amaters::bench::SetBenchDir(dir);
  const std::string fs = amaters::bench::FileSystemType(dir);
  std::printf("wal_dir: %s (file system: %s)\n", dir.c_str(), fs.c_str());
  std::fflush(stdout);
  benchmark::AddCustomContext("wal_dir", dir);
  benchmark::AddCustomContext("wal_dir_fs", fs);
  benchmark::AddCustomContext("entry_data_bytes",
                              absl::StrCat(amaters::bench::kEntryDataBytes));

  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
