#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
#include "engine/wal/format.h"
#include "sim/chaos/fault_state.h"
#include "sim/chaos/history.h"
#include "sim/chaos/soak.h"
#include "sim/chaos/support.h"
#include "sim/scenario.h"

namespace amaters::sim::chaos {
namespace {

Scenario Parse(const std::string& text) {
  absl::StatusOr<Scenario> s = ParseScenario(text, "test.txt");
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : Scenario{};
}

TEST(Support, ProcessFaultsAndChecksAreSupported) {
  const Scenario s = Parse(
      "nodes 3\nseed 7\ncampaign 1\nwait-for leader 1 3s\ncrash leader\nwait 1s\nrestart 1\n"
      "pause 2\nresume 2\ntransfer leader->3\nworkload off\nworkload on\nheal-all\n"
      "expect term >= 2\nexpect committed 2 > 0\nexpect leader-in {1,2,3}\nexpect up 1\n"
      "expect progress 2s\nexpect no-progress 1 1s\nexpect converged 5s\n"
      "expect linearizable\n");
  EXPECT_TRUE(CheckRealClusterSupport(s).ok()) << CheckRealClusterSupport(s);
}

TEST(Support, NetworkAndDiskFaultsAreSupported) {
  const Scenario s = Parse(
      "nodes 5\npartition {1,2} {3,4,5}\nisolate leader\nblock 2->1\nblock leader->3\n"
      "clog 1->2 500ms\nheal\nslow-disk 2 on\nslow-disk 2 off\ndisk-full leader on\n"
      "disk-full 1 off\ncrash 3\ncorrupt-wal 3\nwipe 3\nrestart 3\n");
  EXPECT_TRUE(CheckRealClusterSupport(s).ok()) << CheckRealClusterSupport(s);
}

TEST(Support, EveryUnsupportedStepIsNamedWithItsLine) {
  const Scenario s = Parse(
      "nodes 3\noption drop 0.01\ncrash 1\nexpect alert 1 quorum_lost\nadd-learner 3\n"
      "expect snapshot 2 >= 1\n");
  const absl::Status st = CheckRealClusterSupport(s);
  ASSERT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  const std::string m(st.message());
  for (const char* want :
       {"test.txt:2: `option drop 0.01`: not supported for real clusters",
        "test.txt:4: `expect alert 1 quorum_lost`: not supported for real clusters: alert",
        "test.txt:5: `add-learner 3`: not supported for real clusters: membership",
        "test.txt:6: `expect snapshot 2 >= 1`"}) {
    EXPECT_NE(m.find(want), std::string::npos) << "missing: " << want << "\nin:\n" << m;
  }
  EXPECT_EQ(m.find("test.txt:3"), std::string::npos) << "crash is supported:\n" << m;
}

TEST(Faults, APartitionBlocksEveryLinkBetweenGroupsAndCutsOffTheRest) {
  FaultState f;
  f.Block(1, 2);
  f.Partition({{1, 2}, {3}}, 4);  // node 4 is in no group
  EXPECT_EQ(f.blocked, (std::set<Link>{{1, 3}, {1, 4}, {2, 3}, {2, 4}, {3, 1}, {3, 2}, {3, 4},
                                       {4, 1}, {4, 2}, {4, 3}}))
      << "replaces the earlier block 1->2";
  f.Clog(1, 2, 500);
  f.slow_disk.insert(3);
  f.Heal();
  EXPECT_TRUE(f.blocked.empty());
  EXPECT_TRUE(f.clog_ms.empty());
  EXPECT_EQ(f.slow_disk, std::set<int>{3}) << "heal is the network only";
  f.HealAll();
  EXPECT_EQ(f, FaultState{});
}

TEST(Faults, TheControlFileRoundTrips) {
  FaultState f;
  f.Block(2, 1);
  f.Block(3, 1);
  f.Clog(1, 3, 2000);
  f.slow_disk.insert(2);
  f.full_disk.insert(1);
  const std::string text = RenderFaults(f);
  EXPECT_EQ(text, "block 2 1\nblock 3 1\nclog 1 3 2000\nslow-disk 2\ndisk-full 1\n");
  absl::StatusOr<FaultState> back = ParseFaults(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, f);
  EXPECT_EQ(*ParseFaults(""), FaultState{}) << "no file, no faults";
}

TEST(Faults, ABadControlFileIsRefusedWithItsLine) {
  for (const char* bad : {"block 1", "block 1 1", "block 0 2", "block 1 10", "clog 1 2 0",
                          "clog 1 2 70000", "drop 1 2", "slow-disk x", "disk-full 1 2"}) {
    const absl::StatusOr<FaultState> f = ParseFaults(absl::StrCat("block 2 3\n", bad, "\n"));
    ASSERT_FALSE(f.ok()) << bad;
    EXPECT_NE(std::string(f.status().message()).find(absl::StrCat("line 2: `", bad, "`")),
              std::string::npos)
        << f.status();
  }
}

TEST(Faults, WalDamageLandsInARecordThatIsNotTheLast) {
  std::string segment = wal::EncodeSegmentHeader(wal::SegmentHeader{});
  std::vector<size_t> starts;
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    starts.push_back(segment.size());
    segment += wal::EncodeHardStateRecord(seq, raft::HardState{seq, 1, seq});
  }
  const size_t last = starts.back();
  segment += "torn";  // a torn tail after the records
  for (uint64_t random = 0; random < 500; ++random) {
    const std::optional<WalDamage> d = PickWalDamage(segment, random);
    ASSERT_TRUE(d.has_value());
    EXPECT_GE(d->offset, starts.front());
    EXPECT_LT(d->offset, last) << "never the last record (it would read as a torn write)";
    EXPECT_LT(d->bit, 8);
  }
  EXPECT_FALSE(PickWalDamage(segment.substr(0, starts[1]), 1).has_value())
      << "one record is not enough";
}

ClientOp Put(uint64_t process, std::string key, std::string value, uint64_t t0, uint64_t t1,
             Outcome outcome = Outcome::kOk) {
  ClientOp op;
  op.process = process;
  op.is_put = true;
  op.key = std::move(key);
  op.value = std::move(value);
  op.invoke_ns = t0;
  op.complete_ns = t1;
  op.outcome = outcome;
  return op;
}

ClientOp Get(uint64_t process, std::string key, std::optional<std::string> read, uint64_t t0,
             uint64_t t1, Outcome outcome = Outcome::kOk) {
  ClientOp op;
  op.process = process;
  op.key = std::move(key);
  op.read = std::move(read);
  op.invoke_ns = t0;
  op.complete_ns = t1;
  op.outcome = outcome;
  return op;
}

TEST(History, JsonLinesAreJepsenEventsInTimeOrder) {
  ClientOp failed = Get(1, "k\"1", std::nullopt, 5, 9, Outcome::kFail);
  failed.error = "14: unavailable";
  ClientOp pending = Put(2, "k2", "c2-0", 7, 0, Outcome::kPending);
  const std::string json = HistoryJsonLines(
      {Put(0, "k1", "c0-0", 10, 20), failed, pending, Get(0, "k1", "c0-0", 21, 30)});
  EXPECT_EQ(json,
            "{\"process\":1,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"k\\\"1\",\"value\":null,"
            "\"time\":5}\n"
            "{\"process\":2,\"type\":\"invoke\",\"f\":\"put\",\"key\":\"k2\",\"value\":\"c2-0\","
            "\"time\":7}\n"
            "{\"process\":1,\"type\":\"fail\",\"f\":\"get\",\"key\":\"k\\\"1\",\"value\":null,"
            "\"time\":9,\"error\":\"14: unavailable\"}\n"
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"put\",\"key\":\"k1\",\"value\":\"c0-0\","
            "\"time\":10}\n"
            "{\"process\":0,\"type\":\"ok\",\"f\":\"put\",\"key\":\"k1\",\"value\":\"c0-0\","
            "\"time\":20}\n"
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"k1\",\"value\":null,"
            "\"time\":21}\n"
            "{\"process\":0,\"type\":\"ok\",\"f\":\"get\",\"key\":\"k1\",\"value\":\"c0-0\","
            "\"time\":30}\n");
}

TEST(History, InfoAndPendingAreUnknownToTheChecker) {
  const std::vector<checker::Operation> ops = CheckerOperations(
      {Put(0, "k", "a", 1, 2), Put(1, "k", "b", 3, 4, Outcome::kInfo),
       Put(2, "k", "c", 5, 0, Outcome::kPending), Get(3, "k", std::nullopt, 6, 7, Outcome::kFail)});
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0].outcome, checker::OpOutcome::kCompleted);
  EXPECT_EQ(ops[1].outcome, checker::OpOutcome::kUnknown);
  EXPECT_EQ(ops[2].outcome, checker::OpOutcome::kUnknown);
  EXPECT_EQ(ops[3].outcome, checker::OpOutcome::kFailed);
}

