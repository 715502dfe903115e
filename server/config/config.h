// The server's configuration: the Config struct, loading it from a TOML file, the environment
// and overrides, validating it, and deciding what a SIGHUP reload may change.
//
// Precedence (docs/design.md §5): built-in defaults < TOML file < AMATERS_* environment < overrides
// (`--set section.key=value` flags). One table of keys (ConfigKeys()) drives the TOML reader, the
// environment names, the overrides, unknown-key detection, GenerateDefaultConfig() and the key
// tables of docs/configuration-reference.md (config_test checks that the document matches), so
// they cannot drift apart.
//
// Error contract: every problem is an absl::InvalidArgumentError whose message names where the
// value came from and the key, e.g.
//   config file /x/a.toml: line 7: [storage.wal] sync_mode = "sometimes": must be one of always, interval, none
//   config file /x/a.toml: line 3: unknown key [server] bind_adress (did you mean bind_address?)
//   environment AMATERS_CLUSTER_NODE_ID="abc": expected an integer
//   override cluster.peers="1:h": peer "1:h": expected id:host:port
// except a configuration file that does not exist (NotFound) or cannot be read (the errno's code).
//
// Paths (server.data_dir, server.pid_file, network.tls_*) are kept as written; the runtime
// resolves relative ones with ResolvePath against $BUILD_WORKING_DIRECTORY or the cwd.
#ifndef AMATERS_SERVER_CONFIG_CONFIG_H_
#define AMATERS_SERVER_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/wal/writer.h"

