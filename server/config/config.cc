#include "server/config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "engine/kv/auto_compaction.h"

// Debian's toml++ is a compiled library (-ltomlplusplus); its pkg-config sets these two (also in
// the BUILD copts; repeated here so the include never silently turns header-only).
#ifndef TOML_HEADER_ONLY
#define TOML_HEADER_ONLY 0
#endif
#ifndef TOML_SHARED_LIB
#define TOML_SHARED_LIB 1
#endif
#include <toml++/toml.h>

namespace amaters::server {
namespace {

// The engine refuses entries above node::Options::max_entry_bytes (8 MiB); a request larger
// than that could never be proposed.
// A configuration file is a few kilobytes; anything this large is a mistake.
constexpr uint64_t kMaxConfigFileBytes = 1ull << 20;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

using FieldRef = std::variant<std::string*, uint64_t*, bool*, std::vector<PeerAddress>*>;

// One configuration key: its public description plus how to reach and check the field.
struct KeyDef {
  ConfigKeyInfo info;
  FieldRef (*field)(Config&) = nullptr;
  uint64_t min = 0;                  // integers
  uint64_t max = kU64Max;            // integers
  std::vector<std::string> choices;  // strings with a fixed set of values
  bool address = false;              // strings that are host:port listening addresses
  bool non_empty = false;            // strings that must not be empty
};

#define AMATERS_FIELD(member) [](Config& c) -> FieldRef { return &c.member; }

// ---- Value formatting --------------------------------------------------------------------

std::string TomlQuote(absl::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789ABCDEF";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += ch;
        }
    }
  }
  out += "\"";
  return out;
}

std::string PeersLiteral(const std::vector<PeerAddress>& peers) {
  std::vector<std::string> items;
  items.reserve(peers.size());
  for (const PeerAddress& p : peers) items.push_back(TomlQuote(absl::StrCat(p.id, ":", p.ToString())));
  return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
}

struct LiteralVisitor {
  std::string operator()(std::string* v) const { return TomlQuote(*v); }
  std::string operator()(uint64_t* v) const { return absl::StrCat(*v); }
  std::string operator()(bool* v) const { return *v ? "true" : "false"; }
  std::string operator()(std::vector<PeerAddress>* v) const { return PeersLiteral(*v); }
};

std::string Literal(const KeyDef& def, const Config& config) {
  // The accessor needs a mutable Config; this path only reads.
  return std::visit(LiteralVisitor{}, def.field(const_cast<Config&>(config)));
}

// ---- The key table -----------------------------------------------------------------------

std::string EnvName(absl::string_view dotted) {
  return absl::StrCat("AMATERS_", absl::AsciiStrToUpper(absl::StrReplaceAll(dotted, {{".", "_"}})));
}

std::string RangeText(const KeyDef& def) {
  if (def.max == kU64Max) return absl::StrCat("at least ", def.min);
  return absl::StrCat(def.min, "..", def.max);
}

KeyDef Make(const char* key, ConfigKeyType type, FieldRef (*field)(Config&), bool reloadable,
            const char* description) {
  KeyDef def;
  def.info.key = key;
  const absl::string_view dotted(key);
  const size_t dot = dotted.rfind('.');
  def.info.section = std::string(dotted.substr(0, dot));
  def.info.name = std::string(dotted.substr(dot + 1));
  def.info.env_var = EnvName(dotted);
  def.info.type = type;
  def.info.reloadable = reloadable;
  def.info.description = description;
  def.field = field;
  return def;
}

KeyDef Int(const char* key, FieldRef (*field)(Config&), uint64_t min, uint64_t max, bool reloadable,
           const char* description) {
  KeyDef def = Make(key, ConfigKeyType::kInteger, field, reloadable, description);
  def.min = min;
  def.max = max;
  return def;
}
KeyDef Str(const char* key, FieldRef (*field)(Config&), bool non_empty, bool reloadable,
           const char* description) {
  KeyDef def = Make(key, ConfigKeyType::kString, field, reloadable, description);
  def.non_empty = non_empty;
  return def;
}
KeyDef Choice(const char* key, FieldRef (*field)(Config&), std::vector<std::string> choices,
              bool reloadable, const char* description) {
  KeyDef def = Make(key, ConfigKeyType::kString, field, reloadable, description);
  def.choices = std::move(choices);
  return def;
}
KeyDef Address(const char* key, FieldRef (*field)(Config&), bool reloadable, const char* description) {
  KeyDef def = Make(key, ConfigKeyType::kString, field, reloadable, description);
  def.address = true;
  return def;
}
KeyDef Bool(const char* key, FieldRef (*field)(Config&), bool reloadable, const char* description) {
  return Make(key, ConfigKeyType::kBoolean, field, reloadable, description);
}
KeyDef Peers(const char* key, FieldRef (*field)(Config&), bool reloadable, const char* description) {
  return Make(key, ConfigKeyType::kPeerList, field, reloadable, description);
}

constexpr bool kReload = true;
constexpr bool kRestart = false;

