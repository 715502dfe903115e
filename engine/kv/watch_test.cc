#include "engine/kv/watch.h"

#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/rand.h"
#include "engine/kv/memory_state_machine.h"
#include "gtest/gtest.h"

namespace amaters::kv {
namespace {

class WatchTest : public ::testing::Test {
 protected:
  void Put(const std::string& k, const std::string& v) {
    Command c;
    c.op = PutRequest{k, v, false};
    Apply(c);
  }
  void Del(const std::string& k, const std::string& end = "") {
    Command c;
    c.op = DeleteRangeRequest{k, end, false};
    Apply(c);
  }
  void Compact(int64_t rev) {
    Command c;
    c.op = CompactRequest{rev, false};
    Apply(c);
  }
  void Apply(const Command& c) {
    absl::StatusOr<std::vector<ApplyResult>> r =
        sm_.Apply({ApplyItem::Of(sm_.applied_index() + 1, c)});
    ASSERT_TRUE(r.ok()) << r.status();
    hub_.OnApplied();
  }
  // Everything output so far, after catching up.
  std::vector<WatchResponse> Drain() {
    while (hub_.Sync()) {
    }
    return hub_.TakeOutput();
  }

  MemoryStateMachine sm_;
  WatchLimits limits_;
  WatchHub hub_{sm_, limits_};
};

std::vector<std::string> Keys(const WatchResponse& r) {
  std::vector<std::string> out;
  for (const WatchEvent& e : r.events) {
    out.push_back(absl::StrCat(IsTombstone(e.kv) ? "-" : "+", e.kv.key, "@", e.kv.mod_revision));
  }
  return out;
}

TEST_F(WatchTest, LiveEventsOfAPrefixWithPrevKvAndFilters) {
  WatchCreate c;
  c.key = "a";
  c.range_end = PrefixEnd("a");
  c.prev_kv = true;
  hub_.Create(1, c);
  WatchCreate puts_only = c;
  puts_only.no_delete = true;
  puts_only.prev_kv = false;
  hub_.Create(1, puts_only);
  std::vector<WatchResponse> out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].created);
  EXPECT_EQ(out[0].watch_id, 0);
  EXPECT_EQ(out[1].watch_id, 1);

  Put("a1", "x");  // rev 2
  Put("b", "y");   // rev 3: outside
  Put("a1", "z");  // rev 4
  Del("a1");       // rev 5
  out = Drain();
  std::vector<std::string> all, puts;
  for (const WatchResponse& r : out) {
    for (const std::string& k : Keys(r)) (r.watch_id == 0 ? all : puts).push_back(k);
  }
  EXPECT_EQ(all, (std::vector<std::string>{"+a1@2", "+a1@4", "-a1@5"}));
  EXPECT_EQ(puts, (std::vector<std::string>{"+a1@2", "+a1@4"}));
  // prev_kv: the version before each event.
  ASSERT_EQ(out[2].watch_id, 0);
  ASSERT_EQ(out[2].events.size(), 1u);
  ASSERT_TRUE(out[2].events[0].prev_kv.has_value());
  EXPECT_EQ(out[2].events[0].prev_kv->value, "x");
  EXPECT_FALSE(out[0].events[0].prev_kv.has_value()) << "created: nothing before";

  hub_.Cancel(1, 0);
  out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].canceled);
  Put("a2", "q");
  out = Drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].watch_id, 1);
}

TEST_F(WatchTest, AStartInThePastIsServedFromTheHistoryThenLive) {
  Put("k", "1");  // 2
  Put("j", "1");  // 3
  Put("k", "2");  // 4
  WatchCreate c;
  c.key = "j";
  c.range_end = "l";
  c.start_revision = 3;
  hub_.Create(7, c);
  Put("k", "3");  // 5: the watcher is not synced yet, so this comes from the history
  std::vector<std::string> seen;
  for (const WatchResponse& r : Drain()) {
    for (const std::string& k : Keys(r)) seen.push_back(k);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"+j@3", "+k@4", "+k@5"}));
  Put("k", "4");  // 6: live
  std::vector<WatchResponse> out = Drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Keys(out[0]), std::vector<std::string>{"+k@6"});
}

