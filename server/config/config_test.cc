#include "server/config/config.h"

#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/wal/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace amaters::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// Writes `text` to a fresh file under TEST_TMPDIR and returns its path.
std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = absl::StrCat(TempDir(), "/", name);
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  EXPECT_TRUE(out.good()) << path;
  return path;
}

absl::StatusOr<Config> LoadText(const std::string& name, const std::string& text) {
  ConfigSources sources;
  sources.file = WriteFile(name, text);
  return LoadConfig(sources);
}

// Every key's value, for comparing whole configurations.
std::map<std::string, std::string> Values(const Config& c) {
  std::map<std::string, std::string> values;
  for (const ConfigKeyInfo& key : ConfigKeys()) values[key.key] = *FormatConfigValue(c, key.key);
  return values;
}

std::string ErrorOf(const absl::Status& s) { return std::string(s.message()); }

// ---- The key table ---------------------------------------------------------------------------

TEST(ConfigKeysTest, EveryFieldHasOneKey) {
  std::vector<std::string> keys;
  for (const ConfigKeyInfo& k : ConfigKeys()) keys.push_back(k.key);
  EXPECT_THAT(keys,
              ElementsAre("server.bind_address", "server.data_dir", "server.pid_file",
                          "server.shutdown_timeout_ms", "server.max_request_bytes", "server.max_key_bytes",
                          "server.max_value_bytes", "server.max_inflight_requests",
                          "server.request_timeout_ms", "storage.min_free_bytes",
                          "storage.snapshot_threshold_entries", "storage.snapshot_catchup_entries",
                          "storage.max_snapshots", "storage.snapshot_chunk_kb",
                          "storage.auto_compaction_mode", "storage.auto_compaction_retention",
                          "storage.lease_checkpoint_interval_ms",
                          "storage.wal.segment_size_mb",
                          "storage.wal.sync_mode", "storage.wal.sync_interval_ms", "network.tls_enabled",
                          "network.tls_cert", "network.tls_key", "network.tls_ca",
                          "network.require_client_cert", "network.peer_queue_max_messages",
                          "cluster.node_id", "cluster.peers", "cluster.initial_cluster_state",
                          "cluster.heartbeat_interval_ms",
                          "cluster.election_timeout_ms", "cluster.election_jitter_min_ms",
                          "cluster.election_jitter_max_ms", "cluster.cluster_token",
                          "cluster.max_consecutive_failures",
                          "cluster.slow_replication_threshold_entries", "alerts.dedup_window_ms",
                          "alerts.webhook_url", "alerts.webhook_timeout_ms",
                          "alerts.webhook_max_retries", "logging.level", "logging.format",
                          "metrics.enabled", "metrics.bind_address"));
}

