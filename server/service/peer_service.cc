#include "server/service/peer_service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/admin/metrics.h"
#include "server/log.h"
#include "server/transport/codec.h"

namespace amaters::server {
namespace {

class StreamReactor final : public grpc::ServerReadReactor<peerpb::Batch> {
 public:
  StreamReactor(PeerService* service, std::string peer)
      : service_(service), peer_(std::move(peer)) {
    StartRead(&batch_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the sender closed the stream (or it broke)
      Finish(grpc::Status::OK);
      return;
    }
    grpc::Status check = service_->CheckSender(batch_.cluster_id(), batch_.from());
    if (!check.ok()) {
      LogWarn("peer stream refused", {F("remote", peer_), F("error", check.error_message())});
      Finish(check);
      return;
    }
    std::vector<raft::Message> messages;
    messages.reserve(static_cast<size_t>(batch_.messages_size()));
    for (const peerpb::Message& pm : batch_.messages()) {
      absl::StatusOr<raft::Message> m = FromProto(pm);
      if (!m.ok()) {
        LogWarn("peer stream refused: undecodable message",
                {F("remote", peer_), F("from", batch_.from()), F("error", m.status().ToString())});
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(m.status().message())));
        return;
      }
      if (m->from != batch_.from()) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("message from ", m->from, " in a batch from ",
                                         batch_.from())));
        return;
      }
      messages.push_back(*std::move(m));
    }
    if (!batch_.client_address().empty()) {
      service_->runtime()->LearnClientAddress(batch_.from(), batch_.client_address());
    }
    if (first_batch_) {
      // The peer is up and reaches us: our own link to it need not wait out its backoff.
      first_batch_ = false;
      service_->runtime()->PeerDialedUs(batch_.from());
    }
    if (Metrics* metrics = service_->runtime()->options().metrics) {
      metrics->IncPeerReceived(messages.size());
    }
    if (!messages.empty()) Deliver(std::move(messages));
    batch_.Clear();
    StartRead(&batch_);
  }

  void OnDone() override { delete this; }

 private:
  void Deliver(std::vector<raft::Message> messages) {
    Runtime* runtime = service_->runtime();
    TestFaults* faults = runtime->options().test_faults;
    if (faults != nullptr) {
      const TestFaults::Deliver later = [runtime](std::vector<raft::Message> m) {
        runtime->Deliver(std::move(m));
      };
      if (!faults->TakeBatch(batch_.from(), messages, later)) return;
    }
    runtime->Deliver(std::move(messages));
  }

  PeerService* const service_;
  const std::string peer_;
  peerpb::Batch batch_;
  bool first_batch_ = true;
};

}  // namespace

PeerService::PeerService(Runtime* runtime, ForwardHandler forward, std::string cluster_token)
    : runtime_(runtime), forward_(std::move(forward)), cluster_token_(std::move(cluster_token)) {}

grpc::Status PeerService::CheckSender(uint64_t cluster_id, uint64_t from) const {
  if (cluster_id != runtime_->options().cluster_id) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        absl::StrCat("cluster id mismatch: ours is ", runtime_->options().cluster_id,
                                     ", the sender's is ", cluster_id,
                                     " (check [cluster] peers and cluster_token on every node)"));
  }
  if (!runtime_->AcceptsPeer(from)) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        absl::StrCat("node ", from, " is not a member of this cluster"));
  }
  return grpc::Status::OK;
}

grpc::ServerReadReactor<peerpb::Batch>* PeerService::Stream(grpc::CallbackServerContext* context,
                                                            peerpb::StreamAck* /*ack*/) {
  return new StreamReactor(this, context->peer());
}

grpc::ServerUnaryReactor* PeerService::Forward(grpc::CallbackServerContext* context,
                                               const peerpb::ForwardRequest* request,
                                               peerpb::ForwardResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status check = CheckSender(request->cluster_id(), request->from());
  if (!check.ok()) {
    reactor->Finish(check);
    return reactor;
  }
  if (TestFaults* faults = runtime_->options().test_faults;
      faults != nullptr && !faults->Reachable(request->from())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "link cut by a chaos fault"));
    return reactor;
  }
  forward_(*request, [reactor, response](grpc::Status status, std::string bytes) {
    if (status.ok()) response->set_response(std::move(bytes));
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerUnaryReactor* PeerService::Join(grpc::CallbackServerContext* context,
                                            const peerpb::JoinRequest* request,
                                            peerpb::JoinResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (request->cluster_token() != cluster_token_) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("cluster token mismatch: ours is \"", cluster_token_, "\", node ",
                     request->from(), " has \"", request->cluster_token(), "\"")));
    return reactor;
  }
  const RuntimeStatus s = runtime_->status();
  response->set_cluster_id(runtime_->options().cluster_id);
  auto add = [&](raft::NodeId id, const std::string& address, bool learner) {
    peerpb::JoinResponse::Member* m = response->add_members();
    m->set_id(id);
    m->set_peer_address(address);
    m->set_learner(learner);
  };
  auto is_member = [&s](raft::NodeId id) {
    for (const auto* set : {&s.voters, &s.voters_outgoing, &s.learners}) {
      if (std::binary_search(set->begin(), set->end(), id)) return true;
    }
    return false;
  };
  if (is_member(s.node_id)) {
    add(s.node_id, runtime_->options().peer_address,
        std::binary_search(s.learners.begin(), s.learners.end(), s.node_id));
  }
  for (const RuntimeStatus::Peer& p : s.peers) {
    if (is_member(p.id)) add(p.id, p.address, p.learner);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace amaters::server
