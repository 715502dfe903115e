// Tests of the linearizability checker.
//
// Layers (docs/design.md §4.7): hand-written histories for each rule of the model; a brute-force
// oracle compared with the checker on thousands of small random histories; correct histories
// generated from an atomic register over many seeds, which must pass, and then fail once an
// impossible read is planted (§4.8: a checker that cannot fail proves nothing); the search
// bound; and a 10,000-operation history.
//
// Every random test derives its histories from a printed seed. Replay one seed with
//   ./bazelw test //sim/checker:linearizability_test --test_env=AMATERS_SEED=<seed>
#include "sim/checker/linearizability.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/rand.h"
#include "gtest/gtest.h"

namespace amaters::sim::checker {
namespace {

using Value = std::optional<std::string>;
constexpr std::nullopt_t kAbsent = std::nullopt;

using H = std::vector<Operation>;

CheckResult Check(const H& history, const CheckOptions& options = {}) {
  absl::StatusOr<CheckResult> r = CheckLinearizability(history, options);
  if (!r.ok()) {
    ADD_FAILURE() << "CheckLinearizability: " << r.status();
    CheckResult bad;
    bad.verdict = Verdict::kUnknown;
    return bad;
  }
  // Structural invariants of every result.
  switch (r->verdict) {
    case Verdict::kOk:
      EXPECT_TRUE(r->violations.empty());
      EXPECT_TRUE(r->unknown_keys.empty());
      break;
    case Verdict::kViolation:
      EXPECT_FALSE(r->violations.empty());
      break;
    case Verdict::kUnknown:
      EXPECT_TRUE(r->violations.empty());
      EXPECT_FALSE(r->unknown_keys.empty());
      break;
  }
  EXPECT_EQ(r->stats.keys_violating, r->violations.size());
  EXPECT_EQ(r->stats.keys_unknown, r->unknown_keys.size());
  for (const Violation& v : r->violations) {
    EXPECT_TRUE(absl::StrContains(v.explanation, absl::StrCat("op #", v.unplaceable_op, " ")))
        << v.explanation;
  }
  return *std::move(r);
}

std::string Explain(const CheckResult& r) {
  std::string s = r.Summary();
  for (const Violation& v : r.violations) absl::StrAppend(&s, "\n", v.explanation);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Hand-written histories. Times are virtual nanoseconds; intervals are [invoke, complete].

TEST(Linearizability, EmptyHistoryIsOk) {
  CheckResult r = Check({});
  EXPECT_EQ(r.verdict, Verdict::kOk);
  EXPECT_EQ(r.stats.keys, 0u);
}

TEST(Linearizability, SequentialHistoryIsOk) {
  H h = {
      Operation::Get(1, "x", kAbsent, 0, 10),
      Operation::Put(1, "x", "a", 20, 30),
      Operation::Get(2, "x", "a", 40, 50),
      Operation::Put(2, "y", "b", 45, 55),
      Operation::Delete(1, "x", 60, 70),
      Operation::Get(1, "x", kAbsent, 80, 90),
      Operation::Get(3, "y", "b", 80, 90),
  };
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << Explain(r);
  EXPECT_EQ(r.stats.keys, 2u);
  EXPECT_EQ(r.stats.operations_total, 7u);
  EXPECT_EQ(r.stats.operations_checked, 7u);
  EXPECT_GT(r.stats.search_steps, 0u);
  EXPECT_EQ(r.Summary().rfind("linearizability: ok keys=2 ops=7 checked=7 steps=", 0), 0u)
      << r.Summary();
}

TEST(Linearizability, ConcurrentGetMaySeeEitherValue) {
  for (const char* seen : {"a", "b"}) {
    H h = {
        Operation::Put(1, "x", "a", 0, 10),
        Operation::Put(1, "x", "b", 20, 40),
        Operation::Get(2, "x", seen, 25, 35),
    };
    CheckResult r = Check(h);
    EXPECT_EQ(r.verdict, Verdict::kOk) << seen << "\n" << Explain(r);
  }
  // Two overlapping gets may even disagree in either order, while the put is in flight.
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "b", 20, 100),
      Operation::Get(2, "x", "b", 30, 40),
      Operation::Get(3, "x", "a", 25, 35),
  };
  EXPECT_EQ(Check(h).verdict, Verdict::kOk);
}

TEST(Linearizability, TouchingIntervalsAreConcurrentButAGapOrdersThem) {
  // The get is invoked at the instant the put completes: they may take effect in either order.
  H touching = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Get(2, "x", kAbsent, 10, 20),
  };
  EXPECT_EQ(Check(touching).verdict, Verdict::kOk);
  H gap = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Get(2, "x", kAbsent, 11, 20),
  };
  EXPECT_EQ(Check(gap).verdict, Verdict::kViolation);
}