TEST_F(WatchTest, ACompactedStartIsCanceledWithTheCompactRevision) {
  Put("k", "1");  // 2
  Put("k", "2");  // 3
  Compact(3);
  WatchCreate c;
  c.key = "k";
  c.start_revision = 2;
  hub_.Create(1, c);
  std::vector<WatchResponse> out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].created);
  EXPECT_TRUE(out[1].canceled);
  EXPECT_EQ(out[1].compact_revision, 3);
  EXPECT_EQ(hub_.watchers(), 0u);
}

TEST_F(WatchTest, ABlockedStreamBuffersNothingAndCatchesUpInChunks) {
  WatchLimits small;
  small.max_events_per_response = 3;
  WatchHub hub(sm_, small);
  WatchCreate c;
  c.key = "k";
  c.range_end = std::string(1, '\0');
  hub.Create(1, c);
  hub.TakeOutput();
  hub.SetBlocked(1, true);
  for (int i = 0; i < 10; ++i) {
    Command put;
    put.op = PutRequest{absl::StrCat("k", i % 4), "v", false};
    ASSERT_TRUE(sm_.Apply({ApplyItem::Of(sm_.applied_index() + 1, put)}).ok());
    hub.OnApplied();
    EXPECT_FALSE(hub.Sync());
    EXPECT_TRUE(hub.TakeOutput().empty()) << "a blocked stream gets nothing";
  }
  hub.SetBlocked(1, false);
  std::vector<int64_t> revisions;
  int chunks = 0;
  bool more = true;
  while (more) {
    more = hub.Sync();
    for (const WatchResponse& r : hub.TakeOutput()) {
      ++chunks;
      EXPECT_LE(r.events.size(), 3u);
      for (const WatchEvent& e : r.events) revisions.push_back(e.kv.mod_revision);
    }
  }
  EXPECT_EQ(chunks, 4);
  std::vector<int64_t> want;
  for (int64_t r = 2; r <= 11; ++r) want.push_back(r);
  EXPECT_EQ(revisions, want) << "every event once, in order";
}

TEST_F(WatchTest, ResponsesStayWithinTheByteBoundBetweenRevisions) {
  WatchLimits limits;
  limits.max_response_bytes = 10000;
  WatchHub hub(sm_, limits);
  WatchCreate c;
  c.key = "k";
  c.range_end = "l";
  c.start_revision = 2;  // catch-up from the history
  for (int i = 0; i < 10; ++i) {
    Command put;
    put.op = PutRequest{absl::StrCat("k", i), std::string(3000, 'v'), false};
    ASSERT_TRUE(sm_.Apply({ApplyItem::Of(sm_.applied_index() + 1, put)}).ok());
  }
  hub.Create(1, c);
  hub.TakeOutput();
  std::vector<size_t> sizes;
  while (hub.Sync()) {
  }
  for (const WatchResponse& r : hub.TakeOutput()) sizes.push_back(r.events.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1})) << "3 x 3 KB fit 10 KB, 4 do not";
  // Live: one batch of ten puts goes out in responses of at most ~10 KB too.
  std::vector<ApplyItem> batch;
  for (int i = 0; i < 10; ++i) {
    Command put;
    put.op = PutRequest{absl::StrCat("k", i), std::string(3000, 'w'), false};
    batch.push_back(ApplyItem::Of(sm_.applied_index() + 1 + i, put));
  }
  ASSERT_TRUE(sm_.Apply(batch).ok());
  hub.OnApplied();
  sizes.clear();
  for (const WatchResponse& r : hub.TakeOutput()) sizes.push_back(r.events.size());
  EXPECT_EQ(sizes, (std::vector<size_t>{4, 4, 2})) << "closed at the first revision past 10 KB";
}

TEST_F(WatchTest, AnUndeliveredResponseIsSentAgainFromTheHistory) {
  WatchCreate c;
  c.key = "k";
  c.range_end = "l";
  hub_.Create(1, c);
  hub_.TakeOutput();
  Put("k1", "a");  // 2
  Put("k2", "b");  // 3
  std::vector<WatchResponse> out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 2u);
  // The driver sent the first and could not send the second.
  hub_.Undelivered(out[1]);
  Put("k3", "c");  // 4: the stream is blocked, nothing goes out
  EXPECT_FALSE(hub_.Sync());
  EXPECT_TRUE(hub_.TakeOutput().empty());
  hub_.SetBlocked(1, false);
  std::vector<std::string> again;
  for (const WatchResponse& r : Drain()) {
    for (const std::string& k : Keys(r)) again.push_back(k);
  }
  EXPECT_EQ(again, (std::vector<std::string>{"+k2@3", "+k3@4"}));
}

