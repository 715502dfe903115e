#include "server/admin/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/admin/exposition_lint.h"

namespace amaters::server {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Every family docs/metrics.md documents, with its exposition type.
const std::vector<std::pair<std::string, std::string>>& AllFamilies() {
  static const auto* families = new std::vector<std::pair<std::string, std::string>>{
      {"amaters_raft_term", "gauge"},
      {"amaters_raft_commit_index", "gauge"},
      {"amaters_raft_applied_index", "gauge"},
      {"amaters_raft_last_log_index", "gauge"},
      {"amaters_raft_is_leader", "gauge"},
      {"amaters_raft_has_leader", "gauge"},
      {"amaters_raft_leader_id", "gauge"},
      {"amaters_wal_size_bytes", "gauge"},
      {"amaters_pending_requests", "gauge"},
      {"amaters_peer_replication_lag_entries", "gauge"},
      {"amaters_peer_connected", "gauge"},
      {"amaters_server_start_time_seconds", "gauge"},
      {"amaters_raft_leader_changes_total", "counter"},
      {"amaters_raft_elections_total", "counter"},
      {"amaters_proposals_total", "counter"},
      {"amaters_requests_total", "counter"},
      {"amaters_compaction_count", "untyped"},
      {"amaters_wal_fsyncs_total", "counter"},
      {"amaters_peer_messages_sent_total", "counter"},
      {"amaters_peer_messages_dropped_total", "counter"},
      {"amaters_peer_messages_received_total", "counter"},
      {"amaters_request_duration_seconds", "histogram"},
      {"amaters_wal_fsync_duration_seconds", "histogram"},
      {"amaters_apply_duration_seconds", "histogram"},
      {"amaters_snapshots_created_total", "counter"},
      {"amaters_snapshot_install_total", "counter"},
      {"amaters_snapshot_install_seconds", "histogram"},
      {"amaters_snapshot_bytes", "gauge"},
      {"amaters_cluster_voters", "gauge"},
      {"amaters_cluster_learners", "gauge"},
      {"amaters_alerts_total", "counter"},
      {"amaters_alert_webhook_failures_total", "counter"},
      {"amaters_health_state", "gauge"},
      {"amaters_ready", "gauge"},
      {"amaters_accepting_writes", "gauge"},
      {"amaters_disk_free_bytes", "gauge"},
      {"amaters_tls_certificate_expiry_timestamp_seconds", "gauge"},
  };
  return *families;
}

bool HasLine(const std::string& text, absl::string_view line) {
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (l == line) return true;
  }
  return false;
}

bool HasLineStartingWith(const std::string& text, absl::string_view prefix) {
  for (absl::string_view l : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(l, prefix)) return true;
  }
  return false;
}

// A leader of a 3-node cluster that has been serving for a while: every family has samples.
void Populate(Metrics& m) {
  m.SetRaftState(/*term=*/7, /*commit_index=*/1200, /*applied_index=*/1199,
                 /*last_log_index=*/1201, /*is_leader=*/true, /*leader_id=*/1);
  m.IncElections();
  m.IncLeaderChanges();
  m.IncProposals(true);
  m.IncProposals(false);
  m.ObserveApply(0.0004);
  m.ObserveRequest(RpcMethod::kPut, absl::StatusCode::kOk, 0.0031);
  m.ObserveRequest(RpcMethod::kRange, absl::StatusCode::kOk, 0.0002);
  m.ObserveRequest(RpcMethod::kTxn, absl::StatusCode::kUnavailable, 0.5);
  m.ObserveRequest(RpcMethod::kDeleteRange, absl::StatusCode::kDeadlineExceeded, 12.0);
  m.SetPendingRequests(3);
  m.SetWalSizeBytes(64 << 20);
  m.SetCompactionCount(2);
  m.ObserveFsync(0.0007);
  m.ObserveFsync(0.004);
  for (uint64_t peer : {2, 3}) {
    m.SetPeerConnected(peer, peer == 2);
    m.SetPeerLag(peer, peer == 2 ? 0 : 42);
    m.IncPeerSent(peer, 100);
  }
  m.IncPeerDropped(3, 5);
  m.IncPeerReceived(180);
}

