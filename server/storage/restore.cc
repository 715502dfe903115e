#include "server/storage/restore.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "openssl/evp.h"
#include "engine/kv/snapshot_file.h"
#include "engine/raft/raft.h"
#include "engine/wal/disk.h"
#include "engine/wal/writer.h"
#include "server/storage/posix_disk.h"
#include "server/storage/rocksdb_state_machine.h"
#include "server/storage/snapshot_store.h"

namespace amaters::storage {
namespace fs = std::filesystem;
namespace {

constexpr size_t kPieceBytes = 1 << 20;

// The applied index, revision and pair count of a snapshot file, checked whole: its CRC-32C,
// and, for a file saved by etcdctl (padded to a multiple of 512 bytes plus a SHA-256), the
// SHA-256 too. `snapshot_bytes` is the snapshot file's own length within it.
absl::StatusOr<RestoreSummary> Inspect(const std::string& file, uint64_t* snapshot_bytes) {
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot open snapshot file ", file));
  const bool etcdctl = size % 512 == 32;
  const uint64_t body = etcdctl ? size - 32 : size;
  std::ifstream in(file, std::ios::binary);
  // Versions come in (key, revision) order: a key is live when its last one is not a tombstone.
  uint64_t live_keys = 0;
  std::optional<kv::KeyValue> last;
  uint64_t leases = 0;
  kv::SnapshotFileReader reader(
      [&](const kv::KeyValue& kv) {
        if (last.has_value() && last->key != kv.key && !kv::IsTombstone(*last)) ++live_keys;
        last = kv;
        return absl::OkStatus();
      },
      [&](const kv::Lease&) {
        ++leases;
        return absl::OkStatus();
      });
  if (etcdctl) reader.AllowTrailingZeros();
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr);
  std::string piece(kPieceBytes, '\0');
  for (uint64_t at = 0; at < body;) {
    in.read(piece.data(), static_cast<std::streamsize>(std::min<uint64_t>(piece.size(), body - at)));
    const std::streamsize got = in.gcount();
    if (got <= 0) return absl::DataLossError(absl::StrCat(file, ": short read"));
    at += static_cast<uint64_t>(got);
    EVP_DigestUpdate(sha.get(), piece.data(), static_cast<size_t>(got));
    if (absl::Status s = reader.Feed(absl::string_view(piece.data(), got)); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(file, ": ", s.message()));
    }
  }
  if (absl::Status s = reader.Finish(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(file, ": ", s.message()));
  }
  if (etcdctl) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(sha.get(), digest, &len);
    char stored[32];
    in.read(stored, 32);
    if (in.gcount() != 32 || len != 32 || std::memcmp(stored, digest, 32) != 0) {
      return absl::DataLossError(absl::StrCat(file, ": SHA-256 mismatch (the file is damaged)"));
    }
  }
  RestoreSummary out;
  out.bytes = size;
  out.applied_index = reader.applied_index();
  out.revision = reader.revision();
  out.keys = live_keys + (last.has_value() && !kv::IsTombstone(*last) ? 1 : 0);
  out.versions = reader.count();
  out.leases = leases;
  *snapshot_bytes = reader.file_bytes();
  return out;
}

absl::Status CheckEmpty(const std::string& data_dir) {
  std::error_code ec;
  if (!fs::exists(data_dir, ec)) return absl::OkStatus();
  if (!fs::is_directory(data_dir, ec) || !fs::is_empty(data_dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", data_dir, " is not empty: restore builds a new one and never "
        "overwrites a node's data; move the old directory away first"));
  }
  return absl::OkStatus();
}

// A WAL holding the snapshot record (index, term 1) and the hard state (1, none, index).
absl::Status WriteWal(const std::string& wal_dir, uint64_t index) {
  absl::StatusOr<std::unique_ptr<PosixDisk>> disk = PosixDisk::Open(wal_dir);
  if (!disk.ok()) return disk.status();
  absl::StatusOr<wal::ReplayResult> recovered =
      wal::Recover(disk->get(), wal::CorruptionPolicy::kRefuseStart);
  if (!recovered.ok()) return recovered.status();
  absl::StatusOr<wal::Writer> writer = wal::Writer::Open(wal::WriterOptions{}, *recovered);
  if (!writer.ok()) return writer.status();
  raft::PersistRequest req;
  req.seq = 1;
  req.hard_state = raft::HardState{1, raft::kNone, index};
  if (index > 0) req.snapshot = raft::SnapshotMeta{index, 1, {}};
  if (absl::Status s = writer->Append(std::move(req)); !s.ok()) return s;
  std::optional<wal::DiskBatch> batch = writer->NextBatch(0);
  if (!batch) return absl::InternalError("restore: the WAL writer produced no batch");
  absl::Status s = wal::ExecuteBatch(*batch, disk->get());
  absl::StatusOr<std::vector<uint64_t>> acked = writer->OnBatchDone(batch->id, s);
  return acked.ok() ? absl::OkStatus() : acked.status();
}

}  // namespace

absl::StatusOr<RestoreSummary> RestoreDataDir(const std::string& snapshot_file,
                                              const std::string& data_dir) {
  if (absl::Status s = CheckEmpty(data_dir); !s.ok()) return s;
  uint64_t snapshot_bytes = 0;
  absl::StatusOr<RestoreSummary> summary = Inspect(snapshot_file, &snapshot_bytes);
  if (!summary.ok()) return summary.status();
  std::error_code ec;
  fs::create_directories(fs::path(data_dir) / "wal", ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", data_dir, "/wal: ", ec.message()));
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm =
      RocksDbStateMachine::Open(data_dir + "/kv");
  if (!sm.ok()) return sm.status();
  const std::string name = SnapshotStore::Name(summary->applied_index);
  std::ifstream in(snapshot_file, std::ios::binary);
  uint64_t left = snapshot_bytes;  // the snapshot file proper, without etcdctl's padding
  absl::Status s = (*sm)->ImportSnapshot(name, [&]() -> absl::StatusOr<std::string> {
    std::string piece(std::min<uint64_t>(kPieceBytes, left), '\0');
    in.read(piece.data(), static_cast<std::streamsize>(piece.size()));
    piece.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
    left -= piece.size();
    return piece;
  });
  if (s.ok()) s = (*sm)->RestoreSnapshot(name);
  if (s.ok()) s = (*sm)->Close();
  if (!s.ok()) return s;
  if (absl::Status w = WriteWal(data_dir + "/wal", summary->applied_index); !w.ok()) return w;
  return summary;
}

}  // namespace amaters::storage
