#include "server/app.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/failover/config.h"
#include "engine/node/timing.h"
#include "engine/base/crc32c.h"
#include "grpcpp/grpcpp.h"
#include "httplib.h"
#include "engine/alerts/event.h"
#include "engine/alerts/rules.h"
#include "engine/health/health.h"
#include "engine/kv/auto_compaction.h"
#include "server/admin/admin_server.h"
#include "server/admin/metrics.h"
#include "server/alert_webhook.h"
#include "server/cluster_identity.h"
#include "server/log.h"
#include "server/runtime/runtime.h"
#include "server/service/admin_service.h"
#include "server/service/etcd_handler.h"
#include "server/service/etcd_service.h"
#include "server/service/peer_service.h"
#include "server/service/watch_stream.h"
#include "server/tls.h"

namespace amaters::server {
namespace {

// gRPC's allowance on top of max_request_bytes for the envelope (etcd's grpcOverheadBytes).
constexpr int kGrpcOverheadBytes = 512 * 1024;

// --- pid file ---------------------------------------------------------------------------------

absl::StatusOr<pid_t> ReadPid(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no pid file at ", path));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int64_t pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) || pid <= 0) {
    return absl::DataLossError(absl::StrCat("pid file ", path, " does not hold a pid"));
  }
  return static_cast<pid_t>(pid);
}

// A zombie (exited, not yet reaped by its parent) counts as gone.
bool ProcessAlive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  if (!std::getline(stat, line)) return true;
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

absl::Status WritePidFile(const std::string& path) {
  if (absl::StatusOr<pid_t> old = ReadPid(path); old.ok() && ProcessAlive(*old) &&
                                                 *old != getpid()) {
    return absl::AlreadyExistsError(absl::StrCat("another amaters-server (pid ", *old,
                                                 ") is running with pid file ", path));
  }
  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  out << getpid() << "\n";
  out.close();
  if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write pid file ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// --- listening addresses ------------------------------------------------------------------------

// Fails with the OS's reason if `address` cannot be bound right now (gRPC's own error for an
// occupied port is a null server and a log line; this names the address and the errno).
absl::Status CheckBindable(const std::string& what, const std::string& address) {
  absl::StatusOr<HostPort> hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  std::string host = hp->host;
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(hp->port).c_str(), &hints, &res); rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": cannot resolve ", address, ": ", gai_strerror(rc)));
  }
  absl::Status result = absl::OkStatus();
  int fd = socket(res->ai_family, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    const int err = errno;
    result = absl::UnavailableError(
        absl::StrCat(what, ": cannot listen on ", address, ": ", std::strerror(err)));
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(res);
  return result;
}

// --- status for the admin port --------------------------------------------------------------

const char* RoleJsonName(raft::Role role) {
  switch (role) {
    case raft::Role::kLeader: return "leader";
    case raft::Role::kCandidate: return "candidate";
    case raft::Role::kPreCandidate: return "pre-candidate";
    case raft::Role::kFollower: return "follower";
  }
  return "follower";
}

std::optional<RpcMethod> MethodFromName(const char* name) {
  const std::string n = name;
  for (int m = 0; m < kRpcMethodCount; ++m) {
    if (n == RpcMethodName(static_cast<RpcMethod>(m))) return static_cast<RpcMethod>(m);
  }
  return std::nullopt;
}

health::HealthConfig HealthConfigOf(const Config& c) {
  health::HealthConfig h;
  h.min_free_bytes = c.storage.min_free_bytes;
  return h;
}

