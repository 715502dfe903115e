// RocksDbStateMachine: the conformance suite on real RocksDB in TEST_TMPDIR, and the
// RocksDB-only rules of rocksdb_state_machine.h (layout, torn batches, damaged data,
// interrupted restores).
#include "server/storage/rocksdb_state_machine.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/kv/command.h"
#include "engine/kv/testing/conformance.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"

namespace amaters::storage {
namespace {

namespace fs = std::filesystem;
using kv::ApplyItem;
using kv::ApplyResult;
using kv::Command;
using kv::KeyValue;
using kv::RangeRequest;
using kv::testing::StateMachineConformanceTest;
using kv::testing::StateMachineFactory;
using kv::testing::StoreUnderTest;

// A new empty directory under the test's private temp dir.
std::string NewTempDir(const std::string& tag) {
  static int counter = 0;
  const char* base = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", tag, "-", ::getpid(), "-",
                                 counter++);
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  EXPECT_FALSE(ec) << ec.message();
  return dir;
}

// Copies what a crash of the process at this instant would leave on disk: RocksDB writes every
// batch to its WAL file with write(2) before Apply returns, so the files as they are now (page
// cache included) are the crash image. Background flushes and compactions are paused so that
// the copy of the directory is a consistent instant.
absl::Status CopyCrashImage(RocksDbStateMachine& sm, const std::string& to) {
  rocksdb::DB* db = sm.db_for_testing();
  if (db == nullptr) return absl::FailedPreconditionError("closed");
  rocksdb::Status ps = db->PauseBackgroundWork();
  if (!ps.ok()) return absl::InternalError(ps.ToString());
  std::error_code ec;
  fs::copy(sm.dir(), to, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  rocksdb::Status cs = db->ContinueBackgroundWork();
  if (ec) return absl::InternalError(absl::StrCat("copy crash image: ", ec.message()));
  if (!cs.ok()) return absl::InternalError(cs.ToString());
  return absl::OkStatus();
}

class RocksStore : public StoreUnderTest {
 public:
  static absl::StatusOr<std::unique_ptr<StoreUnderTest>> Make() {
    auto store = std::make_unique<RocksStore>(NewTempDir("kv"));
    absl::Status s = store->OpenDir();
    if (!s.ok()) return s;
    return std::unique_ptr<StoreUnderTest>(std::move(store));
  }

  explicit RocksStore(std::string dir) : dir_(std::move(dir)) {}

  kv::StateMachine& sm() override { return *sm_; }

  absl::Status Reopen() override {
    absl::Status s = sm_->Close();
    sm_.reset();
    if (!s.ok()) return s;
    return OpenDir();
  }

  absl::Status CrashAndReopen() override {
    std::string image = NewTempDir("crash");
    absl::Status s = CopyCrashImage(*sm_, image);
    sm_.reset();  // abandoned: whatever its close writes does not reach the image
    if (!s.ok()) return s;
    dir_ = image;
    return OpenDir();
  }

 private:
  absl::Status OpenDir() {
    absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm = RocksDbStateMachine::Open(dir_);
    if (!sm.ok()) return sm.status();
    sm_ = *std::move(sm);
    return absl::OkStatus();
  }

  std::string dir_;
  std::unique_ptr<RocksDbStateMachine> sm_;
};

StateMachineFactory RocksDbFactory() {
  StateMachineFactory f;
  f.name = "RocksDb";
  f.durable = true;
  f.open = &RocksStore::Make;
  return f;
}

INSTANTIATE_TEST_SUITE_P(RocksDb, StateMachineConformanceTest,
                         ::testing::Values(RocksDbFactory()), kv::testing::FactoryName);

// ---------------------------------------------------------------------------------------------
// RocksDB-only cases

Command Put(const std::string& key, const std::string& value) {
  Command c;
  c.op = kv::PutRequest{key, value, false};
  return c;
}

RangeRequest All() {
  RangeRequest r;
  r.key = std::string(1, '\0');
  r.range_end = std::string(1, '\0');
  return r;
}

std::unique_ptr<RocksDbStateMachine> MustOpen(const std::string& dir,
                                              RocksDbStateMachineOptions options = {}) {
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm = RocksDbStateMachine::Open(dir, options);
  EXPECT_TRUE(sm.ok()) << sm.status();
  return sm.ok() ? *std::move(sm) : nullptr;
}

std::vector<KeyValue> Contents(const kv::StateMachine& sm) {
  absl::StatusOr<kv::RangeResponse> r = sm.Range(All());
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->kvs : std::vector<KeyValue>{};
}

// Runs `fn` on the raw RocksDB database of a closed store.
void WithRawDb(const std::string& dir, const std::function<void(rocksdb::DB*)>& fn) {
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(rocksdb::Options(), dir + "/db", &raw);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  fn(db.get());
  ASSERT_TRUE(db->Close().ok());
}

TEST(RocksDbStateMachine, OnDiskLayoutIsTheDocumentedOne) {
  const std::string dir = NewTempDir("layout");
  {
    auto sm = MustOpen(dir);
    ASSERT_NE(sm, nullptr);
    ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("key", "val")), ApplyItem::Noop(2)}).ok());
    ASSERT_TRUE(sm->Close().ok());
  }
  EXPECT_TRUE(fs::is_directory(dir + "/db"));
  EXPECT_TRUE(fs::is_directory(dir + "/snapshots"));
  WithRawDb(dir, [](rocksdb::DB* db) {
    std::string meta;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "mstate", &meta).ok());
    // u32 format 2, u64 applied index 2, i64 revision 2, i64 compact revision 1.
    EXPECT_EQ(meta, std::string("\x02\0\0\0" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0"
                                "\x01\0\0\0\0\0\0\0", 28));
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "kkey", &value).ok());
    // u8 format 1, create 2, mod 2, version 1, then the value.
    const std::string want("\x01" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0"
                           "\x01\0\0\0\0\0\0\0" "val", 28);
    EXPECT_EQ(value, want);
    // The history: 'h', the escaped key, 0x00 0x01, the revision big-endian; the same value.
    std::string version;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(),
                        std::string("hkey\0\x01" "\0\0\0\0\0\0\0\x02", 14), &version).ok());
    EXPECT_EQ(version, want);
  });
}

