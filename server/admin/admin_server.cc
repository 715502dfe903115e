#include "server/admin/admin_server.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/check.h"
#include "server/admin/json.h"

namespace amaters::server {
namespace {

constexpr char kJsonContentType[] = "application/json";
// The Prometheus text exposition format version the serializer writes.
constexpr char kMetricsContentType[] = "text/plain; version=0.0.4";

void Reply(httplib::Response& res, int code, const std::string& json) {
  res.status = code;
  res.set_content(absl::StrCat(json, "\n"), kJsonContentType);
}

std::string ErrorJson(absl::string_view error) {
  return JsonObject().AddString("error", error).Build();
}

absl::string_view ReasonPhrase(int code) {
  switch (code) {
    case 400: return "bad request";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 408: return "request timeout";
    case 413: return "payload too large";
    case 414: return "uri too long";
    case 416: return "range not satisfiable";
    case 500: return "internal error";
    default: return "error";
  }
}

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer to the message (maybe a static string, maybe buf).
  return strerror_r(err, buf, sizeof(buf));
}

absl::Status BindError(const std::string& address, int err) {
  const std::string message =
      absl::StrCat("admin HTTP: cannot bind ", address, ": ",
                   err != 0 ? ErrnoText(err) : std::string("unknown error (no errno)"));
  switch (err) {
    case EADDRINUSE: return absl::UnavailableError(message);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(message);
    default: return absl::FailedPreconditionError(message);
  }
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

bool HealthIsServing(absl::string_view health) {
  return health == "healthy" || health == "degraded";
}

bool HealthIsAlive(absl::string_view health) {
  return health == "starting" || HealthIsServing(health);
}

absl::StatusOr<std::pair<std::string, int>> ParseBindAddress(absl::string_view address) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("admin HTTP: invalid bind address \"",
                                                   address, "\": ", why,
                                                   " (want host:port or [ipv6]:port)"));
  };
  std::string host;
  absl::string_view port;
  if (!address.empty() && address.front() == '[') {
    const std::size_t close = address.find(']');
    if (close == absl::string_view::npos) return invalid("missing ']'");
    host = std::string(address.substr(1, close - 1));
    const absl::string_view rest = address.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return invalid("missing port");
    port = rest.substr(1);
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return invalid("missing port");
    host = std::string(address.substr(0, colon));
    if (host.find(':') != std::string::npos) return invalid("IPv6 hosts need brackets");
    port = address.substr(colon + 1);
  }
  if (host.empty()) return invalid("empty host (use 0.0.0.0 or [::] for every interface)");
  if (!AllDigits(port) || port.size() > 5) return invalid("port is not a number 0..65535");
  int value = 0;
  for (char c : port) value = value * 10 + (c - '0');
  if (value > 65535) return invalid("port is not a number 0..65535");
  return std::make_pair(std::move(host), value);
}

std::string HealthJson(const AdminStatus& status) {
  JsonObject checks;
  for (const auto& [probe, detail] : status.health_detail) checks.AddString(probe, detail);
  return JsonObject()
      .AddString("status", status.health)
      .AddUint("node_id", status.node_id)
      .AddString("role", status.role)
      .AddUint("leader_id", status.leader_id)
      .AddRaw("checks", checks.Build())
      .Build();
}

std::string AlertsJson(const std::vector<AlertView>& alerts) {
  std::string out = "[";
  for (size_t i = 0; i < alerts.size(); ++i) {
    const AlertView& a = alerts[i];
    if (i > 0) out += ",";
    out += JsonObject()
               .AddString("rule", a.rule)
               .AddString("severity", a.severity)
               .AddString("dedup_key", a.dedup_key)
               .AddString("fired_at", a.fired_at)
               .AddString("message", a.message)
               .Build();
  }
  out += "]";
  return out;
}

// [1,2,3]
std::string IdList(const std::vector<uint64_t>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ","), "]");
}

std::string StatusJson(const AdminStatus& status) {
  JsonObject out;
  out.AddUint("node_id", status.node_id)
      .AddString("role", status.role)
      .AddUint("leader_id", status.leader_id)
      .AddUint("term", status.term)
      .AddUint("commit_index", status.commit_index)
      .AddUint("last_log_index", status.last_log_index)
      .AddUint("applied_index", status.applied_index)
      .AddUint("snapshot_index", status.snapshot_index)
      .AddUint("first_log_index", status.first_log_index)
      .AddUint("num_nodes", status.num_nodes)
      .AddRaw("voters", IdList(status.voters));
  if (!status.voters_outgoing.empty()) out.AddRaw("voters_outgoing", IdList(status.voters_outgoing));
  out.AddRaw("learners", IdList(status.learners));
  if (status.role == "leader") {
    std::vector<std::string> peers;
    peers.reserve(status.peers.size());
    for (const PeerStatus& p : status.peers) {
      JsonObject peer;
      peer.AddUint("id", p.id)
          .AddUint("match", p.match)
          .AddUint("next", p.next)
          .AddBool("connected", p.connected)
          .AddUint("lag", p.lag);
      if (p.learner) peer.AddBool("learner", true);  // only learners: voters' objects unchanged
      peers.push_back(peer.Build());
    }
    out.AddRaw("peers", absl::StrCat("[", absl::StrJoin(peers, ","), "]"));
  }
  return out.AddString("health", status.health)
      .AddBool("ready", status.ready)
      .AddString("version", status.version)
      .AddDouble("uptime_seconds", status.uptime_seconds, 3)
      .Build();
}

