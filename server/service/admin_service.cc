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
  }
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

}  // namespace amaters::server