// Each key's accessor reaches its own field: changing every field changes every key's value,
// and each value reads back what was written.
TEST(ConfigKeysTest, AccessorsReachTheirFields) {
  Config c;
  c.server.bind_address = "a:1";
  c.server.data_dir = "b";
  c.server.pid_file = "c";
  c.server.shutdown_timeout_ms = 11;
  c.server.max_request_bytes = 12;
  c.server.max_key_bytes = 13;
  c.server.max_value_bytes = 14;
  c.server.max_inflight_requests = 15;
  c.server.request_timeout_ms = 16;
  c.storage.wal.segment_size_mb = 17;
  c.storage.wal.sync_mode = "d";
  c.storage.wal.sync_interval_ms = 18;
  c.network.tls_enabled = true;
  c.network.tls_cert = "e";
  c.network.tls_key = "f";
  c.network.tls_ca = "g";
  c.network.require_client_cert = true;
  c.network.peer_queue_max_messages = 19;
  c.cluster.node_id = 20;
  c.cluster.peers = {{21, "h", 22}};
  c.cluster.heartbeat_interval_ms = 23;
  c.cluster.election_timeout_ms = 24;
  c.cluster.cluster_token = "i";
  c.cluster.initial_cluster_state = "existing";
  c.cluster.max_consecutive_failures = 25;
  c.cluster.election_jitter_min_ms = 30;
  c.cluster.election_jitter_max_ms = 31;
  c.cluster.slow_replication_threshold_entries = 26;
  c.storage.min_free_bytes = 27;
  c.storage.snapshot_threshold_entries = 32;
  c.storage.snapshot_catchup_entries = 33;
  c.storage.max_snapshots = 34;
  c.storage.snapshot_chunk_kb = 35;
  c.storage.auto_compaction_mode = "l";
  c.storage.auto_compaction_retention = "m";
  c.storage.lease_checkpoint_interval_ms = 36;
  c.alerts.dedup_window_ms = 28;
  c.alerts.webhook_url = "http://m/n";
  c.alerts.webhook_timeout_ms = 29;
  c.alerts.webhook_max_retries = 9;
  c.logging.level = "j";
  c.logging.format = "k";
  c.metrics.enabled = false;
  c.metrics.bind_address = "l:2";
  const std::map<std::string, std::string> defaults = Values(Config{});
  const std::map<std::string, std::string> changed = Values(c);
  for (const auto& [key, value] : defaults) {
    EXPECT_NE(changed.at(key), value) << key;
  }
  EXPECT_EQ(changed.at("server.bind_address"), "\"a:1\"");
  EXPECT_EQ(changed.at("server.max_inflight_requests"), "15");
  EXPECT_EQ(changed.at("storage.wal.sync_interval_ms"), "18");
  EXPECT_EQ(changed.at("network.tls_ca"), "\"g\"");
  EXPECT_EQ(changed.at("network.require_client_cert"), "true");
  EXPECT_EQ(changed.at("cluster.peers"), "[\"21:h:22\"]");
  EXPECT_EQ(changed.at("cluster.election_timeout_ms"), "24");
  EXPECT_EQ(changed.at("logging.format"), "\"k\"");
  EXPECT_EQ(changed.at("metrics.enabled"), "false");
  EXPECT_EQ(FormatConfigValue(c, "server.nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigKeysTest, EnvNamesAndReloadability) {
  std::set<std::string> env_names;
  std::vector<std::string> reloadable;
  for (const ConfigKeyInfo& k : ConfigKeys()) {
    EXPECT_EQ(k.env_var, "AMATERS_" + absl::AsciiStrToUpper(absl::StrReplaceAll(k.key, {{".", "_"}})));
    EXPECT_TRUE(env_names.insert(k.env_var).second) << k.env_var;
    EXPECT_EQ(absl::StrCat(k.section, ".", k.name), k.key);
    EXPECT_FALSE(k.description.empty()) << k.key;
    EXPECT_EQ(k.description.find('\n'), std::string::npos) << k.key;
    EXPECT_FALSE(IsReservedEnvName(k.env_var)) << k.env_var;
    if (k.reloadable) reloadable.push_back(k.key);
  }
  EXPECT_THAT(reloadable, ElementsAre("server.shutdown_timeout_ms", "server.max_request_bytes",
                                      "server.max_key_bytes", "server.max_value_bytes",
                                      "storage.min_free_bytes", "alerts.webhook_url",
                                      "alerts.webhook_timeout_ms", "alerts.webhook_max_retries",
                                      "logging.level", "logging.format"));
  EXPECT_EQ(ConfigKeys()[0].default_value, "\"127.0.0.1:7878\"");
}

// ---- Defaults and sources -------------------------------------------------------------------

TEST(LoadConfigTest, DefaultsAreValid) {
  EXPECT_TRUE(Validate(Config{}).ok()) << Validate(Config{});
  absl::StatusOr<Config> c = LoadConfig(ConfigSources{});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Values(*c), Values(Config{}));
}

TEST(LoadConfigTest, FileValues) {
  absl::StatusOr<Config> c = LoadText("file_values.toml", R"(
[server]
bind_address = "0.0.0.0:2379"
data_dir = "/var/lib/amaters"
pid_file = "/run/amaters.pid"
max_request_bytes = 2097152
request_timeout_ms = 7000

[storage.wal]
segment_size_mb = 16
sync_mode = "interval"
sync_interval_ms = 25

[network]
tls_enabled = true
tls_cert = "certs/server.pem"
tls_key = "certs/server.key"
tls_ca = "certs/ca.pem"
require_client_cert = true
peer_queue_max_messages = 100

[cluster]
node_id = 2
peers = ["1:127.0.0.1:7879", "2:127.0.0.1:7889", "3:[::1]:7899"]
heartbeat_interval_ms = 50
election_timeout_ms = 500
cluster_token = "prod-east"

[logging]
level = "debug"
format = "json"

[metrics]
enabled = false
bind_address = "127.0.0.1:9191"
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.bind_address, "0.0.0.0:2379");
  EXPECT_EQ(c->server.data_dir, "/var/lib/amaters");
  EXPECT_EQ(c->server.pid_file, "/run/amaters.pid");
  EXPECT_EQ(c->server.max_request_bytes, 2097152u);
  EXPECT_EQ(c->server.request_timeout_ms, 7000u);
  EXPECT_EQ(c->server.max_key_bytes, 4096u);  // untouched keys keep their defaults
  EXPECT_EQ(c->storage.wal.segment_size_mb, 16u);
  EXPECT_EQ(c->storage.wal.sync_mode, "interval");
  EXPECT_EQ(c->storage.wal.sync_interval_ms, 25u);
  EXPECT_TRUE(c->network.tls_enabled);
  EXPECT_EQ(c->network.tls_cert, "certs/server.pem");
  EXPECT_EQ(c->network.tls_key, "certs/server.key");
  EXPECT_EQ(c->network.tls_ca, "certs/ca.pem");
  EXPECT_TRUE(c->network.require_client_cert);
  EXPECT_EQ(c->network.peer_queue_max_messages, 100u);
  EXPECT_EQ(c->cluster.node_id, 2u);
  ASSERT_EQ(c->cluster.peers.size(), 3u);
  EXPECT_EQ(c->cluster.peers[0].id, 1u);
  EXPECT_EQ(c->cluster.peers[0].host, "127.0.0.1");
  EXPECT_EQ(c->cluster.peers[0].port, 7879);
  EXPECT_EQ(c->cluster.peers[2].ToString(), "[::1]:7899");
  EXPECT_EQ(c->cluster.heartbeat_interval_ms, 50u);
  EXPECT_EQ(c->cluster.election_timeout_ms, 500u);
  EXPECT_EQ(c->cluster.cluster_token, "prod-east");
  EXPECT_EQ(c->logging.level, "debug");
  EXPECT_EQ(c->logging.format, "json");
  EXPECT_FALSE(c->metrics.enabled);
  EXPECT_EQ(c->metrics.bind_address, "127.0.0.1:9191");
}

TEST(LoadConfigTest, DottedKeysAndInlineTablesAreTheSameKeys) {
  absl::StatusOr<Config> c = LoadText("dotted.toml", R"(
server.bind_address = "127.0.0.1:1111"
storage = { wal = { sync_mode = "none" } }
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.bind_address, "127.0.0.1:1111");
  EXPECT_EQ(c->storage.wal.sync_mode, "none");
}

TEST(LoadConfigTest, EnvBeatsFileAndOverrideBeatsEnv) {
  ConfigSources sources;
  sources.file = WriteFile("precedence.toml", R"(
[server]
bind_address = "127.0.0.1:1001"
data_dir = "from-file"
[storage.wal]
sync_mode = "interval"
[network]
peer_queue_max_messages = 7
)");
  sources.env = {
      {"AMATERS_SERVER_BIND_ADDRESS", "127.0.0.1:1002"},
      {"AMATERS_STORAGE_WAL_SYNC_MODE", "none"},
      {"AMATERS_NETWORK_TLS_ENABLED", "0"},
      {"AMATERS_CLUSTER_PEERS", "1:127.0.0.1:7879, 2:127.0.0.1:7889"},
      {"PATH", "/usr/bin"},  // not ours
  };
  sources.overrides = {"server.bind_address=127.0.0.1:1003", "storage.wal.sync_mode=always",
                       "storage.wal.sync_mode=none"};  // a later override wins
  absl::StatusOr<Config> c = LoadConfig(sources);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.bind_address, "127.0.0.1:1003");  // override > env > file
  EXPECT_EQ(c->server.data_dir, "from-file");          // only the file set it
  EXPECT_EQ(c->storage.wal.sync_mode, "none");
  EXPECT_FALSE(c->network.tls_enabled);
  EXPECT_EQ(c->network.peer_queue_max_messages, 7u);
  ASSERT_EQ(c->cluster.peers.size(), 2u);
  EXPECT_EQ(c->cluster.peers[1].id, 2u);
  EXPECT_EQ(c->cluster.peers[1].ToString(), "127.0.0.1:7889");

  // Without the overrides the environment wins over the file.
  sources.overrides.clear();
  c = LoadConfig(sources);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.bind_address, "127.0.0.1:1002");
  EXPECT_EQ(c->storage.wal.sync_mode, "none");
}