AdminServer::AdminServer(std::string bind_address, Metrics* metrics,
                         std::function<AdminStatus()> status)
    : bind_address_(std::move(bind_address)),
      metrics_(metrics),
      status_(std::move(status)),
      server_(std::make_unique<httplib::Server>()) {
  AM_CHECK(metrics_ != nullptr, "AdminServer needs a Metrics");
  AM_CHECK(static_cast<bool>(status_), "AdminServer needs a status callback");
}

AdminServer::~AdminServer() { Stop(); }

int AdminServer::port() const { return port_.load(std::memory_order_acquire); }

absl::Status AdminServer::Start() {
  if (started_ || stopped_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "admin HTTP: Start() on ", bind_address_, started_ ? " called twice" : " after Stop()"));
  }
  absl::StatusOr<std::pair<std::string, int>> host_port = ParseBindAddress(bind_address_);
  if (!host_port.ok()) return host_port.status();
  const std::string& host = host_port->first;
  const int port = host_port->second;

  // Resolve first, so that a bad host name gets its own message (httplib reports only failure).
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* resolved = nullptr;
  const std::string port_text = absl::StrCat(port);
  const int gai = ::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &resolved);
  if (gai != 0) {
    return absl::InvalidArgumentError(absl::StrCat("admin HTTP: cannot resolve host \"", host,
                                                   "\" of ", bind_address_, ": ",
                                                   gai_strerror(gai)));
  }
  ::freeaddrinfo(resolved);

  httplib::Server& svr = *server_;
  svr.new_task_queue = [] { return new httplib::ThreadPool(kAdminHttpThreads); };
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svr.set_read_timeout(kAdminHttpIoTimeoutSeconds, 0);
  svr.set_write_timeout(kAdminHttpIoTimeoutSeconds, 0);
  svr.set_keep_alive_timeout(kAdminHttpKeepAliveSeconds);
  svr.set_keep_alive_max_count(kAdminHttpKeepAliveMaxRequests);
  svr.set_payload_max_length(kAdminHttpPayloadMaxBytes);
  svr.set_default_headers({{"Cache-Control", "no-store"}});

  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const AdminStatus s = status_();
    Reply(res, HealthIsServing(s.health) ? 200 : 503, HealthJson(s));
  });
  const httplib::Server::Handler alive = [this](const httplib::Request&,
                                                httplib::Response& res) {
    const bool is_alive = HealthIsAlive(status_().health);
    Reply(res, is_alive ? 200 : 503, JsonObject().AddBool("alive", is_alive).Build());
  };
  svr.Get("/healthz", alive);
  svr.Get("/livez", alive);
  svr.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = status_().ready;
    Reply(res, ready ? 200 : 503, JsonObject().AddBool("ready", ready).Build());
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(metrics_->Serialize(), kMetricsContentType);
  });
  svr.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, StatusJson(status_()));
  });
  svr.Get("/alerts", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, AlertsJson(alerts_ ? alerts_() : std::vector<AlertView>{}));
  });

  const httplib::Server::Handler not_allowed = [](const httplib::Request&,
                                                  httplib::Response& res) {
    res.set_header("Allow", "GET, HEAD");
    Reply(res, 405, ErrorJson(ReasonPhrase(405)));
  };
  svr.Post(".*", not_allowed);
  svr.Put(".*", not_allowed);
  svr.Patch(".*", not_allowed);
  svr.Delete(".*", not_allowed);
  svr.Options(".*", not_allowed);
  // httplib parses TRACE and CONNECT but routes them nowhere (400); they are methods too.
  svr.set_pre_routing_handler([not_allowed](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "TRACE" || req.method == "CONNECT") {
      not_allowed(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every other error status httplib produces (404 for unknown paths, 400, 413, 414, ...) gets a
  // JSON body; responses our handlers already filled (503s) are left alone.
  svr.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    JsonObject body;
    body.AddString("error", ReasonPhrase(res.status));
    if (res.status == 404) body.AddString("path", req.path);
    Reply(res, res.status, body.Build());
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Reply(res, 500,
              JsonObject().AddString("error", ReasonPhrase(500)).AddString("detail", what).Build());
      });

  started_ = true;
  errno = 0;
  const int bound =
      port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound < 0) return BindError(bind_address_, errno);
  port_.store(bound, std::memory_order_release);

  thread_ = std::thread([this] {
    if (!server_->listen_after_bind()) {
      std::fprintf(stderr, "admin HTTP: listener on %s stopped with an accept error\n",
                   bind_address_.c_str());
    }
    listener_exited_.store(true, std::memory_order_release);
  });
  // httplib's stop() does nothing until the listener has marked itself running, so Start()
  // returns only once it has: a Stop() right after Start() must not be lost.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kAdminHttpStartTimeoutMs);
  while (!svr.is_running() && !listener_exited_.load(std::memory_order_acquire)) {
    AM_CHECK(std::chrono::steady_clock::now() < deadline, "admin HTTP listener on ",
             bind_address_, " did not start within ", kAdminHttpStartTimeoutMs, " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!svr.is_running()) {
    thread_.join();
    stopped_ = true;
    return absl::InternalError(
        absl::StrCat("admin HTTP: listener on ", bind_address_, " stopped right after start"));
  }
  return absl::OkStatus();
}

void AdminServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace amaters::server