TEST(History, ALostAcknowledgedPutIsCountedAndTheCheckerRefusesTheHistory) {
  // "a" acknowledged, then "b" acknowledged later; the final read returns "a": b was lost.
  std::vector<ClientOp> ops = {Put(0, "k", "a", 1, 2), Put(1, "k", "b", 3, 4),
                               Put(2, "j", "x", 1, 2)};
  std::map<std::string, std::optional<std::string>> finals = {{"k", "a"}, {"j", "x"}};
  EXPECT_EQ(CountLostAcknowledged(ops, finals), 1u);
  ops.push_back(Get(9, "k", "a", 10, 11));
  absl::StatusOr<checker::CheckResult> r = checker::CheckLinearizability(CheckerOperations(ops));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, checker::Verdict::kViolation);
  EXPECT_STREQ(LinearizableWord(r->verdict), "no");
}

TEST(History, ConcurrentOrUnknownWritersLoseNothing) {
  // b overlaps a: either order is allowed, so a final "a" loses nothing. An info put "c"
  // invoked after b completed may have taken effect last.
  const std::vector<ClientOp> ops = {Put(0, "k", "a", 1, 5), Put(1, "k", "b", 2, 4),
                                     Put(2, "k", "c", 6, 0, Outcome::kInfo)};
  EXPECT_EQ(CountLostAcknowledged(ops, {{"k", "a"}}), 0u);
  EXPECT_EQ(CountLostAcknowledged(ops, {{"k", "c"}}), 0u);
  EXPECT_EQ(CountLostAcknowledged(ops, {{"k", std::nullopt}}), 2u) << "both acknowledged puts";
  EXPECT_EQ(CountLostAcknowledged(ops, {{"k", "never written"}}), 2u);
  EXPECT_EQ(CountLostAcknowledged(ops, {}), 0u) << "keys not read are not judged";
}