std::vector<KeyDef> BuildKeyDefs() {
  std::vector<KeyDef> defs = {
      // [server]
      Address("server.bind_address", AMATERS_FIELD(server.bind_address), kRestart,
              "Client gRPC listen address (etcd v3 API: KV, Maintenance, Cluster)."),
      Str("server.data_dir", AMATERS_FIELD(server.data_dir), /*non_empty=*/true, kRestart,
          "Data directory (WAL segments and RocksDB state); relative paths are resolved against "
          "the directory the server was started in."),
      Str("server.pid_file", AMATERS_FIELD(server.pid_file), /*non_empty=*/false, kRestart,
          "PID file written at start and removed at exit; empty means `<data_dir>/amaters-server.pid`."),
      Int("server.shutdown_timeout_ms", AMATERS_FIELD(server.shutdown_timeout_ms), 100, 600000, kReload,
          "Bound on a graceful shutdown (SIGTERM/SIGINT): after it, in-flight requests are abandoned."),
      Int("server.max_request_bytes", AMATERS_FIELD(server.max_request_bytes), 1, kMaxRequestBytesLimit,
          kReload,
          "Largest client request accepted, in bytes (etcd's --max-request-bytes; at most 8 MiB, the "
          "engine's largest entry)."),
      Int("server.max_key_bytes", AMATERS_FIELD(server.max_key_bytes), 1, kMaxRequestBytesLimit, kReload,
          "Largest key accepted, in bytes."),
      Int("server.max_value_bytes", AMATERS_FIELD(server.max_value_bytes), 1, kMaxRequestBytesLimit,
          kReload, "Largest value accepted, in bytes."),
      Int("server.max_inflight_requests", AMATERS_FIELD(server.max_inflight_requests), 1, 1000000, kRestart,
          "Client requests accepted and not yet answered (every kind, forwarded ones "
          "included; also the bound on requests waiting in the node or for a retry); a request "
          "beyond this fails at once with RESOURCE_EXHAUSTED \"etcdserver: too many requests\"."),
      Int("server.request_timeout_ms", AMATERS_FIELD(server.request_timeout_ms), 1, 600000, kRestart,
          "A client request not completed within this fails (UNAVAILABLE or DEADLINE_EXCEEDED)."),
      // [storage]
      Int("storage.min_free_bytes", AMATERS_FIELD(storage.min_free_bytes), 1, kU64Max, kReload,
          "Disk-space probe on the data directory's file system: free space at or above this is "
          "healthy, at or above a quarter of it degraded, below that unhealthy, and client writes "
          "are refused until space is freed."),
      Int("storage.snapshot_threshold_entries", AMATERS_FIELD(storage.snapshot_threshold_entries),
          0, kU64Max, kRestart,
          "Applied entries between two snapshots of the state; 0 never snapshots (the log and the "
          "WAL then grow forever)."),
      Int("storage.snapshot_catchup_entries", AMATERS_FIELD(storage.snapshot_catchup_entries), 0,
          kU64Max, kRestart,
          "Entries kept in the log and the WAL below a snapshot, so that a briefly slow follower "
          "catches up from the log instead of by a snapshot."),
      Int("storage.max_snapshots", AMATERS_FIELD(storage.max_snapshots), 1, 100, kRestart,
          "Snapshots kept on disk; older ones are deleted."),
      Int("storage.snapshot_chunk_kb", AMATERS_FIELD(storage.snapshot_chunk_kb), 1, 8192, kRestart,
          "Size of the chunks a leader streams a snapshot in, in KiB."),
      Choice("storage.auto_compaction_mode", AMATERS_FIELD(storage.auto_compaction_mode),
             {"revision", "periodic"}, kRestart,
             "How the leader compacts the revision history (etcd's --auto-compaction-mode): "
             "revision keeps the last auto_compaction_retention revisions (checked every 5 "
             "minutes); periodic keeps what is younger than the auto_compaction_retention "
             "duration."),
      Str("storage.auto_compaction_retention", AMATERS_FIELD(storage.auto_compaction_retention),
          /*non_empty=*/true, kRestart,
          "Revisions to keep (revision mode), or a duration such as \"30m\" or \"1h\" (periodic "
          "mode; a bare number counts hours, as etcd); \"0\" turns auto-compaction off and the "
          "history then grows until an explicit compaction (etcdctl compaction)."),
      Int("storage.lease_checkpoint_interval_ms",
          AMATERS_FIELD(storage.lease_checkpoint_interval_ms), 0, 86400000, kRestart,
          "How often the leader records each lease's remaining TTL through Raft, so that a new "
          "leader or a restarted cluster continues from it instead of from the full TTL "
          "(docs/leases.md); 0 never records it."),
      // [storage.wal]
      Int("storage.wal.segment_size_mb", AMATERS_FIELD(storage.wal.segment_size_mb), 1, 1024, kRestart,
          "WAL segment file size in MiB; a new segment is started when the next record would not fit."),
      Choice("storage.wal.sync_mode", AMATERS_FIELD(storage.wal.sync_mode), {"always", "interval", "none"},
             kRestart,
             "always: fdatasync before acknowledging (survives power loss); interval: fdatasync every "
             "sync_interval_ms; none: never (survives a process crash only)."),
      Int("storage.wal.sync_interval_ms", AMATERS_FIELD(storage.wal.sync_interval_ms), 1, 60000, kRestart,
          "fdatasync period in sync_mode = \"interval\" (ignored otherwise)."),
      // [network]
      Bool("network.tls_enabled", AMATERS_FIELD(network.tls_enabled), kRestart,
           "Serve the client and peer ports over TLS (needs tls_cert and tls_key)."),
      Str("network.tls_cert", AMATERS_FIELD(network.tls_cert), /*non_empty=*/false, kRestart,
          "PEM certificate (chain) file; its contents are re-read on SIGHUP, the path is not."),
      Str("network.tls_key", AMATERS_FIELD(network.tls_key), /*non_empty=*/false, kRestart,
          "PEM private key file; its contents are re-read on SIGHUP, the path is not."),
      Str("network.tls_ca", AMATERS_FIELD(network.tls_ca), /*non_empty=*/false, kRestart,
          "PEM CA bundle that verifies client and peer certificates; contents re-read on SIGHUP."),
      Bool("network.require_client_cert", AMATERS_FIELD(network.require_client_cert), kRestart,
           "Mutual TLS: refuse clients without a certificate signed by tls_ca (needs tls_enabled)."),
      Int("network.peer_queue_max_messages", AMATERS_FIELD(network.peer_queue_max_messages), 1, 1000000,
          kRestart, "Bound on each peer's outgoing message queue; messages beyond it are dropped."),
      // [cluster]
      Int("cluster.node_id", AMATERS_FIELD(cluster.node_id), 1, kU64Max, kRestart,
          "This node's id; must appear in peers when peers is not empty."),
      Peers("cluster.peers", AMATERS_FIELD(cluster.peers), kRestart,
            "All members as \"id:host:port\" (peer listen addresses, this node included); empty "
            "means a single-node cluster."),
      Choice("cluster.initial_cluster_state", AMATERS_FIELD(cluster.initial_cluster_state),
             {"new", "existing"}, kRestart,
             "\"new\": this node bootstraps the cluster of peers. \"existing\": it joins a running "
             "cluster that added it (etcdctl member add); peers lists members to reach it by. Decides "
             "the cluster id on a node's first start only (then kept in data_dir/cluster_id); the "
             "configuration in the WAL and snapshots overrides the bootstrap one "
             "(docs/membership.md)."),
      Int("cluster.heartbeat_interval_ms", AMATERS_FIELD(cluster.heartbeat_interval_ms), 1, 10000,
          kRestart, "Leader heartbeat period; also the Raft tick."),
      Int("cluster.election_timeout_ms", AMATERS_FIELD(cluster.election_timeout_ms), 1, 600000, kRestart,
          "Base follower silence before an election (plus the jitter below); at least 3 * "
          "heartbeat_interval_ms."),
      Int("cluster.election_jitter_min_ms", AMATERS_FIELD(cluster.election_jitter_min_ms), 1, 600000,
          kRestart,
          "A follower campaigns after election_timeout_ms plus a jitter drawn uniformly from "
          "[election_jitter_min_ms, election_jitter_max_ms], anew each time its timer resets."),
      Int("cluster.election_jitter_max_ms", AMATERS_FIELD(cluster.election_jitter_max_ms), 1, 600000,
          kRestart, "Upper end of the election jitter; greater than election_jitter_min_ms."),
      Str("cluster.cluster_token", AMATERS_FIELD(cluster.cluster_token), /*non_empty=*/true, kRestart,
          "Hashed with the peer ids into the cluster id on a new cluster's first start (then kept "
          "in data_dir/cluster_id); nodes of different clusters refuse each other, and a joining "
          "node must share it."),
      Int("cluster.max_consecutive_failures", AMATERS_FIELD(cluster.max_consecutive_failures), 1,
          100, kRestart,
          "Heartbeat rounds without a message after which a peer is reported failed (node_failed)."),
      Int("cluster.slow_replication_threshold_entries",
          AMATERS_FIELD(cluster.slow_replication_threshold_entries), 1, kU64Max, kRestart,
          "Leader only: a follower this many entries behind raises slow_replication."),
      // [alerts]
      Int("alerts.dedup_window_ms", AMATERS_FIELD(alerts.dedup_window_ms), 0, 86400000, kRestart,
          "An alert with the same dedup key fires at most once per window (a cleared alert may "
          "fire again at once)."),
      Str("alerts.webhook_url", AMATERS_FIELD(alerts.webhook_url), /*non_empty=*/false, kReload,
          "Empty: no webhook. Otherwise every firing is POSTed there as JSON "
          "(http://host[:port]/path or https://...)."),
      Int("alerts.webhook_timeout_ms", AMATERS_FIELD(alerts.webhook_timeout_ms), 1, 60000, kReload,
          "Timeout of one webhook POST."),
      Int("alerts.webhook_max_retries", AMATERS_FIELD(alerts.webhook_max_retries), 0, 10, kReload,
          "Retries of a failed webhook POST (backoff 100 ms doubling); then it is dropped and "
          "counted."),
      // [logging]
      Choice("logging.level", AMATERS_FIELD(logging.level), {"debug", "info", "warn", "error"}, kReload,
             "Lowest severity logged."),
      Choice("logging.format", AMATERS_FIELD(logging.format), {"text", "json"}, kReload,
             "Log line format: human-readable text or one JSON object per line."),
      // [metrics]
      Bool("metrics.enabled", AMATERS_FIELD(metrics.enabled), kRestart,
           "Export Prometheus metrics at /metrics on the admin HTTP port."),
      Address("metrics.bind_address", AMATERS_FIELD(metrics.bind_address), kRestart,
              "Admin HTTP listen address: /metrics, /health, /healthz, /readyz, /livez, /status, /alerts."),
  };
  const Config defaults;
  for (KeyDef& def : defs) {
    def.info.default_value = Literal(def, defaults);
    std::string constraint;
    if (def.info.type == ConfigKeyType::kInteger) {
      constraint = absl::StrCat("Range: ", RangeText(def), ".");
    } else if (!def.choices.empty()) {
      constraint = absl::StrCat("One of: ", absl::StrJoin(def.choices, ", "), ".");
    } else if (def.address) {
      constraint = "Form: host:port, port 1..65535.";
    } else if (def.non_empty) {
      constraint = "Must not be empty.";
    }
    if (!constraint.empty()) absl::StrAppend(&def.info.description, " ", constraint);
  }
  return defs;
}

