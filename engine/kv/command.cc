#include "engine/kv/command.h"

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/kv/apply.h"
#include "proto/kv.pb.h"

namespace amaters::kv {
namespace {

// ---------------------------------------------------------------------------------------------
// C++ -> proto

void RangeToProto(const RangeRequest& r, kvpb::RangeRequest* out) {
  out->set_key(r.key);
  out->set_range_end(r.range_end);
  out->set_limit(r.limit);
  out->set_keys_only(r.keys_only);
  out->set_count_only(r.count_only);
}

void PutToProto(const PutRequest& p, kvpb::PutRequest* out) {
  out->set_key(p.key);
  out->set_value(p.value);
  out->set_lease(p.lease);
  out->set_prev_kv(p.prev_kv);
  out->set_ignore_lease(p.ignore_lease);
}

void DeleteToProto(const DeleteRangeRequest& d, kvpb::DeleteRangeRequest* out) {
  out->set_key(d.key);
  out->set_range_end(d.range_end);
  out->set_prev_kv(d.prev_kv);
}

void OpToProto(const RequestOp& op, kvpb::RequestOp* out) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) {
    RangeToProto(*r, out->mutable_request_range());
  } else if (const auto* p = std::get_if<PutRequest>(&op)) {
    PutToProto(*p, out->mutable_request_put());
  } else {
    DeleteToProto(std::get<DeleteRangeRequest>(op), out->mutable_request_delete_range());
  }
}

void CompareToProto(const Compare& c, kvpb::Compare* out) {
  switch (c.result) {
    case Compare::Result::kEqual: out->set_result(kvpb::Compare::EQUAL); break;
    case Compare::Result::kGreater: out->set_result(kvpb::Compare::GREATER); break;
    case Compare::Result::kLess: out->set_result(kvpb::Compare::LESS); break;
    case Compare::Result::kNotEqual: out->set_result(kvpb::Compare::NOT_EQUAL); break;
  }
  out->set_key(c.key);
  out->set_range_end(c.range_end);
  // The operand goes in the target_union member that matches the target, as etcd clients do.
  switch (c.target) {
    case Compare::Target::kVersion:
      out->set_target(kvpb::Compare::VERSION);
      out->set_version(c.number);
      break;
    case Compare::Target::kCreate:
      out->set_target(kvpb::Compare::CREATE);
      out->set_create_revision(c.number);
      break;
    case Compare::Target::kMod:
      out->set_target(kvpb::Compare::MOD);
      out->set_mod_revision(c.number);
      break;
    case Compare::Target::kValue:
      out->set_target(kvpb::Compare::VALUE);
      out->set_value(c.value);
      break;
    case Compare::Target::kLease:
      out->set_target(kvpb::Compare::LEASE);
      out->set_lease(c.number);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// proto -> C++

RangeRequest RangeFromProto(const kvpb::RangeRequest& r) {
  RangeRequest out;
  out.key = r.key();
  out.range_end = r.range_end();
  out.limit = r.limit();
  out.keys_only = r.keys_only();
  out.count_only = r.count_only();
  return out;
}

PutRequest PutFromProto(const kvpb::PutRequest& p) {
  PutRequest out;
  out.key = p.key();
  out.value = p.value();
  out.lease = p.lease();
  out.prev_kv = p.prev_kv();
  out.ignore_lease = p.ignore_lease();
  return out;
}

DeleteRangeRequest DeleteFromProto(const kvpb::DeleteRangeRequest& d) {
  DeleteRangeRequest out;
  out.key = d.key();
  out.range_end = d.range_end();
  out.prev_kv = d.prev_kv();
  return out;
}

absl::StatusOr<RequestOp> OpFromProto(const kvpb::RequestOp& op) {
  switch (op.request_case()) {
    case kvpb::RequestOp::kRequestRange: return RequestOp(RangeFromProto(op.request_range()));
    case kvpb::RequestOp::kRequestPut: return RequestOp(PutFromProto(op.request_put()));
    case kvpb::RequestOp::kRequestDeleteRange:
      return RequestOp(DeleteFromProto(op.request_delete_range()));
    case kvpb::RequestOp::REQUEST_NOT_SET: break;
  }
  return absl::InvalidArgumentError("txn op has no request set");
}

absl::StatusOr<Compare> CompareFromProto(const kvpb::Compare& c) {
  Compare out;
  switch (c.result()) {
    case kvpb::Compare::EQUAL: out.result = Compare::Result::kEqual; break;
    case kvpb::Compare::GREATER: out.result = Compare::Result::kGreater; break;
    case kvpb::Compare::LESS: out.result = Compare::Result::kLess; break;
    case kvpb::Compare::NOT_EQUAL: out.result = Compare::Result::kNotEqual; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("compare has unknown result ", static_cast<int>(c.result())));
  }
  // As in etcd, a target_union member other than the target's leaves the operand at 0 / "".
  switch (c.target()) {
    case kvpb::Compare::VERSION:
      out.target = Compare::Target::kVersion;
      if (c.target_union_case() == kvpb::Compare::kVersion) out.number = c.version();
      break;
    case kvpb::Compare::CREATE:
      out.target = Compare::Target::kCreate;
      if (c.target_union_case() == kvpb::Compare::kCreateRevision) {
        out.number = c.create_revision();
      }
      break;
    case kvpb::Compare::MOD:
      out.target = Compare::Target::kMod;
      if (c.target_union_case() == kvpb::Compare::kModRevision) out.number = c.mod_revision();
      break;
    case kvpb::Compare::VALUE:
      out.target = Compare::Target::kValue;
      if (c.target_union_case() == kvpb::Compare::kValue) out.value = c.value();
      break;
    case kvpb::Compare::LEASE:
      out.target = Compare::Target::kLease;
      if (c.target_union_case() == kvpb::Compare::kLease) out.number = c.lease();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("compare has unknown target ", static_cast<int>(c.target())));
  }
  out.key = c.key();
  out.range_end = c.range_end();
  return out;
}

