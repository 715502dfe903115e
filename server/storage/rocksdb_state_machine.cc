#include "server/storage/rocksdb_state_machine.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/kv/snapshot_file.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"

namespace amaters::storage {
namespace {

namespace fs = std::filesystem;

constexpr char kUserPrefix = 'k';
constexpr char kHistoryPrefix = 'h';
constexpr char kMetaPrefix = 'm';
constexpr char kLeasePrefix = 'l';
constexpr char kLeaseKeyPrefix = 'a';
constexpr uint8_t kLeaseFormat = 1;
constexpr size_t kLeaseValueBytes = 17;
const char kMetaKey[] = "mstate";  // kMetaPrefix + "state"
constexpr char kDbDir[] = "db";
constexpr char kOldDbDir[] = "db.old";
constexpr char kStagingDir[] = "restore.tmp";
constexpr char kFailedDir[] = "restore.failed";
constexpr char kSnapshotsDir[] = "snapshots";

static_assert(kMetaPrefix != kUserPrefix && kMetaPrefix != kHistoryPrefix &&
                  kUserPrefix != kHistoryPrefix && kLeasePrefix != kUserPrefix &&
                  kLeasePrefix != kHistoryPrefix && kLeasePrefix != kMetaPrefix &&
                  kLeaseKeyPrefix != kUserPrefix && kLeaseKeyPrefix != kHistoryPrefix &&
                  kLeaseKeyPrefix != kMetaPrefix && kLeaseKeyPrefix != kLeasePrefix,
              "metadata, user keys, history and leases must not share a prefix");
// Scans of user keys stop at kUserPrefix + 1 and of the history at kHistoryPrefix + 1.
static_assert(kUserPrefix + 1 == kLeasePrefix && kHistoryPrefix + 1 < kUserPrefix,
              "a scan's upper bound is the next prefix");

// ---------------------------------------------------------------------------------------------
// Encoding

void PutFixed32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string UserKey(const std::string& key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(kUserPrefix);
  k.append(key);
  return k;
}

// 'h' + the key with every 0x00 byte written 0x00 0xff, then 0x00 0x01: the escaped keys sort
// as the keys do and none is a prefix of another, so the history of the keys in [a, b) lies
// in [HistoryBound(a), HistoryBound(b)).
std::string HistoryBound(const std::string& key) {
  std::string k;
  k.reserve(key.size() + 11);
  k.push_back(kHistoryPrefix);
  for (char c : key) {
    k.push_back(c);
    if (c == '\0') k.push_back('\xff');
  }
  k.push_back('\0');
  k.push_back('\x01');
  return k;
}

// HistoryBound(key) + the revision as big-endian u64 (so a key's versions sort by revision).
std::string HistoryKey(const std::string& key, int64_t revision) {
  std::string k = HistoryBound(key);
  for (int i = 7; i >= 0; --i) {
    k.push_back(static_cast<char>((static_cast<uint64_t>(revision) >> (8 * i)) & 0xff));
  }
  return k;
}

// The user key and revision of a HistoryKey; kDataLoss for anything else.
absl::Status DecodeHistoryKey(const rocksdb::Slice& raw, std::string* key, int64_t* revision) {
  key->clear();
  size_t i = 1;
  bool terminated = false;
  while (i < raw.size() && !terminated) {
    const char c = raw[i++];
    if (c != '\0') {
      key->push_back(c);
    } else if (i < raw.size() && raw[i] == '\xff') {
      key->push_back('\0');
      ++i;
    } else if (i < raw.size() && raw[i] == '\x01') {
      ++i;
      terminated = true;
    } else {
      break;
    }
  }
  if (raw.size() < 1 || raw[0] != kHistoryPrefix || !terminated || key->empty() ||
      raw.size() - i != 8) {
    return absl::DataLossError(absl::StrCat("rocksdb state machine: malformed history key \"",
                                            absl::CHexEscape(raw.ToString()), "\""));
  }
  uint64_t rev = 0;
  for (; i < raw.size(); ++i) rev = (rev << 8) | static_cast<uint8_t>(raw[i]);
  *revision = static_cast<int64_t>(rev);
  return absl::OkStatus();
}

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// 'l' + big-endian id: ids sort numerically (they are positive).
std::string LeaseKey(int64_t id) {
  std::string k(1, kLeasePrefix);
  PutBigEndian64(&k, static_cast<uint64_t>(id));
  return k;
}

// 'a' + big-endian id + user key: the keys of one lease are one range, in key order.
std::string LeaseIndexKey(int64_t id, const std::string& key) {
  std::string k(1, kLeaseKeyPrefix);
  PutBigEndian64(&k, static_cast<uint64_t>(id));
  k += key;
  return k;
}

std::string EncodeLease(const kv::Lease& lease) {
  std::string v(1, static_cast<char>(kLeaseFormat));
  PutFixed64(&v, static_cast<uint64_t>(lease.ttl));
  PutFixed64(&v, static_cast<uint64_t>(lease.remaining_ttl));
  return v;
}

absl::StatusOr<kv::Lease> DecodeLease(const rocksdb::Slice& key, const rocksdb::Slice& raw) {
  kv::Lease lease;
  if (key.size() == 9 && key[0] == kLeasePrefix && raw.size() == kLeaseValueBytes &&
      static_cast<uint8_t>(raw[0]) == kLeaseFormat) {
    lease.id = static_cast<int64_t>(GetBigEndian64(key.data() + 1));
    lease.ttl = static_cast<int64_t>(GetFixed64(raw.data() + 1));
    lease.remaining_ttl = static_cast<int64_t>(GetFixed64(raw.data() + 9));
    if (lease.id > 0 && lease.ttl > 0 && lease.remaining_ttl >= 0) return lease;
  }
  return absl::DataLossError(absl::StrCat("rocksdb state machine: malformed lease record (",
                                          key.size(), "-byte key, ", raw.size(),
                                          "-byte value)"));
}

// Format 1 for a pair without a lease, format 2 (the lease after the header's revisions) for
// one with.
std::string EncodeValue(const kv::KeyValue& kv) {
  const bool leased = kv.lease != 0;
  std::string v;
  v.reserve(RocksDbStateMachine::kValueHeaderBytes + 8 + kv.value.size());
  v.push_back(static_cast<char>(leased ? RocksDbStateMachine::kValueFormatLease
                                       : RocksDbStateMachine::kValueFormat));
  PutFixed64(&v, static_cast<uint64_t>(kv.create_revision));
  PutFixed64(&v, static_cast<uint64_t>(kv.mod_revision));
  PutFixed64(&v, static_cast<uint64_t>(kv.version));
  if (leased) PutFixed64(&v, static_cast<uint64_t>(kv.lease));
  v.append(kv.value);
  return v;
}

// `revision` is the store revision: no stored pair was written after it. A tombstone
// (kv::IsTombstone) is a valid value only in the history (`tombstone_ok`).
absl::StatusOr<kv::KeyValue> DecodeValue(const std::string& key, const rocksdb::Slice& raw,
                                         int64_t revision, bool tombstone_ok = false) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat("rocksdb state machine: malformed stored value for key \"",
                     absl::CHexEscape(key), "\" (", raw.size(), " bytes): ", why));
  };
  if (raw.size() < RocksDbStateMachine::kValueHeaderBytes) return bad("shorter than its header");
  const uint8_t format = static_cast<uint8_t>(raw.data()[0]);
  if (format != RocksDbStateMachine::kValueFormat &&
      format != RocksDbStateMachine::kValueFormatLease) {
    return bad(absl::StrCat("unknown value format ", static_cast<int>(format)));
  }
  const size_t header = RocksDbStateMachine::kValueHeaderBytes +
                        (format == RocksDbStateMachine::kValueFormatLease ? 8 : 0);
  if (raw.size() < header) return bad("shorter than its header");
  kv::KeyValue kv;
  kv.key = key;
  kv.create_revision = static_cast<int64_t>(GetFixed64(raw.data() + 1));
  kv.mod_revision = static_cast<int64_t>(GetFixed64(raw.data() + 9));
  kv.version = static_cast<int64_t>(GetFixed64(raw.data() + 17));
  if (format == RocksDbStateMachine::kValueFormatLease) {
    kv.lease = static_cast<int64_t>(GetFixed64(raw.data() + 25));
    if (kv.lease <= 0) return bad(absl::StrCat("impossible lease ", kv.lease));
  }
  const bool tombstone = tombstone_ok && kv.version == 0 && kv.create_revision == 0 &&
                         kv.lease == 0 && raw.size() == header &&
                         kv.mod_revision > kv::kInitialRevision && kv.mod_revision <= revision;
  if (!tombstone && (kv.create_revision <= kv::kInitialRevision ||
                     kv.mod_revision < kv.create_revision || kv.mod_revision > revision ||
                     kv.version < 1)) {
    return bad(absl::StrCat("impossible revisions create=", kv.create_revision,
                            " mod=", kv.mod_revision, " version=", kv.version,
                            " at store revision ", revision));
  }
  kv.value.assign(raw.data() + header, raw.size() - header);
  return kv;
}

