// The small disk interface that executes the WAL writer's decisions, and the start-up recovery
// that reads a WAL directory through it.
//
// Implementations: PosixDisk (server/storage/posix_disk.h: real files, pwrite + fdatasync,
// directory fsync) and SimDisk (engine/wal/sim_disk.h: in memory, with a crash model that
// loses or tears unsynced data). One test suite runs against both
// (engine/wal/testing/disk_suite.h).
//
// A Disk is one WAL directory. File names are plain names inside it: not empty, no '/', not
// "." or ".."; other names are kInvalidArgument (ValidateFileName). Writing beyond a file's end
// and truncating to more than its size are kInvalidArgument. A failed Sync is not retried by
// the WAL (writer.h explains why); implementations may keep reporting it.
#ifndef AMATERS_ENGINE_WAL_DISK_H_
#define AMATERS_ENGINE_WAL_DISK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/raft/types.h"
#include "engine/wal/replay.h"
#include "engine/wal/writer.h"

namespace amaters::wal {

class Disk {
 public:
  virtual ~Disk() = default;
  // Names of the regular files in the directory, sorted.
  virtual absl::StatusOr<std::vector<std::string>> List() = 0;
  virtual absl::StatusOr<std::string> Read(const std::string& name) = 0;
  // Creates an empty file; kAlreadyExists if it exists.
  virtual absl::Status Create(const std::string& name) = 0;
  // Writes `data` at `offset`, which must not be beyond the file's size.
  virtual absl::Status Write(const std::string& name, uint64_t offset, absl::string_view data) = 0;
  // Makes the file's data durable (fdatasync).
  virtual absl::Status Sync(const std::string& name) = 0;
  // Makes creates and deletes in the directory durable (fsync of the directory).
  virtual absl::Status SyncDir() = 0;
  virtual absl::Status Truncate(const std::string& name, uint64_t size) = 0;
  virtual absl::Status Delete(const std::string& name) = 0;
};

absl::Status ValidateFileName(const std::string& name);

// Runs a batch's operations in order; stops at the first error, which names the operation.
absl::Status ExecuteBatch(const DiskBatch& batch, Disk* disk);

// The WAL directory's segments (`*.wal`), read and replayed, with the repairs replay asks for
// (torn tail truncated, later segments deleted) executed and made durable. Other files are
// left alone and reported in `notes`. `snapshot_index` as in Replay.
absl::StatusOr<ReplayResult> Recover(Disk* disk, CorruptionPolicy policy,
                                     raft::Index snapshot_index = 0);

}  // namespace amaters::wal

#endif  // AMATERS_ENGINE_WAL_DISK_H_
