// RocksDbStateMachine: the server's kv::StateMachine (engine/kv/state_machine.h) on RocksDB.
// The etcd semantics come from engine/kv/apply.h; this class stores their results.
// docs/kv-state-machine.md describes the same layout for operators.
//
// Directory layout (`dir` given to Open):
//   <dir>/db/                 the live RocksDB database
//   <dir>/snapshots/<name>/   one rocksdb::Checkpoint per snapshot (an openable database)
//   <dir>/snapshots/<name>.import/  a snapshot file being imported (removed by Open)
//   <dir>/restore.tmp/        staging copy of a snapshot while RestoreSnapshot runs
//   <dir>/db.old/             the replaced live database during the swap of a restore
// Open removes a leftover restore.tmp and finishes or undoes an interrupted swap (below).
//
// Key encoding (one default column family, bytewise order):
//   'k' + user key   -> a user pair. Value: a fixed 25-byte header, then the value bytes:
//                         0  u8   value format (kValueFormat = 1)
//                         1  i64  create_revision   (little-endian)
//                         9  i64  mod_revision      (little-endian)
//                        17  i64  version           (little-endian)
//                        25  ...  value
//   'h' + escaped user key + u64 revision (big-endian)
//                    -> one version of the key's history (the revision is its mod_revision):
//                       the same value layout as 'k', a tombstone (a delete) as a header with
//                       create_revision 0, version 0 and no value. The escaped key is the key
//                       with each 0x00 byte written 0x00 0xff, followed by 0x00 0x01, so a
//                       scan of the history of [a, b) is one bounded range of 'h' keys, by key
//                       and then by revision.
//                       A pair attached to a lease uses value format 2 (kValueFormatLease): the
//                       same header with the lease id (i64) at offset 25 and the value at 33.
//   'l' + u64 lease id (big-endian) -> a lease, 17 bytes: u8 format (1), i64 granted TTL,
//                       i64 remaining TTL at the last checkpoint (0 = none).
//   'a' + u64 lease id (big-endian) + user key -> empty: the lease index (the keys attached to
//                       each lease, in key order), written in the same WriteBatch as the pairs.
//   'm' + "state"    -> the metadata, 28 bytes:
//                         0  u32  metadata format (kMetaFormat = 2)
//                         4  u64  applied index
//                        12  i64  store revision
//                        20  i64  compact revision
//                       Format 1 (20 bytes, no compact revision) was written before the store
//                       kept history: Open adds an 'h' version for every 'k' pair and rewrites
//                       the metadata as format 2, compacted at its revision.
// 'k' holds each live key's newest version, 'h' every version since the last compaction: a read
// at the current revision reads 'k' alone; a read at an older revision, a compaction and a
// watch read 'h'. A compaction deletes its 'h' versions in the WriteBatch of the batch that
// holds it.
// The one-byte prefixes keep every user key ('k'...) apart from metadata ('m'...), so a scan of
// user keys is bounded by ['k', 'l') and no user key can collide with the metadata. User keys
// keep their order because the prefix is the same for all of them.
// A stored pair whose value does not decode (short, unknown format, revisions out of order or
// above the store revision, version < 1) is kDataLoss naming the key; so is metadata that does
// not decode (shorter than 20 bytes, unknown format, revision impossible for the applied
// index), or user keys without metadata. A metadata format newer than kMetaFormat is
// kFailedPrecondition (written by a newer binary).
//
// Atomicity. Every Apply is one rocksdb::WriteBatch holding all data changes of the batch plus
// the new metadata (applied index and revision). RocksDB applies a WriteBatch atomically, also
// across a crash (its WAL recovery never replays part of a batch), so the store always holds
// exactly "every entry up to the applied index applied, none after". Apply computes the whole
// outcome first and updates the cached applied index and revision only after the write
// succeeded; on any error nothing changed.
//
// Durability: the Raft WAL is the durability source. An entry is applied only after it is
// committed, and so only after it is durable in our own WAL (engine/raft: applying <=
// persisted). Therefore Apply does not need to be durable by itself: with
// WriteOptions.sync = false (`sync_writes`, the default) a power loss may lose the last batches
// written to RocksDB, but RocksDB recovers to a prefix of them (its WAL is replayed up to the
// first incomplete batch, kPointInTimeRecovery), the applied index read back at Open is
// consistent with the data, and the driver re-applies the WAL entries after it. Re-applying is
// exact because the applied index and the data it covers were written atomically. Saving an
// fsync per batch is what the default buys.
// The one obligation this puts on the driver: it must not discard WAL entries (compaction)
// past what RocksDB holds durably. Call Sync() first and compact only up to the applied_index()
// read before it, or compact up to a snapshot's index (a checkpoint is flushed and durable).
// `sync_writes = true` makes every Apply durable on return, for deployments that want the
// state machine durable on its own.
//
// Snapshots: CreateSnapshot writes a rocksdb::Checkpoint (SSTs hard-linked, the rest copied,
// memtables flushed first) to <dir>/snapshots/<name>. RestoreSnapshot never risks the live
// database:
//   1. copy the checkpoint to <dir>/restore.tmp (SST and blob files hard-linked, as they are
//      immutable; other files copied and fsynced), then open that copy and check its metadata
//      (errors here leave the live database open and untouched);
//   2. close the live database, rename db -> db.old, restore.tmp -> db (fsyncing <dir>);
//   3. open db; on success remove db.old. If that open fails, rename db back, reopen it and
//      return the error.
// A crash during step 2 or 3 is resolved by Open: db.old without db means the swap did not
// happen (db.old is renamed back); db.old with db means it did (db.old is removed). Either
// way the store is one complete database; the interrupted restore was not acknowledged.
//
// Thread safety: none; one driver thread owns the state machine (RocksDB's own background
// threads flush and compact).
#ifndef AMATERS_SERVER_STORAGE_ROCKSDB_STATE_MACHINE_H_
#define AMATERS_SERVER_STORAGE_ROCKSDB_STATE_MACHINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/apply.h"
#include "engine/kv/state_machine.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace amaters::storage {

