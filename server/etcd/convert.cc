#include "server/etcd/convert.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/base/check.h"
#include "engine/kv/apply.h"
#include "engine/kv/command.h"

namespace amaters::server::etcd {
namespace {

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

// Our own errors get the location of the offending part ("txn success[2]: ...") first; etcd's
// fixed messages never do (clients compare them as strings).
absl::Status Unsupported(absl::string_view where, absl::string_view what,
                         absl::string_view detail) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what, ": ", detail));
}

absl::Status CheckSize(absl::string_view where, absl::string_view field, size_t size,
                       uint64_t limit, absl::string_view limit_name) {
  if (size <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", field, " is ", size,
                                                 " bytes, more than the limit of ", limit,
                                                 " bytes (", limit_name, ")"));
}

absl::Status CheckKeys(absl::string_view where, const std::string& key,
                       const std::string& range_end, const Limits& limits) {
  absl::Status s = CheckSize(where, "key", key.size(), limits.max_key_bytes, "max_key_bytes");
  if (!s.ok()) return s;
  return CheckSize(where, "range_end", range_end.size(), limits.max_key_bytes, "max_key_bytes");
}

uint64_t MaxTxnOps(const Limits& limits) {
  return std::min<uint64_t>(limits.max_txn_ops, kv::kMaxTxnOps);
}

// ---------------------------------------------------------------------------------------------
// Requests

absl::StatusOr<kv::PutRequest> ConvertPut(const etcdserverpb::PutRequest& p,
                                          absl::string_view where, const Limits& limits) {
  // etcd's checkPutRequest, in its order.
  if (p.key().empty()) return Invalid(kErrEmptyKey);
  if (p.ignore_value() && !p.value().empty()) return Invalid(kErrValueProvided);
  if (p.ignore_lease() && p.lease() != 0) return Invalid(kErrLeaseProvided);
  // Ours.
  if (p.ignore_value()) {
    return Unsupported(where, kErrIgnoreValueNotSupported, "send the value to write");
  }
  absl::Status s = CheckSize(where, "key", p.key().size(), limits.max_key_bytes, "max_key_bytes");
  if (!s.ok()) return s;
  s = CheckSize(where, "value", p.value().size(), limits.max_value_bytes, "max_value_bytes");
  if (!s.ok()) return s;
  kv::PutRequest out;
  out.key = p.key();
  out.value = p.value();
  out.prev_kv = p.prev_kv();
  out.lease = p.lease();
  out.ignore_lease = p.ignore_lease();
  return out;
}

absl::StatusOr<kv::DeleteRangeRequest> ConvertDelete(const etcdserverpb::DeleteRangeRequest& d,
                                                     absl::string_view where,
                                                     const Limits& limits) {
  if (d.key().empty()) return Invalid(kErrEmptyKey);
  absl::Status s = CheckKeys(where, d.key(), d.range_end(), limits);
  if (!s.ok()) return s;
  kv::DeleteRangeRequest out;
  out.key = d.key();
  out.range_end = d.range_end();
  out.prev_kv = d.prev_kv();
  return out;
}

// What a RangeRequest's sort_order and sort_target ask of the store's ascending-by-key kvs.
enum class SortPlan : uint8_t {
  kKeyOrder,    // (NONE, KEY) or (ASCEND, KEY): the store's order; nothing to do
  kFetchAll,    // ASCEND/DESCEND by something else, or DESCEND by key: fetch all, sort, truncate
  kNoneQuirk,   // (NONE, not KEY): etcd fetches limit + 1 by key order, then sorts ASCEND
};

SortPlan PlanSort(const etcdserverpb::RangeRequest& r) {
  const bool by_key = r.sort_target() == etcdserverpb::RangeRequest::KEY;
  switch (r.sort_order()) {
    case etcdserverpb::RangeRequest::NONE:
      return by_key ? SortPlan::kKeyOrder : SortPlan::kNoneQuirk;
    case etcdserverpb::RangeRequest::ASCEND:
      return by_key ? SortPlan::kKeyOrder : SortPlan::kFetchAll;
    default:
      return SortPlan::kFetchAll;
  }
}

bool HasRevisionFilter(const etcdserverpb::RangeRequest& r) {
  return r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
         r.min_create_revision() != 0 || r.max_create_revision() != 0;
}

