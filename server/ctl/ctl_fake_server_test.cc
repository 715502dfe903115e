// amaters-ctl end to end against in-process fake etcd services (KV, Maintenance, Cluster) on
// 127.0.0.1 with ephemeral ports. The fakes are as small as the client needs: a map, a
// revision, and a switch that makes every call answer a chosen error.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/ctl/args.h"
#include "server/ctl/ctl.h"

namespace amaters::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class FakeEtcd final : public etcdserverpb::KV::Service,
                       public etcdserverpb::Maintenance::Service,
                       public etcdserverpb::Cluster::Service {
 public:
  explicit FakeEtcd(uint64_t member_id) : member_id_(member_id) {}

  // Every call answers `status` from now on (OK = serve normally).
  void FailWith(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(status);
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::map<std::string, std::string> data() {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, std::string> out;
    for (const auto& [k, kv] : data_) out[k] = kv.value();
    return out;
  }

  grpc::Status Put(grpc::ServerContext*, const etcdserverpb::PutRequest* request,
                   etcdserverpb::PutResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    if (request->key().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided");
    }
    ++revision_;
    mvccpb::KeyValue& kv = data_[request->key()];
    if (kv.version() == 0) kv.set_create_revision(revision_);
    kv.set_key(request->key());
    kv.set_value(request->value());
    kv.set_mod_revision(revision_);
    kv.set_version(kv.version() + 1);
    FillHeader(response->mutable_header());
    return grpc::Status::OK;
  }

  grpc::Status Range(grpc::ServerContext*, const etcdserverpb::RangeRequest* request,
                     etcdserverpb::RangeResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    for (const auto& [k, kv] : data_) {
      if (!InRange(k, request->key(), request->range_end())) continue;
      response->set_count(response->count() + 1);
      if (request->limit() > 0 && response->kvs_size() == request->limit()) {
        response->set_more(true);
        continue;
      }
      mvccpb::KeyValue* out = response->add_kvs();
      *out = kv;
      if (request->keys_only()) out->clear_value();
    }
    FillHeader(response->mutable_header());
    return grpc::Status::OK;
  }

  grpc::Status DeleteRange(grpc::ServerContext*, const etcdserverpb::DeleteRangeRequest* request,
                           etcdserverpb::DeleteRangeResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    int64_t deleted = 0;
    for (auto it = data_.begin(); it != data_.end();) {
      if (InRange(it->first, request->key(), request->range_end())) {
        it = data_.erase(it);
        ++deleted;
      } else {
        ++it;
      }
    }
    if (deleted > 0) ++revision_;
    response->set_deleted(deleted);
    FillHeader(response->mutable_header());
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const etcdserverpb::StatusRequest*,
                      etcdserverpb::StatusResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    FillHeader(response->mutable_header());
    response->set_version("amaters-fake");
    response->set_dbsize(20480);
    response->set_leader(1);
    response->set_raftindex(10);
    response->set_raftterm(2);
    return grpc::Status::OK;
  }

 private:
  static bool InRange(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string(1, '\0')) return k >= key;
    return k >= key && k < end;
  }

  void FillHeader(etcdserverpb::ResponseHeader* h) {
    h->set_cluster_id(0xc1);
    h->set_member_id(member_id_);
    h->set_revision(revision_);
    h->set_raft_term(2);
  }

 public:
  // Cluster: member 1 plus what member add added; promote is refused as etcd refuses a
  // learner that is behind; remove answers etcd's "member not found" for an unknown id.
  grpc::Status MemberList(grpc::ServerContext*, const etcdserverpb::MemberListRequest*,
                          etcdserverpb::MemberListResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    FillMembers(response->mutable_header(), response->mutable_members());
    return grpc::Status::OK;
  }

  grpc::Status MemberAdd(grpc::ServerContext*, const etcdserverpb::MemberAddRequest* request,
                         etcdserverpb::MemberAddResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!fail_.ok()) return fail_;
    etcdserverpb::Member& m = members_.emplace_back();
    m.set_id(0x1ba3bb97f5d7d2);
    *m.mutable_peerurls() = request->peerurls();
    m.set_islearner(request->islearner());
    *response->mutable_member() = m;
    FillMembers(response->mutable_header(), response->mutable_members());
    return grpc::Status::OK;
  }

  grpc::Status MemberRemove(grpc::ServerContext*, const etcdserverpb::MemberRemoveRequest* request,
                            etcdserverpb::MemberRemoveResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    auto it = std::find_if(members_.begin(), members_.end(),
                           [&](const etcdserverpb::Member& m) { return m.id() == request->id(); });
    if (it == members_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "etcdserver: member not found");
    }
    members_.erase(it);
    FillMembers(response->mutable_header(), response->mutable_members());
    return grpc::Status::OK;
  }

  grpc::Status MemberPromote(grpc::ServerContext*, const etcdserverpb::MemberPromoteRequest*,
                             etcdserverpb::MemberPromoteResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        "etcdserver: can only promote a learner member which is in sync with leader");
  }

 private:
  void FillMembers(etcdserverpb::ResponseHeader* header,
                   google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) {
    FillHeader(header);
    etcdserverpb::Member* first = out->Add();
    first->set_id(1);
    first->set_name("node-1");
    first->add_peerurls("http://127.0.0.1:7879");
    first->add_clienturls("http://127.0.0.1:7878");
    for (const etcdserverpb::Member& m : members_) *out->Add() = m;
  }

  const uint64_t member_id_;
  std::vector<etcdserverpb::Member> members_;
  std::mutex mu_;
  grpc::Status fail_;
  int calls_ = 0;
  int64_t revision_ = 1;
  std::map<std::string, mvccpb::KeyValue> data_;
};