TEST(RocksDbStateMachine, TornLastBatchIsDroppedWhole) {
  const std::string dir = NewTempDir("torn");
  auto sm = MustOpen(dir);
  ASSERT_NE(sm, nullptr);
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("a", "1")), ApplyItem::Of(2, Put("b", "2"))}).ok());
  const std::vector<KeyValue> after_first = Contents(*sm);
  // A second batch large enough to span several 32 KiB blocks of RocksDB's WAL.
  std::vector<ApplyItem> big;
  for (uint64_t i = 3; i < 103; ++i) {
    big.push_back(ApplyItem::Of(i, Put(absl::StrCat("big", i), std::string(1000, 'x'))));
  }
  big.push_back(ApplyItem::Of(103, Put("a", "overwritten")));
  ASSERT_TRUE(sm->Apply(big).ok());
  ASSERT_EQ(sm->applied_index(), 103u);

  const std::string image = NewTempDir("torn-image");
  ASSERT_TRUE(CopyCrashImage(*sm, image).ok());
  sm.reset();
  // Tear the newest RocksDB WAL file in the middle of the last batch.
  fs::path newest;
  for (const auto& e : fs::directory_iterator(image + "/db")) {
    if (e.path().extension() == ".log" && (newest.empty() || e.path() > newest)) newest = e.path();
  }
  ASSERT_FALSE(newest.empty());
  const uintmax_t size = fs::file_size(newest);
  ASSERT_GT(size, 60000u);
  fs::resize_file(newest, size - 50000);

  auto recovered = MustOpen(image);
  ASSERT_NE(recovered, nullptr);
  EXPECT_EQ(recovered->applied_index(), 2u) << "the applied index of the last whole batch";
  EXPECT_EQ(recovered->revision(), 3);
  EXPECT_EQ(Contents(*recovered), after_first) << "no part of the torn batch survives";
  // The driver re-applies from its WAL.
  EXPECT_TRUE(recovered->Apply(big).ok());
  EXPECT_EQ(recovered->applied_index(), 103u);
}

