// The replicated key-value state machine: etcd v3 KV semantics on top of the Raft log
// (docs/kv-state-machine.md).
//
// Committed Raft entries are applied in index order, in batches. Each entry is a no-op or one
// `Command` (a put, a delete-range or a transaction; engine/kv/command.h converts the entry
// bytes). Two implementations pass one conformance suite (engine/kv/testing/conformance.h):
// MemoryStateMachine (engine/kv/memory_state_machine.h; simulator and tests) and
// RocksDbStateMachine (server/storage/rocksdb_state_machine.h; the server).
//
// Revision arithmetic (etcd's MVCC store):
//  - The store revision of an empty store is 1.
//  - Every applied item that writes (a put; a delete-range that deletes at least one key; a txn
//    whose executed branch holds at least one write) increases it by exactly one, and all writes
//    of one item carry that new revision. Items that write nothing leave it unchanged.
//  - A key's create_revision is the revision that created it (again after delete + re-create),
//    mod_revision the revision of its last write, version 1 on create and +1 per put (a put with
//    the same value counts). A deleted key is gone: a later put re-creates it with version 1.
//
// Revision history (MVCC, docs/kv-state-machine.md "Revision history"):
//  - Every write is kept as a version of its key: a put as the pair it wrote, a delete as a
//    tombstone (IsTombstone: the key, mod_revision = the deleting revision, everything else
//    zero). A Range may read the store as it was at any revision from compact_revision() to
//    revision().
//  - A CompactRequest at revision C (replicated like any write; it does not bump the revision)
//    discards what no read or watch from C on can see: every version of a key older than its
//    newest version at or below C, and that newest one too when it is a tombstone older than C
//    (a delete at C itself stays: a watcher starting at C must see it). Reads below C then
//    fail with kErrCompacted; reads above revision() with kErrFutureRev.
//
// Leases (etcd's lessor, its replicated half; docs/leases.md): a lease is a record (id, granted
// TTL, remaining TTL at its last checkpoint) created by a LeaseGrantRequest and removed by a
// LeaseRevokeRequest, which also deletes every key attached to it (a put with `lease` set
// attaches the key; a later put without it detaches it) at one new revision, as a delete-range
// would. Grants and checkpoints do not change the revision. When a lease expires is decided
// outside the state machine, by the leader's Lessor (engine/kv/lessor.h), which proposes the
// revoke: every replica applies the same entries, so expiry is the same everywhere.
#ifndef AMATERS_ENGINE_KV_STATE_MACHINE_H_
#define AMATERS_ENGINE_KV_STATE_MACHINE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace amaters::kv {

// Upper bound on the compares, and separately on the ops of each branch, of one txn (etcd's
// --max-txn-ops default). Larger txns are rejected with kInvalidArgument. The server rejects
// them before proposing; the state machine checks again because committed bytes are untrusted.
inline constexpr size_t kMaxTxnOps = 128;

// Snapshot names: 1..kMaxSnapshotNameBytes characters from [A-Za-z0-9_-] (they become
// directory names in the RocksDB implementation).
inline constexpr size_t kMaxSnapshotNameBytes = 128;

// The store revision of an empty store (etcd starts its MVCC revision at 1).
inline constexpr int64_t kInitialRevision = 1;

// etcd's errors (its exact text: clients match on it) for a read or a compaction at a revision
// the store no longer holds or does not hold yet. Both are kOutOfRange.
inline constexpr char kErrCompacted[] = "etcdserver: mvcc: required revision has been compacted";
inline constexpr char kErrFutureRev[] = "etcdserver: mvcc: required revision is a future revision";

// etcd's lease errors (exact text) with etcd's codes: kNotFound, kFailedPrecondition,
// kOutOfRange, kInvalidArgument and kInvalidArgument (ignore_lease on a missing key).
inline constexpr char kErrLeaseNotFound[] = "etcdserver: requested lease not found";
inline constexpr char kErrLeaseExists[] = "etcdserver: lease already exists";
inline constexpr char kErrLeaseTtlTooLarge[] = "etcdserver: too large lease TTL";
inline constexpr char kErrLeaseProvided[] = "etcdserver: lease is provided";
inline constexpr char kErrKeyNotFound[] = "etcdserver: key not found";
// etcd's MaxLeaseTTL, in seconds.
inline constexpr int64_t kMaxLeaseTtl = 9000000000;
// Upper bound on the leases of one LeaseCheckpointRequest (etcd's maxLeaseCheckpointBatchSize).
inline constexpr size_t kMaxLeaseCheckpoints = 1000;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // the lease the key is attached to; 0 = none

  bool operator==(const KeyValue& o) const {
    return key == o.key && value == o.value && create_revision == o.create_revision &&
           mod_revision == o.mod_revision && version == o.version && lease == o.lease;
  }
  bool operator!=(const KeyValue& o) const { return !(*this == o); }
};

