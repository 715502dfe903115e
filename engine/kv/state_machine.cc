#include "engine/kv/state_machine.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace amaters::kv {

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  for (size_t i = end.size(); i > 0; --i) {
    unsigned char c = static_cast<unsigned char>(end[i - 1]);
    if (c < 0xff) {
      end[i - 1] = static_cast<char>(c + 1);
      end.resize(i);
      return end;
    }
  }
  return std::string(1, '\0');
}

absl::Status ValidateSnapshotName(const std::string& name) {
  if (name.empty() || name.size() > kMaxSnapshotNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("snapshot name must have 1..",
                                                   kMaxSnapshotNameBytes, " characters, got ",
                                                   name.size()));
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "snapshot name \"", absl::CHexEscape(name), "\" may only hold [A-Za-z0-9_-]"));
    }
  }
  return absl::OkStatus();
}

KeyValue Tombstone(const std::string& key, int64_t revision) {
  KeyValue kv;
  kv.key = key;
  kv.mod_revision = revision;
  return kv;
}

namespace {

std::string Q(const std::string& s) { return absl::StrCat("\"", absl::CHexEscape(s), "\""); }

std::string DescribeRange(const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return Q(key);
  if (range_end == std::string(1, '\0')) return absl::StrCat("[", Q(key), ",+inf)");
  return absl::StrCat("[", Q(key), ",", Q(range_end), ")");
}

const char* ResultName(Compare::Result r) {
  switch (r) {
    case Compare::Result::kEqual: return "==";
    case Compare::Result::kGreater: return ">";
    case Compare::Result::kLess: return "<";
    case Compare::Result::kNotEqual: return "!=";
  }
  return "?";
}

const char* TargetName(Compare::Target t) {
  switch (t) {
    case Compare::Target::kVersion: return "version";
    case Compare::Target::kCreate: return "create";
    case Compare::Target::kMod: return "mod";
    case Compare::Target::kValue: return "value";
    case Compare::Target::kLease: return "lease";
  }
  return "?";
}

std::string DescribeKvs(const std::vector<KeyValue>& kvs) {
  std::string s = "[";
  for (size_t i = 0; i < kvs.size(); ++i) absl::StrAppend(&s, i ? ", " : "", Describe(kvs[i]));
  return s + "]";
}

std::string DescribeOps(const std::vector<RequestOp>& ops) {
  std::string s = "[";
  for (size_t i = 0; i < ops.size(); ++i) absl::StrAppend(&s, i ? ", " : "", Describe(ops[i]));
  return s + "]";
}

std::string DescribePut(const PutRequest& p) {
  return absl::StrCat("put ", Q(p.key), "=", Q(p.value),
                      p.lease != 0 ? absl::StrCat(" lease=", p.lease) : "",
                      p.ignore_lease ? " ignore_lease" : "", p.prev_kv ? " prev_kv" : "");
}

std::string DescribeCheckpoints(const LeaseCheckpointRequest& c) {
  std::string s = "lease-checkpoint [";
  for (size_t i = 0; i < c.checkpoints.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", c.checkpoints[i].id, ":", c.checkpoints[i].remaining_ttl);
  }
  return s + "]";
}

std::string DescribeDelete(const DeleteRangeRequest& d) {
  return absl::StrCat("delete ", DescribeRange(d.key, d.range_end), d.prev_kv ? " prev_kv" : "");
}

}  // namespace

std::string Describe(const KeyValue& kv) {
  return absl::StrCat(Q(kv.key), "=", Q(kv.value), "@c", kv.create_revision, "/m",
                      kv.mod_revision, "/v", kv.version,
                      kv.lease != 0 ? absl::StrCat("/l", kv.lease) : "");
}

std::string Describe(const Lease& l) {
  return absl::StrCat("lease ", l.id, " ttl=", l.ttl, " remaining=", l.remaining_ttl);
}

std::string Describe(const RangeRequest& r) {
  std::string s = absl::StrCat("range ", DescribeRange(r.key, r.range_end));
  if (r.limit != 0) absl::StrAppend(&s, " limit=", r.limit);
  if (r.keys_only) absl::StrAppend(&s, " keys_only");
  if (r.count_only) absl::StrAppend(&s, " count_only");
  if (r.revision != 0) absl::StrAppend(&s, " rev=", r.revision);
  return s;
}

std::string Describe(const RangeResponse& r) {
  return absl::StrCat("range rev=", r.header.revision, " count=", r.count,
                      r.more ? " more" : "", " kvs=", DescribeKvs(r.kvs));
}

