// Test support for end-to-end tests of the real binaries: free ports, child processes with
// their output in a log file, and running a command to completion with its output captured.
#ifndef AMATERS_SERVER_TESTING_PROCESS_H_
#define AMATERS_SERVER_TESTING_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace amaters::server::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreePort();
// A new empty directory under $TEST_TMPDIR.
std::string NewTempDir(const std::string& name);
// The path of a runfile given as "<workspace-relative path>", e.g. "server/amaters-server".
std::string Runfile(const std::string& path);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);

class Process {
 public:
  // Starts argv[0] with `argv`, in `cwd`, with the test's environment plus `env`; stdout and
  // stderr go to `log_path`.
  static absl::StatusOr<std::unique_ptr<Process>> Spawn(
      const std::vector<std::string>& argv, const std::string& cwd, const std::string& log_path,
      const std::map<std::string, std::string>& env = {});
  ~Process();  // SIGKILL and reap if still running

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // The exit code (128 + signal number when killed by a signal), or nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);
  const std::string& log_path() const { return log_path_; }
  std::string Log() const { return ReadFile(log_path_); }

 private:
  Process(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}
  pid_t pid_;
  std::string log_path_;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = -1;  // 128 + signal if killed; -1 if it could not run or timed out
  std::string out;
  std::string err;
};
// Runs `argv` to completion (killed after `timeout`), capturing stdout and stderr.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         absl::Duration timeout = absl::Seconds(30), const std::string& cwd = "",
                         const std::map<std::string, std::string>& env = {});
// RunCommand with `input` as the command's stdin (read from a file, so the command sees EOF
// after it); nullopt means /dev/null, as for RunCommand.
CommandResult RunCommandWithInput(const std::vector<std::string>& argv,
                                  const std::optional<std::string>& input,
                                  absl::Duration timeout = absl::Seconds(30),
                                  const std::string& cwd = "",
                                  const std::map<std::string, std::string>& env = {});

}  // namespace amaters::server::testing

#endif  // AMATERS_SERVER_TESTING_PROCESS_H_
