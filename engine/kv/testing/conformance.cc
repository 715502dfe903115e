#include "engine/kv/testing/conformance.h"

#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/base/crc32c.h"
#include "engine/base/rand.h"
#include "engine/kv/command.h"
#include "engine/kv/snapshot_file.h"

namespace amaters::kv {

void PrintTo(const KeyValue& kv, std::ostream* os) { *os << Describe(kv); }
void PrintTo(const RangeResponse& r, std::ostream* os) { *os << Describe(r); }
void PrintTo(const ApplyResult& r, std::ostream* os) { *os << Describe(r); }

namespace testing {

void PrintTo(const StateMachineFactory& f, std::ostream* os) { *os << f.name; }

std::string FactoryName(const ::testing::TestParamInfo<StateMachineFactory>& info) {
  return info.param.name;
}

namespace {

using Result = Compare::Result;
using Target = Compare::Target;

const std::string kFromKey(1, '\0');  // range_end: every key >= key

// ---------------------------------------------------------------------------------------------
// Builders

Command PutCmd(std::string key, std::string value, bool prev_kv = false) {
  Command c;
  c.op = PutRequest{std::move(key), std::move(value), prev_kv};
  return c;
}

Command DelCmd(std::string key, std::string range_end = "", bool prev_kv = false) {
  Command c;
  c.op = DeleteRangeRequest{std::move(key), std::move(range_end), prev_kv};
  return c;
}

Command TxnCmd(std::vector<Compare> compare, std::vector<RequestOp> success,
               std::vector<RequestOp> failure = {}) {
  Command c;
  c.op = TxnRequest{std::move(compare), std::move(success), std::move(failure)};
  return c;
}

Compare Cmp(Target target, Result result, std::string key, int64_t number,
            std::string range_end = "") {
  Compare c;
  c.target = target;
  c.result = result;
  c.key = std::move(key);
  c.range_end = std::move(range_end);
  c.number = number;
  return c;
}

Compare CmpValue(Result result, std::string key, std::string value, std::string range_end = "") {
  Compare c;
  c.target = Target::kValue;
  c.result = result;
  c.key = std::move(key);
  c.range_end = std::move(range_end);
  c.value = std::move(value);
  return c;
}

RangeRequest Rng(std::string key, std::string range_end = "") {
  RangeRequest r;
  r.key = std::move(key);
  r.range_end = std::move(range_end);
  return r;
}

RequestOp OpPut(std::string key, std::string value, bool prev_kv = false) {
  return PutRequest{std::move(key), std::move(value), prev_kv};
}

RequestOp OpDel(std::string key, std::string range_end = "", bool prev_kv = false) {
  return DeleteRangeRequest{std::move(key), std::move(range_end), prev_kv};
}

RequestOp OpRange(std::string key, std::string range_end = "") {
  return Rng(std::move(key), std::move(range_end));
}

KeyValue KV(std::string key, std::string value, int64_t create, int64_t mod, int64_t version) {
  return KeyValue{std::move(key), std::move(value), create, mod, version};
}

// Typed views of a result; a mismatch is a test failure and yields an empty response.
template <typename T>
T As(const ApplyResult& r) {
  if (!r.status.ok()) {
    ADD_FAILURE() << "item was rejected: " << Describe(r);
    return T{};
  }
  if (!r.response.has_value() || !std::holds_alternative<T>(*r.response)) {
    ADD_FAILURE() << "unexpected response: " << Describe(r);
    return T{};
  }
  return std::get<T>(*r.response);
}

template <typename T>
T AsOp(const TxnResponse& t, size_t i) {
  if (i >= t.responses.size() || !std::holds_alternative<T>(t.responses[i])) {
    ADD_FAILURE() << "txn response " << i << " missing or of another type: " << Describe(t);
    return T{};
  }
  return std::get<T>(t.responses[i]);
}

}  // namespace

// -------------------------------------------------------------------------------------------
// Fixture

void StateMachineConformanceTest::SetUp() {
  absl::StatusOr<std::unique_ptr<StoreUnderTest>> store = GetParam().open();
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
}

std::vector<ApplyResult> StateMachineConformanceTest::ApplyBatch(
    const std::vector<ApplyItem>& items) {
  absl::StatusOr<std::vector<ApplyResult>> r = sm().Apply(items);
  if (!r.ok()) {
    ADD_FAILURE() << "Apply failed: " << r.status();
    return {};
  }
  EXPECT_EQ(r->size(), items.size());
  return *std::move(r);
}

ApplyResult StateMachineConformanceTest::ApplyOne(Command c) {
  std::vector<ApplyResult> r = ApplyBatch({ApplyItem::Of(sm().applied_index() + 1, std::move(c))});
  if (r.size() != 1) return ApplyResult{};
  return r[0];
}

RangeResponse StateMachineConformanceTest::RangeOf(const RangeRequest& req) {
  absl::StatusOr<RangeResponse> r = sm().Range(req);
  if (!r.ok()) {
    ADD_FAILURE() << "Range(" << Describe(req) << ") failed: " << r.status();
    return RangeResponse{};
  }
  return *std::move(r);
}

std::vector<KeyValue> StateMachineConformanceTest::All() {
  return RangeOf(Rng(kFromKey, kFromKey)).kvs;
}

std::optional<KeyValue> StateMachineConformanceTest::Get(const std::string& key) {
  RangeResponse r = RangeOf(Rng(key));
  if (r.kvs.empty()) return std::nullopt;
  return r.kvs[0];
}

namespace {

// ---------------------------------------------------------------------------------------------
// Reads

TEST_P(StateMachineConformanceTest, NewStoreIsEmptyAtRevisionOne) {
  EXPECT_EQ(sm().applied_index(), 0u);
  EXPECT_EQ(sm().revision(), 1);
  RangeResponse r = RangeOf(Rng(kFromKey, kFromKey));
  EXPECT_EQ(r.header.revision, 1);
  EXPECT_EQ(r.count, 0);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_FALSE(r.more);
}

TEST_P(StateMachineConformanceTest, PutThenGet) {
  ApplyResult r = ApplyOne(PutCmd("a", "1"));
  EXPECT_EQ(r.index, 1u);
  PutResponse put = As<PutResponse>(r);
  EXPECT_EQ(put.header.revision, 2);
  EXPECT_FALSE(put.prev_kv.has_value());
  EXPECT_EQ(sm().applied_index(), 1u);
  EXPECT_EQ(sm().revision(), 2);

  RangeResponse got = RangeOf(Rng("a"));
  EXPECT_EQ(got.header.revision, 2);
  EXPECT_EQ(got.count, 1);
  EXPECT_FALSE(got.more);
  EXPECT_EQ(got.kvs, std::vector<KeyValue>{KV("a", "1", 2, 2, 1)});

  RangeResponse missing = RangeOf(Rng("b"));
  EXPECT_EQ(missing.count, 0);
  EXPECT_TRUE(missing.kvs.empty());
}

TEST_P(StateMachineConformanceTest, RangeSemanticsAndBinaryKeys) {
  // Binary keys order as unsigned bytes: "a" < "a\0" < "ab" < ... < "\xff".
  const std::vector<std::string> keys = {"a", std::string("a\0", 2), "ab", "abc", "b",
                                         "b/1", "c", "\xff", "\xff\xff"};
  for (const std::string& k : keys) ApplyOne(PutCmd(k, "v" + k));
  auto keys_of = [](const RangeResponse& r) {
    std::vector<std::string> out;
    for (const KeyValue& kv : r.kvs) out.push_back(kv.key);
    return out;
  };
  // Every key: "\0" as key and as range_end.
  EXPECT_EQ(keys_of(RangeOf(Rng(kFromKey, kFromKey))), keys);
  // [a, b)
  EXPECT_EQ(keys_of(RangeOf(Rng("a", "b"))),
            (std::vector<std::string>{"a", std::string("a\0", 2), "ab", "abc"}));
  // Prefix "ab" and "b".
  EXPECT_EQ(keys_of(RangeOf(Rng("ab", PrefixEnd("ab")))),
            (std::vector<std::string>{"ab", "abc"}));
  EXPECT_EQ(keys_of(RangeOf(Rng("b", PrefixEnd("b")))), (std::vector<std::string>{"b", "b/1"}));
  // Prefix of 0xff bytes: PrefixEnd is "\0", i.e. every key >= prefix.
  EXPECT_EQ(PrefixEnd("\xff"), kFromKey);
  EXPECT_EQ(keys_of(RangeOf(Rng("\xff", PrefixEnd("\xff")))),
            (std::vector<std::string>{"\xff", "\xff\xff"}));
  // From-key.
  EXPECT_EQ(keys_of(RangeOf(Rng("c", kFromKey))),
            (std::vector<std::string>{"c", "\xff", "\xff\xff"}));
  // range_end <= key is empty, not reversed.
  EXPECT_TRUE(RangeOf(Rng("c", "a")).kvs.empty());
  EXPECT_TRUE(RangeOf(Rng("c", "c")).kvs.empty());
  EXPECT_EQ(RangeOf(Rng("c", "a")).count, 0);
  // Single key with an embedded NUL.
  EXPECT_EQ(RangeOf(Rng(std::string("a\0", 2))).kvs,
            std::vector<KeyValue>{KV(std::string("a\0", 2), std::string("va\0", 3), 3, 3, 1)});
}

TEST_P(StateMachineConformanceTest, LimitMoreAndCount) {
  for (const char* k : {"k1", "k2", "k3", "k4", "k5"}) ApplyOne(PutCmd(k, "v"));
  RangeRequest req = Rng("k", PrefixEnd("k"));
  req.limit = 2;
  RangeResponse r = RangeOf(req);
  EXPECT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].key, "k1");
  EXPECT_EQ(r.kvs[1].key, "k2");
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, 5);

  req.limit = 5;
  r = RangeOf(req);
  EXPECT_EQ(r.kvs.size(), 5u);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.count, 5);

  req.limit = 50;
  EXPECT_FALSE(RangeOf(req).more);

  req.limit = -1;  // etcd: a negative limit is no limit
  r = RangeOf(req);
  EXPECT_EQ(r.kvs.size(), 5u);
  EXPECT_FALSE(r.more);

  req.limit = 0;
  EXPECT_EQ(RangeOf(req).kvs.size(), 5u);
}

TEST_P(StateMachineConformanceTest, KeysOnlyAndCountOnly) {
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("a", "2"));
  ApplyOne(PutCmd("b", "3"));
  RangeRequest req = Rng("a", kFromKey);
  req.keys_only = true;
  RangeResponse r = RangeOf(req);
  EXPECT_EQ(r.kvs, (std::vector<KeyValue>{KV("a", "", 2, 3, 2), KV("b", "", 4, 4, 1)}));
  EXPECT_EQ(r.count, 2);

  req.keys_only = false;
  req.count_only = true;
  req.limit = 1;
  r = RangeOf(req);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 2);
  EXPECT_FALSE(r.more) << "etcd reports more=false for count_only";
  EXPECT_EQ(r.header.revision, 4);
}