TEST_F(WatchTest, EventsOfOneRevisionComeInKeyOrderLiveAndFromTheHistory) {
  WatchCreate live;
  live.key = "a";
  live.range_end = "z";
  hub_.Create(1, live);
  hub_.TakeOutput();
  Command txn;
  TxnRequest t;
  t.success = {PutRequest{"c", "1", false}, PutRequest{"b", "1", false}};
  txn.op = t;
  Apply(txn);  // rev 2: puts c then b
  std::vector<WatchResponse> out = Drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Keys(out[0]), (std::vector<std::string>{"+b@2", "+c@2"}));
  WatchCreate past = live;
  past.start_revision = 2;
  hub_.Create(2, past);
  out = Drain();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(Keys(out[1]), (std::vector<std::string>{"+b@2", "+c@2"}));
}

TEST_F(WatchTest, DuplicateIdsAndEmptyKeysAsEtcd) {
  WatchCreate c;
  c.key = "k";
  c.watch_id = 5;
  hub_.Create(1, c);
  hub_.Create(1, c);
  hub_.Create(2, c);  // another stream: its own ids
  std::vector<WatchResponse> out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_FALSE(out[0].canceled);
  EXPECT_TRUE(out[1].canceled);
  EXPECT_EQ(out[1].watch_id, kProgressWatchId) << "etcd answers a refused create with -1";
  EXPECT_EQ(out[1].cancel_reason, kErrWatcherDuplicateId);
  EXPECT_FALSE(out[2].canceled);
  WatchCreate backwards;
  backwards.key = "b";
  backwards.range_end = "a";
  hub_.Create(1, backwards);
  out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].cancel_reason, kErrEmptyWatcherRange);
  WatchCreate everything;
  everything.range_end = std::string(1, '\0');  // "" .. : every key
  hub_.Create(3, everything);
  hub_.TakeOutput();
  Put("zz", "1");
  out = Drain();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].stream, 3u);
  hub_.RequestProgress(3);
  out = hub_.TakeOutput();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].watch_id, kProgressWatchId);
  EXPECT_EQ(out[0].revision, sm_.revision());
}

// The watch checker: random writes, compactions, watchers from random revisions, streams
// blocked and unblocked at random; every watcher must see exactly the events of its range
// from its start revision, in (revision, key) order, once, unless a compaction canceled it.
// AMATERS_WATCH_SEED=N replays seed N alone; AMATERS_WATCH_SEEDS=N runs seeds 1..N (30).
std::vector<uint64_t> Seeds() {
  uint64_t n = 30;
  if (const char* one = std::getenv("AMATERS_WATCH_SEED")) {
    EXPECT_TRUE(absl::SimpleAtoi(one, &n));
    return {n};
  }
  if (const char* s = std::getenv("AMATERS_WATCH_SEEDS")) {
    EXPECT_TRUE(absl::SimpleAtoi(s, &n));
  }
  std::vector<uint64_t> seeds;
  for (uint64_t i = 1; i <= n; ++i) seeds.push_back(i);
  return seeds;
}