// Free bytes for unprivileged users on the file system of `dir`; nullopt if statvfs fails.
std::optional<uint64_t> DiskFreeBytes(const std::string& dir) {
  struct statvfs st;
  if (statvfs(dir.c_str(), &st) != 0) return std::nullopt;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// The health model of engine/health on the runtime's view (docs/failover-and-alerts.md).
health::HealthReport EvaluateHealth(const RuntimeStatus& s, bool shutting_down,
                                    std::optional<uint64_t> disk_free,
                                    const health::HealthConfig& config) {
  health::HealthInputs in;
  in.shutting_down = shutting_down;
  if (!s.storage_error.empty()) in.storage = absl::InternalError(s.storage_error);
  if (!s.wal_error.empty()) in.wal = absl::InternalError(s.wal_error);
  in.wal_fsync_latency_ms = s.last_fsync_ms;
  in.disk_free_bytes = disk_free;
  in.commit = s.commit;
  in.applied = s.applied;
  health::ClusterView v;
  v.self = s.node_id;
  v.role = s.role;
  v.leader = s.leader;
  v.known_leader = s.known_leader;
  v.voters = s.voters;
  for (raft::NodeId id : s.voters_outgoing) {
    if (std::find(v.voters.begin(), v.voters.end(), id) == v.voters.end()) v.voters.push_back(id);
  }
  v.learners = s.learners;
  v.quorum_lost = s.quorum_lost;
  v.failed = s.failed_peers;
  health::SetClusterInputs(v, &in);
  return health::Evaluate(config, in);
}

std::string HealthStateName(health::State state) {
  // The admin API's spelling: starting, healthy, degraded, unhealthy, shutting_down.
  switch (state) {
    case health::State::kStarting: return "starting";
    case health::State::kHealthy: return "healthy";
    case health::State::kDegraded: return "degraded";
    case health::State::kUnhealthy: return "unhealthy";
    case health::State::kShuttingDown: return "shutting_down";
  }
  return "unhealthy";
}

AdminStatus BuildAdminStatus(const RuntimeStatus& s, const health::HealthReport& h,
                             double uptime) {
  AdminStatus a;
  a.node_id = s.node_id;
  a.role = RoleJsonName(s.role);
  a.leader_id = s.leader;
  a.term = s.term;
  a.commit_index = s.commit;
  a.last_log_index = s.last_index;
  a.snapshot_index = s.snapshot_index;
  a.first_log_index = s.first_log_index;
  a.applied_index = s.applied;
  a.num_nodes = s.num_nodes;
  a.voters.assign(s.voters.begin(), s.voters.end());
  a.voters_outgoing.assign(s.voters_outgoing.begin(), s.voters_outgoing.end());
  a.learners.assign(s.learners.begin(), s.learners.end());
  a.version = kVersion;
  a.uptime_seconds = uptime;
  for (const RuntimeStatus::Peer& p : s.peers) {
    if (s.role != raft::Role::kLeader) continue;
    PeerStatus ps;
    ps.id = p.id;
    ps.match = p.match;
    ps.next = p.next;
    ps.connected = p.connected;
    ps.learner = p.learner;
    ps.lag = s.last_index > p.match ? s.last_index - p.match : 0;
    a.peers.push_back(ps);
  }
  for (const health::Probe& p : h.probes) {
    a.health_detail.push_back(
        {p.name, absl::StrCat(HealthStateName(p.state), ": ", p.detail)});
  }
  if (!h.ready) a.health_detail.push_back({"not_ready", h.not_ready_reason});
  if (!h.accept_writes) a.health_detail.push_back({"writes_refused", h.reject_reason});
  a.health = HealthStateName(h.state);
  a.ready = h.ready;
  return a;
}

// Certificates are checked at start, every kCertCheckInterval and on SIGHUP.
constexpr auto kCertCheckInterval = std::chrono::hours(1);

// Reads the served certificate's notAfter: exports it, and reports CertificateExpiring (the
// rules fire under 30 days, critical under 7, and clear above).
void ReportCertificateExpiry(const Config& config, Runtime* runtime, Metrics* metrics) {
  absl::StatusOr<TlsFilesInfo> info = InspectTlsFiles(config);
  if (!info.ok()) {
    LogWarn("cannot read the TLS certificate's expiry", {F("error", info.status().message())});
    return;
  }
  metrics->SetCertificateExpiry(absl::ToDoubleSeconds(info->not_after - absl::UnixEpoch()));
  const int64_t days_left = absl::ToInt64Hours(info->not_after - absl::Now()) / 24;
  runtime->Report(alerts::CertificateExpiring{config.network.tls_cert, days_left});
}

void TransferLeadershipAway(Runtime* runtime, const Config& config) {
  const RuntimeStatus s = runtime->status();
  if (s.role != raft::Role::kLeader || s.peers.empty()) return;
  const RuntimeStatus::Peer* best = nullptr;
  for (const RuntimeStatus::Peer& p : s.peers) {
    if (p.connected && (best == nullptr || p.match > best->match)) best = &p;
  }
  if (best == nullptr) return;
  const raft::NodeId target = best->id;
  auto outcome = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> done = outcome->get_future();
  runtime->TransferLeadership(target, [outcome](absl::Status st) { outcome->set_value(st); });
  const auto wait = std::chrono::milliseconds(
      std::min(2 * config.cluster.election_timeout_ms, config.server.shutdown_timeout_ms));
  if (done.wait_for(wait) != std::future_status::ready) {
    LogWarn("leadership transfer before shutdown did not finish", {F("target", target)});
    return;
  }
  const absl::Status st = done.get();
  if (st.ok()) {
    LogInfo("leadership handed over before shutdown", {F("new_leader", target)});
  } else {
    LogWarn("leadership transfer before shutdown failed",
            {F("target", target), F("error", st.ToString())});
  }
}

HandlerLimits LimitsOf(const Config& c) {
  HandlerLimits l;
  l.max_request_bytes = c.server.max_request_bytes;
  l.max_key_bytes = c.server.max_key_bytes;
  l.max_value_bytes = c.server.max_value_bytes;
  l.request_timeout_ms = c.server.request_timeout_ms;
  l.max_inflight_requests = c.server.max_inflight_requests;
  return l;
}

void ConfigureLogFrom(const Config& c) {
  absl::StatusOr<LogLevel> level = ParseLogLevel(c.logging.level);
  ConfigureLog(level.ok() ? *level : LogLevel::kInfo, c.logging.format);
}

// The listening addresses, checked up front so that an occupied port is a clear error.
absl::Status CheckListeners(const Config& config, const std::string& peer_address) {
  if (absl::Status s = CheckBindable("client port", config.server.bind_address); !s.ok()) {
    return s;
  }
  if (!peer_address.empty()) {
    if (absl::Status s = CheckBindable("peer port", peer_address); !s.ok()) return s;
  }
  if (config.metrics.enabled) {
    return CheckBindable("admin HTTP", config.metrics.bind_address);
  }
  return absl::OkStatus();
}

// The runtime's options from the configuration (all but the on_fatal and on_alert callbacks).
// Resolves the cluster id, which for a node joining a running cluster asks its members.
absl::StatusOr<RuntimeOptions> RuntimeOptionsOf(const Config& config, const Config& tls_config,
                                                const std::string& data_dir,
                                                const std::string& peer_address,
                                                std::vector<RuntimePeer> peers,
                                                Metrics* metrics) {
  RuntimeOptions ro;
  ro.node_id = config.cluster.node_id;
  ro.data_dir = data_dir;
  absl::StatusOr<wal::WriterOptions> wal_options = WalWriterOptions(config);
  if (!wal_options.ok()) return wal_options.status();
  ro.node.wal = *wal_options;
  ro.node.max_pending_requests = config.server.max_inflight_requests;
  ro.node.snapshot_threshold_entries = config.storage.snapshot_threshold_entries;
  ro.node.snapshot_catchup_entries = config.storage.snapshot_catchup_entries;
  ro.node.max_snapshots = config.storage.max_snapshots;
  ro.node.snapshot_transfer.chunk_bytes = config.storage.snapshot_chunk_kb << 10;
  absl::StatusOr<kv::AutoCompactionPolicy> compaction = kv::ParseAutoCompaction(
      config.storage.auto_compaction_mode, config.storage.auto_compaction_retention);
  if (!compaction.ok()) return compaction.status();  // Validate has refused it already
  ro.auto_compaction = *compaction;
  ro.lease_checkpoint_interval_ms = config.storage.lease_checkpoint_interval_ms;
  // Raft counts time in ticks (a tenth of a heartbeat); node::ConfigureTiming is the one
  // mapping from [cluster]'s timing to ticks, shared with the simulator's swarm. A snapshot
  // transfer without progress fails after 30 s (or twenty election timeouts, if longer).
  failover::FailoverConfig timing;
  timing.heartbeat_interval_ms = config.cluster.heartbeat_interval_ms;
  timing.election_timeout_ms = config.cluster.election_timeout_ms;
  timing.election_jitter_min_ms = config.cluster.election_jitter_min_ms;
  timing.election_jitter_max_ms = config.cluster.election_jitter_max_ms;
  timing.max_consecutive_failures = static_cast<uint32_t>(config.cluster.max_consecutive_failures);
  timing.slow_replication_threshold_entries = config.cluster.slow_replication_threshold_entries;
  absl::StatusOr<node::DriverTiming> driver_timing =
      node::ConfigureTiming(timing, /*snapshot_timeout_floor_ms=*/30000, &ro.node);
  if (!driver_timing.ok()) return driver_timing.status();
  ro.node.alerts.dedup_window_ms = config.alerts.dedup_window_ms;
  ro.tick_ms = driver_timing->tick_ms;
  ro.requests = driver_timing->requests;
  ro.request_timeout_ms = config.server.request_timeout_ms;
  JoinOptions join;
  join.cluster_token = config.cluster.cluster_token;
  join.self = config.cluster.node_id;
  join.credentials = PeerChannelCredentials(tls_config);
  absl::StatusOr<uint64_t> cluster_id = ResolveClusterId(config, data_dir, join, &peers);
  if (!cluster_id.ok()) return cluster_id.status();
  ro.cluster_id = *cluster_id;
  ro.peers = std::move(peers);
  ro.join_existing = config.cluster.initial_cluster_state == "existing";
  ro.client_address = config.server.bind_address;
  ro.peer_address = peer_address;
  ro.peer_sender.queue_max_messages = config.network.peer_queue_max_messages;
  // Also for a single node: a member added later is reached through them.
  ro.peer_sender.credentials = PeerChannelCredentials(tls_config);
  ro.metrics = metrics;
  return ro;
}

// Counters already exported, so that each round adds only what is new.
struct StatusCounters {
  uint64_t leader_changes = 0;
  uint64_t elections = 0;
};

// One round of the main thread: the runtime's status as metric gauges.
void PublishStatusMetrics(const RuntimeStatus& s, Metrics* metrics, StatusCounters* counters) {
  metrics->SetRaftState(s.term, s.commit, s.applied, s.last_index,
                        s.role == raft::Role::kLeader, s.leader);
  for (; counters->leader_changes < s.leader_changes; ++counters->leader_changes) {
    metrics->IncLeaderChanges();
  }
  for (; counters->elections < s.elections; ++counters->elections) metrics->IncElections();
  metrics->SetPendingRequests(s.pending_requests);
  metrics->SetWalSizeBytes(s.wal_size_bytes);
  metrics->SetCompactionCount(s.compaction_count);
  metrics->SetMembers(s.num_nodes, s.learners.size());
  std::vector<uint64_t> others;
  for (const RuntimeStatus::Peer& p : s.peers) others.push_back(p.id);
  metrics->ForgetPeersExcept(others);
  for (const RuntimeStatus::Peer& p : s.peers) {
    metrics->SetPeerConnected(p.id, p.connected);
    if (s.role == raft::Role::kLeader) {
      metrics->SetPeerLag(p.id, s.last_index > p.match ? s.last_index - p.match : 0);
    } else {
      metrics->ClearPeerLag(p.id);
    }
  }
}

void PublishHealth(const health::HealthReport& h, std::optional<uint64_t> disk_free,
                   Metrics* metrics) {
  metrics->SetHealthState(HealthStateName(h.state));
  metrics->SetReady(h.ready);
  metrics->SetAcceptingWrites(h.accept_writes);
  if (disk_free) metrics->SetDiskFreeBytes(*disk_free);
}

// A node whose disk is nearly full (or whose storage failed) refuses writes at once, and says
// why. (A lost quorum is checked on the write path itself: EtcdHandler::Write.)
void UpdateWriteGate(const health::HealthReport& h, const RuntimeStatus& s, bool shutting_down,
                     EtcdHandler* handler, bool* accepting_writes) {
  if (h.accept_writes != *accepting_writes) {
    *accepting_writes = h.accept_writes;
    if (*accepting_writes) {
      LogInfo("accepting client writes again");
    } else {
      LogError("refusing client writes", {F("reason", h.reject_reason)});
    }
  }
  if (h.accept_writes || shutting_down) {
    handler->SetWriteGate(absl::OkStatus());
  } else if (!s.wal_error.empty() || !s.storage_error.empty()) {
    // Not a capacity problem: clients should go to another member.
    handler->SetWriteGate(absl::UnavailableError(absl::StrCat("etcdserver: ", h.reject_reason)));
  } else {
    handler->SetWriteGate(
        absl::ResourceExhaustedError(absl::StrCat("etcdserver: ", h.reject_reason)));
  }
}

// SIGHUP: reads the configuration again and applies what may change while running (the rest
// waits for a restart, and is logged); TLS files are staged again. False if it could not be read.
bool Reload(const ConfigSources& sources, const std::string& base_dir,
            const std::string& tls_stage_dir, Config* config, EtcdHandler* handler,
            AlertWebhook* webhook, std::mutex* health_mu, health::HealthConfig* health_config) {
  absl::StatusOr<Config> reread = LoadConfig(sources);
  if (!reread.ok()) {
    LogError("SIGHUP: configuration not reloaded", {F("error", reread.status().message())});
    return false;
  }
  if (reread->network.tls_enabled) {  // resolved like the running copy, to compare equal
    reread->network.tls_cert = ResolvePath(reread->network.tls_cert, base_dir);
    reread->network.tls_key = ResolvePath(reread->network.tls_key, base_dir);
    if (!reread->network.tls_ca.empty()) {
      reread->network.tls_ca = ResolvePath(reread->network.tls_ca, base_dir);
    }
  }
  ReloadPlan plan = PlanReload(*config, *reread);
  *config = plan.next;
  ConfigureLogFrom(*config);
  handler->SetLimits(LimitsOf(*config));
  webhook->Configure({config->alerts.webhook_url, config->alerts.webhook_timeout_ms,
                      config->alerts.webhook_max_retries});
  {
    std::lock_guard<std::mutex> lock(*health_mu);
    *health_config = HealthConfigOf(*config);
  }
  LogInfo("SIGHUP: configuration reloaded",
          {F("applied", plan.applied.empty() ? "-" : absl::StrJoin(plan.applied, ",")),
           F("ignored_need_restart",
             plan.ignored.empty() ? "-" : absl::StrJoin(plan.ignored, ","))});
  if (!config->network.tls_enabled) return true;
  absl::StatusOr<TlsFilesInfo> info = InspectTlsFiles(*config);
  absl::StatusOr<Config> staged =
      info.ok() ? StageTlsFiles(*config, tls_stage_dir) : absl::StatusOr<Config>(info.status());
  if (!staged.ok()) {
    LogError("SIGHUP: TLS files refused; the previous certificate stays in service",
             {F("error", staged.status().message())});
    return true;
  }
  LogInfo("SIGHUP: TLS certificate reloaded; new connections use it, open ones are kept",
          {F("subject", info->subject), F("not_after", FormatTlsTime(info->not_after)),
           F("ca_certificates", info->ca_certificates)});
  if (info->not_after < absl::Now()) {
    LogWarn("TLS certificate has expired", {F("not_after", FormatTlsTime(info->not_after))});
  }
  return true;
}

// The client port: etcd's KV, Maintenance and Cluster services and our Admin service; null if
// it cannot listen.
std::unique_ptr<grpc::Server> StartClientServer(const Config& config, const Config& tls_config,
                                                const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.server.bind_address, ServerCredentials(tls_config, false),
                           &port);
  // gRPC's cap is the largest max_request_bytes may ever be (it reloads on SIGHUP); the handler
  // enforces the configured value with etcd's "request is too large".
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxRequestBytesLimit) + kGrpcOverheadBytes);
  builder.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  // gRPC sets SO_REUSEPORT by default, which would let a second server share our port.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (grpc::Service* service : services) builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server && port == 0) server->Shutdown();
  return port == 0 ? nullptr : std::move(server);
}