TEST(RocksDbStateMachine, MalformedStoredValueIsDataLossNamingTheKey) {
  const std::string dir = NewTempDir("malformed");
  {
    auto sm = MustOpen(dir);
    ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("good", "1"))}).ok());
  }
  WithRawDb(dir, [](rocksdb::DB* db) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "kbroken\xff", "short").ok());
    // A well-formed header with impossible revisions (mod before create).
    std::string v("\x01" "\x05\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0" "\x01\0\0\0\0\0\0\0", 25);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "kodd", v).ok());
  });
  auto sm = MustOpen(dir);
  ASSERT_NE(sm, nullptr);
  RangeRequest one;
  one.key = "broken\xff";
  absl::StatusOr<kv::RangeResponse> r = sm->Range(one);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("broken\\xff"), std::string::npos) << r.status();
  one.key = "odd";
  r = sm->Range(one);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("\"odd\""), std::string::npos) << r.status();
  EXPECT_EQ(sm->Range(All()).status().code(), absl::StatusCode::kDataLoss);
  // A write that reads the damaged pair fails as a whole and changes nothing.
  absl::StatusOr<std::vector<ApplyResult>> a =
      sm->Apply({ApplyItem::Of(2, Put("x", "1")), ApplyItem::Of(3, Put("odd", "2"))});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(sm->applied_index(), 1u);
  one.key = "x";
  EXPECT_TRUE(sm->Range(one)->kvs.empty());
  // The undamaged key is still readable.
  one.key = "good";
  EXPECT_EQ(sm->Range(one)->kvs.size(), 1u);
}

TEST(RocksDbStateMachine, DamagedOrNewerMetadataRefusesToOpen) {
  struct Case {
    std::string meta;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"short", absl::StatusCode::kDataLoss},
      {std::string("\x01\0\0\0" "\x02\0\0\0\0\0\0\0", 12), absl::StatusCode::kDataLoss},
      {std::string("\x00\0\0\0" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0", 20),
       absl::StatusCode::kDataLoss},
      // revision 9 after 2 applied entries is impossible.
      {std::string("\x01\0\0\0" "\x02\0\0\0\0\0\0\0" "\x09\0\0\0\0\0\0\0", 20),
       absl::StatusCode::kDataLoss},
      // Format 2 is 28 bytes.
      {std::string("\x02\0\0\0" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0", 20),
       absl::StatusCode::kDataLoss},
      // A compact revision above the revision.
      {std::string("\x02\0\0\0" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0"
                   "\x03\0\0\0\0\0\0\0", 28),
       absl::StatusCode::kDataLoss},
      {std::string("\x03\0\0\0" "\x02\0\0\0\0\0\0\0" "\x02\0\0\0\0\0\0\0"
                   "\x01\0\0\0\0\0\0\0", 28),
       absl::StatusCode::kFailedPrecondition},
  };
  for (const Case& c : cases) {
    const std::string dir = NewTempDir("meta");
    { MustOpen(dir)->Apply({ApplyItem::Of(1, Put("a", "1")), ApplyItem::Noop(2)}).IgnoreError(); }
    WithRawDb(dir, [&](rocksdb::DB* db) {
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "mstate", c.meta).ok());
    });
    absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm = RocksDbStateMachine::Open(dir);
    EXPECT_EQ(sm.status().code(), c.code) << sm.status();
  }
  // User keys without metadata.
  const std::string dir = NewTempDir("nometa");
  { MustOpen(dir)->Apply({ApplyItem::Of(1, Put("a", "1"))}).IgnoreError(); }
  WithRawDb(dir, [](rocksdb::DB* db) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), "mstate").ok());
  });
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm = RocksDbStateMachine::Open(dir);
  EXPECT_EQ(sm.status().code(), absl::StatusCode::kDataLoss) << sm.status();
}

