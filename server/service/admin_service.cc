#include "server/service/admin_service.h"

#include "server/service/etcd_handler.h"

namespace amaters::server {

grpc::ServerUnaryReactor* AdminService::Status(grpc::CallbackServerContext* context,
                                               const adminpb::StatusRequest* /*request*/,
                                               adminpb::StatusResponse* response) {
  const AdminStatus s = status_();
  response->set_node_id(s.node_id);
  response->set_role(s.role);
  response->set_leader_id(s.leader_id);
  response->set_term(s.term);
  response->set_commit_index(s.commit_index);
  response->set_last_log_index(s.last_log_index);
  response->set_applied_index(s.applied_index);
  response->set_num_nodes(s.num_nodes);
  for (const PeerStatus& p : s.peers) {
    adminpb::PeerProgress* pp = response->add_peers();
    pp->set_id(p.id);
    pp->set_match(p.match);
    pp->set_next(p.next);
    pp->set_connected(p.connected);
    pp->set_lag(p.lag);
    pp->set_learner(p.learner);
  }
  for (uint64_t v : s.voters) response->add_voters(v);
  for (uint64_t v : s.voters_outgoing) response->add_voters_outgoing(v);
  for (uint64_t v : s.learners) response->add_learners(v);
  response->set_health(s.health);
  response->set_ready(s.ready);
  response->set_version(s.version);
  for (const auto& [name, detail] : s.health_detail) (*response->mutable_health_detail())[name] = detail;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Alerts(grpc::CallbackServerContext* context,
                                               const adminpb::AlertsRequest* /*request*/,
                                               adminpb::AlertsResponse* response) {
  for (const AlertView& a : alerts_()) {
    adminpb::Alert* out = response->add_alerts();
    out->set_rule(a.rule);
    out->set_severity(a.severity);
    out->set_dedup_key(a.dedup_key);
    out->set_fired_at(a.fired_at);
    out->set_message(a.message);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::TransferLeadership(
    grpc::CallbackServerContext* context, const adminpb::TransferLeadershipRequest* request,
    adminpb::TransferLeadershipResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcdserverpb::MoveLeaderRequest move;
  move.set_targetid(request->target());
  auto moved = std::make_shared<etcdserverpb::MoveLeaderResponse>();
  // The same path as etcd's Maintenance.MoveLeader (admission, draining, the runtime).
  handler_->MoveLeader(move, moved.get(),
                       [this, reactor, response, moved, target = request->target()](
                           grpc::Status s) {
                         if (s.ok()) {
                           response->set_leader_id(target);
                           response->set_term(runtime_->term());
                         }
                         reactor->Finish(s);
                       });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreateSnapshot(
    grpc::CallbackServerContext* context, const adminpb::CreateSnapshotRequest* /*request*/,
    adminpb::CreateSnapshotResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  runtime_->SnapshotNow([reactor, response](absl::StatusOr<uint64_t> index) {
    if (!index.ok()) {
      reactor->Finish(ToGrpc(index.status()));
      return;
    }
    response->set_index(*index);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::ListSnapshots(
    grpc::CallbackServerContext* context, const adminpb::ListSnapshotsRequest* /*request*/,
    adminpb::ListSnapshotsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const RuntimeStatus status = runtime_->status();
  response->set_snapshot_index(status.snapshot_index);
  response->set_first_log_index(status.first_log_index);
  runtime_->ListSnapshots(
      [reactor, response](absl::StatusOr<std::vector<Runtime::SnapshotInfo>> kept) {
        if (!kept.ok()) {
          reactor->Finish(ToGrpc(kept.status()));
          return;
        }
        for (const Runtime::SnapshotInfo& k : *kept) {
          adminpb::SnapshotInfo* info = response->add_snapshots();
          info->set_index(k.index);
          info->set_checkpoint_bytes(k.checkpoint_bytes);
          info->set_file_bytes(k.file_bytes);
        }
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace amaters::server