#undef AMATERS_FIELD

const std::vector<KeyDef>& KeyDefs() {
  static const std::vector<KeyDef>* const defs = new std::vector<KeyDef>(BuildKeyDefs());
  return *defs;
}

const KeyDef* FindKey(absl::string_view dotted) {
  for (const KeyDef& def : KeyDefs()) {
    if (def.info.key == dotted) return &def;
  }
  return nullptr;
}

const KeyDef* FindEnv(absl::string_view name) {
  for (const KeyDef& def : KeyDefs()) {
    if (def.info.env_var == name) return &def;
  }
  return nullptr;
}

bool IsSection(absl::string_view dotted) {
  const std::vector<std::string>& sections = ConfigSections();
  return std::find(sections.begin(), sections.end(), dotted) != sections.end();
}

const char* SectionDescription(absl::string_view section) {
  if (section == "server") return "Client API, request limits and process files.";
  if (section == "storage") return "Storage; holds the [storage.wal] table.";
  if (section == "storage.wal") return "Write-ahead log (docs/wal-format.md).";
  if (section == "network") return "TLS for the client and peer ports, peer transport bounds.";
  if (section == "cluster") return "Membership and Raft timing.";
  if (section == "alerts") return "Alert deduplication and the webhook (docs/failover-and-alerts.md).";
  if (section == "logging") return "Log output.";
  if (section == "metrics") return "Admin HTTP port and Prometheus metrics.";
  return "";
}