TEST(History, TallyCountsPendingAsInfo) {
  const Tally t = TallyOf({Put(0, "k", "a", 1, 2), Put(1, "k", "b", 3, 0, Outcome::kPending),
                           Put(1, "k", "c", 3, 4, Outcome::kInfo),
                           Get(2, "k", std::nullopt, 3, 4, Outcome::kFail)});
  EXPECT_EQ(t.ops, 4u);
  EXPECT_EQ(t.ok, 1u);
  EXPECT_EQ(t.info, 2u);
  EXPECT_EQ(t.fail, 1u);
}

TEST(Soak, TheScheduleIsASupportedScriptOfTheRightLength) {
  SoakOptions o;
  o.seed = 42;
  o.duration_ms = 10 * 60 * 1000;
  o.random_faults = true;
  const std::string text = SoakScript(o);
  EXPECT_EQ(text, SoakScript(o)) << "the same seed gives the same schedule";
  o.seed = 43;
  EXPECT_NE(text, SoakScript(o));
  const Scenario s = Parse(text);
  EXPECT_TRUE(CheckRealClusterSupport(s).ok()) << CheckRealClusterSupport(s);
  uint64_t waited = 0;
  std::map<Command::Kind, int> count;
  int self_links = 0;
  for (const Command& c : s.commands) {
    if (c.kind == Command::Kind::kWait) waited += c.duration_ms;
    ++count[c.kind];
    self_links += (c.kind == Command::Kind::kBlock || c.kind == Command::Kind::kClog) &&
                  c.node == c.peer;
  }
  EXPECT_GE(waited, o.duration_ms - 5000);
  EXPECT_LE(waited, o.duration_ms + 3000);
  for (Command::Kind k : {Command::Kind::kCrash, Command::Kind::kPause, Command::Kind::kTransfer,
                          Command::Kind::kIsolate, Command::Kind::kBlock, Command::Kind::kClog}) {
    EXPECT_GT(count[k], 5) << "kind " << static_cast<int>(k);
  }
  EXPECT_EQ(count[Command::Kind::kRestart], count[Command::Kind::kCrash]);
  EXPECT_EQ(count[Command::Kind::kResume], count[Command::Kind::kPause]);
  EXPECT_EQ(count[Command::Kind::kHeal], count[Command::Kind::kIsolate] +
                                             count[Command::Kind::kBlock] +
                                             count[Command::Kind::kClog])
      << "every network fault is healed";
  EXPECT_EQ(self_links, 0);
  const int converged = count[Command::Kind::kExpectConverged];
  EXPECT_GE(converged, 9) << "every minute and at the end";
  EXPECT_EQ(s.commands.back().kind, Command::Kind::kExpectLinearizable);
}