TEST(Linearizability, StaleReadAfterCompletedPutIsAViolation) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "b", 20, 30),
      Operation::Get(2, "x", "a", 40, 50),  // b was acknowledged before this get began
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  ASSERT_EQ(r.violations.size(), 1u);
  const Violation& v = r.violations[0];
  EXPECT_EQ(v.key, "x");
  // Once b is written, a is gone for good (nothing else writes it) while the get still needs
  // it: the search stops before b, and names the get as the read it could not keep possible.
  EXPECT_EQ(v.linearized_prefix, (std::vector<size_t>{0}));
  EXPECT_EQ(v.state_after_prefix, Value("a"));
  EXPECT_EQ(v.unplaceable_op, 1u);
  EXPECT_EQ(v.starved_read, std::optional<size_t>(2));
  EXPECT_FALSE(v.unwritten_read);
  EXPECT_TRUE(v.concurrent_ops.empty());
  EXPECT_TRUE(absl::StrContains(
      v.explanation, "op #2 client 2 get(\"x\") -> \"a\" [invoke 40, complete 50]"))
      << v.explanation;
  EXPECT_TRUE(absl::StrContains(v.explanation, "state after the prefix: \"a\"")) << v.explanation;
  EXPECT_TRUE(absl::StrContains(v.explanation, "would make this read impossible")) << v.explanation;
  EXPECT_TRUE(absl::StrContains(r.Summary(), "linearizability: violation violating_keys=1"))
      << r.Summary();
}

TEST(Linearizability, ExplanationFormatAsInTheReadme) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "b", 20, 30),
      Operation::Get(2, "x", "a", 40, 50),
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.violations[0].explanation,
            "linearizability violation on key \"x\" (3 operations checked): no linearization "
            "exists; the search got furthest with 1, then op #1 could not be placed\n"
            "  longest linearizable prefix found, in linearization order (1 ops):\n"
            "    op #0 client 1 put(\"x\", \"a\") -> ok [invoke 0, complete 10]\n"
            "  state after the prefix: \"a\"\n"
            "  cannot be placed next (it must take effect before it completes):\n"
            "    op #1 client 1 put(\"x\", \"b\") -> ok [invoke 20, complete 30]\n"
            "  and moving the state on from the prefix would make this read impossible (no "
            "operation left can write the value it needs):\n"
            "    op #2 client 2 get(\"x\") -> \"a\" [invoke 40, complete 50]\n"
            "  other unlinearized ops invoked before it completed (0):\n"
            "    (none)\n");
}

TEST(Linearizability, LostWriteIsAViolation) {
  // An acknowledged put is never visible: a later get returns the value it overwrote.
  H h = {
      Operation::Put(1, "x", "old", 0, 10),
      Operation::Get(2, "x", "old", 15, 18),
      Operation::Put(1, "x", "new", 20, 30),
      Operation::Get(3, "x", "old", 100, 110),
      Operation::Get(2, "x", "old", 120, 130),
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  EXPECT_EQ(r.violations[0].unplaceable_op, 2u) << Explain(r);  // the new put...
  EXPECT_EQ(r.violations[0].starved_read, std::optional<size_t>(3)) << Explain(r);  // ...hides old
}

TEST(Linearizability, ReadOfAValueNeverWrittenIsAViolation) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Get(2, "x", "zzz", 5, 50),
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  const Violation& v = r.violations[0];
  EXPECT_TRUE(v.unwritten_read);
  EXPECT_FALSE(v.first_write.has_value());
  EXPECT_EQ(v.unplaceable_op, 1u);
  EXPECT_EQ(v.starved_read, std::optional<size_t>(1));
  EXPECT_TRUE(v.linearized_prefix.empty());
  EXPECT_TRUE(absl::StrContains(v.explanation,
                                "op #1 reads \"zzz\", which no operation on this key writes"))
      << v.explanation;
  // The same for a cas that claims to have matched a value nobody wrote.
  H cas = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Cas(2, "x", "zzz", "b", true, 20, 30),
  };
  r = Check(cas);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  EXPECT_TRUE(absl::StrContains(r.violations[0].explanation, "op #1 compares with \"zzz\""))
      << Explain(r);
}

TEST(Linearizability, ValuesDoNotLeakAcrossKeys) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Get(2, "y", "a", 20, 30),
      Operation::Get(2, "x", "a", 40, 50),
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].key, "y");
  EXPECT_EQ(r.stats.keys, 2u);
}

TEST(Linearizability, EveryViolatingKeyIsReportedInKeyOrder) {
  H h = {
      Operation::Get(1, "z", "1", 0, 10),
      Operation::Put(1, "m", "a", 0, 10),
      Operation::Get(1, "a", "2", 0, 10),
      Operation::Get(2, "m", "a", 20, 30),
  };
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  ASSERT_EQ(r.violations.size(), 2u);
  EXPECT_EQ(r.violations[0].key, "a");
  EXPECT_EQ(r.violations[1].key, "z");
  EXPECT_EQ(r.stats.keys, 3u);
}

TEST(Linearizability, DeleteThenGetAbsent) {
  H ok = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Delete(1, "x", 20, 30),
      Operation::Get(2, "x", kAbsent, 40, 50),
      Operation::Delete(2, "x", 60, 70),  // deleting an absent key is fine
      Operation::Get(2, "x", kAbsent, 80, 90),
  };
  EXPECT_EQ(Check(ok).verdict, Verdict::kOk);
  H resurrected = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Delete(1, "x", 20, 30),
      Operation::Get(2, "x", "a", 40, 50),
  };
  CheckResult r = Check(resurrected);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.violations[0].unplaceable_op, 1u) << Explain(r);
  EXPECT_EQ(r.violations[0].starved_read, std::optional<size_t>(2)) << Explain(r);
  // A get of absent after a completed put.
  H not_deleted = {
      Operation::Delete(1, "x", 0, 10),
      Operation::Put(1, "x", "a", 20, 30),
      Operation::Get(2, "x", kAbsent, 40, 50),
  };
  r = Check(not_deleted);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.violations[0].state_after_prefix, kAbsent);
  EXPECT_TRUE(absl::StrContains(r.violations[0].explanation, "state after the prefix: absent"))
      << Explain(r);
}

