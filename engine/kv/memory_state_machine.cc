#include "engine/kv/memory_state_machine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/kv/snapshot_file.h"

namespace amaters::kv {

absl::StatusOr<std::optional<KeyValue>> MemoryStateMachine::Get(const std::string& key) const {
  auto it = state_.kvs.find(key);
  if (it == state_.kvs.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second);
}

absl::Status MemoryStateMachine::Scan(const std::string& begin, const std::string& end,
                                      absl::FunctionRef<bool(const KeyValue&)> visit) const {
  for (auto it = state_.kvs.lower_bound(begin);
       it != state_.kvs.end() && (end.empty() || it->first < end); ++it) {
    if (!visit(it->second)) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ApplyResult>> MemoryStateMachine::Apply(
    absl::Span<const ApplyItem> batch) {
  absl::StatusOr<BatchOutcome> out =
      ExecuteBatch(*this, state_.applied_index, state_.revision, batch);
  if (!out.ok()) return out.status();
  // Commit: nothing below can fail, so the batch is applied whole.
  for (auto& [key, kv] : out->changes) {
    if (kv.has_value()) {
      AM_CHECK_EQ(kv->key, key);
      state_.kvs[key] = std::move(*kv);
    } else {
      state_.kvs.erase(key);
    }
  }
  AM_CHECK_GE(out->revision, state_.revision, "revision never decreases");
  state_.applied_index = out->applied_index;
  state_.revision = out->revision;
  return std::move(out->results);
}

absl::StatusOr<RangeResponse> MemoryStateMachine::Range(const RangeRequest& request) const {
  return ExecuteRange(*this, state_.revision, request);
}

absl::StatusOr<uint32_t> MemoryStateMachine::HashKV() const { return HashState(*this); }

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
  SnapshotFileWriter w(st.applied_index, st.revision, sink);
  for (const auto& [key, kv] : st.kvs) {
    if (absl::Status s = w.Add(kv); !s.ok()) return s;
  }
  return w.Finish();
}

absl::Status MemoryStateMachine::ImportSnapshot(const std::string& name,
                                               SnapshotSource source) {
  if (absl::Status s = ValidateSnapshotName(name); !s.ok()) return s;
  if (snapshots_.count(name) != 0) {
    return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  }
  State st;
  SnapshotFileReader r([&st](const KeyValue& kv) {
    st.kvs.emplace_hint(st.kvs.end(), kv.key, kv);
    return absl::OkStatus();
  });
  while (true) {
    absl::StatusOr<std::string> piece = source();
    if (!piece.ok()) return piece.status();
    if (piece->empty()) break;
    if (absl::Status s = r.Feed(*piece); !s.ok()) return s;
  }
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  st.applied_index = r.applied_index();
  st.revision = r.revision();
  snapshots_.emplace(name, std::move(st));
  return absl::OkStatus();
}

}  // namespace amaters::kv
