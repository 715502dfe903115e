#include "engine/kv/apply.h"

#include <algorithm>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/base/crc32c.h"
#include "engine/kv/command.h"

namespace amaters::kv {
namespace {

// range_end "\0" selects every key >= key.
bool IsFromKeyEnd(const std::string& range_end) {
  return range_end.size() == 1 && range_end[0] == '\0';
}

absl::Status CheckRevision(int64_t wanted, Revisions revisions) {
  if (wanted > revisions.current) return absl::OutOfRangeError(kErrFutureRev);
  if (wanted < revisions.compacted) return absl::OutOfRangeError(kErrCompacted);
  return absl::OkStatus();
}

bool BelowEnd(const std::string& k, const std::string& end) { return end.empty() || k < end; }

// The committed state with the batch's pending changes laid over it. Its history is the
// stored history followed, key by key, by the batch's versions (all of which are newer).
class OverlayReader : public StoreReader {
 public:
  OverlayReader(const StoreReader& base, const ChangeSet& changes,
                const std::vector<KeyValue>& versions, const LeaseChangeSet& leases)
      : base_(base), changes_(changes), versions_(versions), leases_(leases) {}

  absl::StatusOr<std::optional<Lease>> GetLease(int64_t id) const override {
    auto it = leases_.find(id);
    if (it != leases_.end()) return it->second;
    return base_.GetLease(id);
  }

  absl::Status ScanLeases(absl::FunctionRef<bool(const Lease&)> visit) const override {
    std::map<int64_t, Lease> all;
    absl::Status s = base_.ScanLeases([&](const Lease& l) {
      all.emplace(l.id, l);
      return true;
    });
    if (!s.ok()) return s;
    for (const auto& [id, lease] : leases_) {
      if (lease.has_value()) {
        all[id] = *lease;
      } else {
        all.erase(id);
      }
    }
    for (const auto& [id, lease] : all) {
      if (!visit(lease)) break;
    }
    return absl::OkStatus();
  }

