#include "server/ctl/ctl.h"

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "proto/etcd/rpc.pb.h"
#include "server/ctl/output.h"

namespace amaters::ctl {
namespace {

using Clock = std::chrono::system_clock;

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    default: return "UNKNOWN";
  }
}

absl::StatusOr<std::string> ReadFile(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read --", flag, " ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("cannot read --", flag, " ", path));
  }
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const Options& o) {
  if (o.cacert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadFile("cacert", o.cacert);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!o.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadFile("cert", o.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadFile("key", o.key);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> Dial(const std::string& endpoint,
                                    const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  grpc::ChannelArguments args;
  // Loopback and cluster addresses must not go through an http_proxy from the environment.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // One connection per endpoint and command; nothing shared with other channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // As etcd's clientv3 (math.MaxInt32): a large range must not fail on the 4 MiB default.
  args.SetMaxReceiveMessageSize(INT_MAX);
  return grpc::CreateCustomChannel(endpoint, creds, args);
}

enum class Connection : uint8_t { kReady, kFailed, kTimedOut };

// Waits until the channel is READY, has failed to connect (TRANSIENT_FAILURE), or `timeout`
// has passed.
Connection Connect(grpc::Channel& channel, absl::Duration timeout) {
  const Clock::time_point deadline = Clock::now() + absl::ToChronoMilliseconds(timeout);
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return Connection::kFailed;
    }
    if (!channel.WaitForStateChange(state, deadline)) return Connection::kTimedOut;
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return Connection::kReady;
}

// One RPC on `channel`; `context` carries the deadline.
using Call = std::function<grpc::Status(const std::shared_ptr<grpc::Channel>& channel,
                                        grpc::ClientContext* context)>;

// A failed command: the code to print and the message after it.
struct Failure {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
};

void SetDeadline(const Options& o, grpc::ClientContext* context) {
  context->set_deadline(Clock::now() + absl::ToChronoMilliseconds(o.timeout));
}

// Runs `call` on one endpoint. `sent` tells whether a connection was up, so that the request
// may have reached the server.
grpc::Status CallEndpoint(const Options& o, const std::string& endpoint,
                          const std::shared_ptr<grpc::ChannelCredentials>& creds,
                          const Call& call, bool* sent) {
  std::shared_ptr<grpc::Channel> channel = Dial(endpoint, creds);
  const Connection connection = Connect(*channel, o.dial_timeout);
  *sent = false;
  if (connection == Connection::kTimedOut) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("no connection within ", absl::FormatDuration(o.dial_timeout),
                                     " (--dial-timeout)"));
  }
  // After a failed connection attempt the call still runs: gRPC fails it at once, without
  // sending it, with the reason (connection refused, TLS handshake failure, ...).
  *sent = connection == Connection::kReady;
  grpc::ClientContext context;
  SetDeadline(o, &context);
  return call(channel, &context);
}

// Runs `call` on the endpoints in order (the policy in ctl.h). Returns OK or the failure.
grpc::Status CallWithFailover(const Options& o,
                              const std::shared_ptr<grpc::ChannelCredentials>& creds,
                              bool is_write, const Call& call) {
  std::vector<std::string> skipped;  // "endpoint: message" of each endpoint passed over
  grpc::Status last;
  for (const std::string& endpoint : o.endpoints) {
    bool sent = false;
    grpc::Status status = CallEndpoint(o, endpoint, creds, call, &sent);
    if (status.ok()) return status;
    const bool next = status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                      (!sent || !is_write);
    if (!next) {
      if (skipped.empty()) return status;
      return grpc::Status(status.error_code(),
                          absl::StrCat(absl::StrJoin(skipped, "; "), "; ", endpoint, ": ",
                                       status.error_message()));
    }
    skipped.push_back(absl::StrCat(endpoint, ": ", status.error_message()));
    last = status;
  }
  return grpc::Status(last.error_code(), absl::StrJoin(skipped, "; "));
}

int Fail(const Invocation& inv, const grpc::Status& status, std::ostream& err) {
  err << "amaters-ctl: " << inv.command_name << ": " << CodeName(status.error_code()) << ": "
      << OneLine(status.error_message()) << "\n";
  return kExitFailure;
}

