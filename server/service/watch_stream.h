// etcd's Watch service: one bidirectional stream per call (`etcdctl watch`, clientv3's
// Watcher). The client creates and cancels watchers and asks for progress on it; the runtime's
// watch hub (engine/kv/watch.h, on the apply thread) answers, and its responses are written
// back in order through a bounded queue (docs/watch.md):
//  - at most kMaxQueuedResponses responses with events wait to be written; one more is refused
//    and handed back to the hub, which stops sending the stream events: its watchers fall
//    behind and, once the client has read the queue down to kResumeQueuedResponses, they
//    catch up from the history. While the queue is full the stream reads no requests either,
//    so a client that never reads costs the server a bounded queue, never unbounded memory.
//  - a watcher created with `fragment` gets a response whose encoding exceeds the request size
//    limit (server.max_request_bytes) split into several, each marked `fragment` but the last.
// The stream ends when the client closes its side or cancels the call; its watchers go.
#ifndef AMATERS_SERVER_SERVICE_WATCH_STREAM_H_
#define AMATERS_SERVER_SERVICE_WATCH_STREAM_H_

#include <cstddef>

#include "grpcpp/grpcpp.h"
#include "proto/etcd/rpc.grpc.pb.h"
#include "server/service/etcd_handler.h"

namespace amaters::server {

inline constexpr size_t kMaxQueuedResponses = 128;
inline constexpr size_t kResumeQueuedResponses = 32;

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(EtcdHandler* handler) : handler_(handler) {}
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* context) override;

 private:
  EtcdHandler* const handler_;
};

}  // namespace amaters::server

#endif  // AMATERS_SERVER_SERVICE_WATCH_STREAM_H_