TEST(Linearizability, TwoConcurrentCreateIfAbsentCannotBothSucceed) {
  H both = {
      Operation::Cas(1, "x", kAbsent, "a", true, 0, 20),
      Operation::Cas(2, "x", kAbsent, "b", true, 5, 25),
  };
  CheckResult r = Check(both);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  EXPECT_TRUE(absl::StrContains(r.violations[0].explanation, "cas(\"x\", absent -> \"")) << Explain(r);

  H one = {
      Operation::Cas(1, "x", kAbsent, "a", true, 0, 20),
      Operation::Cas(2, "x", kAbsent, "b", false, 5, 25),
      Operation::Get(3, "x", "a", 30, 40),
  };
  EXPECT_EQ(Check(one).verdict, Verdict::kOk);
  // The loser's value must not be visible.
  H loser_visible = one;
  loser_visible[2].read = "b";
  EXPECT_EQ(Check(loser_visible).verdict, Verdict::kViolation);
  // Both may succeed when a delete separates them.
  H separated = {
      Operation::Cas(1, "x", kAbsent, "a", true, 0, 20),
      Operation::Delete(3, "x", 30, 40),
      Operation::Cas(2, "x", kAbsent, "b", true, 50, 60),
  };
  EXPECT_EQ(Check(separated).verdict, Verdict::kOk);
}

TEST(Linearizability, CasComparesTheCurrentValue) {
  H ok = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Cas(1, "x", "a", "b", true, 20, 30),
      Operation::Cas(2, "x", "a", "c", false, 40, 50),
      Operation::Get(2, "x", "b", 60, 70),
  };
  EXPECT_EQ(Check(ok).verdict, Verdict::kOk);
  H wrongly_failed = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Cas(1, "x", "a", "b", false, 20, 30),  // x was "a": must succeed
  };
  EXPECT_EQ(Check(wrongly_failed).verdict, Verdict::kViolation);
  H wrongly_succeeded = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Cas(1, "x", "z", "b", true, 20, 30),
  };
  EXPECT_EQ(Check(wrongly_succeeded).verdict, Verdict::kViolation);
}

TEST(Linearizability, UnknownWriteMayOrMayNotHaveHappened) {
  for (const char* seen : {"a", "b"}) {
    H h = {
        Operation::Put(1, "x", "a", 0, 10),
        Operation::Put(1, "x", "b", 20, 30).Unknown(),  // the client timed out
        Operation::Get(2, "x", seen, 40, 50),
        Operation::Get(2, "x", seen, 60, 70),
    };
    for (bool prune : {true, false}) {
      CheckOptions o;
      o.prune_unobserved_unknown_writes = prune;
      CheckResult r = Check(h, o);
      EXPECT_EQ(r.verdict, Verdict::kOk) << seen << " prune=" << prune << "\n" << Explain(r);
    }
  }
  // It may even take effect long after the client gave up, between two later gets.
  H late = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "b", 20, 30).Unknown(),
      Operation::Get(2, "x", "a", 1000, 1010),
      Operation::Get(2, "x", "b", 2000, 2010),
  };
  EXPECT_EQ(Check(late).verdict, Verdict::kOk);
}

TEST(Linearizability, UnknownWriteOnceVisibleStaysVisible) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "b", 20, 30).Unknown(),
      Operation::Get(2, "x", "b", 40, 50),
      Operation::Get(3, "x", "a", 60, 70),  // b took effect before 50; nothing wrote a since
  };
  for (bool prune : {true, false}) {
    CheckOptions o;
    o.prune_unobserved_unknown_writes = prune;
    CheckResult r = Check(h, o);
    ASSERT_EQ(r.verdict, Verdict::kViolation) << "prune=" << prune;
    EXPECT_EQ(r.violations[0].unplaceable_op, 2u) << Explain(r);
    EXPECT_EQ(r.violations[0].starved_read, std::optional<size_t>(3)) << Explain(r);
    EXPECT_TRUE(absl::StrContains(r.violations[0].explanation, "unknown outcome")) << Explain(r);
  }
}

TEST(Linearizability, AWriteCannotTakeEffectBeforeItsInvocation) {
  for (bool unknown : {false, true}) {
    H h = {
        Operation::Put(1, "x", "a", 0, 5),
        Operation::Get(2, "x", "b", 0, 10),
        Operation::Put(1, "x", "b", 20, 30),
    };
    if (unknown) h[2] = h[2].Unknown();
    CheckResult r = Check(h);
    ASSERT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
    const Violation& v = r.violations[0];
    EXPECT_TRUE(v.unwritten_read);
    EXPECT_EQ(v.unplaceable_op, 1u);
    EXPECT_EQ(v.first_write, std::optional<size_t>(2));
    EXPECT_TRUE(absl::StrContains(
        v.explanation, "op #1 reads \"b\", which is first written by op #2, invoked after the "
                       "read completed"))
        << v.explanation;
  }
}

TEST(Linearizability, UnknownCasAppliesOnlyWhenItsComparisonHolds) {
  H applied = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Cas(1, "x", "a", "b", false, 20, 30).Unknown(),
      Operation::Get(2, "x", "b", 40, 50),
  };
  EXPECT_EQ(Check(applied).verdict, Verdict::kOk);
  H not_applied = applied;
  not_applied[2].read = "a";
  EXPECT_EQ(Check(not_applied).verdict, Verdict::kOk);
  H comparison_fails = applied;
  comparison_fails[1].expected = "z";  // x is "a": the cas cannot have written "b"
  EXPECT_EQ(Check(comparison_fails).verdict, Verdict::kViolation);
}

