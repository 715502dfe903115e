#include "server/storage/snapshot_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <vector>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/raft/configuration.h"

namespace amaters::storage {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kPieceBytes = 1 << 20;

absl::Status Errno(absl::string_view op, const std::string& path) {
  const int err = errno;
  std::string msg = absl::StrCat("snapshot store: ", op, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status SyncPath(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("open", path);
  if (::fsync(fd.get()) != 0) return Errno("fsync", path);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const char* data, size_t n, uint64_t offset, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Errno("write", path);
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAt(const std::string& path, uint64_t offset, uint64_t max) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("open", path);
  std::string out(max, '\0');
  size_t got = 0;
  while (got < max) {
    const ssize_t r = ::pread(fd.get(), &out[got], max - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("read", path);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

// Size and CRC-32C of a whole file.
absl::StatusOr<std::pair<uint64_t, uint32_t>> Checksum(const std::string& path) {
  uint64_t size = 0;
  uint32_t crc = 0;
  while (true) {
    absl::StatusOr<std::string> piece = ReadAt(path, size, kPieceBytes);
    if (!piece.ok()) return piece.status();
    if (piece->empty()) break;
    crc = Crc32cExtend(crc, piece->data(), piece->size());
    size += piece->size();
  }
  return std::make_pair(size, crc);
}

// The index in a name "<prefix><16 hex><suffix>", if it is one.
std::optional<raft::Index> ParseIndex(const std::string& name, absl::string_view prefix,
                                      absl::string_view suffix) {
  if (name.size() != prefix.size() + 16 + suffix.size() || !absl::StartsWith(name, prefix) ||
      !absl::EndsWith(name, suffix)) {
    return std::nullopt;
  }
  uint64_t index = 0;
  if (!absl::SimpleHexAtoi(name.substr(prefix.size(), 16), &index)) return std::nullopt;
  return index;
}

// incoming-<index>.meta, one line:
//   staged index=<i> term=<t> voters=<ids> voters_outgoing=<ids> learners=<ids> auto_leave=<0|1>
//          members=<hex> total_bytes=<n> total_crc=<8 hex>
// (ids: comma-separated, possibly none; members: raft::AppendMemberList's bytes in hex).
constexpr uint64_t kMaxStagedMetaBytes = 4u << 20;

std::string FormatStagedMeta(const node::SnapshotWrite& w) {
  std::string members;
  raft::AppendMemberList(w.meta.members, &members);
  return absl::StrFormat(
      "staged index=%d term=%d voters=%s voters_outgoing=%s learners=%s auto_leave=%d "
      "members=%s total_bytes=%d total_crc=%08x\n",
      w.meta.index, w.meta.term, absl::StrJoin(w.meta.voters, ","),
      absl::StrJoin(w.meta.voters_outgoing, ","), absl::StrJoin(w.meta.learners, ","),
      w.meta.auto_leave ? 1 : 0, absl::BytesToHexString(members), w.total_bytes, w.total_crc);
}

std::optional<node::StagedSnapshot> ParseStagedMeta(absl::string_view text) {
  if (!absl::ConsumeSuffix(&text, "\n")) return std::nullopt;  // torn
  std::vector<absl::string_view> fields = absl::StrSplit(text, ' ');
  if (fields.size() != 10 || fields[0] != "staged") return std::nullopt;
  std::map<std::string, std::string, std::less<>> kv;
  for (size_t i = 1; i < fields.size(); ++i) {
    std::pair<std::string, std::string> p = absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
    kv[p.first] = p.second;
  }
  node::StagedSnapshot s;
  uint64_t crc = 0;
  if (!absl::SimpleAtoi(kv["index"], &s.meta.index) || !absl::SimpleAtoi(kv["term"], &s.meta.term) ||
      !absl::SimpleAtoi(kv["total_bytes"], &s.total_bytes) ||
      !absl::SimpleHexAtoi(kv["total_crc"], &crc) || crc > UINT32_MAX || s.meta.index == 0 ||
      s.total_bytes == 0) {
    return std::nullopt;
  }
  s.total_crc = static_cast<uint32_t>(crc);
  const std::pair<const char*, std::vector<raft::NodeId>*> lists[] = {
      {"voters", &s.meta.voters},
      {"voters_outgoing", &s.meta.voters_outgoing},
      {"learners", &s.meta.learners}};
  for (const auto& [name, ids] : lists) {
    for (absl::string_view v : absl::StrSplit(kv[name], ',', absl::SkipEmpty())) {
      raft::NodeId id = 0;
      if (!absl::SimpleAtoi(v, &id)) return std::nullopt;
      ids->push_back(id);
    }
  }
  if (kv["auto_leave"] != "0" && kv["auto_leave"] != "1") return std::nullopt;
  s.meta.auto_leave = kv["auto_leave"] == "1";
  const std::string& hex = kv["members"];
  if (hex.size() % 2 != 0 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::nullopt;
  }
  const std::string members = absl::HexStringToBytes(hex);
  size_t at = 0;
  if (!raft::ParseMemberList(members, &at, raft::kMaxMembers, &s.meta.members) ||
      at != members.size()) {
    return std::nullopt;
  }
  return s;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (fd.get() < 0) return Errno("create", tmp);
    if (absl::Status s = WriteAll(fd.get(), text.data(), text.size(), 0, tmp); !s.ok()) return s;
    if (::fsync(fd.get()) != 0) return Errno("fsync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", tmp);
  return absl::OkStatus();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace

absl::StatusOr<SnapshotStore> SnapshotStore::Open(const std::string& dir, RocksDbStateMachine* sm) {
  AM_CHECK(sm != nullptr);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("snapshot store: create ", dir, ": ", ec.message()));
  }
  // Exports interrupted by a crash are incomplete: drop them (they are made again on demand).
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".tmp") fs::remove(it->path(), ec);
  }
  // So are the checkpoints of Maintenance.Snapshot calls a crash interrupted.
  const fs::path checkpoints = fs::path(sm->dir()) / "snapshots";
  std::vector<std::string> exports;
  for (fs::directory_iterator it(checkpoints, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (absl::StartsWith(name, kExportPrefix) && it->path().extension().empty()) {
      exports.push_back(name);
    }
  }
  for (const std::string& name : exports) {
    if (absl::Status s = sm->DeleteSnapshot(name); !s.ok()) return s;
  }
  return SnapshotStore(dir, sm);
}

std::string SnapshotStore::Name(raft::Index index) { return absl::StrFormat("snap-%016x", index); }

std::string SnapshotStore::FilePath(raft::Index index) const {
  return absl::StrCat(dir_, "/", Name(index), ".snap");
}

std::string SnapshotStore::StagePath(raft::Index index) const {
  return absl::StrFormat("%s/incoming-%016x.part", dir_, index);
}

bool SnapshotStore::Has(raft::Index index) const {
  std::error_code ec;
  return fs::exists(fs::path(sm_->dir()) / "snapshots" / Name(index), ec);
}

absl::StatusOr<raft::Index> SnapshotStore::Take() {
  const raft::Index index = sm_->applied_index();
  if (Has(index)) return index;  // asked twice at the same index
  if (absl::Status s = sm_->CreateSnapshot(Name(index)); !s.ok()) return s;
  return index;
}

absl::StatusOr<SnapshotStore::FileInfo> SnapshotStore::Export(raft::Index index) {
  if (auto it = files_.find(index); it != files_.end()) return it->second;
  const std::string path = FilePath(index);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    const std::string tmp = path + ".tmp";
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (fd.get() < 0) return Errno("create", tmp);
    uint64_t at = 0;
    absl::Status s = sm_->ExportSnapshot(Name(index), [&](absl::string_view piece) {
      absl::Status w = WriteAll(fd.get(), piece.data(), piece.size(), at, tmp);
      at += piece.size();
      return w;
    });
    if (s.ok() && ::fsync(fd.get()) != 0) s = Errno("fsync", tmp);
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = Errno("rename", tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    if (absl::Status d = SyncPath(dir_); !d.ok()) return d;
  }
  absl::StatusOr<std::pair<uint64_t, uint32_t>> sum = Checksum(path);
  if (!sum.ok()) return sum.status();
  FileInfo info{sum->first, sum->second};
  files_[index] = info;
  return info;
}

absl::StatusOr<node::SnapshotBytes> SnapshotStore::Read(raft::Index index, uint64_t offset,
                                                        uint64_t max_bytes) {
  if (!Has(index)) {
    return absl::NotFoundError(absl::StrCat("snapshot ", Name(index), " is not kept any more"));
  }
  absl::StatusOr<FileInfo> info = Export(index);
  if (!info.ok()) return info.status();
  absl::StatusOr<std::string> data = ReadAt(FilePath(index), offset, max_bytes);
  if (!data.ok()) return data.status();
  return node::SnapshotBytes{*std::move(data), info->size, info->crc};
}

std::string SnapshotStore::StageMetaPath(raft::Index index) const {
  return absl::StrFormat("%s/incoming-%016x.meta", dir_, index);
}

absl::Status SnapshotStore::Stage(const node::SnapshotWrite& w) {
  const std::string path = StagePath(w.meta.index);
  if (w.offset == 0) {
    absl::Status s = WriteFileAtomically(StageMetaPath(w.meta.index), FormatStagedMeta(w));
    if (!s.ok()) return s;
  }
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (w.offset == 0 ? O_TRUNC : 0);
  Fd fd(::open(path.c_str(), flags, 0640));
  if (fd.get() < 0) return Errno("open", path);
  if (w.offset > 0 && ::ftruncate(fd.get(), static_cast<off_t>(w.offset)) != 0) {
    return Errno("truncate", path);  // drops anything staged past the acknowledged offset
  }
  return WriteAll(fd.get(), w.data.data(), w.data.size(), w.offset, path);
}

std::optional<node::StagedSnapshot> SnapshotStore::Staged() const {
  std::optional<raft::Index> newest;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<raft::Index> i = ParseIndex(it->path().filename().string(), "incoming-", ".part");
    if (i && (!newest || *i > *newest)) newest = i;
  }
  if (!newest) return std::nullopt;
  absl::StatusOr<std::string> text = ReadAt(StageMetaPath(*newest), 0, kMaxStagedMetaBytes);
  if (!text.ok()) return std::nullopt;  // staged before the metadata existed: start over
  std::optional<node::StagedSnapshot> staged = ParseStagedMeta(*text);
  if (!staged || staged->meta.index != *newest) return std::nullopt;
  staged->bytes = fs::file_size(StagePath(*newest), ec);
  if (ec) return std::nullopt;
  return staged;
}

absl::Status SnapshotStore::Keep(raft::Index index, uint64_t total_bytes, uint32_t total_crc) {
  const std::string path = StagePath(index);
  if (absl::Status s = SyncPath(path); !s.ok()) return s;
  absl::StatusOr<std::pair<uint64_t, uint32_t>> sum = Checksum(path);
  if (!sum.ok()) return sum.status();
  if (sum->first != total_bytes || sum->second != total_crc) {
    ::unlink(path.c_str());
    return absl::DataLossError(absl::StrFormat(
        "snapshot %s received with %d bytes and CRC-32C %08x, the leader sent %d bytes with "
        "%08x; receiving it again", Name(index), sum->first, sum->second, total_bytes, total_crc));
  }
  if (!Has(index)) {
    uint64_t at = 0;
    absl::Status s = sm_->ImportSnapshot(Name(index), [&]() -> absl::StatusOr<std::string> {
      absl::StatusOr<std::string> piece = ReadAt(path, at, kPieceBytes);
      if (piece.ok()) at += piece->size();
      return piece;
    });
    if (!s.ok()) return s;
  }
  if (::rename(path.c_str(), FilePath(index).c_str()) != 0) return Errno("rename", path);
  ::unlink(StageMetaPath(index).c_str());  // the copy is kept: nothing to resume
  files_[index] = FileInfo{total_bytes, total_crc};
  return SyncPath(dir_);
}

absl::Status SnapshotStore::Install(raft::Index index) { return sm_->RestoreSnapshot(Name(index)); }

absl::Status SnapshotStore::DeleteBelow(raft::Index index) {
  absl::StatusOr<std::vector<Info>> kept = List();
  if (!kept.ok()) return kept.status();
  for (const Info& i : *kept) {
    if (i.index >= index) continue;
    if (absl::Status s = sm_->DeleteSnapshot(Name(i.index)); !s.ok()) return s;
  }
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::optional<raft::Index> file = ParseIndex(name, "snap-", ".snap");
    if (!file) file = ParseIndex(name, "incoming-", ".part");
    if (!file) file = ParseIndex(name, "incoming-", ".meta");
    if (file && *file < index) {
      fs::remove(it->path(), ec);
      files_.erase(*file);
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("snapshot store: list ", dir_, ": ", ec.message()));
  return SyncPath(dir_);
}

absl::StatusOr<std::vector<SnapshotStore::Info>> SnapshotStore::List() const {
  std::vector<Info> out;
  std::error_code ec;
  const fs::path checkpoints = fs::path(sm_->dir()) / "snapshots";
  for (fs::directory_iterator it(checkpoints, ec), end; !ec && it != end; it.increment(ec)) {
    std::optional<raft::Index> index = ParseIndex(it->path().filename().string(), "snap-", "");
    if (!index) continue;
    Info info;
    info.index = *index;
    info.checkpoint_bytes = DirBytes(it->path().string());
    std::error_code fe;
    const uint64_t file = fs::file_size(FilePath(*index), fe);
    info.file_bytes = fe ? 0 : file;
    out.push_back(info);
  }
  if (ec) return absl::InternalError(absl::StrCat("snapshot store: list ", checkpoints.string(), ": ", ec.message()));
  std::sort(out.begin(), out.end(), [](const Info& a, const Info& b) { return a.index < b.index; });
  return out;
}

}  // namespace amaters::storage
