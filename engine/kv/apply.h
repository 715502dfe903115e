// The etcd KV semantics, written once for every StateMachine implementation.
//
// An implementation is a store of key-value pairs with their history (every version of every
// key since the last compaction) plus (applied index, revision, compact revision). It exposes
// its committed state through StoreReader; ExecuteBatch computes, on top of that state and without
// changing it, the results of a batch and the resulting changes, which the implementation then
// commits in one atomic step (a map update in memory, one WriteBatch in RocksDB). Reads made
// during the batch go through an overlay of the batch's own pending writes, so later items and
// later ops of a txn see earlier writes.
#ifndef AMATERS_ENGINE_KV_APPLY_H_
#define AMATERS_ENGINE_KV_APPLY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/kv/state_machine.h"

namespace amaters::kv {

// Read access to a committed key-value state. Errors are storage errors (for example kDataLoss
// for a damaged stored value); they abort the operation that read.
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  virtual absl::StatusOr<std::optional<KeyValue>> Get(const std::string& key) const = 0;

  // Calls `visit` on every pair with begin <= key < end (no upper bound when `end` is empty),
  // in ascending key order, until `visit` returns false.
  virtual absl::Status Scan(const std::string& begin, const std::string& end,
                            absl::FunctionRef<bool(const KeyValue&)> visit) const = 0;

  // Calls `visit` on every stored version (tombstones included, IsTombstone) of every key with
  // begin <= key < end (no upper bound when `end` is empty), ascending by key and, within a
  // key, by mod_revision, until `visit` returns false.
  virtual absl::Status ScanHistory(const std::string& begin, const std::string& end,
                                   absl::FunctionRef<bool(const KeyValue&)> visit) const = 0;

  // Leases (not versioned: every reader sees the current ones). GetLease: the lease `id`, or
  // nullopt. ScanLeases: every lease in ascending id order. ScanLeaseKeys: the keys attached
  // to lease `id` (current pairs whose lease is `id`), ascending; each until `visit` returns
  // false.
  virtual absl::StatusOr<std::optional<Lease>> GetLease(int64_t id) const = 0;
  virtual absl::Status ScanLeases(absl::FunctionRef<bool(const Lease&)> visit) const = 0;
  virtual absl::Status ScanLeaseKeys(int64_t id,
                                     absl::FunctionRef<bool(const std::string&)> visit) const = 0;
};

// The revisions of a store: its current revision and the revision of its last compaction.
struct Revisions {
  int64_t current = kInitialRevision;
  int64_t compacted = kInitialRevision;
};

// Changes made by a batch: the final state of every key it wrote (nullopt = deleted).
using ChangeSet = std::map<std::string, std::optional<KeyValue>>;
// The final state of every lease a batch granted, revoked or checkpointed (nullopt = revoked).
using LeaseChangeSet = std::map<int64_t, std::optional<Lease>>;
// Entries of the lease index (lease id, key) a batch adds (true) or removes (false).
using LeaseKeyChanges = std::map<std::pair<int64_t, std::string>, bool>;

struct BatchOutcome {
  std::vector<ApplyResult> results;  // one per item
  ChangeSet changes;
  // The versions the batch wrote, in revision order (at most one per key and revision): the
  // events a watcher sees.
  std::vector<KeyValue> versions;
  // Versions (identified by key and mod_revision) that a compaction in the batch discards:
  // stored ones, and ones of `versions` (the store writes those and removes them again);
  // empty unless the batch compacted.
  std::vector<KeyValue> discarded;
  LeaseChangeSet lease_changes;
  LeaseKeyChanges lease_keys;
  uint64_t applied_index = 0;  // after the batch
  Revisions revisions;         // after the batch
};

// Computes the effect of `batch` on the state (`base`, applied_index, revisions). Errors:
// kFailedPrecondition when the indexes are not contiguous from applied_index + 1; any error
// `base` returns. The caller commits the outcome atomically, or nothing on error: it stores
// `changes` and `versions`, then removes `discarded`, stores `lease_changes` and
// `lease_keys`, and records the new indexes.
// AM_CHECK: an item with both a command and a decode error (a driver bug).
absl::StatusOr<BatchOutcome> ExecuteBatch(const StoreReader& base, uint64_t applied_index,
                                          Revisions revisions, absl::Span<const ApplyItem> batch);

// Serves a read, at request.revision when set (from the history). kInvalidArgument for an empty
// key; kOutOfRange kErrCompacted / kErrFutureRev for a revision the store does not hold.
absl::StatusOr<RangeResponse> ExecuteRange(const StoreReader& base, Revisions revisions,
                                           const RangeRequest& request);

// StateMachine::History over `base`.
absl::Status ExecuteHistory(const StoreReader& base, Revisions revisions, const std::string& key,
                            const std::string& range_end, int64_t from,
                            absl::FunctionRef<bool(const KeyValue&)> visit);

// A checksum of the whole state (etcd's Maintenance.HashKV), so replicas at the same revision
// can be compared: CRC-32C over every pair in key order, each as u32 key length, key, u32 value
// length, value, then create_revision, mod_revision and version as little-endian i64, and,
// for a pair attached to a lease, its lease id as little-endian i64. Errors are `reader`'s.
absl::StatusOr<uint32_t> HashState(const StoreReader& reader);

// HashState of the state at `revision` (0 = current). Errors as ExecuteRange.
absl::StatusOr<uint32_t> HashStateAt(const StoreReader& base, Revisions revisions,
                                     int64_t revision);

// Calls `visit` on every stored pair selected by (key, range_end) with the range semantics of
// RangeRequest, ascending, until it returns false.
absl::Status ForEachInRange(const StoreReader& reader, const std::string& key,
                            const std::string& range_end,
                            absl::FunctionRef<bool(const KeyValue&)> visit);

// Whether `k` lies in the range (key, range_end) (RangeRequest semantics).
bool InRange(const std::string& k, const std::string& key, const std::string& range_end);

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_APPLY_H_