TEST(Linearizability, UnknownGetsAndDefinitelyFailedOpsAreDropped) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Get(2, "x", "nonsense", 20, 30).Unknown(),
      Operation::Put(1, "x", "b", 40, 50).Failed(),
      Operation::Get(3, "x", "a", 60, 70),
  };
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << Explain(r);
  EXPECT_EQ(r.stats.dropped_unknown_gets, 1u);
  EXPECT_EQ(r.stats.dropped_failed, 1u);
  EXPECT_EQ(r.stats.operations_checked, 2u);
  // The failed put certainly did not happen, so its value cannot be read.
  H seen = h;
  seen[3].read = "b";
  EXPECT_EQ(Check(seen).verdict, Verdict::kViolation);
}

TEST(Linearizability, UnobservedUnknownWritesArePrunedAndCounted) {
  H h = {
      Operation::Put(1, "x", "a", 0, 10),
      Operation::Put(1, "x", "lost", 20, 30).Unknown(),
      Operation::Delete(2, "x", 25, 35).Unknown(),  // a later get returns absent: observed
      Operation::Get(2, "x", "a", 40, 50),
      Operation::Get(2, "x", kAbsent, 60, 70),
  };
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << Explain(r);
  EXPECT_EQ(r.stats.pruned_unknown_writes, 1u);
  EXPECT_EQ(r.stats.operations_checked, 4u);
}

TEST(Linearizability, ManyUnobservedUnknownWritesStayCheap) {
  // Forty timed-out puts that never took effect; a failed cas keeps them from being pruned,
  // so the search has to live with them (rule R1 in linearizability.cc).
  for (bool plant_violation : {false, true}) {
    H h = {Operation::Put(1, "x", "a", 0, 10)};
    for (int i = 0; i < 40; ++i) {
      h.push_back(Operation::Put(100 + i, "x", absl::StrCat("u", i), 20, 30).Unknown());
    }
    uint64_t t = 100;
    for (int i = 0; i < 30; ++i, t += 20) {
      h.push_back(Operation::Get(1, "x", "a", t, t + 10));
      h.push_back(Operation::Cas(2, "x", "nope", "c", false, t + 5, t + 15));
    }
    if (plant_violation) h.push_back(Operation::Get(1, "x", "never", t, t + 10));
    CheckResult r = Check(h);
    EXPECT_EQ(r.verdict, plant_violation ? Verdict::kViolation : Verdict::kOk) << Explain(r);
    EXPECT_EQ(r.stats.pruned_unknown_writes, 0u);
    EXPECT_LT(r.stats.search_steps, 50'000u) << r.Summary();
  }
}

TEST(Linearizability, InvalidIntervalIsRejected) {
  H h = {Operation::Put(1, "x", "a", 10, 5)};
  absl::StatusOr<CheckResult> r = CheckLinearizability(h);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "op #0")) << r.status();
  // complete_ns of an unknown op is not read.
  EXPECT_TRUE(CheckLinearizability({h[0].Unknown()}).ok());
}

TEST(Linearizability, DescribeOperation) {
  EXPECT_EQ(DescribeOperation(Operation::Cas(3, "k", kAbsent, "v", true, 10, 25)),
            "client 3 cas(\"k\", absent -> \"v\") -> succeeded [invoke 10, complete 25]");
  EXPECT_EQ(DescribeOperation(Operation::Put(1, "k", "a\nb", 5, 6).Unknown()),
            "client 1 put(\"k\", \"a\\nb\") -> unknown outcome [invoke 5, complete ?]");
  EXPECT_EQ(DescribeOperation(Operation::Get(2, "k", kAbsent, 1, 2)),
            "client 2 get(\"k\") -> absent [invoke 1, complete 2]");
  const std::string long_value(100, 'z');
  EXPECT_TRUE(absl::StrContains(DescribeOperation(Operation::Put(1, "k", long_value, 0, 1)),
                                "...(100 bytes)"));
}

TEST(Linearizability, ExplanationShowsTheLastOpsOfALongPrefix) {
  H h;
  uint64_t t = 0;
  for (int i = 0; i < 30; ++i, t += 20) {
    h.push_back(Operation::Put(1, "x", absl::StrCat("v", i), t, t + 10));
  }
  h.push_back(Operation::Get(2, "x", "v28", t, t + 10));  // v29 was acknowledged before
  CheckOptions o;
  o.explanation_ops_max = 4;
  CheckResult r = Check(h, o);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  const std::string& e = r.violations[0].explanation;
  EXPECT_TRUE(absl::StrContains(e, "29 ops, the last 4 shown")) << e;
  EXPECT_TRUE(absl::StrContains(e, "op #28 ")) << e;
  EXPECT_TRUE(absl::StrContains(e, "op #29 ")) << e;  // cannot be placed
  EXPECT_TRUE(absl::StrContains(e, "op #30 ")) << e;  // the stale read
  EXPECT_FALSE(absl::StrContains(e, "op #24 ")) << e;
  EXPECT_EQ(r.violations[0].linearized_prefix.size(), 29u);
}

// ---------------------------------------------------------------------------------------------
// Seeds.

