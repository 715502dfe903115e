// End to end, bad input of every kind against real amaters-server processes: broken
// configuration files, occupied ports, unusable data directories, a second server on one data
// directory, garbage bytes on the client and peer ports, oversized and empty requests, and peer
// streams from another cluster or an unknown member. Each gives a clear error; a running server
// stays up and keeps its data.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/peer.grpc.pb.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"

namespace amaters::server::testing {
namespace {

// A server that must refuse to start does so at once; 15 s only bounds a server that wrongly
// starts serving (RunCommand then kills it and reports -1).
constexpr absl::Duration kRefuseTimeout = absl::Seconds(15);

std::string Server() { return Runfile("server/amaters-server"); }
std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

std::string Describe(const CommandResult& r) {
  return absl::StrCat("exit ", r.exit_code, "\nstdout: ", r.out, "\nstderr: ", r.err);
}

// A socket listening on 127.0.0.1:port (closed by the destructor).
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 4) != 0) {
      ADD_FAILURE() << "cannot listen: " << std::strerror(errno);
      return;
    }
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Connects to 127.0.0.1:port, writes `bytes`, reads whatever comes back for up to `read_for`,
// closes. Returns what was read ("" when nothing came or the connection failed).
std::string RawExchange(int port, const std::string& bytes,
                        absl::Duration read_for = absl::Milliseconds(200)) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    (void)send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    const absl::Time deadline = absl::Now() + read_for;
    char buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      const int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
      if (poll(&p, 1, ms > 0 ? ms : 0) <= 0) break;
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return got;
}

std::string RandomBytes(std::mt19937* rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Configuration

struct BadConfig {
  const char* name;
  const char* toml;
  const char* must_name;  // in stderr
};

TEST(BadConfigTest, StartAndValidateConfigRejectWithTheKeyNamed) {
  const std::string dir = NewTempDir("badconfig");
  const BadConfig cases[] = {
      {"unknown_key", "[server]\nbogus_key = 1\n", "unknown key [server] bogus_key"},
      {"unknown_section", "[servre]\ndata_dir = \"x\"\n", "unknown section [servre]"},
      {"wrong_type", "[server]\nmax_key_bytes = \"big\"\n",
       "[server] max_key_bytes: expected an integer, got string"},
      {"bad_sync_mode", "[storage.wal]\nsync_mode = \"sometimes\"\n",
       "sync_mode = \"sometimes\": must be one of always, interval, none"},
      {"not_toml", "[server\nbind_address = \n", "config file"},
  };
  for (const BadConfig& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = absl::StrCat(dir, "/", c.name, ".toml");
    // data_dir and ports such that a wrongly accepted file would not disturb anything.
    WriteFile(path, c.toml);
    const std::vector<std::string> flags = {
        "--config=" + path, "--data-dir=" + dir + "/data-" + c.name,
        "--bind-address=" + Local(FreePort()), "--metrics-address=" + Local(FreePort())};

    std::vector<std::string> start = {Server()};
    start.insert(start.end(), flags.begin(), flags.end());
    CommandResult r = RunCommand(start, kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_TRUE(absl::StrContains(r.err, "amaters-server: invalid configuration: ")) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, c.must_name)) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, path)) << r.err;  // names the file

    std::vector<std::string> validate = {Server(), "validate-config"};
    validate.insert(validate.end(), flags.begin(), flags.end());
    r = RunCommand(validate, kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_TRUE(absl::StrContains(r.err, c.must_name)) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST(BadConfigTest, GoodAndGeneratedConfigsAreValid) {
  const std::string dir = NewTempDir("goodconfig");
  const std::string good = dir + "/good.toml";
  WriteFile(good,
            "[server]\nbind_address = \"127.0.0.1:17878\"\ndata_dir = \"d\"\n\n"
            "[cluster]\nnode_id = 2\npeers = [\"1:127.0.0.1:17001\", \"2:127.0.0.1:17002\", "
            "\"3:127.0.0.1:17003\"]\n\n[storage.wal]\nsync_mode = \"interval\"\n");
  CommandResult r = RunCommand({Server(), "validate-config", "--config=" + good}, kRefuseTimeout);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, absl::StrCat("configuration is valid (", good, ")\n"));

  r = RunCommand({Server(), "--generate-config"}, kRefuseTimeout);
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  ASSERT_FALSE(r.out.empty());
  const std::string generated = dir + "/generated.toml";
  WriteFile(generated, r.out);
  r = RunCommand({Server(), "validate-config", "--config=" + generated}, kRefuseTimeout);
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_TRUE(absl::StartsWith(r.out, "configuration is valid")) << r.out;

  // An unknown flag or command is a usage error too (exit 2).
  r = RunCommand({Server(), "--no-such-flag"}, kRefuseTimeout);
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, "unknown flag --no-such-flag")) << r.err;
}

