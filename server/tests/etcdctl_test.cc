// End to end with the real etcd v3 command-line client: etcdctl 3.4 (/usr/bin/etcdctl, Debian's
// etcd-client, installed by tools/setup) against a three-node amaters cluster. Every command
// goes to a chosen node (followers as well as the leader) and its output is compared with what
// etcdctl prints against etcd 3.4 itself: put / get (prefix, limit, value only, JSON, old
// revisions) / del / txn (compare-and-swap from stdin) / endpoint status / member list.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.pb.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"

namespace amaters::server::testing {
namespace {

constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

// etcdctl -w json of a RangeResponse (etcd's names: cluster_id, create_revision, base64 bytes).
etcdserverpb::RangeResponse ParseRange(const std::string& json) {
  etcdserverpb::RangeResponse r;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &r, options);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << json;
  return r;
}

class EtcdctlTest : public ::testing::Test {
 protected:
  // One cluster for the whole suite (each test uses its own keys): three nodes, a leader.
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(3, "etcdctl");
    if (absl::Status s = cluster_->StartAll(); !s.ok()) {
      setup_error_ = new std::string(s.ToString());
      return;
    }
    cluster_->ConnectClients();
    absl::StatusOr<int> leader = cluster_->WaitForLeader();
    if (!leader.ok()) {
      setup_error_ = new std::string(absl::StrCat(leader.status().ToString(), "\n", Logs()));
      return;
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    delete setup_error_;
    setup_error_ = nullptr;
  }

  void SetUp() override {
    // Not a skip: tools/setup installs etcdctl, so its absence is a broken environment.
    ASSERT_EQ(access(kEtcdctl, X_OK), 0)
        << kEtcdctl << " is missing or not executable: run tools/setup (it installs Debian's "
        << "etcd-client package, which provides etcdctl 3.4)";
    ASSERT_EQ(setup_error_, nullptr) << "cluster did not start: " << *setup_error_;
    absl::StatusOr<int> leader = cluster_->WaitForLeader();
    ASSERT_TRUE(leader.ok()) << leader.status() << "\n" << Logs();
    leader_ = *leader;
    follower_ = (leader_ + 1) % 3;
    other_follower_ = (leader_ + 2) % 3;
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

  static std::vector<std::string> BaseArgs(const std::string& endpoints) {
    return {kEtcdctl, "--endpoints=" + endpoints, "--command-timeout=10s", "--dial-timeout=5s"};
  }

  // etcdctl against node i only.
  CommandResult Ctl(int i, const std::vector<std::string>& args,
                    const std::optional<std::string>& input = std::nullopt) {
    return CtlAt(cluster_->client_address(i), args, input);
  }
  CommandResult CtlAt(const std::string& endpoints, const std::vector<std::string>& args,
                      const std::optional<std::string>& input = std::nullopt) {
    std::vector<std::string> argv = BaseArgs(endpoints);
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommandWithInput(argv, input, absl::Seconds(30), "", {{"ETCDCTL_API", "3"}});
  }

  // Runs a command that must succeed and returns its stdout.
  std::string Ok(int i, const std::vector<std::string>& args,
                 const std::optional<std::string>& input = std::nullopt) {
    CommandResult r = Ctl(i, args, input);
    EXPECT_EQ(r.exit_code, 0) << "etcdctl " << absl::StrJoin(args, " ") << " on node " << i + 1
                              << "\nstdout: " << r.out << "\nstderr: " << r.err;
    return r.out;
  }

  static TestCluster* cluster_;
  static std::string* setup_error_;
  int leader_ = 0, follower_ = 1, other_follower_ = 2;
};

TestCluster* EtcdctlTest::cluster_ = nullptr;
std::string* EtcdctlTest::setup_error_ = nullptr;

TEST_F(EtcdctlTest, PutThenGetOnEveryNode) {
  EXPECT_EQ(Ok(follower_, {"put", "k", "v"}), "OK\n");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "k"}), "k\nv\n") << "node " << i + 1;
    EXPECT_EQ(Ok(i, {"get", "k", "--print-value-only"}), "v\n") << "node " << i + 1;
  }
  // A value with spaces and a newline is printed as it is.
  EXPECT_EQ(Ok(leader_, {"put", "k2", "two words\nsecond line"}), "OK\n");
  EXPECT_EQ(Ok(other_follower_, {"get", "k2"}), "k2\ntwo words\nsecond line\n");
}

