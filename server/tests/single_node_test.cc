// End to end, one real amaters-server process: start on its defaults in a temp dir (only the
// ports are changed, so that tests can run side by side), put / get / del / range through the
// real amaters-ctl binary, SIGTERM, restart, and the data is still there.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
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

TEST_F(SingleNodeTest, CtlFailsWithOneLineWhenNothingListens) {
  CommandResult r = Ctl({"put", "k", "v"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace amaters::server::testing