TEST(LoadConfigTest, EnvBooleansIntegersAndLists) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, bool>>{
           {"true", true}, {"1", true}, {"TRUE", true}, {"false", false}, {"0", false}, {"False", false}}) {
    ConfigSources s;
    s.env = {{"AMATERS_METRICS_ENABLED", text}};
    absl::StatusOr<Config> c = LoadConfig(s);
    ASSERT_TRUE(c.ok()) << text << ": " << c.status();
    EXPECT_EQ(c->metrics.enabled, want) << text;
  }
  ConfigSources s;
  s.env = {{"AMATERS_METRICS_ENABLED", "yes"}};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "environment AMATERS_METRICS_ENABLED=\"yes\": expected a boolean (true, false, 1 or 0)");

  s.env = {{"AMATERS_CLUSTER_NODE_ID", "abc"}};
  EXPECT_EQ(LoadConfig(s).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()), "environment AMATERS_CLUSTER_NODE_ID=\"abc\": expected an integer");
  s.env = {{"AMATERS_SERVER_MAX_KEY_BYTES", "-1"}};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "environment AMATERS_SERVER_MAX_KEY_BYTES=\"-1\": must be in 1..8388608");
  s.env = {{"AMATERS_SERVER_MAX_KEY_BYTES", "99999999999999999999999"}};
  EXPECT_THAT(ErrorOf(LoadConfig(s).status()), HasSubstr("integer out of range"));
  s.env = {{"AMATERS_STORAGE_WAL_SYNC_MODE", "sometimes"}};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "environment AMATERS_STORAGE_WAL_SYNC_MODE=\"sometimes\": must be one of always, interval, none");
  s.env = {{"AMATERS_CLUSTER_PEERS", "1:127.0.0.1:7879,,2:127.0.0.1:7889"}};
  EXPECT_THAT(ErrorOf(LoadConfig(s).status()),
              HasSubstr("environment AMATERS_CLUSTER_PEERS=\"1:127.0.0.1:7879,,2:127.0.0.1:7889\": peer \"\""));
  s.env = {{"AMATERS_CLUSTER_PEERS", ""}};
  absl::StatusOr<Config> c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->cluster.peers, IsEmpty());
}

TEST(LoadConfigTest, UnknownEnvVariablesAreErrorsExceptReservedOnes) {
  ConfigSources s;
  s.env = {{"AMATERS_SERVER_BIND_ADRESS", "127.0.0.1:1"}};
  EXPECT_EQ(LoadConfig(s).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf(LoadConfig(s).status()),
              HasSubstr("environment AMATERS_SERVER_BIND_ADRESS: not a configuration variable (did you "
                        "mean AMATERS_SERVER_BIND_ADDRESS?)"));
  s.env = {{"AMATERS_CONFIG", "/etc/amaters.toml"}};
  EXPECT_THAT(ErrorOf(LoadConfig(s).status()), HasSubstr("environment AMATERS_CONFIG: not a configuration"));

  s.env = {{"AMATERS_KV_SEED", "1"},       {"AMATERS_REWRITE", "1"},   {"AMATERS_SEED", "7"},
           {"AMATERS_TEST_ANYTHING", "x"}, {"AMATERS_SIM_SEEDS", "9"}, {"AMATERS_BENCH_N", "1"},
           {"AMATERS_FUZZ_RUNS", "1"},     {"amaters_server_x", "1"},  {"HOME", "/root"}};
  absl::StatusOr<Config> c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Values(*c), Values(Config{}));
  EXPECT_TRUE(IsReservedEnvName("AMATERS_TEST_FOO"));
  EXPECT_FALSE(IsReservedEnvName("AMATERS_SERVER_DATA_DIR"));
  EXPECT_FALSE(IsReservedEnvName("AMATERS_SEEDS"));
}

TEST(LoadConfigTest, Overrides) {
  ConfigSources s;
  s.overrides = {"cluster.peers=1:127.0.0.1:7879,2:127.0.0.1:7889", "network.tls_enabled=false",
                 "server.data_dir=/a=b"};  // the value may contain '='
  absl::StatusOr<Config> c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cluster.peers.size(), 2u);
  EXPECT_EQ(c->server.data_dir, "/a=b");

  s.overrides = {"server.bind_address"};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()), "override \"server.bind_address\": expected section.key=value");
  s.overrides = {"storage.wal.sync_mod=none"};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "override \"storage.wal.sync_mod=none\": unknown key storage.wal.sync_mod (did you mean "
            "storage.wal.sync_mode?)");
  s.overrides = {"storage.wal.sync_mode=sometimes"};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "override storage.wal.sync_mode=\"sometimes\": must be one of always, interval, none");
  s.overrides = {"server.bind_address=127.0.0.1:0"};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "override server.bind_address=\"127.0.0.1:0\": address \"127.0.0.1:0\": port 0 is not in 1..65535");
}