// A version in the history that records a delete (see "Revision history" above).
inline bool IsTombstone(const KeyValue& kv) { return kv.version == 0; }
// The tombstone of `key` deleted at `revision`.
KeyValue Tombstone(const std::string& key, int64_t revision);

// A granted lease as the state machine holds it.
struct Lease {
  int64_t id = 0;   // > 0
  int64_t ttl = 0;  // granted TTL, seconds, 1..kMaxLeaseTtl
  // The TTL left at the last checkpoint (seconds; 0 = never checkpointed, the full ttl).
  int64_t remaining_ttl = 0;

  bool operator==(const Lease& o) const {
    return id == o.id && ttl == o.ttl && remaining_ttl == o.remaining_ttl;
  }
};

struct ResponseHeader {
  // The store revision as seen by this response: after the write for a write that happened,
  // otherwise the revision the request observed.
  int64_t revision = 0;

  bool operator==(const ResponseHeader& o) const { return revision == o.revision; }
};

// Key ranges, shared by every request with (key, range_end), as in etcd:
//   range_end empty  -> the single key `key`;
//   range_end "\0"   -> every key >= key;
//   otherwise        -> [key, range_end) (empty when range_end <= key).
// `key` must not be empty (etcd: "key is not provided").
struct RangeRequest {
  std::string key;
  std::string range_end;
  int64_t limit = 0;  // at most this many kvs; 0 (or negative) = no limit
  bool keys_only = false;   // kvs carry no values
  bool count_only = false;  // no kvs at all, only `count`
  // Read the store as it was at this revision; 0 (or negative) = the current revision. Only a
  // direct Range may set it: inside a txn it is kInvalidArgument (ValidateCommand).
  int64_t revision = 0;

  bool operator==(const RangeRequest& o) const {
    return key == o.key && range_end == o.range_end && limit == o.limit &&
           keys_only == o.keys_only && count_only == o.count_only && revision == o.revision;
  }
};

struct RangeResponse {
  ResponseHeader header;  // the current store revision, also for a read at an older one
  std::vector<KeyValue> kvs;  // ascending by key; at most `limit`; empty when count_only
  // limit > 0 and the range held more than `limit` keys (etcd: false when count_only).
  bool more = false;
  int64_t count = 0;          // number of keys in the range, regardless of limit

  bool operator==(const RangeResponse& o) const {
    return header == o.header && kvs == o.kvs && more == o.more && count == o.count;
  }
};

struct PutRequest {
  std::string key;  // not empty
  std::string value;
  bool prev_kv = false;  // return the previous key-value pair, if there was one
  // Attach the key to this lease (it must exist: kNotFound kErrLeaseNotFound otherwise, and
  // the whole command does nothing); 0 = no lease (a leased key is detached).
  int64_t lease = 0;
  // Keep the key's current lease (the key must exist: kErrKeyNotFound; `lease` must be 0:
  // kErrLeaseProvided).
  bool ignore_lease = false;

  bool operator==(const PutRequest& o) const {
    return key == o.key && value == o.value && lease == o.lease && prev_kv == o.prev_kv &&
           ignore_lease == o.ignore_lease;
  }
};

struct PutResponse {
  ResponseHeader header;
  std::optional<KeyValue> prev_kv;  // set iff requested and the key existed

  bool operator==(const PutResponse& o) const {
    return header == o.header && prev_kv == o.prev_kv;
  }
};

struct DeleteRangeRequest {
  std::string key;  // not empty; range semantics as in RangeRequest
  std::string range_end;
  bool prev_kv = false;  // return the deleted key-value pairs

  bool operator==(const DeleteRangeRequest& o) const {
    return key == o.key && range_end == o.range_end && prev_kv == o.prev_kv;
  }
};

struct DeleteRangeResponse {
  ResponseHeader header;
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;  // ascending by key; only when requested

  bool operator==(const DeleteRangeResponse& o) const {
    return header == o.header && deleted == o.deleted && prev_kvs == o.prev_kvs;
  }
};

