// PosixDisk: the wal::Disk (engine/wal/disk.h) on a real directory, with POSIX system calls.
//
// One PosixDisk owns one WAL directory for as long as it lives:
//   - Open() creates the directory if it is missing (mkdir -p; each directory it creates is
//     made durable by an fsync of its parent) and takes an exclusive flock(2) on the file `LOCK`
//     inside it. A second opener — another server process pointed at the same data directory,
//     or a second PosixDisk in this process — gets kFailedPrecondition naming the directory.
//     Two writers interleaving records in one WAL would corrupt it beyond what replay can
//     detect, so this is refused rather than retried. The lock is released when the
//     PosixDisk is destroyed or the process dies (the kernel drops flock locks with the fd).
//   - File names are plain names inside the directory: empty names, ".", names containing '/',
//     ".." or NUL, and the reserved lock file name are kInvalidArgument. All file operations
//     go through openat/unlinkat on the directory fd, so a later chdir does not matter.
//
// Operations (the Disk contract):
//   List      regular files (lstat semantics: no symlinks, no directories), sorted, without LOCK.
//   Read      the whole file.
//   Create    O_CREAT|O_EXCL, mode 0600 (WAL files hold client data). kAlreadyExists if present.
//   Write     pwrite at `offset`, looping over short writes and EINTR; an offset beyond the
//             current size is kInvalidArgument (the writer never leaves holes).
//   Sync      fdatasync(2) of the file.
//   SyncDir   fsync(2) of the directory (makes creates and deletes durable).
//   Truncate  ftruncate(2) to a size not beyond the current size (growing is kInvalidArgument,
//             as in SimDisk: the WAL only ever cuts a torn tail).
//   Delete    unlink(2).
//
// File descriptors: writes, syncs and truncates reuse a bounded cache of O_WRONLY fds
// (fd_cache_max, least recently used closed first) so that the append path costs one pwrite
// and one fdatasync, not an open and close as well. Delete closes the cached fd before the
// unlink. An fd with writes not yet covered by a successful Sync is "dirty": evicting it first
// fdatasyncs it. (Since Linux 4.13 a write-back error is reported to every fd open at the time
// it happens, but an fd opened afterwards may not see it; closing a dirty fd without syncing
// could lose the only report that the data never reached the disk.)
//
// Failed syncs are sticky per file: once an fdatasync of a file fails (in Sync or in an
// eviction), every later Sync of that file returns the same error until the file is deleted or
// created anew. After a failed fsync the kernel may have marked the dirty pages clean, so a
// second fdatasync can succeed although the data never reached the disk (PostgreSQL's
// "fsyncgate"); a retry must never be able to report durability.
//
// Error codes follow retry semantics (docs/design.md §4.3); every message names the operation, the
// path and the errno (text and symbol):
//   ENOSPC, EDQUOT, EMFILE, ENFILE, ENOMEM  kResourceExhausted  (free space/fds, then restart)
//   ENOENT                                  kNotFound
//   EEXIST                                  kAlreadyExists
//   EACCES, EPERM                           kPermissionDenied
//   EROFS, ENOTDIR, EISDIR                  kFailedPrecondition (the environment is wrong)
//   EIO from fdatasync/fsync                kDataLoss (the kernel may have dropped the dirty
//                                           pages: what was written is not known to be on disk)
//   EIO elsewhere and anything else         kInternal
// The WAL writer treats every failure as fatal anyway (writer.h "Errors"); the codes tell the
// operator what to fix.
//
// Thread safety: none. One driver thread (the WAL I/O thread) owns a PosixDisk.
// Destruction closes every fd it opened (cached files, the directory, the lock file) without
// syncing: unsynced data stays in the page cache, exactly as after a process crash.
#ifndef AMATERS_SERVER_STORAGE_POSIX_DISK_H_
#define AMATERS_SERVER_STORAGE_POSIX_DISK_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/wal/disk.h"

namespace amaters::storage {

struct PosixDiskOptions {
  // Upper bound on cached write fds. The writer appends to one segment at a time and a
  // roll-over touches two, so a handful is plenty; 16 leaves room for recovery and tests.
  size_t fd_cache_max = 16;
};

// Counters for tests and metrics.
struct PosixDiskStats {
  uint64_t file_opens = 0;     // open(2)/openat(2) calls for files (not the directory or LOCK)
  uint64_t fd_evictions = 0;   // cached fds closed to stay within fd_cache_max
  uint64_t fdatasyncs = 0;     // successful fdatasync calls (Sync and evictions of dirty fds)
  uint64_t dir_fsyncs = 0;     // successful fsync calls on the directory
};

class PosixDisk final : public wal::Disk {
 public:
  // The name of the lock file inside the directory; reserved (never listed or touched by the
  // Disk operations).
  static constexpr const char* kLockFileName = "LOCK";

  static absl::StatusOr<std::unique_ptr<PosixDisk>> Open(const std::string& dir);
  static absl::StatusOr<std::unique_ptr<PosixDisk>> Open(const std::string& dir,
                                                         const PosixDiskOptions& options);

  ~PosixDisk() override;
  PosixDisk(const PosixDisk&) = delete;
  PosixDisk& operator=(const PosixDisk&) = delete;

  absl::StatusOr<std::vector<std::string>> List() override;
  absl::StatusOr<std::string> Read(const std::string& name) override;
  absl::Status Create(const std::string& name) override;
  absl::Status Write(const std::string& name, uint64_t offset, absl::string_view data) override;
  absl::Status Sync(const std::string& name) override;
  absl::Status SyncDir() override;
  absl::Status Truncate(const std::string& name, uint64_t size) override;
  absl::Status Delete(const std::string& name) override;

  const std::string& dir() const { return dir_; }
  const PosixDiskStats& stats() const { return stats_; }
  // Number of fds currently cached (<= fd_cache_max).
  size_t cached_fds() const { return cache_.size(); }

 private:
  struct CachedFd {
    int fd = -1;
    bool dirty = false;                  // written or truncated since the last good fdatasync
    uint64_t size = 0;  // the file's size: fstat(2) once at open, then kept by Write/Truncate
    std::list<std::string>::iterator lru;  // position in lru_ (front = most recently used)
  };

  PosixDisk(std::string dir, const PosixDiskOptions& options, int dir_fd, int lock_fd);

  std::string PathOf(const std::string& name) const;
  // The cached write fd for `name`, opened (without O_CREAT) if not cached.
  absl::StatusOr<CachedFd*> WriteFd(const std::string& name);
  // Puts a freshly opened fd into the cache, evicting the least recently used one if full.
  CachedFd* Insert(const std::string& name, int fd, uint64_t size);
  // Closes and forgets the cached fd of `name` (if any). A dirty fd is synced first when
  // `sync_if_dirty`; a failure is remembered in sync_errors_.
  void Evict(const std::string& name, bool sync_if_dirty);
  // Runs fdatasync on a cached fd; on failure the error becomes sticky for `name`.
  absl::Status SyncCached(const std::string& name, CachedFd* entry, absl::string_view why);

  const std::string dir_;
  const PosixDiskOptions options_;
  int dir_fd_ = -1;
  int lock_fd_ = -1;
  std::unordered_map<std::string, CachedFd> cache_;
  std::list<std::string> lru_;
  // Sticky fdatasync failures per file (see "Failed syncs are sticky" above).
  std::map<std::string, absl::Status> sync_errors_;
  PosixDiskStats stats_;
};

}  // namespace amaters::storage

#endif  // AMATERS_SERVER_STORAGE_POSIX_DISK_H_
