#include "server/admin/metrics.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace amaters::server {
namespace {

constexpr absl::string_view kCompactionCountName = "amaters_compaction_count";
constexpr absl::string_view kCompactionCountHelp =
    "WAL compactions that deleted at least one segment since the server started (cumulative; "
    "exported untyped because promtool rejects a counter or gauge named *_count).";

constexpr std::array<absl::string_view, kRpcMethodCount> kMethodNames = {
    "Range",     "Put",       "DeleteRange",  "Txn",          "Status",
    "MemberList", "MemberAdd", "MemberRemove", "MemberUpdate", "MemberPromote", "Compact",
    "LeaseGrant", "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases"};

constexpr std::array<absl::string_view, 17> kGrpcCodeNames = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

int CodeIndex(absl::StatusCode code) {
  const int i = static_cast<int>(code);
  if (i < 0 || i >= static_cast<int>(kGrpcCodeNames.size())) {
    return static_cast<int>(absl::StatusCode::kUnknown);
  }
  return i;
}

int MethodIndex(RpcMethod method) {
  const int i = static_cast<int>(method);
  // Only a cast from an unchecked integer can produce another value: a programmer error.
  AM_CHECK(i >= 0 && i < kRpcMethodCount, "RpcMethod out of range: ", i);
  return i;
}

template <std::size_t N>
prometheus::Histogram::BucketBoundaries Buckets(const std::array<double, N>& bounds) {
  return prometheus::Histogram::BucketBoundaries(bounds.begin(), bounds.end());
}

prometheus::Gauge* NewGauge(prometheus::Registry& registry, const std::string& name,
                            const std::string& help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Counter* NewCounter(prometheus::Registry& registry, const std::string& name,
                                const std::string& help) {
  return &prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

std::string PeerLabel(uint64_t peer_id) { return absl::StrCat(peer_id); }

double ToDouble(uint64_t v) { return static_cast<double>(v); }

}  // namespace

absl::string_view RpcMethodName(RpcMethod method) { return kMethodNames[MethodIndex(method)]; }

absl::string_view GrpcCodeName(absl::StatusCode code) { return kGrpcCodeNames[CodeIndex(code)]; }

Metrics::Metrics() : Metrics(absl::Now()) {}

Metrics::Metrics(absl::Time start_time) : registry_(std::make_unique<prometheus::Registry>()) {
  prometheus::Registry& r = *registry_;

  // Gauges.
  raft_term_ = NewGauge(r, "amaters_raft_term", "Current Raft term of this node.");
  raft_commit_index_ = NewGauge(r, "amaters_raft_commit_index",
                                "Highest log index known to be committed on this node.");
  raft_applied_index_ = NewGauge(r, "amaters_raft_applied_index",
                                 "Highest log index applied to the state machine on this node.");
  raft_last_log_index_ =
      NewGauge(r, "amaters_raft_last_log_index", "Index of the last entry in this node's log.");
  raft_is_leader_ =
      NewGauge(r, "amaters_raft_is_leader", "1 if this node is the Raft leader, else 0.");
  raft_has_leader_ = NewGauge(r, "amaters_raft_has_leader",
                              "1 if this node knows a leader for the current term, else 0.");
  raft_leader_id_ = NewGauge(r, "amaters_raft_leader_id",
                             "Node id of the leader this node knows of (0: none known).");
  wal_size_bytes_ = NewGauge(r, "amaters_wal_size_bytes",
                             "Total size of the live WAL segment files in bytes.");
  pending_requests_ = NewGauge(r, "amaters_pending_requests",
                               "Client requests admitted and not yet answered.");
  peer_lag_family_ = &prometheus::BuildGauge()
                          .Name("amaters_peer_replication_lag_entries")
                          .Help("Leader only: entries the peer's log is behind the leader's "
                                "last log index (absent on followers).")
                          .Register(r);
  peer_connected_family_ =
      &prometheus::BuildGauge()
           .Name("amaters_peer_connected")
           .Help("1 while the Raft transport to the peer is connected, else 0.")
           .Register(r);
  start_time_seconds_ = NewGauge(r, "amaters_server_start_time_seconds",
                                 "Start time of the server process in seconds since the Unix "
                                 "epoch.");
  start_time_seconds_->Set(absl::ToDoubleSeconds(start_time - absl::UnixEpoch()));

  // Counters.
  leader_changes_ = NewCounter(r, "amaters_raft_leader_changes_total",
                               "Times the leader known to this node changed to another node.");
  elections_ = NewCounter(r, "amaters_raft_elections_total",
                          "Times this node became a candidate and started an election.");
  auto& proposals = prometheus::BuildCounter()
                        .Name("amaters_proposals_total")
                        .Help("Proposals finished on this node, by result (ok or error).")
                        .Register(r);
  proposals_ok_ = &proposals.Add({{"result", "ok"}});
  proposals_error_ = &proposals.Add({{"result", "error"}});
  requests_family_ = &prometheus::BuildCounter()
                          .Name("amaters_requests_total")
                          .Help("Client RPCs answered, by method and gRPC status code.")
                          .Register(r);
  for (auto& per_method : request_counters_) {
    for (auto& slot : per_method) slot.store(nullptr, std::memory_order_relaxed);
  }
  wal_fsyncs_ = NewCounter(r, "amaters_wal_fsyncs_total",
                           "fdatasync and fsync calls the WAL issued.");
  peer_sent_family_ = &prometheus::BuildCounter()
                           .Name("amaters_peer_messages_sent_total")
                           .Help("Raft messages handed to the transport for the peer.")
                           .Register(r);
  peer_dropped_family_ =
      &prometheus::BuildCounter()
           .Name("amaters_peer_messages_dropped_total")
           .Help("Raft messages for the peer that were dropped instead of sent.")
           .Register(r);
  peer_received_ = NewCounter(r, "amaters_peer_messages_received_total",
                              "Raft messages received from any peer.");
  alerts_family_ = &prometheus::BuildCounter()
                        .Name("amaters_alerts_total")
                        .Help("Alerts this node fired (after deduplication), by rule and "
                              "severity.")
                        .Register(r);
  // Every (rule, severity) the default rules can produce exists from the start at 0, so that
  // increase() and absent() work before the first firing.
  for (const auto& [rule, severity] : std::vector<std::pair<const char*, const char*>>{
           {"node_failed", "critical"},
           {"node_recovered", "info"},
           {"leader_changed", "warning"},
           {"quorum_lost", "critical"},
           {"slow_replication", "warning"},
           {"certificate_expiring", "warning"},
           {"certificate_expiring", "critical"}}) {
    alerts_family_->Add({{"rule", rule}, {"severity", severity}});
  }
  webhook_failures_ = NewCounter(r, "amaters_alert_webhook_failures_total",
                                 "Alert firings the webhook could not deliver after its retries.");
  health_state_family_ = &prometheus::BuildGauge()
                              .Name("amaters_health_state")
                              .Help("1 for this node's current health state (starting, healthy, "
                                    "degraded, unhealthy, shutting_down), 0 for the others.")
                              .Register(r);
  for (const char* state : {"starting", "healthy", "degraded", "unhealthy", "shutting_down"}) {
    health_state_family_->Add({{"state", state}}).Set(std::string(state) == "starting" ? 1 : 0);
  }
  ready_ = NewGauge(r, "amaters_ready", "1 while /readyz reports ready, else 0.");
  accepting_writes_ = NewGauge(r, "amaters_accepting_writes",
                               "1 while this node accepts client writes, 0 while it refuses them "
                               "(disk nearly full, storage failure, shutting down).");
  accepting_writes_->Set(1);
  disk_free_bytes_ = NewGauge(r, "amaters_disk_free_bytes",
                              "Free bytes on the data directory's file system (for unprivileged "
                              "users).");
  certificate_expiry_ = NewGauge(r, "amaters_tls_certificate_expiry_timestamp_seconds",
                                 "notAfter of the TLS certificate this node serves, in seconds "
                                 "since the Unix epoch (0 without TLS).");

  // Histograms.
  auto& request_duration = prometheus::BuildHistogram()
                               .Name("amaters_request_duration_seconds")
                               .Help("Latency of client RPCs in seconds, by method.")
                               .Register(r);
  for (int m = 0; m < kRpcMethodCount; ++m) {
    const std::string method(kMethodNames[m]);
    request_duration_[m] =
        &request_duration.Add({{"method", method}}, Buckets(kRequestDurationBucketsSeconds));
    // Pre-create the OK series so that every method's request rate exists from the start.
    RequestCounter(static_cast<RpcMethod>(m), absl::StatusCode::kOk);
  }
  fsync_duration_ = &prometheus::BuildHistogram()
                         .Name("amaters_wal_fsync_duration_seconds")
                         .Help("Duration of WAL fdatasync/fsync calls in seconds.")
                         .Register(r)
                         .Add({}, Buckets(kFsyncDurationBucketsSeconds));
  apply_duration_ =
      &prometheus::BuildHistogram()
           .Name("amaters_apply_duration_seconds")
           .Help("Duration of applying one batch of committed entries to the state machine "
                 "in seconds.")
           .Register(r)
           .Add({}, Buckets(kApplyDurationBucketsSeconds));
  snapshots_created_ = NewCounter(r, "amaters_snapshots_created_total",
                                  "Snapshots this node took of its own state.");
  snapshot_installs_ = NewCounter(r, "amaters_snapshot_install_total",
                                  "Snapshots received from the leader and installed.");
  snapshot_install_seconds_ =
      &prometheus::BuildHistogram()
           .Name("amaters_snapshot_install_seconds")
           .Help("Duration of installing a snapshot received from the leader (checking and "
                 "keeping the copy, then replacing the state) in seconds.")
           .Register(r)
           .Add({}, Buckets(kSnapshotInstallBucketsSeconds));
  snapshot_bytes_ = NewGauge(r, "amaters_snapshot_bytes",
                             "Size on disk of the newest snapshot in bytes (0: none).");
  cluster_voters_ = NewGauge(r, "amaters_cluster_voters",
                             "Voters of the configuration in effect on this node.");
  cluster_learners_ = NewGauge(r, "amaters_cluster_learners",
                               "Learners of the configuration in effect on this node.");
}

void Metrics::IncSnapshotsCreated() { snapshots_created_->Increment(); }

void Metrics::ObserveSnapshotInstall(double seconds) {
  snapshot_installs_->Increment();
  snapshot_install_seconds_->Observe(seconds);
}

void Metrics::SetSnapshotBytes(uint64_t bytes) { snapshot_bytes_->Set(ToDouble(bytes)); }

void Metrics::SetMembers(uint64_t voters, uint64_t learners) {
  cluster_voters_->Set(ToDouble(voters));
  cluster_learners_->Set(ToDouble(learners));
}

Metrics::~Metrics() = default;

void Metrics::SetRaftState(uint64_t term, uint64_t commit_index, uint64_t applied_index,
                           uint64_t last_log_index, bool is_leader, uint64_t leader_id) {
  raft_term_->Set(ToDouble(term));
  raft_commit_index_->Set(ToDouble(commit_index));
  raft_applied_index_->Set(ToDouble(applied_index));
  raft_last_log_index_->Set(ToDouble(last_log_index));
  raft_is_leader_->Set(is_leader ? 1 : 0);
  raft_has_leader_->Set(leader_id != 0 ? 1 : 0);
  raft_leader_id_->Set(ToDouble(leader_id));
}

void Metrics::IncLeaderChanges() { leader_changes_->Increment(); }

void Metrics::IncElections() { elections_->Increment(); }

void Metrics::IncProposals(bool ok) { (ok ? proposals_ok_ : proposals_error_)->Increment(); }

void Metrics::ObserveApply(double seconds) { apply_duration_->Observe(seconds); }

prometheus::Counter* Metrics::RequestCounter(RpcMethod method, absl::StatusCode code) {
  const int m = MethodIndex(method);
  const int c = CodeIndex(code);
  std::atomic<prometheus::Counter*>& slot = request_counters_[m][c];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = &requests_family_->Add(
        {{"method", std::string(kMethodNames[m])}, {"code", std::string(kGrpcCodeNames[c])}});
    slot.store(counter, std::memory_order_release);
  }
  return counter;
}

void Metrics::ObserveRequest(RpcMethod method, absl::StatusCode code, double seconds) {
  RequestCounter(method, code)->Increment();
  request_duration_[MethodIndex(method)]->Observe(seconds);
}

void Metrics::SetPendingRequests(uint64_t pending) { pending_requests_->Set(ToDouble(pending)); }

void Metrics::SetWalSizeBytes(uint64_t bytes) { wal_size_bytes_->Set(ToDouble(bytes)); }

void Metrics::SetCompactionCount(uint64_t total) {
  uint64_t current = compaction_count_.load(std::memory_order_relaxed);
  while (total > current &&
         !compaction_count_.compare_exchange_weak(current, total, std::memory_order_relaxed)) {
  }
}

void Metrics::ObserveFsync(double seconds) {
  wal_fsyncs_->Increment();
  fsync_duration_->Observe(seconds);
}

Metrics::PeerSeries& Metrics::PeerLocked(uint64_t peer_id) {
  auto [it, inserted] = peers_.try_emplace(peer_id);
  PeerSeries& series = it->second;
  if (inserted) {
    const prometheus::Labels labels = {{"peer", PeerLabel(peer_id)}};
    series.connected = &peer_connected_family_->Add(labels);
    series.sent = &peer_sent_family_->Add(labels);
    series.dropped = &peer_dropped_family_->Add(labels);
  }
  return series;
}

void Metrics::SetPeerLag(uint64_t peer_id, uint64_t lag_entries) {
  absl::MutexLock lock(&mu_);
  PeerSeries& series = PeerLocked(peer_id);
  if (series.lag == nullptr) {
    series.lag = &peer_lag_family_->Add({{"peer", PeerLabel(peer_id)}});
  }
  series.lag->Set(ToDouble(lag_entries));
}

void Metrics::ClearPeerLag(uint64_t peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer_id);
  if (it == peers_.end() || it->second.lag == nullptr) return;
  peer_lag_family_->Remove(it->second.lag);
  it->second.lag = nullptr;
}

