// The working directory of a benchmark that measures files on disk (WAL, RocksDB).
//
// `--<flag>=DIR` on the command line (or $AMATERS_BENCH_DIR) names it; a relative path is taken
// from the directory `bazel run` was started in ($BUILD_WORKING_DIRECTORY). Without either, a
// fresh /tmp/<temp_prefix>.XXXXXX is made and removed when the WorkDir goes away.
#ifndef AMATERS_BENCH_BENCH_DIR_H_
#define AMATERS_BENCH_BENCH_DIR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace amaters::bench {

class WorkDir {
 public:
  // Takes `--<flag>=DIR` out of argv; the other arguments (argv[0] first) go to `rest`, for
  // benchmark::Initialize. Creates the directory.
  static absl::StatusOr<WorkDir> FromArgs(int argc, char** argv, const std::string& flag,
                                           const std::string& temp_prefix,
                                           std::vector<char*>* rest);
  WorkDir(WorkDir&& other) noexcept;
  WorkDir& operator=(WorkDir&&) = delete;
  ~WorkDir();

  const std::string& path() const { return path_; }

 private:
  WorkDir(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  std::string path_;
  bool remove_ = false;  // a temporary directory we made
};

// A fresh directory `<parent>/<prefix>-<pid>-<n>` for one benchmark run (a stale one of that
// name is removed first), removed with everything in it when the ScratchDir goes away.
class ScratchDir {
 public:
  ScratchDir(const std::string& parent, const std::string& prefix);
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace amaters::bench

#endif  // AMATERS_BENCH_BENCH_DIR_H_