std::string EncodeMeta(uint64_t applied_index, kv::Revisions revisions) {
  std::string v;
  PutFixed32(&v, RocksDbStateMachine::kMetaFormat);
  PutFixed64(&v, applied_index);
  PutFixed64(&v, static_cast<uint64_t>(revisions.current));
  PutFixed64(&v, static_cast<uint64_t>(revisions.compacted));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Errors

// RocksDB status -> absl, by what a caller can do about it.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  std::string msg = absl::StrCat("rocksdb state machine: ", context, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(msg);
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(msg);
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return absl::UnavailableError(msg);
  if (s.IsNotSupported()) return absl::UnimplementedError(msg);
  if (s.IsPathNotFound() || s.IsNotFound()) return absl::NotFoundError(msg);
  if (s.IsInvalidArgument()) return absl::FailedPreconditionError(msg);
  return absl::InternalError(msg);
}

absl::Status ErrnoStatus(int err, absl::string_view op, const std::string& path) {
  std::string msg =
      absl::StrCat("rocksdb state machine: ", op, " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM: return absl::ResourceExhaustedError(msg);
    case ENOENT: return absl::NotFoundError(msg);
    case EEXIST: return absl::AlreadyExistsError(msg);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(msg);
    case EROFS:
    case ENOTDIR:
    case EISDIR: return absl::FailedPreconditionError(msg);
    default: return absl::InternalError(msg);
  }
}

absl::Status FsStatus(const std::error_code& ec, absl::string_view op, const std::string& path) {
  return ErrnoStatus(ec.value(), op, path);
}

