// EtcdHandler: executes etcd v3 client requests (proto/etcd/rpc.proto) on the runtime.
//
// The gRPC services (etcd_service.h) and the peer port's Forward call both end here, so a
// request behaves the same whether a client sent it to the leader or a follower forwarded it:
//   1. limits: the encoded request may not exceed `max_request_bytes` (etcd's "request is too
//      large"); keys and values their own limits (server/etcd/convert.h) — INVALID_ARGUMENT;
//   2. writes (Put, DeleteRange, Txn) become one kv::Command proposed through Raft; the reply
//      comes after the local state machine applied it;
//   3. reads (Range) are linearizable (ReadIndex) unless `serializable` is set; any member
//      serves them;
//   4. a write that reaches a follower is forwarded once to the leader's peer port; a forwarded
//      request is never forwarded again (UNAVAILABLE with the leader's id if leadership moved);
//   5. overload (too many requests pending on this node) is RESOURCE_EXHAUSTED, no leader by the
//      request deadline UNAVAILABLE ("etcdserver: request timed out").
// Callbacks (`done`) are called exactly once, from a runtime or gRPC thread.
#ifndef AMATERS_SERVER_SERVICE_ETCD_HANDLER_H_
#define AMATERS_SERVER_SERVICE_ETCD_HANDLER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/peer.pb.h"
#include "server/etcd/convert.h"
#include "server/runtime/runtime.h"

namespace amaters::server {

struct HandlerLimits {
  uint64_t max_request_bytes = 1572864;
  uint64_t max_key_bytes = 4096;
  uint64_t max_value_bytes = 1048576;
  uint64_t request_timeout_ms = 5000;  // for forwarded calls
  // Requests accepted and not yet answered (every kind, forwarded ones included); beyond it a
  // request fails at once with RESOURCE_EXHAUSTED "etcdserver: too many requests".
  uint64_t max_inflight_requests = 10000;
};

// absl::Status -> grpc::Status (the code numbers are the same).
grpc::Status ToGrpc(const absl::Status& status);

class EtcdHandler {
 public:
  using Done = std::function<void(grpc::Status)>;

  // `url_scheme` ("http" or "https") prefixes the member URLs of MemberList.
  EtcdHandler(Runtime* runtime, std::string version, std::string data_dir, std::string url_scheme);

  void SetLimits(const HandlerLimits& limits);  // SIGHUP
  HandlerLimits limits() const;

  // Graceful shutdown: from now on new requests fail with UNAVAILABLE ("server is shutting
  // down"; clients retry another member); inflight() counts accepted requests not yet answered.
  void StartDraining() { draining_.store(true); }
  // Health's write gate: while `gate` is not OK, writes (Put, DeleteRange, Txn) fail with it
  // (e.g. RESOURCE_EXHAUSTED "disk nearly full ..."); reads are served.
  void SetWriteGate(absl::Status gate);
  int64_t inflight() const { return inflight_.load(); }

  void Range(const etcdserverpb::RangeRequest& request, etcdserverpb::RangeResponse* response,
             Done done);
  void Put(const etcdserverpb::PutRequest& request, etcdserverpb::PutResponse* response,
           Done done, bool forwarded = false);
  void DeleteRange(const etcdserverpb::DeleteRangeRequest& request,
                   etcdserverpb::DeleteRangeResponse* response, Done done,
                   bool forwarded = false);
  void Txn(const etcdserverpb::TxnRequest& request, etcdserverpb::TxnResponse* response,
           Done done, bool forwarded = false);
  // etcd's Compact: replicated like a write; served under the write gate too (compacting is
  // how space is given back, as etcd allows it under a NOSPACE alarm).
  void Compact(const etcdserverpb::CompactionRequest& request,
               etcdserverpb::CompactionResponse* response, Done done, bool forwarded = false);
  grpc::Status Status(etcdserverpb::StatusResponse* response);
  grpc::Status MemberList(etcdserverpb::MemberListResponse* response);
  // etcd's Maintenance.Alarm for this member: GET lists NOSPACE while the write gate refuses
  // writes for lack of disk space (RESOURCE_EXHAUSTED); DEACTIVATE of a NOSPACE that is still
  // true is FAILED_PRECONDITION (it ends by itself once there is room), otherwise a no-op;
  // ACTIVATE is INVALID_ARGUMENT (only the disk-space probe raises alarms).
  grpc::Status Alarm(const etcdserverpb::AlarmRequest& request,
                     etcdserverpb::AlarmResponse* response);
  // Membership changes (docs/membership.md), executed by the leader (a follower forwards them):
  // each becomes one configuration change; the reply comes once it is applied here, with the
  // members of the configuration it led to. etcd's errors: NOT_FOUND "etcdserver: member not
  // found", FAILED_PRECONDITION "etcdserver: Peer URLs already exists", "etcdserver: can only
  // promote a learner member", "etcdserver: can only promote a learner member which is in sync
  // with leader"; INVALID_ARGUMENT for a malformed peer URL.
  void MemberAdd(const etcdserverpb::MemberAddRequest& request,
                 etcdserverpb::MemberAddResponse* response, Done done, bool forwarded = false);
  void MemberRemove(const etcdserverpb::MemberRemoveRequest& request,
                    etcdserverpb::MemberRemoveResponse* response, Done done,
                    bool forwarded = false);
  void MemberUpdate(const etcdserverpb::MemberUpdateRequest& request,
                    etcdserverpb::MemberUpdateResponse* response, Done done,
                    bool forwarded = false);
  void MemberPromote(const etcdserverpb::MemberPromoteRequest& request,
                     etcdserverpb::MemberPromoteResponse* response, Done done,
                     bool forwarded = false);
  void MoveLeader(const etcdserverpb::MoveLeaderRequest& request,
                  etcdserverpb::MoveLeaderResponse* response, Done done);
  void Defragment(etcdserverpb::DefragmentResponse* response, Done done);
  void HashKV(const etcdserverpb::HashKVRequest& request, etcdserverpb::HashKVResponse* response,
              Done done);
  // etcd's Lease service (docs/leases.md). Grants and revokes are replicated writes (a follower
  // forwards them); a grant without an ID gets a random one, and a TTL below the minimum is
  // raised to it. Keep-alives and time-to-live are answered by the leader's Lessor (a follower
  // forwards them); a keep-alive first confirms leadership with a quorum (a ReadIndex round),
  // so that a deposed leader cannot acknowledge one. A keep-alive of a lease that does not
  // exist answers TTL 0, a time-to-live TTL -1 (as etcd). LeaseLeases lists this member's
  // applied leases.
  void LeaseGrant(const etcdserverpb::LeaseGrantRequest& request,
                  etcdserverpb::LeaseGrantResponse* response, Done done, bool forwarded = false);
  void LeaseRevoke(const etcdserverpb::LeaseRevokeRequest& request,
                   etcdserverpb::LeaseRevokeResponse* response, Done done,
                   bool forwarded = false);
  void LeaseKeepAlive(const etcdserverpb::LeaseKeepAliveRequest& request,
                      etcdserverpb::LeaseKeepAliveResponse* response, Done done,
                      bool forwarded = false);
  void LeaseTimeToLive(const etcdserverpb::LeaseTimeToLiveRequest& request,
                       etcdserverpb::LeaseTimeToLiveResponse* response, Done done,
                       bool forwarded = false);
  void LeaseLeases(etcdserverpb::LeaseLeasesResponse* response, Done done);
  // For Maintenance.Snapshot (snapshot_stream.h).
  Runtime* runtime() const { return runtime_; }
  // The header fields the state machine does not know: cluster, this member, its term.
  etcd::HeaderInfo HeaderInfo() const;
  const std::string& data_dir() const { return data_dir_; }
  void SnapshotHeader(etcdserverpb::ResponseHeader* header) const;