// etcd Compare: `stored <result> operand`, where `stored` is the target attribute of the key
// (or of every key in [key, range_end), with the range semantics above).
//  - A key that does not exist compares as zeros (version, create and mod revision 0), except
//    that a VALUE compare on a missing key (or an empty range) is always false.
//  - VALUE compares bytes lexicographically (unsigned), the others compare integers (LEASE:
//    the key's lease id, 0 for none).
struct Compare {
  enum class Result : uint8_t { kEqual, kGreater, kLess, kNotEqual };
  enum class Target : uint8_t { kVersion, kCreate, kMod, kValue, kLease };

  Result result = Result::kEqual;
  Target target = Target::kVersion;
  std::string key;  // not empty
  std::string range_end;
  int64_t number = 0;  // operand for kVersion / kCreate / kMod / kLease
  std::string value;   // operand for kValue

  bool operator==(const Compare& o) const {
    return result == o.result && target == o.target && key == o.key &&
           range_end == o.range_end && number == o.number && value == o.value;
  }
};

// One operation of a txn branch (etcd RequestOp without nested txns).
using RequestOp = std::variant<RangeRequest, PutRequest, DeleteRangeRequest>;
using ResponseOp = std::variant<RangeResponse, PutResponse, DeleteRangeResponse>;

// etcd TxnRequest. Every compare is evaluated against the state before the txn; then the
// chosen branch runs in order, each op seeing the writes of the ops before it. As in etcd, a
// branch may not put the same key twice, nor put a key that one of its delete-ranges covers
// (kInvalidArgument). All writes of the txn share one new revision.
struct TxnRequest {
  std::vector<Compare> compare;    // at most kMaxTxnOps
  std::vector<RequestOp> success;  // at most kMaxTxnOps
  std::vector<RequestOp> failure;  // at most kMaxTxnOps

  bool operator==(const TxnRequest& o) const {
    return compare == o.compare && success == o.success && failure == o.failure;
  }
};

struct TxnResponse {
  // The revision after the txn. Each op's own header holds the revision it observed: the txn's
  // new revision once the txn has written something, else the revision before the txn.
  ResponseHeader header;
  bool succeeded = false;  // the compares held and `success` ran
  std::vector<ResponseOp> responses;  // one per op of the branch that ran

  bool operator==(const TxnResponse& o) const {
    return header == o.header && succeeded == o.succeeded && responses == o.responses;
  }
};

// etcd CompactionRequest: discard the history below `revision` (see "Revision history").
// `physical` is accepted for etcd's API; the history is always removed when the compaction is
// applied, so every compaction is physical.
struct CompactRequest {
  int64_t revision = 0;
  bool physical = false;

  bool operator==(const CompactRequest& o) const {
    return revision == o.revision && physical == o.physical;
  }
};

struct CompactResponse {
  ResponseHeader header;  // the store revision (a compaction does not change it)

  bool operator==(const CompactResponse& o) const { return header == o.header; }
};

// etcd LeaseGrantRequest. The proposing member picks the id when the client did not (the
// command always carries one, > 0) and raises a TTL below the minimum (Lessor::Grant), so
// applying it is deterministic. kFailedPrecondition kErrLeaseExists when the id is taken.
struct LeaseGrantRequest {
  int64_t id = 0;   // > 0
  int64_t ttl = 0;  // seconds, 1..kMaxLeaseTtl (ValidateCommand)

  bool operator==(const LeaseGrantRequest& o) const { return id == o.id && ttl == o.ttl; }
};

struct LeaseGrantResponse {
  ResponseHeader header;  // the store revision (a grant does not change it)
  int64_t id = 0;
  int64_t ttl = 0;

  bool operator==(const LeaseGrantResponse& o) const {
    return header == o.header && id == o.id && ttl == o.ttl;
  }
};

// etcd LeaseRevokeRequest: removes the lease and deletes its keys (one new revision when there
// were any). kNotFound kErrLeaseNotFound when there is no such lease.
struct LeaseRevokeRequest {
  int64_t id = 0;

  bool operator==(const LeaseRevokeRequest& o) const { return id == o.id; }
};

struct LeaseRevokeResponse {
  ResponseHeader header;
  int64_t deleted = 0;  // keys deleted with the lease

  bool operator==(const LeaseRevokeResponse& o) const {
    return header == o.header && deleted == o.deleted;
  }
};