// fsync(2) of a file or directory: makes its contents, or the names in it, durable.
absl::Status SyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open for fsync", path);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    if (err == EIO) {
      return absl::DataLossError(absl::StrCat("rocksdb state machine: fsync ", path, ": ",
                                              std::strerror(err)));
    }
    return ErrnoStatus(err, "fsync", path);
  }
  return absl::OkStatus();
}

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return FsStatus(ec, "remove", path);
  return absl::OkStatus();
}

absl::Status Rename(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) return FsStatus(ec, absl::StrCat("rename to ", to, ":"), from);
  return absl::OkStatus();
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

rocksdb::Options DbOptions(bool create_if_missing) {
  rocksdb::Options o;
  o.create_if_missing = create_if_missing;
  o.paranoid_checks = true;
  // After a crash, replay RocksDB's WAL up to the first damaged or incomplete batch: the result
  // is always a prefix of the applied batches (see "Durability" in the header).
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.keep_log_file_num = 4;  // RocksDB's own info logs
  return o;
}

// Copies a checkpoint directory to `to` (which must not exist). SST and blob files are
// immutable, so they are hard-linked where possible; other files (MANIFEST, CURRENT, OPTIONS,
// WAL) are copied because RocksDB may write to them after opening the copy.
absl::Status CopyCheckpoint(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::create_directory(to, ec);
  if (ec) return FsStatus(ec, "create directory", to);
  for (fs::directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& src = it->path();
    const std::string dst = (fs::path(to) / src.filename()).string();
    if (!it->is_regular_file(ec) || ec) {
      return absl::DataLossError(
          absl::StrCat("rocksdb state machine: unexpected entry in snapshot: ", src.string()));
    }
    const std::string ext = src.extension().string();
    if (ext == ".sst" || ext == ".blob") {
      fs::create_hard_link(src, dst, ec);
      if (!ec) continue;
      ec.clear();  // another file system: copy instead
    }
    fs::copy_file(src, dst, ec);
    if (ec) return FsStatus(ec, absl::StrCat("copy to ", dst, ":"), src.string());
    absl::Status s = SyncPath(dst);
    if (!s.ok()) return s;
  }
  if (ec) return FsStatus(ec, "list", from);
  return SyncPath(to);
}

}  // namespace

// -------------------------------------------------------------------------------------------
// Reader

absl::StatusOr<std::optional<kv::KeyValue>> RocksDbStateMachine::Reader::Get(
    const std::string& key) const {
  std::string raw;
  rocksdb::Status s = sm_.db_->Get(rocksdb::ReadOptions(), UserKey(key), &raw);
  if (s.IsNotFound()) return std::optional<kv::KeyValue>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("get \"", absl::CHexEscape(key), "\""));
  absl::StatusOr<kv::KeyValue> kv = DecodeValue(key, raw, sm_.revisions_.current);
  if (!kv.ok()) return kv.status();
  return std::optional<kv::KeyValue>(*std::move(kv));
}

