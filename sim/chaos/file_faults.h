// FileFaults: the fault hooks of amaters-server-chaos (server/runtime/test_faults.h), driven by
// the chaos runner's control file (sim/chaos/fault_state.h; docs/chaos.md §6).
//
// The node rereads the file when a hook runs and the last read is more than kRereadMs old, so a
// step takes effect within a few milliseconds, and at once on a node resumed from a pause.
// Batches from a blocked peer are dropped; from a clogged one they wait in a bounded delay line
// (one thread) and are delivered late, in order. The WAL disk is wrapped: slow (each write and
// sync followed by a sleep of 19 times its duration) or full (creates, writes and syncs fail
// with kResourceExhausted, as ENOSPC does in server/storage/posix_disk.h).
#ifndef AMATERS_SIM_CHAOS_FILE_FAULTS_H_
#define AMATERS_SIM_CHAOS_FILE_FAULTS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/runtime/test_faults.h"
#include "sim/chaos/fault_state.h"

namespace amaters::sim::chaos {

inline constexpr size_t kDelayedBatchesMax = 10'000;  // beyond it a clogged link drops
inline constexpr int kSlowDiskFactor = 20;

// The planted server-side bugs (docs/chaos.md §7), by --chaos-bug name.
enum class PlantedBug { kNone, kStaleReads };

class FileFaults final : public server::TestFaults {
 public:
  FileFaults(int node, std::string path, PlantedBug bug);
  ~FileFaults() override;  // Close()

  bool TakeBatch(raft::NodeId from, std::vector<raft::Message>& batch,
                 const Deliver& deliver) override;
  bool Reachable(raft::NodeId peer) override;
  std::unique_ptr<wal::Disk> WrapWalDisk(std::unique_ptr<wal::Disk> disk) override;
  bool ServeReadsLocally() const override { return bug_ == PlantedBug::kStaleReads; }
  void Close() override;

  // Whether this node's disk is slow / full now (rereads the file if due). Thread-safe.
  struct DiskFaults {
    bool slow = false;
    bool full = false;
  };
  DiskFaults DiskFaultsNow();

 private:
  using Clock = std::chrono::steady_clock;
  struct Held {
    std::vector<raft::Message> batch;
    Deliver deliver;
  };
  void RereadLocked();
  void DelayMain();

  const int node_;
  const std::string path_;
  const PlantedBug bug_;

  std::mutex mu_;
  std::condition_variable cv_;
  FaultState state_;                          // guarded by mu_
  Clock::time_point next_read_;               // guarded by mu_
  std::string last_text_;                     // guarded by mu_
  std::multimap<Clock::time_point, Held> held_;  // guarded by mu_; at most kDelayedBatchesMax
  bool closed_ = false;                       // guarded by mu_
  bool delivering_ = false;  // guarded by mu_: the delay thread is in a Deliver call
  std::thread delay_thread_;
};

}  // namespace amaters::sim::chaos

#endif  // AMATERS_SIM_CHAOS_FILE_FAULTS_H_