struct RocksDbStateMachineOptions {
  // WriteOptions.sync for Apply. false (default): the Raft WAL is the durability source and the
  // applied index may lag after a power loss (see "Durability" above).
  bool sync_writes = false;
};

class RocksDbStateMachine final : public kv::StateMachine {
 public:
  static constexpr uint8_t kValueFormat = 1;
  static constexpr uint8_t kValueFormatLease = 2;
  static constexpr uint32_t kMetaFormat = 2;
  static constexpr size_t kValueHeaderBytes = 25;
  static constexpr size_t kMetaBytes = 28;
  static constexpr size_t kMetaV1Bytes = 20;

  // Opens (creating if missing) the store in `dir`; a new store has applied index 0 and
  // revision kv::kInitialRevision. Errors: kDataLoss for damaged metadata or values found at
  // open, kFailedPrecondition for a newer format or a store that another process holds open,
  // storage errors otherwise.
  static absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> Open(
      const std::string& dir, RocksDbStateMachineOptions options = {});

  ~RocksDbStateMachine() override;
  RocksDbStateMachine(const RocksDbStateMachine&) = delete;
  RocksDbStateMachine& operator=(const RocksDbStateMachine&) = delete;

  absl::StatusOr<std::vector<kv::ApplyResult>> Apply(
      absl::Span<const kv::ApplyItem> batch) override;
  absl::StatusOr<kv::RangeResponse> Range(const kv::RangeRequest& request) const override;
  absl::StatusOr<uint32_t> HashKV(int64_t revision) const override;
  absl::Status History(const std::string& key, const std::string& range_end, int64_t from,
                       absl::FunctionRef<bool(const kv::KeyValue&)> visit) const override;
  const std::vector<kv::KeyValue>& last_applied_versions() const override {
    return last_versions_;
  }
  uint64_t applied_index() const override { return applied_index_; }
  int64_t revision() const override { return revisions_.current; }
  int64_t compact_revision() const override { return revisions_.compacted; }
  absl::StatusOr<std::optional<kv::Lease>> GetLease(int64_t id) const override;
  absl::Status ForEachLease(absl::FunctionRef<bool(const kv::Lease&)> visit) const override;
  absl::Status ForEachLeaseKey(
      int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const override;

  absl::Status CreateSnapshot(const std::string& name) override;
  absl::Status RestoreSnapshot(const std::string& name) override;
  absl::Status DeleteSnapshot(const std::string& name) override;
  // ExportSnapshot reads the checkpoint through a read-only handle; ImportSnapshot builds a
  // new database in <dir>/snapshots/<name>.import and renames it into place only once the
  // whole file decoded and passed its checksum.
  absl::Status ExportSnapshot(const std::string& name, SnapshotSink sink) const override;
  absl::Status ImportSnapshot(const std::string& name, SnapshotSource source) override;
  // Exports the database in `path` (a checkpoint, or a stopped store's db/), from any thread.
  static absl::Status ExportDatabase(const std::string& path, SnapshotSink sink);

  // Makes every batch applied so far durable (fsyncs RocksDB's WAL). With sync_writes = false,
  // call it before discarding Raft WAL entries up to applied_index().
  absl::Status Sync();
  // Flushes the memtable and compacts the whole database to its bottom level (etcd's
  // Maintenance.Defragment): space held by deleted and overwritten pairs is given back to the
  // file system. The data does not change. Blocks until done.
  absl::Status Defragment();

  // Closes the database and reports how that went; afterwards every call fails with
  // kFailedPrecondition. The destructor closes too, without a report.
  absl::Status Close();

  const std::string& dir() const { return dir_; }

  // Tests only: the open database (null after Close or a failed restore), to pause background
  // work while copying a crash image.
  rocksdb::DB* db_for_testing() const { return db_.get(); }

 private:
  struct Meta {
    uint32_t format = kMetaFormat;
    uint64_t applied_index = 0;
    kv::Revisions revisions;
  };

  // kv::StoreReader over the live database.
  class Reader : public kv::StoreReader {
   public:
    explicit Reader(const RocksDbStateMachine& sm) : sm_(sm) {}
    absl::StatusOr<std::optional<kv::KeyValue>> Get(const std::string& key) const override;
    absl::Status Scan(const std::string& begin, const std::string& end,
                      absl::FunctionRef<bool(const kv::KeyValue&)> visit) const override;
    absl::Status ScanHistory(const std::string& begin, const std::string& end,
                             absl::FunctionRef<bool(const kv::KeyValue&)> visit) const override;
    absl::StatusOr<std::optional<kv::Lease>> GetLease(int64_t id) const override;
    absl::Status ScanLeases(absl::FunctionRef<bool(const kv::Lease&)> visit) const override;
    absl::Status ScanLeaseKeys(
        int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const override;

   private:
    const RocksDbStateMachine& sm_;
  };

  RocksDbStateMachine(std::string dir, RocksDbStateMachineOptions options);

  std::string db_path() const;
  std::string snapshot_path(const std::string& name) const;
  absl::Status CheckOpen() const;
  // Opens the database at `path` and loads its metadata into `db`/`meta`.
  static absl::Status OpenDb(const std::string& path, bool create_if_missing,
                             std::unique_ptr<rocksdb::DB>* db, Meta* meta);
  static absl::Status DecodeMetaValue(const std::string& path, const std::string& value,
                                      Meta* meta);
  // Every lease record of `db`, ascending by id.
  static absl::Status ScanLeaseRecords(rocksdb::DB* db,
                                       absl::FunctionRef<bool(const kv::Lease&)> visit);
  // Gives a format 1 database its history (see the layout above).
  static absl::Status MigrateToHistory(const std::string& path, rocksdb::DB* db, Meta* meta);
  // Writes the pairs of a snapshot file into a new database at `path` (see ImportSnapshot).
  static absl::Status BuildDatabase(const std::string& path, SnapshotSource source);
  // Closes db_ (if open) and opens db_path(), loading the cached metadata.
  absl::Status OpenLive();
  absl::Status CloseLive();

  const std::string dir_;  // absolute
  const RocksDbStateMachineOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  uint64_t applied_index_ = 0;
  kv::Revisions revisions_;
  std::vector<kv::KeyValue> last_versions_;
};

}  // namespace amaters::storage

#endif  // AMATERS_SERVER_STORAGE_ROCKSDB_STATE_MACHINE_H_