absl::Status RocksDbStateMachine::Reader::Scan(
    const std::string& begin, const std::string& end,
    absl::FunctionRef<bool(const kv::KeyValue&)> visit) const {
  const std::string lower = UserKey(begin);
  // No upper bound: stop at the end of the user-key space, the first key after prefix 'k'.
  const std::string upper = end.empty() ? std::string(1, kUserPrefix + 1) : UserKey(end);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(sm_.db_->NewIterator(ro));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    AM_CHECK(k.size() >= 1 && k[0] == kUserPrefix, "scan left the user key space");
    std::string key(k.data() + 1, k.size() - 1);
    absl::StatusOr<kv::KeyValue> kv = DecodeValue(key, it->value(), sm_.revisions_.current);
    if (!kv.ok()) return kv.status();
    if (!visit(*kv)) return absl::OkStatus();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(), absl::StrCat("scan from \"", absl::CHexEscape(begin), "\""));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::Reader::ScanHistory(
    const std::string& begin, const std::string& end,
    absl::FunctionRef<bool(const kv::KeyValue&)> visit) const {
  const std::string lower = HistoryBound(begin);
  const std::string upper = end.empty() ? std::string(1, kHistoryPrefix + 1) : HistoryBound(end);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(sm_.db_->NewIterator(ro));
  std::string key;
  int64_t revision = 0;
  for (it->Seek(lower); it->Valid(); it->Next()) {
    if (absl::Status s = DecodeHistoryKey(it->key(), &key, &revision); !s.ok()) return s;
    absl::StatusOr<kv::KeyValue> kv =
        DecodeValue(key, it->value(), sm_.revisions_.current, /*tombstone_ok=*/true);
    if (!kv.ok()) return kv.status();
    if (kv->mod_revision != revision) {
      return absl::DataLossError(absl::StrCat("rocksdb state machine: history of \"",
                                              absl::CHexEscape(key), "\" at revision ", revision,
                                              " holds mod_revision ", kv->mod_revision));
    }
    if (!visit(*kv)) return absl::OkStatus();
  }
  if (!it->status().ok()) {
    return FromRocks(it->status(),
                     absl::StrCat("scan history from \"", absl::CHexEscape(begin), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<kv::Lease>> RocksDbStateMachine::Reader::GetLease(
    int64_t id) const {
  const std::string key = LeaseKey(id);
  std::string raw;
  rocksdb::Status s = sm_.db_->Get(rocksdb::ReadOptions(), key, &raw);
  if (s.IsNotFound()) return std::optional<kv::Lease>();
  if (!s.ok()) return FromRocks(s, absl::StrCat("get lease ", id));
  absl::StatusOr<kv::Lease> lease = DecodeLease(key, raw);
  if (!lease.ok()) return lease.status();
  return std::optional<kv::Lease>(*lease);
}

absl::Status RocksDbStateMachine::Reader::ScanLeases(
    absl::FunctionRef<bool(const kv::Lease&)> visit) const {
  return ScanLeaseRecords(sm_.db_.get(), visit);
}

absl::Status RocksDbStateMachine::Reader::ScanLeaseKeys(
    int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const {
  const std::string lower = LeaseIndexKey(id, "");
  // The next id's entries start the bound; unsigned, so that the largest id has one too.
  std::string upper(1, kLeaseKeyPrefix);
  PutBigEndian64(&upper, static_cast<uint64_t>(id) + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(sm_.db_->NewIterator(ro));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    AM_CHECK(k.size() > lower.size() && k.starts_with(lower), "lease index scan left lease ", id);
    if (!visit(std::string(k.data() + lower.size(), k.size() - lower.size()))) break;
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("scan lease ", id));
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::ScanLeaseRecords(
    rocksdb::DB* db, absl::FunctionRef<bool(const kv::Lease&)> visit) {
  const std::string upper(1, kLeasePrefix + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(std::string(1, kLeasePrefix)); it->Valid(); it->Next()) {
    absl::StatusOr<kv::Lease> lease = DecodeLease(it->key(), it->value());
    if (!lease.ok()) return lease.status();
    if (!visit(*lease)) break;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan leases");
  return absl::OkStatus();
}

// -------------------------------------------------------------------------------------------
// Open and close

RocksDbStateMachine::RocksDbStateMachine(std::string dir, RocksDbStateMachineOptions options)
    : dir_(std::move(dir)), options_(options) {}

RocksDbStateMachine::~RocksDbStateMachine() {
  // Nothing to report to: a failed close loses at most unsynced batches, which the Raft WAL
  // re-applies (see "Durability").
  (void)CloseLive();
}

std::string RocksDbStateMachine::db_path() const { return (fs::path(dir_) / kDbDir).string(); }

std::string RocksDbStateMachine::snapshot_path(const std::string& name) const {
  return (fs::path(dir_) / kSnapshotsDir / name).string();
}

absl::Status RocksDbStateMachine::CheckOpen() const {
  if (db_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("rocksdb state machine in ", dir_, " is closed"));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::DecodeMetaValue(const std::string& path,
                                                 const std::string& value, Meta* meta) {
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("rocksdb state machine: malformed metadata in ",
                                            path, " (", value.size(), " bytes): ", why));
  };
  // Later formats may only append fields, so anything shorter is damaged whatever its
  // format field says.
  if (value.size() < kMetaV1Bytes) {
    return bad(absl::StrCat("shorter than ", kMetaV1Bytes, " bytes"));
  }
  const uint32_t format = GetFixed32(value.data());
  if (format > kMetaFormat) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rocksdb state machine: ", path, " has metadata format ", format,
        ", this binary reads up to ", kMetaFormat, " (written by a newer version?)"));
  }
  if (format != 1 && format != kMetaFormat) return bad(absl::StrCat("unknown format ", format));
  const size_t want = format == 1 ? kMetaV1Bytes : kMetaBytes;
  if (value.size() != want) return bad(absl::StrCat("want ", want, " bytes"));
  meta->format = format;
  meta->applied_index = GetFixed64(value.data() + 4);
  meta->revisions.current = static_cast<int64_t>(GetFixed64(value.data() + 12));
  // A format 1 store kept no history: it reads as compacted at its revision.
  meta->revisions.compacted = format == 1 ? meta->revisions.current
                                          : static_cast<int64_t>(GetFixed64(value.data() + 20));
  const kv::Revisions& r = meta->revisions;
  // Each applied entry bumps the revision at most once.
  if (r.current < kv::kInitialRevision ||
      static_cast<uint64_t>(r.current - kv::kInitialRevision) > meta->applied_index) {
    return bad(absl::StrCat("impossible revision ", r.current, " at applied index ",
                            meta->applied_index));
  }
  if (r.compacted < kv::kInitialRevision || r.compacted > r.current) {
    return bad(absl::StrCat("impossible compact revision ", r.compacted, " at revision ",
                            r.current));
  }
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::OpenDb(const std::string& path, bool create_if_missing,
                                         std::unique_ptr<rocksdb::DB>* db, Meta* meta) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(DbOptions(create_if_missing), path, &raw);
  if (!s.ok()) {
    // RocksDB reports a held LOCK file as an I/O error; it is another owner, not a bad disk.
    if (s.IsIOError() && (absl::StrContains(s.ToString(), "LOCK") ||
                          absl::StrContains(s.ToString(), "lock hold"))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rocksdb state machine: ", path, " is held open by another process or instance: ",
          s.ToString()));
    }
    return FromRocks(s, absl::StrCat("open ", path));
  }
  db->reset(raw);

  std::string value;
  s = (*db)->Get(rocksdb::ReadOptions(), kMetaKey, &value);
  if (s.ok()) {
    absl::Status d = DecodeMetaValue(path, value, meta);
    if (!d.ok() || meta->format == kMetaFormat) return d;
    return MigrateToHistory(path, db->get(), meta);
  }
  if (!s.IsNotFound()) return FromRocks(s, absl::StrCat("read metadata of ", path));

  // No metadata: a new database (or one whose creation was interrupted before the first
  // write). User keys without metadata cannot be trusted.
  rocksdb::ReadOptions ro;
  const std::string upper(1, kUserPrefix + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it((*db)->NewIterator(ro));
  it->Seek(std::string(1, kUserPrefix));
  if (it->Valid()) {
    return absl::DataLossError(absl::StrCat("rocksdb state machine: ", path,
                                            " holds user keys but no metadata"));
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("scan ", path));
  it.reset();
  if (!create_if_missing) {
    return absl::DataLossError(absl::StrCat("rocksdb state machine: ", path, " has no metadata"));
  }
  *meta = Meta{};
  rocksdb::WriteOptions wo;
  wo.sync = true;  // once per store: a new store is durable before it is used
  s = (*db)->Put(wo, kMetaKey, EncodeMeta(meta->applied_index, meta->revisions));
  if (!s.ok()) return FromRocks(s, absl::StrCat("initialize metadata of ", path));
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::MigrateToHistory(const std::string& path, rocksdb::DB* db,
                                                   Meta* meta) {
  AM_CHECK_EQ(meta->format, 1u);
  AM_CHECK_EQ(meta->revisions.compacted, meta->revisions.current);
  // Bounded batches; the metadata goes last, so a crash part way leaves format 1 and the next
  // open starts over (the 'h' puts are idempotent).
  rocksdb::WriteBatch wb;
  auto flush = [&]() -> absl::Status {
    rocksdb::Status ws = db->Write(rocksdb::WriteOptions(), &wb);
    wb.Clear();
    return ws.ok() ? absl::OkStatus() : FromRocks(ws, absl::StrCat("add history to ", path));
  };
  const std::string upper(1, kUserPrefix + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  for (it->Seek(std::string(1, kUserPrefix)); it->Valid(); it->Next()) {
    const std::string key(it->key().data() + 1, it->key().size() - 1);
    absl::StatusOr<kv::KeyValue> kv = DecodeValue(key, it->value(), meta->revisions.current);
    if (!kv.ok()) return kv.status();
    rocksdb::Status ws = wb.Put(HistoryKey(key, kv->mod_revision), it->value());
    if (!ws.ok()) return FromRocks(ws, "build write batch");
    if (wb.GetDataSize() >= (4u << 20)) {
      if (absl::Status f = flush(); !f.ok()) return f;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("scan ", path));
  meta->format = kMetaFormat;
  rocksdb::Status ws = wb.Put(kMetaKey, EncodeMeta(meta->applied_index, meta->revisions));
  if (!ws.ok()) return FromRocks(ws, "build write batch");
  if (absl::Status f = flush(); !f.ok()) return f;
  rocksdb::FlushOptions fo;
  fo.wait = true;
  rocksdb::Status fs_status = db->Flush(fo);
  if (!fs_status.ok()) return FromRocks(fs_status, absl::StrCat("flush ", path));
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::OpenLive() {
  absl::Status s = CloseLive();
  if (!s.ok()) return s;
  std::unique_ptr<rocksdb::DB> db;
  Meta meta;
  s = OpenDb(db_path(), /*create_if_missing=*/true, &db, &meta);
  if (!s.ok()) return s;
  db_ = std::move(db);
  applied_index_ = meta.applied_index;
  revisions_ = meta.revisions;
  last_versions_.clear();
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::CloseLive() {
  if (db_ == nullptr) return absl::OkStatus();
  rocksdb::Status s = db_->Close();
  db_.reset();
  if (!s.ok()) return FromRocks(s, absl::StrCat("close ", db_path()));
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::Close() { return CloseLive(); }

absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> RocksDbStateMachine::Open(
    const std::string& dir, RocksDbStateMachineOptions options) {
  std::error_code ec;
  const std::string abs_dir = fs::absolute(dir, ec).lexically_normal().string();
  if (ec) return FsStatus(ec, "resolve", dir);
  const fs::path root(abs_dir);
  fs::create_directories(root / kSnapshotsDir, ec);
  if (ec) return FsStatus(ec, "create directory", (root / kSnapshotsDir).string());

  std::unique_ptr<RocksDbStateMachine> sm(new RocksDbStateMachine(abs_dir, options));
  const std::string live = sm->db_path();
  const std::string old = (root / kOldDbDir).string();
  const std::string failed = (root / kFailedDir).string();

  // Finish or undo a restore that a crash interrupted (header, "Snapshots").
  absl::Status s = RemoveAll((root / kStagingDir).string());
  if (!s.ok()) return s;
  // Imports a crash interrupted were never acknowledged.
  for (fs::directory_iterator it(root / kSnapshotsDir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() == ".import") {
      if (s = RemoveAll(it->path().string()); !s.ok()) return s;
    }
  }
  if (ec) return FsStatus(ec, "list", (root / kSnapshotsDir).string());
  s = RemoveAll(failed);
  if (!s.ok()) return s;
  if (Exists(old)) {
    if (Exists(live)) {
      // The swap happened. Prefer the restored database if it opens, else the old one.
      std::unique_ptr<rocksdb::DB> probe;
      Meta meta;
      if (OpenDb(live, /*create_if_missing=*/false, &probe, &meta).ok()) {
        probe.reset();
        s = RemoveAll(old);
      } else {
        probe.reset();
        s = Rename(live, failed);
        if (s.ok()) s = Rename(old, live);
        if (s.ok()) s = RemoveAll(failed);
      }
    } else {
      s = Rename(old, live);  // the swap did not happen
    }
    if (!s.ok()) return s;
    s = SyncPath(abs_dir);
    if (!s.ok()) return s;
  }

  s = sm->OpenLive();
  if (!s.ok()) return s;
  // RocksDB syncs the contents of db/, not the names of db/ and snapshots/ in `dir`.
  s = SyncPath(abs_dir);
  if (!s.ok()) return s;
  return sm;
}

// -------------------------------------------------------------------------------------------
// StateMachine

absl::StatusOr<std::vector<kv::ApplyResult>> RocksDbStateMachine::Apply(
    absl::Span<const kv::ApplyItem> batch) {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  Reader reader(*this);
  absl::StatusOr<kv::BatchOutcome> out =
      kv::ExecuteBatch(reader, applied_index_, revisions_, batch);
  if (!out.ok()) return out.status();
  if (batch.empty()) {
    last_versions_.clear();
    return std::move(out->results);
  }

  // One WriteBatch: the data changes and the metadata that covers them, atomically.
  rocksdb::WriteBatch wb;
  for (const auto& [key, kv] : out->changes) {
    rocksdb::Status ws = kv.has_value() ? wb.Put(UserKey(key), EncodeValue(*kv))
                                        : wb.Delete(UserKey(key));
    if (!ws.ok()) return FromRocks(ws, "build write batch");
  }
  for (const kv::KeyValue& kv : out->versions) {
    rocksdb::Status ws = wb.Put(HistoryKey(kv.key, kv.mod_revision), EncodeValue(kv));
    if (!ws.ok()) return FromRocks(ws, "build write batch");
  }
  for (const kv::KeyValue& kv : out->discarded) {
    rocksdb::Status ws = wb.Delete(HistoryKey(kv.key, kv.mod_revision));
    if (!ws.ok()) return FromRocks(ws, "build write batch");
  }
  for (const auto& [id, lease] : out->lease_changes) {
    rocksdb::Status ws = lease.has_value() ? wb.Put(LeaseKey(id), EncodeLease(*lease))
                                           : wb.Delete(LeaseKey(id));
    if (!ws.ok()) return FromRocks(ws, "build write batch");
  }
  for (const auto& [entry, add] : out->lease_keys) {
    const std::string k = LeaseIndexKey(entry.first, entry.second);
    rocksdb::Status ws = add ? wb.Put(k, "") : wb.Delete(k);
    if (!ws.ok()) return FromRocks(ws, "build write batch");
  }
  rocksdb::Status ws = wb.Put(kMetaKey, EncodeMeta(out->applied_index, out->revisions));
  if (!ws.ok()) return FromRocks(ws, "build write batch");
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync_writes;
  ws = db_->Write(wo, &wb);
  if (!ws.ok()) {
    return FromRocks(ws, absl::StrCat("apply entries ", batch.front().index, "..",
                                      batch.back().index));
  }
  AM_CHECK_GE(out->revisions.current, revisions_.current, "revision never decreases");
  AM_CHECK_GE(out->revisions.compacted, revisions_.compacted, "compactions never go back");
  applied_index_ = out->applied_index;
  revisions_ = out->revisions;
  last_versions_ = std::move(out->versions);
  return std::move(out->results);
}

absl::StatusOr<kv::RangeResponse> RocksDbStateMachine::Range(
    const kv::RangeRequest& request) const {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  return kv::ExecuteRange(Reader(*this), revisions_, request);
}

absl::Status RocksDbStateMachine::History(
    const std::string& key, const std::string& range_end, int64_t from,
    absl::FunctionRef<bool(const kv::KeyValue&)> visit) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return kv::ExecuteHistory(Reader(*this), revisions_, key, range_end, from, visit);
}

absl::Status RocksDbStateMachine::Sync() {
  absl::Status s = CheckOpen();
  if (!s.ok()) return s;
  rocksdb::Status rs = db_->FlushWAL(/*sync=*/true);
  if (!rs.ok()) return FromRocks(rs, "sync");
  return absl::OkStatus();
}

absl::StatusOr<uint32_t> RocksDbStateMachine::HashKV(int64_t revision) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return kv::HashStateAt(Reader(*this), revisions_, revision);
}

absl::StatusOr<std::optional<kv::Lease>> RocksDbStateMachine::GetLease(int64_t id) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return Reader(*this).GetLease(id);
}

absl::Status RocksDbStateMachine::ForEachLease(
    absl::FunctionRef<bool(const kv::Lease&)> visit) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return ScanLeaseRecords(db_.get(), visit);
}

absl::Status RocksDbStateMachine::ForEachLeaseKey(
    int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  return Reader(*this).ScanLeaseKeys(id, visit);
}

absl::Status RocksDbStateMachine::Defragment() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rocksdb::Status rs = db_->CompactRange(options, nullptr, nullptr);  // flushes first
  if (!rs.ok()) return FromRocks(rs, "defragment");
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::CreateSnapshot(const std::string& name) {
  absl::Status s = kv::ValidateSnapshotName(name);
  if (!s.ok()) return s;
  s = CheckOpen();
  if (!s.ok()) return s;
  const std::string path = snapshot_path(name);
  if (Exists(path)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  rocksdb::Checkpoint* raw = nullptr;
  rocksdb::Status rs = rocksdb::Checkpoint::Create(db_.get(), &raw);
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  if (!rs.ok()) return FromRocks(rs, "create checkpoint object");
  rs = checkpoint->CreateCheckpoint(path);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("create snapshot ", name));
  return SyncPath((fs::path(dir_) / kSnapshotsDir).string());
}

absl::Status RocksDbStateMachine::DeleteSnapshot(const std::string& name) {
  absl::Status s = kv::ValidateSnapshotName(name);
  if (!s.ok()) return s;
  s = CheckOpen();
  if (!s.ok()) return s;
  const std::string path = snapshot_path(name);
  if (!Exists(path)) return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));
  s = RemoveAll(path);
  if (!s.ok()) return s;
  return SyncPath((fs::path(dir_) / kSnapshotsDir).string());
}

absl::Status RocksDbStateMachine::ExportSnapshot(const std::string& name,
                                                 SnapshotSink sink) const {
  absl::Status s = kv::ValidateSnapshotName(name);
  if (!s.ok()) return s;
  const std::string path = snapshot_path(name);
  if (!Exists(path)) return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));
  return ExportDatabase(path, sink);
}

