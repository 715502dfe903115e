#include "server/cluster_identity.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "proto/peer.grpc.pb.h"
#include "server/log.h"

namespace amaters::server {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

absl::Status FsyncPath(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("fsync", path);
}

// One Join call to `address`; the status of the call when it failed.
absl::StatusOr<peerpb::JoinResponse> AskOne(const std::string& address, const JoinOptions& o,
                                            uint64_t deadline_ms_from_now) {
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(
      address, o.credentials ? o.credentials : grpc::InsecureChannelCredentials());
  std::unique_ptr<peerpb::Peer::Stub> stub = peerpb::Peer::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(std::min<uint64_t>(2000, deadline_ms_from_now)));
  peerpb::JoinRequest request;
  request.set_cluster_token(o.cluster_token);
  request.set_from(o.self);
  peerpb::JoinResponse response;
  const grpc::Status s = stub->Join(&context, request, &response);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  return response;
}

absl::StatusOr<JoinAnswer> Accept(const peerpb::JoinResponse& r, const std::string& address,
                                  const JoinOptions& o) {
  JoinAnswer a;
  a.cluster_id = r.cluster_id();
  bool listed = false;
  std::vector<std::string> ids;
  for (const peerpb::JoinResponse::Member& m : r.members()) {
    ids.push_back(absl::StrCat(m.id(), m.learner() ? " (learner)" : ""));
    if (m.id() == o.self) {
      listed = true;
    } else if (!m.peer_address().empty()) {
      a.members.push_back({m.id(), m.peer_address()});
    }
  }
  if (!listed) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", o.self, " is not a member of the cluster that ", address, " belongs to (members: ",
        absl::StrJoin(ids, ", "), "): add it first with `etcdctl member add` and start this node "
        "with the member id that printed"));
  }
  return a;
}

}  // namespace

uint64_t ClusterIdOf(const Config& config) {
  std::vector<std::string> members;
  for (const PeerAddress& p : config.cluster.peers) members.push_back(absl::StrCat(p.id));
  if (members.empty()) members.push_back(absl::StrCat(config.cluster.node_id));
  std::sort(members.begin(), members.end());
  const std::string text =
      absl::StrCat(config.cluster.cluster_token, "/", absl::StrJoin(members, ","));
  // Two CRCs of different salts make a stable 64-bit id (absl::Hash is not stable across runs).
  const uint64_t hi = amaters::Crc32c(text);
  const uint64_t lo = amaters::Crc32c(absl::StrCat("amaters-cluster:", text));
  return (hi << 32) | lo;
}

absl::StatusOr<std::optional<uint64_t>> ReadClusterId(const std::string& data_dir) {
  const std::string path = data_dir + "/cluster_id";
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT || !std::filesystem::exists(path)) return std::optional<uint64_t>();
    return Errno("open", path);
  }
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  absl::string_view s = all;
  uint64_t id = 0;
  if (!absl::ConsumeSuffix(&s, "\n")) {
    return absl::DataLossError(absl::StrCat(path, ": not a cluster id line (torn write?)"));
  }
  if (s.size() != 16 || !absl::SimpleHexAtoi(s, &id) || id == 0) {
    return absl::DataLossError(absl::StrCat(path, ": \"", s, "\" is not a cluster id"));
  }
  return std::optional<uint64_t>(id);
}

absl::Status WriteClusterId(const std::string& data_dir, uint64_t id) {
  AM_CHECK(id != 0, "cluster id 0");
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", data_dir, ": ", ec.message()));
  const std::string path = data_dir + "/cluster_id";
  const std::string tmp = path + ".tmp";
  const std::string line = absl::StrCat(absl::Hex(id, absl::kZeroPad16), "\n");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << line;
    out.close();
    if (!out) return Errno("write", tmp);
  }
  if (absl::Status s = FsyncPath(tmp, O_RDONLY); !s.ok()) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", tmp);
  return FsyncPath(data_dir, O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<JoinAnswer> AskToJoin(const std::vector<RuntimePeer>& members,
                                     const JoinOptions& options) {
  AM_CHECK(!members.empty(), "nobody to ask");
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - start)
                                     .count());
  };
  std::string last_error;
  absl::Status refused;  // a member that does not list this node (yet): ask the others too
  for (size_t attempt = 0; elapsed_ms() < options.timeout_ms; ++attempt) {
    const RuntimePeer& m = members[attempt % members.size()];
    absl::StatusOr<peerpb::JoinResponse> r = AskOne(m.address, options,
                                                    options.timeout_ms - elapsed_ms());
    absl::Status s = r.status();
    if (r.ok()) {
      absl::StatusOr<JoinAnswer> a = Accept(*r, m.address, options);
      if (a.ok()) return a;
      // It may not have applied `member add` yet.
      s = refused = a.status();
    } else if (s.code() == absl::StatusCode::kFailedPrecondition) {
      return s;  // another cluster (token)
    }
    last_error = absl::StrCat(m.address, ": ", s.message());
    LogInfo("asking a member for the cluster to join", {F("member", m.id),
                                                        F("address", m.address),
                                                        F("error", s.ToString())});
    if ((attempt + 1) % members.size() == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  if (!refused.ok()) return refused;
  return absl::UnavailableError(absl::StrCat(
      "initial_cluster_state = \"existing\": no member in [cluster] peers answered within ",
      options.timeout_ms, " ms (last: ", last_error, "); a node started as \"existing\" never "
      "bootstraps a cluster of its own"));
}

absl::StatusOr<uint64_t> ResolveClusterId(const Config& config, const std::string& data_dir,
                                          const JoinOptions& join,
                                          std::vector<RuntimePeer>* peers) {
  std::error_code ec;
  if (std::filesystem::exists(data_dir, ec) && !std::filesystem::is_directory(data_dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(data_dir, " exists and is not a directory"));
  }
  absl::StatusOr<std::optional<uint64_t>> stored = ReadClusterId(data_dir);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) return **stored;
  uint64_t id = 0;
  if (config.cluster.initial_cluster_state == "existing") {
    absl::StatusOr<JoinAnswer> answer = AskToJoin(*peers, join);
    if (!answer.ok()) return answer.status();
    for (const RuntimePeer& m : answer->members) {
      auto same = [&m](const RuntimePeer& p) { return p.id == m.id; };
      if (std::none_of(peers->begin(), peers->end(), same)) peers->push_back(m);
    }
    id = answer->cluster_id;
    LogInfo("joining cluster", {F("cluster_id", absl::StrCat(absl::Hex(id))),
                                F("members", answer->members.size())});
  } else {
    id = ClusterIdOf(config);
  }
  if (absl::Status s = WriteClusterId(data_dir, id); !s.ok()) return s;
  return id;
}

}  // namespace amaters::server
