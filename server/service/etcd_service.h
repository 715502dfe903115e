// The client port's gRPC services with etcd's names (etcdserverpb.KV, .Maintenance, .Cluster,
// .Lease),
// on gRPC's callback API: no thread waits for Raft; each call finishes from the runtime's
// callback. The work is EtcdHandler's; these classes only adapt it and count requests.
#ifndef AMATERS_SERVER_SERVICE_ETCD_SERVICE_H_
#define AMATERS_SERVER_SERVICE_ETCD_SERVICE_H_

#include <functional>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/service/etcd_handler.h"

namespace amaters::server {

// Called once per finished request: method name ("Range", "Put", ...), status, seconds taken.
using RequestObserver = std::function<void(const char* method, const grpc::Status&, double)>;

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler), observer_(std::move(observer)) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context,
                                  const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context,
                                const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const etcdserverpb::DeleteRangeRequest* request,
                                        etcdserverpb::DeleteRangeResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context,
                                const etcdserverpb::TxnRequest* request,
                                etcdserverpb::TxnResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const etcdserverpb::CompactionRequest* request,
                                    etcdserverpb::CompactionResponse* response) override;

 private:
  EtcdHandler* const handler_;
  const RequestObserver observer_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  MaintenanceService(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler), observer_(std::move(observer)) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MoveLeaderRequest* request,
                                       etcdserverpb::MoveLeaderResponse* response) override;
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* context,
                                       const etcdserverpb::DefragmentRequest* request,
                                       etcdserverpb::DefragmentResponse* response) override;
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* context,
                                   const etcdserverpb::HashKVRequest* request,
                                   etcdserverpb::HashKVResponse* response) override;
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* context,
                                  const etcdserverpb::AlarmRequest* request,
                                  etcdserverpb::AlarmResponse* response) override;
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* context, const etcdserverpb::SnapshotRequest* request) override;

 private:
  EtcdHandler* const handler_;
  const RequestObserver observer_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  ClusterService(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler), observer_(std::move(observer)) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* context,
                                      const etcdserverpb::MemberAddRequest* request,
                                      etcdserverpb::MemberAddResponse* response) override;
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* context,
                                         const etcdserverpb::MemberRemoveRequest* request,
                                         etcdserverpb::MemberRemoveResponse* response) override;
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* context,
                                         const etcdserverpb::MemberUpdateRequest* request,
                                         etcdserverpb::MemberUpdateResponse* response) override;
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* context,
                                          const etcdserverpb::MemberPromoteRequest* request,
                                          etcdserverpb::MemberPromoteResponse* response) override;

 private:
  EtcdHandler* const handler_;
  const RequestObserver observer_;
};

// etcdserverpb.Lease. LeaseKeepAlive answers each request on its stream in order, one at a
// time: the next request is read once the previous answer is written, so a stream holds at
// most one request and one response.
class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  LeaseService(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler), observer_(std::move(observer)) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* context,
                                       const etcdserverpb::LeaseGrantRequest* request,
                                       etcdserverpb::LeaseGrantResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseRevokeRequest* request,
                                        etcdserverpb::LeaseRevokeResponse* response) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(
      grpc::CallbackServerContext* context, const etcdserverpb::LeaseTimeToLiveRequest* request,
      etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseLeasesRequest* request,
                                        etcdserverpb::LeaseLeasesResponse* response) override;
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* context) override;

 private:
  EtcdHandler* const handler_;
  const RequestObserver observer_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_ETCD_SERVICE_H_
