#include "server/admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <httplib.h>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/admin/exposition_lint.h"
#include "server/admin/metrics.h"

namespace amaters::server {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

AdminStatus LeaderStatus() {
  AdminStatus s;
  s.node_id = 1;
  s.role = "leader";
  s.leader_id = 1;
  s.term = 7;
  s.commit_index = 1200;
  s.last_log_index = 1201;
  s.applied_index = 1199;
  s.snapshot_index = 1000;
  s.first_log_index = 996;
  s.num_nodes = 3;
  s.voters = {1, 2, 3};
  s.peers = {{2, 1201, 1202, true, 0, false}, {3, 1159, 1160, false, 42, false}};
  s.health = "healthy";
  s.health_detail = {{"wal", "ok"}, {"raft", "leader of term 7"}};
  s.ready = true;
  s.version = "0.1.0";
  s.uptime_seconds = 12.3456;
  return s;
}

AdminStatus FollowerStatus() {
  AdminStatus s = LeaderStatus();
  s.node_id = 2;
  s.role = "follower";
  s.peers.clear();
  return s;
}

// One AdminServer on 127.0.0.1:0 whose status the test sets.
class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetStatus(LeaderStatus());
    server_ = std::make_unique<AdminServer>("127.0.0.1:0", &metrics_, [this] { return Status(); });
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }
  void TearDown() override { server_->Stop(); }

  void SetStatus(AdminStatus s) {
    absl::MutexLock lock(&mu_);
    status_ = std::move(s);
  }
  AdminStatus Status() {
    absl::MutexLock lock(&mu_);
    if (throw_) throw std::runtime_error("snapshot unavailable");
    return status_;
  }
  void SetThrow(bool t) {
    absl::MutexLock lock(&mu_);
    throw_ = t;
  }

  std::unique_ptr<httplib::Client> Client() {
    auto cli = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    cli->set_connection_timeout(2, 0);
    cli->set_read_timeout(5, 0);
    return cli;
  }

  // GET `path`; fails the test if the request itself fails.
  httplib::Result Get(const std::string& path) {
    httplib::Result res = Client()->Get(path.c_str());
    EXPECT_TRUE(res) << path << ": " << httplib::to_string(res.error());
    return res;
  }

  Metrics metrics_;
  absl::Mutex mu_;
  AdminStatus status_ ABSL_GUARDED_BY(mu_);
  bool throw_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<AdminServer> server_;
};

void ExpectJson(const httplib::Result& res, int code, const std::string& body) {
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, code);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store");
  EXPECT_EQ(res->body, body + "\n");
}

TEST_F(AdminServerTest, HealthHealthyLeader) {
  ExpectJson(Get("/health"), 200,
             "{\"status\":\"healthy\",\"node_id\":1,\"role\":\"leader\",\"leader_id\":1,"
             "\"checks\":{\"wal\":\"ok\",\"raft\":\"leader of term 7\"}}");
}

TEST_F(AdminServerTest, HealthStatusCodesFollowHealth) {
  const struct {
    const char* health;
    int health_code;
    bool alive;
  } cases[] = {
      {"healthy", 200, true},         {"degraded", 200, true},
      {"starting", 503, true},        {"unhealthy", 503, false},
      {"shutting_down", 503, false},  {"bogus", 503, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.health);
    AdminStatus s = LeaderStatus();
    s.health = c.health;
    s.health_detail = {{"disk", "write error: EIO \"wal-0001\"\n"}};
    SetStatus(s);
    ExpectJson(Get("/health"), c.health_code,
               absl::StrCat("{\"status\":\"", c.health, "\",\"node_id\":1,\"role\":\"leader\","
                            "\"leader_id\":1,\"checks\":{\"disk\":\"write error: EIO "
                            "\\\"wal-0001\\\"\\n\"}}"));
    const std::string alive_body = absl::StrCat("{\"alive\":", c.alive ? "true" : "false", "}");
    ExpectJson(Get("/healthz"), c.alive ? 200 : 503, alive_body);
    ExpectJson(Get("/livez"), c.alive ? 200 : 503, alive_body);
  }
}

TEST_F(AdminServerTest, Readyz) {
  ExpectJson(Get("/readyz"), 200, "{\"ready\":true}");
  AdminStatus s = LeaderStatus();
  s.ready = false;
  SetStatus(s);
  ExpectJson(Get("/readyz"), 503, "{\"ready\":false}");
}

TEST_F(AdminServerTest, StatusOnLeaderListsPeers) {
  ExpectJson(Get("/status"), 200,
             "{\"node_id\":1,\"role\":\"leader\",\"leader_id\":1,\"term\":7,"
             "\"commit_index\":1200,\"last_log_index\":1201,\"applied_index\":1199,"
             "\"snapshot_index\":1000,\"first_log_index\":996,"
             "\"num_nodes\":3,\"voters\":[1,2,3],\"learners\":[],\"peers\":["
             "{\"id\":2,\"match\":1201,\"next\":1202,\"connected\":true,\"lag\":0},"
             "{\"id\":3,\"match\":1159,\"next\":1160,\"connected\":false,\"lag\":42}],"
             "\"health\":\"healthy\",\"ready\":true,\"version\":\"0.1.0\","
             "\"uptime_seconds\":12.346}");
}

