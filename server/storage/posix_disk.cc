#include "server/storage/posix_disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::storage {
namespace {

// Mode of new WAL files and directories: they hold client data (etcd uses the same).
constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;

// "No space left on device [ENOSPC]".
std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r: returns a pointer to the message (maybe a static string, maybe buf).
  const char* text = strerror_r(err, buf, sizeof(buf));
  const char* name = strerrorname_np(err);
  return absl::StrCat(text, " [", name != nullptr ? name : absl::StrCat("errno ", err), "]");
}

// Retry semantics of an errno (posix_disk.h lists the table). `durability` marks fdatasync and
// fsync, whose failure means data already written may not be on stable storage.
absl::StatusCode CodeForErrno(int err, bool durability) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::StatusCode::kResourceExhausted;
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EROFS:
    case ENOTDIR:
    case EISDIR:
      return absl::StatusCode::kFailedPrecondition;
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    case EINVAL:
      // fdatasync on a file system that cannot make data durable: the WAL cannot keep its
      // promises here at all. Elsewhere EINVAL is a bug of ours.
      return durability ? absl::StatusCode::kFailedPrecondition : absl::StatusCode::kInternal;
    default:
      return durability ? absl::StatusCode::kDataLoss : absl::StatusCode::kInternal;
  }
}

absl::Status ErrnoStatus(int err, absl::string_view op, absl::string_view path,
                         bool durability = false, absl::string_view detail = "") {
  return absl::Status(CodeForErrno(err, durability),
                      absl::StrCat(op, " ", path, ": ", ErrnoText(err), detail));
}

absl::Status ValidateName(const std::string& name) {
  if (name.empty() || name == "." || name.find('/') != std::string::npos ||
      name.find("..") != std::string::npos || name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid WAL file name \"", absl::CEscape(name),
                     "\": must be a plain, non-empty name inside the WAL directory "
                     "(no '/', no \"..\")"));
  }
  if (name == PosixDisk::kLockFileName) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid WAL file name \"", name, "\": reserved for the WAL directory lock"));
  }
  return absl::OkStatus();
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return absl::StrCat(dir, name);
  return absl::StrCat(dir, "/", name);
}

// fsync of a directory given by path (makes an entry created in it durable).
absl::Status FsyncDirPath(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open directory", path);
  absl::Status s;
  if (::fsync(fd) != 0) s = ErrnoStatus(errno, "fsync directory", path, /*durability=*/true);
  ::close(fd);
  return s;
}

// mkdir -p. Each directory created is made durable by fsyncing its parent, so that a WAL
// directory created just before the first record was acknowledged survives a power loss.
absl::Status MakeDirs(const std::string& dir) {
  std::string prefix;
  size_t pos = 0;
  while (pos <= dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) slash = dir.size();
    prefix = dir.substr(0, slash);
    pos = slash + 1;
    if (prefix.empty() || prefix.back() == '/' || prefix == "." || prefix == "..") continue;
    if (::mkdir(prefix.c_str(), kDirMode) == 0) {
      const size_t parent_end = prefix.find_last_of('/');
      const std::string parent = parent_end == std::string::npos ? std::string(".")
                                 : parent_end == 0               ? std::string("/")
                                                                 : prefix.substr(0, parent_end);
      if (absl::Status s = FsyncDirPath(parent); !s.ok()) return s;
      continue;
    }
    const int err = errno;
    if (err != EEXIST) return ErrnoStatus(err, "mkdir", prefix);
    struct stat st;
    if (::stat(prefix.c_str(), &st) != 0) return ErrnoStatus(errno, "stat", prefix);
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("WAL directory ", dir, ": ", prefix, " exists and is not a directory"));
    }
  }
  return absl::OkStatus();
}

// The pid a previous holder wrote into the lock file, for the error message; "" if unknown.
std::string LockHolder(int lock_fd) {
  char buf[32];
  const ssize_t n = ::pread(lock_fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string text(buf, static_cast<size_t>(n));
  int64_t pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) || pid <= 0) return "";
  return absl::StrCat(pid);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PosixDisk>> PosixDisk::Open(const std::string& dir) {
  return Open(dir, PosixDiskOptions());
}

