#include "server/service/etcd_handler.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/raft/configuration.h"
#include "server/etcd/convert.h"
#include "server/log.h"

namespace amaters::server {
namespace {

grpc::Status TooLarge() {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large");
}

// Bytes of the files under `dir` (the RocksDB store): Maintenance.Status's dbSize.
int64_t DirectoryBytes(const std::string& dir, int depth = 0) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return 0;
  int64_t total = 0;
  while (struct dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) total += st.st_size;
    if (S_ISDIR(st.st_mode) && depth < 4) total += DirectoryBytes(path, depth + 1);
  }
  closedir(d);
  return total;
}

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

EtcdHandler::EtcdHandler(Runtime* runtime, std::string version, std::string data_dir,
                         std::string url_scheme)
    : runtime_(runtime),
      version_(std::move(version)),
      data_dir_(std::move(data_dir)),
      url_scheme_(std::move(url_scheme)),
      lease_ids_(std::random_device{}()) {}

void EtcdHandler::SetLimits(const HandlerLimits& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_ = limits;
}

void EtcdHandler::SetWriteGate(absl::Status gate) {
  std::lock_guard<std::mutex> lock(mu_);
  write_gate_ = std::move(gate);
}

HandlerLimits EtcdHandler::limits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_;
}

etcd::HeaderInfo EtcdHandler::HeaderInfo() const {
  etcd::HeaderInfo h;
  h.cluster_id = runtime_->options().cluster_id;
  h.member_id = runtime_->options().node_id;
  h.raft_term = runtime_->term();
  return h;
}

std::optional<EtcdHandler::Done> EtcdHandler::Admit(Done done) {
  if (draining_.load()) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server is shutting down"));
    return std::nullopt;
  }
  const int64_t limit = static_cast<int64_t>(limits().max_inflight_requests);
  if (inflight_.fetch_add(1) >= limit) {
    // Bounded: the client backs off (etcd's ErrTooManyRequests) instead of queueing forever.
    inflight_.fetch_sub(1);
    done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "etcdserver: too many requests"));
    return std::nullopt;
  }
  return Done([this, done = std::move(done)](grpc::Status s) {
    // Before `done`: finishing the call may let the server shut down and destroy this handler.
    inflight_.fetch_sub(1);
    done(std::move(s));
  });
}

std::optional<EtcdHandler::Admitted> EtcdHandler::Begin(const google::protobuf::Message& request,
                                                        Done done_in) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return std::nullopt;
  const HandlerLimits l = limits();
  if (request.ByteSizeLong() > l.max_request_bytes) {
    (*admitted)(TooLarge());
    return std::nullopt;
  }
  return Admitted{*std::move(admitted), {l.max_key_bytes, l.max_value_bytes}};
}

void EtcdHandler::Range(const etcdserverpb::RangeRequest& request,
                        etcdserverpb::RangeResponse* response, Done done_in) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  absl::StatusOr<kv::RangeRequest> range =
      etcd::RangeToRequest(request, a->limits);
  if (!range.ok()) return done(ToGrpc(range.status()));
  runtime_->Read(*std::move(range), request.serializable(),
                 [this, &request, response, done](absl::StatusOr<kv::RangeResponse> r,
                                                  raft::NodeId) {
                   if (!r.ok()) return done(ToGrpc(r.status()));
                   etcd::SortAndLimit(request, &*r);
                   etcd::ToProto(*r, HeaderInfo(), response);
                   done(grpc::Status::OK);
                 });
}

void EtcdHandler::Put(const etcdserverpb::PutRequest& request, etcdserverpb::PutResponse* response,
                      Done done_in, bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  Write(peerpb::ForwardRequest::PUT, request, response,
        etcd::PutToCommand(request, a->limits),
        [this, response](const kv::CommandResponse& r) {
          etcd::ToProto(std::get<kv::PutResponse>(r), HeaderInfo(), response);
        },
        std::move(done), forwarded);
}

void EtcdHandler::DeleteRange(const etcdserverpb::DeleteRangeRequest& request,
                              etcdserverpb::DeleteRangeResponse* response, Done done_in,
                              bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  Write(peerpb::ForwardRequest::DELETE_RANGE, request, response,
        etcd::DeleteToCommand(request, a->limits),
        [this, response](const kv::CommandResponse& r) {
          etcd::ToProto(std::get<kv::DeleteRangeResponse>(r), HeaderInfo(), response);
        },
        std::move(done), forwarded);
}

