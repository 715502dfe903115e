// The in-memory StateMachine (simulator and tests): a std::map of the latest key-value pairs,
// plus applied index and revision. Snapshots are full copies kept in a map by name.
//
// Nothing is durable: a crash of the owning process loses everything, and the driver rebuilds
// the state by re-applying its log (or, later, a Raft snapshot).
#ifndef AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_
#define AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_

#include <cstdint>
#include <map>
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
  absl::StatusOr<uint32_t> HashKV() const override;
  uint64_t applied_index() const override { return state_.applied_index; }
  int64_t revision() const override { return state_.revision; }

  absl::Status CreateSnapshot(const std::string& name) override;
  absl::Status RestoreSnapshot(const std::string& name) override;
  absl::Status DeleteSnapshot(const std::string& name) override;
  absl::Status ExportSnapshot(const std::string& name, SnapshotSink sink) const override;
  absl::Status ImportSnapshot(const std::string& name, SnapshotSource source) override;

  // Number of keys stored (for tests and the simulator's memory accounting).
  size_t size() const { return state_.kvs.size(); }

 private:
  struct State {
    std::map<std::string, KeyValue> kvs;
    uint64_t applied_index = 0;
    int64_t revision = kInitialRevision;
  };

  // StoreReader over state_.
  absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) const override;
  absl::Status Scan(const std::string& begin, const std::string& end,
                    absl::FunctionRef<bool(const KeyValue&)> visit) const override;

  State state_;
  std::map<std::string, State> snapshots_;
};

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_MEMORY_STATE_MACHINE_H_
