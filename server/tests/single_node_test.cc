// End to end, one real amaters-server process: start on its defaults in a temp dir (only the
// ports are changed, so that tests can run side by side), put / get / del / range through the
// real amaters-ctl binary, SIGTERM, restart, and the data is still there.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"

namespace amaters::server::testing {
namespace {

class SingleNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = NewTempDir("single");
    client_ = absl::StrCat("127.0.0.1:", FreePort());
    admin_ = absl::StrCat("127.0.0.1:", FreePort());
  }

  // Starts the server in dir_ with no config file: data goes to dir_/data (./data).
  void Start() {
    absl::StatusOr<std::unique_ptr<Process>> p = Process::Spawn(
        {Runfile("server/amaters-server"), "--bind-address=" + client_,
         "--metrics-address=" + admin_},
        dir_, dir_ + "/server.log");
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = *std::move(p);
    EtcdClient client(client_);
    for (int i = 0; i < 200; ++i) {
      absl::StatusOr<etcdserverpb::StatusResponse> s = client.Status();
      if (s.ok() && s->leader() == 1) return;
      ASSERT_TRUE(server_->Running()) << server_->Log();
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "server did not become leader:\n" << server_->Log();
  }

  CommandResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {Runfile("server/ctl/amaters-ctl"), "--endpoints=" + client_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::string dir_, client_, admin_;
  std::unique_ptr<Process> server_;
};

TEST_F(SingleNodeTest, CtlCommandsSurviveARestart) {
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(ReadFile(dir_ + "/data/amaters-server.pid"), absl::StrCat(server_->pid(), "\n"));

  CommandResult r = Ctl({"put", "fruit/apple", "red"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "OK\n");
  ASSERT_EQ(Ctl({"put", "fruit/banana", "yellow"}).exit_code, 0);
  ASSERT_EQ(Ctl({"put", "fruit/cherry", "dark red"}).exit_code, 0);
  ASSERT_EQ(Ctl({"put", "veg/leek", "green"}).exit_code, 0);

  r = Ctl({"get", "fruit/apple"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "fruit/apple\nred\n");
  r = Ctl({"get", "--prefix", "fruit/"});
  EXPECT_EQ(r.out, "fruit/apple\nred\nfruit/banana\nyellow\nfruit/cherry\ndark red\n");
  r = Ctl({"range", "fruit/b", "fruit/d"});
  EXPECT_EQ(r.out, "fruit/banana\nyellow\nfruit/cherry\ndark red\n");
  r = Ctl({"del", "fruit/banana"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  r = Ctl({"get", "fruit/banana"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");  // a missing key prints nothing, as etcdctl does

  // Graceful shutdown: exit 0, pid file removed.
  server_->Signal(SIGTERM);
  std::optional<int> code = server_->Wait(absl::Seconds(20));
  ASSERT_TRUE(code.has_value()) << "no exit after SIGTERM:\n" << server_->Log();
  EXPECT_EQ(*code, 0) << server_->Log();
  EXPECT_EQ(ReadFile(dir_ + "/data/amaters-server.pid"), "");

  ASSERT_NO_FATAL_FAILURE(Start());
  r = Ctl({"get", "--prefix", "fruit/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "fruit/apple\nred\nfruit/cherry\ndark red\n");
  r = Ctl({"get", "veg/leek"});
  EXPECT_EQ(r.out, "veg/leek\ngreen\n");

  // `amaters-server stop` finds the server through its pid file (default: ./data).
  CommandResult stop = RunCommand({Runfile("server/amaters-server"), "stop"}, absl::Seconds(30),
                                  dir_);
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(server_->Wait(absl::Seconds(5)), 0);
}

// The admin gRPC service on the client port (proto/admin.proto).
TEST_F(SingleNodeTest, AdminServiceReportsStatusAlertsAndTransfersLeadership) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto stub = adminpb::Admin::NewStub(
      grpc::CreateChannel(client_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  adminpb::StatusResponse status;
  ASSERT_TRUE(stub->Status(&ctx, adminpb::StatusRequest(), &status).ok());
  EXPECT_EQ(status.node_id(), 1u);
  EXPECT_EQ(status.role(), "leader");
  EXPECT_EQ(status.leader_id(), 1u);
  EXPECT_EQ(status.num_nodes(), 1u);
  EXPECT_EQ(status.health(), "healthy");
  EXPECT_TRUE(status.ready());
  EXPECT_EQ(status.health_detail().count("disk_space"), 1u);
  EXPECT_GE(status.commit_index(), 1u);

  grpc::ClientContext ctx2;
  adminpb::AlertsResponse alerts;
  ASSERT_TRUE(stub->Alerts(&ctx2, adminpb::AlertsRequest(), &alerts).ok());
  EXPECT_EQ(alerts.alerts_size(), 0);

  grpc::ClientContext ctx3;
  adminpb::TransferLeadershipRequest to_self;
  to_self.set_target(1);
  adminpb::TransferLeadershipResponse moved;
  ASSERT_TRUE(stub->TransferLeadership(&ctx3, to_self, &moved).ok());
  EXPECT_EQ(moved.leader_id(), 1u);

  grpc::ClientContext ctx4;
  adminpb::TransferLeadershipRequest to_stranger;
  to_stranger.set_target(7);
  grpc::Status refused = stub->TransferLeadership(&ctx4, to_stranger, &moved);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << refused.error_message();
}

TEST_F(SingleNodeTest, CtlFailsWithOneLineWhenNothingListens) {
  CommandResult r = Ctl({"put", "k", "v"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace amaters::server::testing
