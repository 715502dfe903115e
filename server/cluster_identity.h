// Which cluster this node belongs to: the cluster id, kept in the data directory once known
// (docs/membership.md, "Starting a node").
//
//  - `[cluster] initial_cluster_state = "new"`: the id is derived from cluster_token and the
//    ids in `peers` (ClusterIdOf) on the first start and stored; later starts read it back, so
//    editing `peers` after membership changes never changes it.
//  - `"existing"`: on the first start the node asks the members in `peers` (Peer.Join) until
//    one answers, checks that the cluster's configuration lists it (etcdctl member add came
//    first) and stores the cluster's id; it never derives one of its own.
#ifndef AMATERS_SERVER_CLUSTER_IDENTITY_H_
#define AMATERS_SERVER_CLUSTER_IDENTITY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "server/config/config.h"
#include "server/runtime/runtime.h"

namespace amaters::server {

// The id a new cluster of `config` gets: a stable 64-bit hash of cluster_token and the peer ids.
uint64_t ClusterIdOf(const Config& config);

// <data_dir>/cluster_id (16 hex digits and a newline): nullopt when absent; kDataLoss when
// malformed.
absl::StatusOr<std::optional<uint64_t>> ReadClusterId(const std::string& data_dir);
// Writes it atomically (temporary file, fsync, rename, directory fsync).
absl::Status WriteClusterId(const std::string& data_dir, uint64_t id);

struct JoinOptions {
  std::string cluster_token;
  raft::NodeId self = raft::kNone;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  uint64_t timeout_ms = 30000;  // overall; each member is asked in turn until then
};

struct JoinAnswer {
  uint64_t cluster_id = 0;
  std::vector<RuntimePeer> members;  // with known peer addresses; `self` not included
};

// Asks `members` (Peer.Join) in turn for the cluster until one lists `self`. kFailedPrecondition
// at once when a member's cluster_token differs, and at the timeout when members answered but
// none listed `self`; kUnavailable when none answered by the timeout.
absl::StatusOr<JoinAnswer> AskToJoin(const std::vector<RuntimePeer>& members,
                                     const JoinOptions& options);

// The cluster id for this start, stored in data_dir when it was not (see above). For a joining
// node, members the cluster knows but `peers` did not list are added to `peers`.
absl::StatusOr<uint64_t> ResolveClusterId(const Config& config, const std::string& data_dir,
                                          const JoinOptions& join, std::vector<RuntimePeer>* peers);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_CLUSTER_IDENTITY_H_