  // The stored index minus the keys the batch changed, plus the changed keys now on `id`.
  absl::Status ScanLeaseKeys(int64_t id,
                             absl::FunctionRef<bool(const std::string&)> visit) const override {
    std::set<std::string> keys;
    absl::Status s = base_.ScanLeaseKeys(id, [&](const std::string& k) {
      if (changes_.count(k) == 0) keys.insert(k);
      return true;
    });
    if (!s.ok()) return s;
    for (const auto& [k, kv] : changes_) {
      if (kv.has_value() && kv->lease == id) keys.insert(k);
    }
    for (const std::string& k : keys) {
      if (!visit(k)) break;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) const override {
    auto it = changes_.find(key);
    if (it != changes_.end()) return it->second;
    return base_.Get(key);
  }

  // Merges the two ordered sequences; a pending change hides the base pair with its key.
  absl::Status Scan(const std::string& begin, const std::string& end,
                    absl::FunctionRef<bool(const KeyValue&)> visit) const override {
    auto it = changes_.lower_bound(begin);
    auto below_end = [&](const std::string& k) { return end.empty() || k < end; };
    // Visits pending pairs with keys below `limit` (all remaining ones when null). Returns
    // false when `visit` asked to stop.
    auto drain = [&](const std::string* limit) {
      for (; it != changes_.end() && below_end(it->first) &&
             (limit == nullptr || it->first < *limit);
           ++it) {
        if (it->second.has_value() && !visit(*it->second)) return false;
      }
      return true;
    };
    bool stopped = false;
    absl::Status s = base_.Scan(begin, end, [&](const KeyValue& kv) {
      if (!drain(&kv.key)) {
        stopped = true;
        return false;
      }
      if (it != changes_.end() && it->first == kv.key) {
        const std::optional<KeyValue>& pending = it->second;
        ++it;
        if (pending.has_value() && !visit(*pending)) {
          stopped = true;
          return false;
        }
        return true;
      }
      if (!visit(kv)) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!s.ok()) return s;
    if (!stopped) drain(nullptr);
    return absl::OkStatus();
  }

  absl::Status ScanHistory(const std::string& begin, const std::string& end,
                           absl::FunctionRef<bool(const KeyValue&)> visit) const override {
    // The batch's versions in (key, revision) order: stable, as they are in revision order.
    std::vector<const KeyValue*> pending;
    for (const KeyValue& v : versions_) {
      if (v.key >= begin && BelowEnd(v.key, end)) pending.push_back(&v);
    }
    std::stable_sort(pending.begin(), pending.end(),
                     [](const KeyValue* a, const KeyValue* b) { return a->key < b->key; });
    size_t next = 0;
    // Visits pending versions whose key sorts before `key` (all when null), and those of `key`
    // itself when `same` is set. Returns false when `visit` asked to stop.
    auto drain = [&](const std::string* key, bool same) {
      for (; next < pending.size(); ++next) {
        const std::string& k = pending[next]->key;
        if (key != nullptr && !(k < *key || (same && k == *key))) break;
        if (!visit(*pending[next])) return false;
      }
      return true;
    };
    bool stopped = false;
    std::string group;  // the key of the stored versions being visited
    absl::Status s = base_.ScanHistory(begin, end, [&](const KeyValue& kv) {
      if (kv.key != group) {
        // The previous key's pending versions come after its stored ones.
        if (!group.empty() && !drain(&group, /*same=*/true)) return !(stopped = true);
        group = kv.key;
        if (!drain(&group, /*same=*/false)) return !(stopped = true);
      }
      if (!visit(kv)) return !(stopped = true);
      return true;
    });
    if (!s.ok()) return s;
    if (!stopped) drain(nullptr, false);
    return absl::OkStatus();
  }

 private:
  const StoreReader& base_;
  const ChangeSet& changes_;
  const std::vector<KeyValue>& versions_;
  const LeaseChangeSet& leases_;
};

// The state at an older revision, read from the history: each key's newest version at or
// below `at`, unless that is a tombstone.
class AtRevisionReader : public StoreReader {
 public:
  AtRevisionReader(const StoreReader& base, int64_t at) : base_(base), at_(at) {}

  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) const override {
    std::optional<KeyValue> found;
    absl::Status s = Scan(key, key + std::string(1, '\0'), [&](const KeyValue& kv) {
      found = kv;
      return false;
    });
    if (!s.ok()) return s;
    return found;
  }

  absl::Status Scan(const std::string& begin, const std::string& end,
                    absl::FunctionRef<bool(const KeyValue&)> visit) const override {
    std::optional<KeyValue> newest;  // of the key being visited, at or below at_
    bool stopped = false;
    auto emit = [&]() {
      if (newest.has_value() && !IsTombstone(*newest) && !visit(*newest)) stopped = true;
      newest.reset();
      return !stopped;
    };
    absl::Status s = base_.ScanHistory(begin, end, [&](const KeyValue& kv) {
      if (newest.has_value() && newest->key != kv.key && !emit()) return false;
      if (kv.mod_revision <= at_) newest = kv;
      return true;
    });
    if (!s.ok()) return s;
    if (!stopped) emit();
    return absl::OkStatus();
  }

  absl::Status ScanHistory(const std::string& begin, const std::string& end,
                           absl::FunctionRef<bool(const KeyValue&)> visit) const override {
    return base_.ScanHistory(begin, end, [&](const KeyValue& kv) {
      return kv.mod_revision > at_ || visit(kv);
    });
  }

  // Leases are not versioned: the current ones.
  absl::StatusOr<std::optional<Lease>> GetLease(int64_t id) const override {
    return base_.GetLease(id);
  }
  absl::Status ScanLeases(absl::FunctionRef<bool(const Lease&)> visit) const override {
    return base_.ScanLeases(visit);
  }
  absl::Status ScanLeaseKeys(int64_t id,
                             absl::FunctionRef<bool(const std::string&)> visit) const override {
    return base_.ScanLeaseKeys(id, visit);
  }

 private:
  const StoreReader& base_;
  const int64_t at_;
};

absl::StatusOr<RangeResponse> DoRange(const StoreReader& reader, int64_t revision,
                                      const RangeRequest& req) {
  RangeResponse resp;
  resp.header.revision = revision;
  const bool limited = req.limit > 0;
  int64_t count = 0;
  absl::Status s = ForEachInRange(reader, req.key, req.range_end, [&](const KeyValue& kv) {
    ++count;
    if (!req.count_only && (!limited || static_cast<int64_t>(resp.kvs.size()) < req.limit)) {
      resp.kvs.push_back(kv);
      if (req.keys_only) resp.kvs.back().value.clear();
    }
    return true;
  });
  if (!s.ok()) return s;
  resp.count = count;
  // etcd sets `more` from the kvs it fetched, so it is false when count_only.
  resp.more = !req.count_only && limited && count > req.limit;
  return resp;
}

bool CompareKv(const Compare& c, const KeyValue& kv) {
  int result = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case Compare::Target::kVersion: result = cmp(kv.version, c.number); break;
    case Compare::Target::kCreate: result = cmp(kv.create_revision, c.number); break;
    case Compare::Target::kMod: result = cmp(kv.mod_revision, c.number); break;
    case Compare::Target::kLease: result = cmp(kv.lease, c.number); break;
    case Compare::Target::kValue: {
      // std::string compares char as unsigned (char_traits<char>), like Go's bytes.Compare.
      int r = kv.value.compare(c.value);
      result = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    }
  }
  switch (c.result) {
    case Compare::Result::kEqual: return result == 0;
    case Compare::Result::kGreater: return result > 0;
    case Compare::Result::kLess: return result < 0;
    case Compare::Result::kNotEqual: return result != 0;
  }
  AM_CHECK(false, "unknown compare result ", static_cast<int>(c.result));
  return false;
}

// Runs one command against the batch view. Writes go into `changes` (which the view reads), all
// at revision `revision + 1`, where `revision` is the store revision before the command.
// A command that etcd refuses for the state it finds (a put on a lease that does not exist, a
// grant of a taken id, ...) is checked before anything is written: Run then returns OK and
// rejection() holds the refusal.
class CommandRunner {
 public:
  CommandRunner(const StoreReader& view, ChangeSet* changes, std::vector<KeyValue>* versions,
                LeaseChangeSet* leases, int64_t revision)
      : view_(view), changes_(changes), versions_(versions), leases_(leases),
        revision_(revision) {}