TEST(RocksDbStateMachine, AFormatOneStoreGainsItsHistoryOnOpen) {
  const std::string dir = NewTempDir("format1");
  {
    auto sm = MustOpen(dir);
    ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("a", "1")), ApplyItem::Of(2, Put("b", "2")),
                           ApplyItem::Of(3, Put("a", "3"))})
                    .ok());
    ASSERT_TRUE(sm->Close().ok());
  }
  // What a binary from before the history wrote: 'k' pairs and 20 bytes of metadata.
  WithRawDb(dir, [](rocksdb::DB* db) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    std::vector<std::string> history;
    for (it->Seek("h"); it->Valid() && it->key().starts_with("h"); it->Next()) {
      history.push_back(it->key().ToString());
    }
    for (const std::string& k : history) ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), k).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "mstate",
                        std::string("\x01\0\0\0" "\x03\0\0\0\0\0\0\0" "\x04\0\0\0\0\0\0\0", 20))
                    .ok());
  });
  auto sm = MustOpen(dir);
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ(sm->revision(), 4);
  EXPECT_EQ(sm->compact_revision(), 4) << "no history before the upgrade";
  EXPECT_EQ(Contents(*sm), (std::vector<KeyValue>{{"a", "3", 2, 4, 2}, {"b", "2", 3, 3, 1}}));
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(4, Put("a", "5"))}).ok());
  RangeRequest past = All();
  past.revision = 4;  // read from the history the upgrade wrote
  absl::StatusOr<kv::RangeResponse> r = sm->Range(past);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kvs, (std::vector<KeyValue>{{"a", "3", 2, 4, 2}, {"b", "2", 3, 3, 1}}));
  past.revision = 3;
  EXPECT_EQ(sm->Range(past).status().message(), kv::kErrCompacted);
}

TEST(RocksDbStateMachine, SecondOpenOfTheSameDirectoryIsRefused) {
  const std::string dir = NewTempDir("twice");
  auto first = MustOpen(dir);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> second = RocksDbStateMachine::Open(dir);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST(RocksDbStateMachine, DamagedSnapshotLeavesTheLiveStateUsable) {
  const std::string dir = NewTempDir("badsnap");
  auto sm = MustOpen(dir);
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("a", "1"))}).ok());
  ASSERT_TRUE(sm->CreateSnapshot("s").ok());
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(2, Put("a", "2"))}).ok());
  const std::vector<KeyValue> live = Contents(*sm);
  fs::remove(dir + "/snapshots/s/CURRENT");
  absl::Status s = sm->RestoreSnapshot("s");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("live state is unchanged"), std::string::npos) << s;
  EXPECT_EQ(Contents(*sm), live);
  EXPECT_EQ(sm->applied_index(), 2u);
  EXPECT_TRUE(sm->Apply({ApplyItem::Of(3, Put("b", "3"))}).ok());
  EXPECT_FALSE(fs::exists(dir + "/restore.tmp"));
  EXPECT_FALSE(fs::exists(dir + "/db.old"));
}

TEST(RocksDbStateMachine, OpenFinishesOrUndoesAnInterruptedRestore) {
  const std::string dir = NewTempDir("swap");
  std::vector<KeyValue> at_snapshot;
  std::vector<KeyValue> latest;
  {
    auto sm = MustOpen(dir);
    ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("a", "1"))}).ok());
    ASSERT_TRUE(sm->CreateSnapshot("s").ok());
    at_snapshot = Contents(*sm);
    ASSERT_TRUE(sm->Apply({ApplyItem::Of(2, Put("a", "2"))}).ok());
    latest = Contents(*sm);
  }
  // Crash after "db -> db.old", before "restore.tmp -> db": the old database comes back.
  fs::rename(dir + "/db", dir + "/db.old");
  fs::create_directories(dir + "/restore.tmp");
  {
    auto sm = MustOpen(dir);
    ASSERT_NE(sm, nullptr);
    EXPECT_EQ(Contents(*sm), latest);
    EXPECT_EQ(sm->applied_index(), 2u);
  }
  EXPECT_FALSE(fs::exists(dir + "/db.old"));
  EXPECT_FALSE(fs::exists(dir + "/restore.tmp"));

  // Crash after both renames: the restored database stays, the old one is removed.
  fs::rename(dir + "/db", dir + "/db.old");
  fs::copy(dir + "/snapshots/s", dir + "/db", fs::copy_options::recursive);
  {
    auto sm = MustOpen(dir);
    ASSERT_NE(sm, nullptr);
    EXPECT_EQ(Contents(*sm), at_snapshot);
    EXPECT_EQ(sm->applied_index(), 1u);
  }
  EXPECT_FALSE(fs::exists(dir + "/db.old"));

  // Both exist but the new one does not open: fall back to the old one.
  fs::rename(dir + "/db", dir + "/db.old");
  fs::create_directories(dir + "/db");
  { std::ofstream(dir + "/db/CURRENT") << "MANIFEST-999999\n"; }
  {
    auto sm = MustOpen(dir);
    ASSERT_NE(sm, nullptr);
    EXPECT_EQ(Contents(*sm), at_snapshot);
  }
  EXPECT_FALSE(fs::exists(dir + "/db.old"));
  EXPECT_FALSE(fs::exists(dir + "/restore.failed"));
}