absl::StatusOr<std::unique_ptr<PosixDisk>> PosixDisk::Open(const std::string& dir,
                                                           const PosixDiskOptions& options) {
  if (dir.empty()) return absl::InvalidArgumentError("WAL directory path is empty");
  if (options.fd_cache_max == 0) {
    return absl::InvalidArgumentError("PosixDiskOptions.fd_cache_max must be > 0");
  }
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;

  int dir_fd;
  do {
    dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (dir_fd < 0 && errno == EINTR);
  if (dir_fd < 0) return ErrnoStatus(errno, "open WAL directory", dir);

  const std::string lock_path = JoinPath(dir, kLockFileName);
  int lock_fd;
  do {
    lock_fd = ::openat(dir_fd, kLockFileName, O_RDWR | O_CREAT | O_CLOEXEC, kFileMode);
  } while (lock_fd < 0 && errno == EINTR);
  if (lock_fd < 0) {
    const int err = errno;
    ::close(dir_fd);
    return ErrnoStatus(err, "open lock file", lock_path);
  }
  // flock, not fcntl: an fcntl lock belongs to the process, so a second open in the same
  // process would silently share it, and closing any fd of the file would drop it.
  int rc;
  do {
    rc = ::flock(lock_fd, LOCK_EX | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    const std::string holder = LockHolder(lock_fd);
    ::close(lock_fd);
    ::close(dir_fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "WAL directory ", dir, " is in use by another process",
          holder.empty() ? "" : absl::StrCat(" (pid ", holder, " according to ", lock_path, ")"),
          ": the exclusive lock on ", lock_path,
          " is held. Two servers must never write to one data directory; stop the other one "
          "or use a different data_dir"));
    }
    return ErrnoStatus(err, "flock", lock_path);
  }
  // Record our pid for the next opener's error message. Best effort by nature (the lock, not
  // the contents, is what excludes), but a failure here means the disk is already in trouble.
  const std::string pid = absl::StrCat(::getpid(), "\n");
  int pid_err = 0;
  if (::ftruncate(lock_fd, 0) != 0) {
    pid_err = errno;
  } else {
    const ssize_t n = ::pwrite(lock_fd, pid.data(), pid.size(), 0);
    if (n < 0) pid_err = errno;
    if (n >= 0 && static_cast<size_t>(n) != pid.size()) pid_err = EIO;  // short write of 8 bytes
  }
  if (pid_err != 0) {
    const int err = pid_err;
    ::close(lock_fd);
    ::close(dir_fd);
    return ErrnoStatus(err, "write pid to lock file", lock_path);
  }
  return std::unique_ptr<PosixDisk>(new PosixDisk(dir, options, dir_fd, lock_fd));
}

PosixDisk::PosixDisk(std::string dir, const PosixDiskOptions& options, int dir_fd, int lock_fd)
    : dir_(std::move(dir)), options_(options), dir_fd_(dir_fd), lock_fd_(lock_fd) {}

PosixDisk::~PosixDisk() {
  // No fdatasync: destruction is not a durability point; whatever was not synced is exactly
  // what the writer has not acknowledged.
  for (auto& [name, entry] : cache_) ::close(entry.fd);
  cache_.clear();
  lru_.clear();
  ::close(dir_fd_);
  ::close(lock_fd_);  // releases the flock
}

std::string PosixDisk::PathOf(const std::string& name) const { return JoinPath(dir_, name); }

PosixDisk::CachedFd* PosixDisk::Insert(const std::string& name, int fd, uint64_t size) {
  AM_CHECK(cache_.find(name) == cache_.end(), name, " is already cached");
  while (cache_.size() >= options_.fd_cache_max) {
    AM_CHECK(!lru_.empty());
    const std::string victim = lru_.back();
    Evict(victim, /*sync_if_dirty=*/true);
    ++stats_.fd_evictions;
  }
  lru_.push_front(name);
  CachedFd& entry = cache_[name];
  entry.fd = fd;
  entry.dirty = false;
  entry.size = size;
  entry.lru = lru_.begin();
  return &entry;
}