// ---------------------------------------------------------------------------------------------
// Ports and data directories

TEST(StartupTest, OccupiedPortsAreNamed) {
  const std::string dir = NewTempDir("ports");
  {
    Listener busy;
    CommandResult r =
        RunCommand({Server(), "--data-dir=" + dir + "/a", "--bind-address=" + Local(busy.port()),
                    "--metrics-address=" + Local(FreePort())},
                   kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_TRUE(
        absl::StrContains(r.err, absl::StrCat("client port: cannot listen on ", Local(busy.port()),
                                              ": Address already in use")))
        << r.err;
  }
  {
    Listener busy;
    CommandResult r =
        RunCommand({Server(), "--data-dir=" + dir + "/b", "--bind-address=" + Local(FreePort()),
                    "--metrics-address=" + Local(busy.port())},
                   kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_TRUE(
        absl::StrContains(r.err, absl::StrCat("admin HTTP: cannot listen on ", Local(busy.port()),
                                              ": Address already in use")))
        << r.err;
  }
  {
    Listener busy;
    CommandResult r =
        RunCommand({Server(), "--data-dir=" + dir + "/c", "--bind-address=" + Local(FreePort()),
                    "--metrics-address=" + Local(FreePort()), "--node-id=1",
                    absl::StrCat("--peers=1:127.0.0.1:", busy.port(), ",2:127.0.0.1:", FreePort(),
                                 ",3:127.0.0.1:", FreePort())},
                   kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_TRUE(
        absl::StrContains(r.err, absl::StrCat("peer port: cannot listen on ", Local(busy.port()),
                                              ": Address already in use")))
        << r.err;
  }
}

TEST(StartupTest, UnusableDataDirIsNamed) {
  const std::string dir = NewTempDir("datadir");
  // A data dir under a regular file cannot be created, not even by root.
  const std::string file = dir + "/a-file";
  WriteFile(file, "not a directory\n");
  const std::string under_file = file + "/data";
  CommandResult r =
      RunCommand({Server(), "--data-dir=" + under_file, "--bind-address=" + Local(FreePort()),
                  "--metrics-address=" + Local(FreePort())},
                 kRefuseTimeout, dir);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, under_file)) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "Not a directory")) << r.err;

  // The data dir is itself a regular file.
  r = RunCommand({Server(), "--data-dir=" + file, "--bind-address=" + Local(FreePort()),
                  "--metrics-address=" + Local(FreePort())},
                 kRefuseTimeout, dir);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, file + " exists and is not a directory")) << r.err;

  // A read-only directory (only meaningful when not root: root writes anyway).
  if (geteuid() != 0) {
    const std::string ro = dir + "/read-only";
    mkdir(ro.c_str(), 0500);
    r = RunCommand({Server(), "--data-dir=" + ro + "/data", "--bind-address=" + Local(FreePort()),
                    "--metrics-address=" + Local(FreePort())},
                   kRefuseTimeout, dir);
    EXPECT_EQ(r.exit_code, 1) << Describe(r);
    EXPECT_TRUE(absl::StrContains(r.err, ro + "/data")) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "Permission denied")) << r.err;
    chmod(ro.c_str(), 0700);
  }
}