// etcd's pruneKVs for each filter that is set (0 = not set).
void FilterRevisions(const etcdserverpb::RangeRequest& r, std::vector<kv::KeyValue>* kvs) {
  if (!HasRevisionFilter(r)) return;
  auto outside = [&r](const kv::KeyValue& kv) {
    return (r.max_mod_revision() != 0 && kv.mod_revision > r.max_mod_revision()) ||
           (r.min_mod_revision() != 0 && kv.mod_revision < r.min_mod_revision()) ||
           (r.max_create_revision() != 0 && kv.create_revision > r.max_create_revision()) ||
           (r.min_create_revision() != 0 && kv.create_revision < r.min_create_revision());
  };
  kvs->erase(std::remove_if(kvs->begin(), kvs->end(), outside), kvs->end());
}

absl::StatusOr<kv::RangeRequest> ConvertRange(const etcdserverpb::RangeRequest& r,
                                              absl::string_view where, const Limits& limits) {
  if (r.key().empty()) return Invalid(kErrEmptyKey);
  absl::Status s = CheckKeys(where, r.key(), r.range_end(), limits);
  if (!s.ok()) return s;
  if (!etcdserverpb::RangeRequest_SortOrder_IsValid(r.sort_order())) {
    return Invalid(absl::StrCat(where, ": unknown sort_order ", static_cast<int>(r.sort_order())));
  }
  if (!etcdserverpb::RangeRequest_SortTarget_IsValid(r.sort_target())) {
    return Invalid(
        absl::StrCat(where, ": unknown sort_target ", static_cast<int>(r.sort_target())));
  }
  kv::RangeRequest out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.limit = r.limit();
  out.keys_only = r.keys_only();
  out.count_only = r.count_only();
  out.revision = r.revision();
  switch (PlanSort(r)) {
    case SortPlan::kKeyOrder: break;
    case SortPlan::kFetchAll: out.limit = 0; break;
    case SortPlan::kNoneQuirk:
      // etcd: `if limit > 0 { limit = limit + 1 }` (one extra for the `more` flag).
      if (out.limit > 0) {
        out.limit = out.limit == std::numeric_limits<int64_t>::max() ? 0 : out.limit + 1;
      }
      break;
  }
  // etcd fetches everything when a revision filter is set; SortAndLimit filters and truncates.
  if (HasRevisionFilter(r)) out.limit = 0;
  if (r.sort_target() == etcdserverpb::RangeRequest::VALUE) {
    out.keys_only = false;  // the sort needs the values; SortAndLimit drops them
  }
  return out;
}

absl::StatusOr<kv::Compare> ConvertCompare(const etcdserverpb::Compare& c,
                                           absl::string_view where, const Limits& limits) {
  if (c.key().empty()) return Invalid(kErrEmptyKey);
  kv::Compare out;
  switch (c.result()) {
    case etcdserverpb::Compare::EQUAL: out.result = kv::Compare::Result::kEqual; break;
    case etcdserverpb::Compare::GREATER: out.result = kv::Compare::Result::kGreater; break;
    case etcdserverpb::Compare::LESS: out.result = kv::Compare::Result::kLess; break;
    case etcdserverpb::Compare::NOT_EQUAL: out.result = kv::Compare::Result::kNotEqual; break;
    default:
      return Invalid(absl::StrCat(where, ": unknown compare result ",
                                  static_cast<int>(c.result())));
  }
  // As in etcd, a target_union member other than the target's leaves the operand 0 / "".
  switch (c.target()) {
    case etcdserverpb::Compare::VERSION:
      out.target = kv::Compare::Target::kVersion;
      if (c.target_union_case() == etcdserverpb::Compare::kVersion) out.number = c.version();
      break;
    case etcdserverpb::Compare::CREATE:
      out.target = kv::Compare::Target::kCreate;
      if (c.target_union_case() == etcdserverpb::Compare::kCreateRevision) {
        out.number = c.create_revision();
      }
      break;
    case etcdserverpb::Compare::MOD:
      out.target = kv::Compare::Target::kMod;
      if (c.target_union_case() == etcdserverpb::Compare::kModRevision) {
        out.number = c.mod_revision();
      }
      break;
    case etcdserverpb::Compare::VALUE:
      out.target = kv::Compare::Target::kValue;
      if (c.target_union_case() == etcdserverpb::Compare::kValue) out.value = c.value();
      break;
    case etcdserverpb::Compare::LEASE:
      out.target = kv::Compare::Target::kLease;
      if (c.target_union_case() == etcdserverpb::Compare::kLease) out.number = c.lease();
      break;
    default:
      return Invalid(absl::StrCat(where, ": unknown compare target ",
                                  static_cast<int>(c.target())));
  }
  absl::Status s = CheckKeys(where, c.key(), c.range_end(), limits);
  if (!s.ok()) return s;
  s = CheckSize(where, "value", out.value.size(), limits.max_value_bytes, "max_value_bytes");
  if (!s.ok()) return s;
  out.key = c.key();
  out.range_end = c.range_end();
  return out;
}

