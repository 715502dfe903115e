// Metrics: the server's Prometheus registry (prometheus-cpp) and the typed methods the runtime
// calls to update it. docs/metrics.md lists every family with its type, labels and meaning; keep
// the two in step (metrics_test.cc checks that every family below is serialized with HELP and
// TYPE lines).
//
// Thread safety: every method may be called from any thread at any time. Counters and gauges are
// atomics inside prometheus-cpp; families and histograms take prometheus-cpp's own mutexes; the
// per-peer series cache takes `mu_`. Serialize() may run concurrently with updates (it sees each
// series at some point during the call, not one consistent snapshot of all of them).
//
// Series that exist from the start (so that rate() and absent() work before the first event):
// every gauge without labels, amaters_proposals_total{result="ok"|"error"},
// amaters_requests_total{method=<each RpcMethod>,code="OK"} and
// amaters_request_duration_seconds{method=<each RpcMethod>}. Per-peer series appear when the
// runtime first reports that peer (SetPeerConnected at start-up for every configured peer).
//
// amaters_compaction_count keeps the name docs/design.md §1 fixes but is exported as `untyped`:
// `promtool check metrics` (2.42) rejects it both as a counter ("counter metrics should have
// "_total" suffix") and as a gauge ("non-histogram and non-summary metrics should not have "_count"
// suffix"); an untyped family passes and Prometheus ingests it as a plain series (rate() works
// on it). Its value only ever grows within one process, like a counter.
#ifndef AMATERS_SERVER_ADMIN_METRICS_H_
#define AMATERS_SERVER_ADMIN_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace amaters::server {

// The client-facing RPCs that amaters_requests_total and amaters_request_duration_seconds break
// down by the `method` label (the etcd KV/Cluster/Maintenance calls the server implements).
enum class RpcMethod : int {
  kRange = 0,
  kPut = 1,
  kDeleteRange = 2,
  kTxn = 3,
  kStatus = 4,
  kMemberList = 5,
  kMemberAdd = 6,
  kMemberRemove = 7,
  kMemberUpdate = 8,
  kMemberPromote = 9,
  kCompact = 10,
  kLeaseGrant = 11,
  kLeaseRevoke = 12,
  kLeaseKeepAlive = 13,  // one per keep-alive request on a stream
  kLeaseTimeToLive = 14,
  kLeaseLeases = 15,
};
inline constexpr int kRpcMethodCount = 16;

// The `method` label value: "Range", "Put", "DeleteRange", "Txn", "Status", "MemberList",
// "MemberAdd", "MemberRemove", "MemberUpdate", "MemberPromote", "Compact", "LeaseGrant",
// "LeaseRevoke", "LeaseKeepAlive", "LeaseTimeToLive", "LeaseLeases".
absl::string_view RpcMethodName(RpcMethod method);

// The `code` label value: the canonical gRPC code name ("OK", "NOT_FOUND", "UNAVAILABLE", ...).
// absl::StatusCode and grpc::StatusCode share the numbering 0..16, so a gRPC status converts with
// static_cast<absl::StatusCode>(status.error_code()). Values outside 0..16 map to "UNKNOWN".
absl::string_view GrpcCodeName(absl::StatusCode code);

// Histogram bucket upper bounds in seconds (each list strictly increasing; +Inf is implicit).
inline constexpr std::array<double, 16> kRequestDurationBucketsSeconds = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
inline constexpr std::array<double, 16> kFsyncDurationBucketsSeconds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,   0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0};
inline constexpr std::array<double, 12> kSnapshotInstallBucketsSeconds = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0};
inline constexpr std::array<double, 16> kApplyDurationBucketsSeconds = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1.0};

