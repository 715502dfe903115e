// amaters KV-apply benchmark (see kv_benchmark.cc for what is measured).
//
//   ./bazelw run -c opt //bench:kv_benchmark -- [--kv_dir=DIR] [--benchmark_* flags]
//
// --kv_dir (or $AMATERS_BENCH_DIR) is where the RocksDB databases go (one fresh subdirectory
// per run, removed afterwards); a relative path is taken from the directory `bazel run` was
// started in. The default is a fresh /tmp/amaters-kv-bench.XXXXXX, removed at the end.
#include <cstdio>
#include <string>
#include <vector>

#include "bench/bench_dir.h"
#include "bench/kv_benchmark.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  std::vector<char*> rest;
  absl::StatusOr<amaters::bench::WorkDir> bench_dir =
      amaters::bench::WorkDir::FromArgs(argc, argv, "kv_dir", "amaters-kv-bench", &rest);
  if (!bench_dir.ok()) {
    std::fprintf(stderr, "%s\n", std::string(bench_dir.status().message()).c_str());
    return 1;
  }
  const std::string& dir = bench_dir->path();
  amaters::bench::SetKvBenchDir(dir);
  std::printf("kv_dir: %s\n", dir.c_str());
  std::fflush(stdout);
  benchmark::AddCustomContext("kv_dir", dir);

  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
