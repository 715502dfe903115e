// The cluster id file (round trip, torn and malformed contents refused), ResolveClusterId for
// "new" and "existing" nodes, and AskToJoin against an in-process Peer service.
#include "server/cluster_identity.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/peer.grpc.pb.h"

namespace amaters::server {
namespace {

std::string NewTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = absl::StrCat(base ? base : "/tmp", "/cluster-id-XXXXXX");
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return tmpl;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::trunc);
  out << contents;
}

Config ThreeNodes(const std::string& state) {
  Config c;
  c.cluster.node_id = 3;
  c.cluster.peers = {{1, "127.0.0.1", 1}, {2, "127.0.0.1", 2}, {3, "127.0.0.1", 3}};
  c.cluster.initial_cluster_state = state;
  return c;
}

TEST(ClusterIdFile, RoundTrip) {
  const std::string dir = NewTempDir();
  absl::StatusOr<std::optional<uint64_t>> none = ReadClusterId(dir);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(WriteClusterId(dir, 0xcfa1ef7f367e9ecaULL).ok());
  std::ifstream in(dir + "/cluster_id");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "cfa1ef7f367e9eca");
  absl::StatusOr<std::optional<uint64_t>> id = ReadClusterId(dir);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(**id, 0xcfa1ef7f367e9ecaULL);
  EXPECT_FALSE(std::filesystem::exists(dir + "/cluster_id.tmp"));
}

TEST(ClusterIdFile, TornAndMalformedContentsAreRefused) {
  const std::string dir = NewTempDir();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "torn write"},
      {"cfa1ef7f", "torn write"},
      {"cfa1ef7f367e9eca", "torn write"},  // the newline is written last
      {"cfa1ef7f\n", "is not a cluster id"},
      {"0000000000000000\n", "is not a cluster id"},
      {"zfa1ef7f367e9eca\n", "is not a cluster id"},
      {"cfa1ef7f367e9eca0\n", "is not a cluster id"},
  };
  for (const auto& [contents, message] : cases) {
    WriteFile(dir + "/cluster_id", contents);
    absl::StatusOr<std::optional<uint64_t>> id = ReadClusterId(dir);
    ASSERT_FALSE(id.ok()) << "\"" << contents << "\"";
    EXPECT_EQ(id.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(id.status().message(), message)) << id.status();
  }
}

TEST(ResolveClusterId, ANewNodeDerivesItsIdOnceAndKeepsIt) {
  const std::string dir = NewTempDir();
  Config c = ThreeNodes("new");
  std::vector<RuntimePeer> peers;
  absl::StatusOr<uint64_t> first = ResolveClusterId(c, dir, JoinOptions(), &peers);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, ClusterIdOf(c));
  // peers edited after membership changes, even the state: the stored id wins.
  c.cluster.peers.push_back({4, "127.0.0.1", 4});
  c.cluster.initial_cluster_state = "existing";
  absl::StatusOr<uint64_t> again = ResolveClusterId(c, dir, JoinOptions(), &peers);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
}

TEST(ResolveClusterId, ADataDirectoryThatIsAFileIsNamed) {
  const std::string file = NewTempDir() + "/a-file";
  WriteFile(file, "x");
  std::vector<RuntimePeer> peers;
  absl::StatusOr<uint64_t> id = ResolveClusterId(ThreeNodes("new"), file, JoinOptions(), &peers);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().message(), file + " exists and is not a directory");
}

// A member answering Join with a fixed configuration.
class FakePeer final : public peerpb::Peer::Service {
 public:
  explicit FakePeer(std::vector<uint64_t> members) : members_(std::move(members)) {}
  grpc::Status Join(grpc::ServerContext*, const peerpb::JoinRequest* request,
                    peerpb::JoinResponse* response) override {
    if (request->cluster_token() != "amaters") {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster_token differs");
    }
    response->set_cluster_id(0xabc);
    for (uint64_t id : members_) {
      peerpb::JoinResponse::Member* m = response->add_members();
      m->set_id(id);
      m->set_peer_address(absl::StrCat("127.0.0.1:", 100 + id));
    }
    return grpc::Status::OK;
  }

 private:
  const std::vector<uint64_t> members_;
};

struct Served {
  explicit Served(std::vector<uint64_t> members) : fake(std::move(members)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake);
    server = builder.BuildAndStart();
  }
  ~Served() { server->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
  FakePeer fake;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

JoinOptions Joining(uint64_t self) {
  JoinOptions o;
  o.cluster_token = "amaters";
  o.self = self;
  o.timeout_ms = 3000;
  return o;
}

TEST(AskToJoin, AMemberListingThisNodeGivesTheClusterAndTheOtherMembers) {
  Served member({1, 2, 7});
  absl::StatusOr<JoinAnswer> a = AskToJoin({{1, member.address()}}, Joining(7));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->cluster_id, 0xabcu);
  ASSERT_EQ(a->members.size(), 2u);
  EXPECT_EQ(a->members[1].id, 2u);
  EXPECT_EQ(a->members[1].address, "127.0.0.1:102");
}

TEST(AskToJoin, AMemberThatHasNotAppliedTheAddYetIsNotTheLastWord) {
  Served lagging({1, 2});
  Served current({1, 2, 7});
  absl::StatusOr<JoinAnswer> a =
      AskToJoin({{1, lagging.address()}, {2, current.address()}}, Joining(7));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->cluster_id, 0xabcu);
}

TEST(AskToJoin, ANodeNotAddedFirstIsRefused) {
  Served member({1, 2, 3});
  JoinOptions o = Joining(7);
  o.timeout_ms = 800;
  absl::StatusOr<JoinAnswer> a = AskToJoin({{1, member.address()}}, o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(a.status().message(), "node 7 is not a member")) << a.status();
}

TEST(AskToJoin, ADifferentTokenIsRefused) {
  Served member({1, 7});
  JoinOptions o = Joining(7);
  o.cluster_token = "other";
  absl::StatusOr<JoinAnswer> a = AskToJoin({{1, member.address()}}, o);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(AskToJoin, NobodyAnsweringNeverBootstrapsACluster) {
  std::string dead;
  {
    Served gone({1});
    dead = gone.address();
  }
  const std::string dir = NewTempDir();
  Config c = ThreeNodes("existing");
  std::vector<RuntimePeer> peers = {{1, dead}};
  JoinOptions o = Joining(3);
  o.timeout_ms = 800;
  absl::StatusOr<uint64_t> id = ResolveClusterId(c, dir, o, &peers);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(id.status().message(), "never bootstraps")) << id.status();
  EXPECT_FALSE(std::filesystem::exists(dir + "/cluster_id"));
}

}  // namespace
}  // namespace amaters::server