absl::StatusOr<kv::RequestOp> ConvertOp(const etcdserverpb::RequestOp& op,
                                        absl::string_view where, const Limits& limits) {
  switch (op.request_case()) {
    case etcdserverpb::RequestOp::kRequestRange: {
      const etcdserverpb::RangeRequest& r = op.request_range();
      if (r.key().empty()) return Invalid(kErrEmptyKey);
      // The revision the txn will run at is only known when it is applied.
      if (r.revision() != 0) {
        return Invalid(absl::StrCat(where, ": a revision in a txn range is not supported",
                                    " (revision=", r.revision(), ")"));
      }
      absl::StatusOr<kv::RangeRequest> range = ConvertRange(r, where, limits);
      if (!range.ok()) return range.status();
      return kv::RequestOp(*std::move(range));
    }
    case etcdserverpb::RequestOp::kRequestPut: {
      absl::StatusOr<kv::PutRequest> put = ConvertPut(op.request_put(), where, limits);
      if (!put.ok()) return put.status();
      return kv::RequestOp(*std::move(put));
    }
    case etcdserverpb::RequestOp::kRequestDeleteRange: {
      absl::StatusOr<kv::DeleteRangeRequest> del =
          ConvertDelete(op.request_delete_range(), where, limits);
      if (!del.ok()) return del.status();
      return kv::RequestOp(*std::move(del));
    }
    case etcdserverpb::RequestOp::kRequestTxn:
      return Invalid(absl::StrCat(where, ": ", kErrNestedTxnNotSupported));
    case etcdserverpb::RequestOp::REQUEST_NOT_SET: break;
  }
  return Invalid(kErrKeyNotFound);  // etcd's checkRequestOp for an empty op
}

absl::Status ConvertBranch(const google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>& in,
                           const char* branch, const Limits& limits,
                           std::vector<kv::RequestOp>* out) {
  out->reserve(in.size());
  for (int i = 0; i < in.size(); ++i) {
    absl::StatusOr<kv::RequestOp> op =
        ConvertOp(in.Get(i), absl::StrCat("txn ", branch, "[", i, "]"), limits);
    if (!op.ok()) return op.status();
    out->push_back(*std::move(op));
  }
  return absl::OkStatus();
}