// The peer port (Raft messages, forwarded requests, joins); null if it cannot listen.
std::unique_ptr<grpc::Server> StartPeerServer(const std::string& address,
                                              const Config& tls_config, grpc::Service* service) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, ServerCredentials(tls_config, true), &port);
  builder.SetMaxReceiveMessageSize(kPeerMaxMessageBytes);
  builder.SetMaxSendMessageSize(kPeerMaxMessageBytes);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Peer senders ping every 2 s to notice dead links (peer_sender.cc); gRPC's default policy
  // would answer GOAWAY "too_many_pings" and cut idle streams.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server && port == 0) server->Shutdown();
  return port == 0 ? nullptr : std::move(server);
}

// What a running server is made of, for Shutdown (peer_server and admin may be null).
struct Serving {
  Runtime* runtime;
  EtcdHandler* handler;
  grpc::Server* client_server;
  grpc::Server* peer_server;
  AdminServer* admin;
  AlertWebhook* webhook;
};

// Graceful shutdown: stop accepting, let in-flight requests finish (bounded), stop the node,
// sync and close RocksDB, remove the pid file. Returns the exit code.
int Shutdown(int exit_code, const Config& config, const Serving& s,
             std::atomic<bool>* shutting_down, const std::string& pid_path) {
  // A leader hands leadership to its most up-to-date peer first, so that the cluster keeps
  // taking writes instead of waiting out an election timeout after we are gone (as etcd does).
  if (exit_code == 0) TransferLeadershipAway(s.runtime, config);
  shutting_down->store(true);
  s.handler->StartDraining();  // new requests: UNAVAILABLE, so clients move to another member
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(config.server.shutdown_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline && s.handler->inflight() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Then close the port at once: gRPC's Shutdown would otherwise wait for idle client
  // connections until its deadline. Requests still in flight past the deadline are cancelled
  // and fail (UNAVAILABLE) when the runtime stops, which lets Shutdown return.
  std::thread client_stopper(
      [&] { s.client_server->Shutdown(std::chrono::system_clock::now()); });
  absl::Status closed = s.runtime->Stop();
  client_stopper.join();
  if (s.peer_server != nullptr) s.peer_server->Shutdown(std::chrono::system_clock::now());
  if (s.admin != nullptr) s.admin->Stop();
  s.webhook->Stop();
  unlink(pid_path.c_str());
  if (!closed.ok()) {
    LogError("storage did not close cleanly", {F("error", closed.ToString())});
    exit_code = 1;
  }
  LogInfo("stopped", {F("exit_code", exit_code)});
  return exit_code;
}

// The start-up log line, and how to try the server, on stderr.
void AnnounceStarted(const Config& config, uint64_t cluster_id, const std::string& peer_address,
                     const std::string& data_dir) {
  LogInfo("amaters-server started",
          {F("version", kVersion), F("node_id", config.cluster.node_id),
           F("cluster_id", absl::StrCat(absl::Hex(cluster_id))),
           F("client", config.server.bind_address),
           F("peer", peer_address.empty() ? "-" : peer_address),
           F("admin", config.metrics.enabled ? config.metrics.bind_address : "-"),
           F("data_dir", data_dir), F("tls", config.network.tls_enabled ? "on" : "off"),
           F("members", config.cluster.peers.empty() ? 1 : config.cluster.peers.size())});
  std::cerr << "amaters-server: serving the etcd v3 API on " << config.server.bind_address
            << (config.metrics.enabled
                    ? absl::StrCat(", admin HTTP on http://", config.metrics.bind_address)
                    : "")
            << "\n  try: bazel run //server:ctl -- --endpoints=" << config.server.bind_address
            << " put hello world\n       etcdctl --endpoints=" << config.server.bind_address
            << " get hello\n  stop with Ctrl-C or SIGTERM\n";
}

}  // namespace