absl::Status OpsFromProto(const google::protobuf::RepeatedPtrField<kvpb::RequestOp>& in,
                          const char* branch, std::vector<RequestOp>* out) {
  out->reserve(in.size());
  for (int i = 0; i < in.size(); ++i) {
    absl::StatusOr<RequestOp> op = OpFromProto(in.Get(i));
    if (!op.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("txn ", branch, "[", i, "]: ", op.status().message()));
    }
    out->push_back(*std::move(op));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Validation

absl::Status NonEmptyKey(const std::string& key, absl::string_view what) {
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": key is not provided"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePut(const PutRequest& p, absl::string_view where) {
  if (absl::Status s = NonEmptyKey(p.key, where); !s.ok()) return s;
  if (p.ignore_lease && p.lease != 0) return absl::InvalidArgumentError(kErrLeaseProvided);
  if (p.lease < 0) return absl::NotFoundError(kErrLeaseNotFound);
  return absl::OkStatus();
}

absl::Status ValidateLeaseGrant(const LeaseGrantRequest& g) {
  if (g.id <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("lease grant: id ", g.id, " is not positive"));
  }
  if (g.ttl > kMaxLeaseTtl) return absl::OutOfRangeError(kErrLeaseTtlTooLarge);
  if (g.ttl <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("lease grant: ttl ", g.ttl, " is not positive"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCheckpoints(const LeaseCheckpointRequest& c) {
  if (c.checkpoints.size() > kMaxLeaseCheckpoints) {
    return absl::InvalidArgumentError(absl::StrCat("lease checkpoint: ", c.checkpoints.size(),
                                                   " leases, limit ", kMaxLeaseCheckpoints));
  }
  for (const LeaseCheckpointRequest::Checkpoint& one : c.checkpoints) {
    if (one.id <= 0 || one.remaining_ttl < 0 || one.remaining_ttl > kMaxLeaseTtl) {
      return absl::InvalidArgumentError(absl::StrCat(
          "lease checkpoint: lease ", one.id, " remaining ttl ", one.remaining_ttl));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateOp(const RequestOp& op, absl::string_view where) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) {
    if (r->revision != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a range at a revision cannot run inside a txn"));
    }
    return NonEmptyKey(r->key, where);
  }
  if (const auto* p = std::get_if<PutRequest>(&op)) return ValidatePut(*p, where);
  return NonEmptyKey(std::get<DeleteRangeRequest>(op).key, where);
}

// etcd's checkIntervals: within one branch, no key is put twice and no put key lies in a
// delete range of the same branch (either order). Quadratic in the branch size, which
// kMaxTxnOps bounds.
absl::Status CheckDuplicateWrites(const std::vector<RequestOp>& ops, const char* branch) {
  std::set<std::string> puts;
  for (const RequestOp& op : ops) {
    const auto* p = std::get_if<PutRequest>(&op);
    if (p == nullptr) continue;
    if (!puts.insert(p->key).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "txn ", branch, ": duplicate key given in txn request: \"", absl::CHexEscape(p->key),
          "\" is put twice"));
    }
    for (const RequestOp& other : ops) {
      const auto* d = std::get_if<DeleteRangeRequest>(&other);
      if (d != nullptr && InRange(p->key, d->key, d->range_end)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "txn ", branch, ": duplicate key given in txn request: \"",
            absl::CHexEscape(p->key), "\" is put and deleted"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBranch(const std::vector<RequestOp>& ops, const char* branch) {
  if (ops.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat("too many operations in txn request: ",
                                                   ops.size(), " ", branch, " ops, limit ",
                                                   kMaxTxnOps));
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::Status s = ValidateOp(ops[i], absl::StrCat("txn ", branch, "[", i, "]"));
    if (!s.ok()) return s;
  }
  return CheckDuplicateWrites(ops, branch);
}

}  // namespace

void ToProto(const Command& c, kvpb::Command* out) {
  out->Clear();
  out->set_request_id(c.request_id);
  if (const auto* p = std::get_if<PutRequest>(&c.op)) {
    PutToProto(*p, out->mutable_put());
  } else if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) {
    DeleteToProto(*d, out->mutable_delete_range());
  } else if (const auto* k = std::get_if<CompactRequest>(&c.op)) {
    out->mutable_compact()->set_revision(k->revision);
    out->mutable_compact()->set_physical(k->physical);
  } else if (const auto* g = std::get_if<LeaseGrantRequest>(&c.op)) {
    out->mutable_lease_grant()->set_id(g->id);
    out->mutable_lease_grant()->set_ttl(g->ttl);
  } else if (const auto* r = std::get_if<LeaseRevokeRequest>(&c.op)) {
    out->mutable_lease_revoke()->set_id(r->id);
  } else if (const auto* ck = std::get_if<LeaseCheckpointRequest>(&c.op)) {
    kvpb::LeaseCheckpointRequest* cp = out->mutable_lease_checkpoint();
    for (const LeaseCheckpointRequest::Checkpoint& one : ck->checkpoints) {
      kvpb::LeaseCheckpoint* added = cp->add_checkpoints();
      added->set_id(one.id);
      added->set_remaining_ttl(one.remaining_ttl);
    }
  } else {
    const TxnRequest& t = std::get<TxnRequest>(c.op);
    kvpb::TxnRequest* txn = out->mutable_txn();
    for (const Compare& cmp : t.compare) CompareToProto(cmp, txn->add_compare());
    for (const RequestOp& op : t.success) OpToProto(op, txn->add_success());
    for (const RequestOp& op : t.failure) OpToProto(op, txn->add_failure());
  }
}

absl::StatusOr<Command> FromProto(const kvpb::Command& in) {
  Command out;
  out.request_id = in.request_id();
  switch (in.op_case()) {
    case kvpb::Command::kPut:
      out.op = PutFromProto(in.put());
      return out;
    case kvpb::Command::kDeleteRange:
      out.op = DeleteFromProto(in.delete_range());
      return out;
    case kvpb::Command::kTxn: {
      TxnRequest t;
      t.compare.reserve(in.txn().compare_size());
      for (int i = 0; i < in.txn().compare_size(); ++i) {
        absl::StatusOr<Compare> cmp = CompareFromProto(in.txn().compare(i));
        if (!cmp.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("txn compare[", i, "]: ", cmp.status().message()));
        }
        t.compare.push_back(*std::move(cmp));
      }
      absl::Status s = OpsFromProto(in.txn().success(), "success", &t.success);
      if (!s.ok()) return s;
      s = OpsFromProto(in.txn().failure(), "failure", &t.failure);
      if (!s.ok()) return s;
      out.op = std::move(t);
      return out;
    }
    case kvpb::Command::kCompact:
      out.op = CompactRequest{in.compact().revision(), in.compact().physical()};
      return out;
    case kvpb::Command::kLeaseGrant:
      out.op = LeaseGrantRequest{in.lease_grant().id(), in.lease_grant().ttl()};
      return out;
    case kvpb::Command::kLeaseRevoke:
      out.op = LeaseRevokeRequest{in.lease_revoke().id()};
      return out;
    case kvpb::Command::kLeaseCheckpoint: {
      // Bounded before allocating: committed bytes are untrusted.
      const auto& in_cps = in.lease_checkpoint().checkpoints();
      if (static_cast<size_t>(in_cps.size()) > kMaxLeaseCheckpoints) {
        return absl::InvalidArgumentError(absl::StrCat("lease checkpoint: ", in_cps.size(),
                                                       " leases, limit ", kMaxLeaseCheckpoints));
      }
      LeaseCheckpointRequest cp;
      for (const kvpb::LeaseCheckpoint& one : in_cps) {
        cp.checkpoints.push_back({one.id(), one.remaining_ttl()});
      }
      out.op = std::move(cp);
      return out;
    }
    case kvpb::Command::OP_NOT_SET: break;
  }
  return absl::InvalidArgumentError("command has no operation set");
}

std::string EncodeCommand(const Command& c) {
  kvpb::Command proto;
  ToProto(c, &proto);
  return proto.SerializeAsString();
}

absl::StatusOr<Command> DecodeCommand(absl::string_view bytes) {
  kvpb::Command proto;
  // ParseFromArray takes an int size; larger inputs cannot be commands (Raft bounds entries far
  // below 2 GiB) and would not fit.
  if (bytes.size() > static_cast<size_t>(INT32_MAX) ||
      !proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv command: ", bytes.size(), " bytes are not a valid amaters.kvpb.Command"));
  }
  absl::StatusOr<Command> c = FromProto(proto);
  if (!c.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv command (", bytes.size(), " bytes): ", c.status().message()));
  }
  return c;
}

ApplyItem DecodeEntry(uint64_t index, absl::string_view data) {
  if (data.empty()) return ApplyItem::Noop(index);
  absl::StatusOr<Command> c = DecodeCommand(data);
  if (!c.ok()) return ApplyItem{index, std::nullopt, c.status()};
  return ApplyItem::Of(index, *std::move(c));
}

absl::Status ValidateRangeRequest(const RangeRequest& r) { return NonEmptyKey(r.key, "range"); }

absl::Status ValidateCommand(const Command& c) {
  if (const auto* p = std::get_if<PutRequest>(&c.op)) return ValidatePut(*p, "put");
  if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) {
    return NonEmptyKey(d->key, "delete_range");
  }
  if (std::holds_alternative<CompactRequest>(c.op)) return absl::OkStatus();  // see ApplyResult
  if (const auto* g = std::get_if<LeaseGrantRequest>(&c.op)) return ValidateLeaseGrant(*g);
  if (const auto* r = std::get_if<LeaseRevokeRequest>(&c.op)) {
    if (r->id <= 0) return absl::NotFoundError(kErrLeaseNotFound);
    return absl::OkStatus();
  }
  if (const auto* k = std::get_if<LeaseCheckpointRequest>(&c.op)) {
    return ValidateCheckpoints(*k);
  }
  const TxnRequest& t = std::get<TxnRequest>(c.op);
  if (t.compare.size() > kMaxTxnOps) {
    return absl::InvalidArgumentError(absl::StrCat("too many operations in txn request: ",
                                                   t.compare.size(), " compares, limit ",
                                                   kMaxTxnOps));
  }
  for (size_t i = 0; i < t.compare.size(); ++i) {
    absl::Status s = NonEmptyKey(t.compare[i].key, absl::StrCat("txn compare[", i, "]"));
    if (!s.ok()) return s;
  }
  absl::Status s = ValidateBranch(t.success, "success");
  if (!s.ok()) return s;
  return ValidateBranch(t.failure, "failure");
}

}  // namespace amaters::kv
