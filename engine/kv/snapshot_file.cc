#include "engine/kv/snapshot_file.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"

namespace amaters::kv {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

absl::Status Corrupt(const std::string& why) {
  return absl::DataLossError(absl::StrCat("snapshot file: ", why));
}

}  // namespace

// ---- Writer ---------------------------------------------------------------------------------

SnapshotFileWriter::SnapshotFileWriter(uint64_t applied_index, int64_t revision,
                                       int64_t compact_revision, Sink sink)
    : sink_(std::move(sink)) {
  AM_CHECK_LE(compact_revision, revision);
  AM_CHECK_GE(compact_revision, kInitialRevision);
  std::string h(kSnapshotFileMagic, sizeof(kSnapshotFileMagic));
  PutU32(&h, kSnapshotFileVersion);
  PutU32(&h, 0);
  PutU64(&h, applied_index);
  PutU64(&h, static_cast<uint64_t>(revision));
  PutU64(&h, static_cast<uint64_t>(compact_revision));
  AM_CHECK_EQ(h.size(), kSnapshotFileHeaderBytes);
  status_ = Emit(h);
}

absl::Status SnapshotFileWriter::Emit(const std::string& piece) {
  crc_ = Crc32cExtend(crc_, piece.data(), piece.size());
  bytes_ += piece.size();
  return sink_(piece);
}

absl::Status SnapshotFileWriter::Add(const KeyValue& kv) {
  if (!status_.ok()) return status_;
  AM_CHECK(count_ == 0 || kv.key > last_key_ ||
               (kv.key == last_key_ && kv.mod_revision > last_mod_),
           "snapshot versions out of order");
  AM_CHECK(!kv.key.empty() && kv.key.size() <= kSnapshotMaxKeyBytes, "snapshot key size");
  AM_CHECK_LE(kv.value.size(), kSnapshotMaxValueBytes, "snapshot value size");
  AM_CHECK(!leases_begun_, "snapshot pair after the leases");
  std::string p;
  p.reserve(40 + kv.key.size() + kv.value.size());
  PutU32(&p, static_cast<uint32_t>(kv.key.size()));
  p += kv.key;
  PutU32(&p, static_cast<uint32_t>(kv.value.size()));
  p += kv.value;
  PutU64(&p, static_cast<uint64_t>(kv.create_revision));
  PutU64(&p, static_cast<uint64_t>(kv.mod_revision));
  PutU64(&p, static_cast<uint64_t>(kv.version));
  PutU64(&p, static_cast<uint64_t>(kv.lease));
  last_key_ = kv.key;
  last_mod_ = kv.mod_revision;
  ++count_;
  status_ = Emit(p);
  return status_;
}

absl::Status SnapshotFileWriter::BeginLeases(uint64_t count) {
  if (!status_.ok()) return status_;
  AM_CHECK(!leases_begun_, "BeginLeases twice");
  AM_CHECK_LE(count, kSnapshotMaxLeases);
  leases_begun_ = true;
  leases_left_ = count;
  std::string p(kSnapshotFileLeaseMagic, sizeof(kSnapshotFileLeaseMagic));
  PutU64(&p, count);
  status_ = Emit(p);
  return status_;
}

absl::Status SnapshotFileWriter::AddLease(const Lease& lease) {
  if (!status_.ok()) return status_;
  AM_CHECK(leases_begun_ && leases_left_ > 0, "AddLease beyond the announced count");
  AM_CHECK(lease.id > last_lease_ && lease.ttl > 0, "snapshot leases out of order: ",
           Describe(lease));
  --leases_left_;
  last_lease_ = lease.id;
  std::string p;
  PutU64(&p, static_cast<uint64_t>(lease.id));
  PutU64(&p, static_cast<uint64_t>(lease.ttl));
  PutU64(&p, static_cast<uint64_t>(lease.remaining_ttl));
  status_ = Emit(p);
  return status_;
}

absl::Status SnapshotFileWriter::Finish() {
  if (!status_.ok()) return status_;
  if (!leases_begun_) {
    if (absl::Status s = BeginLeases(0); !s.ok()) return s;
  }
  AM_CHECK_EQ(leases_left_, 0u, "fewer leases than BeginLeases announced");
  std::string t(kSnapshotFileEndMagic, sizeof(kSnapshotFileEndMagic));
  PutU64(&t, count_);
  crc_ = Crc32cExtend(crc_, t.data(), t.size());
  PutU32(&t, crc_);
  bytes_ += t.size();
  status_ = sink_(t);
  return status_;
}