std::string Describe(const Compare& c) {
  std::string operand = c.target == Compare::Target::kValue ? Q(c.value)
                                                            : absl::StrCat(c.number);
  return absl::StrCat(TargetName(c.target), "(", DescribeRange(c.key, c.range_end), ") ",
                      ResultName(c.result), " ", operand);
}

std::string Describe(const RequestOp& op) {
  if (const auto* r = std::get_if<RangeRequest>(&op)) return Describe(*r);
  if (const auto* p = std::get_if<PutRequest>(&op)) return DescribePut(*p);
  return DescribeDelete(std::get<DeleteRangeRequest>(op));
}

std::string Describe(const PutResponse& r) {
  return absl::StrCat("put rev=", r.header.revision,
                      r.prev_kv ? absl::StrCat(" prev=", Describe(*r.prev_kv)) : "");
}

std::string Describe(const DeleteRangeResponse& r) {
  return absl::StrCat("delete rev=", r.header.revision, " deleted=", r.deleted,
                      r.prev_kvs.empty() ? "" : absl::StrCat(" prev=", DescribeKvs(r.prev_kvs)));
}

std::string Describe(const ResponseOp& op) {
  if (const auto* r = std::get_if<RangeResponse>(&op)) return Describe(*r);
  if (const auto* p = std::get_if<PutResponse>(&op)) return Describe(*p);
  return Describe(std::get<DeleteRangeResponse>(op));
}

std::string Describe(const TxnResponse& r) {
  std::string s = absl::StrCat("txn rev=", r.header.revision,
                               r.succeeded ? " succeeded [" : " failed [");
  for (size_t i = 0; i < r.responses.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", Describe(r.responses[i]));
  }
  return s + "]";
}

std::string Describe(const Command& c) {
  std::string s = c.request_id ? absl::StrCat("#", c.request_id, " ") : "";
  if (const auto* p = std::get_if<PutRequest>(&c.op)) return s + DescribePut(*p);
  if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) return s + DescribeDelete(*d);
  if (const auto* k = std::get_if<CompactRequest>(&c.op)) {
    return absl::StrCat(s, "compact rev=", k->revision, k->physical ? " physical" : "");
  }
  if (const auto* g = std::get_if<LeaseGrantRequest>(&c.op)) {
    return absl::StrCat(s, "lease-grant ", g->id, " ttl=", g->ttl);
  }
  if (const auto* r = std::get_if<LeaseRevokeRequest>(&c.op)) {
    return absl::StrCat(s, "lease-revoke ", r->id);
  }
  if (const auto* k = std::get_if<LeaseCheckpointRequest>(&c.op)) {
    return s + DescribeCheckpoints(*k);
  }
  const auto& t = std::get<TxnRequest>(c.op);
  absl::StrAppend(&s, "txn if [");
  for (size_t i = 0; i < t.compare.size(); ++i) {
    absl::StrAppend(&s, i ? ", " : "", Describe(t.compare[i]));
  }
  absl::StrAppend(&s, "] then ", DescribeOps(t.success), " else ", DescribeOps(t.failure));
  return s;
}

std::string Describe(const CommandResponse& r) {
  if (const auto* p = std::get_if<PutResponse>(&r)) return Describe(*p);
  if (const auto* d = std::get_if<DeleteRangeResponse>(&r)) return Describe(*d);
  if (const auto* k = std::get_if<CompactResponse>(&r)) return Describe(*k);
  if (const auto* g = std::get_if<LeaseGrantResponse>(&r)) {
    return absl::StrCat("granted rev=", g->header.revision, " id=", g->id, " ttl=", g->ttl);
  }
  if (const auto* v = std::get_if<LeaseRevokeResponse>(&r)) {
    return absl::StrCat("revoked rev=", v->header.revision, " deleted=", v->deleted);
  }
  if (const auto* k = std::get_if<LeaseCheckpointResponse>(&r)) {
    return absl::StrCat("checkpointed rev=", k->header.revision);
  }
  return Describe(std::get<TxnResponse>(r));
}

std::string Describe(const CompactResponse& r) {
  return absl::StrCat("compacted rev=", r.header.revision);
}

std::string Describe(const ApplyResult& r) {
  std::string s = absl::StrCat("@", r.index);
  if (r.request_id) absl::StrAppend(&s, " #", r.request_id);
  if (!r.status.ok()) return absl::StrCat(s, " rejected: ", r.status.ToString());
  if (!r.response) return absl::StrCat(s, " noop");
  return absl::StrCat(s, " ", Describe(*r.response));
}

}  // namespace amaters::kv
