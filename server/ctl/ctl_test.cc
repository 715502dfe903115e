// amaters-ctl without a network: the command line, the output formats, usage errors.
#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.pb.h"
#include "server/ctl/args.h"
#include "server/ctl/ctl.h"
#include "server/ctl/output.h"

namespace amaters::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Invocation Parse(const std::vector<std::string>& args) {
  absl::StatusOr<Invocation> inv = ParseArgs(args);
  EXPECT_TRUE(inv.ok()) << inv.status();
  return inv.ok() ? *inv : Invocation();
}

std::string ParseError(const std::vector<std::string>& args) {
  absl::StatusOr<Invocation> inv = ParseArgs(args);
  EXPECT_FALSE(inv.ok());
  if (inv.ok()) return "";
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(inv.status().message());
}

const std::string kFromKey(1, '\0');

// ---------------------------------------------------------------------------------------------
// Command line

TEST(ParseArgs, Defaults) {
  Invocation inv = Parse({"status"});
  EXPECT_EQ(inv.command, Command::kStatus);
  EXPECT_THAT(inv.options.endpoints, ElementsAre("127.0.0.1:7878"));
  EXPECT_FALSE(inv.options.json);
  EXPECT_EQ(inv.options.timeout, absl::Seconds(5));
  EXPECT_EQ(inv.options.dial_timeout, absl::Seconds(2));
  EXPECT_TRUE(inv.options.cacert.empty());
}

TEST(ParseArgs, PutGetDel) {
  Invocation put = Parse({"put", "k", "v"});
  EXPECT_EQ(put.command, Command::kPut);
  EXPECT_EQ(put.command_name, "put");
  EXPECT_EQ(put.key, "k");
  EXPECT_EQ(put.value, "v");

  Invocation get = Parse({"get", "k"});
  EXPECT_EQ(get.command, Command::kGet);
  EXPECT_EQ(get.key, "k");
  EXPECT_EQ(get.range_end, "");

  Invocation get_range = Parse({"get", "a", "c"});
  EXPECT_EQ(get_range.key, "a");
  EXPECT_EQ(get_range.range_end, "c");

  Invocation range = Parse({"range", "a", "c", "--limit=3", "--keys-only"});
  EXPECT_EQ(range.command, Command::kGet);
  EXPECT_EQ(range.command_name, "range");
  EXPECT_EQ(range.range_end, "c");
  EXPECT_EQ(range.limit, 3);
  EXPECT_TRUE(range.keys_only);

  Invocation del = Parse({"del", "k"});
  EXPECT_EQ(del.command, Command::kDel);
  EXPECT_EQ(del.key, "k");
  EXPECT_EQ(Parse({"delete", "k"}).command, Command::kDel);
}

TEST(ParseArgs, PrefixAndFromKeyAsEtcdctl) {
  Invocation p = Parse({"get", "--prefix", "foo"});
  EXPECT_EQ(p.key, "foo");
  EXPECT_EQ(p.range_end, "fop");

  Invocation all = Parse({"get", "--prefix", ""});
  EXPECT_EQ(all.key, kFromKey);
  EXPECT_EQ(all.range_end, kFromKey);

  Invocation ff = Parse({"del", "--prefix", std::string("a\xff", 2)});
  EXPECT_EQ(ff.range_end, "b");

  Invocation from = Parse({"get", "--from-key", "m"});
  EXPECT_EQ(from.key, "m");
  EXPECT_EQ(from.range_end, kFromKey);

  EXPECT_THAT(ParseError({"get", "--prefix", "--from-key", "a"}), HasSubstr("exclude"));
  EXPECT_THAT(ParseError({"get", "--prefix", "a", "b"}), HasSubstr("RANGE_END cannot be given"));
  EXPECT_THAT(ParseError({"range", "--prefix", "a", "b"}), HasSubstr("for get and del"));
}

TEST(ParseArgs, FlagsAnywhereAndBothSpellings) {
  Invocation inv = Parse({"get", "--endpoints", "a:1,b:2", "k", "--json", "--timeout=250ms",
                          "--dial-timeout", "1s"});
  EXPECT_THAT(inv.options.endpoints, ElementsAre("a:1", "b:2"));
  EXPECT_TRUE(inv.options.json);
  EXPECT_EQ(inv.options.timeout, absl::Milliseconds(250));
  EXPECT_EQ(inv.options.dial_timeout, absl::Seconds(1));
  EXPECT_EQ(inv.key, "k");

  EXPECT_TRUE(Parse({"-w", "json", "status"}).options.json);
  EXPECT_TRUE(Parse({"--write-out=json", "status"}).options.json);
  EXPECT_FALSE(Parse({"--json", "--write-out=simple", "status"}).options.json);
  EXPECT_FALSE(Parse({"--json=false", "status"}).options.json);
  EXPECT_EQ(Parse({"--command-timeout=7s", "status"}).options.timeout, absl::Seconds(7));
}