void EtcdHandler::Txn(const etcdserverpb::TxnRequest& request, etcdserverpb::TxnResponse* response,
                      Done done_in, bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  Write(peerpb::ForwardRequest::TXN, request, response,
        etcd::TxnToCommand(request, a->limits),
        [this, &request, response](const kv::CommandResponse& r) {
          kv::TxnResponse txn = std::get<kv::TxnResponse>(r);
          etcd::SortAndLimit(request, &txn);
          etcd::ToProto(txn, HeaderInfo(), response);
        },
        std::move(done), forwarded);
}

void EtcdHandler::Compact(const etcdserverpb::CompactionRequest& request,
                          etcdserverpb::CompactionResponse* response, Done done_in,
                          bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  Write(peerpb::ForwardRequest::COMPACT, request, response, etcd::CompactToCommand(request),
        [this, response](const kv::CommandResponse& r) {
          etcd::ToProto(std::get<kv::CompactResponse>(r), HeaderInfo(), response);
        },
        std::move(done), forwarded);
}

void EtcdHandler::Write(peerpb::ForwardRequest::Method method,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response, absl::StatusOr<kv::Command> command,
                        std::function<void(const kv::CommandResponse&)> fill, Done done,
                        bool forwarded) {
  if (!command.ok()) return done(ToGrpc(command.status()));
  // Compacting and revoking give space back (etcd allows both under NOSPACE).
  if (method != peerpb::ForwardRequest::COMPACT && method != peerpb::ForwardRequest::LEASE_REVOKE) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!write_gate_.ok()) return done(ToGrpc(write_gate_));
  }
  if (runtime_->quorum_lost()) {
    // Fail fast rather than wait out the request timeout: no quorum can commit it.
    const size_t n = std::max<size_t>(1, runtime_->status().voters.size());
    return done(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("etcdserver: no quorum: fewer than ", n / 2 + 1, " of ", n,
                     " members reachable (alert quorum_lost)")));
  }
  runtime_->Propose(
      *std::move(command),
      [this, method, &request, response, fill = std::move(fill), done = std::move(done),
       forwarded](absl::StatusOr<kv::CommandResponse> r, raft::NodeId leader) {
        if (r.ok()) {
          fill(*r);
          return done(grpc::Status::OK);
        }
        if (r.status().code() == absl::StatusCode::kFailedPrecondition &&
            leader != raft::kNone) {
          if (forwarded) {
            return done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     absl::StrCat("etcdserver: leader changed (leader is ",
                                                  leader, ")")));
          }
          return ForwardTo(leader, method, request, response, done);
        }
        done(ToGrpc(r.status()));
      });
}

void EtcdHandler::ForwardTo(raft::NodeId leader, peerpb::ForwardRequest::Method method,
                            const google::protobuf::Message& request,
                            google::protobuf::Message* response, Done done, bool fail_fast) {
  std::shared_ptr<PeerSender> peer = runtime_->peer(leader);
  if (peer == nullptr) {
    return done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             absl::StrCat("etcdserver: leader ", leader, " is not a known peer")));
  }
  struct Call {
    grpc::ClientContext context;
    peerpb::ForwardRequest request;
    peerpb::ForwardResponse response;
  };
  auto call = std::make_shared<Call>();
  call->context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(fail_fast ? std::min(kLeaseForwardMs, limits().request_timeout_ms)
                                          : limits().request_timeout_ms));
  // The leader may have just come back: a channel still in reconnect backoff would fail the
  // call at once ("failed to connect"); wait for it instead, within the deadline.
  call->context.set_wait_for_ready(!fail_fast);
  call->request.set_cluster_id(runtime_->options().cluster_id);
  call->request.set_from(runtime_->options().node_id);
  call->request.set_method(method);
  call->request.set_request(request.SerializeAsString());
  peer->stub()->async()->Forward(
      &call->context, &call->request, &call->response,
      [call, peer, response, done = std::move(done), leader](grpc::Status status) {
        if (status.ok() && !response->ParseFromString(call->response.response())) {
          status = grpc::Status(grpc::StatusCode::INTERNAL,
                                absl::StrCat("undecodable response forwarded by leader ", leader));
        }
        if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
          status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out");
        }
        done(status);
      });
}