TEST_P(StateMachineConformanceTest, RangeRejectsEmptyKey) {
  absl::StatusOr<RangeResponse> r = sm().Range(Rng("", kFromKey));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Writes and revisions

TEST_P(StateMachineConformanceTest, RevisionArithmeticCreateUpdateDeleteRecreate) {
  ApplyOne(PutCmd("other", "o"));  // rev 2
  // create -> rev 3
  EXPECT_EQ(As<PutResponse>(ApplyOne(PutCmd("k", "v1"))).header.revision, 3);
  EXPECT_EQ(Get("k"), KV("k", "v1", 3, 3, 1));
  // update -> rev 4, version 2, create kept
  PutResponse upd = As<PutResponse>(ApplyOne(PutCmd("k", "v2", /*prev_kv=*/true)));
  EXPECT_EQ(upd.header.revision, 4);
  EXPECT_EQ(upd.prev_kv, KV("k", "v1", 3, 3, 1));
  EXPECT_EQ(Get("k"), KV("k", "v2", 3, 4, 2));
  // the same value still bumps revision and version
  EXPECT_EQ(As<PutResponse>(ApplyOne(PutCmd("k", "v2"))).header.revision, 5);
  EXPECT_EQ(Get("k"), KV("k", "v2", 3, 5, 3));
  EXPECT_EQ(sm().revision(), 5);
  // delete -> rev 6, gone
  DeleteRangeResponse del = As<DeleteRangeResponse>(ApplyOne(DelCmd("k")));
  EXPECT_EQ(del.header.revision, 6);
  EXPECT_EQ(del.deleted, 1);
  EXPECT_TRUE(del.prev_kvs.empty()) << "prev_kv not requested";
  EXPECT_EQ(Get("k"), std::nullopt);
  EXPECT_EQ(sm().revision(), 6);
  // re-create -> rev 7, create revision and version start over
  PutResponse again = As<PutResponse>(ApplyOne(PutCmd("k", "v3", /*prev_kv=*/true)));
  EXPECT_EQ(again.header.revision, 7);
  EXPECT_FALSE(again.prev_kv.has_value());
  EXPECT_EQ(Get("k"), KV("k", "v3", 7, 7, 1));
  // the other key was never touched
  EXPECT_EQ(Get("other"), KV("other", "o", 2, 2, 1));
  EXPECT_EQ(sm().applied_index(), 6u);
}

TEST_P(StateMachineConformanceTest, DeleteRangeWithPrevKv) {
  ApplyOne(PutCmd("a", "1"));   // 2
  ApplyOne(PutCmd("b", "2"));   // 3
  ApplyOne(PutCmd("b", "2b"));  // 4
  ApplyOne(PutCmd("c", "3"));   // 5
  ApplyOne(PutCmd("d", "4"));   // 6
  DeleteRangeResponse del = As<DeleteRangeResponse>(ApplyOne(DelCmd("b", "d", true)));
  EXPECT_EQ(del.header.revision, 7);
  EXPECT_EQ(del.deleted, 2);
  EXPECT_EQ(del.prev_kvs, (std::vector<KeyValue>{KV("b", "2b", 3, 4, 2), KV("c", "3", 5, 5, 1)}));
  EXPECT_EQ(All(), (std::vector<KeyValue>{KV("a", "1", 2, 2, 1), KV("d", "4", 6, 6, 1)}));

  // From-key delete of everything >= "a".
  del = As<DeleteRangeResponse>(ApplyOne(DelCmd("a", kFromKey, true)));
  EXPECT_EQ(del.header.revision, 8);
  EXPECT_EQ(del.deleted, 2);
  EXPECT_EQ(del.prev_kvs.size(), 2u);
  EXPECT_TRUE(All().empty());
}

TEST_P(StateMachineConformanceTest, DeleteOfNothingDoesNotBumpRevision) {
  ApplyOne(PutCmd("a", "1"));  // rev 2
  DeleteRangeResponse del = As<DeleteRangeResponse>(ApplyOne(DelCmd("zz", "", true)));
  EXPECT_EQ(del.deleted, 0);
  EXPECT_EQ(del.header.revision, 2);
  EXPECT_TRUE(del.prev_kvs.empty());
  del = As<DeleteRangeResponse>(ApplyOne(DelCmd("b", "z")));
  EXPECT_EQ(del.deleted, 0);
  EXPECT_EQ(sm().revision(), 2);
  EXPECT_EQ(sm().applied_index(), 3u) << "the index still counts as applied";
  // The next write gets revision 3.
  EXPECT_EQ(As<PutResponse>(ApplyOne(PutCmd("b", "1"))).header.revision, 3);
}

TEST_P(StateMachineConformanceTest, BatchItemsSeeEarlierItemsAndEachBumpsOnce) {
  uint64_t i = sm().applied_index();
  std::vector<ApplyResult> r = ApplyBatch({
      ApplyItem::Of(i + 1, PutCmd("a", "1")),
      ApplyItem::Of(i + 2, PutCmd("a", "2", true)),
      ApplyItem::Of(i + 3, DelCmd("a", "", true)),
      ApplyItem::Of(i + 4, PutCmd("a", "3", true)),
      ApplyItem::Of(i + 5, DelCmd("nothing")),
  });
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(As<PutResponse>(r[0]).header.revision, 2);
  EXPECT_EQ(As<PutResponse>(r[1]).prev_kv, KV("a", "1", 2, 2, 1));
  EXPECT_EQ(As<DeleteRangeResponse>(r[2]).prev_kvs, std::vector<KeyValue>{KV("a", "2", 2, 3, 2)});
  EXPECT_EQ(As<DeleteRangeResponse>(r[2]).header.revision, 4);
  EXPECT_FALSE(As<PutResponse>(r[3]).prev_kv.has_value());
  EXPECT_EQ(As<DeleteRangeResponse>(r[4]).header.revision, 5);
  EXPECT_EQ(Get("a"), KV("a", "3", 5, 5, 1));
  EXPECT_EQ(sm().revision(), 5);
  EXPECT_EQ(sm().applied_index(), i + 5);
  for (size_t k = 0; k < r.size(); ++k) EXPECT_EQ(r[k].index, i + 1 + k);
}

TEST_P(StateMachineConformanceTest, RequestIdIsCopiedToTheResult) {
  Command c = PutCmd("a", "1");
  c.request_id = 0xfeedface12345678ULL;
  EXPECT_EQ(ApplyOne(c).request_id, 0xfeedface12345678ULL);
  Command bad = PutCmd("", "1");
  bad.request_id = 7;
  ApplyResult r = ApplyOne(bad);
  EXPECT_EQ(r.request_id, 7u) << "a rejected command still reports its id";
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Transactions

// k: create 2, mod 3, version 2, value "m".
class TxnTable {
 public:
  struct Case {
    Compare compare;
    bool holds;
  };
  static std::vector<Case> Cases() {
    std::vector<Case> cases;
    struct Attr {
      Target target;
      int64_t actual;
    };
    for (Attr a : {Attr{Target::kVersion, 2}, Attr{Target::kCreate, 2}, Attr{Target::kMod, 3}}) {
      for (int64_t delta : {-1, 0, 1}) {
        int64_t operand = a.actual + delta;  // stored - operand has the sign of -delta
        cases.push_back({Cmp(a.target, Result::kEqual, "k", operand), delta == 0});
        cases.push_back({Cmp(a.target, Result::kNotEqual, "k", operand), delta != 0});
        cases.push_back({Cmp(a.target, Result::kGreater, "k", operand), delta < 0});
        cases.push_back({Cmp(a.target, Result::kLess, "k", operand), delta > 0});
      }
    }
    for (const char* operand : {"l", "m", "n", "", "mm"}) {
      int c = std::string("m").compare(operand);
      cases.push_back({CmpValue(Result::kEqual, "k", operand), c == 0});
      cases.push_back({CmpValue(Result::kNotEqual, "k", operand), c != 0});
      cases.push_back({CmpValue(Result::kGreater, "k", operand), c > 0});
      cases.push_back({CmpValue(Result::kLess, "k", operand), c < 0});
    }
    // Bytes compare unsigned: "m" < "\x80".
    cases.push_back({CmpValue(Result::kLess, "k", "\x80"), true});
    return cases;
  }
};

TEST_P(StateMachineConformanceTest, TxnCompareEveryTargetAndResult) {
  ApplyOne(PutCmd("k", "x"));  // rev 2
  ApplyOne(PutCmd("k", "m"));  // rev 3
  ASSERT_EQ(Get("k"), KV("k", "m", 2, 3, 2));
  for (const TxnTable::Case& c : TxnTable::Cases()) {
    SCOPED_TRACE(Describe(c.compare));
    TxnResponse t = As<TxnResponse>(ApplyOne(TxnCmd({c.compare}, {OpRange("k")}, {})));
    EXPECT_EQ(t.succeeded, c.holds);
    EXPECT_EQ(t.responses.size(), c.holds ? 1u : 0u);
    EXPECT_EQ(t.header.revision, 3) << "a txn without writes does not bump the revision";
  }
  EXPECT_EQ(sm().revision(), 3);
}

TEST_P(StateMachineConformanceTest, TxnCompareAndSwapBranches) {
  ApplyOne(PutCmd("lock", "free"));  // rev 2
  // Success: value == "free" -> put "held".
  TxnResponse t = As<TxnResponse>(
      ApplyOne(TxnCmd({CmpValue(Result::kEqual, "lock", "free")}, {OpPut("lock", "held", true)},
                      {OpRange("lock")})));
  EXPECT_TRUE(t.succeeded);
  EXPECT_EQ(t.header.revision, 3);
  ASSERT_EQ(t.responses.size(), 1u);
  PutResponse put = AsOp<PutResponse>(t, 0);
  EXPECT_EQ(put.header.revision, 3);
  EXPECT_EQ(put.prev_kv, KV("lock", "free", 2, 2, 1));
  EXPECT_EQ(Get("lock"), KV("lock", "held", 2, 3, 2));

  // Failure: the same CAS again sees "held" and runs the failure branch (a read).
  t = As<TxnResponse>(ApplyOne(TxnCmd({CmpValue(Result::kEqual, "lock", "free")},
                                      {OpPut("lock", "held")}, {OpRange("lock")})));
  EXPECT_FALSE(t.succeeded);
  EXPECT_EQ(t.header.revision, 3);
  RangeResponse rr = AsOp<RangeResponse>(t, 0);
  EXPECT_EQ(rr.kvs, std::vector<KeyValue>{KV("lock", "held", 2, 3, 2)});
  EXPECT_EQ(rr.header.revision, 3);
  EXPECT_EQ(sm().revision(), 3);

  // CAS on mod revision (optimistic concurrency) and on version, failure branch writes.
  t = As<TxnResponse>(ApplyOne(TxnCmd({Cmp(Target::kMod, Result::kEqual, "lock", 2)},
                                      {OpPut("lock", "stale")}, {OpPut("conflicts", "1")})));
  EXPECT_FALSE(t.succeeded);
  EXPECT_EQ(t.header.revision, 4) << "the failure branch wrote";
  EXPECT_EQ(Get("conflicts"), KV("conflicts", "1", 4, 4, 1));
  EXPECT_EQ(Get("lock")->value, "held");

  t = As<TxnResponse>(
      ApplyOne(TxnCmd({Cmp(Target::kVersion, Result::kEqual, "lock", 2),
                       Cmp(Target::kCreate, Result::kEqual, "lock", 2)},
                      {OpDel("lock", "", true)}, {})));
  EXPECT_TRUE(t.succeeded);
  EXPECT_EQ(t.header.revision, 5);
  EXPECT_EQ(AsOp<DeleteRangeResponse>(t, 0).prev_kvs,
            std::vector<KeyValue>{KV("lock", "held", 2, 3, 2)});
  EXPECT_EQ(Get("lock"), std::nullopt);
}

TEST_P(StateMachineConformanceTest, TxnCompareOnMissingKeyUsesZeros) {
  ApplyOne(PutCmd("present", "p"));
  struct Case {
    Compare compare;
    bool holds;
  };
  const std::vector<Case> cases = {
      {Cmp(Target::kVersion, Result::kEqual, "missing", 0), true},
      {Cmp(Target::kCreate, Result::kEqual, "missing", 0), true},
      {Cmp(Target::kMod, Result::kEqual, "missing", 0), true},
      {Cmp(Target::kMod, Result::kLess, "missing", 1), true},
      {Cmp(Target::kVersion, Result::kGreater, "missing", 0), false},
      {Cmp(Target::kVersion, Result::kNotEqual, "missing", 0), false},
      // A value compare on a missing key is always false, even "== empty".
      {CmpValue(Result::kEqual, "missing", ""), false},
      {CmpValue(Result::kNotEqual, "missing", "x"), false},
      {CmpValue(Result::kLess, "missing", "x"), false},
      {CmpValue(Result::kGreater, "missing", ""), false},
      // An empty range behaves the same way.
      {Cmp(Target::kVersion, Result::kEqual, "q", 0, "r"), true},
      {CmpValue(Result::kEqual, "q", "", "r"), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(Describe(c.compare));
    EXPECT_EQ(As<TxnResponse>(ApplyOne(TxnCmd({c.compare}, {}, {}))).succeeded, c.holds);
  }
  // "Create if absent": the idiom etcd clients use.
  TxnResponse t = As<TxnResponse>(ApplyOne(
      TxnCmd({Cmp(Target::kCreate, Result::kEqual, "new", 0)}, {OpPut("new", "1")}, {})));
  EXPECT_TRUE(t.succeeded);
  t = As<TxnResponse>(ApplyOne(
      TxnCmd({Cmp(Target::kCreate, Result::kEqual, "new", 0)}, {OpPut("new", "2")}, {})));
  EXPECT_FALSE(t.succeeded);
  EXPECT_EQ(Get("new")->value, "1");
}

TEST_P(StateMachineConformanceTest, TxnRangeComparesMustHoldForEveryKey) {
  ApplyOne(PutCmd("p/a", "1"));  // rev 2
  ApplyOne(PutCmd("p/b", "1"));  // rev 3
  ApplyOne(PutCmd("p/b", "2"));  // rev 4: p/b version 2
  ApplyOne(PutCmd("q", "9"));    // outside the prefix
  const std::string end = PrefixEnd("p/");
  auto holds = [&](Compare c) {
    return As<TxnResponse>(ApplyOne(TxnCmd({std::move(c)}, {}, {}))).succeeded;
  };
  EXPECT_TRUE(holds(Cmp(Target::kVersion, Result::kGreater, "p/", 0, end)));
  EXPECT_FALSE(holds(Cmp(Target::kVersion, Result::kEqual, "p/", 1, end)))
      << "p/b has version 2";
  EXPECT_TRUE(holds(Cmp(Target::kMod, Result::kLess, "p/", 5, end)));
  EXPECT_FALSE(holds(Cmp(Target::kMod, Result::kLess, "p/", 4, end)));
  EXPECT_TRUE(holds(CmpValue(Result::kLess, "p/", "3", end)));
  EXPECT_FALSE(holds(CmpValue(Result::kEqual, "p/", "1", end)));
  EXPECT_TRUE(holds(Cmp(Target::kCreate, Result::kGreater, "p/", 1, kFromKey)))
      << "from-key compare covers p/a, p/b and q";
  EXPECT_FALSE(holds(CmpValue(Result::kLess, "p/", "5", kFromKey))) << "q has value 9";
}

TEST_P(StateMachineConformanceTest, TxnOpsSeeEarlierWritesOfTheSameTxn) {
  ApplyOne(PutCmd("b", "old"));  // rev 2
  ApplyOne(PutCmd("c", "old"));  // rev 3
  TxnResponse t = As<TxnResponse>(ApplyOne(TxnCmd(
      {}, {OpRange("a"), OpPut("a", "1"), OpRange("a"), OpDel("b", "", true),
           OpRange("a", kFromKey), OpDel("b"), OpPut("c", "new", true), OpRange("c")})));
  ASSERT_TRUE(t.succeeded) << "no compares: the success branch runs";
  ASSERT_EQ(t.responses.size(), 8u);
  // Before any write the ops observe the old revision, afterwards the txn's new one.
  RangeResponse before = AsOp<RangeResponse>(t, 0);
  EXPECT_EQ(before.header.revision, 3);
  EXPECT_TRUE(before.kvs.empty());
  EXPECT_EQ(AsOp<PutResponse>(t, 1).header.revision, 4);
  EXPECT_EQ(AsOp<RangeResponse>(t, 2).kvs, std::vector<KeyValue>{KV("a", "1", 4, 4, 1)});
  EXPECT_EQ(AsOp<RangeResponse>(t, 2).header.revision, 4);
  EXPECT_EQ(AsOp<DeleteRangeResponse>(t, 3).prev_kvs,
            std::vector<KeyValue>{KV("b", "old", 2, 2, 1)});
  EXPECT_EQ(AsOp<RangeResponse>(t, 4).kvs,
            (std::vector<KeyValue>{KV("a", "1", 4, 4, 1), KV("c", "old", 3, 3, 1)}));
  EXPECT_EQ(AsOp<DeleteRangeResponse>(t, 5).deleted, 0) << "already deleted by this txn";
  EXPECT_EQ(AsOp<DeleteRangeResponse>(t, 5).header.revision, 4);
  EXPECT_EQ(AsOp<PutResponse>(t, 6).prev_kv, KV("c", "old", 3, 3, 1));
  EXPECT_EQ(AsOp<RangeResponse>(t, 7).kvs, std::vector<KeyValue>{KV("c", "new", 3, 4, 2)});
  // Every write of the txn shares revision 4; the store moved by exactly one.
  EXPECT_EQ(t.header.revision, 4);
  EXPECT_EQ(sm().revision(), 4);
  EXPECT_EQ(All(), (std::vector<KeyValue>{KV("a", "1", 4, 4, 1), KV("c", "new", 3, 4, 2)}));
}

TEST_P(StateMachineConformanceTest, InvalidCommandsAreRejectedButCountAsApplied) {
  ApplyOne(PutCmd("a", "1"));  // rev 2
  const std::vector<KeyValue> before = All();
  std::vector<RequestOp> too_many(kMaxTxnOps + 1, OpRange("a"));
  std::vector<Compare> too_many_compares(kMaxTxnOps + 1,
                                         Cmp(Target::kVersion, Result::kEqual, "a", 1));
  const std::vector<Command> invalid = {
      PutCmd("", "v"),
      DelCmd("", "z"),
      TxnCmd({}, too_many),
      TxnCmd({}, {}, too_many),
      TxnCmd(too_many_compares, {}),
      TxnCmd({Cmp(Target::kVersion, Result::kEqual, "", 0)}, {OpPut("x", "1")}),
      TxnCmd({}, {OpRange("")}),
      TxnCmd({}, {OpPut("", "1")}),
      TxnCmd({}, {OpDel("")}),
      // etcd's duplicate-key rule, per branch.
      TxnCmd({}, {OpPut("x", "1"), OpPut("x", "2")}),
      TxnCmd({}, {}, {OpPut("x", "1"), OpPut("x", "2")}),
      TxnCmd({}, {OpPut("x", "1"), OpDel("x")}),
      TxnCmd({}, {OpDel("w", "y"), OpPut("x", "1")}),
      TxnCmd({}, {OpDel("b", kFromKey), OpPut("x", "1")}),
  };
  for (const Command& c : invalid) {
    SCOPED_TRACE(Describe(c));
    uint64_t index = sm().applied_index() + 1;
    ApplyResult r = ApplyOne(c);
    EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
    EXPECT_FALSE(r.response.has_value());
    EXPECT_EQ(r.index, index);
    EXPECT_EQ(sm().applied_index(), index);
    EXPECT_EQ(sm().revision(), 2);
  }
  EXPECT_EQ(All(), before);

  // The limits are inclusive, and distinct or only-deleted keys are fine.
  std::vector<RequestOp> max_ops(kMaxTxnOps, OpRange("a"));
  EXPECT_TRUE(As<TxnResponse>(ApplyOne(TxnCmd({}, max_ops, max_ops))).succeeded);
  EXPECT_TRUE(As<TxnResponse>(ApplyOne(TxnCmd({}, {OpPut("x", "1"), OpPut("y", "1"),
                                                   OpDel("a"), OpDel("a", "b")})))
                  .succeeded);
  // The same key in different branches is fine too.
  EXPECT_TRUE(As<TxnResponse>(ApplyOne(TxnCmd({}, {OpPut("x", "2")}, {OpPut("x", "3")})))
                  .succeeded);
  EXPECT_EQ(Get("x"), KV("x", "2", 3, 4, 2));
}

// ---------------------------------------------------------------------------------------------
// Batches and the applied index

TEST_P(StateMachineConformanceTest, NoopItemsAdvanceTheAppliedIndexOnly) {
  ApplyOne(PutCmd("a", "1"));
  const std::vector<KeyValue> before = All();
  std::vector<ApplyResult> r = ApplyBatch({ApplyItem::Noop(2), ApplyItem::Noop(3)});
  ASSERT_EQ(r.size(), 2u);
  for (const ApplyResult& x : r) {
    EXPECT_TRUE(x.status.ok());
    EXPECT_FALSE(x.response.has_value());
    EXPECT_EQ(x.request_id, 0u);
  }
  EXPECT_EQ(r[1].index, 3u);
  EXPECT_EQ(sm().applied_index(), 3u);
  EXPECT_EQ(sm().revision(), 2);
  EXPECT_EQ(All(), before);
  // DecodeEntry maps empty entry data to a no-op.
  r = ApplyBatch({DecodeEntry(4, ""), ApplyItem::Of(5, PutCmd("b", "2"))});
  ASSERT_EQ(r.size(), 2u);
  EXPECT_FALSE(r[0].response.has_value());
  EXPECT_EQ(sm().revision(), 3);
}

TEST_P(StateMachineConformanceTest, UndecodableEntryIsRejectedDeterministically) {
  ApplyOne(PutCmd("a", "1"));
  const std::vector<KeyValue> before = All();
  // Bytes that are not a Command (a truncated varint), and a parsable Command with no op.
  ApplyItem garbage = DecodeEntry(2, std::string("\x08\xff\xff", 3));
  ApplyItem empty_op = DecodeEntry(3, std::string("\x08\x05", 2));
  ASSERT_FALSE(garbage.decode_error.ok());
  ASSERT_FALSE(empty_op.decode_error.ok());
  std::vector<ApplyResult> r =
      ApplyBatch({garbage, empty_op, ApplyItem::Of(4, PutCmd("b", "2"))});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r[1].status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(r[0].response.has_value());
  EXPECT_EQ(As<PutResponse>(r[2]).header.revision, 3) << "rejected entries did not bump";
  EXPECT_EQ(sm().applied_index(), 4u);
  EXPECT_EQ(RangeOf(Rng("a")).kvs, before);
}

TEST_P(StateMachineConformanceTest, NonContiguousBatchesChangeNothing) {
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", "2"));
  const std::vector<KeyValue> before = All();
  const uint64_t applied = sm().applied_index();
  const int64_t rev = sm().revision();
  const std::vector<std::vector<ApplyItem>> bad = {
      {ApplyItem::Of(applied + 2, PutCmd("x", "1"))},                 // gap
      {ApplyItem::Of(applied, PutCmd("x", "1"))},                     // re-apply
      {ApplyItem::Of(0, PutCmd("x", "1"))},                           // zero
      {ApplyItem::Of(applied + 1, PutCmd("x", "1")), ApplyItem::Noop(applied + 3)},  // gap inside
      {ApplyItem::Of(applied + 1, PutCmd("x", "1")), ApplyItem::Noop(applied + 1)},  // repeat
      {ApplyItem::Noop(applied + 2), ApplyItem::Of(applied + 1, PutCmd("x", "1"))},  // reorder
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("bad batch ", i));
    absl::StatusOr<std::vector<ApplyResult>> r = sm().Apply(bad[i]);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
    EXPECT_EQ(sm().applied_index(), applied);
    EXPECT_EQ(sm().revision(), rev);
    EXPECT_EQ(All(), before);
  }
  // An empty batch is fine and changes nothing.
  EXPECT_TRUE(sm().Apply({}).ok());
  EXPECT_EQ(sm().applied_index(), applied);
  // The right index still works.
  EXPECT_EQ(ApplyOne(PutCmd("x", "1")).index, applied + 1);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

TEST_P(StateMachineConformanceTest, SnapshotCreateMutateRestore) {
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", "2"));
  ApplyOne(PutCmd("b", "3"));
  ApplyBatch({ApplyItem::Noop(4)});
  const std::vector<KeyValue> at_snapshot = All();
  const uint64_t applied = sm().applied_index();
  const int64_t rev = sm().revision();
  ASSERT_TRUE(sm().CreateSnapshot("s1").ok());
  EXPECT_EQ(sm().CreateSnapshot("s1").code(), absl::StatusCode::kAlreadyExists);

  // Mutate: update, delete, create.
  ApplyOne(PutCmd("a", "changed"));
  ApplyOne(DelCmd("b"));
  ApplyOne(PutCmd("c", "new"));
  ASSERT_TRUE(sm().CreateSnapshot("s2").ok());
  const std::vector<KeyValue> at_s2 = All();
  ApplyOne(DelCmd("a", kFromKey));
  ASSERT_NE(All(), at_snapshot);

  ASSERT_TRUE(sm().RestoreSnapshot("s1").ok());
  EXPECT_EQ(All(), at_snapshot);
  EXPECT_EQ(sm().applied_index(), applied);
  EXPECT_EQ(sm().revision(), rev);
  // Applying continues right after the snapshot's index, at the snapshot's revision.
  ApplyResult r = ApplyOne(PutCmd("d", "4"));
  EXPECT_EQ(r.index, applied + 1);
  EXPECT_EQ(As<PutResponse>(r).header.revision, rev + 1);

  // The other snapshot is independent, and restoring twice works.
  ASSERT_TRUE(sm().RestoreSnapshot("s2").ok());
  EXPECT_EQ(All(), at_s2);
  ASSERT_TRUE(sm().RestoreSnapshot("s1").ok());
  EXPECT_EQ(All(), at_snapshot);

  // Deleting.
  EXPECT_TRUE(sm().DeleteSnapshot("s1").ok());
  EXPECT_EQ(sm().RestoreSnapshot("s1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(sm().DeleteSnapshot("s1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(All(), at_snapshot) << "deleting a snapshot does not touch the live state";
  EXPECT_TRUE(sm().CreateSnapshot("s1").ok()) << "the name is free again";
}

TEST_P(StateMachineConformanceTest, SnapshotErrorsChangeNothing) {
  ApplyOne(PutCmd("a", "1"));
  const std::vector<KeyValue> before = All();
  EXPECT_EQ(sm().RestoreSnapshot("nope").code(), absl::StatusCode::kNotFound);
  for (const std::string& name :
       {std::string(""), std::string("a/b"), std::string(".."), std::string("x.tmp"),
        std::string("sp ace"), std::string("nul\0", 4),
        std::string(kMaxSnapshotNameBytes + 1, 'x')}) {
    SCOPED_TRACE(absl::CHexEscape(name));
    EXPECT_EQ(sm().CreateSnapshot(name).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(sm().RestoreSnapshot(name).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(sm().DeleteSnapshot(name).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(sm().CreateSnapshot(std::string(kMaxSnapshotNameBytes, 'x')).ok());
  EXPECT_TRUE(sm().CreateSnapshot("Az09_-").ok());
  EXPECT_EQ(All(), before);
  EXPECT_EQ(sm().applied_index(), 1u);
  EXPECT_EQ(sm().revision(), 2);
}

// Exports snapshot `name` into one string, in the pieces the implementation emits.
std::string Export(StateMachine& sm, const std::string& name, absl::Status* status) {
  std::string out;
  *status = sm.ExportSnapshot(name, [&out](absl::string_view piece) {
    out.append(piece.data(), piece.size());
    return absl::OkStatus();
  });
  return out;
}

// Imports `bytes` as snapshot `name`, fed in pieces of `piece` bytes.
absl::Status Import(StateMachine& sm, const std::string& name, const std::string& bytes,
                    size_t piece) {
  size_t at = 0;
  return sm.ImportSnapshot(name, [&]() -> absl::StatusOr<std::string> {
    std::string p = bytes.substr(at, piece);
    at += p.size();
    return p;
  });
}

TEST_P(StateMachineConformanceTest, SnapshotFilesExportAndImportTheWholeState) {
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", std::string(5000, 'v')));
  ApplyOne(PutCmd("b", "3"));
  ApplyOne(PutCmd(std::string("k\0ey", 4), std::string("\0\xff", 2)));
  ApplyOne(DelCmd("a"));
  const std::vector<KeyValue> at_snapshot = All();
  const uint64_t applied = sm().applied_index();
  const int64_t rev = sm().revision();
  ASSERT_TRUE(sm().CreateSnapshot("s1").ok());
  absl::Status s;
  const std::string bytes = Export(sm(), "s1", &s);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Export(sm(), "nope", &s), "");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);

  ApplyOne(PutCmd("later", "x"));
  // Every piece size decodes to the same snapshot.
  for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}, bytes.size()}) {
    SCOPED_TRACE(piece);
    const std::string name = absl::StrCat("imported", piece);
    ASSERT_TRUE(Import(sm(), name, bytes, piece).ok());
    EXPECT_EQ(Import(sm(), name, bytes, piece).code(), absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(sm().RestoreSnapshot(name).ok());
    EXPECT_EQ(All(), at_snapshot);
    EXPECT_EQ(sm().applied_index(), applied);
    EXPECT_EQ(sm().revision(), rev);
    RangeRequest past = Rng("a");
    past.revision = 2;  // the history travels with the snapshot
    EXPECT_EQ(RangeOf(past).kvs, std::vector<KeyValue>{KV("a", "1", 2, 2, 1)});
    std::string again = Export(sm(), name, &s);
    EXPECT_EQ(again, bytes) << "export is deterministic";
  }
}

TEST_P(StateMachineConformanceTest, ADamagedSnapshotFileIsRefusedWhole) {
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", "2"));
  ASSERT_TRUE(sm().CreateSnapshot("s").ok());
  absl::Status s;
  const std::string bytes = Export(sm(), "s", &s);
  ASSERT_TRUE(s.ok());
  // Every truncation and every single-byte change is refused and creates nothing.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(Import(sm(), "t", bytes.substr(0, cut), 3).ok()) << "cut at " << cut;
  }
  for (size_t at = 0; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] ^= 0x20;
    EXPECT_FALSE(Import(sm(), "t", bad, 5).ok()) << "byte " << at;
  }
  EXPECT_FALSE(Import(sm(), "t", bytes + "x", 5).ok()) << "trailing garbage";
  EXPECT_EQ(sm().RestoreSnapshot("t").code(), absl::StatusCode::kNotFound);
}

TEST_P(StateMachineConformanceTest, AVersionOneSnapshotFileReadsAsCompactedAtItsRevision) {
  // A file from before the history was kept: header without compact revision, latest pairs
  // without leases, no lease section.
  auto u32 = [](std::string* out, uint32_t v) {
    for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto u64 = [](std::string* out, uint64_t v) {
    for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  std::string file(kSnapshotFileMagic, sizeof(kSnapshotFileMagic));
  u32(&file, 1);
  u32(&file, 0);
  u64(&file, 5);  // applied index
  u64(&file, 4);  // revision
  for (const KeyValue& kv : {KV("a", "1", 2, 3, 2), KV("b", "2", 4, 4, 1)}) {
    u32(&file, static_cast<uint32_t>(kv.key.size()));
    file += kv.key;
    u32(&file, static_cast<uint32_t>(kv.value.size()));
    file += kv.value;
    u64(&file, static_cast<uint64_t>(kv.create_revision));
    u64(&file, static_cast<uint64_t>(kv.mod_revision));
    u64(&file, static_cast<uint64_t>(kv.version));
  }
  file.append(kSnapshotFileEndMagic, sizeof(kSnapshotFileEndMagic));
  u64(&file, 2);
  const uint32_t crc = Crc32cExtend(0, file.data(), file.size());
  u32(&file, crc);
  ASSERT_TRUE(Import(sm(), "old", file, 3).ok());
  ASSERT_TRUE(sm().RestoreSnapshot("old").ok());
  EXPECT_EQ(All(), (std::vector<KeyValue>{KV("a", "1", 2, 3, 2), KV("b", "2", 4, 4, 1)}));
  EXPECT_EQ(sm().revision(), 4);
  EXPECT_EQ(sm().compact_revision(), 4);
  RangeRequest past = Rng("a");
  past.revision = 3;
  EXPECT_EQ(sm().Range(past).status().message(), kErrCompacted);
}

// ---------------------------------------------------------------------------------------------
// Revision history

TEST_P(StateMachineConformanceTest, RangeAtAPastRevisionSeesTheStoreAsItWas) {
  ApplyOne(PutCmd("a", "1"));  // rev 2
  ApplyOne(PutCmd("b", "1"));  // rev 3
  ApplyOne(PutCmd("a", "2"));  // rev 4
  ApplyOne(DelCmd("b"));       // rev 5
  ApplyOne(PutCmd("b", "3"));  // rev 6
  auto at = [&](int64_t rev) {
    RangeRequest r = Rng("a", kFromKey);
    r.revision = rev;
    return RangeOf(r);
  };
  EXPECT_TRUE(at(1).kvs.empty());
  EXPECT_EQ(at(2).kvs, std::vector<KeyValue>{KV("a", "1", 2, 2, 1)});
  EXPECT_EQ(at(3).kvs, (std::vector<KeyValue>{KV("a", "1", 2, 2, 1), KV("b", "1", 3, 3, 1)}));
  EXPECT_EQ(at(4).kvs, (std::vector<KeyValue>{KV("a", "2", 2, 4, 2), KV("b", "1", 3, 3, 1)}));
  EXPECT_EQ(at(5).kvs, std::vector<KeyValue>{KV("a", "2", 2, 4, 2)});
  EXPECT_EQ(at(6).kvs, (std::vector<KeyValue>{KV("a", "2", 2, 4, 2), KV("b", "3", 6, 6, 1)}));
  EXPECT_EQ(at(3).header.revision, 6) << "the header holds the current revision";
  EXPECT_EQ(at(0), at(6));
  RangeRequest future = Rng("a");
  future.revision = 7;
  absl::StatusOr<RangeResponse> r = sm().Range(future);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(r.status().message(), kErrFutureRev);
  RangeRequest one = Rng("b");
  one.revision = 4;
  EXPECT_EQ(RangeOf(one).kvs, std::vector<KeyValue>{KV("b", "1", 3, 3, 1)});
}

TEST_P(StateMachineConformanceTest, HistoryListsEveryVersionWithTombstones) {
  ApplyOne(PutCmd("a", "1"));  // rev 2
  ApplyOne(PutCmd("a", "2"));  // rev 3
  ApplyOne(DelCmd("a"));       // rev 4
  ApplyOne(PutCmd("ab", "x"));  // rev 5
  std::vector<KeyValue> seen;
  ASSERT_TRUE(sm().History("a", PrefixEnd("a"), 3, [&](const KeyValue& kv) {
                    seen.push_back(kv);
                    return true;
                  }).ok());
  EXPECT_EQ(seen, (std::vector<KeyValue>{KV("a", "2", 2, 3, 2), Tombstone("a", 4),
                                         KV("ab", "x", 5, 5, 1)}));
  EXPECT_TRUE(IsTombstone(seen[1]));
}

TEST_P(StateMachineConformanceTest, CompactionDiscardsWhatNoLaterReadCanSee) {
  ApplyOne(PutCmd("a", "1"));  // rev 2
  ApplyOne(PutCmd("a", "2"));  // rev 3
  ApplyOne(PutCmd("b", "1"));  // rev 4
  ApplyOne(DelCmd("b"));       // rev 5
  ApplyOne(PutCmd("c", "1"));  // rev 6
  const uint32_t before = *sm().HashKV(0);
  Command compact{7, CompactRequest{5, /*physical=*/true}};
  EXPECT_EQ(As<CompactResponse>(ApplyOne(compact)).header.revision, 6);
  EXPECT_EQ(sm().compact_revision(), 5);
  EXPECT_EQ(sm().revision(), 6) << "a compaction does not bump the revision";
  EXPECT_EQ(*sm().HashKV(0), before) << "nor change the current state";

  RangeRequest old = Rng("a", kFromKey);
  old.revision = 4;
  absl::StatusOr<RangeResponse> r = sm().Range(old);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(r.status().message(), kErrCompacted);
  old.revision = 5;
  EXPECT_EQ(RangeOf(old).kvs, std::vector<KeyValue>{KV("a", "2", 2, 3, 2)});
  std::vector<KeyValue> kept;
  ASSERT_TRUE(sm().History("a", kFromKey, 5, [&](const KeyValue& kv) {
                    kept.push_back(kv);
                    return true;
                  }).ok());
  // Versions from 5 on: b's delete at 5 itself stays (a watch from 5 must see it), b@4 went;
  // a@3 stays (the read at 5 above sees it) but is older than 5.
  EXPECT_EQ(kept, (std::vector<KeyValue>{Tombstone("b", 5), KV("c", "1", 6, 6, 1)}));
  EXPECT_EQ(sm().History("a", "", 4, [](const KeyValue&) { return true; }).code(),
            absl::StatusCode::kOutOfRange);

  // A snapshot holds the delete kept at the compact revision, and imports.
  ASSERT_TRUE(sm().CreateSnapshot("compacted").ok());
  absl::Status exported;
  const std::string bytes = Export(sm(), "compacted", &exported);
  ASSERT_TRUE(exported.ok()) << exported;
  EXPECT_TRUE(Import(sm(), "again", bytes, 7).ok());

  // Compacting again at or below 5, or past the revision, is refused and changes nothing.
  for (int64_t rev : {4, 5, 7}) {
    ApplyResult again = ApplyOne(Command{8, CompactRequest{rev, false}});
    EXPECT_EQ(again.status.code(), absl::StatusCode::kOutOfRange) << rev;
    EXPECT_EQ(again.status.message(), rev == 7 ? kErrFutureRev : kErrCompacted);
  }
  EXPECT_EQ(sm().compact_revision(), 5);
  EXPECT_EQ(As<CompactResponse>(ApplyOne(Command{9, CompactRequest{6, false}})).header.revision,
            6) << "compacting at the current revision is allowed";
  kept.clear();
  ASSERT_TRUE(sm().History("b", "", 6, [&](const KeyValue& kv) {
                    kept.push_back(kv);
                    return true;
                  }).ok());
  EXPECT_TRUE(kept.empty()) << "b's delete went with the next compaction past it";
}

TEST_P(StateMachineConformanceTest, ACompactionInABatchSeesTheBatchsEarlierWrites) {
  std::vector<ApplyItem> batch = {
      ApplyItem::Of(1, PutCmd("a", "1")),                      // rev 2
      ApplyItem::Of(2, PutCmd("a", "2")),                      // rev 3
      ApplyItem::Of(3, Command{1, CompactRequest{3, false}}),  // discards a@2
      ApplyItem::Of(4, PutCmd("a", "3")),                      // rev 4
  };
  std::vector<ApplyResult> r = ApplyBatch(batch);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_TRUE(r[2].status.ok()) << Describe(r[2]);
  std::vector<KeyValue> kept;
  ASSERT_TRUE(sm().History("a", "", 3, [&](const KeyValue& kv) {
                    kept.push_back(kv);
                    return true;
                  }).ok());
  EXPECT_EQ(kept, (std::vector<KeyValue>{KV("a", "2", 2, 3, 2), KV("a", "3", 2, 4, 3)}));
}

// ---------------------------------------------------------------------------------------------
// Durability (durable implementations only)

TEST_P(StateMachineConformanceTest, ReopenKeepsDataRevisionAppliedIndexAndSnapshots) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable implementation";
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", "2"));
  ASSERT_TRUE(sm().CreateSnapshot("early").ok());
  const std::vector<KeyValue> early = All();
  ApplyOne(PutCmd("a", "3"));
  ApplyOne(DelCmd("b"));
  ApplyBatch({ApplyItem::Noop(5), ApplyItem::Noop(6)});
  const std::vector<KeyValue> before = All();
  ASSERT_TRUE(store_->Reopen().ok());
  EXPECT_EQ(All(), before);
  EXPECT_EQ(sm().applied_index(), 6u);
  EXPECT_EQ(sm().revision(), 5);
  EXPECT_EQ(ApplyOne(PutCmd("c", "1")).index, 7u);
  EXPECT_EQ(Get("c"), KV("c", "1", 6, 6, 1));
  // Reopen twice in a row, then restore a snapshot taken before the first reopen.
  ASSERT_TRUE(store_->Reopen().ok());
  ASSERT_TRUE(store_->Reopen().ok());
  EXPECT_EQ(sm().applied_index(), 7u);
  ASSERT_TRUE(sm().RestoreSnapshot("early").ok());
  EXPECT_EQ(All(), early);
  EXPECT_EQ(sm().applied_index(), 2u);
  EXPECT_EQ(sm().revision(), 3);
  ASSERT_TRUE(store_->Reopen().ok());
  EXPECT_EQ(All(), early) << "a restore is durable";
  EXPECT_EQ(sm().applied_index(), 2u);
}

TEST_P(StateMachineConformanceTest, CrashBetweenBatchesKeepsEveryWholeBatch) {
  if (!GetParam().durable) GTEST_SKIP() << "not a durable implementation";
  ApplyBatch({ApplyItem::Of(1, PutCmd("a", "1")), ApplyItem::Of(2, PutCmd("b", "1")),
              ApplyItem::Noop(3)});
  std::vector<ApplyItem> second;
  for (uint64_t i = 4; i <= 40; ++i) {
    second.push_back(ApplyItem::Of(i, PutCmd(absl::StrCat("k", i), std::string(100, 'x'))));
  }
  second.push_back(ApplyItem::Of(41, DelCmd("a")));
  ApplyBatch(second);
  const std::vector<KeyValue> before = All();
  ASSERT_TRUE(store_->CrashAndReopen().ok());
  EXPECT_EQ(sm().applied_index(), 41u) << "the applied index is that of the last whole batch";
  EXPECT_EQ(sm().revision(), 41);
  EXPECT_EQ(All(), before);
  // Replay from the WAL continues right after it.
  EXPECT_EQ(ApplyOne(PutCmd("a", "again")).index, 42u);
  ASSERT_TRUE(store_->CrashAndReopen().ok());
  EXPECT_EQ(Get("a"), KV("a", "again", 42, 42, 1));
}

// ---------------------------------------------------------------------------------------------
// Leases

namespace {

Command GrantCmd(int64_t id, int64_t ttl) {
  Command c;
  c.op = LeaseGrantRequest{id, ttl};
  return c;
}

Command RevokeCmd(int64_t id) {
  Command c;
  c.op = LeaseRevokeRequest{id};
  return c;
}

Command LeasedPut(std::string key, std::string value, int64_t lease, bool ignore_lease = false) {
  Command c;
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  p.ignore_lease = ignore_lease;
  c.op = std::move(p);
  return c;
}

std::vector<std::string> LeaseKeys(const StateMachine& sm, int64_t id) {
  std::vector<std::string> keys;
  absl::Status s = sm.ForEachLeaseKey(id, [&](const std::string& k) {
    keys.push_back(k);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return keys;
}

std::vector<Lease> AllLeases(const StateMachine& sm) {
  std::vector<Lease> leases;
  absl::Status s = sm.ForEachLease([&](const Lease& l) {
    leases.push_back(l);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s;
  return leases;
}

KeyValue Leased(KeyValue kv, int64_t lease) {
  kv.lease = lease;
  return kv;
}

}  // namespace

TEST_P(StateMachineConformanceTest, RevokingALeaseDeletesItsKeysAtOneRevision) {
  LeaseGrantResponse g = As<LeaseGrantResponse>(ApplyOne(GrantCmd(7, 10)));
  EXPECT_EQ(g.id, 7);
  EXPECT_EQ(g.ttl, 10);
  EXPECT_EQ(g.header.revision, 1) << "a grant does not change the revision";
  ApplyOne(LeasedPut("a", "1", 7));
  ApplyOne(LeasedPut("b", "2", 7));
  ApplyOne(PutCmd("c", "3"));
  EXPECT_EQ(Get("a"), Leased(KV("a", "1", 2, 2, 1), 7));
  EXPECT_EQ(LeaseKeys(sm(), 7), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(AllLeases(sm()), (std::vector<Lease>{Lease{7, 10, 0}}));
  // A put on a lease that does not exist changes nothing.
  ApplyResult missing = ApplyOne(LeasedPut("d", "4", 99));
  EXPECT_EQ(missing.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status.message(), kErrLeaseNotFound);
  EXPECT_FALSE(Get("d").has_value());
  EXPECT_EQ(sm().revision(), 4);

  LeaseRevokeResponse r = As<LeaseRevokeResponse>(ApplyOne(RevokeCmd(7)));
  EXPECT_EQ(r.deleted, 2);
  EXPECT_EQ(r.header.revision, 5);
  EXPECT_EQ(sm().revision(), 5);
  EXPECT_EQ(All(), std::vector<KeyValue>{KV("c", "3", 4, 4, 1)});
  EXPECT_EQ(sm().last_applied_versions(),
            (std::vector<KeyValue>{Tombstone("a", 5), Tombstone("b", 5)}));
  EXPECT_TRUE(AllLeases(sm()).empty());
  EXPECT_TRUE(LeaseKeys(sm(), 7).empty());
  ApplyResult again = ApplyOne(RevokeCmd(7));
  EXPECT_EQ(again.status.code(), absl::StatusCode::kNotFound);
  // The id can be granted again; granting a taken id is refused.
  As<LeaseGrantResponse>(ApplyOne(GrantCmd(7, 5)));
  ApplyResult taken = ApplyOne(GrantCmd(7, 5));
  EXPECT_EQ(taken.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(taken.status.message(), kErrLeaseExists);
  // A revoke of a lease without keys does not change the revision.
  EXPECT_EQ(As<LeaseRevokeResponse>(ApplyOne(RevokeCmd(7))).header.revision, 5);
  EXPECT_EQ(sm().revision(), 5);
}

TEST_P(StateMachineConformanceTest, AGrantAttachAndRevokeInOneBatch) {
  ApplyOne(PutCmd("old", "0"));
  std::vector<ApplyResult> r =
      ApplyBatch({ApplyItem::Of(2, GrantCmd(9, 10)), ApplyItem::Of(3, LeasedPut("new", "1", 9)),
                  ApplyItem::Of(4, LeasedPut("old", "1", 9)), ApplyItem::Of(5, RevokeCmd(9))});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(As<LeaseRevokeResponse>(r[3]).deleted, 2);
  EXPECT_TRUE(All().empty());
  EXPECT_TRUE(AllLeases(sm()).empty());
  EXPECT_TRUE(LeaseKeys(sm(), 9).empty());
  EXPECT_EQ(ApplyOne(RevokeCmd(9)).status.code(), absl::StatusCode::kNotFound);
}

TEST_P(StateMachineConformanceTest, APutMovesAKeyBetweenLeasesOrKeepsItsLease) {
  ApplyBatch({ApplyItem::Of(1, GrantCmd(1, 60)), ApplyItem::Of(2, GrantCmd(2, 60))});
  ApplyOne(LeasedPut("k", "a", 1));
  ApplyOne(LeasedPut("k", "b", 2));
  EXPECT_TRUE(LeaseKeys(sm(), 1).empty());
  EXPECT_EQ(LeaseKeys(sm(), 2), std::vector<std::string>{"k"});
  // ignore_lease keeps the key's lease.
  ApplyOne(LeasedPut("k", "c", 0, /*ignore_lease=*/true));
  EXPECT_EQ(Get("k"), Leased(KV("k", "c", 2, 4, 3), 2));
  ApplyResult no_key = ApplyOne(LeasedPut("nokey", "x", 0, /*ignore_lease=*/true));
  EXPECT_EQ(no_key.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_key.status.message(), kErrKeyNotFound);
  ApplyResult both = ApplyOne(LeasedPut("k", "x", 2, /*ignore_lease=*/true));
  EXPECT_EQ(both.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(both.status.message(), kErrLeaseProvided);
  // A put without a lease detaches the key: revoking its old lease leaves it.
  ApplyOne(PutCmd("k", "d"));
  EXPECT_TRUE(LeaseKeys(sm(), 2).empty());
  EXPECT_EQ(As<LeaseRevokeResponse>(ApplyOne(RevokeCmd(2))).deleted, 0);
  EXPECT_EQ(Get("k"), KV("k", "d", 2, 5, 4));
  // Past versions keep the lease they were written with.
  RangeRequest past = Rng("k");
  past.revision = 3;
  EXPECT_EQ(RangeOf(past).kvs, std::vector<KeyValue>{Leased(KV("k", "b", 2, 3, 2), 2)});
}

TEST_P(StateMachineConformanceTest, ATxnThatPutsOnAMissingLeaseDoesNothing) {
  ApplyOne(GrantCmd(3, 60));
  ApplyOne(PutCmd("x", "0"));
  Command bad = TxnCmd({}, {OpPut("y", "1"), std::get<PutRequest>(LeasedPut("z", "2", 4).op)});
  ApplyResult r = ApplyOne(bad);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(Get("y").has_value());
  EXPECT_EQ(sm().revision(), 2);
  // Only the branch that runs is checked; a lease compare sees the key's lease.
  Command good = TxnCmd({Cmp(Target::kLease, Result::kEqual, "x", 0)},
                        {std::get<PutRequest>(LeasedPut("x", "1", 3).op)},
                        {std::get<PutRequest>(LeasedPut("x", "1", 4).op)});
  EXPECT_TRUE(As<TxnResponse>(ApplyOne(good)).succeeded);
  EXPECT_EQ(Get("x"), Leased(KV("x", "1", 2, 3, 2), 3));
  Command cmp = TxnCmd({Cmp(Target::kLease, Result::kEqual, "x", 3)}, {OpDel("x")});
  EXPECT_TRUE(As<TxnResponse>(ApplyOne(cmp)).succeeded);
  EXPECT_TRUE(LeaseKeys(sm(), 3).empty()) << "a deleted key leaves the lease index";
}

TEST_P(StateMachineConformanceTest, TheLargestLeaseIdsKeepTheirKeysApart) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  ApplyBatch({ApplyItem::Of(1, GrantCmd(big, 60)), ApplyItem::Of(2, GrantCmd(big - 1, 60))});
  ApplyOne(LeasedPut("x", "1", big));
  ApplyOne(LeasedPut("y", "1", big - 1));
  EXPECT_EQ(LeaseKeys(sm(), big), std::vector<std::string>{"x"});
  EXPECT_EQ(LeaseKeys(sm(), big - 1), std::vector<std::string>{"y"});
  EXPECT_EQ(As<LeaseRevokeResponse>(ApplyOne(RevokeCmd(big))).deleted, 1);
  EXPECT_EQ(All(), std::vector<KeyValue>{Leased(KV("y", "1", 3, 3, 1), big - 1)});
}

TEST_P(StateMachineConformanceTest, CheckpointsRecordTheRemainingTtl) {
  ApplyBatch({ApplyItem::Of(1, GrantCmd(1, 60)), ApplyItem::Of(2, GrantCmd(2, 30))});
  Command c;
  c.op = LeaseCheckpointRequest{{{1, 45}, {9, 10}}};  // lease 9 does not exist: skipped
  As<LeaseCheckpointResponse>(ApplyOne(c));
  EXPECT_EQ(AllLeases(sm()), (std::vector<Lease>{Lease{1, 60, 45}, Lease{2, 30, 0}}));
  EXPECT_EQ(sm().revision(), 1);
  Command invalid;
  invalid.op = LeaseCheckpointRequest{{{1, -1}}};
  EXPECT_EQ(ApplyOne(invalid).status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyOne(GrantCmd(5, kMaxLeaseTtl + 1)).status.message(), kErrLeaseTtlTooLarge);
  EXPECT_EQ(ApplyOne(GrantCmd(0, 10)).status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StateMachineConformanceTest, LeasesTravelWithSnapshotsAndSnapshotFiles) {
  ApplyBatch({ApplyItem::Of(1, GrantCmd(1, 60)), ApplyItem::Of(2, GrantCmd(2, 30))});
  ApplyOne(LeasedPut("a", "1", 1));
  ApplyOne(LeasedPut("b", "2", 2));
  Command c;
  c.op = LeaseCheckpointRequest{{{2, 20}}};
  ApplyOne(c);
  const std::vector<KeyValue> kvs = All();
  const std::vector<Lease> leases = AllLeases(sm());
  ASSERT_TRUE(sm().CreateSnapshot("s").ok());
  absl::Status s;
  const std::string bytes = Export(sm(), "s", &s);
  ASSERT_TRUE(s.ok()) << s;
  ApplyOne(RevokeCmd(1));
  ApplyOne(GrantCmd(3, 5));
  ASSERT_TRUE(sm().RestoreSnapshot("s").ok());
  EXPECT_EQ(All(), kvs);
  EXPECT_EQ(AllLeases(sm()), leases);
  EXPECT_EQ(LeaseKeys(sm(), 1), std::vector<std::string>{"a"});
  ASSERT_TRUE(Import(sm(), "copy", bytes, 5).ok());
  ApplyOne(RevokeCmd(2));
  ASSERT_TRUE(sm().RestoreSnapshot("copy").ok());
  EXPECT_EQ(All(), kvs);
  EXPECT_EQ(AllLeases(sm()), leases);
  EXPECT_EQ(LeaseKeys(sm(), 2), std::vector<std::string>{"b"});
  EXPECT_EQ(As<LeaseRevokeResponse>(ApplyOne(RevokeCmd(2))).deleted, 1);
  if (GetParam().durable) {
    ASSERT_TRUE(store_->Reopen().ok());
    EXPECT_EQ(AllLeases(sm()), (std::vector<Lease>{Lease{1, 60, 0}}));
    EXPECT_EQ(LeaseKeys(sm(), 1), std::vector<std::string>{"a"});
  }
}

// ---------------------------------------------------------------------------------------------
// Randomized comparison with a naive model

// The model: the obvious implementation of the semantics in state_machine.h, written
// independently of engine/kv/apply.cc (linear scans, no overlay).
class Model {
 public:
  using Kvs = std::map<std::string, KeyValue>;
  uint64_t applied = 0;
  int64_t revision = kInitialRevision;
  int64_t compacted = kInitialRevision;
  Kvs kvs;
  std::vector<KeyValue> written;  // versions written since the test last cleared it
  // The whole state after every revision from `compacted` to `revision`.
  std::map<int64_t, Kvs> states = {{kInitialRevision, Kvs{}}};

  static bool In(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == kFromKey) return k >= key;
    return key <= k && k < end;
  }

  std::vector<KeyValue> Select(const std::string& key, const std::string& end,
                               const Kvs* from = nullptr) const {
    std::vector<KeyValue> out;
    for (const auto& [k, kv] : from ? *from : kvs) {
      if (In(k, key, end)) out.push_back(kv);
    }
    return out;
  }

  // A direct read, at r.revision when set.
  absl::StatusOr<RangeResponse> Read(const RangeRequest& r) const {
    if (r.revision <= 0) return Range(r, revision);
    if (r.revision > revision) return absl::OutOfRangeError("future");
    if (r.revision < compacted) return absl::OutOfRangeError("compacted");
    return Range(r, revision, &states.at(r.revision));
  }

  // The versions History(key, end, from) visits, derived from the states: each key's newest
  // put at or below the compact revision, a delete at exactly the compact revision, and every
  // change after it.
  absl::StatusOr<std::vector<KeyValue>> History(const std::string& key, const std::string& end,
                                                int64_t from) const {
    if (from < compacted) return absl::OutOfRangeError("compacted");
    std::map<std::pair<std::string, int64_t>, KeyValue> found;
    for (const KeyValue& kv : Select(key, end, &states.at(compacted))) {
      if (kv.mod_revision >= from) found[{kv.key, kv.mod_revision}] = kv;
    }
    for (auto it = states.begin(); it != states.end(); ++it) {
      if (it->first < from || it->first < compacted) continue;
      auto prev = states.find(it->first - 1);
      const Kvs empty;
      const Kvs& before = prev == states.end() ? empty : prev->second;
      const Kvs& after = it->second;
      for (const KeyValue& kv : Select(key, end, &after)) {
        auto b = before.find(kv.key);
        if (b == before.end() || b->second != kv) found[{kv.key, it->first}] = kv;
      }
      for (const KeyValue& kv : Select(key, end, &before)) {
        if (after.count(kv.key) == 0) found[{kv.key, it->first}] = Tombstone(kv.key, it->first);
      }
    }
    std::vector<KeyValue> out;
    for (auto& [k, kv] : found) out.push_back(kv);
    return out;
  }

  RangeResponse Range(const RangeRequest& r, int64_t rev, const Kvs* from = nullptr) const {
    RangeResponse out;
    out.header.revision = rev;
    std::vector<KeyValue> all = Select(r.key, r.range_end, from);
    out.count = static_cast<int64_t>(all.size());
    if (!r.count_only) {
      for (KeyValue& kv : all) {
        if (r.limit > 0 && static_cast<int64_t>(out.kvs.size()) == r.limit) {
          out.more = true;
          break;
        }
        if (r.keys_only) kv.value.clear();
        out.kvs.push_back(kv);
      }
    }
    return out;
  }

  static bool Valid(const Command& c) {
    if (std::holds_alternative<CompactRequest>(c.op)) return true;
    if (const auto* p = std::get_if<PutRequest>(&c.op)) return !p->key.empty();
    if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) return !d->key.empty();
    const TxnRequest& t = std::get<TxnRequest>(c.op);
    if (t.compare.size() > kMaxTxnOps) return false;
    for (const Compare& cmp : t.compare) {
      if (cmp.key.empty()) return false;
    }
    for (const std::vector<RequestOp>* ops : {&t.success, &t.failure}) {
      if (ops->size() > kMaxTxnOps) return false;
      for (size_t i = 0; i < ops->size(); ++i) {
        const RequestOp& op = (*ops)[i];
        std::string key = std::visit([](const auto& req) { return req.key; }, op);
        if (key.empty()) return false;
        const auto* p = std::get_if<PutRequest>(&op);
        if (p == nullptr) continue;
        for (size_t j = 0; j < ops->size(); ++j) {
          if (j == i) continue;
          const RequestOp& other = (*ops)[j];
          if (const auto* p2 = std::get_if<PutRequest>(&other); p2 && p2->key == p->key) {
            return false;
          }
          if (const auto* d = std::get_if<DeleteRangeRequest>(&other);
              d && In(p->key, d->key, d->range_end)) {
            return false;
          }
        }
      }
    }
    return true;
  }

  bool Holds(const Compare& c) const {
    std::vector<KeyValue> sel = Select(c.key, c.range_end);
    if (sel.empty()) {
      if (c.target == Target::kValue) return false;
      sel.push_back(KeyValue{});
    }
    for (const KeyValue& kv : sel) {
      int cmp = 0;
      switch (c.target) {
        case Target::kVersion: cmp = (kv.version > c.number) - (kv.version < c.number); break;
        case Target::kCreate:
          cmp = (kv.create_revision > c.number) - (kv.create_revision < c.number);
          break;
        case Target::kMod: cmp = (kv.mod_revision > c.number) - (kv.mod_revision < c.number); break;
        case Target::kValue: cmp = (kv.value > c.value) - (kv.value < c.value); break;
        case Target::kLease: cmp = (kv.lease > c.number) - (kv.lease < c.number); break;
      }
      bool ok = (c.result == Result::kEqual && cmp == 0) ||
                (c.result == Result::kNotEqual && cmp != 0) ||
                (c.result == Result::kGreater && cmp > 0) || (c.result == Result::kLess && cmp < 0);
      if (!ok) return false;
    }
    return true;
  }

  // Writes at revision + 1; `wrote` tracks whether the item wrote.
  PutResponse Put(const PutRequest& p, bool* wrote) {
    PutResponse out;
    out.header.revision = revision + 1;
    auto it = kvs.find(p.key);
    if (it != kvs.end()) {
      if (p.prev_kv) out.prev_kv = it->second;
      it->second.value = p.value;
      it->second.mod_revision = revision + 1;
      it->second.version++;
    } else {
      kvs[p.key] = KeyValue{p.key, p.value, revision + 1, revision + 1, 1};
    }
    written.push_back(kvs[p.key]);
    *wrote = true;
    return out;
  }

  DeleteRangeResponse Delete(const DeleteRangeRequest& d, bool* wrote) {
    DeleteRangeResponse out;
    std::vector<KeyValue> gone = Select(d.key, d.range_end);
    for (const KeyValue& kv : gone) {
      kvs.erase(kv.key);
      written.push_back(Tombstone(kv.key, revision + 1));
    }
    if (!gone.empty()) *wrote = true;
    out.deleted = static_cast<int64_t>(gone.size());
    if (d.prev_kv) out.prev_kvs = gone;
    out.header.revision = *wrote ? revision + 1 : revision;
    return out;
  }

  ApplyResult Apply(const ApplyItem& item) {
    ApplyResult r;
    r.index = item.index;
    applied = item.index;
    if (!item.decode_error.ok()) {
      r.status = item.decode_error;
      return r;
    }
    if (!item.command) return r;
    const Command& c = *item.command;
    r.request_id = c.request_id;
    if (!Valid(c)) {
      r.status = absl::InvalidArgumentError("model: invalid");
      return r;
    }
    bool wrote = false;
    if (const auto* k = std::get_if<CompactRequest>(&c.op)) {
      if (k->revision > revision || k->revision <= compacted) {
        r.status = absl::OutOfRangeError("model: compacted or future");
        return r;
      }
      compacted = k->revision;
      // Keep the state before the compact revision: a delete at it is still in the history.
      states.erase(states.begin(), states.find(compacted - 1));
      r.response = CompactResponse{ResponseHeader{revision}};
    } else if (const auto* p = std::get_if<PutRequest>(&c.op)) {
      r.response = Put(*p, &wrote);
    } else if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) {
      r.response = Delete(*d, &wrote);
    } else {
      const TxnRequest& t = std::get<TxnRequest>(c.op);
      TxnResponse out;
      out.succeeded = true;
      for (const Compare& cmp : t.compare) out.succeeded = out.succeeded && Holds(cmp);
      for (const RequestOp& op : out.succeeded ? t.success : t.failure) {
        if (const auto* rr = std::get_if<RangeRequest>(&op)) {
          out.responses.emplace_back(Range(*rr, wrote ? revision + 1 : revision));
        } else if (const auto* op_put = std::get_if<PutRequest>(&op)) {
          out.responses.emplace_back(Put(*op_put, &wrote));
        } else {
          out.responses.emplace_back(Delete(std::get<DeleteRangeRequest>(op), &wrote));
        }
      }
      out.header.revision = wrote ? revision + 1 : revision;
      r.response = std::move(out);
    }
    if (wrote) states[++revision] = kvs;
    return r;
  }
};

// Draws commands over a small key space so that keys collide often.
class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return rng_.Uniform(n); }
  bool Chance(int percent) { return Below(100) < static_cast<uint64_t>(percent); }

  std::string Key() {
    static const char kAlphabet[] = {'a', 'b', 'c', '\0', '\xff'};
    uint64_t roll = Below(10);
    size_t len = roll < 4 ? 1 : (roll < 8 ? 2 : 3);
    std::string k;
    for (size_t i = 0; i < len; ++i) k.push_back(kAlphabet[Below(sizeof(kAlphabet))]);
    return k;
  }

  std::string Value() {
    switch (Below(5)) {
      case 0: return "";
      case 1: return "x";
      case 2: return "y";
      case 3: return std::string("\0\xff", 2);
      default: return absl::StrCat("v", Below(1000));
    }
  }

  // (key, range_end) in one of the four shapes.
  std::pair<std::string, std::string> KeyRange() {
    std::string key = Key();
    switch (Below(10)) {
      case 0: case 1: case 2: case 3: return {key, ""};
      case 4: case 5: return {key.substr(0, 1), PrefixEnd(key.substr(0, 1))};
      case 6: return {key, kFromKey};
      default: return {key, Key()};  // possibly empty (end <= key)
    }
  }

  RangeRequest Range() {
    auto [key, end] = KeyRange();
    RangeRequest r = Rng(key, end);
    if (Chance(40)) r.limit = static_cast<int64_t>(Below(4)) - (Chance(10) ? 2 : 0);
    r.keys_only = Chance(20);
    r.count_only = Chance(15);
    return r;
  }

  Compare MakeCompare(const Model& m) {
    Compare c;
    c.result = static_cast<Result>(Below(4));
    c.target = static_cast<Target>(Below(4));
    auto [key, end] = Chance(75) ? std::make_pair(Key(), std::string()) : KeyRange();
    c.key = key;
    c.range_end = end;
    // Half the time the operand is near a real attribute, so that compares often hold.
    auto it = m.kvs.find(c.key);
    if (it != m.kvs.end() && Chance(60)) {
      int64_t delta = static_cast<int64_t>(Below(3)) - 1;
      switch (c.target) {
        case Target::kVersion: c.number = it->second.version + delta; break;
        case Target::kCreate: c.number = it->second.create_revision + delta; break;
        case Target::kMod: c.number = it->second.mod_revision + delta; break;
        case Target::kValue: c.value = Chance(60) ? it->second.value : Value(); break;
        case Target::kLease: c.number = it->second.lease + delta; break;
      }
    } else {
      c.number = static_cast<int64_t>(Below(static_cast<uint64_t>(m.revision) + 2));
      c.value = Value();
    }
    return c;
  }

  RequestOp Op() {
    switch (Below(3)) {
      case 0: return Range();
      case 1: return OpPut(Key(), Value(), Chance(50));
      default: {
        auto [key, end] = KeyRange();
        return OpDel(key, end, Chance(50));
      }
    }
  }

  // A revision around the ones the model holds: sometimes compacted, sometimes in the future.
  int64_t Revision(const Model& m) {
    return m.compacted - 1 + static_cast<int64_t>(Below(static_cast<uint64_t>(
                                 m.revision - m.compacted + 3)));
  }

  Command MakeCommand(const Model& m) {
    Command c;
    c.request_id = Below(1000);
    if (Chance(4)) {
      c.op = CompactRequest{Revision(m), Chance(50)};
      return c;
    }
    uint64_t kind = Below(10);
    if (kind < 4) {
      c.op = PutRequest{Chance(2) ? "" : Key(), Value(), Chance(50)};
    } else if (kind < 6) {
      auto [key, end] = KeyRange();
      c.op = DeleteRangeRequest{key, end, Chance(50)};
    } else {
      TxnRequest t;
      for (uint64_t n = Below(4); n > 0; --n) t.compare.push_back(MakeCompare(m));
      for (uint64_t n = Below(5); n > 0; --n) t.success.push_back(Op());
      for (uint64_t n = Below(4); n > 0; --n) t.failure.push_back(Op());
      if (Chance(2)) t.success.assign(kMaxTxnOps + 1, OpRange("a"));
      c.op = std::move(t);
    }
    return c;
  }

 private:
  SplitMix64 rng_;
};

// Compares results ignoring status messages (the model does not word them).
bool SameResult(const ApplyResult& a, const ApplyResult& b) {
  return a.index == b.index && a.request_id == b.request_id &&
         a.status.code() == b.status.code() && a.response == b.response;
}

std::vector<uint64_t> SeedsToRun() {
  if (const char* one = std::getenv("AMATERS_KV_SEED")) {
    uint64_t seed = 0;
    if (absl::SimpleAtoi(one, &seed)) return {seed};
    ADD_FAILURE() << "AMATERS_KV_SEED is not a number: " << one;
    return {};
  }
  uint64_t count = 8;
  if (const char* n = std::getenv("AMATERS_KV_SEEDS")) {
    if (!absl::SimpleAtoi(n, &count)) ADD_FAILURE() << "AMATERS_KV_SEEDS is not a number: " << n;
  }
  std::vector<uint64_t> seeds;
  for (uint64_t s = 1; s <= count; ++s) seeds.push_back(s);
  return seeds;
}

constexpr int kBatchesPerSeed = 150;

TEST_P(StateMachineConformanceTest, RandomOpsMatchModel) {
  for (uint64_t seed : SeedsToRun()) {
    SCOPED_TRACE(absl::StrCat("seed=", seed, "; replay with --test_env=AMATERS_KV_SEED=", seed,
                              " --test_filter='*RandomOpsMatchModel*'"));
    // A fresh store per seed, so that every seed replays alone.
    absl::StatusOr<std::unique_ptr<StoreUnderTest>> opened = GetParam().open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
    Generator gen(seed);
    Model model;
    std::map<std::string, Model> model_snapshots;
    int snapshot_counter = 0;
    std::string trace;  // the last batches, for the failure message

    for (int step = 0; step < kBatchesPerSeed; ++step) {
      const std::string where = absl::StrCat("step ", step, "\n", trace);
      // Occasional store-level actions between batches.
      if (gen.Chance(4)) {
        std::string name = absl::StrCat("s", snapshot_counter++);
        ASSERT_TRUE(sm().CreateSnapshot(name).ok()) << where;
        model_snapshots[name] = model;
        trace += absl::StrCat("create snapshot ", name, "\n");
      }
      if (!model_snapshots.empty() && gen.Chance(3)) {
        auto it = model_snapshots.begin();
        std::advance(it, gen.Below(model_snapshots.size()));
        ASSERT_TRUE(sm().RestoreSnapshot(it->first).ok()) << where;
        model = it->second;
        trace += absl::StrCat("restore snapshot ", it->first, "\n");
      }
      if (!model_snapshots.empty() && gen.Chance(1)) {
        auto it = model_snapshots.begin();
        ASSERT_TRUE(sm().DeleteSnapshot(it->first).ok()) << where;
        trace += absl::StrCat("delete snapshot ", it->first, "\n");
        model_snapshots.erase(it);
      }
      if (GetParam().durable && gen.Chance(3)) {
        bool crash = gen.Chance(50);
        ASSERT_TRUE((crash ? store_->CrashAndReopen() : store_->Reopen()).ok()) << where;
        trace += crash ? "crash and reopen\n" : "reopen\n";
      }
      if (gen.Chance(3)) {
        // A batch that does not start at applied + 1 must change nothing.
        uint64_t wrong = model.applied + 2 + gen.Below(3);
        if (gen.Chance(50) && model.applied > 0) wrong = model.applied;
        absl::StatusOr<std::vector<ApplyResult>> r =
            sm().Apply({ApplyItem::Of(wrong, PutCmd("a", "never"))});
        ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << where;
      }

      // The batch.
      std::vector<ApplyItem> batch;
      for (uint64_t n = 1 + gen.Below(6); n > 0; --n) {
        uint64_t index = model.applied + 1 + batch.size();
        uint64_t kind = gen.Below(100);
        if (kind < 8) {
          batch.push_back(ApplyItem::Noop(index));
        } else if (kind < 11) {
          batch.push_back(ApplyItem{index, std::nullopt, absl::InvalidArgumentError("garbage")});
        } else {
          batch.push_back(ApplyItem::Of(index, gen.MakeCommand(model)));
        }
      }
      std::string batch_text;
      for (const ApplyItem& it : batch) {
        absl::StrAppend(&batch_text, "  @", it.index, " ",
                        it.command ? Describe(*it.command)
                                   : (it.decode_error.ok() ? "noop" : "undecodable"),
                        "\n");
      }
      trace = absl::StrCat("batch at step ", step, ":\n", batch_text);

      absl::StatusOr<std::vector<ApplyResult>> got = sm().Apply(batch);
      ASSERT_TRUE(got.ok()) << got.status() << "\n" << where;
      ASSERT_EQ(got->size(), batch.size()) << where;
      model.written.clear();
      for (size_t i = 0; i < batch.size(); ++i) {
        ApplyResult want = model.Apply(batch[i]);
        ASSERT_TRUE(SameResult((*got)[i], want))
            << "item " << i << "\n got: " << Describe((*got)[i]) << "\nwant: " << Describe(want)
            << "\n" << trace;
      }
      ASSERT_EQ(sm().last_applied_versions(), model.written) << "the batch's events\n" << trace;
      ASSERT_EQ(sm().applied_index(), model.applied) << trace;
      ASSERT_EQ(sm().revision(), model.revision) << trace;

      ASSERT_EQ(sm().compact_revision(), model.compacted) << trace;

      // Random reads, now and in the past, a history and, every few batches, the whole state.
      RangeRequest read = gen.Range();
      absl::StatusOr<RangeResponse> r = sm().Range(read);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(*r, model.Range(read, model.revision)) << Describe(read) << "\n" << trace;
      read = gen.Range();
      read.revision = gen.Revision(model);
      r = sm().Range(read);
      absl::StatusOr<RangeResponse> want_read = model.Read(read);
      ASSERT_EQ(r.status().code(), want_read.status().code()) << Describe(read) << "\n" << trace;
      if (r.ok()) {
        ASSERT_EQ(*r, *want_read) << Describe(read) << "\n" << trace;
      }
      auto [hkey, hend] = gen.KeyRange();
      const int64_t from = gen.Revision(model);
      std::vector<KeyValue> history;
      absl::Status hs = sm().History(hkey, hend, from, [&](const KeyValue& kv) {
        history.push_back(kv);
        return true;
      });
      absl::StatusOr<std::vector<KeyValue>> want_history = model.History(hkey, hend, from);
      ASSERT_EQ(hs.code(), want_history.status().code()) << hs << "\n" << trace;
      if (hs.ok()) {
        ASSERT_EQ(history, *want_history)
            << "history of " << Describe(Rng(hkey, hend)) << " from " << from << "\n" << trace;
      }
      if (step % 10 == 9 || step == kBatchesPerSeed - 1) {
        std::vector<KeyValue> want;
        for (const auto& [k, kv] : model.kvs) want.push_back(kv);
        ASSERT_EQ(All(), want) << trace;
      }
    }
  }
}

TEST_P(StateMachineConformanceTest, HashKVIsTheSameForTheSameStateInEveryImplementation) {
  absl::StatusOr<uint32_t> empty = sm().HashKV(0);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, 0u) << "no pair: nothing hashed";
  ApplyOne(PutCmd("a", "1"));
  ApplyOne(PutCmd("b", std::string("\0x", 2)));
  const uint32_t two = *sm().HashKV(0);
  EXPECT_NE(two, *empty);
  // Pinned: every implementation hashes the same state to the same value (replicas compare).
  // 0x0460d36d is CRC-32C of the encoding HashState documents for a=1 (2,2,1), b="\0x"
  // (3,3,1), computed apart from this code.
  EXPECT_EQ(two, 0x0460d36du) << std::hex << two;
  ApplyOne(PutCmd("a", "1"));  // the same value again: a new mod_revision and version
  const uint32_t rewritten = *sm().HashKV(0);
  EXPECT_NE(rewritten, two);
  ApplyOne(DelCmd("b"));
  EXPECT_NE(*sm().HashKV(0), rewritten);
  EXPECT_EQ(*sm().HashKV(0), *sm().HashKV(0)) << "reading does not change it";
}

}  // namespace
}  // namespace testing
}  // namespace amaters::kv