TEST(LoadConfigTest, CrossKeyErrorsNameTheirSources) {
  ConfigSources s;
  s.file = WriteFile("cross.toml", "[cluster]\nheartbeat_interval_ms = 100\n");
  s.env = {{"AMATERS_CLUSTER_ELECTION_TIMEOUT_MS", "200"}};
  const std::string path = *s.file;
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            absl::StrCat("invalid configuration: [cluster] election_timeout_ms = 200: must be at least 3 * "
                         "heartbeat_interval_ms (300) (cluster.election_timeout_ms from environment "
                         "AMATERS_CLUSTER_ELECTION_TIMEOUT_MS; cluster.heartbeat_interval_ms from config file ",
                         path, " line 2)"));
  s = ConfigSources{};
  s.overrides = {"cluster.peers=2:127.0.0.1:7879"};
  EXPECT_EQ(ErrorOf(LoadConfig(s).status()),
            "invalid configuration: [cluster] peers does not contain node_id 1 (a node listens for peers on "
            "its own entry) (cluster.node_id from the defaults; cluster.peers from override cluster.peers)");
}

// ---- File errors -----------------------------------------------------------------------------

TEST(LoadConfigTest, BadValueInFileNamesFileLineAndKey) {
  absl::StatusOr<Config> c = LoadText("bad_value.toml", "[storage.wal]\nsegment_size_mb = 64\nsync_mode = \"sometimes\"\n");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf(c.status()),
            absl::StrCat("config file ", TempDir(),
                         "/bad_value.toml: line 3: [storage.wal] sync_mode = \"sometimes\": must be one of "
                         "always, interval, none"));
  c = LoadText("bad_int.toml", "[storage.wal]\nsegment_size_mb = -5\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 2: [storage.wal] segment_size_mb = -5: must be in 1..1024"));
  c = LoadText("bad_addr.toml", "[metrics]\nbind_address = \"localhost\"\n");
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr("line 2: [metrics] bind_address = \"localhost\": address \"localhost\": expected host:port"));
}

TEST(LoadConfigTest, UnknownKeysAndSections) {
  absl::StatusOr<Config> c = LoadText("unknown_key.toml", "[server]\ndata_dir = \"d\"\nbind_adress = \"x\"\n");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf(c.status()), absl::StrCat("config file ", TempDir(),
                                              "/unknown_key.toml: line 3: unknown key [server] bind_adress "
                                              "(did you mean bind_address?)"));
  c = LoadText("wrong_section.toml", "[server]\nnode_id = 3\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 2: unknown key [server] node_id (did you mean [cluster] node_id?)"));
  c = LoadText("top_level.toml", "bind_address = \"127.0.0.1:1\"\n");
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr("line 1: unknown key bind_address outside any section (did you mean [server] bind_address?)"));
  c = LoadText("unknown_section.toml", "[server]\n\n[servr]\nbind_address = \"127.0.0.1:1\"\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 3: unknown section [servr] (did you mean [server]?)"));
  c = LoadText("unknown_subsection.toml", "[storage.wall]\nsync_mode = \"none\"\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 1: unknown section [storage.wall] (did you mean [storage.wal]?)"));
  c = LoadText("storage_key.toml", "[storage]\nsync_mode = \"none\"\n");
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr("line 2: unknown key [storage] sync_mode (did you mean [storage.wal] sync_mode?)"));
  c = LoadText("no_suggestion.toml", "[logging]\ncolour = true\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 2: unknown key [logging] colour"));
  EXPECT_THAT(ErrorOf(c.status()), ::testing::Not(HasSubstr("did you mean")));
  // The first problem in file order is reported.
  c = LoadText("two_errors.toml", "[server]\nzzz = 1\naaa = 2\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 2: unknown key [server] zzz"));
}

TEST(LoadConfigTest, WrongTypes) {
  absl::StatusOr<Config> c = LoadText("type_int.toml", "[cluster]\nnode_id = \"1\"\n");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorOf(c.status()), absl::StrCat("config file ", TempDir(),
                                              "/type_int.toml: line 2: [cluster] node_id: expected an "
                                              "integer, got string"));
  c = LoadText("type_float.toml", "[storage.wal]\nsegment_size_mb = 64.0\n");
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr("[storage.wal] segment_size_mb: expected an integer, got floating-point number"));
  c = LoadText("type_bool.toml", "[network]\ntls_enabled = \"true\"\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("[network] tls_enabled: expected a boolean, got string"));
  c = LoadText("type_str.toml", "[server]\ndata_dir = 5\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("[server] data_dir: expected a string, got integer"));
  c = LoadText("type_peers.toml", "[cluster]\npeers = \"1:127.0.0.1:7879\"\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("[cluster] peers: expected an array of strings, got string"));
  c = LoadText("type_peer_item.toml", "[cluster]\npeers = [\n  \"1:127.0.0.1:7879\",\n  2,\n]\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 4: [cluster] peers[1]: expected a string, got integer"));
  c = LoadText("bad_peer_item.toml", "[cluster]\npeers = [\"1:127.0.0.1:7879\", \"2:127.0.0.1\"]\n");
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr("line 2: [cluster] peers[1]: peer \"2:127.0.0.1\": expected id:host:port"));
  c = LoadText("type_section.toml", "server = 5\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 1: [server]: expected a table, got integer"));
}

