#include "server/service/watch_stream.h"

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "engine/base/check.h"
#include "server/etcd/convert.h"
#include "server/runtime/runtime.h"

namespace amaters::server {
namespace {

class WatchStream;

// What the runtime holds: forwards to the stream until the stream is gone.
class Sink final : public Runtime::WatchSink {
 public:
  explicit Sink(WatchStream* stream) : stream_(stream) {}
  bool Send(const kv::WatchResponse& response) override;
  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
  }

 private:
  std::mutex mu_;
  WatchStream* stream_;
};

class WatchStream final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  explicit WatchStream(EtcdHandler* handler)
      : handler_(handler), runtime_(handler->runtime()), sink_(std::make_shared<Sink>(this)) {
    stream_ = runtime_->OpenWatchStream(sink_);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the call ended
      std::lock_guard<std::mutex> lock(mu_);
      reading_done_ = true;
      MaybeFinishLocked();
      return;
    }
    Handle(request_);
    std::lock_guard<std::mutex> lock(mu_);
    // A client that does not read its responses is not read either: its requests (and the
    // answers they would queue) wait in gRPC's flow control.
    if (queue_.size() >= kMaxQueuedResponses) {
      read_paused_ = true;
      return;
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    AM_CHECK(writing_ && !queue_.empty(), "a write finished that was not started");
    writing_ = false;
    queue_.pop_front();
    if (!ok) {
      failed_ = true;
      queue_.clear();
    }
    if (blocked_ && queue_.size() <= kResumeQueuedResponses && !failed_) {
      blocked_ = false;
      runtime_->WatchResume(stream_);
    }
    if (read_paused_ && queue_.size() <= kResumeQueuedResponses && !failed_) {
      read_paused_ = false;
      StartRead(&request_);
    }
    WriteNextLocked();
    MaybeFinishLocked();
  }

  void OnDone() override {
    runtime_->CloseWatchStream(stream_);
    sink_->Detach();
    delete this;
  }

  // Apply thread (through Sink). False, and nothing queued, for events while the queue is full.
  bool Send(const kv::WatchResponse& r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (failed_ || finishing_) return true;  // the call is ending: nothing more to send
    if (!r.events.empty() && queue_.size() >= kMaxQueuedResponses) {
      blocked_ = true;
      return false;
    }
    bool fragment = false;
    if (r.created) {
      AM_CHECK(!pending_fragment_.empty(), "a created response no create asked for");
      fragment = pending_fragment_.front();
      pending_fragment_.pop_front();
      if (fragment && !r.canceled) fragmented_.insert(r.watch_id);
    } else {
      fragment = fragmented_.count(r.watch_id) != 0;
    }
    if (r.canceled) fragmented_.erase(r.watch_id);
    Enqueue(r, fragment);
    WriteNextLocked();
    return true;
  }

 private:
  void Handle(const etcdserverpb::WatchRequest& request) {
    switch (request.request_union_case()) {
      case etcdserverpb::WatchRequest::kCreateRequest: {
        {
          std::lock_guard<std::mutex> lock(mu_);
          pending_fragment_.push_back(request.create_request().fragment());
        }
        runtime_->WatchCreate(stream_, etcd::WatchCreateFromProto(request.create_request()));
        break;
      }
      case etcdserverpb::WatchRequest::kCancelRequest:
        runtime_->WatchCancel(stream_, request.cancel_request().watch_id());
        break;
      case etcdserverpb::WatchRequest::kProgressRequest: runtime_->WatchProgress(stream_); break;
      case etcdserverpb::WatchRequest::REQUEST_UNION_NOT_SET: break;  // etcd ignores it too
    }
  }

  // Converts `r` into one response, or, when `fragment` and it is too large, into fragments
  // of whole events, each within the request size limit (at least one event each).
  void Enqueue(const kv::WatchResponse& r, bool fragment) {
    etcdserverpb::WatchResponse whole;
    etcd::ToProto(r, handler_->HeaderInfo(), &whole);
    const size_t limit = handler_->limits().max_request_bytes;
    if (!fragment || whole.ByteSizeLong() <= limit || whole.events_size() <= 1) {
      queue_.push_back(std::move(whole));
      return;
    }
    etcdserverpb::WatchResponse piece = whole;
    piece.clear_events();
    const size_t empty = piece.ByteSizeLong();
    size_t size = empty;
    for (int i = 0; i < whole.events_size(); ++i) {
      const size_t event = whole.events(i).ByteSizeLong() + 8;  // + tag and length
      if (piece.events_size() > 0 && size + event > limit) {
        piece.set_fragment(true);
        queue_.push_back(piece);
        piece.clear_events();
        size = empty;
      }
      *piece.add_events() = whole.events(i);
      size += event;
    }
    piece.set_fragment(false);
    queue_.push_back(std::move(piece));
  }

  void WriteNextLocked() {
    if (writing_ || queue_.empty() || finishing_) return;
    writing_ = true;
    StartWrite(&queue_.front());
  }

  void MaybeFinishLocked() {
    if (finishing_ || writing_) return;
    if (failed_ || (reading_done_ && queue_.empty())) {
      finishing_ = true;
      Finish(grpc::Status::OK);
    }
  }

  EtcdHandler* const handler_;
  Runtime* const runtime_;
  const std::shared_ptr<Sink> sink_;
  kv::WatchStreamId stream_ = 0;
  etcdserverpb::WatchRequest request_;

  std::mutex mu_;
  std::deque<etcdserverpb::WatchResponse> queue_;  // front is being written when writing_
  std::deque<bool> pending_fragment_;  // `fragment` of creates not yet answered, in order
  std::set<kv::WatchId> fragmented_;   // watchers whose responses are fragmented
  bool writing_ = false;
  bool blocked_ = false;      // the hub was told the queue is full
  bool read_paused_ = false;  // no read started while the queue is full
  bool reading_done_ = false;
  bool failed_ = false;
  bool finishing_ = false;
};

bool Sink::Send(const kv::WatchResponse& response) {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_ == nullptr || stream_->Send(response);
}

}  // namespace

grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>*
WatchService::Watch(grpc::CallbackServerContext* /*context*/) {
  return new WatchStream(handler_);
}

}  // namespace amaters::server
