// amaters WAL benchmark (see wal_benchmark.cc for what is measured).
//
//   ./bazelw run -c opt //bench:wal_benchmark -- [--wal_dir=DIR] [--benchmark_* flags]
//
// --wal_dir (or $AMATERS_BENCH_DIR) is where the WAL files go; a relative path is taken from
// the directory `bazel run` was started in. The default is a fresh /tmp/amaters-wal-bench.XXXXXX,
// removed at the end. Put it on the file system you want to measure: the device's fsync rate is
// the whole story for sync_mode=always.
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bench/wal_benchmark.h"
#include "benchmark/benchmark.h"

int main(int argc, char** argv) {
  std::string dir;
  if (const char* env = std::getenv("AMATERS_BENCH_DIR"); env != nullptr) dir = env;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && absl::StartsWith(argv[i], "--wal_dir=")) {
      dir = argv[i] + std::strlen("--wal_dir=");
    } else {
      rest.push_back(argv[i]);
    }
  }
  bool remove_dir = false;
  if (dir.empty()) {
    std::string pattern = "/tmp/amaters-wal-bench.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp /tmp/amaters-wal-bench.XXXXXX");
      return 1;
    }
    dir = pattern;
    remove_dir = true;
  } else if (dir[0] != '/') {
    // `bazel run` starts us inside the runfiles tree; the user meant their own directory.
    if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
      dir = absl::StrCat(wd, "/", dir);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create --wal_dir %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
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
  if (remove_dir) std::filesystem::remove_all(dir, ec);
  return 0;
}