void EtcdHandler::HandleForward(const peerpb::ForwardRequest& request,
                                std::function<void(grpc::Status, std::string)> done) {
  // The decoded request and its response live until `done` runs.
  auto run = [this, &request, &done](auto req, auto resp, auto call) {
    if (!req->ParseFromString(request.request())) {
      return done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "forwarded request does not decode"),
                  "");
    }
    auto* r = req.get();
    auto* p = resp.get();
    call(*r, p, [req, resp, done](grpc::Status s) {
      done(s, s.ok() ? resp->SerializeAsString() : std::string());
    });
  };
  switch (request.method()) {
    case peerpb::ForwardRequest::PUT:
      return run(std::make_shared<etcdserverpb::PutRequest>(),
                 std::make_shared<etcdserverpb::PutResponse>(),
                 [this](const auto& q, auto* p, Done d) { Put(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::DELETE_RANGE:
      return run(std::make_shared<etcdserverpb::DeleteRangeRequest>(),
                 std::make_shared<etcdserverpb::DeleteRangeResponse>(),
                 [this](const auto& q, auto* p, Done d) { DeleteRange(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::TXN:
      return run(std::make_shared<etcdserverpb::TxnRequest>(),
                 std::make_shared<etcdserverpb::TxnResponse>(),
                 [this](const auto& q, auto* p, Done d) { Txn(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::COMPACT:
      return run(std::make_shared<etcdserverpb::CompactionRequest>(),
                 std::make_shared<etcdserverpb::CompactionResponse>(),
                 [this](const auto& q, auto* p, Done d) { Compact(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::MEMBER_ADD:
      return run(std::make_shared<etcdserverpb::MemberAddRequest>(),
                 std::make_shared<etcdserverpb::MemberAddResponse>(),
                 [this](const auto& q, auto* p, Done d) { MemberAdd(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::MEMBER_REMOVE:
      return run(std::make_shared<etcdserverpb::MemberRemoveRequest>(),
                 std::make_shared<etcdserverpb::MemberRemoveResponse>(),
                 [this](const auto& q, auto* p, Done d) { MemberRemove(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::MEMBER_UPDATE:
      return run(std::make_shared<etcdserverpb::MemberUpdateRequest>(),
                 std::make_shared<etcdserverpb::MemberUpdateResponse>(),
                 [this](const auto& q, auto* p, Done d) { MemberUpdate(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::MEMBER_PROMOTE:
      return run(std::make_shared<etcdserverpb::MemberPromoteRequest>(),
                 std::make_shared<etcdserverpb::MemberPromoteResponse>(),
                 [this](const auto& q, auto* p, Done d) {
                   MemberPromote(q, p, std::move(d), true);
                 });
    case peerpb::ForwardRequest::LEASE_GRANT:
      return run(std::make_shared<etcdserverpb::LeaseGrantRequest>(),
                 std::make_shared<etcdserverpb::LeaseGrantResponse>(),
                 [this](const auto& q, auto* p, Done d) { LeaseGrant(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::LEASE_REVOKE:
      return run(std::make_shared<etcdserverpb::LeaseRevokeRequest>(),
                 std::make_shared<etcdserverpb::LeaseRevokeResponse>(),
                 [this](const auto& q, auto* p, Done d) { LeaseRevoke(q, p, std::move(d), true); });
    case peerpb::ForwardRequest::LEASE_KEEPALIVE:
      return run(std::make_shared<etcdserverpb::LeaseKeepAliveRequest>(),
                 std::make_shared<etcdserverpb::LeaseKeepAliveResponse>(),
                 [this](const auto& q, auto* p, Done d) {
                   LeaseKeepAlive(q, p, std::move(d), true);
                 });
    case peerpb::ForwardRequest::LEASE_TIME_TO_LIVE:
      return run(std::make_shared<etcdserverpb::LeaseTimeToLiveRequest>(),
                 std::make_shared<etcdserverpb::LeaseTimeToLiveResponse>(),
                 [this](const auto& q, auto* p, Done d) {
                   LeaseTimeToLive(q, p, std::move(d), true);
                 });
    case peerpb::ForwardRequest::RANGE:
      return run(std::make_shared<etcdserverpb::RangeRequest>(),
                 std::make_shared<etcdserverpb::RangeResponse>(),
                 [this](const auto& q, auto* p, Done d) { Range(q, p, std::move(d)); });
    default:
      return done(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               absl::StrCat("unknown forwarded method ", request.method())),
                  "");
  }
}

grpc::Status EtcdHandler::Alarm(const etcdserverpb::AlarmRequest& request,
                                etcdserverpb::AlarmResponse* response) {
  bool nospace = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nospace = write_gate_.code() == absl::StatusCode::kResourceExhausted;
  }
  const uint64_t self = runtime_->options().node_id;
  const bool mine = request.memberid() == 0 || request.memberid() == self;
  const bool wanted = request.alarm() == etcdserverpb::NONE || request.alarm() == etcdserverpb::NOSPACE;
  switch (request.action()) {
    case etcdserverpb::AlarmRequest::GET: break;
    case etcdserverpb::AlarmRequest::DEACTIVATE:
      if (nospace && mine && wanted) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            "NOSPACE ends by itself once the data directory's file system has "
                            "[storage] min_free_bytes free again (docs/runbooks.md RB-005)");
      }
      break;
    case etcdserverpb::AlarmRequest::ACTIVATE:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "alarms are raised by the member's disk-space probe, not by clients");
    default:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("unknown alarm action ", static_cast<int>(request.action())));
  }
  Header(runtime_->status().revision, response->mutable_header());
  if (nospace && mine && wanted) {
    etcdserverpb::AlarmMember* m = response->add_alarms();
    m->set_memberid(self);
    m->set_alarm(etcdserverpb::NOSPACE);
  }
  return grpc::Status::OK;
}

grpc::Status EtcdHandler::Status(etcdserverpb::StatusResponse* response) {
  const RuntimeStatus s = runtime_->status();
  Header(s.revision, response->mutable_header());
  response->set_version(version_);
  const int64_t db = DirectoryBytes(data_dir_ + "/kv");
  response->set_dbsize(db);
  response->set_dbsizeinuse(db);
  response->set_leader(s.leader);
  response->set_raftindex(s.commit);
  response->set_raftterm(s.term);
  response->set_raftappliedindex(s.applied);
  if (s.fatal) response->add_errors(absl::StrCat("node stopped: ", s.fatal_message));
  if (s.leader == raft::kNone) response->add_errors("etcdserver: no leader");
  return grpc::Status::OK;
}

namespace {

raft::Configuration ConfigurationOf(const RuntimeStatus& s) {
  raft::Configuration c;
  c.voters = s.voters;
  c.outgoing = s.voters_outgoing;
  c.learners = s.learners;
  c.member_info = s.member_info;
  return c;
}

// "http://host:port" or "https://host:port" (etcd's peer URLs); the host:port, or why not.
absl::StatusOr<std::string> PeerUrlAddress(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcdserver: peer URL \"", url, "\" must start with http:// or https://"));
  }
  while (absl::ConsumeSuffix(&rest, "/")) {
  }
  const size_t colon = rest.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port == 0 || port > 65535 ||
      rest.find('/') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcdserver: peer URL \"", url, "\" is not scheme://host:port"));
  }
  return std::string(rest);
}

// A fresh member id: random, below 2^53 (exact in JSON and TOML integers), never 0 and not a
// member already. Ids are never reused: a removed id comes back only by a 1-in-2^53 chance.
raft::NodeId NewMemberId(const raft::Configuration& conf) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}() ^
                             (uint64_t{std::random_device{}()} << 32));
  std::lock_guard<std::mutex> lock(mu);
  while (true) {
    const raft::NodeId id = (rng() & ((uint64_t{1} << 53) - 1));
    if (id > 0xffff && !conf.IsMember(id)) return id;
  }
}

}  // namespace

std::string EtcdHandler::KnownPeerAddress(const RuntimeStatus& s, raft::NodeId id) const {
  if (id == runtime_->options().node_id) return runtime_->options().peer_address;
  for (const RuntimeStatus::Peer& p : s.peers) {
    if (p.id == id) return p.address;
  }
  return "";
}

std::vector<std::string> EtcdHandler::TakenPeerAddresses(const RuntimeStatus& s,
                                                         const raft::Configuration& conf,
                                                         raft::NodeId except) const {
  std::vector<std::string> taken;
  for (raft::NodeId id : conf.Members()) {
    if (id == except) continue;
    if (std::string a = KnownPeerAddress(s, id); !a.empty()) taken.push_back(a);
    if (const raft::MemberInfo* info = conf.InfoOf(id)) {
      for (const std::string& u : info->peer_urls) {
        if (absl::StatusOr<std::string> a = PeerUrlAddress(u); a.ok()) taken.push_back(*a);
      }
    }
  }
  return taken;
}

void EtcdHandler::FillMembers(const raft::Configuration& conf,
                              google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) const {
  const RuntimeStatus s = runtime_->status();
  const RuntimeOptions& o = runtime_->options();
  for (raft::NodeId id : conf.Members()) {
    etcdserverpb::Member* m = out->Add();
    m->set_id(id);
    m->set_islearner(conf.IsLearner(id));
    const raft::MemberInfo* info = conf.InfoOf(id);
    // etcd lists a member that has never started with an empty name ("unstarted").
    std::string client = id == o.node_id ? o.client_address : "";
    for (const RuntimeStatus::Peer& p : s.peers) {
      if (p.id == id) client = p.client_address;
    }
    if (info != nullptr && !info->name.empty()) {
      m->set_name(info->name);
    } else if (!client.empty()) {
      m->set_name(absl::StrCat("node-", id));
    }
    if (info != nullptr && !info->peer_urls.empty()) {
      for (const std::string& u : info->peer_urls) m->add_peerurls(u);
    } else if (std::string a = KnownPeerAddress(s, id); !a.empty()) {
      m->add_peerurls(absl::StrCat(url_scheme_, "://", a));
    }
    if (info != nullptr && !info->client_urls.empty()) {
      for (const std::string& u : info->client_urls) m->add_clienturls(u);
      continue;
    }
    // Learned from the member's own batches; unknown until it has talked to us.
    if (!client.empty()) m->add_clienturls(absl::StrCat(url_scheme_, "://", client));
  }
}

grpc::Status EtcdHandler::MemberList(etcdserverpb::MemberListResponse* response) {
  const RuntimeStatus s = runtime_->status();
  Header(s.revision, response->mutable_header());
  // Only members of the configuration in effect (docs/membership.md).
  FillMembers(ConfigurationOf(s), response->mutable_members());
  return grpc::Status::OK;
}

void EtcdHandler::ChangeMembers(peerpb::ForwardRequest::Method method,
                                const google::protobuf::Message& request,
                                google::protobuf::Message* response, ChangeBuilder build,
                                ChangeFiller fill, Done done_in, bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  Done done = std::move(a->done);
  const RuntimeStatus s = runtime_->status();
  if (s.leader != raft::kNone && s.leader != s.node_id && !forwarded) {
    return ForwardTo(s.leader, method, request, response, done);
  }
  absl::StatusOr<raft::ConfChange> change = build(s);
  if (!change.ok()) return done(ToGrpc(change.status()));
  LogInfo("membership change proposed", {F("change", raft::DescribeConfChange(*change))});
  runtime_->ProposeConfChange(
      *std::move(change),
      [this, method, &request, response, fill = std::move(fill), done,
       forwarded](absl::StatusOr<raft::Configuration> r, raft::NodeId leader) {
        if (r.ok()) {
          LogInfo("membership changed", {F("configuration", r->Describe())});
          fill(*r);
          return done(grpc::Status::OK);
        }
        if (r.status().code() == absl::StatusCode::kFailedPrecondition &&
            leader != raft::kNone && leader != runtime_->options().node_id) {
          if (forwarded) {
            return done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     absl::StrCat("etcdserver: leader changed (leader is ",
                                                  leader, ")")));
          }
          return ForwardTo(leader, method, request, response, done);
        }
        if (absl::StrContains(r.status().message(), "is not caught up")) {
          return done(grpc::Status(
              grpc::StatusCode::FAILED_PRECONDITION,
              "etcdserver: can only promote a learner member which is in sync with leader"));
        }
        done(ToGrpc(r.status()));
      });
}

void EtcdHandler::MemberAdd(const etcdserverpb::MemberAddRequest& request,
                            etcdserverpb::MemberAddResponse* response, Done done,
                            bool forwarded) {
  auto added = std::make_shared<raft::NodeId>(raft::kNone);
  ChangeBuilder build = [this, &request, added](const RuntimeStatus& s)
      -> absl::StatusOr<raft::ConfChange> {
    if (request.peerurls().empty()) {
      return absl::InvalidArgumentError("etcdserver: member peer URLs are not given");
    }
    const raft::Configuration conf = ConfigurationOf(s);
    const std::vector<std::string> taken = TakenPeerAddresses(s, conf, raft::kNone);
    raft::MemberInfo info;
    for (const std::string& url : request.peerurls()) {
      absl::StatusOr<std::string> address = PeerUrlAddress(url);
      if (!address.ok()) return address.status();
      if (std::find(taken.begin(), taken.end(), *address) != taken.end()) {
        return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
      }
      info.peer_urls.push_back(url);
    }
    if (std::string why = raft::MemberInfoProblem(raft::MemberInfo{1, "", info.peer_urls, {}});
        !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("etcdserver: ", why));
    }
    info.id = NewMemberId(conf);
    *added = info.id;
    raft::ConfChange cc;
    cc.steps = {{request.islearner() ? raft::ConfChangeStep::Type::kAddLearner
                                     : raft::ConfChangeStep::Type::kAddVoter,
                 info.id}};
    cc.members.push_back(std::move(info));
    // Record every member's peer URL while at it, so that each member (and the new one) can
    // reach all the others whatever its own `peers` lists.
    for (raft::NodeId id : conf.Members()) {
      if (conf.InfoOf(id) != nullptr) continue;
      std::string a = KnownPeerAddress(s, id);
      if (a.empty()) continue;
      cc.members.push_back(raft::MemberInfo{id, "", {absl::StrCat(url_scheme_, "://", a)}, {}});
    }
    return cc;
  };
  ChangeFiller fill = [this, response, added](const raft::Configuration& conf) {
    Header(runtime_->status().revision, response->mutable_header());
    FillMembers(conf, response->mutable_members());
    for (const etcdserverpb::Member& m : response->members()) {
      if (m.id() == *added) *response->mutable_member() = m;
    }
  };
  ChangeMembers(peerpb::ForwardRequest::MEMBER_ADD, request, response, std::move(build),
                std::move(fill), std::move(done), forwarded);
}

void EtcdHandler::MemberRemove(const etcdserverpb::MemberRemoveRequest& request,
                               etcdserverpb::MemberRemoveResponse* response, Done done,
                               bool forwarded) {
  ChangeBuilder build = [&request](const RuntimeStatus& s) -> absl::StatusOr<raft::ConfChange> {
    if (!ConfigurationOf(s).IsMember(request.id())) {
      return absl::NotFoundError("etcdserver: member not found");
    }
    raft::ConfChange cc;
    cc.steps = {{raft::ConfChangeStep::Type::kRemove, request.id()}};
    return cc;
  };
  ChangeFiller fill = [this, response](const raft::Configuration& conf) {
    Header(runtime_->status().revision, response->mutable_header());
    FillMembers(conf, response->mutable_members());
  };
  ChangeMembers(peerpb::ForwardRequest::MEMBER_REMOVE, request, response, std::move(build),
                std::move(fill), std::move(done), forwarded);
}

void EtcdHandler::MemberUpdate(const etcdserverpb::MemberUpdateRequest& request,
                               etcdserverpb::MemberUpdateResponse* response, Done done,
                               bool forwarded) {
  ChangeBuilder build = [this, &request](
                            const RuntimeStatus& s) -> absl::StatusOr<raft::ConfChange> {
    const raft::Configuration conf = ConfigurationOf(s);
    if (!conf.IsMember(request.id())) return absl::NotFoundError("etcdserver: member not found");
    raft::MemberInfo info{request.id(), "", {}, {}};
    if (const raft::MemberInfo* old = conf.InfoOf(request.id())) info = *old;
    info.peer_urls.clear();
    const std::vector<std::string> taken = TakenPeerAddresses(s, conf, request.id());
    for (const std::string& url : request.peerurls()) {
      absl::StatusOr<std::string> a = PeerUrlAddress(url);
      if (!a.ok()) return a.status();
      if (std::find(taken.begin(), taken.end(), *a) != taken.end()) {
        return absl::FailedPreconditionError("etcdserver: Peer URLs already exists");
      }
      info.peer_urls.push_back(url);
    }
    if (info.peer_urls.empty()) {
      return absl::InvalidArgumentError("etcdserver: member peer URLs are not given");
    }
    if (std::string why = raft::MemberInfoProblem(info); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("etcdserver: ", why));
    }
    raft::ConfChange cc;
    cc.members = {std::move(info)};
    return cc;
  };
  ChangeFiller fill = [this, response](const raft::Configuration& conf) {
    Header(runtime_->status().revision, response->mutable_header());
    FillMembers(conf, response->mutable_members());
  };
  ChangeMembers(peerpb::ForwardRequest::MEMBER_UPDATE, request, response, std::move(build),
                std::move(fill), std::move(done), forwarded);
}

void EtcdHandler::MemberPromote(const etcdserverpb::MemberPromoteRequest& request,
                                etcdserverpb::MemberPromoteResponse* response, Done done,
                                bool forwarded) {
  ChangeBuilder build = [&request](const RuntimeStatus& s) -> absl::StatusOr<raft::ConfChange> {
    const raft::Configuration conf = ConfigurationOf(s);
    if (!conf.IsMember(request.id())) return absl::NotFoundError("etcdserver: member not found");
    if (!conf.IsLearner(request.id())) {
      return absl::FailedPreconditionError("etcdserver: can only promote a learner member");
    }
    raft::ConfChange cc;
    cc.steps = {{raft::ConfChangeStep::Type::kAddVoter, request.id()}};
    return cc;
  };
  ChangeFiller fill = [this, response](const raft::Configuration& conf) {
    Header(runtime_->status().revision, response->mutable_header());
    FillMembers(conf, response->mutable_members());
  };
  ChangeMembers(peerpb::ForwardRequest::MEMBER_PROMOTE, request, response, std::move(build),
                std::move(fill), std::move(done), forwarded);
}

void EtcdHandler::MoveLeader(const etcdserverpb::MoveLeaderRequest& request,
                             etcdserverpb::MoveLeaderResponse* response, Done done_in) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  Done done = *std::move(admitted);
  runtime_->TransferLeadership(request.targetid(), [this, response, done](absl::Status s) {
    if (s.ok()) Header(runtime_->status().revision, response->mutable_header());
    done(ToGrpc(s));
  });
}

void EtcdHandler::Defragment(etcdserverpb::DefragmentResponse* response, Done done_in) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  Done done = *std::move(admitted);
  runtime_->Defragment([this, response, done](absl::Status s) {
    if (s.ok()) Header(runtime_->status().revision, response->mutable_header());
    done(ToGrpc(s));
  });
}

void EtcdHandler::HashKV(const etcdserverpb::HashKVRequest& request,
                         etcdserverpb::HashKVResponse* response, Done done_in) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  Done done = *std::move(admitted);
  runtime_->HashKV(request.revision(), [this, response, done](
                                           absl::StatusOr<Runtime::KvHash> h) {
    if (!h.ok()) return done(ToGrpc(h.status()));
    Header(h->revision, response->mutable_header());
    response->set_hash(h->hash);
    response->set_compact_revision(h->compact_revision);
    response->set_hash_revision(h->hash_revision);
    done(grpc::Status::OK);
  });
}

// --- Leases ------------------------------------------------------------------------------------

int64_t EtcdHandler::NewLeaseId() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t id = 0;
  while (id <= 0) id = static_cast<int64_t>(lease_ids_() >> 1);
  return id;
}