// A fake member serving on 127.0.0.1:<ephemeral>.
class FakeServer {
 public:
  explicit FakeServer(uint64_t member_id) : fake_(member_id) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(static_cast<etcdserverpb::KV::Service*>(&fake_));
    builder.RegisterService(static_cast<etcdserverpb::Maintenance::Service*>(&fake_));
    builder.RegisterService(static_cast<etcdserverpb::Cluster::Service*>(&fake_));
    server_ = builder.BuildAndStart();
    EXPECT_NE(server_, nullptr);
    EXPECT_GT(port_, 0);
  }
  ~FakeServer() { Stop(); }

  void Stop() {
    if (server_ != nullptr) server_->Shutdown();
    server_.reset();
  }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port_); }
  FakeEtcd& fake() { return fake_; }

 private:
  FakeEtcd fake_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// An endpoint nothing listens on: a fake's port after the fake stopped.
std::string DeadEndpoint() {
  FakeServer s(99);
  std::string ep = s.endpoint();
  s.Stop();
  return ep;
}

// A TCP listener that never accepts and never speaks: connections hang in the handshake.
class BlackHole {
 public:
  BlackHole() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd_, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~BlackHole() { close(fd_); }
  std::string endpoint() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result Ctl(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = Main(args, out, err);
  return Result{code, out.str(), err.str()};
}

std::string Endpoints(const std::vector<std::string>& eps) {
  std::string s = "--endpoints=";
  for (size_t i = 0; i < eps.size(); ++i) absl::StrAppend(&s, i ? "," : "", eps[i]);
  return s;
}

void ExpectOneErrorLine(const Result& r, const std::string& prefix) {
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, StartsWith(prefix));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(CtlFakeServer, PutGetDel) {
  FakeServer s(1);
  const std::string ep = Endpoints({s.endpoint()});

  Result put = Ctl({ep, "put", "foo", "bar"});
  EXPECT_EQ(put.code, kExitOk) << put.err;
  EXPECT_EQ(put.out, "OK\n");
  EXPECT_EQ(put.err, "");
  ASSERT_EQ(Ctl({ep, "put", "foo2", "baz"}).code, kExitOk);
  ASSERT_EQ(Ctl({ep, "put", "other", "x"}).code, kExitOk);

  Result get = Ctl({ep, "get", "foo"});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out, "foo\nbar\n");

  EXPECT_EQ(Ctl({ep, "get", "--prefix", "foo"}).out, "foo\nbar\nfoo2\nbaz\n");
  EXPECT_EQ(Ctl({ep, "get", "--prefix", "foo", "--limit=1"}).out, "foo\nbar\n");
  EXPECT_EQ(Ctl({ep, "get", "--prefix", "foo", "--keys-only"}).out, "foo\n\nfoo2\n\n");
  EXPECT_EQ(Ctl({ep, "range", "foo2", "p"}).out, "foo2\nbaz\nother\nx\n");
  EXPECT_EQ(Ctl({ep, "get", "--from-key", "foo2"}).out, "foo2\nbaz\nother\nx\n");

  // A missing key: nothing printed, exit 0 (as etcdctl).
  Result missing = Ctl({ep, "get", "nope"});
  EXPECT_EQ(missing.code, kExitOk);
  EXPECT_EQ(missing.out, "");
  EXPECT_EQ(missing.err, "");

  Result del = Ctl({ep, "del", "--prefix", "foo"});
  EXPECT_EQ(del.code, kExitOk) << del.err;
  EXPECT_EQ(del.out, "2\n");
  EXPECT_EQ(Ctl({ep, "del", "foo"}).out, "0\n");
  EXPECT_EQ(s.fake().data(), (std::map<std::string, std::string>{{"other", "x"}}));
}

