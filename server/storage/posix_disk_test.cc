#include "server/storage/posix_disk.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/check.h"
#include "engine/wal/disk.h"
#include "engine/wal/testing/disk_suite.h"
#include "engine/wal/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace amaters::storage {
namespace {

using ::testing::HasSubstr;

// A fresh directory under $TEST_TMPDIR (Bazel gives each test its own and removes it).
std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/posix_disk.XXXXXX");
  AM_CHECK(::mkdtemp(pattern.data()) != nullptr, "mkdtemp ", pattern);
  return pattern;
}

std::unique_ptr<PosixDisk> MustOpen(const std::string& dir,
                                    const PosixDiskOptions& options = PosixDiskOptions()) {
  absl::StatusOr<std::unique_ptr<PosixDisk>> d = PosixDisk::Open(dir, options);
  AM_CHECK(d.ok(), d.status().ToString());
  return *std::move(d);
}

// Open file descriptors of this process (entries of /proc/self/fd, minus the one used to list).
int OpenFdCount() {
  DIR* d = ::opendir("/proc/self/fd");
  AM_CHECK(d != nullptr);
  int n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;
}

// ---------------------------------------------------------------------------------------------
// The shared wal::Disk suite (engine/wal/testing/disk_suite.cc) on real files.

class PosixEnv : public wal::testing::DiskEnv {
 public:
  PosixEnv() : dir_(MakeTempDir()) { disk_ = MustOpen(dir_); }
  ~PosixEnv() override {
    disk_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  wal::Disk* disk() override { return disk_.get(); }
  // A clean process restart: close everything (dropping the lock), open the same directory.
  void Reopen() override {
    disk_.reset();
    disk_ = MustOpen(dir_);
  }

 private:
  std::string dir_;
  std::unique_ptr<PosixDisk> disk_;
};

// The suite's name must be the bare identifier its TEST_P bodies registered.
using wal::testing::DiskSuite;
INSTANTIATE_TEST_SUITE_P(Posix, DiskSuite,
                         ::testing::Values(wal::testing::DiskSuiteParam{
                             "posix", [] { return std::make_unique<PosixEnv>(); }}),
                         [](const auto& param_info) { return param_info.param.name; });

// ---------------------------------------------------------------------------------------------
// POSIX-specific behaviour.

class PosixDiskTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(PosixDiskTest, OpenCreatesMissingDirectoriesAndHidesTheLockFile) {
  const std::string nested = dir_ + "/a/b/wal";
  std::unique_ptr<PosixDisk> disk = MustOpen(nested);
  struct stat st;
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "the WAL directory holds client data";
  ASSERT_EQ(::stat((nested + "/LOCK").c_str(), &st), 0) << "the lock file exists";
  absl::StatusOr<std::vector<std::string>> names = disk->List();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_TRUE(names->empty()) << "LOCK is not a WAL file";
  // A trailing slash is the same directory.
  disk.reset();
  EXPECT_TRUE(PosixDisk::Open(nested + "/").ok());
}

TEST_F(PosixDiskTest, OpenOnAFileIsAClearError) {
  const std::string file = dir_ + "/not_a_dir";
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  ASSERT_TRUE(disk->Create("not_a_dir").ok());
  disk.reset();
  absl::StatusOr<std::unique_ptr<PosixDisk>> bad = PosixDisk::Open(file);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("not a directory"));
  bad = PosixDisk::Open(file + "/wal");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition) << bad.status();
  EXPECT_EQ(PosixDisk::Open("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PosixDiskTest, SecondOpenOfTheSameDirectoryFailsClearly) {
  std::unique_ptr<PosixDisk> first = MustOpen(dir_);
  absl::StatusOr<std::unique_ptr<PosixDisk>> second = PosixDisk::Open(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(second.status().message());
  EXPECT_THAT(message, HasSubstr(dir_));
  EXPECT_THAT(message, HasSubstr("in use by another process"));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("pid ", ::getpid())));
  // The refused open must not have disturbed the holder.
  ASSERT_TRUE(first->Create("x.wal").ok());
  ASSERT_TRUE(first->Write("x.wal", 0, "data").ok());
  // Closing releases the lock.
  first.reset();
  EXPECT_TRUE(PosixDisk::Open(dir_).ok());
}

