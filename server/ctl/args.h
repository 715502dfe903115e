// amaters-ctl's command line: global options, one command and its arguments (Usage() below is
// the reference). Parsing is pure; server/ctl/ctl.h runs the result.
#ifndef AMATERS_SERVER_CTL_ARGS_H_
#define AMATERS_SERVER_CTL_ARGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace amaters::ctl {

inline constexpr char kDefaultEndpoint[] = "127.0.0.1:7878";

// Exit codes (docs/design.md §5: 0 on success, non-zero with a one-line error otherwise).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command failed (server error, unreachable, I/O)
inline constexpr int kExitUsage = 2;    // the command line is wrong

enum class Command : uint8_t {
  kHelp,
  kPut,
  kGet,
  kDel,
  kStatus,
  kSnapshotCreate,
  kSnapshotList,
  kMemberList,
  kMemberAdd,
  kMemberRemove,
  kMemberUpdate,
  kMemberPromote,
};

struct Options {
  // host:port, tried in order (status asks each one).
  std::vector<std::string> endpoints = {kDefaultEndpoint};
  bool json = false;
  // Bounds each RPC (one attempt at one endpoint).
  absl::Duration timeout = absl::Seconds(5);
  // Bounds connecting to one endpoint before moving on to the next.
  absl::Duration dial_timeout = absl::Seconds(2);
  // TLS when cacert is set; cert and key (both or neither) add a client certificate (mTLS).
  std::string cacert;
  std::string cert;
  std::string key;
};

struct Invocation {
  Options options;
  Command command = Command::kHelp;
  std::string command_name;  // as typed ("range" runs kGet), for messages
  // put: key, value. get/range/del: key and range_end with etcd's range semantics (empty
  // range_end = the single key; "\0" = every key >= key).
  std::string key;
  std::string range_end;
  std::string value;
  int64_t limit = 0;  // get/range: at most this many keys (0 = no limit)
  bool keys_only = false;
  // member add: the new member's name; remove/update/promote: its id (hex, as etcdctl).
  std::string member_name;
  uint64_t member_id = 0;
  // member add/update: --peer-urls; member add: --learner.
  std::vector<std::string> peer_urls;
  bool learner = false;
};

// Parses the arguments after the program name. kInvalidArgument with a message for the user
// (exit kExitUsage). `--help` anywhere (or `help`) yields Command::kHelp.
absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args);

// The --help text.
std::string Usage();

}  // namespace amaters::ctl

#endif  // AMATERS_SERVER_CTL_ARGS_H_