std::vector<uint64_t> Seeds(uint64_t count) {
  if (const char* env = std::getenv("AMATERS_SEED")) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(env, &seed)) return {seed};
    ADD_FAILURE() << "AMATERS_SEED is not a number: " << env;
  }
  std::vector<uint64_t> seeds;
  for (uint64_t s = 1; s <= count; ++s) seeds.push_back(s);
  return seeds;
}

std::string SeedTrace(uint64_t seed) {
  return absl::StrCat("seed=", seed, " (replay: ./bazelw test //sim/checker:linearizability_test",
                      " --test_env=AMATERS_SEED=", seed, ")");
}

// ---------------------------------------------------------------------------------------------
// Histories of a correct register: each operation takes effect atomically at a random instant
// of its interval (an unknown one at any instant after its invocation, or never).

struct GenConfig {
  uint64_t clients = 4;
  uint64_t keys = 2;
  uint64_t ops = 100;
  uint64_t value_pool = 0;  // 0: every write a fresh value; n: values drawn from n names
  // Percentages; the rest are cas.
  uint64_t put_pct = 35;
  uint64_t get_pct = 35;
  uint64_t delete_pct = 10;
  // Percentages of fates; the rest complete.
  uint64_t unknown_applied_pct = 8;
  uint64_t unknown_not_applied_pct = 6;
  uint64_t failed_pct = 3;
  uint64_t gap_max_ns = 20;
  uint64_t duration_max_ns = 50;
  uint64_t unknown_delay_max_ns = 1000;
};

H GenerateLinearizable(uint64_t seed, const GenConfig& c) {
  SplitMix64 rng(seed);
  std::vector<uint64_t> free_at(c.clients, 0);
  std::map<std::string, std::vector<std::string>> written;
  struct Effect {
    uint64_t at;
    size_t index;
  };
  std::vector<Effect> effects;
  H h;
  for (uint64_t k = 0; k < c.ops; ++k) {
    // The client that is free first issues the next operation.
    const uint64_t client = static_cast<uint64_t>(
        std::min_element(free_at.begin(), free_at.end()) - free_at.begin());
    const uint64_t invoke = free_at[client] + rng.Uniform(c.gap_max_ns + 1);
    const uint64_t complete = invoke + 1 + rng.Uniform(c.duration_max_ns);
    free_at[client] = complete;
    const std::string key = absl::StrCat("k", rng.Uniform(c.keys));
    const std::string value =
        c.value_pool == 0 ? absl::StrCat("v", k) : absl::StrCat("v", rng.Uniform(c.value_pool));
    const uint64_t kind = rng.Uniform(100);
    Operation op;
    if (kind < c.put_pct) {
      op = Operation::Put(client, key, value, invoke, complete);
      written[key].push_back(value);
    } else if (kind < c.put_pct + c.get_pct) {
      op = Operation::Get(client, key, kAbsent, invoke, complete);
    } else if (kind < c.put_pct + c.get_pct + c.delete_pct) {
      op = Operation::Delete(client, key, invoke, complete);
    } else {
      // Expect absent, or one of the last values written: such cas succeed often enough.
      const std::vector<std::string>& w = written[key];
      Value expected;
      if (!w.empty() && rng.Uniform(100) >= 25) {
        expected = w[w.size() - 1 - rng.Uniform(std::min<uint64_t>(3, w.size()))];
      }
      op = Operation::Cas(client, key, expected, value, false, invoke, complete);
      written[key].push_back(value);
    }
    const uint64_t fate = rng.Uniform(100);
    const size_t index = h.size();
    if (fate < c.unknown_applied_pct) {
      op = op.Unknown();
      effects.push_back(Effect{invoke + rng.Uniform(c.unknown_delay_max_ns + 1), index});
    } else if (fate < c.unknown_applied_pct + c.unknown_not_applied_pct) {
      op = op.Unknown();
    } else if (fate < c.unknown_applied_pct + c.unknown_not_applied_pct + c.failed_pct) {
      op = op.Failed();
    } else {
      effects.push_back(Effect{invoke + rng.Uniform(complete - invoke + 1), index});
    }
    h.push_back(std::move(op));
  }
  std::sort(effects.begin(), effects.end(), [](const Effect& a, const Effect& b) {
    return std::make_pair(a.at, a.index) < std::make_pair(b.at, b.index);
  });
  std::map<std::string, Value> state;
  for (const Effect& e : effects) {
    Operation& op = h[e.index];
    Value& s = state[op.key];
    switch (op.kind) {
      case OpKind::kPut:
        s = op.value;
        break;
      case OpKind::kGet:
        op.read = s;
        break;
      case OpKind::kDelete:
        s = kAbsent;
        break;
      case OpKind::kCas:
        op.cas_succeeded = s == op.expected;
        if (op.cas_succeeded) s = op.value;
        break;
    }
  }
  return h;
}

std::vector<size_t> CompletedGets(const H& h) {
  std::vector<size_t> gets;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].kind == OpKind::kGet && h[i].outcome == OpOutcome::kCompleted) gets.push_back(i);
  }
  return gets;
}

