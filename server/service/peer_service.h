// The peer port's gRPC service (proto/peer.proto): Raft message streams from the other members,
// and client requests forwarded by followers to this node as leader.
//
// Every batch is checked before the engine sees it: it must come from this cluster (cluster_id)
// and from a member (Runtime::AcceptsPeer), and every message must decode (server/transport/codec.h). A
// stream that fails a check is ended with a clear status and logged; nothing of it reaches the
// node.
#ifndef AMATERS_SERVER_SERVICE_PEER_SERVICE_H_
#define AMATERS_SERVER_SERVICE_PEER_SERVICE_H_

#include <functional>
#include <set>
#include <string>

#include "grpcpp/grpcpp.h"
#include "proto/peer.grpc.pb.h"
#include "server/runtime/runtime.h"

namespace amaters::server {

class PeerService final : public peerpb::Peer::CallbackService {
 public:
  // Executes a forwarded request (server/service/etcd_handler.h) and calls `done` once with the
  // status and, when OK, the serialized response.
  using ForwardHandler = std::function<void(const peerpb::ForwardRequest& request,
                                            std::function<void(grpc::Status, std::string)> done)>;

  // `cluster_token`: ours ([cluster] cluster_token), which a joining node must share.
  PeerService(Runtime* runtime, ForwardHandler forward, std::string cluster_token);

  grpc::ServerReadReactor<peerpb::Batch>* Stream(grpc::CallbackServerContext* context,
                                                  peerpb::StreamAck* ack) override;
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context,
                                    const peerpb::ForwardRequest* request,
                                    peerpb::ForwardResponse* response) override;
  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* context,
                                 const peerpb::JoinRequest* request,
                                 peerpb::JoinResponse* response) override;

  // OK, or why a batch from `from` in cluster `cluster_id` is refused.
  grpc::Status CheckSender(uint64_t cluster_id, uint64_t from) const;
  Runtime* runtime() const { return runtime_; }

 private:
  Runtime* const runtime_;
  const ForwardHandler forward_;
  const std::string cluster_token_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_PEER_SERVICE_H_
