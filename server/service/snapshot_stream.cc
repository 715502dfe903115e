#include "server/service/snapshot_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "openssl/evp.h"
#include "server/log.h"
#include "server/runtime/runtime.h"
#include "server/storage/rocksdb_state_machine.h"

namespace amaters::server {
namespace {

constexpr size_t kPieceBytes = 1 << 20;
std::atomic<uint64_t> export_counter{0};

class SnapshotStream final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotStream(EtcdHandler* handler, RequestObserver observer)
      : handler_(handler),
        observer_(std::move(observer)),
        start_(std::chrono::steady_clock::now()),
        path_(absl::StrCat(handler->data_dir(), "/snap/export-", ::getpid(), "-",
                           export_counter.fetch_add(1), ".tmp")) {
    worker_ = std::thread([this] { Export(); });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Done(grpc::Status(grpc::StatusCode::CANCELLED, "the client stopped reading"));
      return;
    }
    NextWrite();
  }
  void OnCancel() override { cancelled_.store(true); }
  void OnDone() override {
    if (worker_.joinable()) worker_.join();
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
    delete this;
  }

 private:
  // Worker thread: checkpoint, export to the temporary file, then the first piece.
  void Export() {
    std::promise<absl::StatusOr<std::string>> checkpoint;
    handler_->runtime()->Checkpoint(
        [&checkpoint](absl::StatusOr<std::string> dir) { checkpoint.set_value(std::move(dir)); });
    absl::StatusOr<std::string> dir = checkpoint.get_future().get();
    if (!dir.ok()) {
      Done(ToGrpc(dir.status()));
      return;
    }
    absl::Status s = WriteFile(*dir);
    handler_->runtime()->ReleaseCheckpoint(*dir);
    if (!s.ok()) {
      LogError("snapshot export failed", {F("error", s.ToString())});
      Done(ToGrpc(s));
      return;
    }
    NextWrite();
  }

  absl::Status WriteFile(const std::string& dir) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
      return absl::InternalError(absl::StrCat("create ", path_, ": ", std::strerror(errno)));
    }
    fd_ = fd;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!sha || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1) {
      return absl::InternalError("SHA-256 unavailable");
    }
    auto append = [&](absl::string_view piece) -> absl::Status {
      if (cancelled_.load()) return absl::CancelledError("the client went away");
      EVP_DigestUpdate(sha.get(), piece.data(), piece.size());
      return Append(piece);
    };
    absl::Status s = storage::RocksDbStateMachine::ExportDatabase(dir, append);
    if (!s.ok()) return s;
    // etcdctl's layout: the file padded with zeros to a multiple of 512 bytes, then the SHA-256
    // of everything before it (etcdctl snapshot save refuses a stream without it).
    if (size_ % 512 != 0) {
      if (s = append(std::string(512 - size_ % 512, '\0')); !s.ok()) return s;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(sha.get(), digest, &len) != 1 || len != 32) {
      return absl::InternalError("SHA-256 failed");
    }
    return Append(absl::string_view(reinterpret_cast<const char*>(digest), len));
  }

  absl::Status Append(absl::string_view piece) {
    const char* p = piece.data();
    size_t n = piece.size();
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        return absl::ResourceExhaustedError(absl::StrCat("write ", path_, ": ", std::strerror(errno)));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    size_ += piece.size();
    return absl::OkStatus();
  }

  void NextWrite() {
    if (cancelled_.load()) {
      Done(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      return;
    }
    std::string blob(std::min<uint64_t>(kPieceBytes, size_ - sent_), '\0');
    if (blob.empty()) {
      Done(grpc::Status::OK);
      return;
    }
    const ssize_t r = ::pread(fd_, blob.data(), blob.size(), static_cast<off_t>(sent_));
    if (r != static_cast<ssize_t>(blob.size())) {
      Done(grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("read ", path_, " failed")));
      return;
    }
    sent_ += blob.size();
    response_.Clear();
    handler_->SnapshotHeader(response_.mutable_header());
    response_.set_remaining_bytes(size_ - sent_);
    response_.set_blob(std::move(blob));
    StartWrite(&response_);
  }

  void Done(const grpc::Status& status) {
    if (observer_) {
      observer_("Snapshot", status,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    Finish(status);
  }

  EtcdHandler* const handler_;
  const RequestObserver observer_;
  const std::chrono::steady_clock::time_point start_;
  const std::string path_;
  std::atomic<bool> cancelled_{false};
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t sent_ = 0;
  etcdserverpb::SnapshotResponse response_;
  std::thread worker_;
};

}  // namespace

grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* StartSnapshotStream(
    EtcdHandler* handler, const RequestObserver& observer) {
  return new SnapshotStream(handler, observer);
}

}  // namespace amaters::server
