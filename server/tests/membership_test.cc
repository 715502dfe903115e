// End to end, the runbook's "replace the machine" (docs/runbooks.md RB-001) with real processes
// and Debian's etcdctl 3.4: three nodes under a steady client load; one is SIGKILLed and its
// data deleted; `etcdctl member add --learner` a fresh node on new ports, started with
// initial_cluster_state = "existing"; `etcdctl member promote` once it is caught up (refused
// while it is behind); `etcdctl member remove` the dead one. The cluster serves with the new
// three, every acknowledged write is on all of them, and after a restart of all three the
// configuration is the new one.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/ctl/ctl.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"
#include "server/testing/writer.h"

namespace amaters::server::testing {
namespace {

constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

std::string Logs(TestCluster& c) {
  std::string out;
  for (int i = 0; i < c.size(); ++i) {
    absl::StrAppend(&out, "---- node ", c.node(i).id, " log ----\n", c.Log(i));
  }
  return out;
}

CommandResult Etcdctl(TestCluster& c, int node, std::vector<std::string> args) {
  std::vector<std::string> argv = {kEtcdctl, "--endpoints=" + c.client_address(node),
                                   "--command-timeout=15s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, absl::Seconds(30), "", {{"ETCDCTL_API", "3"}});
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The ids of etcdctl's "1, started, node-1, http://..., http://..., false" lines, with
// " learner" after a learner's, sorted as strings.
std::vector<std::string> MemberIds(TestCluster& c, int node) {
  CommandResult r = Etcdctl(c, node, {"member", "list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> ids;
  for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ", ");
    if (f.size() == 6) ids.push_back(absl::StrCat(f[0], f[5] == "true" ? " learner" : ""));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// MemberIds once it equals `want`, or after 10 s: a member answers from the configuration it
// has applied, which may trail the leader's for a moment.
std::vector<std::string> EventuallyMemberIds(TestCluster& c, int node,
                                             const std::vector<std::string>& want) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::vector<std::string> ids = MemberIds(c, node);
  while (ids != want && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    ids = MemberIds(c, node);
  }
  return ids;
}

// `etcdctl member add NAME --learner` through `node`, peer URL on 127.0.0.1:peer_port.
CommandResult AddLearner(TestCluster& c, int node, const std::string& name, int peer_port) {
  return Etcdctl(c, node, {"member", "add", name, "--learner",
                           absl::StrCat("--peer-urls=http://127.0.0.1:", peer_port)});
}

// The id in "Member 1ba3bb97f5d7d2 added to cluster cfa1ef7f367e9eca"; 0 if there is none.
uint64_t AddedId(const CommandResult& add) {
  std::vector<std::string> words = absl::StrSplit(add.out, ' ', absl::SkipWhitespace());
  uint64_t id = 0;
  if (words.size() < 2 || !absl::SimpleHexAtoi(words[1], &id)) return 0;
  return id;
}

// `etcdctl member promote` through `node` every 200 ms until it succeeds or 60 s have passed;
// the last result. Every refusal before must be etcd's "not caught up yet".
CommandResult PromoteWhenCaughtUp(TestCluster& c, int node, uint64_t id) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  CommandResult promote;
  while (absl::Now() < deadline) {
    promote = Etcdctl(c, node, {"member", "promote", absl::StrCat(absl::Hex(id))});
    if (promote.exit_code == 0) break;
    EXPECT_TRUE(absl::StrContains(promote.err, "in sync with leader")) << promote.err;
    absl::SleepFor(absl::Milliseconds(200));
  }
  return promote;
}

TEST(MembershipTest, ADeadMachineIsReplacedWithEtcdctl) {
  ASSERT_EQ(access(kEtcdctl, X_OK), 0) << kEtcdctl << " is missing: run tools/setup";
  TestCluster cluster(3, "replace");
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  ASSERT_TRUE(cluster.WaitForLeader().ok()) << Logs(cluster);

  Writer writer(cluster.client_address(0), "load/");
  const absl::Time warmup = absl::Now() + absl::Seconds(20);
  while (writer.acked().size() < 50 && absl::Now() < warmup) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_GE(writer.acked().size(), 50u) << writer.errors() << Logs(cluster);

  // The machine of node 3 dies with its disk.
  const int dead = 2;
  cluster.Kill(dead);
  std::filesystem::remove_all(cluster.node(dead).dir + "/data");
  // The operator replaces a machine that is gone, not one that died a moment ago: the others
  // have elected a leader among themselves (a change forwarded to a dead leader times out).
  ASSERT_TRUE(cluster.WaitForLeader().ok()) << Logs(cluster);

  // Add its replacement as a learner on new ports.
  const int peer_port = cluster.ReservePeerPort();
  CommandResult add = AddLearner(cluster, 1, "replacement", peer_port);
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err << Logs(cluster);
  const uint64_t id = AddedId(add);
  ASSERT_NE(id, 0u) << add.out;
  EXPECT_TRUE(absl::StrContains(add.out, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"")) << add.out;
  const std::vector<std::string> with_learner =
      Sorted({"1", "2", absl::StrCat(absl::Hex(id), " learner"), "3"});
  EXPECT_EQ(EventuallyMemberIds(cluster, 0, with_learner), with_learner);

  const int fresh = cluster.AddJoiningNode("replace", id, {0, 1});
  ASSERT_EQ(cluster.node(fresh).peer_port, peer_port);
  ASSERT_TRUE(cluster.Start(fresh).ok());

  // Promote once it is caught up: etcd's refusal until then.
  CommandResult promote = PromoteWhenCaughtUp(cluster, 0, id);
  ASSERT_EQ(promote.exit_code, 0) << promote.err << Logs(cluster);

  CommandResult remove = Etcdctl(cluster, fresh, {"member", "remove", "3"});
  ASSERT_EQ(remove.exit_code, 0) << remove.out << remove.err << Logs(cluster);
  const std::vector<std::string> new_three = Sorted({"1", "2", absl::StrCat(absl::Hex(id))});
  for (int i : {0, 1, fresh}) {
    EXPECT_EQ(EventuallyMemberIds(cluster, i, new_three), new_three) << "node " << i;
  }
  // etcd's refusals.
  const std::string taken =
      absl::StrCat("--peer-urls=http://127.0.0.1:", cluster.node(0).peer_port);
  CommandResult dup_add = Etcdctl(cluster, 1, {"member", "add", "dup", taken});
  EXPECT_NE(dup_add.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(dup_add.err, "Peer URLs already exists")) << dup_add.err;
  CommandResult dup_update =
      Etcdctl(cluster, 1, {"member", "update", absl::StrCat(absl::Hex(id)), taken});
  EXPECT_NE(dup_update.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(dup_update.err, "Peer URLs already exists")) << dup_update.err;
  CommandResult voter = Etcdctl(cluster, 1, {"member", "promote", "1"});
  EXPECT_NE(voter.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(voter.err, "can only promote a learner member")) << voter.err;
  // An update is recorded (here to an address nothing listens on, then back: a name such as
  // localhost would go through the DNS resolver, whose library leaks under LeakSanitizer).
  const std::string hex_id = absl::StrCat(absl::Hex(id));
  const std::string moved = absl::StrCat("http://127.0.0.2:", peer_port);
  CommandResult update = Etcdctl(cluster, 1, {"member", "update", hex_id, "--peer-urls=" + moved});
  EXPECT_EQ(update.exit_code, 0) << update.err;
  EXPECT_TRUE(absl::StrContains(Etcdctl(cluster, 0, {"member", "list"}).out, moved));
  const std::string back = absl::StrCat("http://127.0.0.1:", peer_port);
  CommandResult restore = Etcdctl(cluster, 1, {"member", "update", hex_id, "--peer-urls=" + back});
  EXPECT_EQ(restore.exit_code, 0) << restore.err;

  // amaters-ctl prints what etcdctl prints.
  {
    std::ostringstream out, err;
    ASSERT_EQ(ctl::Main({"--endpoints=" + cluster.client_address(1), "member", "list"}, out, err),
              0) << err.str();
    EXPECT_EQ(out.str(), Etcdctl(cluster, 1, {"member", "list"}).out);
  }
  CommandResult again = Etcdctl(cluster, 0, {"member", "remove", "3"});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(again.err, "member not found")) << again.err;

  // The load goes on with the new three.
  const size_t acked_before = writer.acked().size();
  const absl::Time more = absl::Now() + absl::Seconds(30);
  while (writer.acked().size() < acked_before + 50 && absl::Now() < more) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  writer.Stop();
  const std::vector<std::string> acked = writer.acked();
  ASSERT_GE(acked.size(), acked_before + 50) << writer.errors() << Logs(cluster);
  std::cerr << "writer: " << writer.attempts() << " puts, " << acked.size() << " acknowledged\n";

  auto every_write_everywhere = [&](const char* when) {
    for (int i : {0, 1, fresh}) {
      absl::StatusOr<std::map<std::string, std::string>> kvs =
          KeysWithPrefix(cluster.client(i), "load/", /*serializable=*/false);
      ASSERT_TRUE(kvs.ok()) << when << ": node " << i << ": " << kvs.status();
      size_t missing = 0;
      for (const std::string& key : acked) missing += kvs->count(key) == 0;
      EXPECT_EQ(missing, 0u) << when << ": acknowledged writes missing on node " << i;
    }
  };
  every_write_everywhere("after the replacement");

  // A restart of all three keeps the new configuration.
  for (int i : {0, 1, fresh}) ASSERT_EQ(cluster.Stop(i), 0) << Logs(cluster);
  for (int i : {0, 1, fresh}) ASSERT_TRUE(cluster.Start(i).ok());
  for (int i : {0, 1, fresh}) cluster.ResetClient(i);
  cluster.ConnectClients();
  ASSERT_TRUE(cluster.WaitForLeader().ok()) << Logs(cluster);
  for (int i : {0, 1, fresh}) {
    EXPECT_EQ(EventuallyMemberIds(cluster, i, new_three), new_three) << "node " << i;
  }
  EXPECT_TRUE(cluster.client(fresh).Put("after-restart", "x").ok());
  every_write_everywhere("after a restart of all three");
  if (HasFailure()) std::cerr << Logs(cluster);
}

// docs/membership.md "Growing a single-node cluster": a single node with its own peers entry
// adds a learner that is not running yet (the leader keeps serving: a failed learner never
// counts against the voters), the learner joins, is promoted, and both serve.
TEST(MembershipTest, ASingleNodeGrowsToTwo) {
  ASSERT_EQ(access(kEtcdctl, X_OK), 0) << kEtcdctl << " is missing: run tools/setup";
  TestCluster cluster(1, "grow");
  {
    std::ifstream in(cluster.node(0).config_path);
    std::stringstream toml;
    toml << in.rdbuf();
    std::string text = toml.str();
    const std::string line = "node_id = 1\n";
    ASSERT_NE(text.find(line), std::string::npos) << text;
    text.replace(text.find(line), line.size(),
                 absl::StrCat(line, "peers = [\"1:127.0.0.1:", cluster.node(0).peer_port,
                              "\"]\n"));
    std::ofstream(cluster.node(0).config_path, std::ios::trunc) << text;
  }
  ASSERT_TRUE(cluster.StartAll().ok());
  cluster.ConnectClients();
  ASSERT_TRUE(cluster.WaitForLeader().ok()) << Logs(cluster);
  ASSERT_TRUE(cluster.client(0).Put("g/before", "1").ok());

  const int peer_port = cluster.ReservePeerPort();
  CommandResult add = AddLearner(cluster, 0, "second", peer_port);
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err << Logs(cluster);
  const uint64_t id = AddedId(add);
  ASSERT_NE(id, 0u) << add.out;

  // The learner is down for several failure timeouts: the single voter still commits.
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(cluster.Running(0)) << Logs(cluster);
  ASSERT_TRUE(cluster.client(0).Put("g/learner-down", "1").ok()) << Logs(cluster);

  const int second = cluster.AddJoiningNode("grow", id, {0});
  ASSERT_TRUE(cluster.Start(second).ok());
  CommandResult promote = PromoteWhenCaughtUp(cluster, 0, id);
  ASSERT_EQ(promote.exit_code, 0) << promote.err << Logs(cluster);
  const std::vector<std::string> both = Sorted({"1", absl::StrCat(absl::Hex(id))});
  for (int i : {0, second}) EXPECT_EQ(EventuallyMemberIds(cluster, i, both), both) << i;
  cluster.ConnectClients();
  EXPECT_TRUE(cluster.client(second).Put("g/after", "2").ok()) << Logs(cluster);
  for (int i : {0, second}) {
    absl::StatusOr<std::map<std::string, std::string>> kvs =
        KeysWithPrefix(cluster.client(i), "g/", /*serializable=*/false);
    ASSERT_TRUE(kvs.ok()) << kvs.status();
    EXPECT_EQ(kvs->size(), 3u) << "node " << i;
  }
  if (HasFailure()) std::cerr << Logs(cluster);
}

}  // namespace
}  // namespace amaters::server::testing