// ---- Reader ---------------------------------------------------------------------------------

absl::Status SnapshotFileReader::Feed(absl::string_view piece) {
  if (!status_.ok()) return status_;
  buf_.erase(0, pos_);  // drop what was decoded, once per piece
  consumed_ += pos_;
  pos_ = 0;
  buf_.append(piece.data(), piece.size());
  status_ = Parse();
  return status_;
}

absl::Status SnapshotFileReader::ParseHeader() {
  if (avail() < 16) return absl::OkStatus();
  if (std::memcmp(at(), kSnapshotFileMagic, sizeof(kSnapshotFileMagic)) != 0) {
    return Corrupt("not an amaters snapshot (wrong magic)");
  }
  const uint32_t version = GetU32(at() + 8);
  if (version < 1 || version > kSnapshotFileVersion || GetU32(at() + 12) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot file version ", version, " (this build reads 1 to ", kSnapshotFileVersion,
        ")"));
  }
  const size_t header_bytes = version == 1 ? kSnapshotFileV1HeaderBytes : kSnapshotFileHeaderBytes;
  if (avail() < header_bytes) return absl::OkStatus();
  version_ = version;
  applied_index_ = GetU64(at() + 16);
  revision_ = static_cast<int64_t>(GetU64(at() + 24));
  // A version 1 file holds no history: it reads as compacted at its revision.
  compact_revision_ = version == 1 ? revision_ : static_cast<int64_t>(GetU64(at() + 32));
  // Each applied entry raises the revision at most once.
  if (revision_ < kInitialRevision ||
      static_cast<uint64_t>(revision_ - kInitialRevision) > applied_index_) {
    return Corrupt(absl::StrCat("impossible revision ", revision_, " at applied index ",
                                applied_index_));
  }
  if (compact_revision_ < kInitialRevision || compact_revision_ > revision_) {
    return Corrupt(absl::StrCat("impossible compact revision ", compact_revision_,
                                " at revision ", revision_));
  }
  crc_ = Crc32cExtend(crc_, at(), header_bytes);
  pos_ += header_bytes;
  header_done_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> SnapshotFileReader::ParsePair() {
  if (avail() < 8) return false;
  if (std::memcmp(at(), kSnapshotFileEndMagic, sizeof(kSnapshotFileEndMagic)) == 0) {
    if (version_ >= 3) return Corrupt("no lease section");
    ended_ = true;
    return false;
  }
  if (version_ >= 3 &&
      std::memcmp(at(), kSnapshotFileLeaseMagic, sizeof(kSnapshotFileLeaseMagic)) == 0) {
    in_leases_ = true;
    crc_ = Crc32cExtend(crc_, at(), 8);
    pos_ += 8;
    return true;
  }
  const uint32_t key_len = GetU32(at());
  if (key_len == 0 || key_len > kSnapshotMaxKeyBytes) {
    return Corrupt(absl::StrCat("key length ", key_len));
  }
  if (avail() < 4 + key_len + 4) return false;
  const uint32_t value_len = GetU32(at() + 4 + key_len);
  if (value_len > kSnapshotMaxValueBytes) return Corrupt(absl::StrCat("value length ", value_len));
  const size_t size = 4 + key_len + 4 + value_len + (version_ >= 3 ? 32 : 24);
  if (avail() < size) return false;
  KeyValue kv;
  kv.key.assign(at() + 4, key_len);
  kv.value.assign(at() + 8 + key_len, value_len);
  const char* revs = at() + 8 + key_len + value_len;
  kv.create_revision = static_cast<int64_t>(GetU64(revs));
  kv.mod_revision = static_cast<int64_t>(GetU64(revs + 8));
  kv.version = static_cast<int64_t>(GetU64(revs + 16));
  if (version_ >= 3) kv.lease = static_cast<int64_t>(GetU64(revs + 24));
  if (kv.lease < 0 || (kv.lease != 0 && IsTombstone(kv))) {
    return Corrupt(absl::StrCat("impossible lease ", kv.lease, " for a key"));
  }
  if (count_ > 0 && (kv.key < last_key_ || (kv.key == last_key_ &&
                                              (version_ == 1 || kv.mod_revision <= last_mod_)))) {
    return Corrupt("versions out of order");
  }
  const bool possible =
      IsTombstone(kv)
          ? version_ > 1 && kv.value.empty() && kv.create_revision == 0 &&
                kv.mod_revision >= compact_revision_ && kv.mod_revision <= revision_
          : kv.create_revision > kInitialRevision && kv.mod_revision >= kv.create_revision &&
                kv.mod_revision <= revision_ && kv.version >= 1;
  if (!possible) {
    return Corrupt(absl::StrCat("impossible revisions for a key: create=", kv.create_revision,
                                " mod=", kv.mod_revision, " version=", kv.version));
  }
  crc_ = Crc32cExtend(crc_, at(), size);
  pos_ += size;
  last_key_ = kv.key;
  last_mod_ = kv.mod_revision;
  ++count_;
  if (absl::Status s = visit_(kv); !s.ok()) return s;
  return true;
}