TEST(StartupTest, SecondServerOnOneDataDirRefusesAndTheFirstKeepsServing) {
  TestCluster cluster(1, "samedir");
  ASSERT_TRUE(cluster.Start(0).ok());
  cluster.ConnectClients();
  ASSERT_TRUE(cluster.WaitReady(0).ok()) << cluster.Log(0);
  ASSERT_TRUE(cluster.client(0).Put("before", "1").ok());
  const std::string data_dir = cluster.node(0).dir + "/data";
  const std::string pid_file = data_dir + "/amaters-server.pid";
  const std::string pid_before = ReadFile(pid_file);
  ASSERT_EQ(pid_before, absl::StrCat(cluster.node(0).process->pid(), "\n"));

  // The same config file with other ports: the same data directory.
  CommandResult r =
      RunCommand({Server(), "--config=" + cluster.node(0).config_path,
                  "--bind-address=" + Local(FreePort()), "--metrics-address=" + Local(FreePort())},
                 kRefuseTimeout, cluster.node(0).dir);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  // Refused before it touches anything: the running server's pid file names a live process.
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("another amaters-server (pid ", cluster.node(0).process->pid(),
                          ") is running with pid file ", pid_file)))
      << r.err;

  // Without the pid file (removed by hand) the WAL's lock still refuses the second server.
  const std::string saved_pid = ReadFile(pid_file);
  ASSERT_EQ(unlink(pid_file.c_str()), 0);
  r = RunCommand({Server(), "--config=" + cluster.node(0).config_path,
                  "--bind-address=" + Local(FreePort()), "--metrics-address=" + Local(FreePort())},
                 kRefuseTimeout, cluster.node(0).dir);
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_TRUE(absl::StrContains(r.err, absl::StrCat("WAL directory ", data_dir,
                                                    "/wal is in use "
                                                    "by another process")))
      << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "LOCK")) << r.err;
  WriteFile(pid_file, saved_pid);

  // The first is untouched: running, its pid file, its data, new writes.
  EXPECT_TRUE(cluster.Running(0)) << cluster.Log(0);
  EXPECT_EQ(ReadFile(pid_file), pid_before);
  absl::StatusOr<std::optional<std::string>> v = cluster.client(0).Get("before");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::optional<std::string>("1"));
  ASSERT_TRUE(cluster.client(0).Put("after", "2").ok()) << cluster.Log(0);
  v = cluster.client(0).Get("after");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::optional<std::string>("2"));
  EXPECT_TRUE(cluster.Running(0)) << cluster.Log(0);
}

// ---------------------------------------------------------------------------------------------
// A running three-node cluster under bad traffic

class RunningClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(3, "badtraffic");
    if (absl::Status s = cluster_->StartAll(); !s.ok()) {
      setup_error_ = new std::string(s.ToString());
      return;
    }
    cluster_->ConnectClients();
    if (absl::StatusOr<int> leader = cluster_->WaitForLeader(); !leader.ok()) {
      setup_error_ = new std::string(leader.status().ToString());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(setup_error_, nullptr) << "cluster did not start: " << *setup_error_ << "\n"
                                     << Logs();
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << Logs();
  }

  static std::string Logs() {
    std::string out;
    for (int i = 0; i < cluster_->size(); ++i) {
      absl::StrAppend(&out, "---- node ", i + 1, " log ----\n", cluster_->Log(i));
    }
    return out;
  }

  // Every node is up, there is a leader, and a put through every node is read back through
  // every node.
  void ExpectServing(const std::string& tag) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(cluster_->Running(i)) << "node " << i + 1 << " died\n" << Logs();
    }
    absl::StatusOr<int> leader = cluster_->WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status() << "\n" << Logs();
    for (int i = 0; i < 3; ++i) {
      const std::string key = absl::StrCat(tag, "/", i + 1);
      absl::Status s = cluster_->client(i).Put(key, tag);
      ASSERT_TRUE(s.ok()) << "put through node " << i + 1 << ": " << s << "\n" << Logs();
      for (int j = 0; j < 3; ++j) {
        absl::StatusOr<std::optional<std::string>> v = cluster_->client(j).Get(key);
        ASSERT_TRUE(v.ok()) << v.status();
        EXPECT_EQ(*v, std::optional<std::string>(tag)) << key << " through node " << j + 1;
      }
    }
  }

  // The cluster id every node uses (Maintenance.Status header).
  uint64_t ClusterId() {
    absl::StatusOr<etcdserverpb::StatusResponse> s = cluster_->client(0).Status();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->header().cluster_id() : 0;
  }

  static TestCluster* cluster_;
  static std::string* setup_error_;
};