int RunServer(const Config& config_in, const ConfigSources& sources, const std::string& base_dir,
              TestFaults* test_faults) {
  Config config = config_in;
  ConfigureLogFrom(config);
  const std::string data_dir = ResolvePath(config.server.data_dir, base_dir);
  const std::string pid_path = ResolvePath(PidFilePath(config), base_dir);
  if (config.network.tls_enabled) {
    config.network.tls_cert = ResolvePath(config.network.tls_cert, base_dir);
    config.network.tls_key = ResolvePath(config.network.tls_key, base_dir);
    if (!config.network.tls_ca.empty()) config.network.tls_ca = ResolvePath(config.network.tls_ca, base_dir);
  }
  auto fail = [](const absl::Status& s) {
    LogError("cannot start", {F("error", s.message())});
    std::cerr << "amaters-server: " << s.message() << "\n";
    return 1;
  };
  // TLS: the configured files are validated and staged under <data_dir>/tls; gRPC reads the
  // staged copies, which change only on SIGHUP (server/tls.h).
  const std::string tls_stage_dir = data_dir + "/tls";
  // A second server on this data directory must not touch the first one's staged files.
  if (absl::StatusOr<pid_t> other = ReadPid(pid_path);
      other.ok() && *other != getpid() && ProcessAlive(*other)) {
    return fail(absl::AlreadyExistsError(absl::StrCat(
        "another amaters-server (pid ", *other, ") is running with pid file ", pid_path)));
  }
  if (config.network.tls_enabled) mkdir(data_dir.c_str(), 0750);  // Runtime::Open checks it
  absl::StatusOr<Config> tls_config = StageTlsFiles(config, tls_stage_dir);
  if (!tls_config.ok()) return fail(tls_config.status());

  // Signals are taken by this thread with sigtimedwait; every thread created from here on
  // inherits the mask, so none of them is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Listening addresses, checked up front so that an occupied port is a clear error.
  std::string peer_address;
  std::vector<RuntimePeer> peers;
  for (const PeerAddress& p : config.cluster.peers) {
    if (p.id == config.cluster.node_id) {
      peer_address = p.ToString();
    } else {
      peers.push_back({p.id, p.ToString()});
    }
  }
  if (absl::Status s = CheckListeners(config, peer_address); !s.ok()) return fail(s);

  Metrics metrics;
  absl::StatusOr<RuntimeOptions> options =
      RuntimeOptionsOf(config, *tls_config, data_dir, peer_address, std::move(peers), &metrics);
  if (!options.ok()) return fail(options.status());
  RuntimeOptions ro = *std::move(options);
  ro.test_faults = test_faults;
  std::atomic<bool> fatal{false};
  ro.on_fatal = [&fatal](const absl::Status&) { fatal.store(true); };

  AlertWebhook webhook(config.cluster.node_id, &metrics);
  webhook.Configure({config.alerts.webhook_url, config.alerts.webhook_timeout_ms,
                     config.alerts.webhook_max_retries});
  ro.on_alert = [&webhook](const alerts::Firing& f) { webhook.Enqueue(f, absl::Now()); };

  absl::StatusOr<std::unique_ptr<Runtime>> opened = Runtime::Open(ro);
  if (!opened.ok()) return fail(opened.status());
  std::unique_ptr<Runtime> runtime = *std::move(opened);
  if (absl::Status s = WritePidFile(pid_path); !s.ok()) return fail(s);

  const std::string scheme = config.network.tls_enabled ? "https" : "http";
  EtcdHandler handler(runtime.get(), kVersion, data_dir, scheme);
  handler.SetLimits(LimitsOf(config));
  RequestObserver observer = [&metrics](const char* method, const grpc::Status& status,
                                        double seconds) {
    if (std::optional<RpcMethod> m = MethodFromName(method)) {
      metrics.ObserveRequest(*m, static_cast<absl::StatusCode>(status.error_code()), seconds);
    }
  };
  KvService kv_service(&handler, observer);
  MaintenanceService maintenance_service(&handler, observer);
  ClusterService cluster_service(&handler, observer);
  WatchService watch_service(&handler);
  LeaseService lease_service(&handler, observer);
  PeerService peer_service(runtime.get(), [&handler](const peerpb::ForwardRequest& request,
                                                     std::function<void(grpc::Status, std::string)>
                                                         done) {
    handler.HandleForward(request, std::move(done));
  }, config.cluster.cluster_token);

  const auto started = std::chrono::steady_clock::now();
  std::atomic<bool> shutting_down{false};
  std::mutex health_mu;
  health::HealthConfig health_config = HealthConfigOf(config);  // guarded by health_mu (SIGHUP)
  auto evaluate = [&](const RuntimeStatus& s, std::optional<uint64_t> disk_free) {
    std::lock_guard<std::mutex> lock(health_mu);
    return EvaluateHealth(s, shutting_down.load(), disk_free, health_config);
  };
  auto admin_status = [&]() {
    const RuntimeStatus s = runtime->status();
    return BuildAdminStatus(
        s, evaluate(s, DiskFreeBytes(data_dir)),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  auto alerts_source = [&runtime]() {
    std::vector<AlertView> out;
    for (const AlertRecord& r : runtime->recent_alerts()) {
      out.push_back({r.firing.rule, alerts::SeverityName(r.firing.severity), r.firing.dedup_key,
                     absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.fired_at, absl::UTCTimeZone()),
                     r.firing.message});
    }
    return out;
  };
  AdminService admin_service(runtime.get(), &handler, admin_status, alerts_source);

  std::unique_ptr<grpc::Server> client_server = StartClientServer(
      config, *tls_config, {&kv_service, &maintenance_service, &cluster_service, &watch_service, &lease_service,
       &admin_service});
  if (!client_server) {
    (void)runtime->Stop();
    unlink(pid_path.c_str());
    return fail(absl::UnavailableError(
        absl::StrCat("client port: cannot listen on ", config.server.bind_address)));
  }
  std::unique_ptr<grpc::Server> peer_server;
  if (!peer_address.empty()) {
    peer_server = StartPeerServer(peer_address, *tls_config, &peer_service);
    if (!peer_server) {
      client_server->Shutdown();
      (void)runtime->Stop();
      unlink(pid_path.c_str());
      return fail(absl::UnavailableError(absl::StrCat("peer port: cannot listen on ", peer_address)));
    }
  }

  runtime->Start();
  webhook.Start();

  std::unique_ptr<AdminServer> admin;
  if (config.metrics.enabled) {
    admin = std::make_unique<AdminServer>(config.metrics.bind_address, &metrics, admin_status);
    admin->SetAlertsSource(alerts_source);
    if (absl::Status s = admin->Start(); !s.ok()) {
      client_server->Shutdown();
      if (peer_server) peer_server->Shutdown();
      (void)runtime->Stop();
      unlink(pid_path.c_str());
      return fail(s);
    }
  }

  AnnounceStarted(config, ro.cluster_id, peer_address, data_dir);

  // Main thread: signals, metric gauges, fatal errors.
  bool accepting_writes = true;
  auto next_cert_check = std::chrono::steady_clock::now();
  StatusCounters counters;
  int exit_code = 0;
  while (true) {
    timespec wait{0, 250 * 1000 * 1000};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    const RuntimeStatus s = runtime->status();
    PublishStatusMetrics(s, &metrics, &counters);
    const std::optional<uint64_t> disk_free = DiskFreeBytes(data_dir);  // one statvfs a round
    const health::HealthReport h = evaluate(s, disk_free);
    PublishHealth(h, disk_free, &metrics);
    UpdateWriteGate(h, s, shutting_down.load(), &handler, &accepting_writes);
    if (config.network.tls_enabled && std::chrono::steady_clock::now() >= next_cert_check) {
      next_cert_check = std::chrono::steady_clock::now() + kCertCheckInterval;
      ReportCertificateExpiry(config, runtime.get(), &metrics);
    }
    if (fatal.load()) {
      LogError("stopping after a storage failure", {F("error", s.fatal_message)});
      exit_code = 1;
      break;
    }
    if (sig == SIGHUP) {
      if (Reload(sources, base_dir, tls_stage_dir, &config, &handler, &webhook, &health_mu,
                 &health_config)) {
        next_cert_check = std::chrono::steady_clock::now();  // the certificate may be new
      }
      continue;
    }
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("shutting down", {F("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
                                F("timeout_ms", config.server.shutdown_timeout_ms)});
      break;
    }
  }

  return Shutdown(exit_code, config, {runtime.get(), &handler, client_server.get(),
                                      peer_server.get(), admin.get(), &webhook},
                  &shutting_down, pid_path);
}

int StopCommand(const Config& config, const std::string& base_dir) {
  const std::string pid_path = ResolvePath(PidFilePath(config), base_dir);
  absl::StatusOr<pid_t> pid = ReadPid(pid_path);
  if (!pid.ok()) {
    std::cerr << "amaters-server: stop: " << pid.status().message() << " (is the server running?)\n";
    return 1;
  }
  if (!ProcessAlive(*pid)) {
    std::cerr << "amaters-server: stop: pid " << *pid << " from " << pid_path
              << " is not running (stale pid file)\n";
    return 1;
  }
  if (kill(*pid, SIGTERM) != 0) {
    std::cerr << "amaters-server: stop: cannot signal pid " << *pid << ": " << std::strerror(errno)
              << "\n";
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(config.server.shutdown_timeout_ms + 5000);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ProcessAlive(*pid)) {
      std::cout << "amaters-server (pid " << *pid << ") stopped\n";
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::cerr << "amaters-server: stop: pid " << *pid << " still running after the shutdown timeout\n";
  return 1;
}

int StatusCommand(const Config& config, const std::string& base_dir) {
  absl::StatusOr<std::pair<std::string, int>> addr = ParseBindAddress(config.metrics.bind_address);
  if (!addr.ok()) {
    std::cerr << "amaters-server: status: " << addr.status().message() << "\n";
    return 1;
  }
  httplib::Client client(addr->first, addr->second);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  httplib::Result r = client.Get("/status");
  if (!r) {
    std::cerr << "amaters-server: status: no server answers on http://" << config.metrics.bind_address
              << "/status (" << httplib::to_string(r.error()) << ")\n";
    return 1;
  }
  std::cout << r->body << (absl::EndsWith(r->body, "\n") ? "" : "\n");
  (void)base_dir;
  return r->status == 200 ? 0 : 1;
}

}  // namespace amaters::server