TEST_F(AdminServerTest, StatusOnFollowerHasNoPeers) {
  SetStatus(FollowerStatus());
  ExpectJson(Get("/status"), 200,
             "{\"node_id\":2,\"role\":\"follower\",\"leader_id\":1,\"term\":7,"
             "\"commit_index\":1200,\"last_log_index\":1201,\"applied_index\":1199,"
             "\"snapshot_index\":1000,\"first_log_index\":996,"
             "\"num_nodes\":3,\"voters\":[1,2,3],\"learners\":[],\"health\":\"healthy\","
             "\"ready\":true,\"version\":\"0.1.0\",\"uptime_seconds\":12.346}");
}

TEST_F(AdminServerTest, StatusShowsAJointConfigurationAndLearners) {
  AdminStatus s = LeaderStatus();
  s.voters = {1, 2, 4};
  s.voters_outgoing = {1, 2, 3};
  s.learners = {5};
  s.peers.push_back({5, 1000, 1001, true, 201, true});
  SetStatus(s);
  httplib::Result res = Get("/status");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("\"voters\":[1,2,4],\"voters_outgoing\":[1,2,3],"
                                   "\"learners\":[5],"));
  EXPECT_THAT(res->body, HasSubstr("{\"id\":5,\"match\":1000,\"next\":1001,"
                                   "\"connected\":true,\"lag\":201,\"learner\":true}"));
}

TEST_F(AdminServerTest, StatusOnSingleNodeLeaderHasEmptyPeers) {
  AdminStatus s = LeaderStatus();
  s.num_nodes = 1;
  s.peers.clear();
  SetStatus(s);
  httplib::Result res = Get("/status");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("\"learners\":[],\"peers\":[],\"health\""));
}

TEST_F(AdminServerTest, Metrics) {
  metrics_.SetRaftState(7, 1200, 1199, 1201, true, 1);
  metrics_.SetPeerLag(3, 42);
  metrics_.ObserveRequest(RpcMethod::kPut, absl::StatusCode::kOk, 0.002);
  httplib::Result res = Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_EQ(res->body, metrics_.Serialize());
  EXPECT_THAT(res->body, HasSubstr("\n# TYPE amaters_raft_term gauge\namaters_raft_term 7\n"));
  EXPECT_THAT(res->body, HasSubstr("amaters_peer_replication_lag_entries{peer=\"3\"} 42\n"));
  EXPECT_THAT(LintExposition(res->body), IsEmpty());
  // Query strings do not change the route.
  res = Get("/metrics?name[]=amaters_raft_term");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(AdminServerTest, UnknownPathIs404Json) {
  ExpectJson(Get("/nope"), 404, "{\"error\":\"not found\",\"path\":\"/nope\"}");
  ExpectJson(Get("/health/"), 404, "{\"error\":\"not found\",\"path\":\"/health/\"}");
  ExpectJson(Get("/"), 404, "{\"error\":\"not found\",\"path\":\"/\"}");
}

TEST_F(AdminServerTest, OtherMethodsAre405) {
  const std::string body = "{\"error\":\"method not allowed\"}";
  auto cli = Client();
  std::vector<std::pair<std::string, httplib::Result>> results;
  results.emplace_back("POST", cli->Post("/health", "x", "text/plain"));
  results.emplace_back("PUT", cli->Put("/metrics", "x", "text/plain"));
  results.emplace_back("PATCH", cli->Patch("/status", "x", "text/plain"));
  results.emplace_back("DELETE", cli->Delete("/readyz"));
  results.emplace_back("OPTIONS", cli->Options("/healthz"));
  results.emplace_back("POST unknown path", cli->Post("/nope", "", "text/plain"));
  for (const auto& [name, res] : results) {
    SCOPED_TRACE(name);
    ExpectJson(res, 405, body);
    EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  }
}

// TRACE through a raw socket: httplib::Client cannot send it.
std::string RawRequest(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

TEST_F(AdminServerTest, TraceIs405) {
  const std::string response =
      RawRequest(server_->port(), "TRACE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(absl::StartsWith(response, "HTTP/1.1 405")) << response;
  EXPECT_THAT(response, HasSubstr("{\"error\":\"method not allowed\"}"));
}

TEST_F(AdminServerTest, HeadHasNoBody) {
  httplib::Result res = Client()->Head("/health");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");
}

TEST_F(AdminServerTest, OversizedBodyIs413) {
  httplib::Result res =
      Client()->Post("/health", std::string(kAdminHttpPayloadMaxBytes + 1, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(res->body, "{\"error\":\"payload too large\"}\n");
}

TEST_F(AdminServerTest, StatusCallbackExceptionIs500) {
  SetThrow(true);
  httplib::Result res = Get("/status");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(res->body, "{\"error\":\"internal error\",\"detail\":\"snapshot unavailable\"}\n");
  SetThrow(false);
  EXPECT_EQ(Get("/status")->status, 200);  // the server keeps serving
}

TEST_F(AdminServerTest, SecondServerOnSamePortFails) {
  const std::string address = absl::StrCat("127.0.0.1:", server_->port());
  AdminServer second(address, &metrics_, [] { return LeaderStatus(); });
  const absl::Status s = second.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(s.message(),
            absl::StrCat("admin HTTP: cannot bind ", address, ": Address already in use"));
  EXPECT_EQ(second.port(), 0);
  second.Stop();
  // The first server is unaffected.
  EXPECT_EQ(Get("/healthz")->status, 200);
}

TEST_F(AdminServerTest, StopIsIdempotentAndClosesThePort) {
  EXPECT_EQ(Get("/healthz")->status, 200);
  server_->Stop();
  server_->Stop();
  auto cli = Client();
  httplib::Result res = cli->Get("/healthz");
  EXPECT_FALSE(res);
  // Start after Stop is refused.
  const absl::Status s = server_->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
}

TEST_F(AdminServerTest, StartTwiceIsRefused) {
  const absl::Status s = server_->Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("called twice"));
  EXPECT_EQ(Get("/healthz")->status, 200);
}

TEST_F(AdminServerTest, ConcurrentClientsWhileMetricsChange) {
  std::atomic<bool> done{false};
  std::thread writer([&] {
    uint64_t i = 0;
    while (!done.load()) {
      metrics_.SetRaftState(i, i, i, i, i % 2 == 0, 1);
      metrics_.SetPeerLag(2 + i % 3, i);
      if (i % 5 == 0) metrics_.ClearAllPeerLags();
      ++i;
    }
  });
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      auto cli = Client();
      for (int i = 0; i < 20; ++i) {
        httplib::Result res = cli->Get(t % 2 == 0 ? "/metrics" : "/status");
        if (res && res->status == 200) ok.fetch_add(1);
      }
    });
  }
  for (auto& c : clients) c.join();
  done = true;
  writer.join();
  EXPECT_EQ(ok.load(), 6 * 20);
}

TEST(AdminServerStart, StopWithoutStartIsFine) {
  Metrics metrics;
  AdminServer server("127.0.0.1:0", &metrics, [] { return AdminStatus(); });
  EXPECT_EQ(server.port(), 0);
  server.Stop();
  server.Stop();
}

TEST(AdminServerStart, MalformedAddressIsInvalidArgument) {
  Metrics metrics;
  AdminServer server("127.0.0.1", &metrics, [] { return AdminStatus(); });
  const absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("\"127.0.0.1\": missing port"));
}

