#include "server/etcd/convert.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/kv/command.h"
#include "engine/kv/memory_state_machine.h"
#include "engine/kv/state_machine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/etcd/rpc.pb.h"

namespace amaters::server::etcd {
namespace {

using ::testing::HasSubstr;
using RangePb = etcdserverpb::RangeRequest;

const Limits kLimits{/*max_key_bytes=*/8, /*max_value_bytes=*/16, /*max_txn_ops=*/kv::kMaxTxnOps};

// The status is kInvalidArgument with exactly etcd's message.
void ExpectEtcdError(const absl::Status& s, const char* message) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), message) << s;
}

void ExpectInvalid(const absl::Status& s, const std::string& fragment) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(fragment)) << s;
}

etcdserverpb::PutRequest PutPb(const std::string& key, const std::string& value) {
  etcdserverpb::PutRequest p;
  p.set_key(key);
  p.set_value(value);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Put

TEST(PutToCommand, Converts) {
  etcdserverpb::PutRequest p = PutPb("k", "v");
  p.set_prev_kv(true);
  absl::StatusOr<kv::Command> c = PutToCommand(p, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->request_id, 0u);
  EXPECT_EQ(c->op, (decltype(c->op)(
                       kv::PutRequest{"k", "v", true})));
}

TEST(PutToCommand, EmptyValueIsFine) {
  EXPECT_TRUE(PutToCommand(PutPb("k", ""), kLimits).ok());
}

TEST(PutToCommand, EmptyKeyIsEtcdsError) {
  ExpectEtcdError(PutToCommand(PutPb("", "v"), kLimits).status(),
                  "etcdserver: key is not provided");
}

TEST(PutToCommand, LeaseAndIgnoreLeaseGoIntoTheCommand) {
  etcdserverpb::PutRequest p = PutPb("k", "v");
  p.set_lease(5);
  absl::StatusOr<kv::Command> c = PutToCommand(p, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(std::get<kv::PutRequest>(c->op).lease, 5);

  p.set_lease(0);
  p.set_ignore_lease(true);
  c = PutToCommand(p, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(std::get<kv::PutRequest>(c->op).ignore_lease);

  // etcd's check: ignore_lease with a lease.
  p.set_lease(5);
  ExpectEtcdError(PutToCommand(p, kLimits).status(), "etcdserver: lease is provided");
}

TEST(PutToCommand, IgnoreValueIsRefused) {
  etcdserverpb::PutRequest p = PutPb("k", "");
  p.set_ignore_value(true);
  ExpectInvalid(PutToCommand(p, kLimits).status(), "ignore_value is not supported");
  p.set_value("v");
  ExpectEtcdError(PutToCommand(p, kLimits).status(), "etcdserver: value is provided");
}

TEST(PutToCommand, SizesAreBounded) {
  EXPECT_TRUE(PutToCommand(PutPb(std::string(8, 'k'), std::string(16, 'v')), kLimits).ok());
  absl::Status s = PutToCommand(PutPb(std::string(9, 'k'), "v"), kLimits).status();
  ExpectInvalid(s, "put: key is 9 bytes, more than the limit of 8 bytes (max_key_bytes)");
  s = PutToCommand(PutPb("k", std::string(17, 'v')), kLimits).status();
  ExpectInvalid(s, "put: value is 17 bytes, more than the limit of 16 bytes (max_value_bytes)");
}

TEST(Limits, DefaultsAreSane) {
  Limits l;
  EXPECT_EQ(l.max_key_bytes, kDefaultMaxKeyBytes);
  EXPECT_EQ(l.max_value_bytes, kDefaultMaxValueBytes);
  EXPECT_EQ(l.max_txn_ops, kv::kMaxTxnOps);
  EXPECT_TRUE(PutToCommand(PutPb(std::string(1000, 'k'), std::string(1 << 20, 'v')), l).ok());
}

// ---------------------------------------------------------------------------------------------
// DeleteRange

TEST(DeleteToCommand, Converts) {
  etcdserverpb::DeleteRangeRequest d;
  d.set_key("a");
  d.set_range_end("c");
  d.set_prev_kv(true);
  absl::StatusOr<kv::Command> c = DeleteToCommand(d, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  const auto* del = std::get_if<kv::DeleteRangeRequest>(&c->op);
  ASSERT_NE(del, nullptr);
  EXPECT_EQ(*del, (kv::DeleteRangeRequest{"a", "c", true}));
}

TEST(DeleteToCommand, Refusals) {
  etcdserverpb::DeleteRangeRequest d;
  ExpectEtcdError(DeleteToCommand(d, kLimits).status(), "etcdserver: key is not provided");
  d.set_key("a");
  d.set_range_end(std::string(9, 'z'));
  ExpectInvalid(DeleteToCommand(d, kLimits).status(),
                "delete_range: range_end is 9 bytes, more than the limit of 8 bytes");
}

// ---------------------------------------------------------------------------------------------
// Range: conversion

RangePb Range(const std::string& key, const std::string& end = "") {
  RangePb r;
  r.set_key(key);
  r.set_range_end(end);
  return r;
}

TEST(RangeToRequest, Converts) {
  RangePb r = Range("a", "z");
  r.set_limit(3);
  r.set_keys_only(true);
  r.set_count_only(true);
  r.set_serializable(true);
  r.set_revision(7);  // checked by the state machine against what it holds
  absl::StatusOr<kv::RangeRequest> q = RangeToRequest(r, kLimits);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, (kv::RangeRequest{"a", "z", 3, true, true, 7}));
}

TEST(RangeToRequest, Refusals) {
  ExpectEtcdError(RangeToRequest(Range(""), kLimits).status(), "etcdserver: key is not provided");
  ExpectInvalid(RangeToRequest(Range(std::string(9, 'k')), kLimits).status(),
                "range: key is 9 bytes, more than the limit of 8 bytes (max_key_bytes)");

  RangePb r = Range("a");
  r.set_sort_order(static_cast<RangePb::SortOrder>(3));
  ExpectInvalid(RangeToRequest(r, kLimits).status(), "unknown sort_order 3");
  r = Range("a");
  r.set_sort_target(static_cast<RangePb::SortTarget>(9));
  ExpectInvalid(RangeToRequest(r, kLimits).status(), "unknown sort_target 9");
}

// What is fetched for each sort (etcd's applierV3backend.Range).
TEST(RangeToRequest, SortDecidesTheFetchLimit) {
  struct Case {
    RangePb::SortOrder order;
    RangePb::SortTarget target;
    int64_t limit;
    int64_t fetched;
  };
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  const Case cases[] = {
      {RangePb::NONE, RangePb::KEY, 3, 3},          // the store's order
      {RangePb::ASCEND, RangePb::KEY, 3, 3},        // the same order
      {RangePb::DESCEND, RangePb::KEY, 3, 0},       // everything, then sort
      {RangePb::ASCEND, RangePb::VERSION, 3, 0},
      {RangePb::DESCEND, RangePb::VALUE, 3, 0},
      {RangePb::NONE, RangePb::MOD, 3, 4},          // etcd: limit + 1, then sort ASCEND
      {RangePb::NONE, RangePb::CREATE, 0, 0},
      {RangePb::NONE, RangePb::CREATE, -2, -2},
      {RangePb::NONE, RangePb::VERSION, kMax, 0},   // limit + 1 would overflow: no limit
  };
  for (const Case& c : cases) {
    RangePb r = Range("a", "z");
    r.set_sort_order(c.order);
    r.set_sort_target(c.target);
    r.set_limit(c.limit);
    absl::StatusOr<kv::RangeRequest> q = RangeToRequest(r, kLimits);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_EQ(q->limit, c.fetched) << r.ShortDebugString();
  }
}

TEST(RangeToRequest, SortByValueFetchesValuesEvenForKeysOnly) {
  RangePb r = Range("a", "z");
  r.set_keys_only(true);
  EXPECT_TRUE(RangeToRequest(r, kLimits)->keys_only);
  r.set_sort_target(RangePb::VALUE);
  r.set_sort_order(RangePb::DESCEND);
  EXPECT_FALSE(RangeToRequest(r, kLimits)->keys_only);
}

// ---------------------------------------------------------------------------------------------
// Range: sorting against a model of etcd

kv::KeyValue Kv(const std::string& key, const std::string& value, int64_t create, int64_t mod,
                int64_t version) {
  return kv::KeyValue{key, value, create, mod, version};
}

TEST(SortAndLimit, DescendByModWithLimit) {
  RangePb r = Range("a", "z");
  r.set_sort_order(RangePb::DESCEND);
  r.set_sort_target(RangePb::MOD);
  r.set_limit(2);
  kv::RangeResponse resp;
  resp.count = 3;
  resp.kvs = {Kv("a", "1", 2, 5, 2), Kv("b", "2", 3, 3, 1), Kv("c", "3", 4, 7, 1)};
  SortAndLimit(r, &resp);
  ASSERT_EQ(resp.kvs.size(), 2u);
  EXPECT_EQ(resp.kvs[0].key, "c");
  EXPECT_EQ(resp.kvs[1].key, "a");
  EXPECT_TRUE(resp.more);
  EXPECT_EQ(resp.count, 3);  // the range's size, not the kvs returned
}

TEST(SortAndLimit, RevisionFiltersFetchEverythingThenPruneBeforeTheLimit) {
  // etcd's concurrency.Mutex: the newest key created before mine (WithLastCreate,
  // WithMaxCreateRev).
  RangePb r = Range("lock/", "lock0");
  r.set_sort_order(RangePb::DESCEND);
  r.set_sort_target(RangePb::CREATE);
  r.set_limit(1);
  r.set_max_create_revision(6);
  absl::StatusOr<kv::RangeRequest> q = RangeToRequest(r, kLimits);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->limit, 0) << "filters need every key of the range";
  kv::RangeResponse resp;
  resp.count = 3;
  resp.kvs = {Kv("lock/a", "", 7, 7, 1), Kv("lock/b", "", 3, 3, 1), Kv("lock/c", "", 5, 5, 1)};
  SortAndLimit(r, &resp);
  ASSERT_EQ(resp.kvs.size(), 1u);
  EXPECT_EQ(resp.kvs[0].key, "lock/c");
  EXPECT_TRUE(resp.more);
  EXPECT_EQ(resp.count, 3) << "etcd counts the range before filtering";

  for (int field = 0; field < 4; ++field) {
    RangePb f = Range("a", "z");
    if (field == 0) f.set_min_mod_revision(4);
    if (field == 1) f.set_max_mod_revision(4);
    if (field == 2) f.set_min_create_revision(4);
    if (field == 3) f.set_max_create_revision(4);
    kv::RangeResponse all;
    all.kvs = {Kv("a", "", 2, 5, 2), Kv("b", "", 4, 4, 1), Kv("c", "", 5, 6, 1)};
    SortAndLimit(f, &all);
    std::string keys;
    for (const kv::KeyValue& kv : all.kvs) keys += kv.key;
    const char* want[] = {"abc", "b", "bc", "ab"};
    EXPECT_EQ(keys, want[field]) << "filter " << field;
  }
}

TEST(SortAndLimit, DefaultOrderKeepsTheStoresMoreFlag) {
  RangePb r = Range("a", "z");
  r.set_limit(1);
  kv::RangeResponse resp;
  resp.count = 2;
  resp.more = true;
  resp.kvs = {Kv("a", "1", 2, 2, 1)};
  SortAndLimit(r, &resp);
  EXPECT_EQ(resp.kvs.size(), 1u);
  EXPECT_TRUE(resp.more);
}

TEST(SortAndLimit, KeysOnlyDropsValuesAfterSortingByValue) {
  RangePb r = Range("a", "z");
  r.set_sort_order(RangePb::ASCEND);
  r.set_sort_target(RangePb::VALUE);
  r.set_keys_only(true);
  kv::RangeResponse resp;
  resp.count = 2;
  resp.kvs = {Kv("a", "z", 2, 2, 1), Kv("b", "m", 3, 3, 1)};
  SortAndLimit(r, &resp);
  ASSERT_EQ(resp.kvs.size(), 2u);
  EXPECT_EQ(resp.kvs[0].key, "b");
  EXPECT_EQ(resp.kvs[0].value, "");
  EXPECT_EQ(resp.kvs[1].key, "a");
}

// etcd's applierV3backend.Range (etcd 3.4, etcdserver/apply.go) on the full range `all`
// (ascending by key), written from the Go code: the oracle for RangeToRequest + store +
// SortAndLimit. Ties, which etcd leaves unspecified, are broken by ascending key.
kv::RangeResponse EtcdRangeModel(const std::vector<kv::KeyValue>& all, const RangePb& r) {
  int64_t limit = r.limit();
  if (r.sort_order() != RangePb::NONE) limit = 0;  // fetch everything; sort and truncate after
  // One extra for the `more` flag (Go wraps at the maximum; we read everything there).
  if (limit > 0) limit = limit == std::numeric_limits<int64_t>::max() ? 0 : limit + 1;
  std::vector<kv::KeyValue> kvs;
  if (!r.count_only()) {
    for (const kv::KeyValue& kv : all) {
      if (limit > 0 && static_cast<int64_t>(kvs.size()) == limit) break;
      kvs.push_back(kv);
    }
  }
  RangePb::SortOrder order = r.sort_order();
  if (r.sort_target() != RangePb::KEY && order == RangePb::NONE) order = RangePb::ASCEND;
  if (order != RangePb::NONE) {
    auto attr = [&](const kv::KeyValue& kv) -> std::string {
      auto num = [](int64_t n) {  // order-preserving for the non-negative numbers used here
        std::string s = absl::StrCat(n);
        return std::string(20 - s.size(), '0') + s;
      };
      switch (r.sort_target()) {
        case RangePb::VERSION: return num(kv.version);
        case RangePb::CREATE: return num(kv.create_revision);
        case RangePb::MOD: return num(kv.mod_revision);
        case RangePb::VALUE: return kv.value;
        default: return kv.key;
      }
    };
    const bool descend = order == RangePb::DESCEND;
    std::sort(kvs.begin(), kvs.end(), [&](const kv::KeyValue& a, const kv::KeyValue& b) {
      std::string x = attr(a);
      std::string y = attr(b);
      if (x != y) return descend ? x > y : x < y;
      return a.key < b.key;
    });
  }
  kv::RangeResponse out;
  if (r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit()) {
    kvs.resize(static_cast<size_t>(r.limit()));
    out.more = true;
  }
  out.count = static_cast<int64_t>(all.size());
  for (kv::KeyValue& kv : kvs) {
    if (r.keys_only()) kv.value.clear();
  }
  out.kvs = kvs;
  return out;
}

TEST(SortAndLimit, MatchesEtcdOnRandomStoresAndRequests) {
  std::mt19937 rng(20240611);
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const int64_t kLimitsToTry[] = {-1, 0, 1, 2, 3, 5, 7, 100, std::numeric_limits<int64_t>::max()};
  int checked = 0;
  for (int store = 0; store < 30; ++store) {
    kv::MemoryStateMachine sm;
    std::vector<kv::ApplyItem> items;
    const int writes = 1 + pick(40);
    for (int i = 0; i < writes; ++i) {
      kv::Command c;
      // Few distinct values, so that sorting by value, version, create and mod has ties.
      c.op = kv::PutRequest{absl::StrCat("k", pick(12)), absl::StrCat("v", pick(4)), false};
      items.push_back(kv::ApplyItem::Of(static_cast<uint64_t>(i + 1), c));
    }
    ASSERT_TRUE(sm.Apply(items).ok());

    for (int q = 0; q < 200; ++q) {
      RangePb r;
      switch (pick(3)) {
        case 0: r = Range(absl::StrCat("k", pick(12))); break;
        case 1: r = Range("k", "l"); break;
        default: r = Range(absl::StrCat("k", pick(12)), std::string(1, '\0')); break;
      }
      r.set_limit(kLimitsToTry[pick(9)]);
      r.set_sort_order(static_cast<RangePb::SortOrder>(pick(3)));
      r.set_sort_target(static_cast<RangePb::SortTarget>(pick(5)));
      r.set_keys_only(pick(3) == 0);
      r.set_count_only(pick(5) == 0);
      SCOPED_TRACE(r.ShortDebugString());

      absl::StatusOr<kv::RangeResponse> all =
          sm.Range(kv::RangeRequest{r.key(), r.range_end(), 0, false, false});
      ASSERT_TRUE(all.ok()) << all.status();
      kv::RangeResponse want = EtcdRangeModel(all->kvs, r);

      absl::StatusOr<kv::RangeRequest> req = RangeToRequest(r, Limits{});
      ASSERT_TRUE(req.ok()) << req.status();
      absl::StatusOr<kv::RangeResponse> got = sm.Range(*req);
      ASSERT_TRUE(got.ok()) << got.status();
      SortAndLimit(r, &*got);
      EXPECT_EQ(got->kvs, want.kvs) << kv::Describe(*got) << "\nwant " << kv::Describe(want);
      EXPECT_EQ(got->more, want.more);
      EXPECT_EQ(got->count, want.count);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 30 * 200);
}

// ---------------------------------------------------------------------------------------------
// Txn

etcdserverpb::Compare* AddCompare(etcdserverpb::TxnRequest* t, const std::string& key,
                                  etcdserverpb::Compare::CompareTarget target,
                                  etcdserverpb::Compare::CompareResult result) {
  etcdserverpb::Compare* c = t->add_compare();
  c->set_key(key);
  c->set_target(target);
  c->set_result(result);
  return c;
}

TEST(TxnToCommand, ConvertsComparesAndOps) {
  etcdserverpb::TxnRequest t;
  AddCompare(&t, "a", etcdserverpb::Compare::VALUE, etcdserverpb::Compare::EQUAL)
      ->set_value("x");
  AddCompare(&t, "b", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::GREATER)
      ->set_version(2);
  AddCompare(&t, "c", etcdserverpb::Compare::CREATE, etcdserverpb::Compare::LESS)
      ->set_create_revision(3);
  etcdserverpb::Compare* mod =
      AddCompare(&t, "d", etcdserverpb::Compare::MOD, etcdserverpb::Compare::NOT_EQUAL);
  mod->set_mod_revision(4);
  mod->set_range_end("f");
  // A target_union member that does not match the target: the operand is 0, as in etcd.
  AddCompare(&t, "e", etcdserverpb::Compare::VERSION, etcdserverpb::Compare::EQUAL)
      ->set_mod_revision(9);

  *t.add_success()->mutable_request_put() = PutPb("a", "y");
  RangePb* range = t.add_success()->mutable_request_range();
  range->set_key("a");
  range->set_range_end("z");
  range->set_limit(2);
  etcdserverpb::DeleteRangeRequest* del = t.add_failure()->mutable_request_delete_range();
  del->set_key("q");
  del->set_prev_kv(true);

  absl::StatusOr<kv::Command> c = TxnToCommand(t, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  const auto* txn = std::get_if<kv::TxnRequest>(&c->op);
  ASSERT_NE(txn, nullptr);
  using R = kv::Compare::Result;
  using T = kv::Compare::Target;
  ASSERT_EQ(txn->compare.size(), 5u);
  EXPECT_EQ(txn->compare[0], (kv::Compare{R::kEqual, T::kValue, "a", "", 0, "x"}));
  EXPECT_EQ(txn->compare[1], (kv::Compare{R::kGreater, T::kVersion, "b", "", 2, ""}));
  EXPECT_EQ(txn->compare[2], (kv::Compare{R::kLess, T::kCreate, "c", "", 3, ""}));
  EXPECT_EQ(txn->compare[3], (kv::Compare{R::kNotEqual, T::kMod, "d", "f", 4, ""}));
  EXPECT_EQ(txn->compare[4], (kv::Compare{R::kEqual, T::kVersion, "e", "", 0, ""}));
  ASSERT_EQ(txn->success.size(), 2u);
  EXPECT_EQ(std::get<kv::PutRequest>(txn->success[0]), (kv::PutRequest{"a", "y", false}));
  EXPECT_EQ(std::get<kv::RangeRequest>(txn->success[1]),
            (kv::RangeRequest{"a", "z", 2, false, false}));
  ASSERT_EQ(txn->failure.size(), 1u);
  EXPECT_EQ(std::get<kv::DeleteRangeRequest>(txn->failure[0]),
            (kv::DeleteRangeRequest{"q", "", true}));
}

TEST(TxnToCommand, EmptyTxnIsFine) {
  EXPECT_TRUE(TxnToCommand(etcdserverpb::TxnRequest(), kLimits).ok());
}

TEST(TxnToCommand, TooManyOps) {
  for (int part = 0; part < 3; ++part) {
    etcdserverpb::TxnRequest t;
    for (size_t i = 0; i < kv::kMaxTxnOps; ++i) {
      std::string key = absl::StrCat("k", i);
      if (part == 0) AddCompare(&t, key, etcdserverpb::Compare::VERSION, {});
      if (part == 1) t.add_success()->mutable_request_range()->set_key(key);
      if (part == 2) t.add_failure()->mutable_request_range()->set_key(key);
    }
    EXPECT_TRUE(TxnToCommand(t, kLimits).ok()) << part;
    // One more, and even an op that is invalid otherwise: the count is checked first.
    if (part == 0) AddCompare(&t, "", etcdserverpb::Compare::LEASE, {});
    if (part == 1) t.add_success();
    if (part == 2) t.add_failure();
    ExpectEtcdError(TxnToCommand(t, kLimits).status(),
                    "etcdserver: too many operations in txn request");
  }
}

TEST(TxnToCommand, MaxTxnOpsIsConfigurableButCappedAtTheStateMachines) {
  etcdserverpb::TxnRequest t;
  for (int i = 0; i < 3; ++i) t.add_success()->mutable_request_range()->set_key("k");
  Limits two = kLimits;
  two.max_txn_ops = 2;
  ExpectEtcdError(TxnToCommand(t, two).status(), "etcdserver: too many operations in txn request");

  Limits huge = kLimits;
  huge.max_txn_ops = 100000;
  etcdserverpb::TxnRequest big;
  for (size_t i = 0; i <= kv::kMaxTxnOps; ++i) {
    big.add_success()->mutable_request_range()->set_key("k");
  }
  ExpectEtcdError(TxnToCommand(big, huge).status(),
                  "etcdserver: too many operations in txn request");
}

TEST(TxnToCommand, CompareRefusals) {
  etcdserverpb::TxnRequest t;
  AddCompare(&t, "", etcdserverpb::Compare::VERSION, {});
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: key is not provided");

  t.Clear();
  AddCompare(&t, "k", etcdserverpb::Compare::LEASE, {})->set_lease(1);
  absl::StatusOr<kv::Command> lease_cmp = TxnToCommand(t, kLimits);
  ASSERT_TRUE(lease_cmp.ok()) << lease_cmp.status();
  EXPECT_EQ(std::get<kv::TxnRequest>(lease_cmp->op).compare.at(0).target,
            kv::Compare::Target::kLease);
  EXPECT_EQ(std::get<kv::TxnRequest>(lease_cmp->op).compare.at(0).number, 1);

  t.Clear();
  AddCompare(&t, "k", static_cast<etcdserverpb::Compare::CompareTarget>(7), {});
  ExpectInvalid(TxnToCommand(t, kLimits).status(), "unknown compare target 7");

  t.Clear();
  AddCompare(&t, "k", etcdserverpb::Compare::MOD,
             static_cast<etcdserverpb::Compare::CompareResult>(9));
  ExpectInvalid(TxnToCommand(t, kLimits).status(), "unknown compare result 9");

  t.Clear();
  AddCompare(&t, "k", etcdserverpb::Compare::VALUE, {})->set_value(std::string(17, 'v'));
  ExpectInvalid(TxnToCommand(t, kLimits).status(),
                "txn compare[0]: value is 17 bytes, more than the limit of 16 bytes");

  t.Clear();
  AddCompare(&t, "k", etcdserverpb::Compare::VALUE, {})->set_range_end(std::string(9, 'z'));
  ExpectInvalid(TxnToCommand(t, kLimits).status(), "txn compare[0]: range_end is 9 bytes");
}

TEST(TxnToCommand, OpRefusals) {
  etcdserverpb::TxnRequest t;
  t.add_success();
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: key not found");

  t.Clear();
  t.add_failure()->mutable_request_txn()->add_success()->mutable_request_put()->set_key("k");
  ExpectInvalid(TxnToCommand(t, kLimits).status(),
                "txn failure[0]: nested transactions are not supported");

  t.Clear();
  t.add_success()->mutable_request_put()->set_key("");
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: key is not provided");

  t.Clear();
  t.add_success()->mutable_request_delete_range()->set_key("");
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: key is not provided");

  t.Clear();
  t.add_success()->mutable_request_range()->set_key("");
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: key is not provided");

  t.Clear();
  etcdserverpb::PutRequest* p = t.add_success()->mutable_request_put();
  *p = PutPb("k", "v");
  p->set_ignore_lease(true);
  p->set_lease(3);
  ExpectEtcdError(TxnToCommand(t, kLimits).status(), "etcdserver: lease is provided");

  t.Clear();
  RangePb* r = t.add_success()->mutable_request_range();
  r->set_key("k");
  r->set_revision(4);
  ExpectInvalid(TxnToCommand(t, kLimits).status(),
                "txn success[0]: a revision in a txn range is not supported");

  t.Clear();
  t.add_success()->mutable_request_put()->set_key(std::string(9, 'k'));
  ExpectInvalid(TxnToCommand(t, kLimits).status(), "txn success[0]: key is 9 bytes");
}

TEST(TxnToCommand, DuplicateKeys) {
  auto put = [](etcdserverpb::RequestOp* op, const std::string& key) {
    *op->mutable_request_put() = PutPb(key, "v");
  };
  auto del = [](etcdserverpb::RequestOp* op, const std::string& key, const std::string& end) {
    op->mutable_request_delete_range()->set_key(key);
    op->mutable_request_delete_range()->set_range_end(end);
  };

  etcdserverpb::TxnRequest t;
  put(t.add_success(), "a");
  put(t.add_success(), "a");
  ExpectEtcdError(TxnToCommand(t, kLimits).status(),
                  "etcdserver: duplicate key given in txn request");

  t.Clear();
  del(t.add_failure(), "a", "c");
  put(t.add_failure(), "b");
  ExpectEtcdError(TxnToCommand(t, kLimits).status(),
                  "etcdserver: duplicate key given in txn request");

  t.Clear();
  put(t.add_success(), "x");
  del(t.add_success(), "b", std::string(1, '\0'));  // every key >= "b"
  ExpectEtcdError(TxnToCommand(t, kLimits).status(),
                  "etcdserver: duplicate key given in txn request");

  // Different branches never run together; reads and deletes may overlap freely.
  t.Clear();
  put(t.add_success(), "a");
  put(t.add_failure(), "a");
  del(t.add_success(), "b", "c");
  del(t.add_success(), "b", "d");
  t.add_success()->mutable_request_range()->set_key("a");
  EXPECT_TRUE(TxnToCommand(t, kLimits).ok());

  // The interval is half-open.
  t.Clear();
  del(t.add_success(), "a", "c");
  put(t.add_success(), "c");
  EXPECT_TRUE(TxnToCommand(t, kLimits).ok());
}

TEST(SortAndLimit, TxnSortsTheRangesOfTheBranchThatRan) {
  etcdserverpb::TxnRequest t;
  *t.add_success()->mutable_request_put() = PutPb("p", "v");
  RangePb* r = t.add_success()->mutable_request_range();
  *r = Range("a", "z");
  r->set_sort_order(RangePb::DESCEND);
  r->set_limit(1);
  // The failure branch asks for a different order: it must not be used.
  RangePb* other = t.add_failure()->mutable_request_range();
  *other = Range("a", "z");

  absl::StatusOr<kv::Command> c = TxnToCommand(t, kLimits);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(std::get<kv::RangeRequest>(std::get<kv::TxnRequest>(c->op).success[1]).limit, 0);

  kv::RangeResponse range;
  range.count = 2;
  range.kvs = {Kv("a", "1", 2, 2, 1), Kv("b", "2", 3, 3, 1)};
  kv::TxnResponse resp;
  resp.succeeded = true;
  resp.responses = {kv::PutResponse{}, range};
  SortAndLimit(t, &resp);
  const auto& sorted = std::get<kv::RangeResponse>(resp.responses[1]);
  ASSERT_EQ(sorted.kvs.size(), 1u);
  EXPECT_EQ(sorted.kvs[0].key, "b");
  EXPECT_TRUE(sorted.more);
  EXPECT_EQ(sorted.count, 2);

  kv::TxnResponse failed;
  failed.succeeded = false;
  failed.responses = {range};
  SortAndLimit(t, &failed);
  EXPECT_EQ(std::get<kv::RangeResponse>(failed.responses[0]), range);
}

// ---------------------------------------------------------------------------------------------
// Responses

const HeaderInfo kInfo{/*cluster_id=*/0xc1, /*member_id=*/0x3e, /*raft_term=*/7};

void ExpectHeader(const etcdserverpb::ResponseHeader& h, int64_t revision) {
  EXPECT_EQ(h.cluster_id(), 0xc1u);
  EXPECT_EQ(h.member_id(), 0x3eu);
  EXPECT_EQ(h.raft_term(), 7u);
  EXPECT_EQ(h.revision(), revision);
}

TEST(ToProto, KeyValue) {
  mvccpb::KeyValue out;
  out.set_lease(9);  // cleared
  ToProto(Kv("k", "v", 2, 3, 4), &out);
  EXPECT_EQ(out.key(), "k");
  EXPECT_EQ(out.value(), "v");
  EXPECT_EQ(out.create_revision(), 2);
  EXPECT_EQ(out.mod_revision(), 3);
  EXPECT_EQ(out.version(), 4);
  EXPECT_EQ(out.lease(), 0);
}

TEST(ToProto, Put) {
  kv::PutResponse r;
  r.header.revision = 5;
  etcdserverpb::PutResponse out;
  ToProto(r, kInfo, &out);
  ExpectHeader(out.header(), 5);
  EXPECT_FALSE(out.has_prev_kv());

  r.prev_kv = Kv("k", "old", 2, 2, 1);
  ToProto(r, kInfo, &out);
  ASSERT_TRUE(out.has_prev_kv());
  EXPECT_EQ(out.prev_kv().value(), "old");
}

TEST(ToProto, Range) {
  kv::RangeResponse r;
  r.header.revision = 9;
  r.kvs = {Kv("a", "1", 2, 2, 1), Kv("b", "2", 3, 4, 2)};
  r.more = true;
  r.count = 5;
  etcdserverpb::RangeResponse out;
  ToProto(r, kInfo, &out);
  ExpectHeader(out.header(), 9);
  ASSERT_EQ(out.kvs_size(), 2);
  EXPECT_EQ(out.kvs(1).key(), "b");
  EXPECT_EQ(out.kvs(1).mod_revision(), 4);
  EXPECT_TRUE(out.more());
  EXPECT_EQ(out.count(), 5);
}

TEST(ToProto, DeleteRange) {
  kv::DeleteRangeResponse r;
  r.header.revision = 3;
  r.deleted = 2;
  r.prev_kvs = {Kv("a", "1", 2, 2, 1), Kv("b", "2", 3, 3, 1)};
  etcdserverpb::DeleteRangeResponse out;
  ToProto(r, kInfo, &out);
  ExpectHeader(out.header(), 3);
  EXPECT_EQ(out.deleted(), 2);
  ASSERT_EQ(out.prev_kvs_size(), 2);
  EXPECT_EQ(out.prev_kvs(0).key(), "a");
}

TEST(ToProto, TxnNestedHeadersCarryOnlyTheirRevision) {
  kv::TxnResponse r;
  r.header.revision = 8;
  r.succeeded = true;
  kv::RangeResponse range;
  range.header.revision = 7;
  range.kvs = {Kv("a", "1", 2, 2, 1)};
  range.count = 1;
  kv::PutResponse put;
  put.header.revision = 8;
  kv::DeleteRangeResponse del;
  del.header.revision = 8;
  del.deleted = 1;
  r.responses = {range, put, del};

  etcdserverpb::TxnResponse out;
  ToProto(r, kInfo, &out);
  ExpectHeader(out.header(), 8);
  EXPECT_TRUE(out.succeeded());
  ASSERT_EQ(out.responses_size(), 3);
  ASSERT_EQ(out.responses(0).response_case(), etcdserverpb::ResponseOp::kResponseRange);
  const etcdserverpb::RangeResponse& nested = out.responses(0).response_range();
  EXPECT_EQ(nested.header().revision(), 7);
  EXPECT_EQ(nested.header().member_id(), 0u);
  EXPECT_EQ(nested.header().cluster_id(), 0u);
  EXPECT_EQ(nested.header().raft_term(), 0u);
  EXPECT_EQ(nested.kvs(0).key(), "a");
  EXPECT_EQ(out.responses(1).response_case(), etcdserverpb::ResponseOp::kResponsePut);
  EXPECT_EQ(out.responses(1).response_put().header().revision(), 8);
  EXPECT_EQ(out.responses(2).response_case(), etcdserverpb::ResponseOp::kResponseDeleteRange);
  EXPECT_EQ(out.responses(2).response_delete_range().deleted(), 1);
}

// End to end through the in-memory state machine: etcd request -> command -> apply -> etcd
// response.
TEST(Convert, TxnRoundTripThroughTheStateMachine) {
  kv::MemoryStateMachine sm;
  absl::StatusOr<kv::Command> put = PutToCommand(PutPb("a", "1"), kLimits);
  ASSERT_TRUE(put.ok());
  std::vector<kv::ApplyItem> items = {kv::ApplyItem::Of(1, *put)};

  etcdserverpb::TxnRequest t;
  AddCompare(&t, "a", etcdserverpb::Compare::VALUE, etcdserverpb::Compare::EQUAL)
      ->set_value("1");
  *t.add_success()->mutable_request_put() = PutPb("b", "2");
  RangePb* r = t.add_success()->mutable_request_range();
  *r = Range("a", "z");
  r->set_sort_order(RangePb::DESCEND);
  absl::StatusOr<kv::Command> txn = TxnToCommand(t, kLimits);
  ASSERT_TRUE(txn.ok()) << txn.status();
  items.push_back(kv::ApplyItem::Of(2, *txn));

  absl::StatusOr<std::vector<kv::ApplyResult>> results = sm.Apply(items);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 2u);
  ASSERT_TRUE((*results)[1].status.ok()) << (*results)[1].status;
  kv::TxnResponse resp = std::get<kv::TxnResponse>(*(*results)[1].response);
  SortAndLimit(t, &resp);
  etcdserverpb::TxnResponse out;
  ToProto(resp, kInfo, &out);
  ExpectHeader(out.header(), 3);
  EXPECT_TRUE(out.succeeded());
  ASSERT_EQ(out.responses_size(), 2);
  const etcdserverpb::RangeResponse& range = out.responses(1).response_range();
  ASSERT_EQ(range.kvs_size(), 2);
  EXPECT_EQ(range.kvs(0).key(), "b");
  EXPECT_EQ(range.kvs(1).key(), "a");
}

}  // namespace
}  // namespace amaters::server::etcd