// ---- Suggestions ----------------------------------------------------------------------------

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      const size_t cost = absl::ascii_tolower(a[i - 1]) == absl::ascii_tolower(b[j - 1]) ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + cost});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`, if it is close enough to be a likely misspelling.
std::optional<std::string> Closest(absl::string_view word, const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t best_distance = kU64Max;
  for (const std::string& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  const size_t threshold = std::max<size_t>(2, word.size() / 3);
  if (!best.has_value() || best_distance > threshold) return std::nullopt;
  return best;
}

std::string DidYouMean(const std::optional<std::string>& suggestion) {
  if (!suggestion.has_value()) return "";
  return absl::StrCat(" (did you mean ", *suggestion, "?)");
}

// A suggestion for an unknown key `name` in table `section` ("" = top level): the same name in
// another table, else a close name in this table.
std::string SuggestKey(absl::string_view section, absl::string_view name) {
  for (const KeyDef& def : KeyDefs()) {
    if (def.info.name == name && def.info.section != section) {
      return absl::StrCat(" (did you mean [", def.info.section, "] ", name, "?)");
    }
  }
  std::vector<std::string> names;
  for (const KeyDef& def : KeyDefs()) {
    if (def.info.section == section) names.push_back(def.info.name);
  }
  return DidYouMean(Closest(name, names));
}

std::string SuggestSection(absl::string_view dotted) {
  std::optional<std::string> s = Closest(dotted, ConfigSections());
  if (!s.has_value()) return "";
  return absl::StrCat(" (did you mean [", *s, "]?)");
}

// ---- Host, port, peer syntax ---------------------------------------------------------------

bool IsDigits(absl::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

// Empty when `host` is acceptable, else the problem.
std::string CheckHost(absl::string_view host) {
  if (host.empty()) return "host is empty";
  if (host.front() == '[' || host.back() == ']') {
    if (host.size() < 3 || host.front() != '[' || host.back() != ']') {
      return absl::StrCat("host \"", host, "\" has unbalanced brackets");
    }
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isalnum(c) && c != ':' && c != '.' && c != '%') {
        return absl::StrCat("host \"", host, "\" is not a bracketed IPv6 address");
      }
    }
    return "";
  }
  if (absl::StrContains(host, ':')) {
    return absl::StrCat("IPv6 host \"", host, "\" needs brackets, e.g. [::1]:7878");
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '-' && c != '_') {
      return absl::StrCat("host \"", host, "\" contains '", std::string(1, c),
                          "' (expected a host name or an IP address)");
    }
  }
  return "";
}

// Empty when `port` is a decimal in 1..65535, else the problem; the value in `*out`.
std::string CheckPort(absl::string_view port, uint16_t* out) {
  uint64_t value = 0;
  if (!IsDigits(port) || port.size() > 5 || !absl::SimpleAtoi(port, &value)) {
    return absl::StrCat("port \"", port, "\" is not a number");
  }
  if (value < 1 || value > 65535) return absl::StrCat("port ", value, " is not in 1..65535");
  *out = static_cast<uint16_t>(value);
  return "";
}

bool IsWildcardHost(absl::string_view host) {
  return host == "0.0.0.0" || host == "[::]" || host == "[0:0:0:0:0:0:0:0]";
}

bool SameListenAddress(const HostPort& a, const HostPort& b) {
  if (a.port != b.port) return false;
  return absl::EqualsIgnoreCase(a.host, b.host) || IsWildcardHost(a.host) || IsWildcardHost(b.host);
}

// ---- Per-key checks ---------------------------------------------------------------------------

// Empty when the field satisfies its key's own rule, else the problem.
std::string CheckField(const KeyDef& def, const Config& config) {
  struct Visitor {
    const KeyDef& def;
    std::string operator()(std::string* v) const {
      if (def.non_empty && v->empty()) return "must not be empty";
      if (!def.choices.empty() &&
          std::find(def.choices.begin(), def.choices.end(), *v) == def.choices.end()) {
        return absl::StrCat("must be one of ", absl::StrJoin(def.choices, ", "));
      }
      if (def.address) {
        absl::StatusOr<HostPort> hp = ParseHostPort(*v);
        if (!hp.ok()) return std::string(hp.status().message());
      }
      return "";
    }
    std::string operator()(uint64_t* v) const {
      if (*v < def.min || *v > def.max) {
        if (def.max == kU64Max) return absl::StrCat("must be at least ", def.min);
        return absl::StrCat("must be in ", def.min, "..", def.max);
      }
      return "";
    }
    std::string operator()(bool*) const { return ""; }
    std::string operator()(std::vector<PeerAddress>* peers) const {
      for (const PeerAddress& p : *peers) {
        const std::string spec = absl::StrCat(p.id, ":", p.ToString());
        if (p.id == 0) return absl::StrCat("peer \"", spec, "\": id must be at least 1");
        if (std::string problem = CheckHost(p.host); !problem.empty()) {
          return absl::StrCat("peer \"", spec, "\": ", problem);
        }
        if (p.port == 0) return absl::StrCat("peer \"", spec, "\": port 0 is not in 1..65535");
      }
      return "";
    }
  };
  return std::visit(Visitor{def}, def.field(const_cast<Config&>(config)));
}

// "[storage.wal] sync_mode = \"sometimes\""
std::string TomlLocation(const KeyDef& def, const Config& config) {
  return absl::StrCat("[", def.info.section, "] ", def.info.name, " = ", Literal(def, config));
}

// ---- Setting a field from text (environment, overrides) ----------------------------------------

const char* ExpectedPhrase(ConfigKeyType type) {
  switch (type) {
    case ConfigKeyType::kString:
      return "expected a string";
    case ConfigKeyType::kInteger:
      return "expected an integer";
    case ConfigKeyType::kBoolean:
      return "expected a boolean";
    case ConfigKeyType::kPeerList:
      return "expected an array of strings";
  }
  return "expected a value";
}

// Parses `text` into the field of `def` in `config`. Empty on success, else the problem.
std::string SetFromText(const KeyDef& def, const std::string& text, Config* config) {
  struct Visitor {
    const KeyDef& def;
    const std::string& text;
    std::string operator()(std::string* v) const {
      *v = text;
      return "";
    }
    std::string operator()(uint64_t* v) const {
      absl::string_view t = absl::StripAsciiWhitespace(text);
      uint64_t value = 0;
      if (IsDigits(t) && absl::SimpleAtoi(t, &value)) {
        *v = value;
        return "";
      }
      if (IsDigits(t)) return "integer out of range";
      if (absl::ConsumePrefix(&t, "-") && IsDigits(t)) {
        return def.max == kU64Max ? absl::StrCat("must be at least ", def.min)
                                  : absl::StrCat("must be in ", def.min, "..", def.max);
      }
      return "expected an integer";
    }
    std::string operator()(bool* v) const {
      const std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
      if (t == "true" || t == "1") {
        *v = true;
      } else if (t == "false" || t == "0") {
        *v = false;
      } else {
        return "expected a boolean (true, false, 1 or 0)";
      }
      return "";
    }
    std::string operator()(std::vector<PeerAddress>* v) const {
      std::vector<PeerAddress> peers;
      if (!absl::StripAsciiWhitespace(text).empty()) {
        for (absl::string_view item : absl::StrSplit(text, ',')) {
          absl::StatusOr<PeerAddress> p = ParsePeer(std::string(absl::StripAsciiWhitespace(item)));
          if (!p.ok()) return std::string(p.status().message());
          peers.push_back(*std::move(p));
        }
      }
      *v = std::move(peers);
      return "";
    }
  };
  return std::visit(Visitor{def, text}, def.field(*config));
}

// Where each key's value came from, for messages about several keys.
using SetBy = std::map<std::string, std::string>;

absl::Status ApplyText(const KeyDef& def, const std::string& text, const std::string& where,
                       Config* config, SetBy* set_by) {
  std::string problem = SetFromText(def, text, config);
  if (problem.empty()) problem = CheckField(def, *config);
  if (!problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, "=", TomlQuote(text), ": ", problem));
  }
  (*set_by)[def.info.key] = where;
  return absl::OkStatus();
}

absl::Status ApplyEnv(const std::map<std::string, std::string>& env, Config* config, SetBy* set_by) {
  std::vector<std::string> env_names;
  for (const KeyDef& def : KeyDefs()) env_names.push_back(def.info.env_var);
  for (const auto& [name, value] : env) {
    if (!absl::StartsWith(name, "AMATERS_") || IsReservedEnvName(name)) continue;
    const KeyDef* def = FindEnv(name);
    if (def == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment ", name, ": not a configuration variable", DidYouMean(Closest(name, env_names)),
          "; AMATERS_<SECTION>_<KEY> variables are configuration (docs/configuration-reference.md)"));
    }
    absl::Status s = ApplyText(*def, value, absl::StrCat("environment ", name), config, set_by);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ApplyOverride(const std::string& override_text, Config* config, SetBy* set_by) {
  const size_t eq = override_text.find('=');
  if (eq == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("override \"", override_text, "\": expected section.key=value"));
  }
  const std::string key(absl::StripAsciiWhitespace(absl::string_view(override_text).substr(0, eq)));
  const std::string value = override_text.substr(eq + 1);
  const KeyDef* def = FindKey(key);
  if (def == nullptr) {
    std::vector<std::string> keys;
    for (const KeyDef& d : KeyDefs()) keys.push_back(d.info.key);
    return absl::InvalidArgumentError(absl::StrCat("override \"", override_text, "\": unknown key ", key,
                                                   DidYouMean(Closest(key, keys))));
  }
  return ApplyText(*def, value, absl::StrCat("override ", key), config, set_by);
}

// ---- The TOML file ---------------------------------------------------------------------------

const char* NodeTypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "floating-point number";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "value";
}

struct FileError {
  uint64_t line = 0;
  std::string message;
};

class FileReader {
 public:
  FileReader(std::string path, Config* config, SetBy* set_by)
      : path_(std::move(path)), config_(config), set_by_(set_by) {}

  // Reads every key of `root`; the first problem in file order, if any.
  std::optional<FileError> Read(const toml::table& root) {
    Walk(root, "");
    if (errors_.empty()) return std::nullopt;
    return *std::min_element(errors_.begin(), errors_.end(),
                             [](const FileError& a, const FileError& b) { return a.line < b.line; });
  }

 private:
  void Error(uint64_t line, std::string message) { errors_.push_back({line, std::move(message)}); }

  static uint64_t LineOf(const toml::key& k, const toml::node& node) {
    if (k.source().begin.line != 0) return k.source().begin.line;
    return node.source().begin.line;
  }

  void Walk(const toml::table& table, const std::string& section) {
    for (auto&& [k, node] : table) {
      const std::string name(k.str());
      const std::string dotted = section.empty() ? name : absl::StrCat(section, ".", name);
      const uint64_t line = LineOf(k, node);
      if (const KeyDef* def = FindKey(dotted)) {
        SetFromNode(*def, node, line);
      } else if (IsSection(dotted)) {
        if (const toml::table* sub = node.as_table()) {
          Walk(*sub, dotted);
        } else {
          Error(line, absl::StrCat("[", dotted, "]: expected a table, got ", NodeTypeName(node.type())));
        }
      } else if (node.is_table()) {
        Error(line, absl::StrCat("unknown section [", dotted, "]", SuggestSection(dotted)));
      } else if (section.empty()) {
        Error(line, absl::StrCat("unknown key ", name, " outside any section", SuggestKey(section, name)));
      } else {
        Error(line, absl::StrCat("unknown key [", section, "] ", name, SuggestKey(section, name)));
      }
    }
  }

  void SetFromNode(const KeyDef& def, const toml::node& node, uint64_t line) {
    const std::string where = absl::StrCat("[", def.info.section, "] ", def.info.name);
    const std::string type_error =
        absl::StrCat(where, ": ", ExpectedPhrase(def.info.type), ", got ", NodeTypeName(node.type()));
    FieldRef field = def.field(*config_);
    switch (def.info.type) {
      case ConfigKeyType::kString:
        if (!node.is_string()) return Error(line, type_error);
        *std::get<std::string*>(field) = node.as_string()->get();
        break;
      case ConfigKeyType::kInteger: {
        if (!node.is_integer()) return Error(line, type_error);
        const int64_t value = node.as_integer()->get();
        if (value < 0) {
          return Error(line, absl::StrCat(where, " = ", value, ": ",
                                          def.max == kU64Max ? absl::StrCat("must be at least ", def.min)
                                                             : absl::StrCat("must be in ", RangeText(def))));
        }
        *std::get<uint64_t*>(field) = static_cast<uint64_t>(value);
        break;
      }
      case ConfigKeyType::kBoolean:
        if (!node.is_boolean()) return Error(line, type_error);
        *std::get<bool*>(field) = node.as_boolean()->get();
        break;
      case ConfigKeyType::kPeerList: {
        const toml::array* array = node.as_array();
        if (array == nullptr) return Error(line, type_error);
        std::vector<PeerAddress> peers;
        for (size_t i = 0; i < array->size(); ++i) {
          const toml::node& item = *array->get(i);
          const uint64_t item_line = item.source().begin.line != 0 ? item.source().begin.line : line;
          if (!item.is_string()) {
            return Error(item_line, absl::StrCat(where, "[", i, "]: expected a string, got ",
                                                 NodeTypeName(item.type())));
          }
          absl::StatusOr<PeerAddress> p = ParsePeer(item.as_string()->get());
          if (!p.ok()) return Error(item_line, absl::StrCat(where, "[", i, "]: ", p.status().message()));
          peers.push_back(*std::move(p));
        }
        *std::get<std::vector<PeerAddress>*>(field) = std::move(peers);
        break;
      }
    }
    if (std::string problem = CheckField(def, *config_); !problem.empty()) {
      return Error(line, absl::StrCat(TomlLocation(def, *config_), ": ", problem));
    }
    (*set_by_)[def.info.key] = absl::StrCat("config file ", path_, " line ", line);
  }

  std::string path_;
  Config* config_;
  SetBy* set_by_;
  std::vector<FileError> errors_;
};

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const std::string what = absl::StrCat("config file ", path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return absl::NotFoundError(absl::StrCat(what, ": no such file"));
    return absl::ErrnoToStatus(e, absl::StrCat(what, ": cannot open"));
  }
  std::string content;
  absl::Status status;
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    status = absl::ErrnoToStatus(errno, absl::StrCat(what, ": cannot stat"));
  } else if (S_ISDIR(st.st_mode)) {
    status = absl::InvalidArgumentError(absl::StrCat(what, ": is a directory"));
  } else {
    char buffer[16384];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = absl::ErrnoToStatus(errno, absl::StrCat(what, ": cannot read"));
        break;
      }
      if (n == 0) break;
      content.append(buffer, static_cast<size_t>(n));
      if (content.size() > kMaxConfigFileBytes) {
        status = absl::InvalidArgumentError(
            absl::StrCat(what, ": larger than ", kMaxConfigFileBytes, " bytes; not a configuration file?"));
        break;
      }
    }
  }
  ::close(fd);
  if (!status.ok()) return status;
  return content;
}

absl::Status ApplyFile(const std::string& path, Config* config, SetBy* set_by) {
  absl::StatusOr<std::string> content = ReadWholeFile(path);
  if (!content.ok()) return content.status();
  toml::table root;
  try {
    root = toml::parse(*content, path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("config file ", path, ": line ", e.source().begin.line,
                                                   ", column ", e.source().begin.column,
                                                   ": TOML syntax error: ", std::string(e.description())));
  }
  FileReader reader(path, config, set_by);
  if (std::optional<FileError> error = reader.Read(root)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", path, ": line ", error->line, ": ", error->message));
  }
  return absl::OkStatus();
}

// ---- Validation across keys -------------------------------------------------------------------

struct Problem {
  std::string message;
  std::vector<std::string> keys;  // dotted keys involved
};

std::optional<Problem> FindProblem(const Config& c) {
  for (const KeyDef& def : KeyDefs()) {
    if (std::string problem = CheckField(def, c); !problem.empty()) {
      return Problem{absl::StrCat(TomlLocation(def, c), ": ", problem), {def.info.key}};
    }
  }

  if (absl::StatusOr<kv::AutoCompactionPolicy> p = kv::ParseAutoCompaction(
          c.storage.auto_compaction_mode, c.storage.auto_compaction_retention);
      !p.ok()) {
    return Problem{absl::StrCat("[storage] ", p.status().message()),
                   {"storage.auto_compaction_mode", "storage.auto_compaction_retention"}};
  }

  // Membership.
  const std::vector<PeerAddress>& peers = c.cluster.peers;
  for (size_t i = 0; i < peers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (peers[i].id == peers[j].id) {
        return Problem{absl::StrCat("[cluster] peers: id ", peers[i].id, " appears twice (\"", peers[j].id,
                                    ":", peers[j].ToString(), "\" and \"", peers[i].id, ":",
                                    peers[i].ToString(), "\")"),
                       {"cluster.peers"}};
      }
      if (absl::EqualsIgnoreCase(peers[i].ToString(), peers[j].ToString())) {
        return Problem{absl::StrCat("[cluster] peers: address ", peers[i].ToString(), " appears twice (ids ",
                                    peers[j].id, " and ", peers[i].id, ")"),
                       {"cluster.peers"}};
      }
    }
  }
  const PeerAddress* self = nullptr;
  for (const PeerAddress& p : peers) {
    if (p.id == c.cluster.node_id) self = &p;
  }
  if (!peers.empty() && self == nullptr) {
    return Problem{absl::StrCat("[cluster] peers does not contain node_id ", c.cluster.node_id,
                                " (a node listens for peers on its own entry)"),
                   {"cluster.node_id", "cluster.peers"}};
  }

  if (c.cluster.initial_cluster_state == "existing" && peers.size() < 2) {
    return Problem{"[cluster] initial_cluster_state = \"existing\" needs peers: this node's entry "
                   "and at least one member of the cluster it joins",
                   {"cluster.initial_cluster_state", "cluster.peers"}};
  }

  // Raft timing: a follower must miss several heartbeats before it starts an election.
  if (c.cluster.election_timeout_ms < 3 * c.cluster.heartbeat_interval_ms) {
    return Problem{absl::StrCat("[cluster] election_timeout_ms = ", c.cluster.election_timeout_ms,
                                ": must be at least 3 * heartbeat_interval_ms (",
                                3 * c.cluster.heartbeat_interval_ms, ")"),
                   {"cluster.election_timeout_ms", "cluster.heartbeat_interval_ms"}};
  }

  // Alerts.
  if (!c.alerts.webhook_url.empty() && !absl::StartsWith(c.alerts.webhook_url, "http://") &&
      !absl::StartsWith(c.alerts.webhook_url, "https://")) {
    return Problem{absl::StrCat("[alerts] webhook_url = \"", c.alerts.webhook_url,
                                "\": must start with http:// or https://"),
                   {"alerts.webhook_url"}};
  }

  if (c.cluster.election_jitter_max_ms <= c.cluster.election_jitter_min_ms) {
    return Problem{absl::StrCat("[cluster] election_jitter_max_ms = ", c.cluster.election_jitter_max_ms,
                                ": must be greater than election_jitter_min_ms (",
                                c.cluster.election_jitter_min_ms, ")"),
                   {"cluster.election_jitter_max_ms", "cluster.election_jitter_min_ms"}};
  }

  // TLS.
  if (c.network.tls_enabled && c.network.tls_cert.empty()) {
    return Problem{"[network] tls_enabled = true needs tls_cert (a PEM certificate file)",
                   {"network.tls_enabled", "network.tls_cert"}};
  }
  if (c.network.tls_enabled && c.network.tls_key.empty()) {
    return Problem{"[network] tls_enabled = true needs tls_key (a PEM private key file)",
                   {"network.tls_enabled", "network.tls_key"}};
  }
  if (c.network.require_client_cert && !c.network.tls_enabled) {
    return Problem{"[network] require_client_cert = true needs tls_enabled = true",
                   {"network.require_client_cert", "network.tls_enabled"}};
  }
  if (c.network.require_client_cert && c.network.tls_ca.empty()) {
    return Problem{"[network] require_client_cert = true needs tls_ca (the CA that signs client certificates)",
                   {"network.require_client_cert", "network.tls_ca"}};
  }

  // Listening addresses of this node must not collide (the second bind would fail at start).
  struct Listener {
    std::string label;
    std::string key;
    HostPort address;
  };
  std::vector<Listener> listeners;
  listeners.push_back({"[server] bind_address", "server.bind_address", *ParseHostPort(c.server.bind_address)});
  listeners.push_back(
      {"[metrics] bind_address", "metrics.bind_address", *ParseHostPort(c.metrics.bind_address)});
  if (self != nullptr) {
    listeners.push_back({absl::StrCat("this node's peer address (cluster.peers entry ", self->id, ")"),
                         "cluster.peers", HostPort{self->host, self->port}});
  }
  for (size_t i = 0; i < listeners.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (SameListenAddress(listeners[i].address, listeners[j].address)) {
        return Problem{absl::StrCat("listen address conflict: ", listeners[j].label, " ",
                                    listeners[j].address.host, ":", listeners[j].address.port, " and ",
                                    listeners[i].label, " ", listeners[i].address.host, ":",
                                    listeners[i].address.port),
                       {listeners[j].key, listeners[i].key}};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

// ---- Public API ---------------------------------------------------------------------------------

std::string PeerAddress::ToString() const { return absl::StrCat(host, ":", port); }

absl::StatusOr<HostPort> ParseHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\": expected host:port"));
  }
  HostPort result;
  result.host = address.substr(0, colon);
  if (std::string problem = CheckHost(result.host); !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\": ", problem));
  }
  if (std::string problem = CheckPort(absl::string_view(address).substr(colon + 1), &result.port);
      !problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\": ", problem));
  }
  return result;
}

absl::StatusOr<PeerAddress> ParsePeer(const std::string& spec) {
  const auto error = [&spec](absl::string_view problem) {
    return absl::InvalidArgumentError(absl::StrCat("peer \"", spec, "\": ", problem));
  };
  const size_t colon = spec.find(':');
  if (colon == std::string::npos || spec.find(':', colon + 1) == std::string::npos) {
    return error("expected id:host:port");
  }
  const absl::string_view id_text = absl::string_view(spec).substr(0, colon);
  PeerAddress peer;
  if (!IsDigits(id_text) || !absl::SimpleAtoi(id_text, &peer.id)) {
    return error(absl::StrCat("id \"", id_text, "\" is not a positive integer (expected id:host:port)"));
  }
  if (peer.id == 0) return error("id must be at least 1");
  const std::string rest = spec.substr(colon + 1);
  const size_t port_colon = rest.rfind(':');
  peer.host = rest.substr(0, port_colon);
  if (std::string problem = CheckHost(peer.host); !problem.empty()) return error(problem);
  if (std::string problem = CheckPort(absl::string_view(rest).substr(port_colon + 1), &peer.port);
      !problem.empty()) {
    return error(problem);
  }
  return peer;
}

std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  absl::string_view rest(path);
  while (absl::ConsumePrefix(&rest, "./")) {
    while (absl::ConsumePrefix(&rest, "/")) {
    }
  }
  if (rest == ".") rest = "";
  std::string base = base_dir;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  if (rest.empty()) return base;
  if (base == "/") return absl::StrCat("/", rest);
  return absl::StrCat(base, "/", rest);
}

std::string PidFilePath(const Config& config) {
  if (!config.server.pid_file.empty()) return config.server.pid_file;
  return ResolvePath("amaters-server.pid", config.server.data_dir);
}

absl::StatusOr<wal::SyncMode> WalSyncMode(const Config& config) {
  return wal::ParseSyncMode(config.storage.wal.sync_mode);
}

absl::StatusOr<wal::WriterOptions> WalWriterOptions(const Config& config) {
  absl::StatusOr<wal::SyncMode> mode = WalSyncMode(config);
  if (!mode.ok()) return mode.status();
  if (config.storage.wal.segment_size_mb < 1 || config.storage.wal.segment_size_mb > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("[storage.wal] segment_size_mb = ",
                                                   config.storage.wal.segment_size_mb, ": must be in 1..1024"));
  }
  wal::WriterOptions options;
  options.segment_size_bytes = config.storage.wal.segment_size_mb << 20;
  options.sync_mode = *mode;
  options.sync_interval_ms = config.storage.wal.sync_interval_ms;
  absl::Status valid = options.Validate();
  if (!valid.ok()) return valid;
  return options;
}

absl::StatusOr<Config> LoadConfig(const ConfigSources& sources) {
  Config config;
  SetBy set_by;
  if (sources.file.has_value()) {
    absl::Status s = ApplyFile(*sources.file, &config, &set_by);
    if (!s.ok()) return s;
  }
  if (absl::Status s = ApplyEnv(sources.env, &config, &set_by); !s.ok()) return s;
  for (const std::string& o : sources.overrides) {
    if (absl::Status s = ApplyOverride(o, &config, &set_by); !s.ok()) return s;
  }
  if (std::optional<Problem> problem = FindProblem(config)) {
    std::vector<std::string> origins;
    for (const std::string& key : problem->keys) {
      auto it = set_by.find(key);
      origins.push_back(absl::StrCat(key, " from ", it == set_by.end() ? "the defaults" : it->second));
    }
    return absl::InvalidArgumentError(absl::StrCat("invalid configuration: ", problem->message, " (",
                                                   absl::StrJoin(origins, "; "), ")"));
  }
  return config;
}

absl::Status Validate(const Config& config) {
  if (std::optional<Problem> problem = FindProblem(config)) {
    return absl::InvalidArgumentError(problem->message);
  }
  return absl::OkStatus();
}

ReloadPlan PlanReload(const Config& running, const Config& reread) {
  ReloadPlan plan;
  plan.next = running;
  for (const KeyDef& def : KeyDefs()) {
    if (Literal(def, running) == Literal(def, reread)) continue;
    if (!def.info.reloadable) {
      plan.ignored.push_back(def.info.key);
      continue;
    }
    FieldRef to = def.field(plan.next);
    FieldRef from = def.field(const_cast<Config&>(reread));
    std::visit(
        [&from](auto* target) { *target = *std::get<std::remove_reference_t<decltype(target)>>(from); }, to);
    plan.applied.push_back(def.info.key);
  }
  return plan;
}

const char* ConfigKeyTypeName(ConfigKeyType type) {
  switch (type) {
    case ConfigKeyType::kString:
      return "string";
    case ConfigKeyType::kInteger:
      return "integer";
    case ConfigKeyType::kBoolean:
      return "boolean";
    case ConfigKeyType::kPeerList:
      return "array of strings";
  }
  return "unknown";
}

const std::vector<ConfigKeyInfo>& ConfigKeys() {
  static const std::vector<ConfigKeyInfo>* const keys = [] {
    auto* v = new std::vector<ConfigKeyInfo>();
    for (const KeyDef& def : KeyDefs()) v->push_back(def.info);
    return v;
  }();
  return *keys;
}

const std::vector<std::string>& ConfigSections() {
  static const std::vector<std::string>* const sections = new std::vector<std::string>{
      "server", "storage", "storage.wal", "network", "cluster", "alerts", "logging", "metrics"};
  return *sections;
}

absl::StatusOr<std::string> FormatConfigValue(const Config& config, const std::string& key) {
  const KeyDef* def = FindKey(key);
  if (def == nullptr) return absl::NotFoundError(absl::StrCat("unknown configuration key ", key));
  return Literal(*def, config);
}

bool IsReservedEnvName(const std::string& name) {
  static const char* const kPrefixes[] = {"AMATERS_TEST_", "AMATERS_SIM_", "AMATERS_BENCH_", "AMATERS_FUZZ_"};
  static const char* const kNames[] = {"AMATERS_SEED", "AMATERS_KV_SEED", "AMATERS_REWRITE"};
  for (const char* p : kPrefixes) {
    if (absl::StartsWith(name, p)) return true;
  }
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return false;
}

std::string GenerateDefaultConfig() {
  std::string out =
      "# amaters-server configuration (TOML), as printed by `amaters-server --generate-config`.\n"
      "# Every key is listed at its built-in default. Check a file with\n"
      "# `amaters-server validate-config --config=FILE`; reference: docs/configuration-reference.md.\n"
      "#\n"
      "# Precedence: built-in defaults < this file < AMATERS_* environment variables < --set flags.\n"
      "# Environment names: AMATERS_ + the dotted key in upper case, '.' -> '_'\n"
      "# (storage.wal.sync_mode -> AMATERS_STORAGE_WAL_SYNC_MODE).\n"
      "# SIGHUP re-reads the configuration: keys marked \"SIGHUP: reloaded\" apply at once, the others\n"
      "# keep their running value until a restart. TLS certificate and key file contents are re-read\n"
      "# on SIGHUP too. Relative paths are resolved against the directory the server was started in.\n";
  for (const std::string& section : ConfigSections()) {
    bool has_keys = false;
    for (const KeyDef& def : KeyDefs()) has_keys = has_keys || def.info.section == section;
    if (!has_keys) continue;
    absl::StrAppend(&out, "\n# ", SectionDescription(section), "\n[", section, "]\n");
    for (const KeyDef& def : KeyDefs()) {
      if (def.info.section != section) continue;
      absl::StrAppend(&out, "# ", def.info.description,
                      def.info.reloadable ? " SIGHUP: reloaded." : " SIGHUP: restart needed.", "\n",
                      def.info.name, " = ", def.info.default_value, "\n");
    }
  }
  return out;
}

std::string GenerateReferenceTables() {
  std::string out;
  for (const std::string& section : ConfigSections()) {
    bool has_keys = false;
    for (const KeyDef& def : KeyDefs()) has_keys = has_keys || def.info.section == section;
    if (!has_keys) continue;
    absl::StrAppend(&out, "\n### `[", section, "]`\n\n", SectionDescription(section), "\n\n",
                    "| key | type | default | SIGHUP reload | environment variable | meaning |\n",
                    "|---|---|---|---|---|---|\n");
    for (const KeyDef& def : KeyDefs()) {
      if (def.info.section != section) continue;
      absl::StrAppend(&out, "| `", def.info.name, "` | ", ConfigKeyTypeName(def.info.type), " | `",
                      def.info.default_value, "` | ", def.info.reloadable ? "yes" : "no", " | `",
                      def.info.env_var, "` | ", absl::StrReplaceAll(def.info.description, {{"|", "\\|"}}),
                      " |\n");
    }
  }
  absl::StrAppend(&out, "\n");
  return out;
}

}  // namespace amaters::server
