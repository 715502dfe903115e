#include "server/alert_webhook.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/admin/metrics.h"

namespace amaters::server {
namespace {

alerts::Firing NodeFailed3() {
  alerts::Firing f;
  f.rule = "node_failed";
  f.severity = alerts::Severity::kCritical;
  f.dedup_key = "node_failed:3";
  f.fired_at_ms = 1234;
  f.message = "node 3 failed";
  f.fields = {{"node_id", "3"}};
  return f;
}

TEST(WebhookUrl, Parses) {
  absl::StatusOr<WebhookTarget> t = ParseWebhookUrl("http://127.0.0.1:8080/hooks/amaters");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->scheme_host_port, "http://127.0.0.1:8080");
  EXPECT_EQ(t->path, "/hooks/amaters");
  t = ParseWebhookUrl("https://alerts.example.com");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->path, "/");
  EXPECT_FALSE(ParseWebhookUrl("ftp://x/y").ok());
  EXPECT_FALSE(ParseWebhookUrl("http:///nohost").ok());
}

TEST(WebhookBody, IsOneJsonObjectWithEveryField) {
  const std::string body = FiringJson(NodeFailed3(), absl::FromUnixSeconds(1764200000), 1);
  EXPECT_EQ(body,
            "{\"rule\":\"node_failed\",\"severity\":\"critical\",\"dedup_key\":\"node_failed:3\","
            "\"fired_at\":\"2025-11-26T23:33:20.000Z\",\"message\":\"node 3 failed\","
            "\"node_id\":1,\"fields\":{\"node_id\":\"3\"}}");
}

// A real HTTP receiver on 127.0.0.1: the first POST gets 500, the retry succeeds.
TEST(AlertWebhook, PostsEachFiringAndRetriesFailures) {
  httplib::Server receiver;
  std::mutex mu;
  std::vector<std::string> bodies;
  std::atomic<int> calls{0};
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    if (calls.fetch_add(1) == 0) {
      res.status = 500;
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    bodies.push_back(req.body);
    res.status = 204;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { receiver.listen_after_bind(); });

  Metrics metrics;
  AlertWebhook webhook(7, &metrics);
  webhook.Configure({absl::StrCat("http://127.0.0.1:", port, "/hook"), 2000, 3});
  webhook.Start();
  webhook.Enqueue(NodeFailed3(), absl::Now());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!bodies.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  webhook.Stop();
  receiver.stop();
  serving.join();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"dedup_key\":\"node_failed:3\"")) << bodies[0];
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"node_id\":7")) << bodies[0];
  EXPECT_EQ(calls.load(), 2);
  EXPECT_TRUE(absl::StrContains(metrics.Serialize(), "amaters_alert_webhook_failures_total 0"));
}

// Nobody listens: the firing is dropped after its retries, counted, and Stop is prompt.
TEST(AlertWebhook, GivesUpAfterItsRetriesAndCountsTheFailure) {
  Metrics metrics;
  AlertWebhook webhook(1, &metrics);
  webhook.Configure({"http://127.0.0.1:1/hook", 200, 1});  // port 1: refused at once
  webhook.Start();
  webhook.Enqueue(NodeFailed3(), absl::Now());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline &&
         !absl::StrContains(metrics.Serialize(), "amaters_alert_webhook_failures_total 1")) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::StrContains(metrics.Serialize(), "amaters_alert_webhook_failures_total 1"));
  webhook.Stop();
}

TEST(AlertWebhook, DisabledWithoutAUrl) {
  Metrics metrics;
  AlertWebhook webhook(1, &metrics);
  webhook.Start();
  webhook.Enqueue(NodeFailed3(), absl::Now());  // no URL: nothing queued, nothing counted
  webhook.Stop();
  EXPECT_TRUE(absl::StrContains(metrics.Serialize(), "amaters_alert_webhook_failures_total 0"));
}

}  // namespace
}  // namespace amaters::server