TEST(CtlFakeServer, BinaryKeysAndValuesAsJson) {
  FakeServer s(1);
  const std::string ep = Endpoints({s.endpoint()});
  const std::string key("k\0\xff", 3);
  const std::string value("\n\"v", 3);
  ASSERT_EQ(Ctl({ep, "put", key, value}).code, kExitOk);

  Result put = Ctl({ep, "--json", "put", "k2", "v"});
  EXPECT_EQ(put.out,
            "{\"header\":{\"cluster_id\":193,\"member_id\":1,\"revision\":3,\"raft_term\":2}}\n");

  Result get = Ctl({ep, "--json", "get", key});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out,
            "{\"header\":{\"cluster_id\":193,\"member_id\":1,\"revision\":3,\"raft_term\":2},"
            "\"kvs\":[{\"key\":\"awD/\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,"
            "\"value\":\"CiJ2\",\"lease\":0}],\"more\":false,\"count\":1}\n");

  Result del = Ctl({ep, "-w", "json", "del", key});
  EXPECT_EQ(del.out,
            "{\"header\":{\"cluster_id\":193,\"member_id\":1,\"revision\":4,\"raft_term\":2},"
            "\"deleted\":1,\"prev_kvs\":[]}\n");
}

TEST(CtlFakeServer, ServerErrorIsOneLine) {
  FakeServer s(1);
  Result r = Ctl({Endpoints({s.endpoint()}), "put", "", "v"});
  ExpectOneErrorLine(r, "amaters-ctl: put: INVALID_ARGUMENT: etcdserver: key is not provided");
  EXPECT_EQ(r.out, "");

  s.fake().FailWith(grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "line1\nline2"));
  ExpectOneErrorLine(Ctl({Endpoints({s.endpoint()}), "get", "k"}),
                     "amaters-ctl: get: OUT_OF_RANGE: line1 line2");
}

TEST(CtlFakeServer, UnreachableEndpointsAreSkipped) {
  FakeServer s(3);
  const std::string dead = DeadEndpoint();
  const std::string ep = Endpoints({dead, s.endpoint()});
  Result put = Ctl({ep, "put", "k", "v"});  // safe to resend: the dead one never got it
  EXPECT_EQ(put.code, kExitOk) << put.err;
  EXPECT_EQ(put.out, "OK\n");
  Result get = Ctl({ep, "get", "k"});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out, "k\nv\n");
  EXPECT_EQ(Ctl({ep, "del", "k"}).out, "1\n");
}

TEST(CtlFakeServer, AllEndpointsDownIsUnavailable) {
  const std::string a = DeadEndpoint();
  const std::string b = DeadEndpoint();
  Result r = Ctl({Endpoints({a, b}), "get", "k"});
  ExpectOneErrorLine(r, "amaters-ctl: get: UNAVAILABLE: " + a + ": ");
  EXPECT_THAT(r.err, HasSubstr("; " + b + ": "));
  EXPECT_EQ(r.out, "");
}

TEST(CtlFakeServer, DefaultEndpointIsUsed) {
  // Nothing is expected to listen on 127.0.0.1:7878 in the test sandbox; whatever happens,
  // the error (if any) names that endpoint.
  Result r = Ctl({"--dial-timeout=300ms", "get", "k"});
  if (r.code != kExitOk) {
    EXPECT_THAT(r.err, HasSubstr("127.0.0.1:7878"));
  }
}