TestCluster* RunningClusterTest::cluster_ = nullptr;
std::string* RunningClusterTest::setup_error_ = nullptr;

TEST_F(RunningClusterTest, GarbageBytesOnTheClientAndPeerPorts) {
  ASSERT_NO_FATAL_FAILURE(ExpectServing("garbage-before"));
  std::mt19937 rng(20240611);
  for (int i = 0; i < 3; ++i) {
    const TestCluster::Node& n = cluster_->node(i);
    for (int round = 0; round < 5; ++round) {
      const size_t size = 1 + rng() % 8192;
      RawExchange(n.client_port, RandomBytes(&rng, size), absl::Milliseconds(20));
      RawExchange(n.peer_port, RandomBytes(&rng, size), absl::Milliseconds(20));
    }
    // Starting like HTTP/2 (the client preface), then nonsense.
    RawExchange(n.client_port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + RandomBytes(&rng, 1000),
                absl::Milliseconds(20));
    RawExchange(n.peer_port, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + RandomBytes(&rng, 1000),
                absl::Milliseconds(20));
    // Connect and close without a byte.
    RawExchange(n.client_port, "", absl::ZeroDuration());
    RawExchange(n.peer_port, "", absl::ZeroDuration());
    // HTTP/1.1 to the gRPC ports: answered (or closed), never a crash.
    const std::string http =
        "GET /etcdserverpb.KV/Range HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    RawExchange(n.client_port, http);
    RawExchange(n.peer_port,
                "POST /amaters.peerpb.Peer/Stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Length: 5\r\n\r\nhello");
  }
  ASSERT_NO_FATAL_FAILURE(ExpectServing("garbage-after"));
  // Nothing written before is lost.
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      absl::StatusOr<std::optional<std::string>> v =
          cluster_->client(j).Get(absl::StrCat("garbage-before/", i + 1));
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_EQ(*v, std::optional<std::string>("garbage-before"));
    }
  }
}

TEST_F(RunningClusterTest, OversizedAndEmptyRequests) {
  absl::StatusOr<int> leader = cluster_->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int follower = (*leader + 1) % 3;
  for (int i : {*leader, follower}) {
    SCOPED_TRACE(absl::StrCat("node ", i + 1));
    EtcdClient& c = cluster_->client(i);
    // Defaults: max_key_bytes 4096, max_value_bytes 1 MiB, max_request_bytes 1.5 MiB, and the
    // gRPC receive limit max_request_bytes + 512 KiB.
    absl::Status s = c.Put(std::string(4097, 'k'), "v");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "max_key_bytes")) << s;
    EXPECT_TRUE(c.Put(std::string(4096, 'k'), "v").ok());  // exactly the limit is fine

    s = c.Put("big-value", std::string(1048577, 'v'));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "max_value_bytes")) << s;

    s = c.Put("bigger-value", std::string(1572864 + 1, 'v'));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(), "etcdserver: request is too large") << s;

    // Up to kMaxRequestBytesLimit (8 MiB) gRPC lets it through and the handler refuses it with
    // etcd's message (max_request_bytes reloads on SIGHUP, so gRPC's cap is the ceiling);
    // beyond, gRPC itself refuses the message.
    s = c.Put("huge-value", std::string(3 << 20, 'v'));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(), "etcdserver: request is too large") << s;
    s = c.Put("too-huge-value", std::string(9 << 20, 'v'));
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;

    s = c.Put("", "v");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(), "etcdserver: key is not provided") << s;
    absl::StatusOr<std::optional<std::string>> g = c.Get("");
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();
    EXPECT_EQ(g.status().message(), "etcdserver: key is not provided");

    // None of them was written.
    for (const char* key : {"big-value", "bigger-value", "huge-value"}) {
      absl::StatusOr<std::optional<std::string>> v = c.Get(key);
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_FALSE(v->has_value()) << key;
    }
  }
  ASSERT_NO_FATAL_FAILURE(ExpectServing("limits-after"));
}