absl::Status PosixDisk::SyncCached(const std::string& name, CachedFd* entry,
                                   absl::string_view why) {
  if (::fdatasync(entry->fd) != 0) {
    const int err = errno;
    absl::Status s = ErrnoStatus(
        err, absl::StrCat("fdatasync", why), PathOf(name), /*durability=*/true,
        "; data written to this file since its last successful sync may not be on disk");
    sync_errors_.emplace(name, s);  // keeps the first error if there was one
    return s;
  }
  ++stats_.fdatasyncs;
  entry->dirty = false;
  return absl::OkStatus();
}

void PosixDisk::Evict(const std::string& name, bool sync_if_dirty) {
  auto it = cache_.find(name);
  if (it == cache_.end()) return;
  if (sync_if_dirty && it->second.dirty) {
    // The error, if any, is kept in sync_errors_ and reported by the next Sync of the file.
    SyncCached(name, &it->second, " (closing a cached fd)").IgnoreError();
  }
  // close(2) is not retried on EINTR: on Linux the fd is released either way.
  ::close(it->second.fd);
  lru_.erase(it->second.lru);
  cache_.erase(it);
}

absl::StatusOr<PosixDisk::CachedFd*> PosixDisk::WriteFd(const std::string& name) {
  auto it = cache_.find(name);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
  }
  int fd;
  do {
    fd = ::openat(dir_fd_, name.c_str(), O_WRONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open", PathOf(name));
  ++stats_.file_opens;
  // The size is read once here; this process is the only writer (the directory lock), so
  // Write and Truncate keep it from then on without an fstat(2) per write.
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "fstat", PathOf(name));
  }
  return Insert(name, fd, static_cast<uint64_t>(st.st_size));
}