TEST_F(PosixDiskTest, AnotherProcessCannotOpenALockedDirectory) {
  std::unique_ptr<PosixDisk> held = MustOpen(dir_);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child shares the parent's lock fd (fork), but its own Open is a new open file
    // description and must conflict. Exit codes: 0 = refused as expected.
    absl::StatusOr<std::unique_ptr<PosixDisk>> d = PosixDisk::Open(dir_);
    ::_exit(!d.ok() && d.status().code() == absl::StatusCode::kFailedPrecondition ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a second process opened a locked WAL directory";
}

TEST_F(PosixDiskTest, SyncedDataSurvivesReopen) {
  {
    std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
    ASSERT_TRUE(disk->Create("0000000000000000.wal").ok());
    ASSERT_TRUE(disk->Write("0000000000000000.wal", 0, "header").ok());
    ASSERT_TRUE(disk->Write("0000000000000000.wal", 6, "+record").ok());
    ASSERT_TRUE(disk->Sync("0000000000000000.wal").ok());
    ASSERT_TRUE(disk->SyncDir().ok());
    EXPECT_EQ(disk->stats().fdatasyncs, 1u);
    EXPECT_EQ(disk->stats().dir_fsyncs, 1u);
  }
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  absl::StatusOr<std::string> bytes = disk->Read("0000000000000000.wal");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, "header+record");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/0000000000000000.wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(PosixDiskTest, WritesBeyondTheEndAreRejected) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  ASSERT_TRUE(disk->Create("a.wal").ok());
  absl::Status s = disk->Write("a.wal", 1, "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir_ + "/a.wal"));
  ASSERT_TRUE(disk->Write("a.wal", 0, "abc").ok());
  EXPECT_TRUE(disk->Write("a.wal", 3, "def").ok()) << "at the end is an append";
  EXPECT_EQ(disk->Write("a.wal", 7, "g").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(disk->Write("a.wal", ~uint64_t{0} - 1, "gg").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(disk->Truncate("a.wal", 7).code(), absl::StatusCode::kInvalidArgument)
      << "truncate only ever cuts";
  EXPECT_EQ(*disk->Read("a.wal"), "abcdef") << "rejected operations change nothing";
  EXPECT_EQ(disk->Write("missing.wal", 0, "x").code(), absl::StatusCode::kNotFound);
}

TEST_F(PosixDiskTest, BadNamesAreInvalidArgumentForEveryOperation) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  const std::vector<std::string> bad = {
      "", ".", "..", "a/b", "/etc/passwd", "../escape.wal", "x..wal", std::string("a\0b", 3),
      "LOCK"};
  for (const std::string& name : bad) {
    SCOPED_TRACE(absl::StrCat("name \"", name, "\""));
    EXPECT_EQ(disk->Create(name).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(disk->Read(name).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(disk->Write(name, 0, "x").code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(disk->Sync(name).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(disk->Truncate(name, 0).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(disk->Delete(name).code(), absl::StatusCode::kInvalidArgument);
  }
  // The lock file was not touched by any of this: a second opener is still refused.
  EXPECT_EQ(PosixDisk::Open(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(disk->List()->empty());
}

TEST_F(PosixDiskTest, ListHasRegularFilesOnlySorted) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  for (const char* name : {"b.wal", "a.wal", "notes.txt"}) ASSERT_TRUE(disk->Create(name).ok());
  ASSERT_EQ(::mkdir((dir_ + "/subdir").c_str(), 0700), 0);
  ASSERT_EQ(::symlink("a.wal", (dir_ + "/link.wal").c_str()), 0);
  EXPECT_EQ(*disk->List(), (std::vector<std::string>{"a.wal", "b.wal", "notes.txt"}));
}

TEST_F(PosixDiskTest, AppendPathReusesCachedFds) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  ASSERT_TRUE(disk->Create("a.wal").ok());
  const uint64_t opens = disk->stats().file_opens;
  uint64_t offset = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(disk->Write("a.wal", offset, "0123456789").ok());
    offset += 10;
    ASSERT_TRUE(disk->Sync("a.wal").ok());
  }
  EXPECT_EQ(disk->stats().file_opens, opens) << "Write and Sync must not reopen the file";
  EXPECT_EQ(disk->stats().fdatasyncs, 100u);
  EXPECT_EQ(disk->Read("a.wal")->size(), 1000u);
}

TEST_F(PosixDiskTest, FdCacheIsBoundedAndEvictsLeastRecentlyUsed) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  constexpr int kFiles = 40;  // well over the default bound of 16
  auto name = [](int i) { return absl::StrFormat("%016x.wal", i); };
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_TRUE(disk->Create(name(i)).ok());
    ASSERT_TRUE(disk->Write(name(i), 0, absl::StrCat("file ", i)).ok());
    EXPECT_LE(disk->cached_fds(), 16u);
  }
  EXPECT_EQ(disk->cached_fds(), 16u);
  EXPECT_EQ(disk->stats().fd_evictions, uint64_t{kFiles - 16});
  // The evicted fds were dirty: each was fdatasync'ed before it was closed.
  EXPECT_EQ(disk->stats().fdatasyncs, uint64_t{kFiles - 16});
  // Files whose fds were evicted are reopened transparently; the most recent 16 are not.
  const uint64_t opens = disk->stats().file_opens;
  ASSERT_TRUE(disk->Write(name(kFiles - 1), 7, "!").ok());
  EXPECT_EQ(disk->stats().file_opens, opens);
  ASSERT_TRUE(disk->Write(name(0), 6, "!").ok());
  EXPECT_EQ(disk->stats().file_opens, opens + 1);
  for (int i = 0; i < kFiles; ++i) ASSERT_TRUE(disk->Sync(name(i)).ok());
  EXPECT_EQ(*disk->Read(name(0)), "file 0!");
  EXPECT_EQ(*disk->Read(name(kFiles - 1)), absl::StrCat("file ", kFiles - 1, "!"));
}

TEST_F(PosixDiskTest, SmallCacheStaysCoherentAcrossDeleteAndTruncate) {
  PosixDiskOptions options;
  options.fd_cache_max = 2;
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_, options);
  ASSERT_TRUE(disk->Create("a.wal").ok());
  ASSERT_TRUE(disk->Write("a.wal", 0, "old contents").ok());
  // Delete closes the cached fd; a new file under the same name is a new file.
  ASSERT_TRUE(disk->Delete("a.wal").ok());
  EXPECT_EQ(disk->cached_fds(), 0u);
  EXPECT_EQ(disk->Write("a.wal", 0, "x").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(disk->Create("a.wal").ok());
  ASSERT_TRUE(disk->Write("a.wal", 0, "new").ok());
  EXPECT_EQ(*disk->Read("a.wal"), "new");
  // Truncate through the cached fd; the next write sees the new size.
  ASSERT_TRUE(disk->Truncate("a.wal", 1).ok());
  EXPECT_EQ(disk->Write("a.wal", 2, "x").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(disk->Write("a.wal", 1, "EW").ok());
  EXPECT_EQ(*disk->Read("a.wal"), "nEW");
  // Truncate of an uncached file opens it; the cache stays within its bound.
  ASSERT_TRUE(disk->Create("b.wal").ok());
  ASSERT_TRUE(disk->Create("c.wal").ok());
  EXPECT_EQ(disk->cached_fds(), 2u);
  ASSERT_TRUE(disk->Truncate("a.wal", 0).ok());
  EXPECT_EQ(disk->cached_fds(), 2u);
  EXPECT_EQ(*disk->Read("a.wal"), "");
  // A file removed behind the disk's back and created again is not written through a stale fd.
  ASSERT_TRUE(disk->Write("c.wal", 0, "stale").ok());
  ASSERT_EQ(::unlink((dir_ + "/c.wal").c_str()), 0);
  ASSERT_TRUE(disk->Create("c.wal").ok());
  ASSERT_TRUE(disk->Write("c.wal", 0, "fresh").ok());
  EXPECT_EQ(*disk->Read("c.wal"), "fresh");
}

TEST_F(PosixDiskTest, ErrorsNameThePathAndTheErrno) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  absl::Status missing = disk->Sync("missing.wal");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr(dir_ + "/missing.wal"));
  EXPECT_THAT(std::string(missing.message()), HasSubstr("ENOENT"));
  ASSERT_TRUE(disk->Create("a.wal").ok());
  absl::Status exists = disk->Create("a.wal");
  EXPECT_EQ(exists.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(exists.message()), HasSubstr("EEXIST"));
  EXPECT_EQ(disk->Read("missing.wal").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(disk->Truncate("missing.wal", 0).code(), absl::StatusCode::kNotFound);
}

// A real full file system is hard to provoke without privileges (a size-limited tmpfs or loop
// mount needs root; RLIMIT_FSIZE gives EFBIG and SIGXFSZ, not ENOSPC). /dev/full returns
// ENOSPC for every write, so a segment name that is a symlink to it exercises the real errno
// path. Skipped where /dev/full is not available.
TEST_F(PosixDiskTest, NoSpaceIsResourceExhaustedAndFailedSyncsAreSticky) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "/dev/full is not available";
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  ASSERT_EQ(::symlink("/dev/full", (dir_ + "/full.wal").c_str()), 0);
  absl::Status s = disk->Write("full.wal", 0, "record");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("ENOSPC"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir_ + "/full.wal"));
  // fdatasync on a character device fails (EINVAL): this file system cannot make data
  // durable. Whatever the errno, the failure is sticky: a retry never reports success.
  absl::Status first = disk->Sync("full.wal");
  ASSERT_FALSE(first.ok());
  EXPECT_THAT(std::string(first.message()), HasSubstr("fdatasync"));
  EXPECT_EQ(disk->Sync("full.wal"), first);
  // Deleting the file (here: the symlink) forgets the error; a new file syncs normally.
  ASSERT_TRUE(disk->Delete("full.wal").ok());
  ASSERT_TRUE(disk->Create("full.wal").ok());
  EXPECT_TRUE(disk->Sync("full.wal").ok());
}

TEST_F(PosixDiskTest, NoFdsAreLeftOpen) {
  const int before = OpenFdCount();
  {
    PosixDiskOptions options;
    options.fd_cache_max = 4;
    std::unique_ptr<PosixDisk> disk = MustOpen(dir_, options);
    for (int i = 0; i < 10; ++i) {
      const std::string name = absl::StrCat(i, ".wal");
      ASSERT_TRUE(disk->Create(name).ok());
      ASSERT_TRUE(disk->Write(name, 0, "x").ok());
      ASSERT_TRUE(disk->Read(name).ok());
    }
    ASSERT_TRUE(disk->List().ok());
    ASSERT_TRUE(disk->Delete("3.wal").ok());
    EXPECT_FALSE(PosixDisk::Open(dir_).ok());  // the refused open closes what it opened
    EXPECT_EQ(OpenFdCount(), before + 2 + 4) << "directory, lock and 4 cached fds";
  }
  EXPECT_EQ(OpenFdCount(), before);
}

// The writer on real files: a group commit batch and recovery after a restart.
TEST_F(PosixDiskTest, WriterBatchRunsOnRealFiles) {
  std::unique_ptr<PosixDisk> disk = MustOpen(dir_);
  absl::StatusOr<wal::ReplayResult> recovered =
      wal::Recover(disk.get(), wal::CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  absl::StatusOr<wal::Writer> writer = wal::Writer::Open(wal::WriterOptions(), *recovered);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (uint64_t i = 1; i <= 10; ++i) {
    raft::PersistRequest req;
    req.seq = i;
    req.entries.push_back(raft::Entry{1, i, raft::EntryType::kNormal, std::string(256, 'x')});
    ASSERT_TRUE(writer->Append(req).ok());
  }
  std::optional<wal::DiskBatch> batch = writer->NextBatch(0);
  ASSERT_TRUE(batch.has_value());
  ASSERT_TRUE(wal::ExecuteBatch(*batch, disk.get()).ok());
  absl::StatusOr<std::vector<uint64_t>> acked = writer->OnBatchDone(batch->id, absl::OkStatus());
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(acked->size(), 10u);
  disk.reset();  // a restart: the lock is released before the directory is opened again
  disk = MustOpen(dir_);
  recovered = wal::Recover(disk.get(), wal::CorruptionPolicy::kRefuseStart);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->entries.size(), 10u);
}

}  // namespace
}  // namespace amaters::storage