// etcd LeaseCheckpointRequest: records the remaining TTL of each listed lease (at most
// kMaxLeaseCheckpoints; leases that no longer exist are skipped), so that a new leader or a
// restarted member continues from it instead of from the full TTL.
struct LeaseCheckpointRequest {
  struct Checkpoint {
    int64_t id = 0;
    int64_t remaining_ttl = 0;  // seconds; 0 clears the checkpoint (the full TTL again)

    bool operator==(const Checkpoint& o) const {
      return id == o.id && remaining_ttl == o.remaining_ttl;
    }
  };
  std::vector<Checkpoint> checkpoints;

  bool operator==(const LeaseCheckpointRequest& o) const { return checkpoints == o.checkpoints; }
};

struct LeaseCheckpointResponse {
  ResponseHeader header;

  bool operator==(const LeaseCheckpointResponse& o) const { return header == o.header; }
};

// One replicated write: the contents of a Raft entry (engine/kv/command.h encodes it).
struct Command {
  // Opaque to the state machine and copied into the ApplyResult, so that the node that
  // proposed the entry can match it to the waiting client.
  uint64_t request_id = 0;
  std::variant<PutRequest, DeleteRangeRequest, TxnRequest, CompactRequest, LeaseGrantRequest,
               LeaseRevokeRequest, LeaseCheckpointRequest>
      op;

  bool operator==(const Command& o) const { return request_id == o.request_id && op == o.op; }
};

using CommandResponse =
    std::variant<PutResponse, DeleteRangeResponse, TxnResponse, CompactResponse,
                 LeaseGrantResponse, LeaseRevokeResponse, LeaseCheckpointResponse>;

// One committed Raft entry handed to Apply.
//  - No-op (Raft's no-op entry, or a normal entry with empty data): `command` is nullopt and
//    `decode_error` OK. It only advances the applied index.
//  - A command: `command` set, `decode_error` OK.
//  - An entry whose bytes do not decode: `command` nullopt, `decode_error` the decode status
//    (DecodeEntry in command.h builds the three cases from entry bytes).
struct ApplyItem {
  uint64_t index = 0;  // Raft log index
  std::optional<Command> command;
  absl::Status decode_error;

  static ApplyItem Noop(uint64_t index) { return ApplyItem{index, std::nullopt, absl::OkStatus()}; }
  static ApplyItem Of(uint64_t index, Command c) {
    return ApplyItem{index, std::move(c), absl::OkStatus()};
  }
};

// The outcome of one ApplyItem. Rejection is deterministic (it depends only on the entry
// bytes and the state), so every replica reaches the same outcome for the same entry.
struct ApplyResult {
  uint64_t index = 0;
  uint64_t request_id = 0;  // the command's request_id; 0 for no-ops and undecodable entries
  // OK for no-ops and applied commands. kInvalidArgument for an undecodable entry or a command
  // that failed validation (ValidateCommand in command.h): such an item changes no data and no
  // revision, but its index counts as applied. kOutOfRange (kErrCompacted or kErrFutureRev) for
  // a compaction at a revision at or below compact_revision() or above revision().
  absl::Status status;
  std::optional<CommandResponse> response;  // set iff status is OK and the item held a command

  bool operator==(const ApplyResult& o) const {
    return index == o.index && request_id == o.request_id && status == o.status &&
           response == o.response;
  }
};