void EtcdHandler::LeaseGrant(const etcdserverpb::LeaseGrantRequest& request,
                             etcdserverpb::LeaseGrantResponse* response, Done done_in,
                             bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  absl::StatusOr<kv::Command> command;
  absl::StatusOr<int64_t> ttl = runtime_->LeaseGrantTtl(request.ttl());
  if (!ttl.ok()) {
    command = ttl.status();
  } else if (request.id() < 0) {
    command = absl::InvalidArgumentError(absl::StrCat("lease ID ", request.id(), " is negative"));
  } else {
    kv::Command c;
    c.op = kv::LeaseGrantRequest{request.id() != 0 ? request.id() : NewLeaseId(), *ttl};
    command = std::move(c);
  }
  Write(peerpb::ForwardRequest::LEASE_GRANT, request, response, std::move(command),
        [this, response](const kv::CommandResponse& r) {
          const auto& g = std::get<kv::LeaseGrantResponse>(r);
          Header(g.header.revision, response->mutable_header());
          response->set_id(g.id);
          response->set_ttl(g.ttl);
        },
        std::move(a->done), forwarded);
}

void EtcdHandler::LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& request,
                              etcdserverpb::LeaseRevokeResponse* response, Done done_in,
                              bool forwarded) {
  std::optional<Admitted> a = Begin(request, std::move(done_in));
  if (!a) return;
  kv::Command c;
  c.op = kv::LeaseRevokeRequest{request.id()};
  Write(peerpb::ForwardRequest::LEASE_REVOKE, request, response, std::move(c),
        [this, response](const kv::CommandResponse& r) {
          Header(std::get<kv::LeaseRevokeResponse>(r).header.revision,
                 response->mutable_header());
        },
        std::move(a->done), forwarded);
}

