#include "server/service/etcd_service.h"

#include <chrono>

#include "server/service/snapshot_stream.h"

namespace amaters::server {
namespace {

// A Done callback that finishes the call and reports it to the observer.
EtcdHandler::Done Finisher(grpc::ServerUnaryReactor* reactor, const RequestObserver& observer,
                           const char* method) {
  const auto start = std::chrono::steady_clock::now();
  return [reactor, observer, method, start](grpc::Status status) {
    if (observer) {
      observer(method, status,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    reactor->Finish(status);
  };
}

}  // namespace

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Range(*request, response, Finisher(reactor, observer_, "Range"));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Put(*request, response, Finisher(reactor, observer_, "Put"));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->DeleteRange(*request, response, Finisher(reactor, observer_, "DeleteRange"));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context,
                                         const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Txn(*request, response, Finisher(reactor, observer_, "Txn"));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Compact(*request, response, Finisher(reactor, observer_, "Compact"));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest* /*request*/,
                                                     etcdserverpb::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Finisher(reactor, observer_, "Status")(handler_->Status(response));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Alarm(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::AlarmRequest* request,
                                                    etcdserverpb::AlarmResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Finisher(reactor, observer_, "Alarm")(handler_->Alarm(*request, response));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::Defragment(
    grpc::CallbackServerContext* context, const etcdserverpb::DefragmentRequest* /*request*/,
    etcdserverpb::DefragmentResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->Defragment(response, Finisher(reactor, observer_, "Defragment"));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::HashKV(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::HashKVRequest* request,
                                                     etcdserverpb::HashKVResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->HashKV(*request, response, Finisher(reactor, observer_, "HashKV"));
  return reactor;
}

grpc::ServerUnaryReactor* MaintenanceService::MoveLeader(
    grpc::CallbackServerContext* context, const etcdserverpb::MoveLeaderRequest* request,
    etcdserverpb::MoveLeaderResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->MoveLeader(*request, response, Finisher(reactor, observer_, "MoveLeader"));
  return reactor;
}

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* MaintenanceService::Snapshot(
    grpc::CallbackServerContext* /*context*/, const etcdserverpb::SnapshotRequest* /*request*/) {
  return StartSnapshotStream(handler_, observer_);
}

grpc::ServerUnaryReactor* ClusterService::MemberList(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberListRequest* /*request*/,
    etcdserverpb::MemberListResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Finisher(reactor, observer_, "MemberList")(handler_->MemberList(response));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->LeaseGrant(*request, response, Finisher(reactor, observer_, "LeaseGrant"));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(
    grpc::CallbackServerContext* context, const etcdserverpb::LeaseRevokeRequest* request,
    etcdserverpb::LeaseRevokeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->LeaseRevoke(*request, response, Finisher(reactor, observer_, "LeaseRevoke"));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(
    grpc::CallbackServerContext* context, const etcdserverpb::LeaseTimeToLiveRequest* request,
    etcdserverpb::LeaseTimeToLiveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->LeaseTimeToLive(*request, response, Finisher(reactor, observer_, "LeaseTimeToLive"));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(
    grpc::CallbackServerContext* context, const etcdserverpb::LeaseLeasesRequest* /*request*/,
    etcdserverpb::LeaseLeasesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  handler_->LeaseLeases(response, Finisher(reactor, observer_, "LeaseLeases"));
  return reactor;
}

namespace {

// One LeaseKeepAlive stream: read a request, answer it, read the next.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveReactor(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler), observer_(std::move(observer)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::OK);  // the client closed its side
    response_.Clear();
    const auto start = std::chrono::steady_clock::now();
    handler_->LeaseKeepAlive(request_, &response_, [this, start](grpc::Status status) {
      if (observer_) {
        observer_("LeaseKeepAlive", status,
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                      .count());
      }
      if (!status.ok()) return Finish(status);
      StartWrite(&response_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed"));
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  EtcdHandler* const handler_;
  const RequestObserver observer_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
};

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* /*context*/) {
  return new KeepAliveReactor(handler_, observer_);
}

#define AMATERS_MEMBER_METHOD(Name)                                                        \
  grpc::ServerUnaryReactor* ClusterService::Name(grpc::CallbackServerContext* context,      \
                                                 const etcdserverpb::Name##Request* request, \
                                                 etcdserverpb::Name##Response* response) {   \
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();                          \
    handler_->Name(*request, response, Finisher(reactor, observer_, #Name));                \
    return reactor;                                                                         \
  }
AMATERS_MEMBER_METHOD(MemberAdd)
AMATERS_MEMBER_METHOD(MemberRemove)
AMATERS_MEMBER_METHOD(MemberUpdate)
AMATERS_MEMBER_METHOD(MemberPromote)
#undef AMATERS_MEMBER_METHOD

}  // namespace amaters::server
