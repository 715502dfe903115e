// A main() for fuzz targets outside libFuzzer: runs LLVMFuzzerTestOneInput once on every file
// named on the command line or found (not recursively) in a directory named there. The corpus
// tests (fuzz/BUILD.bazel) run it over fuzz/corpus/<target>/ and fuzz/regressions/<target>/;
// it also reproduces one crash file in a gcc or asan build:
//   ./bazelw run //fuzz:wal_decoder_corpus_test -- $PWD/fuzz/regressions/wal_decoder/crash-…
// A failing input aborts the process (the target's own check), so the last "replaying" line
// names it. A directory argument that does not exist is skipped (an empty regressions/<target>/
// is not in the tree); the run fails if no input at all was replayed.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Regular files of `dir`, sorted by name (so runs are repeatable).
std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name[0] == '.') continue;
    std::string path = dir + "/" + name;
    if (IsRegularFile(path)) files.push_back(path);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.empty() && arg[0] == '-') continue;  // libFuzzer-style flags are ignored
    if (IsDirectory(arg)) {
      std::vector<std::string> files = ListFiles(arg);
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (IsRegularFile(arg)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: %s does not exist, skipped\n", arg.c_str());
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& path : inputs) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
      return 1;
    }
    std::fprintf(stderr, "replaying %s (%zu bytes)\n", path.c_str(), bytes.size());
    // A copy in its own allocation, so that ASan catches reads past the end.
    std::vector<uint8_t> copy(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "replay: %zu inputs passed in %.2f s\n", inputs.size(), seconds);
  return 0;
}