void EtcdHandler::OnLeader(peerpb::ForwardRequest::Method method,
                           const google::protobuf::Message& request,
                           google::protobuf::Message* response, Done done, bool forwarded,
                           std::function<void(Done)> local) {
  const RuntimeStatus s = runtime_->status();
  if (s.role == raft::Role::kLeader) return local(std::move(done));
  if (forwarded || s.leader == raft::kNone) {
    return done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             s.leader == raft::kNone
                                 ? "etcdserver: no leader"
                                 : absl::StrCat("etcdserver: leader changed (leader is ",
                                                s.leader, ")")));
  }
  ForwardTo(s.leader, method, request, response, std::move(done), /*fail_fast=*/true);
}

namespace {

// The lessor's kErrNotPrimary: leadership moved between the check and the answer.
grpc::Status LeaderMoved(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kFailedPrecondition) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
  }
  return ToGrpc(s);
}

}  // namespace

void EtcdHandler::LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveRequest& request,
                                 etcdserverpb::LeaseKeepAliveResponse* response, Done done_in,
                                 bool forwarded) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  const int64_t id = request.id();
  OnLeader(peerpb::ForwardRequest::LEASE_KEEPALIVE, request, response, *std::move(admitted),
           forwarded, [this, id, response](Done done) {
    // Leadership confirmed by a quorum first: a deposed leader must not renew.
    kv::RangeRequest barrier;
    barrier.key = std::string(1, '\0');
    barrier.count_only = true;
    runtime_->Read(std::move(barrier), /*serializable=*/false,
                   [this, id, response, done](absl::StatusOr<kv::RangeResponse> r,
                                              raft::NodeId) {
      if (!r.ok()) return done(LeaderMoved(r.status()));
      runtime_->LeaseKeepAlive(id, [this, id, response, done,
                                    revision = r->header.revision](absl::StatusOr<int64_t> ttl) {
        if (!ttl.ok() && ttl.status().code() != absl::StatusCode::kNotFound) {
          return done(LeaderMoved(ttl.status()));
        }
        Header(revision, response->mutable_header());
        response->set_id(id);
        response->set_ttl(ttl.ok() ? *ttl : 0);
        done(grpc::Status::OK);
      });
    });
  });
}