// A planted stale read: a completed get made to return the value of a completed put P that
// a completed put Q overwrote, P before Q and Q before the get in real time. With fresh values
// (GenConfig::value_pool == 0) nothing else writes P's value, so no order allows it.
std::optional<std::pair<size_t, std::string>> StaleRead(const H& h, uint64_t salt) {
  std::vector<size_t> gets = CompletedGets(h);
  if (gets.empty()) return std::nullopt;
  const size_t start = SplitMix64(salt).Uniform(gets.size());
  for (size_t k = 0; k < gets.size(); ++k) {
    const Operation& g = h[gets[(start + k) % gets.size()]];
    auto completed_put = [&](const Operation& op) {
      return op.kind == OpKind::kPut && op.outcome == OpOutcome::kCompleted && op.key == g.key;
    };
    const Operation* q = nullptr;  // the put invoked last among those completed before g
    for (const Operation& op : h) {
      if (completed_put(op) && op.complete_ns < g.invoke_ns &&
          (q == nullptr || op.invoke_ns > q->invoke_ns)) {
        q = &op;
      }
    }
    if (q == nullptr) continue;
    for (const Operation& p : h) {
      if (completed_put(p) && p.complete_ns < q->invoke_ns && g.read != Value(p.value)) {
        return std::make_pair(gets[(start + k) % gets.size()], p.value);
      }
    }
  }
  return std::nullopt;
}

// A planted read from the future: a completed get made to return the value of a write
// invoked only after the get completed (fresh values: nothing else writes it).
std::optional<std::pair<size_t, std::string>> FutureRead(const H& h, uint64_t salt) {
  std::vector<size_t> gets = CompletedGets(h);
  if (gets.empty()) return std::nullopt;
  const size_t start = SplitMix64(salt).Uniform(gets.size());
  for (size_t k = 0; k < gets.size(); ++k) {
    const size_t g = gets[(start + k) % gets.size()];
    for (const Operation& w : h) {
      if ((w.kind == OpKind::kPut || w.kind == OpKind::kCas) && w.key == h[g].key &&
          w.invoke_ns > h[g].complete_ns) {
        return std::make_pair(g, w.value);
      }
    }
  }
  return std::nullopt;
}

// The result of checking `h` with one completed get's output replaced: a violation on that
// get's key (counted in *caught), or unknown (counted in *unknown).
void ExpectCaught(const H& h, size_t get, const std::string& read, const char* what,
                  uint64_t* caught, uint64_t* unknown) {
  H bad = h;
  bad[get].read = read;
  const CheckResult r = Check(bad);
  if (r.verdict == Verdict::kUnknown) {
    ++*unknown;
    return;
  }
  ASSERT_EQ(r.verdict, Verdict::kViolation) << what << " planted at op #" << get;
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].key, h[get].key);
  ++*caught;
}

TEST(GeneratedHistories, CorrectRegisterPassesAndPlantedBadReadsAreCaught) {
  uint64_t histories = 0, never = 0, stale = 0, future = 0, unknown = 0;
  for (uint64_t seed : Seeds(400)) {
    SCOPED_TRACE(SeedTrace(seed));
    GenConfig c;
    c.clients = 1 + seed % 5;
    c.keys = 1 + seed % 3;
    c.ops = 20 + seed % 200;
    const H h = GenerateLinearizable(seed, c);
    const CheckResult r = Check(h);
    ++histories;
    ASSERT_EQ(r.verdict, Verdict::kOk) << Explain(r);

    const std::vector<size_t> gets = CompletedGets(h);
    if (gets.empty()) continue;
    // A value nobody wrote.
    ExpectCaught(h, gets[SplitMix64(seed ^ 0x5eed).Uniform(gets.size())], "never-written",
                 "a read of a value never written", &never, &unknown);
    // The value of a put that a later completed put overwrote before the get began.
    if (auto bad = StaleRead(h, seed)) {
      ExpectCaught(h, bad->first, bad->second, "a stale read", &stale, &unknown);
    }
    // The value of a write invoked after the get completed.
    if (auto bad = FutureRead(h, seed)) {
      ExpectCaught(h, bad->first, bad->second, "a read from the future", &future, &unknown);
    }
  }
  EXPECT_EQ(unknown, 0u);
  if (histories > 1) {
    EXPECT_GT(never, 350u);
    EXPECT_GT(stale, 250u);
    EXPECT_GT(future, 250u);
  }
  std::printf("%llu histories; planted reads caught: never-written %llu, stale %llu, future "
              "%llu; unknown %llu\n",
              static_cast<unsigned long long>(histories), static_cast<unsigned long long>(never),
              static_cast<unsigned long long>(stale), static_cast<unsigned long long>(future),
              static_cast<unsigned long long>(unknown));
}

TEST(GeneratedHistories, LongSingleKeyHistoriesWithManyUnknownOutcomesPass) {
  // One key, five clients, a third of the operations timing out (half of those applied, up
  // to a hundred operations later): the search must still find a linearization quickly.
  uint64_t max_steps = 0;
  for (uint64_t seed : Seeds(10)) {
    SCOPED_TRACE(SeedTrace(seed));
    GenConfig c;
    c.clients = 5;
    c.keys = 1;
    c.ops = 1500;
    c.unknown_applied_pct = 16;
    c.unknown_not_applied_pct = 16;
    const H h = GenerateLinearizable(seed, c);
    const CheckResult r = Check(h);
    ASSERT_EQ(r.verdict, Verdict::kOk) << Explain(r);
    max_steps = std::max(max_steps, r.stats.max_search_steps_key);
  }
  std::printf("max steps on one key: %llu\n", static_cast<unsigned long long>(max_steps));
}

// ---------------------------------------------------------------------------------------------
// A brute-force oracle: every order of the operations that respects real time, with a memo of
// failed (placed set, state) pairs. Written independently of the checker: no event list, no
// pruning, unknown gets kept (as operations that accept any state).