TEST(LoadConfigTest, SyntaxErrorHasLineAndColumn) {
  absl::StatusOr<Config> c = LoadText("syntax.toml", "[server]\ndata_dir = \"d\"\nbind_address = \n");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf(c.status()),
              HasSubstr(absl::StrCat("config file ", TempDir(), "/syntax.toml: line 3, column ")));
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("TOML syntax error: "));
  c = LoadText("duplicate.toml", "[server]\ndata_dir = \"a\"\ndata_dir = \"b\"\n");
  EXPECT_THAT(ErrorOf(c.status()), HasSubstr("line 3, column "));
}

TEST(LoadConfigTest, MissingFileIsNotFound) {
  ConfigSources s;
  s.file = TempDir() + "/does/not/exist.toml";
  absl::Status status = LoadConfig(s).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ErrorOf(status), HasSubstr(*s.file));
  s.file = TempDir();
  status = LoadConfig(s).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorOf(status), HasSubstr("is a directory"));
}

// ---- Validation ------------------------------------------------------------------------------

struct Rule {
  const char* name;
  std::function<void(Config&)> mutate;
  const char* message;  // the whole Validate message; "" = valid
};

TEST(ValidateTest, EveryRule) {
  const std::vector<Rule> rules = {
      // Addresses.
      {"bind no port", [](Config& c) { c.server.bind_address = "localhost"; },
       "[server] bind_address = \"localhost\": address \"localhost\": expected host:port"},
      {"bind port 0", [](Config& c) { c.server.bind_address = "127.0.0.1:0"; },
       "[server] bind_address = \"127.0.0.1:0\": address \"127.0.0.1:0\": port 0 is not in 1..65535"},
      {"bind port 65536", [](Config& c) { c.server.bind_address = "127.0.0.1:65536"; },
       "[server] bind_address = \"127.0.0.1:65536\": address \"127.0.0.1:65536\": port 65536 is not in "
       "1..65535"},
      {"bind port text", [](Config& c) { c.server.bind_address = "127.0.0.1:http"; },
       "[server] bind_address = \"127.0.0.1:http\": address \"127.0.0.1:http\": port \"http\" is not a number"},
      {"bind empty host", [](Config& c) { c.server.bind_address = ":7878"; },
       "[server] bind_address = \":7878\": address \":7878\": host is empty"},
      {"bind ipv6 without brackets", [](Config& c) { c.server.bind_address = "::1:7878"; },
       "[server] bind_address = \"::1:7878\": address \"::1:7878\": IPv6 host \"::1\" needs brackets, e.g. "
       "[::1]:7878"},
      {"bind ipv6", [](Config& c) { c.server.bind_address = "[::1]:7878"; }, ""},
      {"bind port 65535", [](Config& c) { c.server.bind_address = "0.0.0.0:65535"; }, ""},
      {"metrics bind", [](Config& c) { c.metrics.bind_address = "127.0.0.1:0"; },
       "[metrics] bind_address = \"127.0.0.1:0\": address \"127.0.0.1:0\": port 0 is not in 1..65535"},
      {"same listen address", [](Config& c) { c.metrics.bind_address = "127.0.0.1:7878"; },
       "listen address conflict: [server] bind_address 127.0.0.1:7878 and [metrics] bind_address "
       "127.0.0.1:7878"},
      {"wildcard listen conflict", [](Config& c) { c.metrics.bind_address = "0.0.0.0:7878"; },
       "listen address conflict: [server] bind_address 127.0.0.1:7878 and [metrics] bind_address "
       "0.0.0.0:7878"},
      {"peer port conflict",
       [](Config& c) { c.cluster.peers = {{1, "127.0.0.1", 9090}, {2, "127.0.0.1", 7889}}; },
       "listen address conflict: [metrics] bind_address 127.0.0.1:9090 and this node's peer address "
       "(cluster.peers entry 1) 127.0.0.1:9090"},
      {"other node may use our port on another host",
       [](Config& c) { c.cluster.peers = {{1, "127.0.0.1", 7879}, {2, "10.0.0.2", 7878}}; }, ""},
      // Paths and names.
      {"data_dir empty", [](Config& c) { c.server.data_dir = ""; },
       "[server] data_dir = \"\": must not be empty"},
      {"cluster_token empty", [](Config& c) { c.cluster.cluster_token = ""; },
       "[cluster] cluster_token = \"\": must not be empty"},
      // Membership.
      {"existing without peers",
       [](Config& c) {
         c.cluster.initial_cluster_state = "existing";
         c.cluster.peers = {};
       },
       "[cluster] initial_cluster_state = \"existing\" needs peers: this node's entry and at "
       "least one member of the cluster it joins"},
      {"existing with only itself",
       [](Config& c) {
         c.cluster.initial_cluster_state = "existing";
         c.cluster.peers = {{1, "127.0.0.1", 7879}};
       },
       "[cluster] initial_cluster_state = \"existing\" needs peers: this node's entry and at "
       "least one member of the cluster it joins"},
      {"existing with a member",
       [](Config& c) {
         c.cluster.initial_cluster_state = "existing";
         c.cluster.peers = {{1, "127.0.0.1", 7879}, {2, "10.0.0.2", 7879}};
       },
       ""},
      {"node_id 0", [](Config& c) { c.cluster.node_id = 0; }, "[cluster] node_id = 0: must be at least 1"},
      {"peer id 0", [](Config& c) { c.cluster.peers = {{0, "127.0.0.1", 7879}}; },
       "[cluster] peers = [\"0:127.0.0.1:7879\"]: peer \"0:127.0.0.1:7879\": id must be at least 1"},
      {"peer port 0", [](Config& c) { c.cluster.peers = {{1, "127.0.0.1", 0}}; },
       "[cluster] peers = [\"1:127.0.0.1:0\"]: peer \"1:127.0.0.1:0\": port 0 is not in 1..65535"},
      {"peer bad host", [](Config& c) { c.cluster.peers = {{1, "a b", 1}}; },
       "[cluster] peers = [\"1:a b:1\"]: peer \"1:a b:1\": host \"a b\" contains ' ' (expected a host name or "
       "an IP address)"},
      {"duplicate peer id",
       [](Config& c) { c.cluster.peers = {{1, "127.0.0.1", 7879}, {1, "127.0.0.1", 7889}}; },
       "[cluster] peers: id 1 appears twice (\"1:127.0.0.1:7879\" and \"1:127.0.0.1:7889\")"},
      {"duplicate peer address",
       [](Config& c) { c.cluster.peers = {{1, "127.0.0.1", 7879}, {2, "127.0.0.1", 7879}}; },
       "[cluster] peers: address 127.0.0.1:7879 appears twice (ids 1 and 2)"},
      {"peers without node_id",
       [](Config& c) {
         c.cluster.node_id = 3;
         c.cluster.peers = {{1, "127.0.0.1", 7879}, {2, "127.0.0.1", 7889}};
       },
       "[cluster] peers does not contain node_id 3 (a node listens for peers on its own entry)"},
      {"three nodes",
       [](Config& c) {
         c.cluster.node_id = 3;
         c.cluster.peers = {{1, "127.0.0.1", 7879}, {2, "127.0.0.1", 7889}, {3, "127.0.0.1", 7899}};
       },
       ""},
      // Timing.
      {"heartbeat 0", [](Config& c) { c.cluster.heartbeat_interval_ms = 0; },
       "[cluster] heartbeat_interval_ms = 0: must be in 1..10000"},
      {"heartbeat 10001",
       [](Config& c) {
         c.cluster.heartbeat_interval_ms = 10001;
         c.cluster.election_timeout_ms = 100000;
       },
       "[cluster] heartbeat_interval_ms = 10001: must be in 1..10000"},
      {"heartbeat 10000",
       [](Config& c) {
         c.cluster.heartbeat_interval_ms = 10000;
         c.cluster.election_timeout_ms = 30000;
       },
       ""},
      {"election below 3 heartbeats", [](Config& c) { c.cluster.election_timeout_ms = 299; },
       "[cluster] election_timeout_ms = 299: must be at least 3 * heartbeat_interval_ms (300)"},
      {"election exactly 3 heartbeats", [](Config& c) { c.cluster.election_timeout_ms = 300; }, ""},
      {"election too long", [](Config& c) { c.cluster.election_timeout_ms = 600001; },
       "[cluster] election_timeout_ms = 600001: must be in 1..600000"},
      // WAL.
      {"segment 0", [](Config& c) { c.storage.wal.segment_size_mb = 0; },
       "[storage.wal] segment_size_mb = 0: must be in 1..1024"},
      {"segment 1025", [](Config& c) { c.storage.wal.segment_size_mb = 1025; },
       "[storage.wal] segment_size_mb = 1025: must be in 1..1024"},
      {"segment 1 and 1024", [](Config& c) { c.storage.wal.segment_size_mb = 1024; }, ""},
      {"sync_mode", [](Config& c) { c.storage.wal.sync_mode = "sometimes"; },
       "[storage.wal] sync_mode = \"sometimes\": must be one of always, interval, none"},
      {"sync_mode is case sensitive", [](Config& c) { c.storage.wal.sync_mode = "Always"; },
       "[storage.wal] sync_mode = \"Always\": must be one of always, interval, none"},
      {"sync_interval 0", [](Config& c) { c.storage.wal.sync_interval_ms = 0; },
       "[storage.wal] sync_interval_ms = 0: must be in 1..60000"},
      // Limits.
      {"max_request_bytes 0", [](Config& c) { c.server.max_request_bytes = 0; },
       "[server] max_request_bytes = 0: must be in 1..8388608"},
      {"max_request_bytes 8 MiB", [](Config& c) { c.server.max_request_bytes = 8 << 20; }, ""},
      {"max_request_bytes above 8 MiB", [](Config& c) { c.server.max_request_bytes = (8 << 20) + 1; },
       "[server] max_request_bytes = 8388609: must be in 1..8388608"},
      {"key+value above request is allowed",
       [](Config& c) {
         c.server.max_key_bytes = 1 << 20;
         c.server.max_value_bytes = 1 << 20;
         c.server.max_request_bytes = 1 << 20;
       },
       ""},
      {"max_key_bytes 0", [](Config& c) { c.server.max_key_bytes = 0; },
       "[server] max_key_bytes = 0: must be in 1..8388608"},
      {"max_value_bytes 0", [](Config& c) { c.server.max_value_bytes = 0; },
       "[server] max_value_bytes = 0: must be in 1..8388608"},
      {"max_inflight 0", [](Config& c) { c.server.max_inflight_requests = 0; },
       "[server] max_inflight_requests = 0: must be in 1..1000000"},
      {"request_timeout 0", [](Config& c) { c.server.request_timeout_ms = 0; },
       "[server] request_timeout_ms = 0: must be in 1..600000"},
      {"peer queue 0", [](Config& c) { c.network.peer_queue_max_messages = 0; },
       "[network] peer_queue_max_messages = 0: must be in 1..1000000"},
      {"shutdown 99", [](Config& c) { c.server.shutdown_timeout_ms = 99; },
       "[server] shutdown_timeout_ms = 99: must be in 100..600000"},
      {"shutdown 600001", [](Config& c) { c.server.shutdown_timeout_ms = 600001; },
       "[server] shutdown_timeout_ms = 600001: must be in 100..600000"},
      {"shutdown 100", [](Config& c) { c.server.shutdown_timeout_ms = 100; }, ""},
      {"shutdown 600000", [](Config& c) { c.server.shutdown_timeout_ms = 600000; }, ""},
      // TLS.
      {"tls without cert",
       [](Config& c) {
         c.network.tls_enabled = true;
         c.network.tls_key = "k";
       },
       "[network] tls_enabled = true needs tls_cert (a PEM certificate file)"},
      {"tls without key",
       [](Config& c) {
         c.network.tls_enabled = true;
         c.network.tls_cert = "c";
       },
       "[network] tls_enabled = true needs tls_key (a PEM private key file)"},
      {"tls",
       [](Config& c) {
         c.network.tls_enabled = true;
         c.network.tls_cert = "c";
         c.network.tls_key = "k";
       },
       ""},
      {"client cert without tls",
       [](Config& c) {
         c.network.require_client_cert = true;
         c.network.tls_ca = "ca";
       },
       "[network] require_client_cert = true needs tls_enabled = true"},
      {"client cert without ca",
       [](Config& c) {
         c.network.tls_enabled = true;
         c.network.tls_cert = "c";
         c.network.tls_key = "k";
         c.network.require_client_cert = true;
       },
       "[network] require_client_cert = true needs tls_ca (the CA that signs client certificates)"},
      {"mtls",
       [](Config& c) {
         c.network.tls_enabled = true;
         c.network.tls_cert = "c";
         c.network.tls_key = "k";
         c.network.tls_ca = "ca";
         c.network.require_client_cert = true;
       },
       ""},
      // Logging.
      {"log level", [](Config& c) { c.logging.level = "verbose"; },
       "[logging] level = \"verbose\": must be one of debug, info, warn, error"},
      {"log format", [](Config& c) { c.logging.format = "xml"; },
       "[logging] format = \"xml\": must be one of text, json"},
      {"log levels", [](Config& c) { c.logging.level = "error"; }, ""},
  };
  for (const Rule& rule : rules) {
    Config c;
    rule.mutate(c);
    const absl::Status s = Validate(c);
    if (std::string(rule.message).empty()) {
      EXPECT_TRUE(s.ok()) << rule.name << ": " << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << rule.name;
      EXPECT_EQ(ErrorOf(s), rule.message) << rule.name;
    }
  }
}