  bool wrote() const { return wrote_; }
  const absl::Status& rejection() const { return rejection_; }
  // The revision a read (or an op's header) observes at this point of the command.
  int64_t observed_revision() const { return wrote_ ? revision_ + 1 : revision_; }

  absl::StatusOr<CommandResponse> Run(const Command& c) {
    AM_CHECK(!std::holds_alternative<CompactRequest>(c.op), "ExecuteBatch runs compactions");
    if (const auto* p = std::get_if<PutRequest>(&c.op)) {
      if (absl::Status s = CheckPut(*p); !s.ok()) return s;
      if (!rejection_.ok()) return CommandResponse();
      return Wrap(Put(*p));
    }
    if (const auto* d = std::get_if<DeleteRangeRequest>(&c.op)) return Wrap(Delete(*d));
    if (const auto* g = std::get_if<LeaseGrantRequest>(&c.op)) return Wrap(Grant(*g));
    if (const auto* r = std::get_if<LeaseRevokeRequest>(&c.op)) return Wrap(Revoke(*r));
    if (const auto* k = std::get_if<LeaseCheckpointRequest>(&c.op)) return Wrap(Checkpoint(*k));
    return Wrap(Txn(std::get<TxnRequest>(c.op)));
  }

 private:
  template <typename T>
  static absl::StatusOr<CommandResponse> Wrap(absl::StatusOr<T> r) {
    if (!r.ok()) return r.status();
    return CommandResponse(*std::move(r));
  }

