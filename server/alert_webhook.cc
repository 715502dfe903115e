#include "server/alert_webhook.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/admin/json.h"
#include "server/admin/metrics.h"
#include "server/log.h"

namespace amaters::server {

absl::StatusOr<WebhookTarget> ParseWebhookUrl(const std::string& url) {
  std::string rest;
  std::string scheme;
  if (absl::StartsWith(url, "http://")) {
    scheme = "http://";
  } else if (absl::StartsWith(url, "https://")) {
    scheme = "https://";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook URL \"", url, "\": must start with http:// or https://"));
  }
  rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  WebhookTarget t;
  const std::string host = rest.substr(0, slash);
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("webhook URL \"", url, "\": no host"));
  }
  t.scheme_host_port = scheme + host;
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  return t;
}

std::string FiringJson(const alerts::Firing& firing, absl::Time fired_at, uint64_t node_id) {
  JsonObject fields;
  for (const alerts::Field& f : firing.fields) fields.AddString(f.name, f.value);
  return JsonObject()
      .AddString("rule", firing.rule)
      .AddString("severity", alerts::SeverityName(firing.severity))
      .AddString("dedup_key", firing.dedup_key)
      .AddString("fired_at",
                 absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", fired_at, absl::UTCTimeZone()))
      .AddString("message", firing.message)
      .AddUint("node_id", node_id)
      .AddRaw("fields", fields.Build())
      .Build();
}

AlertWebhook::AlertWebhook(uint64_t node_id, Metrics* metrics)
    : node_id_(node_id), metrics_(metrics) {}

AlertWebhook::~AlertWebhook() { Stop(); }

void AlertWebhook::Start() { thread_ = std::thread([this] { Main(); }); }

void AlertWebhook::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertWebhook::Configure(const WebhookConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  config_ = config;
}

void AlertWebhook::Enqueue(const alerts::Firing& firing, absl::Time fired_at) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.url.empty()) return;
    if (queue_.size() >= kWebhookQueueMax) {
      if (metrics_ != nullptr) metrics_->IncWebhookFailures();
      LogWarn("alert webhook queue full; firing dropped", {F("dedup_key", firing.dedup_key)});
      return;
    }
    queue_.push_back(FiringJson(firing, fired_at, node_id_));
  }
  cv_.notify_one();
}

void AlertWebhook::Main() {
  while (true) {
    std::string body;
    WebhookConfig config;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;  // undelivered firings stay in the log and in /alerts
      body = std::move(queue_.front());
      queue_.pop_front();
      config = config_;
    }
    absl::StatusOr<WebhookTarget> target = ParseWebhookUrl(config.url);
    if (!target.ok()) {
      if (metrics_ != nullptr) metrics_->IncWebhookFailures();
      continue;
    }
    httplib::Client client(target->scheme_host_port);
    const auto timeout = std::chrono::milliseconds(config.timeout_ms);
    client.set_connection_timeout(timeout);
    client.set_read_timeout(timeout);
    client.set_write_timeout(timeout);
    std::string last_error;
    bool delivered = false;
    auto backoff = std::chrono::milliseconds(100);
    for (uint64_t attempt = 0; attempt <= config.max_retries && !delivered; ++attempt) {
      if (attempt > 0) {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, backoff, [&] { return stop_; })) return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      }
      httplib::Result r = client.Post(target->path, body, "application/json");
      if (r && r->status >= 200 && r->status < 300) {
        delivered = true;
      } else {
        last_error = r ? absl::StrCat("HTTP ", r->status) : httplib::to_string(r.error());
      }
    }
    if (!delivered) {
      if (metrics_ != nullptr) metrics_->IncWebhookFailures();
      LogWarn("alert webhook failed; firing dropped",
              {F("url", config.url), F("error", last_error), F("retries", config.max_retries)});
    }
  }
}

}  // namespace amaters::server