TEST(WatchChecker, RandomHistoriesDeliverEveryEventOnceInOrder) {
  for (uint64_t seed : Seeds()) {
    SCOPED_TRACE(absl::StrCat("seed=", seed, "; replay with --test_env=AMATERS_WATCH_SEED=", seed,
                              " --test_filter='WatchChecker.*'"));
    SplitMix64 rng(seed);
    MemoryStateMachine sm;
    WatchLimits limits;
    limits.max_events_per_response = 1 + rng.Uniform(5);
    WatchHub hub(sm, limits);
    struct Expect {
      WatchCreate spec;
      std::vector<std::string> got;
      bool canceled = false;
    };
    std::map<std::pair<WatchStreamId, WatchId>, Expect> watchers;
    std::vector<KeyValue> log;  // every version ever written, in revision order
    const std::string keys = "abcd";
    // As a driver whose streams' queues fill now and then: a refused response with events
    // goes back to the hub, and so do the stream's later ones of the same round.
    bool refusing = true;
    auto take = [&]() {
      std::set<WatchStreamId> full;
      for (const WatchResponse& r : hub.TakeOutput()) {
        if (r.watch_id == kProgressWatchId) continue;
        if (!r.events.empty() && (full.count(r.stream) != 0 || (refusing && rng.Uniform(8) == 0))) {
          full.insert(r.stream);
          hub.Undelivered(r);
          continue;
        }
        Expect& e = watchers[{r.stream, r.watch_id}];
        if (r.canceled) e.canceled = true;
        for (const WatchEvent& ev : r.events) {
          e.got.push_back(absl::StrCat(ev.kv.mod_revision, IsTombstone(ev.kv) ? "-" : "+",
                                       ev.kv.key));
        }
      }
    };
    for (int step = 0; step < 200; ++step) {
      const uint64_t roll = rng.Uniform(100);
      Command c;
      if (roll < 50) {
        c.op = PutRequest{std::string(1, keys[rng.Uniform(4)]), "v", false};
      } else if (roll < 65) {
        const char a = keys[rng.Uniform(4)];
        c.op = DeleteRangeRequest{std::string(1, a), std::string(1, a + 2), false};
      } else if (roll < 70 && sm.revision() > sm.compact_revision()) {
        c.op = CompactRequest{sm.compact_revision() + 1 +
                                  static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(
                                      sm.revision() - sm.compact_revision()))),
                              false};
      } else if (roll < 80) {
        WatchCreate w;
        const char a = keys[rng.Uniform(4)];
        w.key = std::string(1, a);
        if (rng.Uniform(2)) w.range_end = std::string(1, a + 1 + rng.Uniform(3));
        w.start_revision = static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(sm.revision() + 3)));
        w.no_delete = rng.Uniform(5) == 0;
        const WatchStreamId stream = 1 + rng.Uniform(3);
        hub.Create(stream, w);
        for (const WatchResponse& r : hub.TakeOutput()) {
          if (r.created) watchers[{r.stream, r.watch_id}].spec = w;
          Expect& e = watchers[{r.stream, r.watch_id}];
          if (r.canceled) e.canceled = true;
        }
        continue;
      } else if (roll < 90) {
        hub.SetBlocked(1 + rng.Uniform(3), rng.Uniform(2) == 0);
        continue;
      } else {
        hub.Sync();
        take();
        continue;
      }
      ASSERT_TRUE(sm.Apply({ApplyItem::Of(sm.applied_index() + 1, c)}).ok());
      for (const KeyValue& v : sm.last_applied_versions()) log.push_back(v);
      hub.OnApplied();
      take();
    }
    refusing = false;
    for (WatchStreamId s = 1; s <= 3; ++s) hub.SetBlocked(s, false);
    while (hub.Sync()) take();
    take();
    for (const auto& [key, e] : watchers) {
      if (e.canceled) continue;
      const int64_t from = e.spec.start_revision > 0 ? e.spec.start_revision : 0;
      std::vector<std::string> want;
      for (const KeyValue& v : log) {
        if (v.mod_revision < from || !InRange(v.key, e.spec.key, e.spec.range_end)) continue;
        if (IsTombstone(v) && e.spec.no_delete) continue;
        want.push_back(absl::StrCat(v.mod_revision, IsTombstone(v) ? "-" : "+", v.key));
      }
      // Watchers created "now" (start 0) only see what came after their creation: compare the
      // tail.
      if (e.spec.start_revision <= 0) {
        ASSERT_LE(e.got.size(), want.size());
        want.erase(want.begin(), want.end() - static_cast<std::ptrdiff_t>(e.got.size()));
      }
      EXPECT_EQ(e.got, want) << "watcher " << key.first << "/" << key.second << " on "
                             << e.spec.key << ".." << e.spec.range_end << " from "
                             << e.spec.start_revision;
    }
  }
}

}  // namespace
}  // namespace amaters::kv
