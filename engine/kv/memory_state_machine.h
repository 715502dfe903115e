// The in-memory StateMachine (simulator and tests): a std::map from each key to its versions
// (the history since the last compaction; the last one is the key's current state, unless it
// is a tombstone), plus applied index and revisions. Snapshots are full copies kept in a map by
// name.
//
// Nothing is durable: a crash of the owning process loses everything, and the driver rebuilds
// the state by re-applying its log (or, later, a Raft snapshot).
#ifndef AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_
#define AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "engine/kv/apply.h"
#include "engine/kv/state_machine.h"

namespace amaters::kv {

class MemoryStateMachine final : public StateMachine, private StoreReader {
 public:
  MemoryStateMachine() = default;
  MemoryStateMachine(const MemoryStateMachine&) = delete;
  MemoryStateMachine& operator=(const MemoryStateMachine&) = delete;

  absl::StatusOr<std::vector<ApplyResult>> Apply(absl::Span<const ApplyItem> batch) override;
  absl::StatusOr<RangeResponse> Range(const RangeRequest& request) const override;
  absl::StatusOr<uint32_t> HashKV(int64_t revision) const override;
  absl::Status History(const std::string& key, const std::string& range_end, int64_t from,
                       absl::FunctionRef<bool(const KeyValue&)> visit) const override;
  const std::vector<KeyValue>& last_applied_versions() const override { return last_versions_; }
  uint64_t applied_index() const override { return state_.applied_index; }
  int64_t revision() const override { return state_.revisions.current; }
  int64_t compact_revision() const override { return state_.revisions.compacted; }
  absl::StatusOr<std::optional<Lease>> GetLease(int64_t id) const override;
  absl::Status ForEachLease(absl::FunctionRef<bool(const Lease&)> visit) const override {
    return ScanLeases(visit);
  }
  absl::Status ForEachLeaseKey(
      int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const override {
    return ScanLeaseKeys(id, visit);
  }

  absl::Status CreateSnapshot(const std::string& name) override;
  absl::Status RestoreSnapshot(const std::string& name) override;
  absl::Status DeleteSnapshot(const std::string& name) override;
  absl::Status ExportSnapshot(const std::string& name, SnapshotSink sink) const override;
  absl::Status ImportSnapshot(const std::string& name, SnapshotSource source) override;

  // Number of live keys (for tests).
  size_t size() const { return state_.live_keys; }

 private:
  struct State {
    // Every key with at least one version; each vector ascending by mod_revision.
    std::map<std::string, std::vector<KeyValue>> keys;
    size_t live_keys = 0;  // keys whose newest version is not a tombstone
    std::map<int64_t, Lease> leases;
    std::map<int64_t, std::set<std::string>> lease_keys;  // the lease index: id -> keys
    uint64_t applied_index = 0;
    Revisions revisions;
  };

  // StoreReader over state_.
  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) const override;
  absl::Status Scan(const std::string& begin, const std::string& end,
                    absl::FunctionRef<bool(const KeyValue&)> visit) const override;
  absl::Status ScanHistory(const std::string& begin, const std::string& end,
                           absl::FunctionRef<bool(const KeyValue&)> visit) const override;
  absl::Status ScanLeases(absl::FunctionRef<bool(const Lease&)> visit) const override;
  absl::Status ScanLeaseKeys(int64_t id,
                             absl::FunctionRef<bool(const std::string&)> visit) const override;

  // Adds `kv` as the newest version of its key.
  static void AddVersion(State* st, const KeyValue& kv);
  // Builds st->lease_keys from the keys' leases; kDataLoss for a key on a missing lease.
  static absl::Status IndexLeases(State* st);
  // Applies a batch's lease changes and lease index changes.
  static void CommitLeases(State* st, const BatchOutcome& out);
  // Removes the stored version of kv.key at kv.mod_revision (AM_CHECK: it exists).
  static void RemoveVersion(State* st, const KeyValue& kv);

  State state_;
  std::vector<KeyValue> last_versions_;
  std::map<std::string, State> snapshots_;
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_