TEST_F(EtcdctlTest, WritesThroughOneNodeAreVisibleThroughEveryOther) {
  for (int writer = 0; writer < 3; ++writer) {
    for (int round = 0; round < 3; ++round) {
      const std::string key = absl::StrCat("vis/", writer);
      const std::string value = absl::StrCat("from-node-", writer + 1, "-round-", round);
      ASSERT_EQ(Ok(writer, {"put", key, value}), "OK\n");
      // A linearizable get (etcdctl's default consistency "l") right after the put, anywhere.
      for (int reader = 0; reader < 3; ++reader) {
        EXPECT_EQ(Ok(reader, {"get", key}), absl::StrCat(key, "\n", value, "\n"))
            << "written through node " << writer + 1 << ", read through node " << reader + 1;
      }
    }
  }
}

TEST_F(EtcdctlTest, GetPrefixIsSortedAndLimited) {
  // Written out of order, through different nodes.
  ASSERT_EQ(Ok(follower_, {"put", "fruit/cherry", "dark red"}), "OK\n");
  ASSERT_EQ(Ok(leader_, {"put", "fruit/apple", "red"}), "OK\n");
  ASSERT_EQ(Ok(other_follower_, {"put", "fruit/banana", "yellow"}), "OK\n");
  ASSERT_EQ(Ok(follower_, {"put", "fruits", "not under the prefix fruit/"}), "OK\n");
  ASSERT_EQ(Ok(leader_, {"put", "fruit", "not under the prefix fruit/ either"}), "OK\n");

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "--prefix", "fruit/"}),
              "fruit/apple\nred\nfruit/banana\nyellow\nfruit/cherry\ndark red\n")
        << "node " << i + 1;
  }
  EXPECT_EQ(Ok(follower_, {"get", "--prefix", "fruit/", "--limit=2"}),
            "fruit/apple\nred\nfruit/banana\nyellow\n");
  EXPECT_EQ(Ok(follower_, {"get", "--prefix", "fruit/", "--print-value-only"}),
            "red\nyellow\ndark red\n");
  EXPECT_EQ(Ok(other_follower_, {"get", "--prefix", "fruit/", "--keys-only"}),
            "fruit/apple\n\nfruit/banana\n\nfruit/cherry\n\n");
  // A range [key, range_end).
  EXPECT_EQ(Ok(leader_, {"get", "fruit/b", "fruit/d"}),
            "fruit/banana\nyellow\nfruit/cherry\ndark red\n");

  // The limited JSON answer says there is more, and counts everything in the range.
  const std::string json = Ok(follower_, {"get", "--prefix", "fruit/", "--limit=2", "-w", "json"});
  etcdserverpb::RangeResponse r = ParseRange(json);
  ASSERT_EQ(r.kvs_size(), 2) << json;
  EXPECT_EQ(r.kvs(0).key(), "fruit/apple");
  EXPECT_EQ(r.kvs(1).key(), "fruit/banana");
  EXPECT_TRUE(r.more()) << json;
  EXPECT_EQ(r.count(), 3) << json;
}