class Metrics {
 public:
  // amaters_server_start_time_seconds is `start_time` (Unix seconds).
  Metrics();  // start_time = absl::Now()
  explicit Metrics(absl::Time start_time);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // --- Raft -------------------------------------------------------------------------------
  // Sets amaters_raft_{term,commit_index,applied_index,last_log_index,is_leader,has_leader,
  // leader_id}. leader_id 0 means "no known leader" (has_leader 0).
  void SetRaftState(uint64_t term, uint64_t commit_index, uint64_t applied_index,
                    uint64_t last_log_index, bool is_leader, uint64_t leader_id);
  // amaters_raft_leader_changes_total: the runtime calls it when the leader this node knows of
  // changes to a different, known leader (not when it merely becomes unknown).
  void IncLeaderChanges();
  // amaters_raft_elections_total: this node became candidate (pre-votes do not count).
  void IncElections();
  // amaters_proposals_total{result}: a proposal finished (committed and applied: ok; rejected,
  // dropped or failed: error).
  void IncProposals(bool ok);
  // amaters_apply_duration_seconds: applying one batch of committed entries to the state machine.
  void ObserveApply(double seconds);

  // --- Client requests ----------------------------------------------------------------------
  // One finished client RPC: +1 amaters_requests_total{method,code} and a sample of
  // amaters_request_duration_seconds{method}.
  void ObserveRequest(RpcMethod method, absl::StatusCode code, double seconds);
  // amaters_pending_requests: client requests admitted and not yet answered.
  void SetPendingRequests(uint64_t pending);

  // --- WAL ----------------------------------------------------------------------------------
  // amaters_wal_size_bytes (wal::WriterStats::size_bytes).
  void SetWalSizeBytes(uint64_t bytes);
  // amaters_compaction_count (wal::WriterStats::compaction_count, cumulative). A value below
  // the current one is ignored: the series never decreases within a process.
  void SetCompactionCount(uint64_t total);
  // One fdatasync/fsync of the WAL finished: +1 amaters_wal_fsyncs_total and a sample of
  // amaters_wal_fsync_duration_seconds.
  void ObserveFsync(double seconds);

  // --- Snapshots (docs/snapshots.md) ---------------------------------------------------------
  // amaters_snapshots_created_total: snapshots this node took of its own state.
  void IncSnapshotsCreated();
  // amaters_snapshot_install_total: snapshots received from a leader and installed; plus a
  // sample of amaters_snapshot_install_seconds (checking and keeping the received copy, and
  // replacing the live state with it).
  void ObserveSnapshotInstall(double seconds);
  // amaters_snapshot_bytes: size on disk of the newest snapshot.
  void SetSnapshotBytes(uint64_t bytes);

  // --- Membership (docs/membership.md) --------------------------------------------------------
  // amaters_cluster_voters and amaters_cluster_learners: members of the configuration in
  // effect on this node (voters of both sets while joint).
  void SetMembers(uint64_t voters, uint64_t learners);

  // --- Peers (peer ids are Raft node ids; label value is the decimal id) ----------------------
  // amaters_peer_replication_lag_entries{peer}: leader only. Set for each follower while this
  // node leads; ClearPeerLag removes one series (peer removed), ClearAllPeerLags all of them
  // (leadership lost), so that a follower never exports a stale lag.
  void SetPeerLag(uint64_t peer_id, uint64_t lag_entries);
  void ClearPeerLag(uint64_t peer_id);
  void ClearAllPeerLags();
  // amaters_peer_connected{peer}: 1 while the transport to that peer is connected.
  void SetPeerConnected(uint64_t peer_id, bool connected);
  // amaters_peer_messages_{sent,dropped}_total{peer}: Raft messages handed to the transport for
  // that peer, and the ones dropped (queue full, not connected, send failed).
  void IncPeerSent(uint64_t peer_id, uint64_t n = 1);
  void IncPeerDropped(uint64_t peer_id, uint64_t n = 1);
  // amaters_peer_messages_received_total: Raft messages received from any peer.
  void IncPeerReceived(uint64_t n = 1);
  // Removes every per-peer series (connected, sent, dropped, lag) of the peers not in
  // `members`: a member removed from the configuration stops being exported (and alerted on).
  void ForgetPeersExcept(const std::vector<uint64_t>& members);