  // The peer port's Forward: decodes, executes as leader (no further forwarding), encodes.
  void HandleForward(const peerpb::ForwardRequest& request,
                     std::function<void(grpc::Status, std::string)> done);

 private:
  // Counts `done` in inflight() until it runs; nullopt (after answering) while draining or
  // when max_inflight_requests are in flight.
  std::optional<Done> Admit(Done done);
  // Admit, then the request-size limit (etcd's "request is too large"): the callback to
  // answer with and the key/value limits, or nullopt once answered.
  struct Admitted {
    Done done;
    etcd::Limits limits;
  };
  std::optional<Admitted> Begin(const google::protobuf::Message& request, Done done_in);
  void Header(int64_t revision, etcdserverpb::ResponseHeader* header) const;
  // Proposes `command`; on success `fill` writes the response. A follower forwards `request`.
  void Write(peerpb::ForwardRequest::Method method, const google::protobuf::Message& request,
             google::protobuf::Message* response, absl::StatusOr<kv::Command> command,
             std::function<void(const kv::CommandResponse&)> fill, Done done, bool forwarded);
  // Builds the change on the leader (a follower forwards `request` at once); `fill` writes the
  // response from the configuration the change led to.
  using ChangeBuilder = std::function<absl::StatusOr<raft::ConfChange>(const RuntimeStatus&)>;
  using ChangeFiller = std::function<void(const raft::Configuration&)>;
  void ChangeMembers(peerpb::ForwardRequest::Method method, const google::protobuf::Message& request,
                     google::protobuf::Message* response, ChangeBuilder build, ChangeFiller fill,
                     Done done, bool forwarded);
  // Members of `conf` as etcd lists them (ids ascending).
  void FillMembers(const raft::Configuration& conf,
                   google::protobuf::RepeatedPtrField<etcdserverpb::Member>* out) const;
  // The peer address (host:port) this node knows for member `id` ("" if none).
  std::string KnownPeerAddress(const RuntimeStatus& s, raft::NodeId id) const;
  // The peer addresses (host:port) members other than `except` listen on, as far as known.
  std::vector<std::string> TakenPeerAddresses(const RuntimeStatus& s,
                                              const raft::Configuration& conf,
                                              raft::NodeId except) const;
  // Runs `local` when this member leads; otherwise forwards `request` to the leader (once:
  // a forwarded request that finds no leader here is UNAVAILABLE).
  void OnLeader(peerpb::ForwardRequest::Method method, const google::protobuf::Message& request,
                google::protobuf::Message* response, Done done, bool forwarded,
                std::function<void(Done)> local);
  // A random positive lease ID.
  int64_t NewLeaseId();
  // Forwards `request` to `leader`'s peer port. Writes wait for the leader's channel to be
  // ready within the request timeout (it may have just come back); keep-alives and
  // time-to-live (`fail_fast`) fail at once when it is unreachable and get kLeaseForwardMs: the
  // client sends again, by then to the new leader, before its lease runs out.
  void ForwardTo(raft::NodeId leader, peerpb::ForwardRequest::Method method,
                 const google::protobuf::Message& request, google::protobuf::Message* response,
                 Done done, bool fail_fast = false);
  static constexpr uint64_t kLeaseForwardMs = 1000;

  Runtime* const runtime_;
  const std::string version_;
  const std::string data_dir_;
  const std::string url_scheme_;
  mutable std::mutex mu_;
  HandlerLimits limits_;
  std::atomic<bool> draining_{false};
  absl::Status write_gate_;  // guarded by mu_
  std::atomic<int64_t> inflight_{0};
  std::mt19937_64 lease_ids_;  // guarded by mu_
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_ETCD_HANDLER_H_