absl::StatusOr<std::vector<std::string>> PosixDisk::List() {
  int fd;
  do {
    fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open directory", dir_);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    ::close(fd);
    return ErrnoStatus(err, "fdopendir", dir_);
  }
  std::vector<std::string> names;
  absl::Status status;
  while (true) {
    errno = 0;
    const struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) status = ErrnoStatus(errno, "readdir", dir_);
      break;
    }
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name == kLockFileName) continue;
    bool regular = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN) {  // some file systems do not fill d_type
      struct stat st;
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // removed meanwhile
        status = ErrnoStatus(errno, "stat", PathOf(name));
        break;
      }
      regular = S_ISREG(st.st_mode);
    }
    if (regular) names.push_back(name);
  }
  ::closedir(d);  // closes fd
  if (!status.ok()) return status;
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> PosixDisk::Read(const std::string& name) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  // A separate read-only fd: reads happen at recovery only, and the cache holds O_WRONLY fds.
  int fd;
  do {
    fd = ::openat(dir_fd_, name.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "open", PathOf(name));
  ++stats_.file_opens;
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out.reserve(static_cast<size_t>(st.st_size));
  }
  // Read to end of file rather than trusting st_size: the result is the whole file as it is.
  char buf[64 * 1024];
  uint64_t offset = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      // An unreadable WAL file is data we cannot recover, not a transient failure.
      return absl::Status(
          err == EIO ? absl::StatusCode::kDataLoss : CodeForErrno(err, false),
          absl::StrCat("read ", PathOf(name), " at offset ", offset, ": ", ErrnoText(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return out;
}

absl::Status PosixDisk::Create(const std::string& name) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  int fd;
  do {
    fd = ::openat(dir_fd_, name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, kFileMode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoStatus(errno, "create", PathOf(name));
  ++stats_.file_opens;
  // A cached fd under this name can only belong to a file removed behind our back (O_EXCL
  // succeeded); it refers to the old inode and must not be used for the new file.
  Evict(name, /*sync_if_dirty=*/false);
  sync_errors_.erase(name);
  Insert(name, fd, /*size=*/0);  // the next operation is the segment header write
  return absl::OkStatus();
}

absl::Status PosixDisk::Write(const std::string& name, uint64_t offset, absl::string_view data) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (offset > static_cast<uint64_t>(std::numeric_limits<off_t>::max()) - data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("write ", PathOf(name), " at offset ",
                                                   offset, " +", data.size(),
                                                   ": beyond the largest file offset"));
  }
  absl::StatusOr<CachedFd*> entry = WriteFd(name);
  if (!entry.ok()) return entry.status();
  const int fd = (*entry)->fd;
  const uint64_t size = (*entry)->size;
  if (offset > size) {
    return absl::InvalidArgumentError(absl::StrCat("write ", PathOf(name), " at offset ", offset,
                                                   ": beyond the end of the file (size ", size,
                                                   "); the WAL never leaves holes"));
  }
  const char* p = data.data();
  size_t left = data.size();
  uint64_t at = offset;
  while (left > 0) {
    const ssize_t n = ::pwrite(fd, p, left, static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      (*entry)->dirty = true;  // a prefix may have been written
      return ErrnoStatus(err, "pwrite", PathOf(name), /*durability=*/false,
                         absl::StrCat(" (at offset ", at, " after ", at - offset, " of ",
                                      data.size(), " bytes)"));
    }
    if (n == 0) {  // not expected for regular files; never loop forever
      (*entry)->dirty = true;
      return absl::InternalError(absl::StrCat("pwrite ", PathOf(name), " at offset ", at,
                                              " wrote 0 bytes after ", at - offset, " of ",
                                              data.size()));
    }
    p += n;
    left -= static_cast<size_t>(n);
    at += static_cast<uint64_t>(n);
    (*entry)->size = std::max((*entry)->size, at);
  }
  AM_CHECK_GE((*entry)->size, offset + data.size());
  (*entry)->dirty = true;
  return absl::OkStatus();
}

absl::Status PosixDisk::Sync(const std::string& name) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  if (auto it = sync_errors_.find(name); it != sync_errors_.end()) return it->second;
  absl::StatusOr<CachedFd*> entry = WriteFd(name);
  if (!entry.ok()) return entry.status();
  return SyncCached(name, *entry, "");
}

absl::Status PosixDisk::SyncDir() {
  if (::fsync(dir_fd_) != 0) {
    return ErrnoStatus(errno, "fsync directory", dir_, /*durability=*/true,
                       "; creates and deletes since the last directory sync may be lost");
  }
  ++stats_.dir_fsyncs;
  return absl::OkStatus();
}

absl::Status PosixDisk::Truncate(const std::string& name, uint64_t size) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  absl::StatusOr<CachedFd*> entry = WriteFd(name);
  if (!entry.ok()) return entry.status();
  const uint64_t current = (*entry)->size;
  if (size > current) {
    return absl::InvalidArgumentError(absl::StrCat("truncate ", PathOf(name), " to ", size,
                                                   ": beyond the end of the file (size ",
                                                   current, ")"));
  }
  int rc;
  do {
    rc = ::ftruncate((*entry)->fd, static_cast<off_t>(size));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    return ErrnoStatus(errno, "ftruncate", PathOf(name), /*durability=*/false,
                       absl::StrCat(" (to ", size, " bytes)"));
  }
  (*entry)->size = size;
  (*entry)->dirty = true;  // the new size is durable only after fdatasync
  return absl::OkStatus();
}

absl::Status PosixDisk::Delete(const std::string& name) {
  if (absl::Status s = ValidateName(name); !s.ok()) return s;
  // Close first: a cached fd would keep the inode alive and later writes would go nowhere.
  // No sync: the file is going away.
  Evict(name, /*sync_if_dirty=*/false);
  if (::unlinkat(dir_fd_, name.c_str(), 0) != 0) {
    return ErrnoStatus(errno, "unlink", PathOf(name));
  }
  sync_errors_.erase(name);
  return absl::OkStatus();
}

}  // namespace amaters::storage