int RunPut(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
           std::ostream& out, std::ostream& err) {
  etcdserverpb::PutRequest request;
  request.set_key(inv.key);
  request.set_value(inv.value);
  etcdserverpb::PutResponse response;
  grpc::Status status = CallWithFailover(
      inv.options, creds, /*is_write=*/true,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        return etcdserverpb::KV::NewStub(channel)->Put(context, request, &response);
      });
  if (!status.ok()) return Fail(inv, status, err);
  out << FormatPut(response, inv.options.json);
  return kExitOk;
}

int RunGet(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
           std::ostream& out, std::ostream& err) {
  etcdserverpb::RangeRequest request;
  request.set_key(inv.key);
  request.set_range_end(inv.range_end);
  request.set_limit(inv.limit);
  request.set_keys_only(inv.keys_only);
  etcdserverpb::RangeResponse response;
  grpc::Status status = CallWithFailover(
      inv.options, creds, /*is_write=*/false,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        return etcdserverpb::KV::NewStub(channel)->Range(context, request, &response);
      });
  if (!status.ok()) return Fail(inv, status, err);
  out << FormatRange(response, inv.options.json);
  return kExitOk;
}

int RunDel(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
           std::ostream& out, std::ostream& err) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(inv.key);
  request.set_range_end(inv.range_end);
  etcdserverpb::DeleteRangeResponse response;
  grpc::Status status = CallWithFailover(
      inv.options, creds, /*is_write=*/true,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        return etcdserverpb::KV::NewStub(channel)->DeleteRange(context, request, &response);
      });
  if (!status.ok()) return Fail(inv, status, err);
  out << FormatDelete(response, inv.options.json);
  return kExitOk;
}

// Every endpoint is asked; the ones that answer are printed, then one error line if any did
// not (as etcdctl endpoint status, which prints what it got and exits non-zero).
int RunStatus(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
              std::ostream& out, std::ostream& err) {
  std::vector<EndpointStatus> answered;
  std::vector<std::string> failed;
  grpc::StatusCode code = grpc::StatusCode::OK;
  for (const std::string& endpoint : inv.options.endpoints) {
    EndpointStatus e;
    e.endpoint = endpoint;
    bool sent = false;
    grpc::Status status = CallEndpoint(
        inv.options, endpoint, creds,
        [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
          return etcdserverpb::Maintenance::NewStub(channel)->Status(
              context, etcdserverpb::StatusRequest(), &e.status);
        },
        &sent);
    if (status.ok()) {
      answered.push_back(std::move(e));
    } else {
      failed.push_back(absl::StrCat(endpoint, ": ", status.error_message()));
      code = status.error_code();
    }
  }
  out << FormatStatus(answered, inv.options.json);
  if (failed.empty()) return kExitOk;
  return Fail(inv, grpc::Status(code, absl::StrJoin(failed, "; ")), err);
}

int RunSnapshot(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
                std::ostream& out, std::ostream& err) {
  adminpb::CreateSnapshotResponse created;
  adminpb::ListSnapshotsResponse listed;
  const bool create = inv.command == Command::kSnapshotCreate;
  // Not resent elsewhere: a snapshot is of one node's state, the one the operator named.
  grpc::Status status = CallWithFailover(
      inv.options, creds, /*is_write=*/true,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        auto stub = adminpb::Admin::NewStub(channel);
        return create ? stub->CreateSnapshot(context, adminpb::CreateSnapshotRequest(), &created)
                      : stub->ListSnapshots(context, adminpb::ListSnapshotsRequest(), &listed);
      });
  if (!status.ok()) return Fail(inv, status, err);
  if (create) {
    out << (inv.options.json ? absl::StrCat("{\"index\":", created.index(), "}\n")
                             : absl::StrCat("snapshot at index ", created.index(), "\n"));
    return kExitOk;
  }
  if (inv.options.json) {
    std::vector<std::string> items;
    for (const adminpb::SnapshotInfo& i : listed.snapshots()) {
      items.push_back(absl::StrCat("{\"index\":", i.index(), ",\"checkpoint_bytes\":",
                                   i.checkpoint_bytes(), ",\"file_bytes\":", i.file_bytes(), "}"));
    }
    out << "{\"snapshots\":[" << absl::StrJoin(items, ",") << "],\"snapshot_index\":"
        << listed.snapshot_index() << ",\"first_log_index\":" << listed.first_log_index()
        << "}\n";
    return kExitOk;
  }
  for (const adminpb::SnapshotInfo& i : listed.snapshots()) {
    out << i.index() << " " << i.checkpoint_bytes() << " " << i.file_bytes() << "\n";
  }
  out << "snapshot_index " << listed.snapshot_index() << "\nfirst_log_index "
      << listed.first_log_index() << "\n";
  return kExitOk;
}

