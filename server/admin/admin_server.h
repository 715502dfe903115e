// AdminServer: the admin HTTP port (docs/design.md §5 "Admin HTTP") on cpp-httplib.
//
// Endpoints (GET and HEAD; docs/metrics.md has example responses):
//   /health   JSON {"status","node_id","role","leader_id","checks":{probe:detail}};
//             200 when health is "healthy" or "degraded", else 503.
//   /healthz  JSON {"alive":bool}; alive = health is "starting", "healthy" or "degraded".
//             200 when alive, else 503.
//   /livez    the same as /healthz (JSON, same codes): both names are in use by probes.
//   /readyz   JSON {"ready":bool}; 200 when ready, else 503.
//   /metrics  Metrics::Serialize(), Content-Type "text/plain; version=0.0.4".
//   /status   JSON node_id, role, leader_id, term, commit_index, last_log_index, applied_index,
//             num_nodes, voters, voters_outgoing (only while joint), learners,
//             peers (only when role is "leader": [{id,match,next,connected,lag} and "learner":true for a learner]),
//             health, ready, version, uptime_seconds.
//   other paths           404 JSON {"error":"not found","path":...}
//   POST/PUT/PATCH/DELETE/OPTIONS/TRACE/CONNECT  405 JSON {"error":"method not allowed"},
//             header "Allow: GET, HEAD".
// Unknown health strings count as unhealthy and not alive. Every JSON response has
// Content-Type "application/json"; every response has "Cache-Control: no-store".
//
// Bounds: kAdminHttpThreads worker threads (connections beyond that wait in httplib's queue),
// read/write timeouts of kAdminHttpIoTimeoutSeconds, keep-alive connections closed after
// kAdminHttpKeepAliveSeconds idle or kAdminHttpKeepAliveMaxRequests requests, request bodies of
// at most kAdminHttpPayloadMaxBytes (larger: 413). The listening socket sets SO_REUSEADDR but not
// SO_REUSEPORT (httplib's default sets SO_REUSEPORT, under which a second process could bind the
// same port and silently share it): a port already in use fails Start().
//
// Threading: Start() and Stop() from one owning thread. `status` and the Metrics are called on
// the HTTP worker threads, concurrently with each other; `status` must be thread-safe (the
// runtime returns a copy of a snapshot it publishes under a lock).
#ifndef AMATERS_SERVER_ADMIN_ADMIN_SERVER_H_
#define AMATERS_SERVER_ADMIN_ADMIN_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/admin/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace amaters::server {

inline constexpr int kAdminHttpThreads = 4;
inline constexpr int kAdminHttpIoTimeoutSeconds = 5;
inline constexpr int kAdminHttpKeepAliveSeconds = 2;
inline constexpr int kAdminHttpKeepAliveMaxRequests = 100;
inline constexpr int kAdminHttpPayloadMaxBytes = 4096;
// Start() waits at most this long for the listener thread to begin accepting.
inline constexpr int kAdminHttpStartTimeoutMs = 5000;

struct PeerStatus {
  uint64_t id = 0;
  uint64_t match = 0;  // highest index known replicated on the peer
  uint64_t next = 0;   // next index the leader sends
  bool connected = false;
  uint64_t lag = 0;  // leader's last log index - match
  bool learner = false;  // a learner in the configuration in effect
};

struct AdminStatus {
  uint64_t node_id = 0;
  std::string role;  // "leader" | "follower" | "candidate" | "pre-candidate"
  uint64_t leader_id = 0;  // 0: no known leader
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t last_log_index = 0;
  uint64_t applied_index = 0;
  uint64_t snapshot_index = 0;   // newest durable snapshot (0: none)
  uint64_t first_log_index = 1;  // first entry still in the log (above the compacted prefix)
  uint64_t num_nodes = 0;
  std::vector<uint64_t> voters;           // the configuration in effect (docs/membership.md)
  std::vector<uint64_t> voters_outgoing;  // only while joint
  std::vector<uint64_t> learners;
  std::vector<PeerStatus> peers;  // leader only
  std::string health;  // "starting" | "healthy" | "degraded" | "unhealthy" | "shutting_down"
  std::vector<std::pair<std::string, std::string>> health_detail;  // probe name -> detail
  bool ready = false;  // healthy/degraded with a known leader and caught up
  std::string version;
  double uptime_seconds = 0;
};

// Health semantics shared by the endpoints (exposed for tests and for the runtime's logs).
bool HealthIsServing(absl::string_view health);  // healthy, degraded
bool HealthIsAlive(absl::string_view health);    // starting, healthy, degraded

// Splits "host:port" or "[v6-host]:port". The host must be non-empty (use 0.0.0.0 or [::] for
// every interface); the port is a decimal 0..65535 (0: any free port). kInvalidArgument
// otherwise, naming the address.
absl::StatusOr<std::pair<std::string, int>> ParseBindAddress(absl::string_view address);

// The JSON bodies, exactly as served (exposed so tests can check them without sockets).
std::string HealthJson(const AdminStatus& status);
std::string StatusJson(const AdminStatus& status);

// One alert firing as GET /alerts lists it (newest last).
struct AlertView {
  std::string rule;
  std::string severity;   // "info" | "warning" | "critical"
  std::string dedup_key;  // e.g. "node_failed:3"
  std::string fired_at;   // RFC 3339 UTC, e.g. "2026-11-26T23:40:01.123Z"
  std::string message;
};
std::string AlertsJson(const std::vector<AlertView>& alerts);

class AdminServer {
 public:
  // `metrics` must outlive the server; `status` must be callable until Stop() returns.
  AdminServer(std::string bind_address, Metrics* metrics, std::function<AdminStatus()> status);
  ~AdminServer();  // Stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds `bind_address` and serves on a thread of its own. Errors (all prefixed "admin HTTP: "):
  //   malformed address or unresolvable host   kInvalidArgument
  //   EADDRINUSE                               kUnavailable   "admin HTTP: cannot bind
  //                                              127.0.0.1:9090: Address already in use"
  //   EACCES, EPERM                            kPermissionDenied
  //   any other bind/listen errno              kFailedPrecondition (e.g. EADDRNOTAVAIL: the
  //                                              address is not on this host)
  //   called twice, or after Stop()            kFailedPrecondition
  // Start() is one-shot: after a failed Start() the object only accepts Stop() and destruction
  // (a retry gets kFailedPrecondition); construct a new AdminServer to try again.
  absl::Status Start();
  // GET /alerts lists what `alerts` returns (call before Start; without it: an empty list).
  void SetAlertsSource(std::function<std::vector<AlertView>()> alerts) {
    alerts_ = std::move(alerts);
  }

  // The bound port (the actual one when the address asked for port 0); 0 before Start().
  int port() const;

  // Stops accepting, waits for in-flight requests and joins the thread. Idempotent; safe
  // without Start().
  void Stop();

 private:
  std::string bind_address_;
  Metrics* metrics_;
  std::function<AdminStatus()> status_;
  std::function<std::vector<AlertView>()> alerts_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<int> port_{0};
  std::atomic<bool> listener_exited_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_ADMIN_ADMIN_SERVER_H_