TEST(AdminServerStart, AddressNotOnThisHostIsFailedPrecondition) {
  Metrics metrics;
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
  AdminServer server("192.0.2.1:0", &metrics, [] { return AdminStatus(); });
  const absl::Status s = server.Start();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(s.message(), "admin HTTP: cannot bind 192.0.2.1:0: Cannot assign requested address");
}

TEST(ParseBindAddress, Accepts) {
  using HostPort = std::pair<std::string, int>;
  EXPECT_EQ(*ParseBindAddress("127.0.0.1:9090"), HostPort("127.0.0.1", 9090));
  EXPECT_EQ(*ParseBindAddress("0.0.0.0:0"), HostPort("0.0.0.0", 0));
  EXPECT_EQ(*ParseBindAddress("localhost:65535"), HostPort("localhost", 65535));
  EXPECT_EQ(*ParseBindAddress("[::1]:9090"), HostPort("::1", 9090));
  EXPECT_EQ(*ParseBindAddress("[::]:80"), HostPort("::", 80));
}

TEST(ParseBindAddress, Rejects) {
  for (const char* bad : {"", "9090", ":9090", "host:", "host:port", "host:-1", "host:+80",
                          "host:65536", "host:123456", "::1:9090", "[::1]9090", "[::1:9090",
                          "[]:80", "host: 80"}) {
    SCOPED_TRACE(bad);
    const absl::StatusOr<std::pair<std::string, int>> r = ParseBindAddress(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()),
                HasSubstr(absl::StrCat("admin HTTP: invalid bind address \"", bad, "\"")));
  }
}

TEST(Health, Semantics) {
  EXPECT_TRUE(HealthIsServing("healthy"));
  EXPECT_TRUE(HealthIsServing("degraded"));
  EXPECT_FALSE(HealthIsServing("starting"));
  EXPECT_FALSE(HealthIsServing("unhealthy"));
  EXPECT_FALSE(HealthIsServing("shutting_down"));
  EXPECT_TRUE(HealthIsAlive("starting"));
  EXPECT_TRUE(HealthIsAlive("healthy"));
  EXPECT_TRUE(HealthIsAlive("degraded"));
  EXPECT_FALSE(HealthIsAlive("unhealthy"));
  EXPECT_FALSE(HealthIsAlive("shutting_down"));
  EXPECT_FALSE(HealthIsAlive(""));
}

}  // namespace
}  // namespace amaters::server