// etcd's checkIntervals without nested txns: no key put twice, no put key inside a delete
// range of the same branch. Quadratic in the branch size, which max_txn_ops bounds.
absl::Status CheckDuplicateKeys(const std::vector<kv::RequestOp>& ops) {
  std::set<std::string> puts;
  for (const kv::RequestOp& op : ops) {
    const auto* p = std::get_if<kv::PutRequest>(&op);
    if (p == nullptr) continue;
    if (!puts.insert(p->key).second) return Invalid(kErrDuplicateKey);
    for (const kv::RequestOp& other : ops) {
      const auto* d = std::get_if<kv::DeleteRangeRequest>(&other);
      if (d != nullptr && kv::InRange(p->key, d->key, d->range_end)) {
        return Invalid(kErrDuplicateKey);
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Sorting

// Strict weak "a < b" by the target, for an ascending sort.
bool Less(etcdserverpb::RangeRequest::SortTarget target, const kv::KeyValue& a,
          const kv::KeyValue& b) {
  switch (target) {
    case etcdserverpb::RangeRequest::VERSION: return a.version < b.version;
    case etcdserverpb::RangeRequest::CREATE: return a.create_revision < b.create_revision;
    case etcdserverpb::RangeRequest::MOD: return a.mod_revision < b.mod_revision;
    // std::string compares as unsigned bytes (char_traits<char>::compare is memcmp), as Go's
    // bytes.Compare.
    case etcdserverpb::RangeRequest::VALUE: return a.value < b.value;
    default: return a.key < b.key;
  }
}

// ---------------------------------------------------------------------------------------------
// Responses

void FillKvs(const std::vector<kv::KeyValue>& in,
             google::protobuf::RepeatedPtrField<mvccpb::KeyValue>* out) {
  out->Reserve(static_cast<int>(in.size()));
  for (const kv::KeyValue& kv : in) ToProto(kv, out->Add());
}

// Nested responses: the header holds the revision only (HeaderInfo zero), as in etcd.
void OpToProto(const kv::ResponseOp& op, const HeaderInfo& info, etcdserverpb::ResponseOp* out) {
  if (const auto* r = std::get_if<kv::RangeResponse>(&op)) {
    ToProto(*r, info, out->mutable_response_range());
  } else if (const auto* p = std::get_if<kv::PutResponse>(&op)) {
    ToProto(*p, info, out->mutable_response_put());
  } else {
    ToProto(std::get<kv::DeleteRangeResponse>(op), info, out->mutable_response_delete_range());
  }
}

}  // namespace

absl::StatusOr<kv::Command> PutToCommand(const etcdserverpb::PutRequest& request,
                                         const Limits& limits) {
  absl::StatusOr<kv::PutRequest> put = ConvertPut(request, "put", limits);
  if (!put.ok()) return put.status();
  kv::Command out;
  out.op = *std::move(put);
  return out;
}

absl::StatusOr<kv::Command> DeleteToCommand(const etcdserverpb::DeleteRangeRequest& request,
                                            const Limits& limits) {
  absl::StatusOr<kv::DeleteRangeRequest> del = ConvertDelete(request, "delete_range", limits);
  if (!del.ok()) return del.status();
  kv::Command out;
  out.op = *std::move(del);
  return out;
}

kv::WatchCreate WatchCreateFromProto(const etcdserverpb::WatchCreateRequest& request) {
  kv::WatchCreate out;
  out.key = request.key();
  out.range_end = request.range_end();
  out.start_revision = request.start_revision();
  out.watch_id = request.watch_id();
  out.prev_kv = request.prev_kv();
  out.progress_notify = request.progress_notify();
  for (int f : request.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) out.no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) out.no_delete = true;
  }
  return out;
}

kv::Command CompactToCommand(const etcdserverpb::CompactionRequest& request) {
  kv::Command out;
  out.op = kv::CompactRequest{request.revision(), request.physical()};
  return out;
}

absl::StatusOr<kv::Command> TxnToCommand(const etcdserverpb::TxnRequest& request,
                                         const Limits& limits) {
  // etcd's checkTxnRequest: the op count first, so that a huge request costs nothing more.
  const uint64_t max_ops = MaxTxnOps(limits);
  const uint64_t ops = std::max({request.compare_size(), request.success_size(),
                                 request.failure_size()});
  if (ops > max_ops) return Invalid(kErrTooManyOps);

  kv::TxnRequest txn;
  txn.compare.reserve(request.compare_size());
  for (int i = 0; i < request.compare_size(); ++i) {
    absl::StatusOr<kv::Compare> cmp =
        ConvertCompare(request.compare(i), absl::StrCat("txn compare[", i, "]"), limits);
    if (!cmp.ok()) return cmp.status();
    txn.compare.push_back(*std::move(cmp));
  }
  absl::Status s = ConvertBranch(request.success(), "success", limits, &txn.success);
  if (!s.ok()) return s;
  s = ConvertBranch(request.failure(), "failure", limits, &txn.failure);
  if (!s.ok()) return s;
  // etcd's checkIntervals, after the per-op checks (it says: to avoid a quadratic blowup).
  s = CheckDuplicateKeys(txn.success);
  if (!s.ok()) return s;
  s = CheckDuplicateKeys(txn.failure);
  if (!s.ok()) return s;

  kv::Command out;
  out.op = std::move(txn);
  // The state machine's checks (kv::ValidateCommand) are a subset of the ones above, so this
  // cannot fail; if a change ever makes them differ, refuse here rather than spend a Raft round
  // trip on a command every replica rejects. Not a crash: the input is a client's.
  s = kv::ValidateCommand(out);
  if (!s.ok()) {
    return absl::InternalError(absl::StrCat(
        "txn passed the etcd checks but not the state machine's (a bug): ", s.message()));
  }
  return out;
}

absl::StatusOr<kv::RangeRequest> RangeToRequest(const etcdserverpb::RangeRequest& request,
                                                const Limits& limits) {
  return ConvertRange(request, "range", limits);
}

void SortAndLimit(const etcdserverpb::RangeRequest& request, kv::RangeResponse* response) {
  const SortPlan plan = PlanSort(request);
  std::vector<kv::KeyValue>& kvs = response->kvs;
  FilterRevisions(request, &kvs);
  if (plan != SortPlan::kKeyOrder) {
    const etcdserverpb::RangeRequest::SortTarget target = request.sort_target();
    // The store's kvs are ascending by key, so a stable sort breaks ties by key.
    if (request.sort_order() == etcdserverpb::RangeRequest::DESCEND) {
      std::stable_sort(kvs.begin(), kvs.end(), [target](const kv::KeyValue& a,
                                                        const kv::KeyValue& b) {
        return Less(target, b, a);
      });
    } else {  // ASCEND, or NONE with a target other than KEY (etcd sorts ASCEND then)
      std::stable_sort(kvs.begin(), kvs.end(), [target](const kv::KeyValue& a,
                                                        const kv::KeyValue& b) {
        return Less(target, a, b);
      });
    }
  }
  if (request.limit() > 0 && kvs.size() > static_cast<uint64_t>(request.limit())) {
    kvs.resize(static_cast<size_t>(request.limit()));
    response->more = true;
  }
  if (request.keys_only()) {
    for (kv::KeyValue& kv : kvs) kv.value.clear();
  }
}

void SortAndLimit(const etcdserverpb::TxnRequest& request, kv::TxnResponse* response) {
  const auto& branch = response->succeeded ? request.success() : request.failure();
  AM_CHECK_EQ(static_cast<size_t>(branch.size()), response->responses.size(),
              "a txn response must hold one response per op of the branch that ran");
  for (int i = 0; i < branch.size(); ++i) {
    const etcdserverpb::RequestOp& op = branch.Get(i);
    kv::ResponseOp& r = response->responses[static_cast<size_t>(i)];
    if (op.request_case() != etcdserverpb::RequestOp::kRequestRange) continue;
    auto* range = std::get_if<kv::RangeResponse>(&r);
    AM_CHECK(range != nullptr, "txn op ", i, " is a range but its response is not");
    SortAndLimit(op.request_range(), range);
  }
}

void ToProto(const kv::KeyValue& kv, mvccpb::KeyValue* out) {
  out->Clear();
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_value(kv.value);
  out->set_lease(kv.lease);
}

void ToProto(const HeaderInfo& info, int64_t revision, etcdserverpb::ResponseHeader* out) {
  out->Clear();
  out->set_cluster_id(info.cluster_id);
  out->set_member_id(info.member_id);
  out->set_revision(revision);
  out->set_raft_term(info.raft_term);
}

void ToProto(const kv::PutResponse& response, const HeaderInfo& info,
             etcdserverpb::PutResponse* out) {
  out->Clear();
  ToProto(info, response.header.revision, out->mutable_header());
  if (response.prev_kv) ToProto(*response.prev_kv, out->mutable_prev_kv());
}

void ToProto(const kv::CompactResponse& response, const HeaderInfo& info,
             etcdserverpb::CompactionResponse* out) {
  out->Clear();
  ToProto(info, response.header.revision, out->mutable_header());
}

void ToProto(const kv::WatchResponse& response, const HeaderInfo& info,
             etcdserverpb::WatchResponse* out) {
  out->Clear();
  ToProto(info, response.revision, out->mutable_header());
  out->set_watch_id(response.watch_id);
  out->set_created(response.created);
  out->set_canceled(response.canceled);
  out->set_compact_revision(response.compact_revision);
  out->set_cancel_reason(response.cancel_reason);
  for (const kv::WatchEvent& e : response.events) {
    mvccpb::Event* ev = out->add_events();
    const bool deleted = kv::IsTombstone(e.kv);
    ev->set_type(deleted ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
    ToProto(e.kv, ev->mutable_kv());
    if (e.prev_kv.has_value()) ToProto(*e.prev_kv, ev->mutable_prev_kv());
  }
}

void ToProto(const kv::RangeResponse& response, const HeaderInfo& info,
             etcdserverpb::RangeResponse* out) {
  out->Clear();
  ToProto(info, response.header.revision, out->mutable_header());
  FillKvs(response.kvs, out->mutable_kvs());
  out->set_more(response.more);
  out->set_count(response.count);
}

void ToProto(const kv::DeleteRangeResponse& response, const HeaderInfo& info,
             etcdserverpb::DeleteRangeResponse* out) {
  out->Clear();
  ToProto(info, response.header.revision, out->mutable_header());
  out->set_deleted(response.deleted);
  FillKvs(response.prev_kvs, out->mutable_prev_kvs());
}

void ToProto(const kv::TxnResponse& response, const HeaderInfo& info,
             etcdserverpb::TxnResponse* out) {
  out->Clear();
  ToProto(info, response.header.revision, out->mutable_header());
  out->set_succeeded(response.succeeded);
  out->mutable_responses()->Reserve(static_cast<int>(response.responses.size()));
  for (const kv::ResponseOp& op : response.responses) {
    OpToProto(op, HeaderInfo{}, out->add_responses());
  }
}

}  // namespace amaters::server::etcd