TEST_F(RunningClusterTest, PeerStreamsFromStrangersAreRefused) {
  const uint64_t cluster_id = ClusterId();
  ASSERT_NE(cluster_id, 0u);
  absl::StatusOr<int> leader = cluster_->WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status();
  const int target = (*leader + 1) % 3;  // a follower: the one most easily disturbed
  const uint64_t target_id = static_cast<uint64_t>(target + 1);
  const uint64_t good_from = static_cast<uint64_t>((target + 1) % 3 + 1);  // another member
  auto channel = grpc::CreateChannel(Local(cluster_->node(target).peer_port),
                                     grpc::InsecureChannelCredentials());
  auto stub = amaters::peerpb::Peer::NewStub(channel);

  // Streams one batch and returns how the stream ended.
  auto stream = [&](const amaters::peerpb::Batch& batch) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    amaters::peerpb::StreamAck ack;
    std::unique_ptr<grpc::ClientWriter<amaters::peerpb::Batch>> writer = stub->Stream(&ctx, &ack);
    writer->Write(batch);  // may already fail if the server refused and closed
    writer->WritesDone();
    return writer->Finish();
  };

  struct Case {
    const char* name;
    uint64_t cluster_id;
    uint64_t from;
    grpc::StatusCode want;
    const char* message;
  };
  const Case cases[] = {
      {"wrong cluster id", cluster_id ^ 0x5a5a, good_from, grpc::StatusCode::FAILED_PRECONDITION,
       "cluster id mismatch"},
      {"zero cluster id", 0, good_from, grpc::StatusCode::FAILED_PRECONDITION,
       "cluster id mismatch"},
      {"unknown member", cluster_id, 42, grpc::StatusCode::PERMISSION_DENIED,
       "node 42 is not a member of this cluster"},
      {"the receiver itself", cluster_id, target_id, grpc::StatusCode::PERMISSION_DENIED,
       "is not a member of this cluster"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    amaters::peerpb::Batch batch;
    batch.set_cluster_id(c.cluster_id);
    batch.set_from(c.from);
    batch.set_client_address("127.0.0.1:1");  // must not be learned
    amaters::peerpb::Message* m = batch.add_messages();
    m->set_type(1);
    m->set_from(c.from);
    m->set_to(target_id);
    m->set_term(1000000);  // would depose the leader if it were delivered
    grpc::Status st = stream(batch);
    EXPECT_EQ(st.error_code(), c.want) << st.error_code() << ": " << st.error_message();
    EXPECT_TRUE(absl::StrContains(st.error_message(), c.message)) << st.error_message();

    // Forward from the same stranger: refused the same way, nothing executed.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    amaters::peerpb::ForwardRequest fwd;
    fwd.set_cluster_id(c.cluster_id);
    fwd.set_from(c.from);
    fwd.set_method(amaters::peerpb::ForwardRequest::PUT);
    etcdserverpb::PutRequest put;
    put.set_key(absl::StrCat("forwarded-by-stranger/", c.from));
    put.set_value("x");
    fwd.set_request(put.SerializeAsString());
    amaters::peerpb::ForwardResponse resp;
    st = stub->Forward(&ctx, fwd, &resp);
    EXPECT_EQ(st.error_code(), c.want) << st.error_message();
  }

  // A real member's id and cluster id, but a message claiming to come from someone else.
  {
    amaters::peerpb::Batch batch;
    batch.set_cluster_id(cluster_id);
    batch.set_from(good_from);
    amaters::peerpb::Message* m = batch.add_messages();
    m->set_type(1);
    m->set_from(42);
    m->set_to(target_id);
    m->set_term(1000000);
    grpc::Status st = stream(batch);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  }

  ASSERT_NO_FATAL_FAILURE(ExpectServing("strangers-after"));
  // No stranger's write happened, and the term was not pushed to a million.
  for (int i = 0; i < 3; ++i) {
    for (uint64_t from : {uint64_t{42}, target_id, good_from}) {
      absl::StatusOr<std::optional<std::string>> v =
          cluster_->client(i).Get(absl::StrCat("forwarded-by-stranger/", from));
      ASSERT_TRUE(v.ok()) << v.status();
      EXPECT_FALSE(v->has_value());
    }
    absl::StatusOr<etcdserverpb::StatusResponse> s = cluster_->client(i).Status();
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_LT(s->raftterm(), 1000000u);
  }
}

}  // namespace
}  // namespace amaters::server::testing