TEST_F(EtcdctlTest, JsonOutputTracksRevisionsAndVersions) {
  const std::string key = "rev/k";
  ASSERT_EQ(Ok(leader_, {"put", key, "v1"}), "OK\n");
  std::string json = Ok(follower_, {"get", key, "-w", "json"});
  etcdserverpb::RangeResponse r1 = ParseRange(json);
  // Key and value are base64 in etcdctl's JSON ("rev/k" -> "cmV2L2s=", "v1" -> "djE=").
  EXPECT_TRUE(absl::StrContains(json, absl::StrCat("\"key\":\"", absl::Base64Escape(key), "\"")))
      << json;
  EXPECT_TRUE(absl::StrContains(json, absl::StrCat("\"value\":\"", absl::Base64Escape("v1"), "\"")))
      << json;
  for (const char* field :
       {"\"cluster_id\":", "\"member_id\":", "\"revision\":", "\"raft_term\":"}) {
    EXPECT_TRUE(absl::StrContains(json, field)) << field << " missing in " << json;
  }
  EXPECT_NE(r1.header().cluster_id(), 0u);
  EXPECT_EQ(r1.header().member_id(), static_cast<uint64_t>(follower_ + 1)) << json;
  EXPECT_GE(r1.header().raft_term(), 1u);
  ASSERT_EQ(r1.kvs_size(), 1) << json;
  EXPECT_EQ(r1.count(), 1);
  EXPECT_EQ(r1.kvs(0).key(), key);
  EXPECT_EQ(r1.kvs(0).value(), "v1");
  EXPECT_EQ(r1.kvs(0).version(), 1);
  const int64_t created = r1.kvs(0).create_revision();
  // Nothing else writes while this test runs: the put made the store's current revision.
  EXPECT_EQ(r1.kvs(0).mod_revision(), created);
  EXPECT_EQ(r1.header().revision(), created);

  // Every node is the same cluster and answers with its own member id.
  for (int i = 0; i < 3; ++i) {
    etcdserverpb::RangeResponse r = ParseRange(Ok(i, {"get", key, "-w", "json"}));
    EXPECT_EQ(r.header().cluster_id(), r1.header().cluster_id()) << "node " << i + 1;
    EXPECT_EQ(r.header().member_id(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(r.header().revision(), created);
  }

  // Second put of the key: version 2, create_revision kept, mod_revision = the new revision.
  ASSERT_EQ(Ok(other_follower_, {"put", key, "v2"}), "OK\n");
  etcdserverpb::RangeResponse r2 = ParseRange(Ok(leader_, {"get", key, "-w", "json"}));
  ASSERT_EQ(r2.kvs_size(), 1);
  EXPECT_EQ(r2.kvs(0).value(), "v2");
  EXPECT_EQ(r2.kvs(0).version(), 2);
  EXPECT_EQ(r2.kvs(0).create_revision(), created);
  EXPECT_EQ(r2.kvs(0).mod_revision(), created + 1);
  EXPECT_EQ(r2.header().revision(), created + 1);

  // A put of another key moves the store's revision, not this key's mod_revision.
  ASSERT_EQ(Ok(follower_, {"put", "rev/other", "x"}), "OK\n");
  etcdserverpb::RangeResponse r3 = ParseRange(Ok(follower_, {"get", key, "-w", "json"}));
  ASSERT_EQ(r3.kvs_size(), 1);
  EXPECT_EQ(r3.kvs(0).version(), 2);
  EXPECT_EQ(r3.kvs(0).mod_revision(), created + 1);
  EXPECT_EQ(r3.header().revision(), created + 2);

  ASSERT_EQ(Ok(leader_, {"put", key, "v3"}), "OK\n");
  etcdserverpb::RangeResponse r4 = ParseRange(Ok(other_follower_, {"get", key, "-w", "json"}));
  ASSERT_EQ(r4.kvs_size(), 1);
  EXPECT_EQ(r4.kvs(0).value(), "v3");
  EXPECT_EQ(r4.kvs(0).version(), 3);
  EXPECT_EQ(r4.kvs(0).create_revision(), created);
  EXPECT_EQ(r4.kvs(0).mod_revision(), created + 3);
  EXPECT_EQ(r4.header().revision(), created + 3);

  // Deleted and written again: a new life, version 1 and a new create_revision.
  ASSERT_EQ(Ok(follower_, {"del", key}), "1\n");
  ASSERT_EQ(Ok(follower_, {"put", key, "v4"}), "OK\n");
  etcdserverpb::RangeResponse r5 = ParseRange(Ok(leader_, {"get", key, "-w", "json"}));
  ASSERT_EQ(r5.kvs_size(), 1);
  EXPECT_EQ(r5.kvs(0).version(), 1);
  EXPECT_EQ(r5.kvs(0).create_revision(), created + 5);
  EXPECT_EQ(r5.kvs(0).mod_revision(), created + 5);
  EXPECT_EQ(r5.header().revision(), created + 5);

  // A missing key in JSON: a header, no kvs, no count.
  etcdserverpb::RangeResponse missing =
      ParseRange(Ok(follower_, {"get", "rev/missing", "-w", "json"}));
  EXPECT_EQ(missing.kvs_size(), 0);
  EXPECT_EQ(missing.count(), 0);
  EXPECT_EQ(missing.header().revision(), created + 5);
}

TEST_F(EtcdctlTest, GetRevReadsThePastOnEveryMemberUntilCompaction) {
  ASSERT_EQ(Ok(leader_, {"put", "hist/k", "a"}), "OK\n");
  const int64_t first = ParseRange(Ok(leader_, {"get", "hist/k", "-w", "json"})).header().revision();
  ASSERT_EQ(Ok(follower_, {"put", "hist/k", "b"}), "OK\n");
  ASSERT_EQ(Ok(follower_, {"del", "hist/k"}), "1\n");
  const int64_t now = ParseRange(Ok(leader_, {"get", "hist/k", "-w", "json"})).header().revision();
  ASSERT_EQ(now, first + 2);

  // Every member serves the past from its own history (linearizable reads: after the leader's
  // commit, so the follower has applied both writes).
  for (int node : {leader_, follower_, other_follower_}) {
    EXPECT_EQ(Ok(node, {"get", "hist/k", absl::StrCat("--rev=", first)}), "hist/k\na\n") << node;
    EXPECT_EQ(Ok(node, {"get", "hist/k", absl::StrCat("--rev=", first + 1)}), "hist/k\nb\n");
    EXPECT_EQ(Ok(node, {"get", "hist/k", absl::StrCat("--rev=", now)}), "") << "deleted";
  }
  // A future revision is etcd's error.
  CommandResult r = Ctl(other_follower_, {"get", "hist/k", absl::StrCat("--rev=", now + 1000)});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_TRUE(absl::StrContains(r.err,
                                "Error: etcdserver: mvcc: required revision is a future "
                                "revision\n"))
      << r.err;

  // etcdctl compaction, sent to a follower (forwarded to the leader, replicated to all).
  EXPECT_EQ(Ok(follower_, {"compaction", absl::StrCat(first + 1), "--physical"}),
            absl::StrCat("compacted revision ", first + 1, "\n"));
  for (int node : {leader_, follower_, other_follower_}) {
    r = Ctl(node, {"get", "hist/k", absl::StrCat("--rev=", first)});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(absl::StrContains(
        r.err, "Error: etcdserver: mvcc: required revision has been compacted\n"))
        << node << ": " << r.err;
    EXPECT_EQ(Ok(node, {"get", "hist/k", absl::StrCat("--rev=", first + 1)}), "hist/k\nb\n");
  }
  // Compacting again to the same revision is etcd's compacted error.
  r = Ctl(leader_, {"compaction", absl::StrCat(first + 1)});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "required revision has been compacted")) << r.err;
}

