#include "server/ctl/args.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "engine/kv/state_machine.h"

namespace amaters::ctl {
namespace {

absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status ParseBool(absl::string_view name, absl::string_view value, bool* out) {
  if (value == "true" || value == "1") {
    *out = true;
  } else if (value == "false" || value == "0") {
    *out = false;
  } else {
    return UsageError(absl::StrCat("--", name, " takes true or false, not \"", value, "\""));
  }
  return absl::OkStatus();
}

absl::Status ParsePositiveDuration(absl::string_view name, absl::string_view value,
                                   absl::Duration* out) {
  if (!absl::ParseDuration(value, out) || *out <= absl::ZeroDuration() ||
      *out == absl::InfiniteDuration()) {
    return UsageError(absl::StrCat("--", name,
                                   " takes a positive duration such as 5s or 500ms, not \"", value,
                                   "\""));
  }
  return absl::OkStatus();
}

absl::Status ParseEndpoints(absl::string_view value, std::vector<std::string>* out,
                            bool* https) {
  out->clear();
  *https = false;
  for (absl::string_view part : absl::StrSplit(value, ',')) {
    absl::string_view ep = absl::StripAsciiWhitespace(part);
    // etcdctl users write URLs; gRPC wants host:port.
    if (absl::ConsumePrefix(&ep, "https://")) {
      *https = true;
    } else {
      absl::ConsumePrefix(&ep, "http://");
    }
    absl::ConsumeSuffix(&ep, "/");
    if (ep.empty() || !absl::StrContains(ep, ':')) {
      return UsageError(absl::StrCat("--endpoints: \"", part, "\" is not host:port"));
    }
    out->push_back(std::string(ep));
  }
  return absl::OkStatus();
}

// The flags that take a value ("--name=value" or "--name value").
bool TakesValue(absl::string_view name) {
  return name == "endpoints" || name == "timeout" || name == "command-timeout" ||
         name == "dial-timeout" || name == "cacert" || name == "cert" || name == "key" ||
         name == "write-out" || name == "w" || name == "limit" || name == "peer-urls";
}

bool IsBoolFlag(absl::string_view name) {
  return name == "json" || name == "prefix" || name == "from-key" || name == "keys-only" ||
         name == "help" || name == "h" || name == "learner";
}

struct Flags {
  bool prefix = false;
  bool from_key = false;
  bool limit_set = false;
  bool keys_only_set = false;
  bool help = false;
  bool https = false;  // an endpoint was written https://...
  bool member_flags = false;  // --peer-urls or --learner
};

absl::Status ApplyFlag(absl::string_view name, absl::string_view value, bool has_value,
                       Invocation* inv, Flags* flags) {
  Options& o = inv->options;
  if (IsBoolFlag(name)) {
    bool b = true;
    if (has_value) {
      absl::Status s = ParseBool(name, value, &b);
      if (!s.ok()) return s;
    }
    if (name == "json") o.json = b;
    if (name == "prefix") flags->prefix = b;
    if (name == "from-key") flags->from_key = b;
    if (name == "keys-only") {
      inv->keys_only = b;
      flags->keys_only_set = true;
    }
    if (name == "help" || name == "h") flags->help = b;
    if (name == "learner") {
      inv->learner = b;
      flags->member_flags = true;
    }
    return absl::OkStatus();
  }
  if (name == "endpoints") return ParseEndpoints(value, &o.endpoints, &flags->https);
  if (name == "timeout" || name == "command-timeout") {
    return ParsePositiveDuration(name, value, &o.timeout);
  }
  if (name == "dial-timeout") return ParsePositiveDuration(name, value, &o.dial_timeout);
  if (name == "cacert") o.cacert = std::string(value);
  if (name == "cert") o.cert = std::string(value);
  if (name == "key") o.key = std::string(value);
  if (name == "write-out" || name == "w") {
    if (value == "json") {
      o.json = true;
    } else if (value == "simple") {
      o.json = false;
    } else {
      return UsageError(absl::StrCat("--write-out takes simple or json, not \"", value, "\""));
    }
  }
  if (name == "peer-urls") {
    flags->member_flags = true;
    inv->peer_urls.clear();
    for (absl::string_view url : absl::StrSplit(value, ',', absl::SkipWhitespace())) {
      inv->peer_urls.emplace_back(absl::StripAsciiWhitespace(url));
    }
    if (inv->peer_urls.empty()) return UsageError("--peer-urls needs at least one URL");
  }
  if (name == "limit") {
    if (!absl::SimpleAtoi(value, &inv->limit) || inv->limit < 0) {
      return UsageError(absl::StrCat("--limit takes a number >= 0, not \"", value, "\""));
    }
    flags->limit_set = true;
  }
  return absl::OkStatus();
}

absl::Status CheckArgCount(absl::string_view command, const std::vector<std::string>& args,
                           size_t min, size_t max, absl::string_view synopsis) {
  if (args.size() < min || args.size() > max) {
    return UsageError(absl::StrCat(command, ": expected ", synopsis, ", got ", args.size(),
                                   args.size() == 1 ? " argument" : " arguments"));
  }
  return absl::OkStatus();
}

// get/del KEY [RANGE_END] with --prefix / --from-key, as etcdctl builds the range.
absl::Status BuildRange(absl::string_view command, const std::vector<std::string>& args,
                        const Flags& flags, Invocation* inv) {
  absl::Status s = CheckArgCount(command, args, 1, 2, "KEY [RANGE_END]");
  if (!s.ok()) return s;
  if (flags.prefix && flags.from_key) {
    return UsageError(absl::StrCat(command, ": --prefix and --from-key exclude each other"));
  }
  inv->key = args[0];
  if (args.size() == 2) {
    if (flags.prefix || flags.from_key) {
      return UsageError(
          absl::StrCat(command, ": RANGE_END cannot be given with --prefix or --from-key"));
    }
    inv->range_end = args[1];
  }
  const std::string kFromKey(1, '\0');
  if (flags.prefix) {
    // etcd's WithPrefix; an empty prefix selects every key (clientv3: key = end = "\0").
    if (inv->key.empty()) {
      inv->key = kFromKey;
      inv->range_end = kFromKey;
    } else {
      inv->range_end = kv::PrefixEnd(inv->key);
    }
  }
  if (flags.from_key) {
    if (inv->key.empty()) inv->key = kFromKey;
    inv->range_end = kFromKey;
  }
  return absl::OkStatus();
}

// member list|add NAME|remove ID|update ID|promote ID, etcdctl's synopsis.
absl::Status BuildMember(const std::vector<std::string>& args, const Flags& flags,
                         Invocation* inv) {
  if (args.empty()) {
    return UsageError("member: expected list, add, remove, update or promote");
  }
  const std::string& sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  inv->command_name = absl::StrCat("member ", sub);
  absl::Status s;
  if (sub == "list") {
    inv->command = Command::kMemberList;
    s = CheckArgCount(inv->command_name, rest, 0, 0, "no arguments");
  } else if (sub == "add") {
    inv->command = Command::kMemberAdd;
    s = CheckArgCount(inv->command_name, rest, 1, 1, "NAME");
    if (s.ok()) inv->member_name = rest[0];
    if (s.ok() && inv->peer_urls.empty()) s = UsageError("member add: --peer-urls is required");
  } else if (sub == "remove" || sub == "update" || sub == "promote") {
    inv->command = sub == "remove"   ? Command::kMemberRemove
                   : sub == "update" ? Command::kMemberUpdate
                                     : Command::kMemberPromote;
    s = CheckArgCount(inv->command_name, rest, 1, 1, "ID (hex, as member list prints it)");
    if (s.ok() && (!absl::SimpleHexAtoi(rest[0], &inv->member_id) || inv->member_id == 0)) {
      s = UsageError(absl::StrCat(inv->command_name, ": \"", rest[0],
                                  "\" is not a member id (hex, as member list prints it)"));
    }
    if (s.ok() && sub == "update" && inv->peer_urls.empty()) {
      s = UsageError("member update: --peer-urls is required");
    }
  } else {
    return UsageError(absl::StrCat("member: unknown subcommand \"", sub,
                                   "\" (list, add, remove, update or promote)"));
  }
  if (!s.ok()) return s;
  const bool urls_allowed = sub == "add" || sub == "update";
  if ((!urls_allowed && !inv->peer_urls.empty()) || (sub != "add" && inv->learner)) {
    return UsageError(absl::StrCat(inv->command_name, ": --peer-urls is for member add and "
                                   "update, --learner for member add"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Invocation> ParseArgs(const std::vector<std::string>& args) {
  Invocation inv;
  Flags flags;
  std::vector<std::string> positional;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    absl::string_view body = arg;
    if (!absl::ConsumePrefix(&body, "--")) absl::ConsumePrefix(&body, "-");
    std::string name;
    std::string value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
      has_value = true;
    } else {
      name = std::string(body);
    }
    // Single-dash spellings: -h and -w only (etcdctl's).
    if (arg[1] != '-' && name != "h" && name != "w") {
      return UsageError(absl::StrCat("unknown flag ", arg, " (flags are spelled --name)"));
    }
    if (!TakesValue(name) && !IsBoolFlag(name)) {
      return UsageError(absl::StrCat("unknown flag --", name));
    }
    if (TakesValue(name) && !has_value) {
      if (i + 1 >= args.size()) return UsageError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
      has_value = true;
    }
    absl::Status s = ApplyFlag(name, value, has_value, &inv, &flags);
    if (!s.ok()) return s;
  }

  if (flags.help || positional.empty() || positional[0] == "help") {
    inv.command = Command::kHelp;
    if (positional.empty() && !flags.help) return UsageError("no command given");
    return inv;
  }

  const Options& o = inv.options;
  if (o.cert.empty() != o.key.empty()) {
    return UsageError("--cert and --key go together (a client certificate and its key)");
  }
  if (!o.cert.empty() && o.cacert.empty()) {
    return UsageError("--cert and --key need --cacert (TLS is on only with --cacert)");
  }
  if (flags.https && o.cacert.empty()) {
    return UsageError("--endpoints: https:// endpoints need --cacert");
  }

  const std::string command = positional[0];
  inv.command_name = command;
  std::vector<std::string> rest(positional.begin() + 1, positional.end());
  const bool range_flags = flags.limit_set || flags.keys_only_set;
  const bool key_flags = flags.prefix || flags.from_key;
  absl::Status s;
  if (command == "put") {
    inv.command = Command::kPut;
    s = CheckArgCount(command, rest, 2, 2, "KEY VALUE");
    if (s.ok()) {
      inv.key = rest[0];
      inv.value = rest[1];
    }
    if (s.ok() && (range_flags || key_flags)) {
      s = UsageError("put: --prefix, --from-key, --limit and --keys-only are for get/range/del");
    }
  } else if (command == "get") {
    inv.command = Command::kGet;
    s = BuildRange(command, rest, flags, &inv);
  } else if (command == "range") {
    inv.command = Command::kGet;
    s = CheckArgCount(command, rest, 2, 2, "START END");
    if (s.ok() && key_flags) s = UsageError("range: --prefix and --from-key are for get and del");
    if (s.ok()) {
      inv.key = rest[0];
      inv.range_end = rest[1];
    }
  } else if (command == "del" || command == "delete") {
    inv.command = Command::kDel;
    s = BuildRange(command, rest, flags, &inv);
    if (s.ok() && range_flags) s = UsageError("del: --limit and --keys-only are for get and range");
  } else if (command == "status") {
    inv.command = Command::kStatus;
    s = CheckArgCount(command, rest, 0, 0, "no arguments");
    if (s.ok() && (range_flags || key_flags)) {
      s = UsageError("status: takes no command flags");
    }
  } else if (command == "snapshot") {
    s = CheckArgCount(command, rest, 1, 1, "create|list");
    if (s.ok() && rest[0] == "create") {
      inv.command = Command::kSnapshotCreate;
    } else if (s.ok() && rest[0] == "list") {
      inv.command = Command::kSnapshotList;
    } else if (s.ok()) {
      s = UsageError(absl::StrCat("snapshot: unknown subcommand \"", rest[0], "\" (create or list)"));
    }
    if (s.ok()) inv.command_name = absl::StrCat("snapshot ", rest[0]);
    if (s.ok() && (range_flags || key_flags)) s = UsageError("snapshot: takes no command flags");
  } else if (command == "member") {
    s = BuildMember(rest, flags, &inv);
    if (s.ok() && (range_flags || key_flags)) {
      s = UsageError(absl::StrCat(inv.command_name, ": --prefix, --from-key, --limit and "
                                  "--keys-only are for get/range/del"));
    }
  } else {
    s = UsageError(absl::StrCat("unknown command \"", command, "\""));
  }
  if (s.ok() && flags.member_flags && command != "member") {
    s = UsageError(absl::StrCat(command, ": --peer-urls and --learner are for member commands"));
  }
  if (!s.ok()) return s;
  return inv;
}

std::string Usage() {
  return absl::StrCat(R"(amaters-ctl: a client for amaters-server (etcd v3 API over gRPC)

Usage: amaters-ctl [flags] COMMAND [ARGS]

Commands:
  put KEY VALUE           write KEY; prints OK
  get KEY [RANGE_END]     read KEY (or [KEY, RANGE_END)); prints a key line and a value line
                          per key, nothing for a missing key (exit 0, like etcdctl)
      --prefix            every key that starts with KEY ("" = every key)
      --from-key          every key >= KEY
      --limit=N           at most N keys (0 = all)
      --keys-only         keys without values
  range START END         read [START, END) (same output and flags as get)
  del KEY [RANGE_END]     delete KEY (or [KEY, RANGE_END)); prints the number deleted
      --prefix, --from-key  as for get
  status                  ask every endpoint; one line each:
                          endpoint, member id, leader id, raft term, raft index, db size,
                          is leader (ids in hex, as etcdctl prints them)
  snapshot create         the first endpoint's node snapshots its state now; prints the
                          index the snapshot covers once it is durable
  snapshot list           the snapshots the first endpoint's node keeps, oldest first: one
                          line each, index, checkpoint bytes, exported file bytes; then the
                          newest snapshot in the WAL and the first index still in the log
  member list             the cluster's members, one line each: id (hex), started or
                          unstarted (no client URL known yet), name, peer URLs, client
                          URLs, is learner (etcdctl's format)
  member add NAME --peer-urls=URL[,URL...] [--learner]
                          add a member (a learner with --learner); prints its id and the
                          [cluster] settings its node starts with (docs/membership.md)
  member remove ID        remove the member with this id (hex, as member list prints it)
  member update ID --peer-urls=URL[,URL...]
                          replace the member's peer URLs
  member promote ID       make a learner a voter; refused until it is caught up
  help                    this text

Flags:
  --endpoints=HOST:PORT[,HOST:PORT...]  default )",
                      kDefaultEndpoint, R"(. Commands other than status use the
                          first endpoint that answers. An endpoint that cannot be reached (or
                          does not connect within --dial-timeout) is skipped; so is one that
                          answers UNAVAILABLE to get. put and del are not resent once a
                          connected endpoint may have received them (they could apply twice).
  --json                  machine-readable JSON output (-w json / --write-out=json too). Keys
                          and values are base64-encoded in JSON, as etcdctl does, since they
                          are arbitrary bytes; ids and numbers are JSON numbers.
  --timeout=DURATION      deadline of each request, default 5s (e.g. 500ms, 10s)
  --dial-timeout=DURATION how long to wait for a connection to one endpoint, default 2s
  --cacert=FILE           use TLS, trusting the CA certificates in FILE
  --cert=FILE --key=FILE  client certificate and key (mutual TLS); need --cacert
  --help, -h              this text

Arguments that start with '-' go after "--": amaters-ctl put -- -k -v

Exit status: 0 on success; 1 when the command fails (one line on stderr:
"amaters-ctl: COMMAND: CODE: message"); 2 for a usage error.
)");
}

}  // namespace amaters::ctl
