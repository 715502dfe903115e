#include "server/testing/cluster.h"

#include <signal.h>

#include <cstdio>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace amaters::server::testing {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

grpc::ChannelArguments TestChannelArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout, and a blocking
  // client polls the handshake too rarely to finish within a short one.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

EtcdClient::EtcdClient(const std::string& address,
                       std::shared_ptr<grpc::ChannelCredentials> credentials)
    : EtcdClient(address, std::move(credentials), TestChannelArguments()) {}

EtcdClient::EtcdClient(const std::string& address,
                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                       const grpc::ChannelArguments& args) {
  channel_ = grpc::CreateCustomChannel(
      address, credentials ? credentials : grpc::InsecureChannelCredentials(), args);
  kv_ = etcdserverpb::KV::NewStub(channel_);
  maintenance_ = etcdserverpb::Maintenance::NewStub(channel_);
}

std::string Listeners(int port) {
  // Who listens on the port, for failure messages: a port handed to two processes, or bound
  // on another address family, shows here. `ss` is in iproute2; without it, say so.
  const std::string command =
      absl::StrCat("ss -Hltnp 'sport = :", port, "' 2>/dev/null || echo 'ss not available'");
  std::string out;
  if (FILE* f = popen(command.c_str(), "r")) {
    char buf[512];
    while (fgets(buf, sizeof(buf), f) != nullptr && out.size() < 4096) out += buf;
    pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out.empty() ? "nobody" : out;
}

namespace {
void SetDeadline(grpc::ClientContext* ctx) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}
}  // namespace

absl::Status EtcdClient::Put(const std::string& key, const std::string& value) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  etcdserverpb::PutResponse resp;
  return FromGrpc(kv_->Put(&ctx, req, &resp));
}

absl::StatusOr<std::optional<std::string>> EtcdClient::Get(const std::string& key,
                                                           bool serializable) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  req.set_serializable(serializable);
  absl::StatusOr<etcdserverpb::RangeResponse> resp = Range(req);
  if (!resp.ok()) return resp.status();
  if (resp->kvs_size() == 0) return std::optional<std::string>();
  return std::optional<std::string>(resp->kvs(0).value());
}

absl::StatusOr<etcdserverpb::RangeResponse> EtcdClient::Range(
    const etcdserverpb::RangeRequest& request) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::RangeResponse resp;
  if (absl::Status s = FromGrpc(kv_->Range(&ctx, request, &resp)); !s.ok()) return s;
  return resp;
}

absl::StatusOr<etcdserverpb::StatusResponse> EtcdClient::Status() {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  // A probe waits for the connection (up to its deadline) instead of failing fast. A blocking
  // client's channel makes progress only while a call polls it: after a refused first attempt
  // (the node was still starting) every fail-fast call returned the cached "connection refused"
  // at once and never drove the reconnection, so readiness polls saw a node that had long been
  // serving as refused for 20 s (under AddressSanitizer, where start-up is slow).
  ctx.set_wait_for_ready(true);
  etcdserverpb::StatusRequest req;
  etcdserverpb::StatusResponse resp;
  if (absl::Status s = FromGrpc(maintenance_->Status(&ctx, req, &resp)); !s.ok()) return s;
  return resp;
}

std::string EtcdClient::ChannelState() {
  switch (channel_->GetState(/*try_to_connect=*/false)) {
    case GRPC_CHANNEL_IDLE: return "IDLE";
    case GRPC_CHANNEL_CONNECTING: return "CONNECTING";
    case GRPC_CHANNEL_READY: return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "UNKNOWN";
}

bool EtcdClient::WaitForConnected(absl::Duration timeout) {
  return channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

TestCluster::TestCluster(int size, const std::string& name, const std::string& extra_toml)
    : extra_toml_(extra_toml), binary_(Runfile("server/amaters-server")) {
  nodes_.resize(static_cast<size_t>(size));
  std::vector<std::string> peers;
  for (int i = 0; i < size; ++i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    n.client_port = FreePort();
    n.peer_port = FreePort();
    n.admin_port = FreePort();
    n.dir = NewTempDir(absl::StrCat(name, "-node", i + 1));
    n.config_path = n.dir + "/amaters.toml";
    n.id = static_cast<uint64_t>(i + 1);
    peers.push_back(absl::StrCat("\"", i + 1, ":127.0.0.1:", n.peer_port, "\""));
  }
  for (int i = 0; i < size; ++i) {
    Node& n = nodes_[static_cast<size_t>(i)];
    WriteFile(n.config_path,
              TomlFor(n, static_cast<uint64_t>(i + 1),
                      size > 1 ? absl::StrCat("peers = [", absl::StrJoin(peers, ", "), "]\n")
                               : ""));
    clients_.push_back(std::make_unique<EtcdClient>(client_address(i)));
  }
}

std::string TestCluster::TomlFor(const Node& n, uint64_t id,
                                 const std::string& cluster_lines) const {
  return absl::StrCat(
      "[server]\nbind_address = \"127.0.0.1:", n.client_port, "\"\ndata_dir = \"", n.dir,
      "/data\"\n\n[cluster]\nnode_id = ", id, "\n", cluster_lines,
      "heartbeat_interval_ms = 50\nelection_timeout_ms = 500\n\n[metrics]\nbind_address = "
      "\"127.0.0.1:",
      n.admin_port, "\"\n\n", extra_toml_);
}

int TestCluster::ReservePeerPort() {
  reserved_peer_ports_.push_back(FreePort());
  return reserved_peer_ports_.back();
}

int TestCluster::AddJoiningNode(const std::string& name, uint64_t id,
                                const std::vector<int>& members) {
  const int index = size();
  nodes_.emplace_back();
  Node& n = nodes_.back();
  n.client_port = FreePort();
  if (!reserved_peer_ports_.empty()) {
    n.peer_port = reserved_peer_ports_.front();
    reserved_peer_ports_.erase(reserved_peer_ports_.begin());
  } else {
    n.peer_port = FreePort();
  }
  n.admin_port = FreePort();
  n.dir = NewTempDir(absl::StrCat(name, "-node", index + 1));
  n.config_path = n.dir + "/amaters.toml";
  n.id = id;
  std::vector<std::string> peers;
  for (int m : members) {
    peers.push_back(absl::StrCat("\"", node(m).id, ":127.0.0.1:", node(m).peer_port, "\""));
  }
  peers.push_back(absl::StrCat("\"", id, ":127.0.0.1:", n.peer_port, "\""));
  WriteFile(n.config_path,
            TomlFor(n, id,
                    absl::StrCat("peers = [", absl::StrJoin(peers, ", "),
                                 "]\ninitial_cluster_state = \"existing\"\n")));
  clients_.push_back(std::make_unique<EtcdClient>(client_address(index)));
  return index;
}

TestCluster::~TestCluster() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].process && nodes_[i].process->Running()) Kill(static_cast<int>(i));
  }
}

