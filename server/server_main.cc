// The amaters-server command line: commands, flags, configuration sources (server/main.cc).
#include "server/server_main.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/app.h"
#include "server/config/config.h"
#include "server/storage/restore.h"

extern char** environ;

// tcmalloc's C interface (gperftools), there when //third_party:tcmalloc is linked; weak, so
// that sanitizer builds, which bring their own malloc, link without it.
extern "C" int MallocExtension_SetNumericProperty(const char* property, size_t value)
    __attribute__((weak));

namespace amaters::server {
namespace {

constexpr const char* kUsage = R"(usage: amaters-server [COMMAND] [FLAGS]

Commands:
  start              run the server (the default)
  stop               send SIGTERM to the running server (its pid file) and wait for it to exit
  status             print the running server's /status (admin HTTP) and exit
  validate-config    load and check the configuration, print the effective values, and exit
  restore FILE       build the data directory (--data-dir or server.data_dir, which must not
                     exist or be empty) from a snapshot file saved with `etcdctl snapshot save`,
                     for disaster recovery (docs/snapshots.md); then start the server on it
  version            print the version and exit

Flags:
  --config=FILE              TOML configuration (docs/configuration-reference.md)
  --set=SECTION.KEY=VALUE    override one key (repeatable), e.g. --set=storage.wal.sync_mode=none
  --data-dir=DIR             = --set=server.data_dir=DIR
  --bind-address=HOST:PORT   = --set=server.bind_address=HOST:PORT (client gRPC, etcd v3 API)
  --metrics-address=HOST:PORT = --set=metrics.bind_address=HOST:PORT (admin HTTP)
  --node-id=N                = --set=cluster.node_id=N
  --peers=ID:HOST:PORT,...   = --set=cluster.peers=...
  --initial-cluster-state=new|existing
                             = --set=cluster.initial_cluster_state=... ("existing": join a
                               running cluster that added this node; docs/membership.md)
  --generate-config          print a commented configuration file with every default and exit
  --help                     this text

Precedence: defaults < --config file < AMATERS_* environment < flags.
Relative paths are resolved against the directory the command was started from.
)";

struct Args {
  std::string command = "start";
  std::string restore_file;  // restore FILE
  ConfigSources sources;
  bool generate_config = false;
  bool help = false;
};

absl::StatusOr<Args> ParseArgs(int argc, char** argv, const std::string& base_dir) {
  Args args;
  bool command_seen = false;
  const std::map<std::string, std::string> shortcuts = {
      {"--data-dir", "server.data_dir"},        {"--data_dir", "server.data_dir"},
      {"--bind-address", "server.bind_address"}, {"--bind_address", "server.bind_address"},
      {"--metrics-address", "metrics.bind_address"},
      {"--node-id", "cluster.node_id"},          {"--node_id", "cluster.node_id"},
      {"--peers", "cluster.peers"},
      {"--initial-cluster-state", "cluster.initial_cluster_state"},
      {"--initial_cluster_state", "cluster.initial_cluster_state"},
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    // "--flag value" is accepted as well as "--flag=value" for flags that take a value.
    auto value_of = [&](const std::string& flag) -> std::optional<std::string> {
      if (absl::StartsWith(a, flag + "=")) return a.substr(flag.size() + 1);
      if (a == flag && i + 1 < argc) return std::string(argv[++i]);
      return std::nullopt;
    };
    if (a == "--help" || a == "-h") {
      args.help = true;
    } else if (a == "--generate-config" || a == "--generate_config") {
      args.generate_config = true;
    } else if (a == "--version") {
      args.command = "version";
    } else if (auto v = value_of("--config")) {
      args.sources.file = ResolvePath(*v, base_dir);
    } else if (auto s = value_of("--set")) {
      args.sources.overrides.push_back(*s);
    } else if (absl::StartsWith(a, "-")) {
      const std::string name = a.substr(0, a.find('='));
      auto it = shortcuts.find(name);
      std::optional<std::string> value = it == shortcuts.end() ? std::nullopt : value_of(name);
      if (!value) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a, " (see --help)"));
      }
      args.sources.overrides.push_back(absl::StrCat(it->second, "=", *value));
    } else if (!command_seen) {
      static const char* kCommands[] = {"start", "stop", "status", "validate-config", "restore",
                                        "version"};
      bool known = false;
      for (const char* c : kCommands) known = known || a == c;
      if (!known) {
        return absl::InvalidArgumentError(absl::StrCat("unknown command \"", a, "\" (see --help)"));
      }
      args.command = a;
      command_seen = true;
    } else if (args.command == "restore" && args.restore_file.empty()) {
      args.restore_file = ResolvePath(a, base_dir);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", a, "\""));
    }
  }
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) args.sources.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return args;
}