// The applied key-value state. Not thread-safe: one driver thread owns it.
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies `batch` atomically: either every item is applied (and the applied index becomes the
  // last item's index) or, on error, nothing changes.
  //  - Indexes must be contiguous, starting at applied_index() + 1; otherwise
  //    kFailedPrecondition. The driver skips entries at or below applied_index() when it
  //    replays its WAL after a restart.
  //  - Returns one ApplyResult per item, in order. A rejected command is a result, not an
  //    error of the batch (see ApplyResult).
  //  - Other errors come from storage (durable implementations) or from a damaged store
  //    (kDataLoss); the driver must stop applying then.
  //  - An empty batch is OK and changes nothing.
  virtual absl::StatusOr<std::vector<ApplyResult>> Apply(absl::Span<const ApplyItem> batch) = 0;

  // Reads the applied state, at request.revision when set. kInvalidArgument for an empty key;
  // kOutOfRange kErrCompacted below compact_revision(), kErrFutureRev above revision().
  virtual absl::StatusOr<RangeResponse> Range(const RangeRequest& request) const = 0;

  // HashState (engine/kv/apply.h) of the state at `revision` (0 = revision()): equal on
  // replicas that applied the same entries. Errors as Range.
  virtual absl::StatusOr<uint32_t> HashKV(int64_t revision) const = 0;

  // Calls `visit` on every version of every key selected by (key, range_end) (RangeRequest
  // semantics) whose mod_revision is at least `from`, tombstones included, in (key, revision)
  // order, until it returns false. kOutOfRange kErrCompacted when from < compact_revision().
  virtual absl::Status History(const std::string& key, const std::string& range_end,
                               int64_t from,
                               absl::FunctionRef<bool(const KeyValue&)> visit) const = 0;

  // The versions the last successful Apply wrote, in revision order (a delete as a
  // tombstone): the events watchers are told about. Empty after an Apply that wrote nothing
  // and after a restore; valid until the next call that changes the state.
  virtual const std::vector<KeyValue>& last_applied_versions() const = 0;

  // The lease `id` (nullopt when there is none), and every lease in ascending id order.
  virtual absl::StatusOr<std::optional<Lease>> GetLease(int64_t id) const = 0;
  virtual absl::Status ForEachLease(absl::FunctionRef<bool(const Lease&)> visit) const = 0;
  // The keys attached to lease `id`, ascending, until `visit` returns false.
  virtual absl::Status ForEachLeaseKey(
      int64_t id, absl::FunctionRef<bool(const std::string&)> visit) const = 0;

  // The index of the last applied entry (0 for a new store).
  virtual uint64_t applied_index() const = 0;
  // The current store revision (kInitialRevision for a new store).
  virtual int64_t revision() const = 0;
  // The revision of the last compaction (kInitialRevision for a new store): reads at it and
  // above are served.
  virtual int64_t compact_revision() const = 0;

  // Snapshots of the whole applied state (data with its history, revisions, applied index), kept in the
  // implementation's own store under `name` (see kMaxSnapshotNameBytes).
  //  - CreateSnapshot: kAlreadyExists if `name` is taken.
  //  - RestoreSnapshot: replaces the state with the snapshot's exactly (the applied index may
  //    go backwards); kNotFound if there is none. On error the state is unchanged.
  //  - DeleteSnapshot: kNotFound if there is none.
  // kInvalidArgument for a malformed name.
  virtual absl::Status CreateSnapshot(const std::string& name) = 0;
  virtual absl::Status RestoreSnapshot(const std::string& name) = 0;
  virtual absl::Status DeleteSnapshot(const std::string& name) = 0;

  // Snapshots as snapshot files (engine/kv/snapshot_file.h), to move them between processes.
  //  - ExportSnapshot streams snapshot `name` to `sink`, piece by piece (kNotFound if none).
  //  - ImportSnapshot creates snapshot `name` from the bytes of a snapshot file that `source`
  //    returns piece by piece (an empty piece ends it). kDataLoss if they do not decode or fail
  //    their checksum; kAlreadyExists if `name` is taken. On error nothing is created.
  using SnapshotSink = absl::FunctionRef<absl::Status(absl::string_view)>;
  using SnapshotSource = absl::FunctionRef<absl::StatusOr<std::string>()>;
  virtual absl::Status ExportSnapshot(const std::string& name, SnapshotSink sink) const = 0;
  virtual absl::Status ImportSnapshot(const std::string& name, SnapshotSource source) = 0;
};

// The range_end that selects every key starting with `prefix` (etcd's WithPrefix): `prefix`
// with its last byte below 0xff incremented and the bytes after it dropped; "\0" (every key
// >= prefix) when there is no such byte (an empty prefix, or one of only 0xff bytes).
std::string PrefixEnd(const std::string& prefix);

// kInvalidArgument unless `name` is a valid snapshot name.
absl::Status ValidateSnapshotName(const std::string& name);

// Readable one-line renderings, for test failures and traces (keys and values C-escaped).
std::string Describe(const KeyValue& kv);
std::string Describe(const RangeRequest& r);
std::string Describe(const RangeResponse& r);
std::string Describe(const Compare& c);
std::string Describe(const RequestOp& op);
std::string Describe(const ResponseOp& op);
std::string Describe(const PutResponse& r);
std::string Describe(const DeleteRangeResponse& r);
std::string Describe(const TxnResponse& r);
std::string Describe(const CompactResponse& r);
std::string Describe(const Lease& l);
std::string Describe(const Command& c);
std::string Describe(const CommandResponse& r);
std::string Describe(const ApplyResult& r);

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_STATE_MACHINE_H_