std::string TestCluster::client_address(int i) const {
  return absl::StrCat("127.0.0.1:", nodes_[static_cast<size_t>(i)].client_port);
}

std::string TestCluster::endpoints() const {
  std::vector<std::string> all;
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) all.push_back(client_address(i));
  return absl::StrJoin(all, ",");
}

absl::Status TestCluster::Start(int i, const std::vector<std::string>& extra_args) {
  Node& n = node(i);
  std::vector<std::string> argv = {binary_, "--config=" + n.config_path};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ++n.starts;
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Spawn(argv, n.dir, n.dir + "/server.log");
  if (!p.ok()) return p.status();
  n.process = *std::move(p);
  return absl::OkStatus();
}

absl::Status TestCluster::StartAll() {
  for (int i = 0; i < size(); ++i) {
    if (absl::Status s = Start(i); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::optional<int> TestCluster::Stop(int i, absl::Duration timeout) {
  Node& n = node(i);
  if (!n.process) return std::nullopt;
  n.process->Signal(SIGTERM);
  return n.process->Wait(timeout);
}

void TestCluster::Kill(int i) {
  Node& n = node(i);
  if (!n.process) return;
  n.process->Signal(SIGKILL);
  n.process->Wait(absl::Seconds(10));
}

bool TestCluster::Running(int i) { return node(i).process && node(i).process->Running(); }

absl::StatusOr<int> TestCluster::WaitForLeader(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    std::map<uint64_t, int> votes;
    int running = 0;
    for (int i = 0; i < size(); ++i) {
      if (!Running(i)) continue;
      ++running;
      absl::StatusOr<etcdserverpb::StatusResponse> s = client(i).Status();
      if (!s.ok()) {
        last = s.status().ToString();
        continue;
      }
      if (s->leader() != 0) ++votes[s->leader()];
    }
    if (votes.size() == 1 && votes.begin()->second == running) {
      for (int leader = 0; leader < size(); ++leader) {
        if (node(leader).id == votes.begin()->first && Running(leader)) return leader;
      }
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("no agreed leader; last error: ", last, "\n", Describe()));
}

absl::Status TestCluster::WaitReady(int i, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::UnavailableError("never asked");
  while (absl::Now() < deadline) {
    if (!Running(i)) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", i + 1, " exited; its log:\n", Log(i)));
    }
    absl::StatusOr<etcdserverpb::StatusResponse> s = client(i).Status();
    if (s.ok() && s->leader() != 0) return absl::OkStatus();
    last = s.ok() ? absl::UnavailableError("no leader yet") : s.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("node ", i + 1, " not ready: ", last.ToString(), "\n", Describe()));
}

EtcdClient& TestCluster::client(int i) { return *clients_[static_cast<size_t>(i)]; }

void TestCluster::ResetClient(int i) {
  clients_[static_cast<size_t>(i)] = std::make_unique<EtcdClient>(client_address(i));
}

bool TestCluster::ConnectClients(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  bool all = true;
  for (int i = 0; i < size(); ++i) {
    if (Running(i)) all = client(i).WaitForConnected(deadline - absl::Now()) && all;
  }
  return all;
}

std::string TestCluster::Describe() {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    absl::StrAppend(&out, "node ", i + 1, Running(i) ? " running" : " not running",
                    "; client channel ", client(i).ChannelState());
    absl::StatusOr<etcdserverpb::StatusResponse> s = client(i).Status();
    if (s.ok()) {
      absl::StrAppend(&out, "; status: leader ", s->leader(), " term ", s->raftterm(),
                      " index ", s->raftindex());
    } else {
      absl::StrAppend(&out, "; status: ", s.status().ToString());
    }
    absl::StrAppend(&out, "\n  client port ", node(i).client_port, ": ",
                    Listeners(node(i).client_port), "\n  peer port ", node(i).peer_port, ": ",
                    Listeners(node(i).peer_port), "\n  last log lines:\n");
    std::vector<std::string> lines = absl::StrSplit(Log(i), '\n', absl::SkipEmpty());
    const size_t from = lines.size() > 20 ? lines.size() - 20 : 0;
    for (size_t l = from; l < lines.size(); ++l) absl::StrAppend(&out, "    ", lines[l], "\n");
  }
  return out;
}

std::string TestCluster::Log(int i) const {
  return ReadFile(nodes_[static_cast<size_t>(i)].dir + "/server.log");
}

}  // namespace amaters::server::testing