namespace amaters::server {

// One member of the cluster: `id:host:port` in the configuration. The host is kept as written
// (an IPv6 literal keeps its brackets: "2:[::1]:7879" has host "[::1]").
struct PeerAddress {
  uint64_t id = 0;
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;  // "host:port"
};

// The largest server.max_request_bytes (the engine's largest entry, 8 MiB).
inline constexpr uint64_t kMaxRequestBytesLimit = 8ull << 20;

struct Config {
  struct Server {
    std::string bind_address = "127.0.0.1:7878";  // client gRPC (etcd API)
    std::string data_dir = "./data";
    std::string pid_file;                         // empty = "<data_dir>/amaters-server.pid"
    uint64_t shutdown_timeout_ms = 10000;         // graceful shutdown bound
    uint64_t max_request_bytes = 1572864;         // 1.5 MiB, etcd's default
    uint64_t max_key_bytes = 4096;
    uint64_t max_value_bytes = 1048576;
    uint64_t max_inflight_requests = 10000;  // pending proposals+reads (RESOURCE_EXHAUSTED beyond)
    uint64_t request_timeout_ms = 5000;  // a client request not done by then fails UNAVAILABLE/DEADLINE
  } server;
  struct Storage {
    // Disk-space probe: free >= min_free_bytes Healthy, >= min_free_bytes / 4 Degraded, else
    // Unhealthy and client writes are refused (docs/failover-and-alerts.md).
    uint64_t min_free_bytes = 1ull << 30;
    // Snapshots (docs/snapshots.md).
    uint64_t snapshot_threshold_entries = 10000;  // applied entries between snapshots (0: never)
    uint64_t snapshot_catchup_entries = 5000;     // entries kept below a snapshot
    uint64_t max_snapshots = 3;                   // snapshots kept on disk
    uint64_t snapshot_chunk_kb = 1024;            // InstallSnapshot chunk size
    // Auto-compaction of the revision history (engine/kv/auto_compaction.h).
    std::string auto_compaction_mode = "revision";  // revision | periodic
    std::string auto_compaction_retention = "10000";  // revisions, or a duration; "0" = off
    uint64_t lease_checkpoint_interval_ms = 300000;   // leader records remaining lease TTLs (0: never)
    struct Wal {
      uint64_t segment_size_mb = 64;
      std::string sync_mode = "always";  // always | interval | none
      uint64_t sync_interval_ms = 100;   // interval mode only
    } wal;
  } storage;
  struct Network {
    bool tls_enabled = false;
    std::string tls_cert, tls_key, tls_ca;
    bool require_client_cert = false;
    uint64_t peer_queue_max_messages = 4096;  // per peer outgoing queue bound
  } network;
  struct Cluster {
    uint64_t node_id = 1;
    std::vector<PeerAddress> peers;  // TOML: peers = ["1:127.0.0.1:7879", ...]; empty = single node
    // "new": bootstrap a cluster of `peers`; "existing": join a running one (docs/membership.md).
    std::string initial_cluster_state = "new";
    uint64_t heartbeat_interval_ms = 100;   // = the Raft tick
    uint64_t election_timeout_ms = 300;     // >= 3 * heartbeat; the base follower timeout
    uint64_t election_jitter_min_ms = 150;  // a follower campaigns after the timeout plus a
    uint64_t election_jitter_max_ms = 300;  // jitter drawn from [min, max] (> min)
    std::string cluster_token = "amaters";  // hashed (with the peer list) into cluster_id
    uint64_t max_consecutive_failures = 3;  // silent heartbeat rounds before a peer is failed
    uint64_t slow_replication_threshold_entries = 1000;  // leader: lag that raises slow_replication
  } cluster;
  struct Alerts {
    uint64_t dedup_window_ms = 300000;  // the same dedup key fires at most once per window
    std::string webhook_url;            // empty: no webhook; else http(s)://host[:port]/path
    uint64_t webhook_timeout_ms = 2000;
    uint64_t webhook_max_retries = 3;
  } alerts;
  struct Logging {
    std::string level = "info";   // debug|info|warn|error
    std::string format = "text";  // text|json
  } logging;
  struct Metrics {
    bool enabled = true;
    std::string bind_address = "127.0.0.1:9090";
  } metrics;
};

// Where LoadConfig reads from.
struct ConfigSources {
  // Path of the TOML file, used as given (resolve it before). nullopt: no file, defaults only.
  std::optional<std::string> file;
  // The process environment. Only AMATERS_* names matter: each config key has one
  // (ConfigKeyInfo::env_var); IsReservedEnvName() names are skipped; any other AMATERS_* name
  // is an error (a misspelt variable would otherwise be ignored silently).
  std::map<std::string, std::string> env;
  // "section.key=value", applied in order (a later one wins), e.g. "server.bind_address=127.0.0.1:1",
  // "storage.wal.sync_mode=none", "cluster.peers=1:127.0.0.1:7879,2:127.0.0.1:7889".
  std::vector<std::string> overrides;
};

// Defaults, then the file, the environment and the overrides; then Validate. Errors: see the
// top of this file. A validation error that involves several keys (say election_timeout_ms
// against heartbeat_interval_ms) also says which source set each of them.
absl::StatusOr<Config> LoadConfig(const ConfigSources& sources);

// Every rule a configuration must satisfy: the per-key rules listed in ConfigKeys()
// (ranges, allowed values, address syntax) and these across keys:
//   - cluster.peers: ids > 0 and unique, addresses unique, and when non-empty it contains
//     cluster.node_id (a node listens for peers on its own entry);
//   - cluster.election_timeout_ms >= 3 * cluster.heartbeat_interval_ms;
//   - network.tls_enabled needs tls_cert and tls_key; require_client_cert needs tls_enabled
//     and tls_ca;
//   - server.bind_address, metrics.bind_address and this node's peer address are distinct
//     listening addresses (also across a wildcard host, 0.0.0.0 or [::], on the same port).
// Returns the first violation as InvalidArgument, e.g.
//   [cluster] election_timeout_ms = 200: must be at least 3 * heartbeat_interval_ms (300)
absl::Status Validate(const Config& config);

// "id:host:port": id a decimal > 0, host non-empty without spaces or commas (an IPv6 literal in
// brackets), port 1..65535.
absl::StatusOr<PeerAddress> ParsePeer(const std::string& spec);

// A listening address "host:port" (port 1..65535, IPv6 host in brackets); host kept as written.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(const std::string& address);

// `path` if absolute or empty, else base_dir/path (a leading "./" dropped).
std::string ResolvePath(const std::string& path, const std::string& base_dir);

// server.pid_file, or <data_dir>/amaters-server.pid when that is empty (not resolved).
std::string PidFilePath(const Config& config);

// storage.wal.sync_mode as the WAL's enum, and the whole [storage.wal] section as writer
// options (segment_size_mb * 2^20 bytes; max_batch_bytes keeps the writer's default).
absl::StatusOr<wal::SyncMode> WalSyncMode(const Config& config);
absl::StatusOr<wal::WriterOptions> WalWriterOptions(const Config& config);

// A complete TOML file with every key at its default, each with a one-line comment saying what
// it does and whether SIGHUP reloads it (`amaters-server --generate-config`). LoadConfig of this
// text gives exactly Config{}.
std::string GenerateDefaultConfig();

// SIGHUP: the running configuration and the one just re-read (LoadConfig, so valid).
struct ReloadPlan {
  Config next;                       // running, with the reloadable keys taken from the re-read one
  std::vector<std::string> applied;  // dotted keys that changed and apply live (key table order)
  std::vector<std::string> ignored;  // dotted keys that changed but need a restart
};
// Reloadable: logging.level, logging.format, server.max_request_bytes, server.max_key_bytes,
// server.max_value_bytes, server.max_inflight_requests, server.request_timeout_ms,
// server.shutdown_timeout_ms (ConfigKeyInfo::reloadable). Every cross-key rule of Validate
// involves only non-reloadable keys, so `next` is valid when both inputs are. TLS certificate
// and key *contents* are re-read by the runtime on SIGHUP; their paths are not reloadable.
ReloadPlan PlanReload(const Config& running, const Config& reread);

// ---- The key table -----------------------------------------------------------------------

enum class ConfigKeyType { kString, kInteger, kBoolean, kPeerList };
const char* ConfigKeyTypeName(ConfigKeyType type);  // "string", "integer", "boolean", "array of strings"

struct ConfigKeyInfo {
  std::string key;            // dotted: "storage.wal.sync_mode"
  std::string section;        // TOML table: "storage.wal"
  std::string name;           // key within the table: "sync_mode"
  std::string env_var;        // "AMATERS_STORAGE_WAL_SYNC_MODE"
  ConfigKeyType type = ConfigKeyType::kString;
  std::string default_value;  // as a TOML literal: "\"always\"", "64", "true", "[]"
  bool reloadable = false;    // applied on SIGHUP (else needs a restart)
  std::string description;    // one line, including the allowed values or range
};
// Every key, in the order of the generated file (sections in order, keys in struct order).
const std::vector<ConfigKeyInfo>& ConfigKeys();
// The sections, in order: "server", "storage", "storage.wal", "network", "cluster", "logging",
// "metrics" ("storage" holds only the [storage.wal] table).
const std::vector<std::string>& ConfigSections();

// The value of `key` (dotted) as a TOML literal; NotFound for an unknown key.
absl::StatusOr<std::string> FormatConfigValue(const Config& config, const std::string& key);

// AMATERS_* names that are not configuration and that LoadConfig skips: the prefixes
// AMATERS_TEST_, AMATERS_SIM_, AMATERS_BENCH_, AMATERS_FUZZ_ and the names AMATERS_SEED,
// AMATERS_KV_SEED, AMATERS_REWRITE (used by tests, the simulator and tooling).
bool IsReservedEnvName(const std::string& name);

// The Markdown key tables of docs/configuration-reference.md (one table per section), between
// the markers kDocsBeginMarker and kDocsEndMarker.
std::string GenerateReferenceTables();
inline constexpr char kDocsBeginMarker[] =
    "<!-- BEGIN GENERATED KEY TABLES (server/config: AMATERS_REWRITE=1 ./bazelw run "
    "//server/config:docs_test) -->";
inline constexpr char kDocsEndMarker[] = "<!-- END GENERATED KEY TABLES -->";

}  // namespace amaters::server

#endif  // AMATERS_SERVER_CONFIG_CONFIG_H_