// tcmalloc keeps up to 32 MiB of freed memory in per-thread caches by default; with the
// server's ~20 threads they held about 14 MiB of a node's ~75 MiB peak RSS under a put load.
// 4 MiB in total cost no measurable throughput (docs/snapshots.md, "Memory").
constexpr size_t kThreadCacheBytes = 4 << 20;

void BoundAllocatorCaches() {
  if (MallocExtension_SetNumericProperty == nullptr) return;  // not tcmalloc
  MallocExtension_SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", kThreadCacheBytes);
}

std::string BaseDir() {
  // `bazel run` starts us inside the runfiles tree; paths are relative to where the user was.
  if (const char* d = std::getenv("BUILD_WORKING_DIRECTORY"); d != nullptr && *d != '\0') return d;
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) != nullptr) return buf;
  return ".";
}

}  // namespace

int ServerMain(int argc, char** argv, TestFaults* test_faults) {
  // Debian's Abseil checks for lock-order cycles on every absl::Mutex acquisition (gRPC's locks
  // use it); that cost about 2.6 % of the server's CPU under load (bench/RESULTS.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  BoundAllocatorCaches();
  const std::string base_dir = BaseDir();
  absl::StatusOr<Args> args = ParseArgs(argc, argv, base_dir);
  if (!args.ok()) {
    std::cerr << "amaters-server: " << args.status().message() << "\n";
    return 2;
  }
  if (args->help) {
    std::cout << kUsage;
    return 0;
  }
  if (args->generate_config) {
    std::cout << GenerateDefaultConfig();
    return 0;
  }
  if (args->command == "version") {
    std::cout << "amaters-server " << kVersion << "\n";
    return 0;
  }
  absl::StatusOr<Config> config = LoadConfig(args->sources);
  if (!config.ok()) {
    std::cerr << "amaters-server: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  if (args->command == "validate-config") {
    std::cout << "configuration is valid"
              << (args->sources.file ? absl::StrCat(" (", *args->sources.file, ")") : "") << "\n";
    return 0;
  }
  if (args->command == "restore") {
    if (args->restore_file.empty()) {
      std::cerr << "amaters-server: restore needs the snapshot file: restore FILE --data-dir=DIR\n";
      return 2;
    }
    const std::string data_dir = ResolvePath(config->server.data_dir, base_dir);
    absl::StatusOr<storage::RestoreSummary> r =
        storage::RestoreDataDir(args->restore_file, data_dir);
    if (!r.ok()) {
      std::cerr << "amaters-server: restore failed: " << r.status().message() << "\n";
      return 1;
    }
    std::cout << "restored " << args->restore_file << " into " << data_dir << ": applied index "
              << r->applied_index << ", revision " << r->revision << ", " << r->keys
              << " keys (" << r->versions << " versions), " << r->leases << " leases, "
              << r->bytes << " bytes\n"
              << "start every member of the new cluster from a data directory restored from "
                 "this same file\n";
    return 0;
  }
  if (args->command == "stop") return StopCommand(*config, base_dir);
  if (args->command == "status") return StatusCommand(*config, base_dir);
  return RunServer(*config, args->sources, base_dir, test_faults);
}

}  // namespace amaters::server