TEST_F(EtcdctlTest, DeleteAndMissingKeys) {
  ASSERT_EQ(Ok(leader_, {"put", "del/k", "v"}), "OK\n");
  EXPECT_EQ(Ok(follower_, {"del", "del/k"}), "1\n");
  for (int i = 0; i < 3; ++i) {
    CommandResult r = Ctl(i, {"get", "del/k"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "") << "node " << i + 1;  // a missing key prints nothing
  }
  EXPECT_EQ(Ok(other_follower_, {"del", "del/k"}), "0\n");

  ASSERT_EQ(Ok(follower_, {"put", "del/p/1", "a"}), "OK\n");
  ASSERT_EQ(Ok(other_follower_, {"put", "del/p/2", "b"}), "OK\n");
  ASSERT_EQ(Ok(leader_, {"put", "del/p/3", "c"}), "OK\n");
  ASSERT_EQ(Ok(leader_, {"put", "del/q", "stays"}), "OK\n");
  EXPECT_EQ(Ok(other_follower_, {"del", "--prefix", "del/p/"}), "3\n");
  EXPECT_EQ(Ok(follower_, {"get", "--prefix", "del/"}), "del/q\nstays\n");
  EXPECT_EQ(Ok(follower_, {"del", "--prefix", "del/p/"}), "0\n");
  // --prev-kv prints the count and then the deleted pairs.
  EXPECT_EQ(Ok(leader_, {"del", "del/q", "--prev-kv"}), "1\ndel/q\nstays\n");
}

TEST_F(EtcdctlTest, TxnCompareAndSwapFromStdin) {
  ASSERT_EQ(Ok(leader_, {"put", "cas", "old"}), "OK\n");
  // etcdctl txn reads compares, success ops and failure ops from stdin, each block ended by an
  // empty line.
  const std::string swap = "value(\"cas\") = \"old\"\n\nput cas new\n\nput cas-failed yes\n\n";
  EXPECT_EQ(Ok(follower_, {"txn"}, swap), "SUCCESS\n\nOK\n");
  EXPECT_EQ(Ok(other_follower_, {"get", "cas"}), "cas\nnew\n");
  EXPECT_EQ(Ok(leader_, {"get", "cas-failed"}), "");

  // The same swap again: the compare fails now, the failure branch runs.
  EXPECT_EQ(Ok(other_follower_, {"txn"}, swap), "FAILURE\n\nOK\n");
  EXPECT_EQ(Ok(follower_, {"get", "cas"}), "cas\nnew\n");
  EXPECT_EQ(Ok(follower_, {"get", "cas-failed"}), "cas-failed\nyes\n");

  // A get in a branch prints its pairs; compares on versions and revisions work too.
  EXPECT_EQ(Ok(leader_, {"txn"}, "version(\"cas\") = \"2\"\nmod(\"cas\") > \"0\"\n\nget cas\n\n\n"),
            "SUCCESS\n\ncas\nnew\n");
  EXPECT_EQ(Ok(follower_, {"txn"}, "create(\"nope\") > \"0\"\n\n\ndel cas\n\n"), "FAILURE\n\n1\n");
  EXPECT_EQ(Ok(other_follower_, {"get", "cas"}), "");
}

TEST_F(EtcdctlTest, EndpointStatusShowsOneLeaderAndOneTerm) {
  CommandResult r = CtlAt(cluster_->endpoints(), {"endpoint", "status", "-w", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  google::protobuf::ListValue list;
  google::protobuf::util::JsonParseOptions options;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &list, options).ok()) << r.out;
  ASSERT_EQ(list.values_size(), 3) << r.out;
  std::set<double> members, leaders, terms;
  int is_leader = 0;
  for (const google::protobuf::Value& v : list.values()) {
    const auto& fields = v.struct_value().fields();
    ASSERT_TRUE(fields.count("Endpoint") && fields.count("Status")) << r.out;
    const auto& status = fields.at("Status").struct_value().fields();
    const auto& header = status.at("header").struct_value().fields();
    for (const char* f : {"cluster_id", "member_id", "revision", "raft_term"}) {
      EXPECT_TRUE(header.count(f)) << f << " missing in " << r.out;
    }
    const double member = header.at("member_id").number_value();
    members.insert(member);
    leaders.insert(status.at("leader").number_value());
    terms.insert(status.at("raftTerm").number_value());
    if (status.at("leader").number_value() == member) ++is_leader;
    EXPECT_EQ(status.at("version").string_value(), "0.1.0");
    EXPECT_EQ(status.count("errors"), 0u) << r.out;
    // The endpoint is the node with that member id.
    EXPECT_EQ(fields.at("Endpoint").string_value(),
              cluster_->client_address(static_cast<int>(member) - 1));
  }
  EXPECT_EQ(members, (std::set<double>{1, 2, 3})) << r.out;
  EXPECT_EQ(is_leader, 1) << r.out;
  EXPECT_EQ(leaders.size(), 1u) << r.out;
  EXPECT_EQ(terms.size(), 1u) << r.out;
  EXPECT_EQ(*leaders.begin(), leader_ + 1) << r.out;

  // The simple format: one line per endpoint, IS LEADER true on exactly one.
  r = CtlAt(cluster_->endpoints(), {"endpoint", "status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << r.out;
  int true_count = 0;
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> cols = absl::StrSplit(lines[static_cast<size_t>(i)], ", ");
    ASSERT_GE(cols.size(), 9u) << lines[static_cast<size_t>(i)];
    EXPECT_EQ(cols[0], cluster_->client_address(i));
    EXPECT_EQ(cols[1], absl::StrCat(i + 1));  // member id (hex, the same for 1..3)
    EXPECT_EQ(cols[2], "0.1.0");
    if (cols[4] == "true") ++true_count;
    EXPECT_EQ(cols[4], i == leader_ ? "true" : "false") << r.out;
    EXPECT_EQ(cols[5], "false");  // no learners
  }
  EXPECT_EQ(true_count, 1) << r.out;
}

TEST_F(EtcdctlTest, MemberListNamesEveryMemberWithItsUrls) {
  std::vector<std::string> expected;
  for (int i = 0; i < 3; ++i) {
    expected.push_back(absl::StrCat(i + 1, ", started, node-", i + 1,
                                    ", http://127.0.0.1:", cluster_->node(i).peer_port, ", http://",
                                    cluster_->client_address(i), ", false"));
  }
  // Members introduce themselves (client URLs) in their peer batches: a few hundred ms after
  // start every node knows every client URL.
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> lines;
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (true) {
      CommandResult r = Ctl(i, {"member", "list"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
      std::sort(lines.begin(), lines.end());
      if (lines == expected || absl::Now() > deadline) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_EQ(lines, expected) << "member list on node " << i + 1;
  }
  // The table format has a header and the same members.
  CommandResult r = Ctl(follower_, {"member", "list", "-w", "table"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "| ID | STATUS  |  NAME  |")) << r.out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(r.out, absl::StrCat("http://", cluster_->client_address(i))))
        << r.out;
  }
}

TEST_F(EtcdctlTest, DefragOnEveryMemberKeepsTheData) {
  EXPECT_EQ(Ok(leader_, {"put", "defrag-k", "v"}), "OK\n");
  EXPECT_EQ(Ok(leader_, {"del", "defrag-k"}), "1\n");
  EXPECT_EQ(Ok(leader_, {"put", "defrag-kept", "kept"}), "OK\n");
  std::vector<std::string> all;
  for (int i = 0; i < 3; ++i) all.push_back(cluster_->client_address(i));
  const std::string out = CtlAt(absl::StrJoin(all, ","), {"defrag"}).out;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(absl::StrContains(
        out, absl::StrCat("Finished defragmenting etcd member[", all[static_cast<size_t>(i)], "]")))
        << out;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "defrag-kept", "--print-value-only"}), "kept\n") << "node " << i + 1;
    EXPECT_EQ(Ok(i, {"get", "defrag-k"}), "") << "node " << i + 1;
  }
}