void Metrics::ClearAllPeerLags() {
  absl::MutexLock lock(&mu_);
  for (auto& [peer_id, series] : peers_) {
    if (series.lag == nullptr) continue;
    peer_lag_family_->Remove(series.lag);
    series.lag = nullptr;
  }
}

void Metrics::ForgetPeersExcept(const std::vector<uint64_t>& members) {
  absl::MutexLock lock(&mu_);
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (std::find(members.begin(), members.end(), it->first) != members.end()) {
      ++it;
      continue;
    }
    PeerSeries& series = it->second;
    peer_connected_family_->Remove(series.connected);
    peer_sent_family_->Remove(series.sent);
    peer_dropped_family_->Remove(series.dropped);
    if (series.lag != nullptr) peer_lag_family_->Remove(series.lag);
    peers_.erase(it++);
  }
}

void Metrics::SetPeerConnected(uint64_t peer_id, bool connected) {
  absl::MutexLock lock(&mu_);
  PeerLocked(peer_id).connected->Set(connected ? 1 : 0);
}

void Metrics::IncPeerSent(uint64_t peer_id, uint64_t n) {
  absl::MutexLock lock(&mu_);
  PeerLocked(peer_id).sent->Increment(ToDouble(n));
}

void Metrics::IncPeerDropped(uint64_t peer_id, uint64_t n) {
  absl::MutexLock lock(&mu_);
  PeerLocked(peer_id).dropped->Increment(ToDouble(n));
}