  // The Prometheus text exposition format 0.0.4 of every family (prometheus::TextSerializer).
  // --- Alerts and health (docs/failover-and-alerts.md) ----------------------------------
  // amaters_alerts_total{rule,severity}: alerts this node fired (after deduplication).
  void IncAlert(const std::string& rule, const std::string& severity);
  // amaters_health_state{state}: 1 for the current health state, 0 for the others.
  void SetHealthState(const std::string& state);
  // amaters_ready / amaters_accepting_writes: 0 or 1.
  void SetReady(bool ready);
  void SetAcceptingWrites(bool accepting);
  // amaters_disk_free_bytes of the data directory's file system.
  void SetDiskFreeBytes(uint64_t bytes);
  // amaters_tls_certificate_expiry_timestamp_seconds: notAfter of the served certificate.
  void SetCertificateExpiry(double unix_seconds);
  // amaters_alert_webhook_failures_total: firings the webhook could not deliver.
  void IncWebhookFailures();

  std::string Serialize() const;

 private:
  struct PeerSeries {
    prometheus::Gauge* connected = nullptr;
    prometheus::Counter* sent = nullptr;
    prometheus::Counter* dropped = nullptr;
    prometheus::Gauge* lag = nullptr;  // nullptr while no lag is exported for the peer
  };
  static constexpr int kGrpcCodeCount = 17;

  PeerSeries& PeerLocked(uint64_t peer_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  prometheus::Counter* RequestCounter(RpcMethod method, absl::StatusCode code);

  std::unique_ptr<prometheus::Registry> registry_;  // owns every family below

  prometheus::Gauge* raft_term_;
  prometheus::Gauge* raft_commit_index_;
  prometheus::Gauge* raft_applied_index_;
  prometheus::Gauge* raft_last_log_index_;
  prometheus::Gauge* raft_is_leader_;
  prometheus::Gauge* raft_has_leader_;
  prometheus::Gauge* raft_leader_id_;
  prometheus::Gauge* wal_size_bytes_;
  prometheus::Gauge* pending_requests_;
  prometheus::Gauge* start_time_seconds_;

  prometheus::Counter* leader_changes_;
  prometheus::Counter* elections_;
  prometheus::Counter* proposals_ok_;
  prometheus::Counter* proposals_error_;
  prometheus::Counter* wal_fsyncs_;
  prometheus::Counter* peer_received_;

  prometheus::Histogram* fsync_duration_;
  prometheus::Histogram* apply_duration_;
  prometheus::Counter* snapshots_created_;
  prometheus::Counter* snapshot_installs_;
  prometheus::Histogram* snapshot_install_seconds_;
  prometheus::Gauge* snapshot_bytes_;
  prometheus::Gauge* cluster_voters_;
  prometheus::Gauge* cluster_learners_;
  std::array<prometheus::Histogram*, kRpcMethodCount> request_duration_{};

  prometheus::Family<prometheus::Counter>* requests_family_;
  prometheus::Family<prometheus::Counter>* alerts_family_;
  prometheus::Family<prometheus::Gauge>* health_state_family_;
  prometheus::Gauge* ready_;
  prometheus::Gauge* accepting_writes_;
  prometheus::Gauge* disk_free_bytes_;
  prometheus::Gauge* certificate_expiry_;
  prometheus::Counter* webhook_failures_;
  prometheus::Family<prometheus::Gauge>* peer_lag_family_;
  prometheus::Family<prometheus::Gauge>* peer_connected_family_;
  prometheus::Family<prometheus::Counter>* peer_sent_family_;
  prometheus::Family<prometheus::Counter>* peer_dropped_family_;

  // amaters_requests_total children, created on first use (Family::Add returns the existing
  // child for the same labels, so a race between two first uses is harmless).
  std::array<std::array<std::atomic<prometheus::Counter*>, kGrpcCodeCount>, kRpcMethodCount>
      request_counters_;

  // amaters_compaction_count (untyped; see the top of this file).
  std::atomic<uint64_t> compaction_count_{0};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, PeerSeries> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_ADMIN_METRICS_H_