TEST_F(EtcdctlTest, EndpointHashKvIsTheSameOnEveryReplica) {
  EXPECT_EQ(Ok(leader_, {"put", "hashkv-k", "v1"}), "OK\n");
  std::vector<std::string> all;
  for (int i = 0; i < 3; ++i) all.push_back(cluster_->client_address(i));
  // "<endpoint>, <hash>" per member; followers apply the last put shortly after the leader.
  std::set<std::string> hashes;
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  std::string out;
  do {
    CommandResult r = CtlAt(absl::StrJoin(all, ","), {"endpoint", "hashkv"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    out = r.out;
    hashes.clear();
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      std::vector<std::string> f = absl::StrSplit(line, ", ");
      ASSERT_EQ(f.size(), 2u) << line;
      hashes.insert(f[1]);
    }
  } while (hashes.size() != 1 && absl::Now() < deadline);
  EXPECT_EQ(hashes.size(), 1u) << out;
  for (const std::string& a : all) EXPECT_TRUE(absl::StrContains(out, a + ", ")) << out;
  const std::string before = *hashes.begin();
  EXPECT_EQ(Ok(leader_, {"put", "hashkv-k", "v2"}), "OK\n");
  const std::string after = Ok(leader_, {"endpoint", "hashkv"});
  EXPECT_FALSE(absl::StrContains(after, ", " + before + "\n")) << "a write changes the hash";
  // An older revision is hashed from the history: the hash before the second put.
  const int64_t rev =
      ParseRange(Ok(leader_, {"get", "hashkv-k", "-w", "json"})).header().revision();
  const std::string old = Ok(leader_, {"endpoint", "hashkv", absl::StrCat("--rev=", rev - 1)});
  EXPECT_TRUE(absl::StrContains(old, ", " + before + "\n")) << old << " vs " << before;
}

TEST_F(EtcdctlTest, AlarmListIsEmptyOnAHealthyClusterAndDisarmIsANoop) {
  for (int node : {leader_, follower_, other_follower_}) {
    EXPECT_EQ(Ok(node, {"alarm", "list"}), "") << node;
    EXPECT_EQ(Ok(node, {"alarm", "disarm"}), "") << node;
  }
}

TEST_F(EtcdctlTest, WatchFromAPastRevisionWithPrefixAndPrevKvOnAFollower) {
  ASSERT_EQ(Ok(leader_, {"put", "w/a", "1"}), "OK\n");
  const int64_t from = ParseRange(Ok(leader_, {"get", "w/a", "-w", "json"})).header().revision();
  ASSERT_EQ(Ok(follower_, {"put", "w/b", "2"}), "OK\n");
  ASSERT_EQ(Ok(leader_, {"put", "w/a", "3"}), "OK\n");
  ASSERT_EQ(Ok(other_follower_, {"del", "w/b"}), "1\n");
  ASSERT_EQ(Ok(leader_, {"put", "other", "x"}), "OK\n");  // outside the prefix

  // The history, in revision order, served by a follower; etcdctl keeps watching until killed.
  std::vector<std::string> argv = {"/usr/bin/timeout", "3"};
  for (const std::string& a : BaseArgs(cluster_->client_address(follower_))) argv.push_back(a);
  for (const char* a : {"watch", "w/", "--prefix", "--prev-kv"}) argv.push_back(a);
  argv.push_back(absl::StrCat("--rev=", from));
  CommandResult r = RunCommandWithInput(argv, std::nullopt, absl::Seconds(30), "",
                                        {{"ETCDCTL_API", "3"}});
  EXPECT_EQ(r.out,
            "PUT\nw/a\n1\n"
            "PUT\nw/b\n2\n"
            "PUT\nw/a\n1\nw/a\n3\n"
            "DELETE\nw/b\n2\nw/b\n\n")
      << r.err;

  // Live events: a watcher on the other follower sees a put made through the leader.
  std::vector<std::string> live = BaseArgs(cluster_->client_address(other_follower_));
  for (const char* a : {"watch", "live/", "--prefix"}) live.push_back(a);
  const std::string log = NewTempDir("watch") + "/watch.log";
  absl::StatusOr<std::unique_ptr<Process>> watcher =
      Process::Spawn(live, "/", log, {{"ETCDCTL_API", "3"}});
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  absl::SleepFor(absl::Milliseconds(500));  // the watch is created before the put
  ASSERT_EQ(Ok(leader_, {"put", "live/x", "1"}), "OK\n");
  ASSERT_EQ(Ok(follower_, {"put", "live/x", "2"}), "OK\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while ((*watcher)->Log() != "PUT\nlive/x\n1\nPUT\nlive/x\n2\n" && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ((*watcher)->Log(), "PUT\nlive/x\n1\nPUT\nlive/x\n2\n");
  (*watcher)->Signal(SIGTERM);

  // A start revision that was compacted away: etcd's cancel.
  ASSERT_EQ(Ok(leader_, {"compaction", absl::StrCat(from + 2)}),
            absl::StrCat("compacted revision ", from + 2, "\n"));
  std::vector<std::string> old = {"/usr/bin/timeout", "5"};
  for (const std::string& a : BaseArgs(cluster_->client_address(leader_))) old.push_back(a);
  for (const char* a : {"watch", "w/", "--prefix"}) old.push_back(a);
  old.push_back(absl::StrCat("--rev=", from));
  r = RunCommandWithInput(old, std::nullopt, absl::Seconds(30), "", {{"ETCDCTL_API", "3"}});
  EXPECT_TRUE(absl::StrContains(r.out + r.err, "required revision has been compacted"))
      << r.out << r.err;
}

// The hex ID in etcdctl's "lease ID granted with TTL(Ns)".
std::string GrantedId(const std::string& out) {
  std::vector<std::string> words = absl::StrSplit(out, ' ');
  EXPECT_GE(words.size(), 3u) << out;
  EXPECT_EQ(words.size() >= 3 ? words[2] : "", "granted") << out;
  return words.size() >= 2 ? words[1] : "";
}

TEST_F(EtcdctlTest, LeaseGrantKeepAliveTimeToLiveAndRevokeThroughFollowers) {
  const std::string id = GrantedId(Ok(follower_, {"lease", "grant", "60"}));
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Ok(other_follower_, {"put", "lease/a", "1", "--lease=" + id}), "OK\n");
  EXPECT_EQ(Ok(leader_, {"put", "lease/b", "2", "--lease=" + id}), "OK\n");
  // Served by the leader's lessor, asked through a follower.
  const std::string ttl = Ok(follower_, {"lease", "timetolive", id, "--keys"});
  EXPECT_TRUE(absl::StartsWith(ttl, absl::StrCat("lease ", id, " granted with TTL(60s), remaining(")))
      << ttl;
  EXPECT_TRUE(absl::EndsWith(ttl, "s), attached keys([lease/a lease/b])\n")) << ttl;
  EXPECT_EQ(Ok(other_follower_, {"lease", "keep-alive", "--once", id}),
            absl::StrCat("lease ", id, " keepalived with TTL(60)\n"));
  EXPECT_TRUE(absl::StrContains(Ok(follower_, {"lease", "list"}), id));
  // A put on a lease that does not exist is etcd's error.
  CommandResult missing = Ctl(leader_, {"put", "lease/c", "3", "--lease=1234abcd"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(missing.err, "requested lease not found")) << missing.err;

  EXPECT_EQ(Ok(follower_, {"lease", "revoke", id}), absl::StrCat("lease ", id, " revoked\n"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "lease/", "--prefix"}), "") << "node " << i + 1;
  }
  EXPECT_EQ(Ok(leader_, {"lease", "timetolive", id}),
            absl::StrCat("lease ", id, " already expired\n"));
  CommandResult gone = Ctl(follower_, {"lease", "keep-alive", "--once", id});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(gone.err, "requested lease not found")) << gone.err;
}