TEST(CtlFakeServer, HangingEndpointIsSkippedAfterDialTimeout) {
  BlackHole hole;
  FakeServer s(4);
  Result r = Ctl({Endpoints({hole.endpoint(), s.endpoint()}), "--dial-timeout=300ms", "put",
                  "k", "v"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(s.fake().data().at("k"), "v");

  Result only = Ctl({Endpoints({hole.endpoint()}), "--dial-timeout=200ms", "get", "k"});
  ExpectOneErrorLine(only, "amaters-ctl: get: UNAVAILABLE: " + hole.endpoint() +
                               ": no connection within 200ms (--dial-timeout)");
}

// A read moves on when a connected member answers UNAVAILABLE; a write does not (it may have
// been applied), so the second member never sees it.
TEST(CtlFakeServer, UnavailableAnswerRetriesReadsNotWrites) {
  FakeServer sick(5);
  FakeServer healthy(6);
  sick.fake().FailWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"));
  const std::string ep = Endpoints({sick.endpoint(), healthy.endpoint()});

  ASSERT_EQ(Ctl({Endpoints({healthy.endpoint()}), "put", "k", "v"}).code, kExitOk);
  Result get = Ctl({ep, "get", "k"});
  EXPECT_EQ(get.code, kExitOk) << get.err;
  EXPECT_EQ(get.out, "k\nv\n");

  const int healthy_calls = healthy.fake().calls();
  Result put = Ctl({ep, "put", "k", "w"});
  ExpectOneErrorLine(put, "amaters-ctl: put: UNAVAILABLE: etcdserver: no leader");
  Result del = Ctl({ep, "del", "k"});
  ExpectOneErrorLine(del, "amaters-ctl: del: UNAVAILABLE: etcdserver: no leader");
  EXPECT_EQ(healthy.fake().calls(), healthy_calls);
  EXPECT_EQ(healthy.fake().data().at("k"), "v");
}

TEST(CtlFakeServer, DeadlineIsNotRetried) {
  FakeServer slow(7);
  FakeServer healthy(8);
  slow.fake().FailWith(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "too slow"));
  Result r = Ctl({Endpoints({slow.endpoint(), healthy.endpoint()}), "get", "k"});
  ExpectOneErrorLine(r, "amaters-ctl: get: DEADLINE_EXCEEDED: too slow");
  EXPECT_EQ(healthy.fake().calls(), 0);
}

TEST(CtlFakeServer, StatusAsksEveryEndpoint) {
  FakeServer a(1);
  FakeServer b(0x2a);
  const std::string ep = Endpoints({a.endpoint(), b.endpoint()});
  Result r = Ctl({ep, "status"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, a.endpoint() + ", 1, 1, 2, 10, 20 kB, true\n" + b.endpoint() +
                       ", 2a, 1, 2, 10, 20 kB, false\n");

  Result json = Ctl({ep, "--json", "status"});
  EXPECT_EQ(json.code, kExitOk) << json.err;
  EXPECT_THAT(json.out, StartsWith("[{\"Endpoint\":\"" + a.endpoint() + "\",\"Status\":{"));
  EXPECT_THAT(json.out, HasSubstr("},{\"Endpoint\":\"" + b.endpoint() + "\""));
  EXPECT_THAT(json.out, HasSubstr("\"version\":\"amaters-fake\",\"dbSize\":20480,\"leader\":1,"
                                  "\"raftIndex\":10,\"raftTerm\":2"));

  // One endpoint down: the others are printed, then one error line, exit 1.
  const std::string dead = DeadEndpoint();
  Result partial = Ctl({Endpoints({a.endpoint(), dead}), "status"});
  EXPECT_EQ(partial.out, a.endpoint() + ", 1, 1, 2, 10, 20 kB, true\n");
  ExpectOneErrorLine(partial, "amaters-ctl: status: UNAVAILABLE: " + dead + ": ");
}

TEST(CtlFakeServer, MemberCommands) {
  FakeServer s(1);
  const std::string ep = Endpoints({s.endpoint()});
  Result add = Ctl({ep, "member", "add", "n2", "--learner", "--peer-urls=http://127.0.0.1:7889"});
  EXPECT_EQ(add.code, kExitOk) << add.err;
  EXPECT_THAT(add.out, StartsWith("Member 1ba3bb97f5d7d2 added to cluster c1\n"));
  EXPECT_THAT(add.out, HasSubstr("peers = [\"1:127.0.0.1:7879\", "
                                 "\"7779850474870738:127.0.0.1:7889\"]\n"));

  Result list = Ctl({ep, "member", "list"});
  EXPECT_EQ(list.code, kExitOk) << list.err;
  EXPECT_EQ(list.out,
            "1, started, node-1, http://127.0.0.1:7879, http://127.0.0.1:7878, false\n"
            "1ba3bb97f5d7d2, unstarted, , http://127.0.0.1:7889, , true\n");

  ExpectOneErrorLine(Ctl({ep, "member", "promote", "1ba3bb97f5d7d2"}),
                     "amaters-ctl: member promote: FAILED_PRECONDITION: etcdserver: can only "
                     "promote a learner member which is in sync with leader");
  Result remove = Ctl({ep, "member", "remove", "1ba3bb97f5d7d2"});
  EXPECT_EQ(remove.out, "Member 1ba3bb97f5d7d2 removed from cluster c1\n");
  ExpectOneErrorLine(Ctl({ep, "member", "remove", "1ba3bb97f5d7d2"}),
                     "amaters-ctl: member remove: NOT_FOUND: etcdserver: member not found");
}

TEST(CtlFakeServer, UnimplementedMethodIsReported) {
  // A server without the Maintenance service (as an etcd proxy might be): gRPC answers
  // UNIMPLEMENTED, which is not a reason to try another endpoint.
  FakeEtcd kv_only(1);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(static_cast<etcdserverpb::KV::Service*>(&kv_only));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  Result r = Ctl({absl::StrCat("--endpoints=127.0.0.1:", port), "status"});
  ExpectOneErrorLine(r, "amaters-ctl: status: UNIMPLEMENTED: ");
  server->Shutdown();
}

}  // namespace
}  // namespace amaters::ctl