  // etcd's checkPut: the lease must exist; ignore_lease needs an existing key. A refusal goes
  // to rejection_; the returned status is a storage error.
  absl::Status CheckPut(const PutRequest& req) {
    if (req.lease != 0) {
      absl::StatusOr<std::optional<Lease>> lease = view_.GetLease(req.lease);
      if (!lease.ok()) return lease.status();
      if (!lease->has_value()) rejection_ = absl::NotFoundError(kErrLeaseNotFound);
    }
    if (req.ignore_lease) {
      absl::StatusOr<std::optional<KeyValue>> prev = view_.Get(req.key);
      if (!prev.ok()) return prev.status();
      if (!prev->has_value()) rejection_ = absl::InvalidArgumentError(kErrKeyNotFound);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<PutResponse> Put(const PutRequest& req) {
    absl::StatusOr<std::optional<KeyValue>> prev = view_.Get(req.key);
    if (!prev.ok()) return prev.status();
    const int64_t rev = revision_ + 1;
    KeyValue kv;
    kv.key = req.key;
    kv.value = req.value;
    kv.mod_revision = rev;
    kv.lease = req.lease;
    if (prev->has_value()) {
      kv.create_revision = (*prev)->create_revision;
      kv.version = (*prev)->version + 1;
      if (req.ignore_lease) kv.lease = (*prev)->lease;
    } else {
      AM_CHECK(!req.ignore_lease, "ignore_lease on a missing key passed CheckPut: ", req.key);
      kv.create_revision = rev;
      kv.version = 1;
    }
    AM_CHECK_LE(kv.create_revision, kv.mod_revision, "key ", req.key);
    versions_->push_back(kv);
    (*changes_)[req.key] = std::move(kv);
    wrote_ = true;

    PutResponse resp;
    resp.header.revision = rev;
    if (req.prev_kv && prev->has_value()) resp.prev_kv = std::move(**prev);
    return resp;
  }

  // Deletes `victims` (current pairs) at the command's revision.
  void DeleteAll(const std::vector<KeyValue>& victims) {
    for (const KeyValue& kv : victims) {
      versions_->push_back(Tombstone(kv.key, revision_ + 1));
      (*changes_)[kv.key] = std::nullopt;
    }
    if (!victims.empty()) wrote_ = true;
  }

  absl::StatusOr<LeaseGrantResponse> Grant(const LeaseGrantRequest& req) {
    absl::StatusOr<std::optional<Lease>> existing = view_.GetLease(req.id);
    if (!existing.ok()) return existing.status();
    LeaseGrantResponse resp;
    resp.header.revision = revision_;
    if (existing->has_value()) {
      rejection_ = absl::FailedPreconditionError(kErrLeaseExists);
      return resp;
    }
    AM_CHECK(req.id > 0 && req.ttl > 0, "an invalid grant passed ValidateCommand");
    (*leases_)[req.id] = Lease{req.id, req.ttl, 0};
    resp.id = req.id;
    resp.ttl = req.ttl;
    return resp;
  }

  // etcd's lessor Revoke: the lease's keys go in one write, in key order.
  absl::StatusOr<LeaseRevokeResponse> Revoke(const LeaseRevokeRequest& req) {
    absl::StatusOr<std::optional<Lease>> existing = view_.GetLease(req.id);
    if (!existing.ok()) return existing.status();
    LeaseRevokeResponse resp;
    if (!existing->has_value()) {
      rejection_ = absl::NotFoundError(kErrLeaseNotFound);
      resp.header.revision = revision_;
      return resp;
    }
    std::vector<std::string> keys;
    absl::Status s = view_.ScanLeaseKeys(req.id, [&](const std::string& k) {
      keys.push_back(k);
      return true;
    });
    if (!s.ok()) return s;
    std::vector<KeyValue> victims;
    for (const std::string& k : keys) {
      absl::StatusOr<std::optional<KeyValue>> kv = view_.Get(k);
      if (!kv.ok()) return kv.status();
      AM_CHECK(kv->has_value() && (*kv)->lease == req.id, "lease index lists ", k,
               " under lease ", req.id, " but the key is not on it");
      victims.push_back(**kv);
    }
    DeleteAll(victims);
    (*leases_)[req.id] = std::nullopt;
    resp.header.revision = observed_revision();
    resp.deleted = static_cast<int64_t>(victims.size());
    return resp;
  }

  absl::StatusOr<LeaseCheckpointResponse> Checkpoint(const LeaseCheckpointRequest& req) {
    for (const LeaseCheckpointRequest::Checkpoint& one : req.checkpoints) {
      absl::StatusOr<std::optional<Lease>> lease = view_.GetLease(one.id);
      if (!lease.ok()) return lease.status();
      if (!lease->has_value()) continue;  // revoked since the leader checkpointed it
      Lease updated = **lease;
      updated.remaining_ttl = one.remaining_ttl;
      (*leases_)[one.id] = updated;
    }
    LeaseCheckpointResponse resp;
    resp.header.revision = revision_;
    return resp;
  }

  absl::StatusOr<DeleteRangeResponse> Delete(const DeleteRangeRequest& req) {
    std::vector<KeyValue> victims;
    absl::Status s = ForEachInRange(view_, req.key, req.range_end, [&](const KeyValue& kv) {
      victims.push_back(kv);
      return true;
    });
    if (!s.ok()) return s;
    DeleteAll(victims);

    DeleteRangeResponse resp;
    resp.header.revision = observed_revision();
    resp.deleted = static_cast<int64_t>(victims.size());
    if (req.prev_kv) resp.prev_kvs = std::move(victims);
    return resp;
  }

  // Every key in the compare's range must satisfy it; an empty range compares a zero KeyValue,
  // except that a value compare is then false (etcd's applyCompare).
  absl::StatusOr<bool> Holds(const Compare& c) {
    bool any = false;
    bool all = true;
    absl::Status s = ForEachInRange(view_, c.key, c.range_end, [&](const KeyValue& kv) {
      any = true;
      if (!CompareKv(c, kv)) {
        all = false;
        return false;
      }
      return true;
    });
    if (!s.ok()) return s;
    if (!any) return c.target != Compare::Target::kValue && CompareKv(c, KeyValue{});
    return all;
  }

  absl::StatusOr<TxnResponse> Txn(const TxnRequest& req) {
    bool succeeded = true;
    for (const Compare& c : req.compare) {
      absl::StatusOr<bool> holds = Holds(c);
      if (!holds.ok()) return holds.status();
      if (!*holds) {
        succeeded = false;
        break;
      }
    }
    TxnResponse resp;
    resp.succeeded = succeeded;
    const std::vector<RequestOp>& ops = succeeded ? req.success : req.failure;
    // etcd checks the puts of the branch that runs before running any of it.
    for (const RequestOp& op : ops) {
      const auto* p = std::get_if<PutRequest>(&op);
      if (p == nullptr) continue;
      if (absl::Status s = CheckPut(*p); !s.ok()) return s;
      if (!rejection_.ok()) return resp;
    }
    resp.responses.reserve(ops.size());
    for (const RequestOp& op : ops) {
      if (const auto* r = std::get_if<RangeRequest>(&op)) {
        absl::StatusOr<RangeResponse> rr = DoRange(view_, observed_revision(), *r);
        if (!rr.ok()) return rr.status();
        resp.responses.emplace_back(*std::move(rr));
      } else if (const auto* p = std::get_if<PutRequest>(&op)) {
        absl::StatusOr<PutResponse> pr = Put(*p);
        if (!pr.ok()) return pr.status();
        resp.responses.emplace_back(*std::move(pr));
      } else {
        absl::StatusOr<DeleteRangeResponse> dr = Delete(std::get<DeleteRangeRequest>(op));
        if (!dr.ok()) return dr.status();
        resp.responses.emplace_back(*std::move(dr));
      }
    }
    resp.header.revision = observed_revision();
    return resp;
  }

  const StoreReader& view_;
  ChangeSet* changes_;
  std::vector<KeyValue>* versions_;
  LeaseChangeSet* leases_;
  const int64_t revision_;
  bool wrote_ = false;
  absl::Status rejection_;
};

}  // namespace

bool InRange(const std::string& k, const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return k == key;
  if (IsFromKeyEnd(range_end)) return k >= key;
  return k >= key && k < range_end;
}

absl::Status ForEachInRange(const StoreReader& reader, const std::string& key,
                            const std::string& range_end,
                            absl::FunctionRef<bool(const KeyValue&)> visit) {
  if (range_end.empty()) {
    absl::StatusOr<std::optional<KeyValue>> kv = reader.Get(key);
    if (!kv.ok()) return kv.status();
    if (kv->has_value()) visit(**kv);
    return absl::OkStatus();
  }
  if (IsFromKeyEnd(range_end)) return reader.Scan(key, "", visit);
  if (range_end <= key) return absl::OkStatus();  // an empty interval
  return reader.Scan(key, range_end, visit);
}

absl::StatusOr<uint32_t> HashState(const StoreReader& reader) {
  uint32_t crc = 0;
  const auto extend = [&crc](const void* data, size_t n) { crc = Crc32cExtend(crc, data, n); };
  const auto extend_u32 = [&](uint32_t v) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
    extend(b, sizeof(b));
  };
  const auto extend_i64 = [&](int64_t v) {
    unsigned char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(static_cast<uint64_t>(v) >> (8 * i));
    extend(b, sizeof(b));
  };
  std::string last;
  absl::Status s = reader.Scan("", "", [&](const KeyValue& kv) {
    AM_CHECK(last.empty() || kv.key > last, "Scan out of order");
    last = kv.key;
    extend_u32(static_cast<uint32_t>(kv.key.size()));
    extend(kv.key.data(), kv.key.size());
    extend_u32(static_cast<uint32_t>(kv.value.size()));
    extend(kv.value.data(), kv.value.size());
    extend_i64(kv.create_revision);
    extend_i64(kv.mod_revision);
    extend_i64(kv.version);
    if (kv.lease != 0) extend_i64(kv.lease);
    return true;
  });
  if (!s.ok()) return s;
  return crc;
}

absl::StatusOr<RangeResponse> ExecuteRange(const StoreReader& base, Revisions revisions,
                                           const RangeRequest& request) {
  absl::Status s = ValidateRangeRequest(request);
  if (!s.ok()) return s;
  if (request.revision <= 0 || request.revision == revisions.current) {
    return DoRange(base, revisions.current, request);
  }
  if (s = CheckRevision(request.revision, revisions); !s.ok()) return s;
  return DoRange(AtRevisionReader(base, request.revision), revisions.current, request);
}

absl::Status ExecuteHistory(const StoreReader& base, Revisions revisions, const std::string& key,
                            const std::string& range_end, int64_t from,
                            absl::FunctionRef<bool(const KeyValue&)> visit) {
  if (from < revisions.compacted) return absl::OutOfRangeError(kErrCompacted);
  if (key.empty()) return absl::InvalidArgumentError("history: key is empty");
  auto newer = [&](const KeyValue& kv) { return kv.mod_revision < from || visit(kv); };
  if (range_end.empty()) return base.ScanHistory(key, key + std::string(1, '\0'), newer);
  if (IsFromKeyEnd(range_end)) return base.ScanHistory(key, "", newer);
  if (range_end <= key) return absl::OkStatus();
  return base.ScanHistory(key, range_end, newer);
}

absl::StatusOr<uint32_t> HashStateAt(const StoreReader& base, Revisions revisions,
                                     int64_t revision) {
  if (revision <= 0 || revision == revisions.current) return HashState(base);
  if (absl::Status s = CheckRevision(revision, revisions); !s.ok()) return s;
  return HashState(AtRevisionReader(base, revision));
}

namespace {

// What a compaction at `at` discards from `view`'s history (stored versions and the batch's
// own): per key, every version older than its newest one at or below `at`, and that newest one
// too when it is a tombstone below `at`. A tombstone at `at` stays, so that a watch from `at`
// still sees the delete. Versions newer than `at` stay.
absl::Status PlanCompaction(const StoreReader& view, int64_t at, BatchOutcome* out) {
  std::vector<KeyValue> discard;
  std::optional<KeyValue> newest;  // of the key being visited, at or below `at`
  std::optional<KeyValue> last;    // the version visited before, for the order check
  auto end_key = [&]() {
    if (newest.has_value() && IsTombstone(*newest) && newest->mod_revision < at) {
      discard.push_back(*std::move(newest));
    }
    newest.reset();
  };
  absl::Status s = view.ScanHistory("", "", [&](const KeyValue& kv) {
    AM_CHECK(!last.has_value() || last->key < kv.key ||
                 (last->key == kv.key && last->mod_revision < kv.mod_revision),
             "history out of (key, revision) order at ", Describe(kv));
    if (last.has_value() && last->key != kv.key) end_key();
    last = kv;
    if (kv.mod_revision > at) return true;
    if (newest.has_value()) discard.push_back(*std::move(newest));
    newest = kv;
    return true;
  });
  if (!s.ok()) return s;
  end_key();
  // Versions of this batch among them are written and removed in the same atomic step.
  for (KeyValue& kv : discard) {
    AM_CHECK(kv.mod_revision <= at, "discarding ", Describe(kv), " above the compaction");
    out->discarded.push_back(std::move(kv));
  }
  return absl::OkStatus();
}

// The lease index entries the batch's key changes move: a key leaves its old lease's entry
// and joins its new one's.
absl::Status PlanLeaseIndex(const StoreReader& base, BatchOutcome* out) {
  for (const auto& [key, kv] : out->changes) {
    absl::StatusOr<std::optional<KeyValue>> old = base.Get(key);
    if (!old.ok()) return old.status();
    const int64_t from = old->has_value() ? (*old)->lease : 0;
    const int64_t to = kv.has_value() ? kv->lease : 0;
    if (from == to) continue;
    if (from != 0) out->lease_keys[{from, key}] = false;
    if (to != 0) out->lease_keys[{to, key}] = true;
  }
  for (const auto& [id, lease] : out->lease_changes) {
    AM_CHECK(!lease.has_value() || (lease->id == id && lease->ttl > 0), "lease ", id,
             " changed to ", Describe(*lease));
  }
  return absl::OkStatus();
}

// A compaction's outcome, decided at its place in the batch.
absl::Status RunCompact(const CompactRequest& req, Revisions* revisions,
                        std::optional<CompactResponse>* response) {
  if (req.revision > revisions->current) return absl::OutOfRangeError(kErrFutureRev);
  if (req.revision <= revisions->compacted) return absl::OutOfRangeError(kErrCompacted);
  revisions->compacted = req.revision;
  CompactResponse r;
  r.header.revision = revisions->current;
  *response = r;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BatchOutcome> ExecuteBatch(const StoreReader& base, uint64_t applied_index,
                                          Revisions revisions, absl::Span<const ApplyItem> batch) {
  AM_CHECK_GE(revisions.current, kInitialRevision);
  AM_CHECK_GE(revisions.current, revisions.compacted);
  for (size_t i = 0; i < batch.size(); ++i) {
    const uint64_t want = applied_index + 1 + i;
    if (batch[i].index != want) {
      return absl::FailedPreconditionError(absl::StrCat(
          "apply: batch item ", i, " has index ", batch[i].index, ", want ", want,
          " (applied index ", applied_index, "; indexes must be contiguous from it)"));
    }
  }

  BatchOutcome out;
  out.applied_index = applied_index;
  out.revisions = revisions;
  out.results.reserve(batch.size());
  OverlayReader view(base, out.changes, out.versions, out.lease_changes);
  for (const ApplyItem& item : batch) {
    AM_CHECK(!(item.command.has_value() && !item.decode_error.ok()),
             "apply item ", item.index, " has both a command and a decode error");
    ApplyResult r;
    r.index = item.index;
    if (!item.decode_error.ok()) {
      r.status = item.decode_error;  // the undecodable-entry rule (command.h)
    } else if (item.command.has_value()) {
      r.request_id = item.command->request_id;
      absl::Status valid = ValidateCommand(*item.command);
      if (!valid.ok()) {
        r.status = valid;
      } else if (const auto* c = std::get_if<CompactRequest>(&item.command->op)) {
        std::optional<CompactResponse> compacted;
        r.status = RunCompact(*c, &out.revisions, &compacted);
        if (compacted.has_value()) r.response = *compacted;
      } else {
        CommandRunner runner(view, &out.changes, &out.versions, &out.lease_changes,
                             out.revisions.current);
        absl::StatusOr<CommandResponse> resp = runner.Run(*item.command);
        if (!resp.ok()) return resp.status();  // storage error: nothing is committed
        if (!runner.rejection().ok()) {
          AM_CHECK(!runner.wrote(), "a refused command wrote: ", Describe(*item.command));
          r.status = runner.rejection();
        } else {
          r.response = *std::move(resp);
          if (runner.wrote()) ++out.revisions.current;
        }
      }
    }
    out.applied_index = item.index;
    out.results.push_back(std::move(r));
  }
  AM_CHECK_LE(out.revisions.current - revisions.current, static_cast<int64_t>(batch.size()),
              "a batch bumps the revision at most once per item");
  if (out.revisions.compacted != revisions.compacted) {
    absl::Status s = PlanCompaction(view, out.revisions.compacted, &out);
    if (!s.ok()) return s;
  }
  if (absl::Status s = PlanLeaseIndex(base, &out); !s.ok()) return s;
  return out;
}

}  // namespace amaters::kv