TEST_F(EtcdctlTest, AnExpiredLeaseTakesItsKeysOnEveryMemberUnlessKeptAlive) {
  const std::string kept = GrantedId(Ok(leader_, {"lease", "grant", "2"}));
  const std::string left = GrantedId(Ok(leader_, {"lease", "grant", "2"}));
  ASSERT_EQ(Ok(follower_, {"put", "expire/kept", "1", "--lease=" + kept}), "OK\n");
  ASSERT_EQ(Ok(follower_, {"put", "expire/left", "1", "--lease=" + left}), "OK\n");
  // keep-alive renews every TTL/3 through a follower until killed.
  std::vector<std::string> argv = BaseArgs(cluster_->client_address(other_follower_));
  for (const std::string& a : {std::string("lease"), std::string("keep-alive"), kept}) {
    argv.push_back(a);
  }
  absl::StatusOr<std::unique_ptr<Process>> keeper =
      Process::Spawn(argv, "/", NewTempDir("keepalive") + "/keepalive.log", {{"ETCDCTL_API", "3"}});
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  std::string left_value = "x";
  while (!left_value.empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    left_value = Ok(other_follower_, {"get", "expire/left", "--print-value-only"});
  }
  EXPECT_EQ(left_value, "") << "the lease nobody kept alive expired";
  absl::SleepFor(absl::Seconds(3));  // longer than the TTL: only keep-alives hold it
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "expire/kept", "--print-value-only"}), "1\n") << "node " << i + 1;
  }
  (*keeper)->Signal(SIGKILL);
  std::string kept_value = "1\n";
  const absl::Time end = absl::Now() + absl::Seconds(15);
  while (!kept_value.empty() && absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(200));
    kept_value = Ok(follower_, {"get", "expire/kept", "--print-value-only"});
  }
  EXPECT_EQ(kept_value, "") << "expired once the keep-alives stopped";
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Ok(i, {"get", "expire/", "--prefix"}), "") << "node " << i + 1;
  }
  EXPECT_FALSE(absl::StrContains(Ok(leader_, {"lease", "list"}), kept));
}