void EtcdHandler::LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request,
                                  etcdserverpb::LeaseTimeToLiveResponse* response, Done done_in,
                                  bool forwarded) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  const int64_t id = request.id();
  const bool keys = request.keys();
  OnLeader(peerpb::ForwardRequest::LEASE_TIME_TO_LIVE, request, response, *std::move(admitted),
           forwarded, [this, id, keys, response](Done done) {
    runtime_->LeaseTimeToLive(id, keys, [this, id, response,
                                         done](absl::StatusOr<Runtime::LeaseInfo> info) {
      if (!info.ok() && info.status().code() != absl::StatusCode::kNotFound) {
        return done(LeaderMoved(info.status()));
      }
      response->set_id(id);
      if (!info.ok()) {
        Header(runtime_->status().revision, response->mutable_header());
        response->set_ttl(-1);
        return done(grpc::Status::OK);
      }
      Header(info->revision, response->mutable_header());
      response->set_ttl(info->remaining);
      response->set_grantedttl(info->granted_ttl);
      for (const std::string& k : info->keys) response->add_keys(k);
      done(grpc::Status::OK);
    });
  });
}

void EtcdHandler::LeaseLeases(etcdserverpb::LeaseLeasesResponse* response, Done done_in) {
  std::optional<Done> admitted = Admit(std::move(done_in));
  if (!admitted) return;
  runtime_->LeaseList([this, response, done = *std::move(admitted)](
                          absl::StatusOr<std::vector<int64_t>> ids) {
    if (!ids.ok()) return done(ToGrpc(ids.status()));
    Header(runtime_->status().revision, response->mutable_header());
    for (int64_t id : *ids) response->add_leases()->set_id(id);
    done(grpc::Status::OK);
  });
}

void EtcdHandler::SnapshotHeader(etcdserverpb::ResponseHeader* header) const {
  Header(runtime_->status().revision, header);
}

void EtcdHandler::Header(int64_t revision, etcdserverpb::ResponseHeader* header) const {
  header->set_cluster_id(runtime_->options().cluster_id);
  header->set_member_id(runtime_->options().node_id);
  header->set_revision(revision);
  header->set_raft_term(runtime_->term());
}

}  // namespace amaters::server
