// amaters.adminpb.Admin (proto/admin.proto) on the client port: the node's status and health,
// its recent alerts, and leadership transfer. Status and alerts come from the same providers
// as the admin HTTP port, so both always agree.
#ifndef AMATERS_SERVER_SERVICE_ADMIN_SERVICE_H_
#define AMATERS_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <functional>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "proto/admin.grpc.pb.h"
#include "server/admin/admin_server.h"
#include "server/runtime/runtime.h"
#include "server/service/etcd_handler.h"

namespace amaters::server {

class AdminService final : public adminpb::Admin::CallbackService {
 public:
  // `handler` admits (or, while draining, refuses) leadership transfers like client requests.
  AdminService(Runtime* runtime, EtcdHandler* handler, std::function<AdminStatus()> status,
               std::function<std::vector<AlertView>()> alerts)
      : runtime_(runtime),
        handler_(handler),
        status_(std::move(status)),
        alerts_(std::move(alerts)) {}

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const adminpb::StatusRequest* request,
                                   adminpb::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Alerts(grpc::CallbackServerContext* context,
                                   const adminpb::AlertsRequest* request,
                                   adminpb::AlertsResponse* response) override;
  grpc::ServerUnaryReactor* TransferLeadership(
      grpc::CallbackServerContext* context, const adminpb::TransferLeadershipRequest* request,
      adminpb::TransferLeadershipResponse* response) override;
  grpc::ServerUnaryReactor* CreateSnapshot(grpc::CallbackServerContext* context,
                                           const adminpb::CreateSnapshotRequest* request,
                                           adminpb::CreateSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* ListSnapshots(grpc::CallbackServerContext* context,
                                          const adminpb::ListSnapshotsRequest* request,
                                          adminpb::ListSnapshotsResponse* response) override;

 private:
  Runtime* const runtime_;
  EtcdHandler* const handler_;
  const std::function<AdminStatus()> status_;
  const std::function<std::vector<AlertView>()> alerts_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_ADMIN_SERVICE_H_