TEST(ParseArgs, EndpointsAcceptUrlsAndSpaces) {
  Invocation inv = Parse({"--endpoints= http://127.0.0.1:7878/ , 10.0.0.2:7878", "status"});
  EXPECT_THAT(inv.options.endpoints, ElementsAre("127.0.0.1:7878", "10.0.0.2:7878"));
  EXPECT_THAT(ParseError({"--endpoints=https://h:1", "status"}), HasSubstr("need --cacert"));
  Invocation tls = Parse({"--endpoints=https://h:1", "--cacert=ca.pem", "status"});
  EXPECT_THAT(tls.options.endpoints, ElementsAre("h:1"));
  EXPECT_THAT(ParseError({"--endpoints=h", "status"}), HasSubstr("not host:port"));
  EXPECT_THAT(ParseError({"--endpoints=a:1,,b:2", "status"}), HasSubstr("not host:port"));
}

TEST(ParseArgs, DoubleDashEndsFlags) {
  Invocation inv = Parse({"put", "--", "-k", "--v"});
  EXPECT_EQ(inv.key, "-k");
  EXPECT_EQ(inv.value, "--v");
  // A lone "-" is an argument.
  EXPECT_EQ(Parse({"put", "k", "-"}).value, "-");
}

TEST(ParseArgs, Tls) {
  Invocation inv = Parse({"--cacert=ca.pem", "--cert=c.pem", "--key=k.pem", "status"});
  EXPECT_EQ(inv.options.cacert, "ca.pem");
  EXPECT_EQ(inv.options.cert, "c.pem");
  EXPECT_EQ(inv.options.key, "k.pem");
  EXPECT_TRUE(Parse({"--cacert=ca.pem", "status"}).options.cert.empty());
  EXPECT_THAT(ParseError({"--cacert=ca.pem", "--cert=c.pem", "status"}), HasSubstr("go together"));
  EXPECT_THAT(ParseError({"--cert=c.pem", "--key=k.pem", "status"}), HasSubstr("need --cacert"));
}

TEST(ParseArgs, MemberCommandsAsEtcdctl) {
  EXPECT_EQ(Parse({"member", "list"}).command, Command::kMemberList);
  Invocation add = Parse({"member", "add", "n4", "--peer-urls=http://h:1, https://h:2",
                          "--learner"});
  EXPECT_EQ(add.command, Command::kMemberAdd);
  EXPECT_EQ(add.command_name, "member add");
  EXPECT_EQ(add.member_name, "n4");
  EXPECT_THAT(add.peer_urls, ElementsAre("http://h:1", "https://h:2"));
  EXPECT_TRUE(add.learner);
  EXPECT_FALSE(Parse({"member", "add", "n4", "--peer-urls", "http://h:1"}).learner);
  Invocation remove = Parse({"member", "remove", "1ba3bb97f5d7d2"});
  EXPECT_EQ(remove.command, Command::kMemberRemove);
  EXPECT_EQ(remove.member_id, 0x1ba3bb97f5d7d2u);
  Invocation update = Parse({"member", "update", "a", "--peer-urls=http://h:3"});
  EXPECT_EQ(update.command, Command::kMemberUpdate);
  EXPECT_EQ(update.member_id, 10u);
  EXPECT_THAT(update.peer_urls, ElementsAre("http://h:3"));
  EXPECT_EQ(Parse({"member", "promote", "2"}).command, Command::kMemberPromote);
}