absl::Status RocksDbStateMachine::ExportDatabase(const std::string& path, SnapshotSink sink) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::OpenForReadOnly(DbOptions(false), path, &raw);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("open ", path, " read-only"));
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string meta_value;
  rs = db->Get(rocksdb::ReadOptions(), kMetaKey, &meta_value);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("read metadata of ", path));
  Meta meta;
  if (absl::Status s = DecodeMetaValue(path, meta_value, &meta); !s.ok()) return s;
  kv::SnapshotFileWriter writer(meta.applied_index, meta.revisions.current,
                                meta.revisions.compacted,
                                [&sink](absl::string_view piece) { return sink(piece); });
  // A format 1 database (a snapshot taken before the store kept history) has only 'k' pairs,
  // each its key's one version.
  const bool history = meta.format != 1;
  const char prefix = history ? kHistoryPrefix : kUserPrefix;
  const std::string upper(1, prefix + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  std::string key;
  int64_t revision = 0;
  for (it->Seek(std::string(1, prefix)); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (history) {
      if (absl::Status s = DecodeHistoryKey(k, &key, &revision); !s.ok()) return s;
    } else {
      key.assign(k.data() + 1, k.size() - 1);
    }
    absl::StatusOr<kv::KeyValue> kv =
        DecodeValue(key, it->value(), meta.revisions.current, /*tombstone_ok=*/history);
    if (!kv.ok()) return kv.status();
    if (absl::Status s = writer.Add(*kv); !s.ok()) return s;
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("scan ", path));
  std::vector<kv::Lease> leases;
  absl::Status s = ScanLeaseRecords(db.get(), [&](const kv::Lease& lease) {
    leases.push_back(lease);
    return true;
  });
  if (!s.ok()) return s;
  if (s = writer.BeginLeases(leases.size()); !s.ok()) return s;
  for (const kv::Lease& lease : leases) {
    if (s = writer.AddLease(lease); !s.ok()) return s;
  }
  return writer.Finish();
}