void Metrics::IncPeerReceived(uint64_t n) { peer_received_->Increment(ToDouble(n)); }

void Metrics::IncAlert(const std::string& rule, const std::string& severity) {
  alerts_family_->Add({{"rule", rule}, {"severity", severity}}).Increment();
}

void Metrics::SetHealthState(const std::string& state) {
  for (const char* s : {"starting", "healthy", "degraded", "unhealthy", "shutting_down"}) {
    health_state_family_->Add({{"state", s}}).Set(state == s ? 1 : 0);
  }
}

void Metrics::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }
void Metrics::SetAcceptingWrites(bool accepting) { accepting_writes_->Set(accepting ? 1 : 0); }
void Metrics::SetDiskFreeBytes(uint64_t bytes) { disk_free_bytes_->Set(ToDouble(bytes)); }
void Metrics::SetCertificateExpiry(double unix_seconds) { certificate_expiry_->Set(unix_seconds); }
void Metrics::IncWebhookFailures() { webhook_failures_->Increment(); }

std::string Metrics::Serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();

  prometheus::MetricFamily compaction;
  compaction.name = std::string(kCompactionCountName);
  compaction.help = std::string(kCompactionCountHelp);
  compaction.type = prometheus::MetricType::Untyped;
  compaction.metric.emplace_back();
  compaction.metric.back().untyped.value =
      ToDouble(compaction_count_.load(std::memory_order_relaxed));
  // Next to the other WAL families, to keep the exposition readable.
  auto wal = std::find_if(families.begin(), families.end(),
                          [](const prometheus::MetricFamily& f) {
                            return f.name == "amaters_wal_size_bytes";
                          });
  families.insert(wal == families.end() ? families.end() : wal + 1, std::move(compaction));

  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace amaters::server
