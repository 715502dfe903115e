// amaters KV-apply benchmark (see kv_benchmark.cc for what is measured).
//
//   ./bazelw run -c opt //bench:kv_benchmark -- [--kv_dir=DIR] [--benchmark_* flags]
//
// --kv_dir (or $AMATERS_BENCH_DIR) is where the RocksDB databases go (one fresh subdirectory
// per run, removed afterwards); a relative path is taken from the directory `bazel run` was
// started in. The default is a fresh /tmp/amaters-kv-bench.XXXXXX, removed at the end.
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bench/kv_benchmark.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  std::string dir;
  if (const char* env = std::getenv("AMATERS_BENCH_DIR"); env != nullptr) dir = env;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && absl::StartsWith(argv[i], "--kv_dir=")) {
      dir = argv[i] + std::strlen("--kv_dir=");
    } else {
      rest.push_back(argv[i]);
    }
  }
  bool remove_dir = false;
  if (dir.empty()) {
    std::string pattern = "/tmp/amaters-kv-bench.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp /tmp/amaters-kv-bench.XXXXXX");
      return 1;
    }
    dir = pattern;
    remove_dir = true;
  } else if (dir[0] != '/') {
    if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
      dir = absl::StrCat(wd, "/", dir);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create --kv_dir %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  amaters::bench::SetKvBenchDir(dir);
  std::printf("kv_dir: %s\n", dir.c_str());
  std::fflush(stdout);
  benchmark::AddCustomContext("kv_dir", dir);

  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (remove_dir) std::filesystem::remove_all(dir, ec);
  return 0;
}
