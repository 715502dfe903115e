// Scripted scenario files: commands and their expected output in one text file (testonly).
//
// Format (one block per command; blank lines separate blocks; '#' starts a comment line):
//
//   # a comment
//   command arg key=value
//   ----
//   expected output, one or more non-blank lines
//
// RunScenarioFile executes each command through `run` and compares its output. With the
// environment variable AMATERS_REWRITE=1 under `bazel run`, it writes the actual output back
// into the source tree instead (the file under $BUILD_WORKSPACE_DIRECTORY), which is how
// expected output is regenerated after an intended behaviour change; review the diff.
#ifndef AMATERS_ENGINE_TESTING_DATADRIVEN_H_
#define AMATERS_ENGINE_TESTING_DATADRIVEN_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace amaters::testing {

struct Command {
  std::string name;
  std::vector<std::string> args;            // positional arguments
  std::map<std::string, std::string> kv;    // key=value arguments
  std::string line;                          // the original line
  int line_number = 0;

  bool Has(const std::string& key) const { return kv.count(key) > 0; }
  std::string Get(const std::string& key, const std::string& def) const;
  long long GetInt(const std::string& key, long long def) const;
};

Command ParseCommand(const std::string& line, int line_number);

// Runs every block of `path` (relative to the test's runfiles root, e.g.
// "engine/raft/testdata/election.txt"). Returns a description of mismatches (empty if none).
std::string RunScenarioFile(const std::string& path,
                            const std::function<std::string(const Command&)>& run);

// Files in a runfiles directory, sorted, with the given suffix.
std::vector<std::string> ListFiles(const std::string& dir, const std::string& suffix);

}  // namespace amaters::testing

#endif  // AMATERS_ENGINE_TESTING_DATADRIVEN_H_