TEST_F(EtcdctlTest, LockGivesMutualExclusionAndPassesOnWhenTheHolderDies) {
  // Two contenders each hold the lock for 0.5 s and log entering and leaving.
  const std::string dir = NewTempDir("lock");
  const std::string log = dir + "/order.log";
  std::vector<std::unique_ptr<Process>> contenders;
  for (const char* who : {"A", "B"}) {
    std::vector<std::string> argv = BaseArgs(cluster_->client_address(who[0] == 'A' ? follower_ : leader_));
    for (const std::string& a :
         {std::string("lock"), std::string("mutex"), std::string("--"), std::string("/bin/sh"),
          std::string("-c"),
          absl::StrCat("echo ", who, "-in >> ", log, "; sleep 0.5; echo ", who, "-out >> ", log)}) {
      argv.push_back(a);
    }
    absl::StatusOr<std::unique_ptr<Process>> p =
        Process::Spawn(argv, "/", absl::StrCat(dir, "/", who, ".out"), {{"ETCDCTL_API", "3"}});
    ASSERT_TRUE(p.ok()) << p.status();
    contenders.push_back(*std::move(p));
  }
  std::string order;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    order = ReadFile(log);
    if (std::count(order.begin(), order.end(), '\n') == 4) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(order == "A-in\nA-out\nB-in\nB-out\n" || order == "B-in\nB-out\nA-in\nA-out\n")
      << "order: " << order << "\nA: " << contenders[0]->Log() << "\nB: " << contenders[1]->Log();

  // A holder killed with SIGKILL never unlocks: the next contender gets the lock once the
  // holder's session lease (--ttl=2) expires on the leader.
  std::vector<std::string> holder = BaseArgs(cluster_->client_address(follower_));
  for (const char* a : {"lock", "--ttl=2", "dead"}) holder.push_back(a);
  absl::StatusOr<std::unique_ptr<Process>> h =
      Process::Spawn(holder, "/", dir + "/holder.out", {{"ETCDCTL_API", "3"}});
  ASSERT_TRUE(h.ok()) << h.status();
  const absl::Time held_by = absl::Now() + absl::Seconds(10);
  while (!absl::StartsWith((*h)->Log(), "dead/") && absl::Now() < held_by) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(absl::StartsWith((*h)->Log(), "dead/")) << (*h)->Log();
  (*h)->Signal(SIGKILL);
  const absl::Time killed = absl::Now();
  std::vector<std::string> next = {"/usr/bin/timeout", "20"};
  for (const std::string& a : BaseArgs(cluster_->client_address(other_follower_))) next.push_back(a);
  for (const char* a : {"lock", "dead", "/bin/echo", "acquired"}) next.push_back(a);
  CommandResult r = RunCommandWithInput(next, std::nullopt, absl::Seconds(30), "",
                                        {{"ETCDCTL_API", "3"}});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "acquired\n") << r.err;
  EXPECT_GE(absl::Now() - killed, absl::Seconds(1)) << "not before the lease could expire";
}