class BruteForce {
 public:
  explicit BruteForce(const H& history) {
    for (const Operation& op : history) {
      if (op.outcome != OpOutcome::kFailed) ops_.push_back(op);
    }
    EXPECT_LE(ops_.size(), 16u);
  }

  bool Linearizable() { return Search(0, kAbsent); }

 private:
  bool Search(uint32_t placed, const Value& state) {
    bool done = true;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (!(placed >> i & 1) && ops_[i].outcome == OpOutcome::kCompleted) done = false;
    }
    if (done) return true;
    if (failed_.count({placed, state})) return false;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (placed >> i & 1) continue;
      bool may_go_next = true;
      for (size_t j = 0; j < ops_.size(); ++j) {
        if (j != i && !(placed >> j & 1) && ops_[j].outcome == OpOutcome::kCompleted &&
            ops_[j].complete_ns < ops_[i].invoke_ns) {
          may_go_next = false;
        }
      }
      Value next;
      if (may_go_next && Apply(ops_[i], state, &next) && Search(placed | 1u << i, next)) {
        return true;
      }
    }
    failed_.insert({placed, state});
    return false;
  }

  static bool Apply(const Operation& op, const Value& s, Value* next) {
    const bool any = op.outcome == OpOutcome::kUnknown;
    switch (op.kind) {
      case OpKind::kPut:
        *next = op.value;
        return true;
      case OpKind::kDelete:
        *next = kAbsent;
        return true;
      case OpKind::kGet:
        *next = s;
        return any || s == op.read;
      case OpKind::kCas:
        if (s == op.expected) {
          *next = op.value;
          return any || op.cas_succeeded;
        }
        *next = s;
        return any || !op.cas_succeeded;
    }
    return false;
  }

  std::vector<Operation> ops_;
  std::set<std::pair<uint32_t, Value>> failed_;
};

Value RandomValue(SplitMix64& rng) {
  const uint64_t r = rng.Uniform(4);
  if (r == 3) return kAbsent;
  return std::string(1, static_cast<char>('a' + r));
}

// Any small single-key history: random intervals, kinds, outputs and outcomes.
H RandomSmallHistory(SplitMix64& rng, uint64_t unknown_pct) {
  H h;
  const uint64_t n = 1 + rng.Uniform(10);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t invoke = rng.Uniform(40);
    const uint64_t complete = invoke + rng.Uniform(20);
    Operation op;
    switch (rng.Uniform(4)) {
      case 0:
        op = Operation::Put(i, "x", RandomValue(rng).value_or("a"), invoke, complete);
        break;
      case 1:
        op = Operation::Get(i, "x", RandomValue(rng), invoke, complete);
        break;
      case 2:
        op = Operation::Delete(i, "x", invoke, complete);
        break;
      default:
        op = Operation::Cas(i, "x", RandomValue(rng), RandomValue(rng).value_or("b"),
                            rng.Uniform(2) == 0, invoke, complete);
        break;
    }
    const uint64_t fate = rng.Uniform(100);
    if (fate < unknown_pct) op = op.Unknown();
    if (fate >= 92) op = op.Failed();
    h.push_back(std::move(op));
  }
  return h;
}

// A small correct history, with one output changed half of the time.
H MutatedSmallHistory(uint64_t seed, SplitMix64& rng) {
  GenConfig c;
  c.clients = 1 + rng.Uniform(4);
  c.keys = 1;
  c.ops = 1 + rng.Uniform(16);
  c.value_pool = 3;
  c.unknown_applied_pct = 15;
  c.unknown_not_applied_pct = 15;
  c.unknown_delay_max_ns = 150;
  H h = GenerateLinearizable(seed, c);
  if (rng.Uniform(2) == 0) {
    Operation& op = h[rng.Uniform(h.size())];
    if (op.kind == OpKind::kGet) op.read = RandomValue(rng);
    if (op.kind == OpKind::kCas) op.cas_succeeded = !op.cas_succeeded;
  }
  return h;
}

TEST(Oracle, CheckerAgreesWithBruteForceOnSmallHistories) {
  uint64_t ok = 0, violations = 0, mismatches = 0;
  for (uint64_t seed : Seeds(20000)) {
    SplitMix64 rng(seed * 0x9e3779b97f4a7c15ULL);
    H h;
    switch (seed % 3) {
      case 0:
        h = RandomSmallHistory(rng, 22);
        break;
      case 1:
        h = RandomSmallHistory(rng, 60);  // mostly unknown: stresses rules R1-R3 and the memo
        break;
      default:
        h = MutatedSmallHistory(seed, rng);
        break;
    }
    const bool expected = BruteForce(h).Linearizable();
    (expected ? ok : violations) += 1;
    for (bool prune : {true, false}) {
      CheckOptions o;
      o.prune_unobserved_unknown_writes = prune;
      const CheckResult r = Check(h, o);
      if (r.verdict == (expected ? Verdict::kOk : Verdict::kViolation)) continue;
      if (++mismatches > 3) continue;  // report the first few in full
      std::string listing;
      for (size_t i = 0; i < h.size(); ++i) {
        absl::StrAppend(&listing, "  op #", i, " ", DescribeOperation(h[i]), "\n");
      }
      ADD_FAILURE() << SeedTrace(seed) << " prune=" << prune << ": brute force says "
                    << (expected ? "linearizable" : "not linearizable") << "\n"
                    << listing << Explain(r);
    }
  }
  EXPECT_EQ(mismatches, 0u);
  if (ok + violations > 1) {
    EXPECT_GT(ok, 4000u);
    EXPECT_GT(violations, 4000u);
  }
  std::printf("oracle: %llu linearizable, %llu not, %llu mismatches\n",
              static_cast<unsigned long long>(ok), static_cast<unsigned long long>(violations),
              static_cast<unsigned long long>(mismatches));
}