TEST(ParseArgs, MemberUsageErrors) {
  EXPECT_THAT(ParseError({"member"}), HasSubstr("member: expected list, add"));
  EXPECT_THAT(ParseError({"member", "join"}), HasSubstr("unknown subcommand \"join\""));
  EXPECT_THAT(ParseError({"member", "list", "x"}), HasSubstr("member list: expected no"));
  EXPECT_THAT(ParseError({"member", "add", "n"}), HasSubstr("--peer-urls is required"));
  EXPECT_THAT(ParseError({"member", "add", "--peer-urls=http://h:1"}),
              HasSubstr("member add: expected NAME"));
  EXPECT_THAT(ParseError({"member", "add", "n", "--peer-urls="}),
              HasSubstr("--peer-urls needs at least one URL"));
  EXPECT_THAT(ParseError({"member", "remove", "xyz"}), HasSubstr("\"xyz\" is not a member id"));
  EXPECT_THAT(ParseError({"member", "remove", "0"}), HasSubstr("is not a member id"));
  EXPECT_THAT(ParseError({"member", "update", "2"}), HasSubstr("--peer-urls is required"));
  EXPECT_THAT(ParseError({"member", "promote", "2", "--learner"}), HasSubstr("--learner for"));
  EXPECT_THAT(ParseError({"member", "remove", "2", "--peer-urls=http://h:1"}),
              HasSubstr("--peer-urls is for member add and update"));
  EXPECT_THAT(ParseError({"member", "list", "--prefix"}), HasSubstr("are for get/range/del"));
  EXPECT_THAT(ParseError({"put", "k", "v", "--learner"}), HasSubstr("are for member commands"));
}

TEST(ParseArgs, Help) {
  EXPECT_EQ(Parse({"--help"}).command, Command::kHelp);
  EXPECT_EQ(Parse({"-h"}).command, Command::kHelp);
  EXPECT_EQ(Parse({"help"}).command, Command::kHelp);
  EXPECT_EQ(Parse({"put", "k", "v", "--help"}).command, Command::kHelp);
}

TEST(ParseArgs, UsageErrors) {
  EXPECT_THAT(ParseError({}), HasSubstr("no command"));
  EXPECT_THAT(ParseError({"frobnicate"}), HasSubstr("unknown command \"frobnicate\""));
  EXPECT_THAT(ParseError({"--bogus", "status"}), HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(ParseError({"-x", "status"}), HasSubstr("unknown flag -x"));
  EXPECT_THAT(ParseError({"-json", "status"}), HasSubstr("unknown flag -json"));
  EXPECT_THAT(ParseError({"put", "k"}), HasSubstr("put: expected KEY VALUE, got 1 argument"));
  EXPECT_THAT(ParseError({"put", "k", "v", "w"}), HasSubstr("got 3 arguments"));
  EXPECT_THAT(ParseError({"get"}), HasSubstr("get: expected KEY [RANGE_END]"));
  EXPECT_THAT(ParseError({"range", "a"}), HasSubstr("range: expected START END"));
  EXPECT_THAT(ParseError({"del", "a", "b", "c"}), HasSubstr("del: expected KEY [RANGE_END]"));
  EXPECT_THAT(ParseError({"status", "x"}), HasSubstr("status: expected no arguments"));
  EXPECT_THAT(ParseError({"put", "--prefix", "k", "v"}), HasSubstr("are for get/range/del"));
  EXPECT_THAT(ParseError({"del", "--limit=1", "k"}), HasSubstr("for get and range"));
  EXPECT_THAT(ParseError({"get", "k", "--limit=-1"}), HasSubstr("--limit takes a number"));
  EXPECT_THAT(ParseError({"get", "k", "--limit=x"}), HasSubstr("--limit takes a number"));
  EXPECT_THAT(ParseError({"--timeout=5", "status"}), HasSubstr("positive duration"));
  EXPECT_THAT(ParseError({"--timeout=0s", "status"}), HasSubstr("positive duration"));
  EXPECT_THAT(ParseError({"--timeout=-1s", "status"}), HasSubstr("positive duration"));
  EXPECT_THAT(ParseError({"--timeout=inf", "status"}), HasSubstr("positive duration"));
  EXPECT_THAT(ParseError({"status", "--endpoints"}), HasSubstr("--endpoints needs a value"));
  EXPECT_THAT(ParseError({"--json=maybe", "status"}), HasSubstr("true or false"));
  EXPECT_THAT(ParseError({"-w", "table", "status"}), HasSubstr("simple or json"));
}

// ---------------------------------------------------------------------------------------------
// Main: help and usage errors (exit codes, one line on stderr)

TEST(Main, HelpPrintsUsageAndSucceeds) {
  std::ostringstream out, err;
  EXPECT_EQ(Main({"--help"}, out, err), kExitOk);
  EXPECT_EQ(out.str(), Usage());
  EXPECT_EQ(err.str(), "");
  EXPECT_THAT(Usage(), HasSubstr("base64"));
  EXPECT_THAT(Usage(), HasSubstr("--endpoints"));
}

TEST(Main, UsageErrorIsOneLineAndExitCode2) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{}, {"nope"}, {"--nope", "status"}, {"put", "k"}}) {
    std::ostringstream out, err;
    EXPECT_EQ(Main(args, out, err), kExitUsage);
    EXPECT_EQ(out.str(), "");
    const std::string e = err.str();
    EXPECT_EQ(e.rfind("amaters-ctl: ", 0), 0u) << e;
    EXPECT_THAT(e, HasSubstr("(see amaters-ctl --help)"));
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
}

