#include "sim/chaos/file_faults.h"

#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::sim::chaos {

namespace {

// The WAL disk with the node's disk faults applied.
class FaultyDisk final : public wal::Disk {
 public:
  FaultyDisk(std::unique_ptr<wal::Disk> inner, FileFaults* faults)
      : inner_(std::move(inner)), faults_(faults) {
    AM_CHECK(inner_ != nullptr);
    AM_CHECK(faults_ != nullptr);
  }

  absl::StatusOr<std::vector<std::string>> List() override { return inner_->List(); }
  absl::StatusOr<std::string> Read(const std::string& name) override {
    return inner_->Read(name);
  }
  absl::Status Create(const std::string& name) override {
    if (absl::Status s = Full(); !s.ok()) return s;
    return inner_->Create(name);
  }
  absl::Status Write(const std::string& name, uint64_t offset, absl::string_view data) override {
    if (absl::Status s = Full(); !s.ok()) return s;
    return Slowed([&] { return inner_->Write(name, offset, data); });
  }
  absl::Status Sync(const std::string& name) override {
    // A full file system fails fsync too (ENOSPC when delayed allocation finds no block).
    if (absl::Status s = Full(); !s.ok()) return s;
    return Slowed([&] { return inner_->Sync(name); });
  }
  absl::Status SyncDir() override {
    return Slowed([&] { return inner_->SyncDir(); });
  }
  absl::Status Truncate(const std::string& name, uint64_t size) override {
    return inner_->Truncate(name, size);
  }
  absl::Status Delete(const std::string& name) override { return inner_->Delete(name); }

 private:
  absl::Status Full() {
    if (!faults_->DiskFaultsNow().full) return absl::OkStatus();
    return absl::ResourceExhaustedError("No space left on device (chaos fault disk-full)");
  }
  template <typename Op>
  absl::Status Slowed(Op op) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status s = op();
    if (faults_->DiskFaultsNow().slow) {
      std::this_thread::sleep_for((std::chrono::steady_clock::now() - start) *
                                  (kSlowDiskFactor - 1));
    }
    return s;
  }

  const std::unique_ptr<wal::Disk> inner_;
  FileFaults* const faults_;
};

}  // namespace

FileFaults::FileFaults(int node, std::string path, PlantedBug bug)
    : node_(node), path_(std::move(path)), bug_(bug) {
  AM_CHECK(node_ >= 1);
  AM_CHECK(!path_.empty());
  delay_thread_ = std::thread([this] { DelayMain(); });
}

FileFaults::~FileFaults() {
  Close();
  delay_thread_.join();
}

void FileFaults::Close() {
  std::unique_lock<std::mutex> lock(mu_);
  closed_ = true;
  held_.clear();
  cv_.notify_all();
  cv_.wait(lock, [this] { return !delivering_; });  // the runtime may go away after this
}

void FileFaults::RereadLocked() {
  const Clock::time_point now = Clock::now();
  if (now < next_read_) return;
  next_read_ = now + std::chrono::milliseconds(kRereadMs);
  std::ifstream f(path_);
  std::stringstream text;
  text << f.rdbuf();  // a missing file: no faults
  if (text.str() == last_text_) return;
  absl::StatusOr<FaultState> parsed = ParseFaults(text.str());
  if (!parsed.ok()) {  // the runner writes by rename, so this is a bug: say so, keep the old
    std::cerr << "amaters-server-chaos: " << path_ << ": " << parsed.status().message() << "\n";
    return;
  }
  last_text_ = text.str();
  state_ = *std::move(parsed);
}

FileFaults::DiskFaults FileFaults::DiskFaultsNow() {
  std::lock_guard<std::mutex> lock(mu_);
  RereadLocked();
  return DiskFaults{state_.slow_disk.count(node_) > 0, state_.full_disk.count(node_) > 0};
}

bool FileFaults::TakeBatch(raft::NodeId from, std::vector<raft::Message>& batch,
                           const Deliver& deliver) {
  const Link link{static_cast<int>(from), node_};
  std::lock_guard<std::mutex> lock(mu_);
  RereadLocked();
  if (closed_ || state_.blocked.count(link) > 0) return false;  // dropped
  auto clog = state_.clog_ms.find(link);
  if (clog == state_.clog_ms.end()) return true;
  if (held_.size() >= kDelayedBatchesMax) return false;  // Raft retransmits what is lost
  const Clock::time_point due = Clock::now() + std::chrono::milliseconds(clog->second);
  held_.emplace(due, Held{std::move(batch), deliver});
  cv_.notify_all();
  return false;
}

bool FileFaults::Reachable(raft::NodeId peer) {
  const int p = static_cast<int>(peer);
  std::lock_guard<std::mutex> lock(mu_);
  RereadLocked();
  return state_.blocked.count({p, node_}) == 0 && state_.blocked.count({node_, p}) == 0;
}

std::unique_ptr<wal::Disk> FileFaults::WrapWalDisk(std::unique_ptr<wal::Disk> disk) {
  return std::make_unique<FaultyDisk>(std::move(disk), this);
}

void FileFaults::DelayMain() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    if (held_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = held_.begin();
    if (Clock::now() < first->first) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    Held h = std::move(first->second);
    held_.erase(first);
    delivering_ = true;
    lock.unlock();  // the runtime takes its own lock
    h.deliver(std::move(h.batch));
    lock.lock();
    delivering_ = false;
    cv_.notify_all();
  }
}

}  // namespace amaters::sim::chaos