absl::Status RocksDbStateMachine::ImportSnapshot(const std::string& name,
                                                 SnapshotSource source) {
  absl::Status s = kv::ValidateSnapshotName(name);
  if (!s.ok()) return s;
  const std::string path = snapshot_path(name);
  if (Exists(path)) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  const std::string tmp = path + ".import";
  if (s = RemoveAll(tmp); !s.ok()) return s;
  s = BuildDatabase(tmp, source);
  if (!s.ok()) {
    (void)RemoveAll(tmp);  // never reaches a snapshot name
    return s;
  }
  if (s = SyncPath(tmp); !s.ok()) return s;
  if (s = Rename(tmp, path); !s.ok()) return s;
  return SyncPath((fs::path(dir_) / kSnapshotsDir).string());
}

absl::Status RocksDbStateMachine::BuildDatabase(const std::string& path, SnapshotSource source) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(DbOptions(true), path, &raw);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("create ", path));
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // flushed and synced below before the database is used
  rocksdb::WriteBatch wb;
  auto flush_batch = [&]() -> absl::Status {
    rocksdb::Status ws = db->Write(wo, &wb);
    wb.Clear();
    return ws.ok() ? absl::OkStatus() : FromRocks(ws, absl::StrCat("write ", path));
  };
  // Versions come in (key, revision) order: a key's last one, unless a tombstone, is its 'k'.
  std::optional<kv::KeyValue> newest;
  // Leases that live keys are attached to; each must be among the file's leases.
  std::set<int64_t> used_leases;
  auto put_newest = [&]() -> absl::Status {
    if (!newest.has_value() || kv::IsTombstone(*newest)) return absl::OkStatus();
    rocksdb::Status ws = wb.Put(UserKey(newest->key), EncodeValue(*newest));
    if (ws.ok() && newest->lease != 0) {
      used_leases.insert(newest->lease);
      ws = wb.Put(LeaseIndexKey(newest->lease, newest->key), "");
    }
    return ws.ok() ? absl::OkStatus() : FromRocks(ws, "build write batch");
  };
  kv::SnapshotFileReader reader(
      [&](const kv::KeyValue& kv) -> absl::Status {
        if (newest.has_value() && newest->key != kv.key) {
          if (absl::Status s = put_newest(); !s.ok()) return s;
        }
        newest = kv;
        rocksdb::Status ws = wb.Put(HistoryKey(kv.key, kv.mod_revision), EncodeValue(kv));
        if (!ws.ok()) return FromRocks(ws, "build write batch");
        return wb.GetDataSize() >= (4u << 20) ? flush_batch() : absl::OkStatus();
      },
      [&](const kv::Lease& lease) -> absl::Status {
        // The pairs came first: the last key's 'k' pair is still pending.
        if (absl::Status s = put_newest(); !s.ok()) return s;
        newest.reset();
        used_leases.erase(lease.id);
        rocksdb::Status ws = wb.Put(LeaseKey(lease.id), EncodeLease(lease));
        if (!ws.ok()) return FromRocks(ws, "build write batch");
        return wb.GetDataSize() >= (4u << 20) ? flush_batch() : absl::OkStatus();
      });
  while (true) {
    absl::StatusOr<std::string> piece = source();
    if (!piece.ok()) return piece.status();
    if (piece->empty()) break;
    if (absl::Status s = reader.Feed(*piece); !s.ok()) return s;
  }
  if (absl::Status s = reader.Finish(); !s.ok()) return s;
  if (absl::Status s = put_newest(); !s.ok()) return s;
  if (!used_leases.empty()) {
    return absl::DataLossError(absl::StrCat("snapshot file: keys are attached to lease ",
                                            *used_leases.begin(), ", which it does not hold"));
  }
  rocksdb::Status ws =
      wb.Put(kMetaKey, EncodeMeta(reader.applied_index(),
                                  kv::Revisions{reader.revision(), reader.compact_revision()}));
  if (!ws.ok()) return FromRocks(ws, "build write batch");
  if (absl::Status s = flush_batch(); !s.ok()) return s;
  rocksdb::FlushOptions fo;
  fo.wait = true;
  rs = db->Flush(fo);
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("flush ", path));
  rs = db->Close();
  if (!rs.ok()) return FromRocks(rs, absl::StrCat("close ", path));
  return absl::OkStatus();
}