TEST(RocksDbStateMachine, SyncWritesAndSync) {
  const std::string dir = NewTempDir("sync");
  RocksDbStateMachineOptions options;
  options.sync_writes = true;
  auto sm = MustOpen(dir, options);
  ASSERT_NE(sm, nullptr);
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(1, Put("a", "1"))}).ok());
  EXPECT_TRUE(sm->Sync().ok());
  ASSERT_TRUE(sm->Close().ok());
  EXPECT_TRUE(sm->Close().ok()) << "closing twice is harmless";
  EXPECT_EQ(sm->Apply({ApplyItem::Noop(2)}).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sm->Range(All()).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sm->Sync().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(sm->CreateSnapshot("x").code(), absl::StatusCode::kFailedPrecondition);
  auto again = MustOpen(dir);
  EXPECT_EQ(again->applied_index(), 1u);
}

uint64_t FileBytes(const std::string& dir) {
  uint64_t bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) bytes += e.file_size();
  }
  return bytes;
}

TEST(RocksDbStateMachine, DefragmentGivesBackTheSpaceOfDeletedKeysAndKeepsTheData) {
  const std::string dir = NewTempDir("defrag");
  auto sm = MustOpen(dir);
  ASSERT_NE(sm, nullptr);
  const std::string value(4096, 'v');
  uint64_t index = 0;
  for (int round = 0; round < 4; ++round) {  // 2,000 keys of 4 KiB, flushed to SST files
    std::vector<ApplyItem> batch;
    for (int i = 0; i < 500; ++i) {
      batch.push_back(ApplyItem::Of(++index, Put(absl::StrCat("k", round * 500 + i), value)));
    }
    ASSERT_TRUE(sm->Apply(batch).ok());
    ASSERT_TRUE(sm->db_for_testing()->Flush(rocksdb::FlushOptions()).ok());
  }
  Command del;
  del.op = kv::DeleteRangeRequest{"k1", "k2", false};  // k1, k10.., k100.., k1000..: 1,111 keys
  ASSERT_TRUE(sm->Apply({ApplyItem::Of(++index, del)}).ok());
  absl::StatusOr<kv::RangeResponse> before = sm->Range(All());
  ASSERT_TRUE(before.ok());
  const int64_t revision = sm->revision();
  const uint64_t bytes_before = FileBytes(dir + "/db");

  ASSERT_TRUE(sm->Defragment().ok());
  EXPECT_LT(FileBytes(dir + "/db"), bytes_before) << "the deleted pairs' space is given back";
  absl::StatusOr<kv::RangeResponse> after = sm->Range(All());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->kvs, before->kvs);
  EXPECT_EQ(sm->revision(), revision);
  EXPECT_EQ(sm->applied_index(), index);

  ASSERT_TRUE(sm->Close().ok());
  EXPECT_EQ(sm->Defragment().code(), absl::StatusCode::kFailedPrecondition);
  auto again = MustOpen(dir);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->Range(All())->kvs, before->kvs);
}

TEST(RocksDbStateMachine, OpenOnAFileFails) {
  const std::string dir = NewTempDir("file");
  { std::ofstream(dir + "/plain") << "x"; }
  absl::StatusOr<std::unique_ptr<RocksDbStateMachine>> sm =
      RocksDbStateMachine::Open(dir + "/plain");
  EXPECT_FALSE(sm.ok());
}

}  // namespace
}  // namespace amaters::storage