// member list is a read (another endpoint is tried on UNAVAILABLE); the changes are writes,
// never resent once an endpoint may have received them (a second add would add two members).
int RunMember(const Invocation& inv, const std::shared_ptr<grpc::ChannelCredentials>& creds,
              std::ostream& out, std::ostream& err) {
  etcdserverpb::MemberListResponse listed;
  etcdserverpb::MemberAddResponse added;
  etcdserverpb::MemberRemoveResponse removed;
  etcdserverpb::MemberUpdateResponse updated;
  etcdserverpb::MemberPromoteResponse promoted;
  const Command c = inv.command;
  grpc::Status status = CallWithFailover(
      inv.options, creds, /*is_write=*/c != Command::kMemberList,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* context) {
        auto stub = etcdserverpb::Cluster::NewStub(channel);
        if (c == Command::kMemberAdd) {
          etcdserverpb::MemberAddRequest request;
          for (const std::string& url : inv.peer_urls) request.add_peerurls(url);
          request.set_islearner(inv.learner);
          return stub->MemberAdd(context, request, &added);
        }
        if (c == Command::kMemberRemove) {
          etcdserverpb::MemberRemoveRequest request;
          request.set_id(inv.member_id);
          return stub->MemberRemove(context, request, &removed);
        }
        if (c == Command::kMemberUpdate) {
          etcdserverpb::MemberUpdateRequest request;
          request.set_id(inv.member_id);
          for (const std::string& url : inv.peer_urls) request.add_peerurls(url);
          return stub->MemberUpdate(context, request, &updated);
        }
        if (c == Command::kMemberPromote) {
          etcdserverpb::MemberPromoteRequest request;
          request.set_id(inv.member_id);
          return stub->MemberPromote(context, request, &promoted);
        }
        return stub->MemberList(context, etcdserverpb::MemberListRequest(), &listed);
      });
  if (!status.ok()) return Fail(inv, status, err);
  const bool json = inv.options.json;
  const uint64_t id = inv.member_id;
  switch (c) {
    case Command::kMemberAdd: out << FormatMemberAdded(added, json); break;
    case Command::kMemberRemove:
      out << FormatMemberChanged("removed from", id, removed.header(), removed.members(), json);
      break;
    case Command::kMemberUpdate:
      out << FormatMemberChanged("updated in", id, updated.header(), updated.members(), json);
      break;
    case Command::kMemberPromote:
      out << FormatMemberChanged("promoted in", id, promoted.header(), promoted.members(), json);
      break;
    default: out << FormatMemberList(listed, json); break;
  }
  return kExitOk;
}

}  // namespace

int Run(const Invocation& invocation, std::ostream& out, std::ostream& err) {
  if (invocation.command == Command::kHelp) {
    out << Usage();
    return kExitOk;
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> creds =
      Credentials(invocation.options);
  if (!creds.ok()) {
    err << "amaters-ctl: " << invocation.command_name << ": " << creds.status().message()
        << "\n";
    return kExitFailure;
  }
  switch (invocation.command) {
    case Command::kPut: return RunPut(invocation, *creds, out, err);
    case Command::kGet: return RunGet(invocation, *creds, out, err);
    case Command::kDel: return RunDel(invocation, *creds, out, err);
    case Command::kStatus: return RunStatus(invocation, *creds, out, err);
    case Command::kSnapshotCreate:
    case Command::kSnapshotList: return RunSnapshot(invocation, *creds, out, err);
    case Command::kMemberList:
    case Command::kMemberAdd:
    case Command::kMemberRemove:
    case Command::kMemberUpdate:
    case Command::kMemberPromote: return RunMember(invocation, *creds, out, err);
    case Command::kHelp: break;
  }
  return kExitOk;
}

int Main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Invocation> invocation = ParseArgs(args);
  if (!invocation.ok()) {
    err << "amaters-ctl: " << invocation.status().message() << " (see amaters-ctl --help)\n";
    return kExitUsage;
  }
  return Run(*invocation, out, err);
}

}  // namespace amaters::ctl
