// An in-memory Disk for tests and the simulator, with a crash model.
//
// Each file has its current contents (what reads see) and its durable contents (as of its last
// Sync). Creates and deletes become durable at SyncDir. Crash() turns the disk into what a
// machine would find after power loss:
//   - a file whose creation or deletion was not made durable may or may not exist;
//   - data written since the last Sync is lost, kept, or kept in part; with tearing enabled the
//     end of the kept part may be zeros or garbage (a torn sector write);
//   - durable data is never changed (bit rot is a separate, explicit Corrupt()).
// Every random choice comes from the PRNG passed to Crash(), so a run replays from its seed.
#ifndef AMATERS_ENGINE_WAL_SIM_DISK_H_
#define AMATERS_ENGINE_WAL_SIM_DISK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/base/rand.h"
#include "engine/wal/disk.h"

namespace amaters::wal {

class SimDisk final : public Disk {
 public:
  absl::StatusOr<std::vector<std::string>> List() override;
  absl::StatusOr<std::string> Read(const std::string& name) override;
  absl::Status Create(const std::string& name) override;
  absl::Status Write(const std::string& name, uint64_t offset, absl::string_view data) override;
  absl::Status Sync(const std::string& name) override;
  absl::Status SyncDir() override;
  absl::Status Truncate(const std::string& name, uint64_t size) override;
  absl::Status Delete(const std::string& name) override;

  enum class CrashMode : uint8_t {
    kLoseUnsynced,  // every unsynced write and directory change is lost
    kRandom,        // each file independently: lost, kept whole, kept in part, or torn
    kProcessOnly,   // only the process died: the page cache keeps every write (nothing lost)
  };
  void Crash(CrashMode mode, SplitMix64* rng);

  // Faults for the simulator. After `ops_ok` more successful operations, every operation fails
  // with `status` until ClearFault(). Writes beyond `capacity_bytes` in total fail with
  // kResourceExhausted ("no space left on device"); 0 means unlimited.
  void FailAfter(uint64_t ops_ok, absl::Status status);
  void ClearFault();
  void set_capacity_bytes(uint64_t capacity_bytes) { capacity_bytes_ = capacity_bytes; }

  // Flips one bit of both the current and the durable contents (bit rot).
  void Corrupt(const std::string& name, uint64_t offset, int bit);
  // What a crash would keep of the file (as of its last Sync and the last SyncDir), or nullopt
  // if a crash would lose it.
  std::optional<std::string> DurableContents(const std::string& name) const;

  uint64_t used_bytes() const;
  uint64_t unsynced_bytes() const;

 private:
  struct File {
    bool exists = false;          // visible now
    bool durable_exists = false;  // visible after a crash (as of the last SyncDir)
    std::string data;             // current contents
    std::string durable;          // contents as of the last Sync
    // Whether data differs from durable other than by bytes appended at its end (an overwrite or
    // truncate below durable's size). When false, Sync only appends the new bytes.
    bool rewritten = false;
  };
  absl::Status CheckFault();
  absl::StatusOr<File*> Find(const std::string& name);

  std::map<std::string, File> files_;
  uint64_t capacity_bytes_ = 0;
  bool fault_armed_ = false;
  uint64_t fault_ops_left_ = 0;
  absl::Status fault_;
};

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_SIM_DISK_H_
