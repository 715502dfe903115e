#include "server/runtime/peer_sender.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/admin/metrics.h"
#include "server/log.h"
#include "server/transport/codec.h"

namespace amaters::server {
namespace {

constexpr auto kBackoffMin = std::chrono::milliseconds(50);
constexpr auto kBackoffMax = std::chrono::milliseconds(1000);
// After Reconnect(), how long to wait for the channel's new connection before opening the
// stream (an RPC on a channel still in TRANSIENT_FAILURE fails at once). Bounds Stop() too.
constexpr auto kReconnectWait = std::chrono::milliseconds(500);

}  // namespace

PeerSender::PeerSender(raft::NodeId to, std::string address, PeerSenderOptions options,
                       Metrics* metrics)
    : to_(to), address_(std::move(address)), options_(std::move(options)), metrics_(metrics) {
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(kPeerMaxMessageBytes);
  args.SetMaxReceiveMessageSize(kPeerMaxMessageBytes);
  // Reconnect quickly after a peer restarts (the default backoff grows to two minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Notice a dead connection (a peer that vanished without closing) within seconds.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  std::shared_ptr<grpc::ChannelCredentials> creds =
      options_.credentials ? options_.credentials : grpc::InsecureChannelCredentials();
  channel_ = grpc::CreateCustomChannel(address_, creds, args);
  stub_ = peerpb::Peer::NewStub(channel_);
}

PeerSender::~PeerSender() { Stop(); }

void PeerSender::Start() { thread_ = std::thread([this] { Main(); }); }

void PeerSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    if (active_ != nullptr) active_->TryCancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerSender::Reconnect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    // Also while our stream still looks up: a restarted peer's new stream often arrives
    // before our next write finds the old one broken, and the flag then skips that backoff.
    reconnect_ = true;
  }
  // Ends the channel's own reconnect backoff: it dials at once.
  grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
  cv_.notify_all();
  if (!connected_.load()) {
    LogInfo("peer dialled us; reconnecting now", {F("peer", to_), F("address", address_)});
  }
}

void PeerSender::Send(std::vector<raft::Message> messages) {
  size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (raft::Message& m : messages) {
      if (queue_.size() >= options_.queue_max_messages) {
        ++dropped;
        continue;
      }
      queue_.push_back(std::move(m));
    }
  }
  if (dropped > 0 && metrics_ != nullptr) metrics_->IncPeerDropped(to_, dropped);
  if (dropped > 0) {
    LogDebug("peer queue full; messages dropped", {F("peer", to_), F("dropped", dropped)});
  }
  cv_.notify_one();
}

void PeerSender::Main() {
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<peerpb::Batch>> writer;
  peerpb::StreamAck ack;
  auto backoff = kBackoffMin;
  bool logged_down = false;
  std::vector<raft::Message> taken;
  while (true) {
    peerpb::Batch batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // An open stream waits for messages; without one, (re)connect at once even with nothing
      // to send, with an empty batch that introduces us (our client address), so that every
      // member knows every other member's address and reachability, leader or not.
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !writer; });
      if (stop_) break;
      // Take the messages out under the lock; encode them outside it, so that the loop
      // thread's Send never waits for a large batch to be encoded.
      size_t bytes = 0;
      while (!queue_.empty() && (taken.empty() || bytes < options_.batch_max_bytes)) {
        for (const raft::Entry& e : queue_.front().entries) bytes += e.PayloadSize();
        bytes += 64;  // the message's own fields, roughly
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (!writer) {
        ctx = std::make_unique<grpc::ClientContext>();
        active_ = ctx.get();
      }
    }
    batch.set_cluster_id(options_.cluster_id);
    batch.set_from(options_.from);
    batch.set_client_address(options_.client_address);
    for (const raft::Message& m : taken) ToProto(m, batch.add_messages());
    taken.clear();
    if (!writer) writer = stub_->Stream(ctx.get(), &ack);
    if (writer->Write(batch)) {
      if (metrics_ != nullptr) {
        metrics_->IncPeerSent(to_, static_cast<uint64_t>(batch.messages_size()));
      }
      if (!connected_.exchange(true)) {
        LogInfo("peer connected", {F("peer", to_), F("address", address_)});
      }
      logged_down = false;
      backoff = kBackoffMin;
      continue;
    }
    // The stream broke (peer down, restarted, refused us). Drop what is queued and retry later.
    const grpc::Status st = writer->Finish();
    writer.reset();
    size_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      active_ = nullptr;
      dropped = queue_.size() + static_cast<size_t>(batch.messages_size());
      queue_.clear();
    }
    ctx.reset();
    if (metrics_ != nullptr) metrics_->IncPeerDropped(to_, dropped);
    if (connected_.exchange(false) || !logged_down) {
      LogWarn("peer unreachable", {F("peer", to_), F("address", address_),
                                   F("error", absl::StrCat(st.error_code(), ": ",
                                                           st.error_message())),
                                   F("dropped", dropped)});
      logged_down = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, backoff, [&] { return stop_ || reconnect_; });
    if (stop_) break;
    if (reconnect_) {
      reconnect_ = false;
      backoff = kBackoffMin;
      lock.unlock();
      channel_->WaitForConnected(std::chrono::system_clock::now() + kReconnectWait);
      continue;
    }
    backoff = std::min(backoff * 2, kBackoffMax);
  }
  if (writer) {
    writer->WritesDone();
    writer->Finish();
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_ = nullptr;
}

}  // namespace amaters::server