// ---- Peers and addresses ---------------------------------------------------------------------

TEST(ParsePeerTest, Good) {
  absl::StatusOr<PeerAddress> p = ParsePeer("1:127.0.0.1:7879");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, 1u);
  EXPECT_EQ(p->host, "127.0.0.1");
  EXPECT_EQ(p->port, 7879);
  EXPECT_EQ(p->ToString(), "127.0.0.1:7879");

  p = ParsePeer("18446744073709551615:node-3.example.com:65535");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->id, 18446744073709551615u);
  EXPECT_EQ(p->host, "node-3.example.com");
  EXPECT_EQ(p->port, 65535);

  p = ParsePeer("2:[::1]:7889");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->host, "[::1]");
  EXPECT_EQ(p->ToString(), "[::1]:7889");
}

TEST(ParsePeerTest, Bad) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "peer \"\": expected id:host:port"},
      {"1", "peer \"1\": expected id:host:port"},
      {"1:127.0.0.1", "peer \"1:127.0.0.1\": expected id:host:port"},
      {"127.0.0.1:7879", "peer \"127.0.0.1:7879\": expected id:host:port"},
      {"x:h:1", "peer \"x:h:1\": id \"x\" is not a positive integer (expected id:host:port)"},
      {"-1:h:1", "peer \"-1:h:1\": id \"-1\" is not a positive integer (expected id:host:port)"},
      {"18446744073709551616:h:1",
       "peer \"18446744073709551616:h:1\": id \"18446744073709551616\" is not a positive integer (expected "
       "id:host:port)"},
      {"0:h:1", "peer \"0:h:1\": id must be at least 1"},
      {"1::1", "peer \"1::1\": host is empty"},
      {"1:h:0", "peer \"1:h:0\": port 0 is not in 1..65535"},
      {"1:h:65536", "peer \"1:h:65536\": port 65536 is not in 1..65535"},
      {"1:h:abc", "peer \"1:h:abc\": port \"abc\" is not a number"},
      {"1:h:", "peer \"1:h:\": port \"\" is not a number"},
      {"1:h:+80", "peer \"1:h:+80\": port \"+80\" is not a number"},
      {"1:h :1", "peer \"1:h :1\": host \"h \" contains ' ' (expected a host name or an IP address)"},
      {"1:::1:5", "peer \"1:::1:5\": IPv6 host \"::1\" needs brackets, e.g. [::1]:7878"},
      {"1:[::1:5", "peer \"1:[::1:5\": host \"[::1\" has unbalanced brackets"},
      {"1:[]:5", "peer \"1:[]:5\": host \"[]\" has unbalanced brackets"},
  };
  for (const auto& [spec, message] : cases) {
    absl::StatusOr<PeerAddress> p = ParsePeer(spec);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_EQ(ErrorOf(p.status()), message) << spec;
  }
}