TEST(Main, UnreadableCaCertFailsWithOneLine) {
  std::ostringstream out, err;
  EXPECT_EQ(Main({"--cacert=/nonexistent/ca.pem", "get", "k"}, out, err), kExitFailure);
  EXPECT_EQ(err.str(),
            "amaters-ctl: get: cannot read --cacert /nonexistent/ca.pem: No such file or "
            "directory\n");
}

// ---------------------------------------------------------------------------------------------
// Output

TEST(Json, Strings) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f\0", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(JsonString("\x7f/é"), "\"\x7f/é\"");  // DEL and UTF-8 pass through
}

TEST(Json, BytesAreBase64) {
  EXPECT_EQ(JsonBytes(""), "\"\"");
  EXPECT_EQ(JsonBytes("foo"), "\"Zm9v\"");
  EXPECT_EQ(JsonBytes(std::string("\x00\xff\n", 3)), "\"AP8K\"");
}

TEST(HumanBytes, AsEtcdctl) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(9), "9 B");
  EXPECT_EQ(HumanBytes(10), "10 B");
  EXPECT_EQ(HumanBytes(999), "999 B");
  EXPECT_EQ(HumanBytes(1000), "1.0 kB");
  EXPECT_EQ(HumanBytes(1500), "1.5 kB");
  EXPECT_EQ(HumanBytes(20480), "20 kB");
  EXPECT_EQ(HumanBytes(3100000), "3.1 MB");
}

TEST(OneLine, ReplacesNewlines) {
  EXPECT_EQ(OneLine("a\nb\r\nc"), "a b  c");
}

etcdserverpb::ResponseHeader Header() {
  etcdserverpb::ResponseHeader h;
  h.set_cluster_id(1);
  h.set_member_id(2);
  h.set_revision(3);
  h.set_raft_term(4);
  return h;
}

constexpr char kHeaderJson[] = R"({"cluster_id":1,"member_id":2,"revision":3,"raft_term":4})";

TEST(Format, Put) {
  etcdserverpb::PutResponse r;
  *r.mutable_header() = Header();
  EXPECT_EQ(FormatPut(r, false), "OK\n");
  EXPECT_EQ(FormatPut(r, true), std::string("{\"header\":") + kHeaderJson + "}\n");
}

TEST(Format, GetPrintsKeyAndValueLines) {
  etcdserverpb::RangeResponse r;
  *r.mutable_header() = Header();
  EXPECT_EQ(FormatRange(r, false), "");  // a missing key prints nothing
  mvccpb::KeyValue* kv = r.add_kvs();
  kv->set_key("k1");
  kv->set_value("v1");
  kv->set_create_revision(2);
  kv->set_mod_revision(3);
  kv->set_version(1);
  kv = r.add_kvs();
  kv->set_key("k2");
  kv->set_value(std::string("\0\xff", 2));
  r.set_count(5);
  r.set_more(true);
  EXPECT_EQ(FormatRange(r, false), std::string("k1\nv1\nk2\n\0\xff\n", 12));
  EXPECT_EQ(FormatRange(r, true),
            std::string("{\"header\":") + kHeaderJson +
                R"(,"kvs":[{"key":"azE=","create_revision":2,"mod_revision":3,"version":1,)"
                R"("value":"djE=","lease":0},{"key":"azI=","create_revision":0,)"
                R"("mod_revision":0,"version":0,"value":"AP8=","lease":0}],"more":true,)"
                R"("count":5})"
                "\n");
}

TEST(Format, Delete) {
  etcdserverpb::DeleteRangeResponse r;
  *r.mutable_header() = Header();
  r.set_deleted(2);
  EXPECT_EQ(FormatDelete(r, false), "2\n");
  EXPECT_EQ(FormatDelete(r, true),
            std::string("{\"header\":") + kHeaderJson + ",\"deleted\":2,\"prev_kvs\":[]}\n");
}

etcdserverpb::Member MakeMember(uint64_t id, const std::string& name, const std::string& peer,
                                const std::string& client, bool learner) {
  etcdserverpb::Member m;
  m.set_id(id);
  m.set_name(name);
  m.add_peerurls(peer);
  if (!client.empty()) m.add_clienturls(client);
  m.set_islearner(learner);
  return m;
}

