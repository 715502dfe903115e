#include "engine/kv/memory_state_machine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/kv/snapshot_file.h"

namespace amaters::kv {

absl::StatusOr<std::optional<KeyValue>> MemoryStateMachine::Get(const std::string& key) const {
  auto it = state_.keys.find(key);
  if (it == state_.keys.end() || IsTombstone(it->second.back())) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second.back());
}

absl::Status MemoryStateMachine::Scan(const std::string& begin, const std::string& end,
                                      absl::FunctionRef<bool(const KeyValue&)> visit) const {
  for (auto it = state_.keys.lower_bound(begin);
       it != state_.keys.end() && (end.empty() || it->first < end); ++it) {
    if (IsTombstone(it->second.back())) continue;
    if (!visit(it->second.back())) break;
  }
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::ScanHistory(
    const std::string& begin, const std::string& end,
    absl::FunctionRef<bool(const KeyValue&)> visit) const {
  for (auto it = state_.keys.lower_bound(begin);
       it != state_.keys.end() && (end.empty() || it->first < end); ++it) {
    for (const KeyValue& kv : it->second) {
      if (!visit(kv)) return absl::OkStatus();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<Lease>> MemoryStateMachine::GetLease(int64_t id) const {
  auto it = state_.leases.find(id);
  if (it == state_.leases.end()) return std::optional<Lease>();
  return std::optional<Lease>(it->second);
}

absl::Status MemoryStateMachine::ScanLeases(absl::FunctionRef<bool(const Lease&)> visit) const {
  for (const auto& [id, lease] : state_.leases) {
    if (!visit(lease)) break;
  }
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::ScanLeaseKeys(
    int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const {
  auto it = state_.lease_keys.find(id);
  if (it == state_.lease_keys.end()) return absl::OkStatus();
  for (const std::string& key : it->second) {
    if (!visit(key)) break;
  }
  return absl::OkStatus();
}

void MemoryStateMachine::CommitLeases(State* st, const BatchOutcome& out) {
  for (const auto& [id, lease] : out.lease_changes) {
    if (lease.has_value()) {
      st->leases[id] = *lease;
    } else {
      st->leases.erase(id);  // not there when the same batch granted it: never stored
    }
  }
  for (const auto& [entry, add] : out.lease_keys) {
    const auto& [id, key] = entry;
    if (add) {
      AM_CHECK(st->leases.count(id) == 1, "key ", key, " attached to missing lease ", id);
      st->lease_keys[id].insert(key);
      continue;
    }
    auto it = st->lease_keys.find(id);
    AM_CHECK(it != st->lease_keys.end() && it->second.erase(key) == 1, "key ", key,
             " was not on lease ", id);
    if (it->second.empty()) st->lease_keys.erase(it);
  }
  for (const auto& [id, lease] : out.lease_changes) {
    AM_CHECK(lease.has_value() || st->lease_keys.count(id) == 0, "revoked lease ", id,
             " keeps keys");
  }
}

void MemoryStateMachine::AddVersion(State* st, const KeyValue& kv) {
  std::vector<KeyValue>& versions = st->keys[kv.key];
  AM_CHECK(versions.empty() || versions.back().mod_revision < kv.mod_revision,
           "versions of a key out of order: ", Describe(kv));
  const bool was_live = !versions.empty() && !IsTombstone(versions.back());
  const bool live = !IsTombstone(kv);
  versions.push_back(kv);
  if (was_live != live) live ? ++st->live_keys : --st->live_keys;
}

void MemoryStateMachine::RemoveVersion(State* st, const KeyValue& kv) {
  auto it = st->keys.find(kv.key);
  AM_CHECK(it != st->keys.end(), "no versions to discard for ", Describe(kv));
  std::vector<KeyValue>& versions = it->second;
  auto v = std::find_if(versions.begin(), versions.end(), [&](const KeyValue& x) {
    return x.mod_revision == kv.mod_revision;
  });
  AM_CHECK(v != versions.end(), "no version to discard: ", Describe(kv));
  // A live newest version goes only with a tombstone after it that the same compaction dropped
  // before it was stored: the key goes whole.
  const bool was_live = !IsTombstone(versions.back());
  versions.erase(v);
  AM_CHECK(!was_live || versions.empty() || !IsTombstone(versions.back()),
           "a compaction left a tombstone as ", kv.key, "'s newest version");
  if (versions.empty()) {
    st->keys.erase(it);
    if (was_live) --st->live_keys;
  }
}

absl::StatusOr<std::vector<ApplyResult>> MemoryStateMachine::Apply(
    absl::Span<const ApplyItem> batch) {
  absl::StatusOr<BatchOutcome> out =
      ExecuteBatch(*this, state_.applied_index, state_.revisions, batch);
  if (!out.ok()) return out.status();
  // Commit: nothing below can fail, so the batch is applied whole. The current state of a key
  // is its newest version, so `changes` needs no separate step.
  for (const KeyValue& kv : out->versions) AddVersion(&state_, kv);
  for (const KeyValue& kv : out->discarded) RemoveVersion(&state_, kv);
  for (const auto& [key, kv] : out->changes) {
    auto it = state_.keys.find(key);
    AM_CHECK(kv.has_value() ? it != state_.keys.end() && it->second.back() == *kv
                            : it == state_.keys.end() || IsTombstone(it->second.back()),
             "the newest version of ", key, " is not what the batch wrote");
  }
  CommitLeases(&state_, *out);
  AM_CHECK_GE(out->revisions.current, state_.revisions.current, "revision never decreases");
  state_.applied_index = out->applied_index;
  state_.revisions = out->revisions;
  last_versions_ = std::move(out->versions);
  return std::move(out->results);
}

absl::StatusOr<RangeResponse> MemoryStateMachine::Range(const RangeRequest& request) const {
  return ExecuteRange(*this, state_.revisions, request);
}

absl::StatusOr<uint32_t> MemoryStateMachine::HashKV(int64_t revision) const {
  return HashStateAt(*this, state_.revisions, revision);
}

absl::Status MemoryStateMachine::History(const std::string& key, const std::string& range_end,
                                         int64_t from,
                                         absl::FunctionRef<bool(const KeyValue&)> visit) const {
  return ExecuteHistory(*this, state_.revisions, key, range_end, from, visit);
}

absl::Status MemoryStateMachine::CreateSnapshot(const std::string& name) {
  absl::Status s = ValidateSnapshotName(name);
  if (!s.ok()) return s;
  if (snapshots_.count(name) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  snapshots_.emplace(name, state_);
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::RestoreSnapshot(const std::string& name) {
  absl::Status s = ValidateSnapshotName(name);
  if (!s.ok()) return s;
  auto it = snapshots_.find(name);
  if (it == snapshots_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));
  }
  state_ = it->second;
  last_versions_.clear();
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::DeleteSnapshot(const std::string& name) {
  absl::Status s = ValidateSnapshotName(name);
  if (!s.ok()) return s;
  if (snapshots_.erase(name) == 0) {
    return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));
  }
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::ExportSnapshot(const std::string& name,
                                               SnapshotSink sink) const {
  if (absl::Status s = ValidateSnapshotName(name); !s.ok()) return s;
  auto it = snapshots_.find(name);
  if (it == snapshots_.end()) {
    return absl::NotFoundError(absl::StrCat("snapshot ", name, " not found"));
  }
  const State& st = it->second;
  SnapshotFileWriter w(st.applied_index, st.revisions.current, st.revisions.compacted, sink);
  for (const auto& [key, versions] : st.keys) {
    for (const KeyValue& kv : versions) {
      if (absl::Status s = w.Add(kv); !s.ok()) return s;
    }
  }
  if (absl::Status s = w.BeginLeases(st.leases.size()); !s.ok()) return s;
  for (const auto& [id, lease] : st.leases) {
    if (absl::Status s = w.AddLease(lease); !s.ok()) return s;
  }
  return w.Finish();
}

absl::Status MemoryStateMachine::IndexLeases(State* st) {
  for (const auto& [key, versions] : st->keys) {
    const KeyValue& newest = versions.back();
    if (IsTombstone(newest) || newest.lease == 0) continue;
    if (st->leases.count(newest.lease) == 0) {
      return absl::DataLossError(absl::StrCat("snapshot file: key ", Describe(newest),
                                              " is attached to a lease it does not hold"));
    }
    st->lease_keys[newest.lease].insert(key);
  }
  return absl::OkStatus();
}

absl::Status MemoryStateMachine::ImportSnapshot(const std::string& name,
                                               SnapshotSource source) {
  if (absl::Status s = ValidateSnapshotName(name); !s.ok()) return s;
  if (snapshots_.count(name) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  State st;
  SnapshotFileReader r(
      [&st](const KeyValue& kv) {
        AddVersion(&st, kv);
        return absl::OkStatus();
      },
      [&st](const Lease& lease) {
        st.leases.emplace(lease.id, lease);
        return absl::OkStatus();
      });
  while (true) {
    absl::StatusOr<std::string> piece = source();
    if (!piece.ok()) return piece.status();
    if (piece->empty()) break;
    if (absl::Status s = r.Feed(*piece); !s.ok()) return s;
  }
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  if (absl::Status s = IndexLeases(&st); !s.ok()) return s;
  st.applied_index = r.applied_index();
  st.revisions = Revisions{r.revision(), r.compact_revision()};
  snapshots_.emplace(name, std::move(st));
  return absl::OkStatus();
}

}  // namespace amaters::kv