TEST(Soak, OneNodeGetsOnlyProcessFaults) {
  SoakOptions o;
  o.nodes = 1;
  o.duration_ms = 120000;
  o.random_faults = true;
  const Scenario s = Parse(SoakScript(o));
  for (const Command& c : s.commands) {
    EXPECT_TRUE(c.kind != Command::Kind::kIsolate && c.kind != Command::Kind::kBlock &&
                c.kind != Command::Kind::kClog && c.kind != Command::Kind::kTransfer)
        << c.text;
  }
}

TEST(Soak, WithoutRandomFaultsOnlyTheWorkloadRuns) {
  SoakOptions o;
  o.duration_ms = 120000;
  const Scenario s = Parse(SoakScript(o));
  for (const Command& c : s.commands) {
    EXPECT_TRUE(c.kind == Command::Kind::kWait || c.kind == Command::Kind::kExpectConverged ||
                c.kind == Command::Kind::kExpectLinearizable)
        << c.text;
  }
}

TEST(History, AvailabilityFindsGapsWithoutSuccess) {
  const Availability a =
      AvailabilityOf({Put(0, "k", "a", 0, 10), Get(1, "k", "a", 5, 20),
                      Put(0, "k", "b", 30, 2000, Outcome::kInfo), Put(1, "k", "c", 25, 1500),
                      Get(0, "k", "c", 1600, 1700)},
                     /*min_gap_ns=*/1000);
  EXPECT_EQ(a.acked_puts, 2u);
  ASSERT_EQ(a.unavailable.size(), 1u);
  EXPECT_EQ(a.unavailable[0], std::make_pair(uint64_t{20}, uint64_t{1500}));
  EXPECT_EQ(a.longest_unavailable_ns, 1480u);
  EXPECT_EQ(a.p50_ns, 15u);    // latencies 10, 15, 100, 1475
  EXPECT_EQ(a.p99_ns, 100u);  // the 99th percentile of four is the third
}

}  // namespace
}  // namespace amaters::sim::chaos
