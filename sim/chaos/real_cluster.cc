#include "sim/chaos/real_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "engine/base/check.h"

namespace amaters::sim::chaos {

namespace {

// The low end of the kernel's ephemeral port range: ports below it are not handed out to
// outgoing connections, so one picked here stays free until a node binds it.
int EphemeralLow() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768;
  if (!(f >> low) || low <= 11000) low = 32768;
  return low;
}

bool CanBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// `count` distinct ports in [10000, ephemeral low) that could be bound just now.
absl::StatusOr<std::vector<int>> PickPorts(size_t count) {
  const int low = 10000;
  const int high = EphemeralLow();
  std::mt19937 rng(static_cast<uint32_t>(::getpid()) ^
                   static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  std::uniform_int_distribution<int> pick(low, high - 1);
  std::set<int> chosen;
  for (int attempt = 0; attempt < 10000 && chosen.size() < count; ++attempt) {
    const int p = pick(rng);
    if (chosen.count(p) == 0 && CanBind(p)) chosen.insert(p);
  }
  if (chosen.size() < count) {
    return absl::ResourceExhaustedError(
        absl::StrCat("found only ", chosen.size(), " of ", count, " free ports in [", low, ", ",
                     high, ")"));
  }
  return std::vector<int>(chosen.begin(), chosen.end());
}

absl::Status ErrnoError(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

grpc::ChannelArguments ClientChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

absl::StatusOr<std::unique_ptr<RealCluster>> RealCluster::Create(RealClusterOptions options) {
  if (options.nodes < 1 || options.nodes > kRealNodesMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("nodes must be 1..", kRealNodesMax, ", not ", options.nodes));
  }
  if (::access(options.server_bin.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("amaters-server-chaos not found or not executable: ", options.server_bin));
  }
  if (options.faults_file.empty()) return absl::InvalidArgumentError("no faults file");
  absl::StatusOr<std::vector<int>> ports = PickPorts(static_cast<size_t>(options.nodes) * 3);
  if (!ports.ok()) return ports.status();
  std::unique_ptr<RealCluster> c(new RealCluster(std::move(options)));
  for (int i = 0; i < c->options_.nodes; ++i) {
    Node n;
    n.id = i + 1;
    n.client_port = (*ports)[static_cast<size_t>(3 * i)];
    n.peer_port = (*ports)[static_cast<size_t>(3 * i + 1)];
    n.admin_port = (*ports)[static_cast<size_t>(3 * i + 2)];
    n.dir = absl::StrCat(c->options_.dir, "/node", n.id);
    if (::mkdir(n.dir.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError("mkdir " + n.dir);
    n.channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", n.client_port),
                                          grpc::InsecureChannelCredentials(),
                                          ClientChannelArguments());
    n.maintenance = etcdserverpb::Maintenance::NewStub(n.channel);
    n.kv = etcdserverpb::KV::NewStub(n.channel);
    c->nodes_.push_back(std::move(n));
  }
  for (const Node& n : c->nodes_) {
    if (absl::Status s = c->WriteConfig(n); !s.ok()) return s;
  }
  return c;
}

absl::Status RealCluster::WriteConfig(const Node& n) const {
  std::vector<std::string> peers;
  for (const Node& m : nodes_) {
    peers.push_back(absl::StrCat("\"", m.id, ":127.0.0.1:", m.peer_port, "\""));
  }
  std::string toml = absl::StrCat(
      "[server]\nbind_address = \"127.0.0.1:", n.client_port, "\"\ndata_dir = \"", n.dir,
      "/data\"\n\n[cluster]\nnode_id = ", n.id, "\n",
      nodes_.size() > 1 ? absl::StrCat("peers = [", absl::StrJoin(peers, ", "), "]\n") : "",
      "heartbeat_interval_ms = ", options_.heartbeat_interval_ms,
      "\nelection_timeout_ms = ", options_.election_timeout_ms,
      "\n\n[metrics]\nbind_address = \"127.0.0.1:", n.admin_port, "\"\n");
  std::ofstream f(n.dir + "/amaters.toml", std::ios::trunc);
  f << toml;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", n.dir, "/amaters.toml"));
  return absl::OkStatus();
}

RealCluster::~RealCluster() {
  for (Node& n : nodes_) {
    if (n.pid > 0) {
      ::kill(n.pid, SIGKILL);
      ::waitpid(n.pid, nullptr, 0);
      n.pid = -1;
    }
  }
}

RealCluster::Node& RealCluster::node(int id) {
  AM_CHECK(id >= 1 && id <= size(), "node ", id, " of ", size());
  return nodes_[static_cast<size_t>(id - 1)];
}

const RealCluster::Node& RealCluster::node(int id) const {
  AM_CHECK(id >= 1 && id <= size(), "node ", id, " of ", size());
  return nodes_[static_cast<size_t>(id - 1)];
}

std::string RealCluster::client_address(int id) const {
  return absl::StrCat("127.0.0.1:", node(id).client_port);
}

std::vector<std::string> RealCluster::client_addresses() const {
  std::vector<std::string> out;
  for (const Node& n : nodes_) out.push_back(client_address(n.id));
  return out;
}

std::string RealCluster::data_dir(int id) const { return node(id).dir + "/data"; }
std::string RealCluster::log_path(int id) const { return node(id).dir + "/amaters-server.log"; }

void RealCluster::Reap(Node& n) {
  if (n.pid <= 0) return;
  int status = 0;
  const pid_t r = ::waitpid(n.pid, &status, WNOHANG);
  if (r != n.pid) return;
  n.last_exit = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  n.pid = -1;
  n.paused = false;
}

absl::Status RealCluster::Start(int id) {
  Node& n = node(id);
  Reap(n);
  if (n.pid > 0) return absl::FailedPreconditionError(absl::StrCat("node ", id, " is running"));
  const std::string log = log_path(id);
  const std::string config = "--config=" + n.dir + "/amaters.toml";
  const std::string chaos_node = absl::StrCat("--chaos-node=", id);
  const std::string chaos_faults = "--chaos-faults=" + options_.faults_file;
  const std::string chaos_bug = "--chaos-bug=" + options_.bug;
  const pid_t pid = ::fork();
  if (pid < 0) return ErrnoError("fork");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the runner (killed by a test timeout)
    const char* argv[] = {options_.server_bin.c_str(), config.c_str(), chaos_node.c_str(),
                          chaos_faults.c_str(),
                          options_.bug.empty() ? nullptr : chaos_bug.c_str(), nullptr};
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  n.pid = pid;
  n.paused = false;
  n.last_exit.reset();
  return absl::OkStatus();
}

absl::Status RealCluster::StartAll() {
  for (const Node& n : nodes_) {
    if (absl::Status s = Start(n.id); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status RealCluster::Kill(int id) {
  Node& n = node(id);
  Reap(n);
  if (n.pid <= 0) return absl::FailedPreconditionError(absl::StrCat("node ", id, " is down"));
  ::kill(n.pid, SIGKILL);
  int status = 0;
  ::waitpid(n.pid, &status, 0);
  n.last_exit = 128 + SIGKILL;
  n.pid = -1;
  n.paused = false;
  return absl::OkStatus();
}

absl::Status RealCluster::StopOrContinue(int id, bool stop) {
  Node& n = node(id);
  Reap(n);
  if (n.pid <= 0) return absl::FailedPreconditionError(absl::StrCat("node ", id, " is down"));
  const int sig = stop ? SIGSTOP : SIGCONT;
  if (::kill(n.pid, sig) != 0) return ErrnoError(stop ? "SIGSTOP" : "SIGCONT");
  n.paused = stop;
  return absl::OkStatus();
}

absl::Status RealCluster::Pause(int id) { return StopOrContinue(id, /*stop=*/true); }
absl::Status RealCluster::Resume(int id) { return StopOrContinue(id, /*stop=*/false); }

absl::StatusOr<RealCluster::Corruption> RealCluster::CorruptWal(int id, uint64_t random) {
  if (Running(id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("n", id, " is up: crash it before corrupting its WAL"));
  }
  const std::string wal_dir = data_dir(id) + "/wal";
  std::vector<std::string> segments;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(wal_dir, ec)) {
    if (e.path().extension() == ".wal") segments.push_back(e.path().string());
  }
  std::sort(segments.begin(), segments.end());
  for (size_t k = 0; k < segments.size(); ++k) {
    const std::string& path = segments[(random + k) % segments.size()];
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::optional<WalDamage> damage = PickWalDamage(bytes, random);
    if (!damage.has_value()) continue;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(absl::StrCat("open ", path));
    const char flipped = static_cast<char>(bytes[damage->offset] ^ (1 << damage->bit));
    const bool ok = ::pwrite(fd, &flipped, 1, static_cast<off_t>(damage->offset)) == 1 &&
                    ::fdatasync(fd) == 0;
    ::close(fd);
    if (!ok) return ErrnoError(absl::StrCat("write ", path));
    return Corruption{path, *damage};
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "n", id, " has no WAL record to corrupt (needs two records in one segment) in ", wal_dir,
      ec ? absl::StrCat(": ", ec.message()) : ""));
}

absl::Status RealCluster::Wipe(int id) {
  if (Running(id)) {
    return absl::FailedPreconditionError(
        absl::StrCat("n", id, " is up: crash it before wiping its disk"));
  }
  std::error_code ec;
  std::filesystem::remove_all(data_dir(id), ec);
  if (ec) return absl::InternalError(absl::StrCat("wiping ", data_dir(id), ": ", ec.message()));
  return absl::OkStatus();
}

std::map<int, int> RealCluster::StopAll(absl::Duration grace) {
  std::map<int, int> codes;
  for (Node& n : nodes_) {
    Reap(n);
    if (n.pid <= 0) continue;
    ::kill(n.pid, SIGCONT);
    ::kill(n.pid, SIGTERM);
  }
  const absl::Time deadline = absl::Now() + grace;
  for (Node& n : nodes_) {
    while (n.pid > 0 && absl::Now() < deadline) {
      Reap(n);
      if (n.pid > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (n.pid > 0) (void)Kill(n.id);
    if (n.last_exit.has_value()) codes[n.id] = *n.last_exit;
  }
  return codes;
}

bool RealCluster::Running(int id) {
  Node& n = node(id);
  Reap(n);
  return n.pid > 0;
}

bool RealCluster::Paused(int id) const { return node(id).paused; }

bool RealCluster::Refused(int id) {
  Node& n = node(id);
  Reap(n);
  return n.pid <= 0 && n.last_exit.has_value() && *n.last_exit != 0 &&
         *n.last_exit != 128 + SIGKILL;
}

std::map<int, NodeView> RealCluster::Observe() {
  std::map<int, NodeView> views;
  for (Node& n : nodes_) {
    Reap(n);
    NodeView v;
    v.running = n.pid > 0;
    v.paused = n.paused;
    v.refused = Refused(n.id);
    if (v.running && !v.paused) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      // Waits for the connection within the deadline: right after a (re)start the channel is
      // still connecting, and a fail-fast call would only report that.
      ctx.set_wait_for_ready(true);
      etcdserverpb::StatusRequest req;
      etcdserverpb::StatusResponse resp;
      if (n.maintenance->Status(&ctx, req, &resp).ok()) {
        v.answered = true;
        v.leader = resp.leader();
        v.term = resp.raftterm();
        v.commit = resp.raftindex();
        v.applied = resp.raftappliedindex();
      }
    }
    views[n.id] = v;
  }
  return views;
}

absl::Status RealCluster::MoveLeader(int via, int target, absl::Duration timeout) {
  Node& n = node(via);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  etcdserverpb::MoveLeaderRequest req;
  req.set_targetid(static_cast<uint64_t>(target));
  etcdserverpb::MoveLeaderResponse resp;
  const grpc::Status s = n.maintenance->MoveLeader(&ctx, req, &resp);
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("move-leader to ", target, " via node ", via, ": ",
                                   s.error_message()));
}

absl::StatusOr<std::map<std::string, std::string>> RealCluster::Contents(int id) {
  Node& n = node(id);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  etcdserverpb::RangeRequest req;
  req.set_key(std::string(1, '\0'));
  req.set_range_end(std::string(1, '\0'));
  req.set_serializable(true);
  etcdserverpb::RangeResponse resp;
  const grpc::Status s = n.kv->Range(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::UnavailableError(absl::StrCat("range on node ", id, ": ", s.error_message()));
  }
  std::map<std::string, std::string> out;
  for (const auto& kv : resp.kvs()) out[kv.key()] = kv.value();
  return out;
}

}  // namespace amaters::sim::chaos
