// End to end, real amaters-server processes with snapshots every 1,000 entries
// (docs/snapshots.md):
//  - a follower SIGKILLed and restarted with its data directory deleted catches up by the
//    leader's snapshot, streamed in chunks, while a client keeps writing; every acknowledged
//    write is on it afterwards;
//  - a follower SIGKILLed in the middle of receiving a snapshot resumes its staged copy after
//    the restart instead of receiving it again from the start;
//  - a node restarted after 20,000 writes starts from its newest snapshot and a WAL that was
//    compacted (segments deleted, the log starting past 1), with every write present.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "proto/etcd/rpc.pb.h"
#include "server/testing/cluster.h"
#include "server/testing/process.h"

namespace amaters::server::testing {
namespace {

namespace fs = std::filesystem;

constexpr char kSnapshotToml[] =
    "[storage]\nsnapshot_threshold_entries = 1000\nsnapshot_catchup_entries = 500\n"
    "snapshot_chunk_kb = 64\n\n[storage.wal]\nsegment_size_mb = 1\n";

// A uint64 field of GET /status ("snapshot_index", "first_log_index", ...), or -1.
int64_t StatusField(int admin_port, const std::string& field) {
  httplib::Client client("127.0.0.1", admin_port);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  httplib::Result r = client.Get("/status");
  if (!r || r->status != 200) return -1;
  const std::string needle = absl::StrCat("\"", field, "\":");
  const size_t at = r->body.find(needle);
  if (at == std::string::npos) return -1;
  const size_t from = at + needle.size();
  const size_t end = r->body.find_first_of(",}", from);
  int64_t v = -1;
  return absl::SimpleAtoi(r->body.substr(from, end - from), &v) ? v : -1;
}

// `writers` threads put distinct keys "<prefix><thread>-<n>" through `address`, `per_thread`
// each (stop() ends them early); acknowledged keys are kept.
class Writers {
 public:
  Writers(const std::string& address, const std::string& prefix, int writers, int per_thread) {
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([=] {
        EtcdClient client(address);
        for (int n = 0; n < per_thread && !stop_.load(); ++n) {
          const std::string key = absl::StrFormat("%s%02d-%06d", prefix, w, n);
          absl::Status s = client.Put(key, std::string(200, static_cast<char>('a' + n % 26)));
          if (s.ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            acked_.push_back(key);
          } else {
            {
              std::lock_guard<std::mutex> lock(mu_);
              if (errors_.size() < 5) errors_.push_back(absl::StrCat(key, ": ", s.ToString()));
            }
            absl::SleepFor(absl::Milliseconds(20));
          }
        }
      });
    }
  }
  ~Writers() { Join(); }
  void Stop() { stop_.store(true); }
  void Join() {
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  // The first few failed puts, for a failure message.
  std::string errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return absl::StrJoin(errors_, "\n");
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acked_;
  std::vector<std::string> errors_;  // at most 5
  std::vector<std::thread> threads_;
};

// Keys of `acked` that node `client` does not hold (serializable reads of its own state).
std::vector<std::string> Missing(EtcdClient& client, const std::vector<std::string>& acked,
                                 const std::string& prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  std::string end = prefix;
  end.back() = static_cast<char>(end.back() + 1);
  req.set_range_end(end);
  req.set_serializable(true);
  req.set_keys_only(true);
  absl::StatusOr<etcdserverpb::RangeResponse> resp = client.Range(req);
  if (!resp.ok()) return acked;
  std::vector<std::string> have;
  for (const auto& kv : resp->kvs()) have.push_back(kv.key());
  std::sort(have.begin(), have.end());
  std::vector<std::string> missing;
  for (const std::string& k : acked) {
    if (!std::binary_search(have.begin(), have.end(), k)) missing.push_back(k);
  }
  return missing;
}

TEST(SnapshotTest, AWipedFollowerCatchesUpBySnapshotWhileAClientWrites) {
  TestCluster c(3, "snap", kSnapshotToml);
  ASSERT_TRUE(c.StartAll().ok());
  c.ConnectClients();
  absl::StatusOr<int> leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status() << "\n" << c.Describe();
  {
    Writers w(c.client_address(*leader), "a/", 8, 2500);  // 20,000 writes
    w.Join();
    ASSERT_EQ(w.acked().size(), 20000u) << w.errors() << "\n" << c.Describe();
  }
  const int follower = (*leader + 1) % 3;
  ASSERT_GT(StatusField(c.node(*leader).admin_port, "snapshot_index"), 15000)
      << "the leader snapshots every 1,000 entries\n" << c.Describe();
  ASSERT_GT(StatusField(c.node(*leader).admin_port, "first_log_index"), 10000)
      << "and compacts its log\n" << c.Describe();

  // The follower's disk is replaced: SIGKILL, data directory deleted, restart empty.
  c.Kill(follower);
  fs::remove_all(c.node(follower).dir + "/data");
  Writers during(c.client_address(*leader), "b/", 1, 1000000);
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_TRUE(c.Start(follower).ok()) << c.Describe();
  c.ResetClient(follower);
  ASSERT_TRUE(c.client(follower).WaitForConnected(absl::Seconds(20))) << c.Describe();
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline &&
         StatusField(c.node(follower).admin_port, "snapshot_index") <= 0) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  absl::SleepFor(absl::Milliseconds(500));  // a few more writes after the install
  during.Stop();
  during.Join();
  // Every acknowledged write of both phases is on the follower once it caught up.
  std::vector<std::string> missing_a, missing_b;
  const absl::Time catchup = absl::Now() + absl::Seconds(30);
  std::vector<std::string> all_a;
  for (int w = 0; w < 8; ++w) {
    for (int n = 0; n < 2500; ++n) all_a.push_back(absl::StrFormat("a/%02d-%06d", w, n));
  }
  std::sort(all_a.begin(), all_a.end());
  std::vector<std::string> acked_b = during.acked();
  std::sort(acked_b.begin(), acked_b.end());
  do {
    missing_a = Missing(c.client(follower), all_a, "a/");
    missing_b = Missing(c.client(follower), acked_b, "b/");
    if (missing_a.empty() && missing_b.empty()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < catchup);
  EXPECT_TRUE(missing_a.empty()) << missing_a.size() << " acknowledged writes missing, e.g. "
                                 << (missing_a.empty() ? "" : missing_a[0]) << "\n"
                                 << c.Describe();
  EXPECT_TRUE(missing_b.empty()) << missing_b.size() << " writes acknowledged during the "
                                 << "catch-up missing\n" << c.Describe();
  EXPECT_GT(acked_b.size(), 0u) << "the client kept writing";
  const std::string log = c.Log(follower);
  EXPECT_TRUE(absl::StrContains(log, "snapshot installed")) << "caught up by snapshot\n" << log;
}

// Bytes of the copy `node` is receiving (<data>/snap/incoming-*.part), 0 if none.
uint64_t StagedBytes(TestCluster& c, int node) {
  std::error_code ec;
  uint64_t bytes = 0;
  for (fs::directory_iterator it(c.node(node).dir + "/data/snap", ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->path().extension() == ".part") bytes = std::max(bytes, it->file_size(ec));
  }
  return bytes;
}

TEST(SnapshotTest, AFollowerKilledDuringATransferResumesItsCopyAfterARestart) {
  // 1 KiB chunks, so that the ~2 MB snapshot takes a while to stream.
  TestCluster c(3, "snapresume",
                "[storage]\nsnapshot_threshold_entries = 1000\nsnapshot_catchup_entries = 500\n"
                "snapshot_chunk_kb = 1\n\n[storage.wal]\nsegment_size_mb = 1\n");
  ASSERT_TRUE(c.StartAll().ok());
  c.ConnectClients();
  absl::StatusOr<int> leader = c.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << leader.status() << "\n" << c.Describe();
  const int follower = (*leader + 1) % 3;
  c.Kill(follower);
  {
    Writers w(c.client_address(*leader), "r/", 8, 1000);
    w.Join();
    ASSERT_EQ(w.acked().size(), 8000u) << w.errors() << "\n" << c.Describe();
  }
  fs::remove_all(c.node(follower).dir + "/data");  // empty: it needs the leader's snapshot
  ASSERT_TRUE(c.Start(follower).ok()) << c.Describe();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline && StagedBytes(c, follower) < 64 * 1024) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const uint64_t staged = StagedBytes(c, follower);
  ASSERT_GE(staged, 64u * 1024) << "the transfer did not start\n" << c.Log(follower);
  c.Kill(follower);  // in the middle of the transfer
  ASSERT_TRUE(c.Start(follower).ok()) << c.Describe();
  c.ResetClient(follower);
  ASSERT_TRUE(c.client(follower).WaitForConnected(absl::Seconds(20))) << c.Describe();
  std::vector<std::string> all;
  for (int w = 0; w < 8; ++w) {
    for (int n = 0; n < 1000; ++n) all.push_back(absl::StrFormat("r/%02d-%06d", w, n));
  }
  std::sort(all.begin(), all.end());
  std::vector<std::string> missing;
  const absl::Time catchup = absl::Now() + absl::Seconds(60);
  do {
    missing = Missing(c.client(follower), all, "r/");
    if (missing.empty()) break;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < catchup);
  EXPECT_TRUE(missing.empty()) << missing.size() << " acknowledged writes missing\n"
                               << c.Describe();
  const std::string log = c.Log(follower);
  EXPECT_TRUE(absl::StrContains(log, "resuming a snapshot receive")) << log;
  EXPECT_TRUE(absl::StrContains(log, "snapshot installed")) << log;
}

TEST(SnapshotTest, ARestartStartsFromTheSnapshotAndACompactedWal) {
  TestCluster c(1, "snaprestart", kSnapshotToml);
  ASSERT_TRUE(c.StartAll().ok());
  c.ConnectClients();
  ASSERT_TRUE(c.WaitReady(0).ok()) << c.Describe();
  {
    Writers w(c.client_address(0), "k/", 8, 2500);
    w.Join();
    ASSERT_EQ(w.acked().size(), 20000u) << w.errors() << "\n" << c.Describe();
  }
  const int64_t first = StatusField(c.node(0).admin_port, "first_log_index");
  const int64_t snapshot = StatusField(c.node(0).admin_port, "snapshot_index");
  EXPECT_GT(snapshot, 19000);
  EXPECT_GT(first, 10000) << "the log was compacted";
  // 20,000 writes of ~240 bytes are ~5 MB of WAL; compaction keeps only the newest segments.
  uint64_t wal_bytes = 0;
  int segments = 0;
  for (const auto& e : fs::directory_iterator(c.node(0).dir + "/data/wal")) {
    if (e.path().extension() == ".wal") {
      ++segments;
      wal_bytes += e.file_size();
    }
  }
  EXPECT_LE(segments, 3) << wal_bytes << " bytes of WAL";
  // amaters-ctl: a snapshot on demand, then the list (at most max_snapshots = 3 kept).
  const std::string ctl = Runfile("server/ctl/amaters-ctl");
  CommandResult created = RunCommand({ctl, "--endpoints=" + c.client_address(0), "snapshot", "create"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "snapshot at index 20001\n") << "20,000 puts and the leader's no-op";
  CommandResult listed = RunCommand({ctl, "--endpoints=" + c.client_address(0), "snapshot", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_TRUE(absl::StrContains(listed.out, "\nsnapshot_index 20001\n")) << listed.out;
  const std::vector<std::string> lines = absl::StrSplit(listed.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << "three snapshots kept, then two summary lines:\n" << listed.out;
  EXPECT_TRUE(absl::StartsWith(lines[2], "20001 ")) << listed.out;
  c.Kill(0);
  ASSERT_TRUE(c.Start(0).ok());
  c.ResetClient(0);
  ASSERT_TRUE(c.WaitReady(0).ok()) << c.Describe();
  EXPECT_GE(StatusField(c.node(0).admin_port, "first_log_index"), snapshot + 1)
      << "after a restart the log starts at the newest snapshot";
  std::vector<std::string> all;
  for (int w = 0; w < 8; ++w) {
    for (int n = 0; n < 2500; ++n) all.push_back(absl::StrFormat("k/%02d-%06d", w, n));
  }
  std::sort(all.begin(), all.end());
  const std::vector<std::string> missing = Missing(c.client(0), all, "k/");
  EXPECT_TRUE(missing.empty()) << missing.size() << " writes lost across the restart";
}

TEST(SnapshotTest, EtcdctlSnapshotSaveThenRestoreBuildsANewCluster) {
  // Disaster recovery of a whole cluster: `etcdctl snapshot save` from a live member, then
  // every member of a new cluster restored from that file with `amaters-server restore`.
  const std::string file = NewTempDir("etcdctl-snapshot") + "/backup.db";
  {
    TestCluster old(3, "snapold", kSnapshotToml);
    ASSERT_TRUE(old.StartAll().ok());
    old.ConnectClients();
    absl::StatusOr<int> leader = old.WaitForLeader();
    ASSERT_TRUE(leader.ok()) << old.Describe();
    Writers w(old.client_address(*leader), "r/", 4, 500);
    w.Join();
    ASSERT_EQ(w.acked().size(), 2000u);
    const int member = (*leader + 1) % 3;  // any member: a follower here
    CommandResult save = RunCommand({"/usr/bin/etcdctl", "--endpoints=" + old.client_address(member),
                                     "snapshot", "save", file},
                                    absl::Seconds(60), "", {{"ETCDCTL_API", "3"}});
    ASSERT_EQ(save.exit_code, 0) << save.out << save.err;
    EXPECT_TRUE(absl::StrContains(save.out + save.err, "Snapshot saved at " + file))
        << save.out << save.err;
  }
  TestCluster fresh(3, "snapnew", kSnapshotToml);
  const std::string server = Runfile("server/amaters-server");
  for (int i = 0; i < 3; ++i) {
    CommandResult r = RunCommand(
        {server, "restore", file, "--data-dir=" + fresh.node(i).dir + "/data"}, absl::Seconds(60));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(absl::StrContains(r.out, "2000 keys")) << r.out;
  }
  // Restoring onto a data directory that holds something is refused and changes nothing.
  CommandResult again = RunCommand(
      {server, "restore", file, "--data-dir=" + fresh.node(0).dir + "/data"}, absl::Seconds(60));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "is not empty")) << again.err;

  ASSERT_TRUE(fresh.StartAll().ok());
  fresh.ConnectClients();
  absl::StatusOr<int> leader = fresh.WaitForLeader();
  ASSERT_TRUE(leader.ok()) << fresh.Describe();
  std::vector<std::string> all;
  for (int w = 0; w < 4; ++w) {
    for (int n = 0; n < 500; ++n) all.push_back(absl::StrFormat("r/%02d-%06d", w, n));
  }
  std::sort(all.begin(), all.end());
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Missing(fresh.client(i), all, "r/").empty()) << "node " << i + 1;
  }
  EXPECT_TRUE(fresh.client(*leader).Put("after-restore", "yes").ok()) << fresh.Describe();
}

}  // namespace
}  // namespace amaters::server::testing