TEST(MetricsNames, MethodAndCodeLabels) {
  EXPECT_EQ(RpcMethodName(RpcMethod::kRange), "Range");
  EXPECT_EQ(RpcMethodName(RpcMethod::kPut), "Put");
  EXPECT_EQ(RpcMethodName(RpcMethod::kDeleteRange), "DeleteRange");
  EXPECT_EQ(RpcMethodName(RpcMethod::kTxn), "Txn");
  EXPECT_EQ(RpcMethodName(RpcMethod::kStatus), "Status");
  EXPECT_EQ(RpcMethodName(RpcMethod::kMemberList), "MemberList");
  EXPECT_EQ(RpcMethodName(RpcMethod::kMemberPromote), "MemberPromote");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kOk), "OK");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kNotFound), "NOT_FOUND");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kUnavailable), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(absl::StatusCode::kUnauthenticated), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(static_cast<absl::StatusCode>(99)), "UNKNOWN");
  EXPECT_EQ(GrpcCodeName(static_cast<absl::StatusCode>(-1)), "UNKNOWN");
}

TEST(Metrics, EveryFamilyHasHelpAndType) {
  Metrics m;
  Populate(m);
  const std::string text = m.Serialize();
  for (const auto& [name, type] : AllFamilies()) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(HasLineStartingWith(text, absl::StrCat("# HELP ", name, " ")));
    EXPECT_TRUE(HasLine(text, absl::StrCat("# TYPE ", name, " ", type)));
  }
  // Nothing undocumented: every # TYPE line is one of the families above.
  int types = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StartsWith(line, "# TYPE ")) ++types;
  }
  EXPECT_EQ(types, static_cast<int>(AllFamilies().size()));
}

TEST(Metrics, FreshRegistryHasPreCreatedSeries) {
  Metrics m(absl::FromUnixSeconds(1700000000));
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_server_start_time_seconds 1700000000"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_term 0"));
  EXPECT_TRUE(HasLine(text, "amaters_compaction_count 0"));
  EXPECT_TRUE(HasLine(text, "amaters_proposals_total{result=\"ok\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_proposals_total{result=\"error\"} 0"));
  for (int i = 0; i < kRpcMethodCount; ++i) {
    const std::string method(RpcMethodName(static_cast<RpcMethod>(i)));
    SCOPED_TRACE(method);
    EXPECT_TRUE(HasLine(text, absl::StrCat("amaters_requests_total{code=\"OK\",method=\"", method,
                                           "\"} 0")));
    EXPECT_TRUE(HasLine(text, absl::StrCat("amaters_request_duration_seconds_count{method=\"",
                                           method, "\"} 0")));
  }
  // No peers reported yet: the per-peer families have no series (and no lines at all).
  EXPECT_THAT(text, Not(HasSubstr("peer=")));
  EXPECT_THAT(LintExposition(text), IsEmpty());
}

TEST(Metrics, RaftStateGauges) {
  Metrics m;
  m.SetRaftState(5, 10, 9, 12, /*is_leader=*/false, /*leader_id=*/3);
  std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_raft_term 5"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_commit_index 10"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_applied_index 9"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_last_log_index 12"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_is_leader 0"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_has_leader 1"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_leader_id 3"));
  m.SetRaftState(6, 10, 10, 12, /*is_leader=*/false, /*leader_id=*/0);
  text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_raft_has_leader 0"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_leader_id 0"));
}