TEST_F(EtcdctlTest, ElectHasOneLeaderAndFailsOverWhenItResigns) {
  const std::string dir = NewTempDir("elect");
  auto campaign = [&](int node, const char* proposal) {
    std::vector<std::string> argv = BaseArgs(cluster_->client_address(node));
    for (const char* a : {"elect", "election", proposal}) argv.push_back(a);
    absl::StatusOr<std::unique_ptr<Process>> p =
        Process::Spawn(argv, "/", absl::StrCat(dir, "/", proposal, ".out"), {{"ETCDCTL_API", "3"}});
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *std::move(p) : nullptr;
  };
  std::unique_ptr<Process> one = campaign(follower_, "p1");
  ASSERT_NE(one, nullptr);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::EndsWith(one->Log(), "\np1\n") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(absl::EndsWith(one->Log(), "\np1\n")) << one->Log();
  std::unique_ptr<Process> two = campaign(other_follower_, "p2");
  ASSERT_NE(two, nullptr);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(two->Log(), "") << "a second leader while the first holds";
  // Observers see the one leader.
  std::vector<std::string> observe = {"/usr/bin/timeout", "2"};
  for (const std::string& a : BaseArgs(cluster_->client_address(leader_))) observe.push_back(a);
  for (const char* a : {"elect", "-l", "election"}) observe.push_back(a);
  CommandResult seen = RunCommandWithInput(observe, std::nullopt, absl::Seconds(10), "",
                                           {{"ETCDCTL_API", "3"}});
  EXPECT_TRUE(absl::EndsWith(seen.out, "\np1\n")) << seen.out << seen.err;
  // The leader stops (etcdctl resigns on SIGTERM): the other candidate takes over.
  one->Signal(SIGTERM);
  const absl::Time over = absl::Now() + absl::Seconds(10);
  while (!absl::EndsWith(two->Log(), "\np2\n") && absl::Now() < over) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(absl::EndsWith(two->Log(), "\np2\n")) << two->Log();
  two->Signal(SIGTERM);
}

}  // namespace
}  // namespace amaters::server::testing