// ---------------------------------------------------------------------------------------------
// The search bound.

// Sixteen unknown puts, all concurrent; reads then observe them one by one, and finally read
// back the first value, which was overwritten long ago: a violation that takes some search.
H ManyConcurrentUnknownWrites() {
  constexpr int kWriters = 16;
  H h;
  for (int i = 0; i < kWriters; ++i) {
    h.push_back(Operation::Put(i, "x", absl::StrCat("v", i), 0, 0).Unknown());
  }
  uint64_t t = 100;
  for (int i = 0; i < kWriters; ++i, t += 20) {
    h.push_back(Operation::Get(100, "x", absl::StrCat("v", i * 7 % kWriters), t, t + 10));
  }
  h.push_back(Operation::Get(100, "x", "v0", t, t + 10));
  return h;
}

TEST(Budget, ExceededStepBudgetIsUnknownNeverOk) {
  const H h = ManyConcurrentUnknownWrites();
  CheckOptions tiny;
  tiny.max_steps_per_key = 20;
  CheckResult r = Check(h, tiny);
  EXPECT_EQ(r.verdict, Verdict::kUnknown) << Explain(r);
  EXPECT_EQ(r.unknown_keys, (std::vector<std::string>{"x"}));
  EXPECT_EQ(r.stats.max_search_steps_key, 20u);
  EXPECT_TRUE(absl::StrContains(r.Summary(), "linearizability: unknown unknown_keys=1"))
      << r.Summary();

  // The same history is a violation when the search may finish.
  r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kViolation) << Explain(r);
  EXPECT_GT(r.stats.search_steps, 20u);

  // A history that is fine is still unknown, not ok, under a tiny budget.
  H fine = h;
  fine.pop_back();
  EXPECT_EQ(Check(fine, tiny).verdict, Verdict::kUnknown);
  EXPECT_EQ(Check(fine).verdict, Verdict::kOk);
}

TEST(Budget, ExceededMemoryBudgetIsUnknown) {
  CheckOptions tiny;
  tiny.max_memo_bytes_per_key = 1;
  CheckResult r = Check(ManyConcurrentUnknownWrites(), tiny);
  EXPECT_EQ(r.verdict, Verdict::kUnknown) << Explain(r);
}

TEST(Budget, AViolationOnAnotherKeyStillWinsOverUnknown) {
  H h = ManyConcurrentUnknownWrites();
  h.push_back(Operation::Get(1, "y", "ghost", 0, 10));
  CheckOptions tiny;
  tiny.max_steps_per_key = 20;
  CheckResult r = Check(h, tiny);
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.unknown_keys, (std::vector<std::string>{"x"}));
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].key, "y");
}

// ---------------------------------------------------------------------------------------------
// Scale and determinism.

TEST(Scale, TenThousandOperationsOverTwentyKeysCheckWithinTheDefaultBudget) {
  GenConfig c;
  c.clients = 5;
  c.keys = 20;
  c.ops = 10'000;
  const uint64_t seed = Seeds(1).front();
  SCOPED_TRACE(SeedTrace(seed));
  const H h = GenerateLinearizable(seed, c);
  const CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kOk) << Explain(r);
  EXPECT_EQ(r.stats.keys, 20u);
  EXPECT_EQ(r.stats.operations_total, 10'000u);
  std::printf("%s pruned=%llu memo_entries=%llu\n", r.Summary().c_str(),
              static_cast<unsigned long long>(r.stats.pruned_unknown_writes),
              static_cast<unsigned long long>(r.stats.memo_entries));

  // A stale read planted in the same history is found, also within the default budget.
  const auto stale = StaleRead(h, seed);
  ASSERT_TRUE(stale.has_value());
  H bad = h;
  bad[stale->first].read = stale->second;
  const CheckResult b = Check(bad);
  ASSERT_EQ(b.verdict, Verdict::kViolation) << Explain(b);
  ASSERT_EQ(b.violations.size(), 1u);
  EXPECT_EQ(b.violations[0].starved_read, std::optional<size_t>(stale->first)) << Explain(b);
  std::printf("%s\n%s", b.Summary().c_str(), b.violations[0].explanation.c_str());
}

TEST(Scale, SameHistorySameResult) {
  GenConfig c;
  c.ops = 2000;
  H h = GenerateLinearizable(7, c);
  const auto stale = StaleRead(h, 7);
  ASSERT_TRUE(stale.has_value());
  h[stale->first].read = stale->second;
  const CheckResult a = Check(h);
  const CheckResult b = Check(h);
  ASSERT_EQ(a.verdict, Verdict::kViolation);
  EXPECT_EQ(a.Summary(), b.Summary());
  ASSERT_EQ(b.violations.size(), 1u);
  EXPECT_EQ(a.violations[0].explanation, b.violations[0].explanation);
  EXPECT_EQ(a.stats.memo_entries, b.stats.memo_entries);
}

}  // namespace
}  // namespace amaters::sim::checker