TEST(ParseHostPortTest, KeepsHostAsWritten) {
  absl::StatusOr<HostPort> hp = ParseHostPort("[::]:9090");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->host, "[::]");
  EXPECT_EQ(hp->port, 9090);
  EXPECT_FALSE(ParseHostPort("127.0.0.1").ok());
}

TEST(PathsTest, ResolvePath) {
  EXPECT_EQ(ResolvePath("/abs/data", "/work"), "/abs/data");
  EXPECT_EQ(ResolvePath("data", "/work"), "/work/data");
  EXPECT_EQ(ResolvePath("./data", "/work/"), "/work/data");
  EXPECT_EQ(ResolvePath("././data/x", "/work"), "/work/data/x");
  EXPECT_EQ(ResolvePath("../data", "/work"), "/work/../data");
  EXPECT_EQ(ResolvePath(".", "/work"), "/work");
  EXPECT_EQ(ResolvePath("data", "/"), "/data");
  EXPECT_EQ(ResolvePath("", "/work"), "");
  EXPECT_EQ(ResolvePath("data", ""), "data");
}

TEST(PathsTest, PidFile) {
  Config c;
  EXPECT_EQ(PidFilePath(c), "./data/amaters-server.pid");
  c.server.data_dir = "/var/lib/amaters/";
  EXPECT_EQ(PidFilePath(c), "/var/lib/amaters/amaters-server.pid");
  c.server.pid_file = "/run/a.pid";
  EXPECT_EQ(PidFilePath(c), "/run/a.pid");
}