absl::StatusOr<bool> SnapshotFileReader::ParseLease() {
  if (!lease_count_read_) {
    if (avail() < 8) return false;
    leases_left_ = GetU64(at());
    if (leases_left_ > kSnapshotMaxLeases) {
      return Corrupt(absl::StrCat("lease count ", leases_left_));
    }
    crc_ = Crc32cExtend(crc_, at(), 8);
    pos_ += 8;
    lease_count_read_ = true;
    return true;
  }
  if (leases_left_ == 0) {
    if (avail() < 8) return false;
    if (std::memcmp(at(), kSnapshotFileEndMagic, sizeof(kSnapshotFileEndMagic)) != 0) {
      return Corrupt("bytes after the leases");
    }
    ended_ = true;
    return false;
  }
  if (avail() < 24) return false;
  Lease lease{static_cast<int64_t>(GetU64(at())), static_cast<int64_t>(GetU64(at() + 8)),
              static_cast<int64_t>(GetU64(at() + 16))};
  if (lease.id <= last_lease_ || lease.ttl <= 0 || lease.ttl > kMaxLeaseTtl ||
      lease.remaining_ttl < 0 || lease.remaining_ttl > kMaxLeaseTtl) {
    return Corrupt(absl::StrCat("impossible or out-of-order ", Describe(lease)));
  }
  crc_ = Crc32cExtend(crc_, at(), 24);
  pos_ += 24;
  --leases_left_;
  last_lease_ = lease.id;
  if (absl::Status s = visit_lease_(lease); !s.ok()) return s;
  return true;
}

absl::Status SnapshotFileReader::Parse() {
  if (!header_done_) {
    if (absl::Status s = ParseHeader(); !s.ok() || !header_done_) return s;
  }
  while (!ended_) {
    absl::StatusOr<bool> more = in_leases_ ? ParseLease() : ParsePair();
    if (!more.ok()) return more.status();
    if (!*more) break;
  }
  if (ended_ && avail() > kSnapshotFileTrailerBytes && !TrailingZeros()) {
    return Corrupt("bytes after the end of the snapshot");
  }
  return absl::OkStatus();
}

bool SnapshotFileReader::TrailingZeros() const {
  if (!trailing_zeros_ok_) return false;
  const absl::string_view rest(at() + kSnapshotFileTrailerBytes,
                               avail() - kSnapshotFileTrailerBytes);
  return std::all_of(rest.begin(), rest.end(), [](char c) { return c == 0; });
}

absl::Status SnapshotFileReader::Finish() {
  if (!status_.ok()) return status_;
  if (!header_done_ || !ended_ || avail() < kSnapshotFileTrailerBytes ||
      (avail() > kSnapshotFileTrailerBytes && !TrailingZeros())) {
    return Corrupt(avail() > kSnapshotFileTrailerBytes ? "bytes after the end of the snapshot"
                                                       : "truncated");
  }
  file_bytes_ = consumed_ + pos_ + kSnapshotFileTrailerBytes;
  if (GetU64(at() + 8) != count_) return Corrupt("pair count mismatch");
  const uint32_t crc = Crc32cExtend(crc_, at(), 16);
  if (GetU32(at() + 16) != crc) return Corrupt("checksum mismatch");
  return absl::OkStatus();
}

}  // namespace amaters::kv
