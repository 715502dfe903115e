// PeerSender: the outgoing half of the link to one peer. Raft messages for that peer wait in a
// bounded queue; one thread streams them in batches over a single gRPC client stream
// (peerpb.Peer/Stream) and reconnects with capped exponential backoff when the stream breaks.
//
// Loss is allowed by Raft (it retransmits), so the sender drops rather than blocks: a full
// queue drops the new messages, and a broken stream drops the queue (it is stale by the time the
// peer is back). Both are counted. Order is kept within a stream.
#ifndef AMATERS_SERVER_RUNTIME_PEER_SENDER_H_
#define AMATERS_SERVER_RUNTIME_PEER_SENDER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/raft/types.h"
#include "grpcpp/grpcpp.h"
#include "proto/peer.grpc.pb.h"

namespace amaters::server {

class Metrics;

struct PeerSenderOptions {
  uint64_t cluster_id = 0;
  raft::NodeId from = raft::kNone;
  std::string client_address;          // ours, told to the peer in every batch
  size_t queue_max_messages = 4096;    // `[network] peer_queue_max_messages`
  size_t batch_max_bytes = 16u << 20;  // encoded bytes per batch (at least one message)
  // Null: plaintext. Otherwise TLS (mTLS when it carries our certificate).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
};

// Largest gRPC message the peer port accepts: a batch of batch_max_bytes plus one entry of the
// node's largest size (an append carries at least one entry, whatever its size).
inline constexpr int kPeerMaxMessageBytes = 64 << 20;

class PeerSender {
 public:
  PeerSender(raft::NodeId to, std::string address, PeerSenderOptions options, Metrics* metrics);
  ~PeerSender();
  PeerSender(const PeerSender&) = delete;
  PeerSender& operator=(const PeerSender&) = delete;

  void Start();
  void Stop();  // idempotent; cancels the stream and joins

  void Send(std::vector<raft::Message> messages);
  // The peer just opened a stream to us, so it is up: if our stream to it is down, reconnect
  // now instead of after the rest of the backoff (ours and the channel's). A restarted peer
  // otherwise hears nothing from us for up to two backoff periods.
  void Reconnect();

  raft::NodeId id() const { return to_; }
  const std::string& address() const { return address_; }
  bool connected() const { return connected_.load(); }
  // For unary calls to this peer (Forward). Thread-safe.
  peerpb::Peer::Stub* stub() const { return stub_.get(); }

 private:
  void Main();

  const raft::NodeId to_;
  const std::string address_;
  const PeerSenderOptions options_;
  Metrics* const metrics_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<peerpb::Peer::Stub> stub_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<raft::Message> queue_;
  bool stop_ = false;
  bool reconnect_ = false;  // Reconnect() was called: end the backoff wait
  grpc::ClientContext* active_ = nullptr;  // the stream's context, to cancel it on Stop

  std::atomic<bool> connected_{false};
  std::thread thread_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_RUNTIME_PEER_SENDER_H_
