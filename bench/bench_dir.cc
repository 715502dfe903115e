#include "bench/bench_dir.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace amaters::bench {

absl::StatusOr<WorkDir> WorkDir::FromArgs(int argc, char** argv, const std::string& flag,
                                            const std::string& temp_prefix,
                                            std::vector<char*>* rest) {
  std::string dir;
  if (const char* env = std::getenv("AMATERS_BENCH_DIR"); env != nullptr) dir = env;
  const std::string prefix = absl::StrCat("--", flag, "=");
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && absl::StartsWith(argv[i], prefix)) {
      dir = argv[i] + prefix.size();
    } else {
      rest->push_back(argv[i]);
    }
  }
  bool remove = false;
  if (dir.empty()) {
    std::string pattern = absl::StrCat("/tmp/", temp_prefix, ".XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp ", pattern, ": ", std::strerror(errno)));
    }
    dir = pattern;
    remove = true;
  } else if (dir[0] != '/') {
    // `bazel run` starts us inside the runfiles tree; the user meant their own directory.
    if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd != nullptr) {
      dir = absl::StrCat(wd, "/", dir);
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create --", flag, " ", dir, ": ", ec.message()));
  }
  return WorkDir(std::move(dir), remove);
}

WorkDir::WorkDir(WorkDir&& other) noexcept
    : path_(std::move(other.path_)), remove_(other.remove_) {
  other.remove_ = false;
}

WorkDir::~WorkDir() {
  if (!remove_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ScratchDir::ScratchDir(const std::string& parent, const std::string& prefix) {
  static std::atomic<int> counter{0};
  path_ = absl::StrCat(parent, "/", prefix, "-", ::getpid(), "-", counter.fetch_add(1));
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace amaters::bench