TEST(Format, MemberListAsEtcdctl) {
  etcdserverpb::MemberListResponse r;
  *r.mutable_header() = Header();
  *r.add_members() = MakeMember(1, "node-1", "http://10.0.0.11:7879", "http://10.0.0.11:7878",
                                false);
  *r.add_members() = MakeMember(0x1ba3bb97f5d7d2, "", "http://10.0.0.14:7879", "", true);
  EXPECT_EQ(FormatMemberList(r, false),
            "1, started, node-1, http://10.0.0.11:7879, http://10.0.0.11:7878, false\n"
            "1ba3bb97f5d7d2, unstarted, , http://10.0.0.14:7879, , true\n");
  EXPECT_EQ(FormatMemberList(r, true),
            std::string("{\"header\":") + kHeaderJson +
                R"(,"members":[{"ID":1,"name":"node-1","peerURLs":["http://10.0.0.11:7879"],)"
                R"("clientURLs":["http://10.0.0.11:7878"],"isLearner":false},)"
                R"({"ID":7779850474870738,"name":"","peerURLs":["http://10.0.0.14:7879"],)"
                R"("clientURLs":[],"isLearner":true}]})"
                "\n");
}

TEST(Format, MemberAddPrintsTheNewNodesSettings) {
  etcdserverpb::MemberAddResponse r;
  *r.mutable_header() = Header();
  *r.mutable_member() = MakeMember(0x1ba3bb97f5d7d2, "", "https://10.0.0.14:7879/", "", true);
  *r.add_members() = MakeMember(1, "node-1", "https://10.0.0.11:7879", "", false);
  *r.add_members() = r.member();
  EXPECT_EQ(FormatMemberAdded(r, false),
            "Member 1ba3bb97f5d7d2 added to cluster 1\n\n"
            "# The new node's [cluster] settings (node_id is the member id in decimal):\n"
            "[cluster]\nnode_id = 7779850474870738\ninitial_cluster_state = \"existing\"\n"
            "peers = [\"1:10.0.0.11:7879\", \"7779850474870738:10.0.0.14:7879\"]\n");
  EXPECT_THAT(FormatMemberAdded(r, true), HasSubstr(R"("member":{"ID":7779850474870738,)"));
}

TEST(Format, MemberChanged) {
  etcdserverpb::MemberRemoveResponse r;
  *r.mutable_header() = Header();
  EXPECT_EQ(FormatMemberChanged("removed from", 0x2a, r.header(), r.members(), false),
            "Member 2a removed from cluster 1\n");
  EXPECT_EQ(FormatMemberChanged("removed from", 0x2a, r.header(), r.members(), true),
            std::string("{\"header\":") + kHeaderJson + ",\"members\":[]}\n");
}

TEST(Format, Status) {
  std::vector<EndpointStatus> s(2);
  s[0].endpoint = "127.0.0.1:7878";
  *s[0].status.mutable_header() = Header();
  s[0].status.mutable_header()->set_member_id(0x8e9e05c52164694dULL);
  s[0].status.set_leader(0x8e9e05c52164694dULL);
  s[0].status.set_raftterm(2);
  s[0].status.set_raftindex(10);
  s[0].status.set_dbsize(20480);
  s[0].status.set_version("3.4.0");
  s[1].endpoint = "127.0.0.1:7879";
  s[1].status.mutable_header()->set_member_id(0x2a);
  s[1].status.set_leader(0x8e9e05c52164694dULL);
  s[1].status.add_errors("a \"b\"");
  EXPECT_EQ(FormatStatus(s, false),
            "127.0.0.1:7878, 8e9e05c52164694d, 8e9e05c52164694d, 2, 10, 20 kB, true\n"
            "127.0.0.1:7879, 2a, 8e9e05c52164694d, 0, 0, 0 B, false\n");
  EXPECT_EQ(FormatStatus({}, true), "[]\n");
  EXPECT_EQ(FormatStatus({s[1]}, true),
            R"([{"Endpoint":"127.0.0.1:7879","Status":{"header":{"cluster_id":0,)"
            R"("member_id":42,"revision":0,"raft_term":0},"version":"","dbSize":0,)"
            R"("leader":10276657743932975437,"raftIndex":0,"raftTerm":0,"raftAppliedIndex":0,)"
            R"("errors":["a \"b\""],"dbSizeInUse":0,"isLearner":false}}])"
            "\n");
}

}  // namespace
}  // namespace amaters::ctl