TEST(WalTest, SyncModeAndWriterOptions) {
  Config c;
  EXPECT_EQ(*WalSyncMode(c), wal::SyncMode::kAlways);
  c.storage.wal.sync_mode = "interval";
  c.storage.wal.sync_interval_ms = 40;
  c.storage.wal.segment_size_mb = 2;
  absl::StatusOr<wal::WriterOptions> o = WalWriterOptions(c);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->sync_mode, wal::SyncMode::kInterval);
  EXPECT_EQ(o->sync_interval_ms, 40u);
  EXPECT_EQ(o->segment_size_bytes, 2u << 20);
  c.storage.wal.sync_mode = "none";
  EXPECT_EQ(*WalSyncMode(c), wal::SyncMode::kNone);
  c.storage.wal.sync_mode = "bogus";
  EXPECT_FALSE(WalSyncMode(c).ok());
  EXPECT_FALSE(WalWriterOptions(c).ok());
}

// ---- The generated file ----------------------------------------------------------------------

TEST(GenerateDefaultConfigTest, RoundTripsToTheDefaults) {
  const std::string text = GenerateDefaultConfig();
  ConfigSources s;
  s.file = WriteFile("generated.toml", text);
  absl::StatusOr<Config> c = LoadConfig(s);
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << text;
  EXPECT_EQ(Values(*c), Values(Config{}));
}

TEST(GenerateDefaultConfigTest, EveryKeyIsPresentWithACommentAboutReload) {
  const std::string text = GenerateDefaultConfig();
  for (const char* section : {"[server]", "[storage.wal]", "[network]", "[cluster]", "[logging]",
                                     "[metrics]"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("\n", section, "\n")));
  }
  for (const ConfigKeyInfo& k : ConfigKeys()) {
    const std::string line = absl::StrCat("\n", k.name, " = ", k.default_value, "\n");
    const size_t at = text.find(line);
    ASSERT_NE(at, std::string::npos) << k.key;
    // The line above the key is its comment.
    const size_t comment = text.rfind("\n# ", at - 1);
    ASSERT_NE(comment, std::string::npos);
    const std::string comment_line = text.substr(comment + 1, at - comment - 1);
    EXPECT_THAT(comment_line, HasSubstr(k.description)) << k.key;
    EXPECT_THAT(comment_line, HasSubstr(k.reloadable ? "SIGHUP: reloaded." : "SIGHUP: restart needed."))
        << k.key;
  }
}

// ---- Reload ----------------------------------------------------------------------------------

TEST(PlanReloadTest, NothingChanged) {
  ReloadPlan plan = PlanReload(Config{}, Config{});
  EXPECT_THAT(plan.applied, IsEmpty());
  EXPECT_THAT(plan.ignored, IsEmpty());
  EXPECT_EQ(Values(plan.next), Values(Config{}));
}

TEST(PlanReloadTest, AppliesReloadableKeysAndReportsTheRest) {
  Config running;
  running.network.tls_cert = "old.pem";
  Config reread = running;
  reread.logging.level = "debug";
  reread.logging.format = "json";
  reread.server.max_request_bytes = 2 << 20;
  reread.server.max_key_bytes = 100;
  reread.server.max_value_bytes = 200;
  reread.server.max_inflight_requests = 5;
  reread.server.request_timeout_ms = 1234;
  reread.server.shutdown_timeout_ms = 2000;
  reread.server.bind_address = "127.0.0.1:1";
  reread.server.data_dir = "/elsewhere";
  reread.network.tls_cert = "new.pem";
  reread.cluster.peers = {{1, "127.0.0.1", 7879}};
  reread.storage.wal.sync_mode = "none";
  reread.metrics.bind_address = "127.0.0.1:2";

  ReloadPlan plan = PlanReload(running, reread);
  EXPECT_THAT(plan.applied, ElementsAre("server.shutdown_timeout_ms", "server.max_request_bytes",
                                        "server.max_key_bytes", "server.max_value_bytes",
                                        "logging.level", "logging.format"));
  // The runtime takes these two once at start (they size and time its request tracking).
  EXPECT_THAT(plan.ignored, ElementsAre("server.bind_address", "server.data_dir",
                                        "server.max_inflight_requests", "server.request_timeout_ms",
                                        "storage.wal.sync_mode", "network.tls_cert", "cluster.peers",
                                        "metrics.bind_address"));
  EXPECT_EQ(plan.next.logging.level, "debug");
  EXPECT_EQ(plan.next.logging.format, "json");
  EXPECT_EQ(plan.next.server.max_request_bytes, 2u << 20);
  EXPECT_EQ(plan.next.server.max_key_bytes, 100u);
  EXPECT_EQ(plan.next.server.max_value_bytes, 200u);
  EXPECT_EQ(plan.next.server.max_inflight_requests, running.server.max_inflight_requests);
  EXPECT_EQ(plan.next.server.request_timeout_ms, running.server.request_timeout_ms);
  EXPECT_EQ(plan.next.server.shutdown_timeout_ms, 2000u);
  // Non-reloadable keys keep their running values.
  EXPECT_EQ(plan.next.server.bind_address, running.server.bind_address);
  EXPECT_EQ(plan.next.server.data_dir, running.server.data_dir);
  EXPECT_EQ(plan.next.network.tls_cert, "old.pem");
  EXPECT_THAT(plan.next.cluster.peers, IsEmpty());
  EXPECT_EQ(plan.next.storage.wal.sync_mode, "always");
  EXPECT_EQ(plan.next.metrics.bind_address, running.metrics.bind_address);
  EXPECT_TRUE(Validate(plan.next).ok());
}

}  // namespace
}  // namespace amaters::server
