// AlertWebhook: POSTs every alert firing as JSON to `[alerts] webhook_url`, from a thread of
// its own, so that a slow or dead receiver never holds up the node.
//
// Body: {"rule":..,"severity":..,"dedup_key":..,"fired_at":"RFC 3339","message":..,
//        "node_id":N,"fields":{..}}. A POST that fails (connection error, timeout, or a status
// outside 2xx) is retried up to `[alerts] webhook_max_retries` times with backoff (100 ms
// doubling, at most 2 s); then it is dropped, logged and counted (amaters_alert_webhook_failures_total).
// The queue is bounded (kWebhookQueueMax): beyond it new firings are dropped and counted.
#ifndef AMATERS_SERVER_ALERT_WEBHOOK_H_
#define AMATERS_SERVER_ALERT_WEBHOOK_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/alerts/alert_manager.h"

namespace amaters::server {

class Metrics;

inline constexpr size_t kWebhookQueueMax = 1000;

struct WebhookConfig {
  std::string url;  // empty: disabled
  uint64_t timeout_ms = 2000;
  uint64_t max_retries = 3;
};

// "http[s]://host[:port][/path]" split; kInvalidArgument otherwise.
struct WebhookTarget {
  std::string scheme_host_port;  // e.g. "http://127.0.0.1:8080" (what httplib::Client takes)
  std::string path;              // e.g. "/hooks/amaters" ("/" when absent)
};
absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url);

std::string FiringJson(const alerts::Firing& firing, absl::Time fired_at, uint64_t node_id);

class AlertWebhook {
 public:
  AlertWebhook(uint64_t node_id, Metrics* metrics);
  ~AlertWebhook();  // Stop()
  void Start();
  void Stop();
  // Takes effect for the next POST (SIGHUP).
  void Configure(const WebhookConfig& config);
  void Enqueue(const alerts::Firing& firing, absl::Time fired_at);

 private:
  void Main();

  const uint64_t node_id_;
  Metrics* const metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  WebhookConfig config_;
  std::deque<std::string> queue_;  // JSON bodies
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_ALERT_WEBHOOK_H_