absl::Status RocksDbStateMachine::RestoreSnapshot(const std::string& name) {
  absl::Status s = kv::ValidateSnapshotName(name);
  if (!s.ok()) return s;
  s = CheckOpen();
  if (!s.ok()) return s;
  const std::string src = snapshot_path(name);
  if (!Exists(src)) return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));

  // 1. Stage and check a private copy; the live database stays open and untouched.
  const fs::path root(dir_);
  const std::string staging = (root / kStagingDir).string();
  const std::string live = db_path();
  const std::string old = (root / kOldDbDir).string();
  // A db.old left by an earlier restore whose cleanup failed is garbage (the live db exists).
  s = RemoveAll(old);
  if (s.ok()) s = RemoveAll(staging);
  if (!s.ok()) return s;
  s = CopyCheckpoint(src, staging);
  if (s.ok()) {
    std::unique_ptr<rocksdb::DB> probe;
    Meta meta;
    s = OpenDb(staging, /*create_if_missing=*/false, &probe, &meta);
    if (probe != nullptr) {
      rocksdb::Status cs = probe->Close();
      if (s.ok() && !cs.ok()) s = FromRocks(cs, absl::StrCat("close ", staging));
    }
  }
  if (!s.ok()) {
    (void)RemoveAll(staging);
    return absl::Status(s.code(), absl::StrCat("restore snapshot ", name,
                                               " (the live state is unchanged): ", s.message()));
  }

  // 2. Swap. From here on, any failure puts the old database back and reopens it.
  s = CloseLive();
  bool moved_live = false;
  bool swapped = false;
  if (s.ok()) s = Rename(live, old);
  if (s.ok()) moved_live = true;
  if (s.ok()) s = SyncPath(dir_);
  if (s.ok()) s = Rename(staging, live);
  if (s.ok()) swapped = true;
  if (s.ok()) s = SyncPath(dir_);
  // 3. Open the restored database.
  if (s.ok()) s = OpenLive();
  if (s.ok()) {
    // The old database is garbage now; if removing it fails, the next Open removes it.
    (void)RemoveAll(old);
    (void)SyncPath(dir_);
    return absl::OkStatus();
  }

  absl::Status rollback = absl::OkStatus();
  if (swapped) {
    rollback = Rename(live, (root / kFailedDir).string());
  }
  if (rollback.ok() && moved_live) rollback = Rename(old, live);
  if (rollback.ok()) rollback = SyncPath(dir_);
  if (rollback.ok()) rollback = OpenLive();
  (void)RemoveAll((root / kFailedDir).string());
  (void)RemoveAll(staging);
  if (!rollback.ok()) {
    return absl::Status(
        s.code(), absl::StrCat("restore snapshot ", name, ": ", s.message(),
                               "; putting the old database back failed too (", rollback.ToString(),
                               "); the state machine is closed, reopen ", dir_, " to recover"));
  }
  return absl::Status(s.code(), absl::StrCat("restore snapshot ", name,
                                             " (the live state is unchanged): ", s.message()));
}

}  // namespace amaters::storage