TEST(Metrics, CountersAndLabels) {
  Metrics m;
  m.IncElections();
  m.IncElections();
  m.IncLeaderChanges();
  m.IncProposals(true);
  m.IncProposals(true);
  m.IncProposals(false);
  m.ObserveRequest(RpcMethod::kPut, absl::StatusCode::kUnavailable, 0.003);
  m.ObserveRequest(RpcMethod::kPut, absl::StatusCode::kUnavailable, 0.003);
  m.ObserveRequest(RpcMethod::kMemberList, absl::StatusCode::kOk, 0.001);
  m.IncPeerReceived();
  m.IncPeerReceived(4);
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_raft_elections_total 2"));
  EXPECT_TRUE(HasLine(text, "amaters_raft_leader_changes_total 1"));
  EXPECT_TRUE(HasLine(text, "amaters_proposals_total{result=\"ok\"} 2"));
  EXPECT_TRUE(HasLine(text, "amaters_proposals_total{result=\"error\"} 1"));
  EXPECT_TRUE(HasLine(text, "amaters_requests_total{code=\"UNAVAILABLE\",method=\"Put\"} 2"));
  EXPECT_TRUE(HasLine(text, "amaters_requests_total{code=\"OK\",method=\"Put\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_requests_total{code=\"OK\",method=\"MemberList\"} 1"));
  EXPECT_TRUE(HasLine(text, "amaters_request_duration_seconds_count{method=\"Put\"} 2"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_messages_received_total 5"));
}

TEST(Metrics, HistogramBuckets) {
  Metrics m;
  m.ObserveFsync(0.0003);  // above 0.00025, within 0.0005
  m.ObserveFsync(7.0);     // above the last bound (5s): only +Inf
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsyncs_total 2"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_bucket{le=\"5e-05\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_bucket{le=\"0.00025\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_bucket{le=\"0.0005\"} 1"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_bucket{le=\"5\"} 1"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_count 2"));
  EXPECT_TRUE(HasLine(text, "amaters_wal_fsync_duration_seconds_sum 7.0003"));
  // Request buckets run from 100us to 10s.
  EXPECT_TRUE(HasLine(
      text, "amaters_request_duration_seconds_bucket{method=\"Range\",le=\"0.0001\"} 0"));
  EXPECT_TRUE(
      HasLine(text, "amaters_request_duration_seconds_bucket{method=\"Range\",le=\"10\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_apply_duration_seconds_bucket{le=\"1e-05\"} 0"));
  EXPECT_THAT(LintExposition(text), IsEmpty());
}

TEST(Metrics, BucketBoundsIncrease) {
  for (const auto* bounds : {&kRequestDurationBucketsSeconds, &kFsyncDurationBucketsSeconds,
                             &kApplyDurationBucketsSeconds}) {
    for (std::size_t i = 1; i < bounds->size(); ++i) EXPECT_LT((*bounds)[i - 1], (*bounds)[i]);
  }
  EXPECT_EQ(kRequestDurationBucketsSeconds.front(), 0.0001);
  EXPECT_EQ(kRequestDurationBucketsSeconds.back(), 10.0);
  EXPECT_EQ(kFsyncDurationBucketsSeconds.front(), 0.00005);
  EXPECT_EQ(kFsyncDurationBucketsSeconds.back(), 5.0);
}

TEST(Metrics, PeerLagSetAndClear) {
  Metrics m;
  m.SetPeerLag(2, 5);
  m.SetPeerLag(3, 40);
  m.SetPeerLag(3, 41);
  std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_peer_replication_lag_entries{peer=\"2\"} 5"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_replication_lag_entries{peer=\"3\"} 41"));
  m.ClearPeerLag(2);
  m.ClearPeerLag(2);   // idempotent
  m.ClearPeerLag(99);  // unknown peer
  text = m.Serialize();
  EXPECT_THAT(text, Not(HasSubstr("amaters_peer_replication_lag_entries{peer=\"2\"}")));
  EXPECT_TRUE(HasLine(text, "amaters_peer_replication_lag_entries{peer=\"3\"} 41"));
  m.ClearAllPeerLags();
  text = m.Serialize();
  EXPECT_THAT(text, Not(HasSubstr("amaters_peer_replication_lag_entries{")));
  // Lost and regained leadership: the series comes back.
  m.SetPeerLag(2, 1);
  EXPECT_TRUE(HasLine(m.Serialize(), "amaters_peer_replication_lag_entries{peer=\"2\"} 1"));
}

TEST(Metrics, PeerConnectionAndMessages) {
  Metrics m;
  m.SetPeerConnected(2, true);
  m.SetPeerConnected(3, false);
  m.IncPeerSent(2);
  m.IncPeerSent(2, 9);
  m.IncPeerDropped(3, 4);
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_peer_connected{peer=\"2\"} 1"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_connected{peer=\"3\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_messages_sent_total{peer=\"2\"} 10"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_messages_sent_total{peer=\"3\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_messages_dropped_total{peer=\"3\"} 4"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_messages_dropped_total{peer=\"2\"} 0"));
  // Reporting a peer does not export a lag for it (only the leader's SetPeerLag does).
  EXPECT_THAT(text, Not(HasSubstr("amaters_peer_replication_lag_entries{")));
}

TEST(Metrics, ARemovedMemberIsNoLongerExported) {
  Metrics m;
  for (uint64_t peer : {2, 3}) {
    m.SetPeerConnected(peer, false);
    m.IncPeerSent(peer);
    m.IncPeerDropped(peer);
    m.SetPeerLag(peer, 7);
  }
  m.ForgetPeersExcept({2, 4});
  m.ForgetPeersExcept({2, 4});  // idempotent
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_peer_connected{peer=\"2\"} 0"));
  EXPECT_TRUE(HasLine(text, "amaters_peer_replication_lag_entries{peer=\"2\"} 7"));
  EXPECT_THAT(text, Not(HasSubstr("peer=\"3\"")));
  // Added again later: exported again, from zero.
  m.IncPeerSent(3);
  EXPECT_TRUE(HasLine(m.Serialize(), "amaters_peer_messages_sent_total{peer=\"3\"} 1"));
}

TEST(Metrics, WalGaugesAndMonotonicCompactionCount) {
  Metrics m;
  m.SetWalSizeBytes(123456);
  m.SetCompactionCount(3);
  m.SetCompactionCount(2);  // ignored: never decreases
  std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_wal_size_bytes 123456"));
  EXPECT_TRUE(HasLine(text, "amaters_compaction_count 3"));
  m.SetCompactionCount(4);
  text = m.Serialize();
  EXPECT_TRUE(HasLine(text, "amaters_compaction_count 4"));
  // The untyped family sits next to the other WAL families.
  EXPECT_LT(text.find("amaters_wal_size_bytes 123456"),
            text.find("# HELP amaters_compaction_count"));
}

TEST(Metrics, RealisticExpositionPassesLint) {
  Metrics m;
  Populate(m);
  const std::string text = m.Serialize();
  EXPECT_THAT(LintExposition(text), IsEmpty()) << text;
}

TEST(Metrics, ConcurrentUpdatesAndScrapes) {
  Metrics m;
  constexpr int kThreads = 4;
  constexpr int kIterations = 2000;
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      const std::string text = m.Serialize();
      ASSERT_THAT(LintExposition(text), IsEmpty());
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&m, t] {
      for (int i = 0; i < kIterations; ++i) {
        const uint64_t peer = 2 + (i % 3);
        m.IncPeerSent(peer);
        m.SetPeerLag(peer, static_cast<uint64_t>(i));
        if (i % 7 == 0) m.ClearPeerLag(peer);
        if (i % 50 == t) m.ClearAllPeerLags();
        m.ObserveRequest(static_cast<RpcMethod>(i % kRpcMethodCount),
                         static_cast<absl::StatusCode>(i % 17), 0.001);
        m.ObserveFsync(0.0001);
        m.SetCompactionCount(static_cast<uint64_t>(i));
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  scraper.join();
  const std::string text = m.Serialize();
  EXPECT_TRUE(HasLine(text, absl::StrCat("amaters_wal_fsyncs_total ", kThreads * kIterations)));
  uint64_t sent = 0;
  for (uint64_t peer : {2, 3, 4}) {
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      const std::string prefix =
          absl::StrCat("amaters_peer_messages_sent_total{peer=\"", peer, "\"} ");
      if (absl::StartsWith(line, prefix)) {
        uint64_t v = 0;
        ASSERT_TRUE(absl::SimpleAtoi(line.substr(prefix.size()), &v)) << line;
        sent += v;
      }
    }
  }
  EXPECT_EQ(sent, static_cast<uint64_t>(kThreads * kIterations));
  EXPECT_TRUE(HasLine(text, absl::StrCat("amaters_compaction_count ", kIterations - 1)));
}

// --- The checker itself: each planted violation must be reported (a checker that cannot fail
// proves nothing). ---

struct BadCase {
  const char* name;
  const char* text;
  const char* expected_problem;
};

TEST(ExpositionLint, CatchesPlantedViolations) {
  const BadCase cases[] = {
      {"counter without _total",
       "# HELP a_things Things.\n# TYPE a_things counter\na_things 1\n",
       "should have \"_total\" suffix"},
      {"gauge ending in _count",
       "# HELP a_count Things.\n# TYPE a_count gauge\na_count 1\n",
       "should not have \"_count\" suffix"},
      {"counter ending in _count",
       "# HELP a_count Things.\n# TYPE a_count counter\na_count 1\n",
       "should not have \"_count\" suffix"},
      {"no HELP", "# TYPE a gauge\na 1\n", "no # HELP"},
      {"no TYPE", "# HELP a A.\na 1\n", "no # TYPE"},
      {"empty HELP", "# HELP a \n# TYPE a gauge\na 1\n", "empty # HELP"},
      {"TYPE after samples", "# HELP a A.\na 1\n# TYPE a gauge\n", "after its samples"},
      {"second TYPE", "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "second # TYPE"},
      {"unknown type", "# HELP a A.\n# TYPE a meter\na 1\n", "unknown type"},
      {"bad metric name", "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n", "invalid metric name"},
      {"bad label name", "# HELP a A.\n# TYPE a gauge\na{1x=\"v\"} 1\n", "invalid label name"},
      {"reserved label", "# HELP a A.\n# TYPE a gauge\na{__x=\"v\"} 1\n", "reserved label"},
      {"bad escape", "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n", "invalid escape"},
      {"unterminated value", "# HELP a A.\n# TYPE a gauge\na{x=\"v} 1\n", "unterminated"},
      {"bad value", "# HELP a A.\n# TYPE a gauge\na one\n", "invalid value"},
      {"no trailing newline", "# HELP a A.\n# TYPE a gauge\na 1", "end with a newline"},
      {"duplicate series", "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",
       "duplicate series"},
      {"split family",
       "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n# TYPE b gauge\nb 1\n"
       "a{x=\"2\"} 1\n",
       "not contiguous"},
      {"negative counter", "# HELP a_total A.\n# TYPE a_total counter\na_total -1\n",
       "negative"},
      {"histogram without +Inf",
       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
       "le=\"+Inf\""},
      {"histogram not cumulative",
       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
       "h_sum 1\nh_count 1\n",
       "not cumulative"},
      {"histogram +Inf != count",
       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
       "!= _count"},
      {"histogram without sum",
       "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", "no _sum"},
      {"bucket without le", "# HELP h H.\n# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n",
       "without an le label"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::vector<std::string> problems = LintExposition(c.text);
    EXPECT_THAT(absl::StrJoin(problems, "\n"), HasSubstr(c.expected_problem));
  }
}

TEST(ExpositionLint, AcceptsValidText) {
  const char* text =
      "# A plain comment.\n"
      "# HELP a_total Things with a \\\\ and a \\n.\n"
      "# TYPE a_total counter\n"
      "a_total{x=\"q\\\"uote\",y=\"\"} 1 1700000000000\n"
      "\n"
      "# HELP u Untyped may end however it likes.\n"
      "# TYPE u untyped\n"
      "u NaN\n"
      "# HELP h H.\n"
      "# TYPE h histogram\n"
      "h_bucket{m=\"a\",le=\"0.5\"} 1\n"
      "h_bucket{m=\"a\",le=\"+Inf\"} 3\n"
      "h_sum{m=\"a\"} 2.5\n"
      "h_count{m=\"a\"} 3\n"
      "# HELP s S.\n"
      "# TYPE s summary\n"
      "s{quantile=\"0.5\"} 1\n"
      "s_sum 3\n"
      "s_count 2\n";
  EXPECT_THAT(LintExposition(text), IsEmpty());
  // A documented exception silences the _total rule only for that name.
  EXPECT_THAT(LintExposition("# HELP b B.\n# TYPE b counter\nb 1\n", {"b"}), IsEmpty());
}

// --- promtool, when the machine has it (Debian package `prometheus`; not part of tools/setup).
// The default run relies on LintExposition above; this adds the real tool where available. ---

std::string FindPromtool() {
  const char* env = std::getenv("PROMTOOL");
  if (env != nullptr && *env != '\0') return env;
  for (const char* path : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
    if (std::ifstream(path).good()) return path;
  }
  return "";
}

TEST(Metrics, PromtoolCheckMetricsAcceptsExposition) {
  const std::string promtool = FindPromtool();
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed (apt-get install prometheus)";
  Metrics m;
  Populate(m);
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/exposition.txt");
  {
    std::ofstream out(path);
    out << m.Serialize();
  }
  const std::string command = absl::StrCat(promtool, " check metrics < ", path, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace amaters::server
