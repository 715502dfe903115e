// Conversion between etcd v3's client API (proto/etcd/rpc.proto, etcd 3.4) and our key-value
// commands (engine/kv/state_machine.h), with etcd's request validation. Pure: no I/O, no clock.
//
// How the server uses it (one call per step):
//   Put / DeleteRange / Txn:  XToCommand(request, limits) -> propose the kv::Command -> apply
//                             -> [Txn: SortAndLimit(request, &txn_response)] -> ToProto(...)
//   Range:                    RangeToRequest(request, limits) -> StateMachine::Range (which
//                             answers a compacted or future revision with kv::kErrCompacted /
//                             kv::kErrFutureRev) -> SortAndLimit(request, &range_response)
//                             -> ToProto(...)
// `serializable` is the runtime's business (linearizable read barrier or not); nothing here
// reads it.
//
// Errors. Every function returns kInvalidArgument for a request it refuses; the message is
// etcd's exact string where etcd has the same check (clients such as clientv3 match errors by
// message), listed below as kErr*; otherwise a message of ours that names the field and, for
// size checks, the limit. What etcd serves and we refuse:
//   - PutRequest.ignore_value (it needs the stored value at apply time);
//   - nested transactions (RequestOp.request_txn);
//   - RangeRequest.revision inside a txn (a direct Range reads any revision the store holds);
//   - enum values that rpc.proto does not list (etcd would misbehave on them).
#ifndef AMATERS_SERVER_ETCD_CONVERT_H_
#define AMATERS_SERVER_ETCD_CONVERT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/kv/state_machine.h"
#include "engine/kv/watch.h"
#include "proto/etcd/kv.pb.h"
#include "proto/etcd/rpc.pb.h"

namespace amaters::server::etcd {

// etcd's error messages (etcdserver/api/v3rpc/rpctypes/error.go), all used with the gRPC code
// noted. The server maps absl codes to gRPC codes one to one.
inline constexpr char kErrEmptyKey[] = "etcdserver: key is not provided";  // INVALID_ARGUMENT
// A RequestOp with no operation set (etcd's message for it, odd as it reads).
inline constexpr char kErrKeyNotFound[] = "etcdserver: key not found";  // INVALID_ARGUMENT
inline constexpr char kErrValueProvided[] = "etcdserver: value is provided";  // INVALID_ARGUMENT
inline constexpr char kErrLeaseProvided[] = "etcdserver: lease is provided";  // INVALID_ARGUMENT
inline constexpr char kErrTooManyOps[] =
    "etcdserver: too many operations in txn request";  // INVALID_ARGUMENT
inline constexpr char kErrDuplicateKey[] =
    "etcdserver: duplicate key given in txn request";  // INVALID_ARGUMENT
// The runtime returns this one when a request's encoded size exceeds its limit.
inline constexpr char kErrRequestTooLarge[] =
    "etcdserver: request is too large";  // INVALID_ARGUMENT

// Our messages for what etcd serves and we do not (prefixes; details may follow after ": ").
inline constexpr char kErrIgnoreValueNotSupported[] = "ignore_value is not supported";
inline constexpr char kErrNestedTxnNotSupported[] = "nested transactions are not supported";

// Defaults for Limits. etcd bounds only whole requests (--max-request-bytes, 1.5 MiB by
// default); we also bound keys, which become RocksDB keys and travel in every range bound.
inline constexpr uint64_t kDefaultMaxKeyBytes = 32 * 1024;
inline constexpr uint64_t kDefaultMaxValueBytes = 1536 * 1024;

struct Limits {
  // Bounds every key and range_end (put, delete, range, compare).
  uint64_t max_key_bytes = kDefaultMaxKeyBytes;
  // Bounds put values and VALUE compare operands.
  uint64_t max_value_bytes = kDefaultMaxValueBytes;
  // etcd's --max-txn-ops: compares, and separately the ops of each branch. Values above
  // kv::kMaxTxnOps count as kv::kMaxTxnOps (the state machine refuses larger txns anyway).
  uint64_t max_txn_ops = kv::kMaxTxnOps;
};

// Fills the fields of every top-level response header that the state machine does not know.
struct HeaderInfo {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;  // the member that answers
  uint64_t raft_term = 0;  // its current term
};

// ---------------------------------------------------------------------------------------------
// Requests. The returned command's request_id is 0: the runtime assigns it. Checks, in etcd's
// order: empty key (kErrEmptyKey); ignore_value with a value (kErrValueProvided); ignore_lease
// with a lease (kErrLeaseProvided); then ours (unsupported features, sizes).

absl::StatusOr<kv::Command> PutToCommand(const etcdserverpb::PutRequest& request,
                                         const Limits& limits);

absl::StatusOr<kv::Command> DeleteToCommand(const etcdserverpb::DeleteRangeRequest& request,
                                            const Limits& limits);

// Checks as etcd's checkTxnRequest + checkIntervals: more than max_txn_ops compares or ops in a
// branch (kErrTooManyOps, before anything else); each compare and op as above (an op with no
// operation set: kErrKeyNotFound); then, per branch, a key put twice or put and covered by a
// delete range of the same branch (kErrDuplicateKey; a "\0" range_end covers every key >= key,
// as the state machine counts it). Compares on VALUE, VERSION, CREATE and MOD; the operand is
// the target_union member that matches the target (another member, or none, means 0 / empty,
// as in etcd). Range ops convert as RangeToRequest does, so sorted ranges need
// SortAndLimit(TxnRequest, ...) on the response.
absl::StatusOr<kv::Command> TxnToCommand(const etcdserverpb::TxnRequest& request,
                                         const Limits& limits);

// etcd's WatchCreateRequest as the hub's request (filters NOPUT / NODELETE; unknown filter
// values are ignored). Never refused here: the hub answers a request it cannot serve with a
// cancel. `fragment` is the stream's business (server/service/watch_stream.h).
kv::WatchCreate WatchCreateFromProto(const etcdserverpb::WatchCreateRequest& request);

// etcd's Compact. Never refused here: the state machine answers a revision it cannot compact
// to with kv::kErrCompacted / kv::kErrFutureRev when the command is applied.
kv::Command CompactToCommand(const etcdserverpb::CompactionRequest& request);

// The read to run for an etcd Range (limit, keys_only, count_only, revision). It does not look
// at `serializable`.
//
// Sorting, as etcd's applierV3backend.Range: the store returns kvs ascending by key.
//  - sort_order NONE with sort_target KEY, or ASCEND with KEY: that is already the order; the
//    limit is passed through.
//  - ASCEND or DESCEND otherwise: everything in the range is fetched (limit 0), to be sorted and
//    truncated by SortAndLimit.
//  - NONE with a target other than KEY: etcd sorts ASCEND, but still fetches only limit + 1 keys
//    (by key order) and sorts those. We mirror that, quirk included, so results equal etcd's.
//  - Sorting by VALUE with keys_only fetches values (etcd sorts before it drops them);
//    SortAndLimit drops them.
//  - min/max mod/create revision filters: everything in the range is fetched (limit 0), as
//    etcd does; SortAndLimit drops the kvs outside them before sorting and truncating (`count`
//    stays the number of keys in the range, as etcd's).
absl::StatusOr<kv::RangeRequest> RangeToRequest(const etcdserverpb::RangeRequest& request,
                                                const Limits& limits);

// Drops the kvs outside `request`'s revision filters, puts the rest in the order `request` asks
// for and applies its limit: kvs truncated to `limit`, `more` set when that dropped any (otherwise left
// as the store set it). `count` is left alone: it stays the number of keys in the range. Ties
// keep ascending key order (etcd leaves them unspecified). No-op for the default order.
void SortAndLimit(const etcdserverpb::RangeRequest& request, kv::RangeResponse* response);

// The same for every range op of the branch a txn ran. AM_CHECK: `response` holds one
// response per op of that branch, each of the op's type (a response to `request`).
void SortAndLimit(const etcdserverpb::TxnRequest& request, kv::TxnResponse* response);

// ---------------------------------------------------------------------------------------------
// Responses. `out` is cleared first. The top-level header gets `info` and the kv response's
// revision. As in etcd, the headers of the ResponseOps inside a TxnResponse carry only their
// revision (etcd fills cluster_id, member_id and raft_term of the outer header alone).

void ToProto(const kv::KeyValue& kv, mvccpb::KeyValue* out);  // lease = 0
void ToProto(const HeaderInfo& info, int64_t revision, etcdserverpb::ResponseHeader* out);
void ToProto(const kv::PutResponse& response, const HeaderInfo& info,
             etcdserverpb::PutResponse* out);
void ToProto(const kv::RangeResponse& response, const HeaderInfo& info,
             etcdserverpb::RangeResponse* out);
void ToProto(const kv::DeleteRangeResponse& response, const HeaderInfo& info,
             etcdserverpb::DeleteRangeResponse* out);
void ToProto(const kv::TxnResponse& response, const HeaderInfo& info,
             etcdserverpb::TxnResponse* out);
void ToProto(const kv::CompactResponse& response, const HeaderInfo& info,
             etcdserverpb::CompactionResponse* out);
// A watch response: a tombstone becomes a DELETE event (key and mod_revision, as etcd sends).
void ToProto(const kv::WatchResponse& response, const HeaderInfo& info,
             etcdserverpb::WatchResponse* out);

}  // namespace amaters::server::etcd

#endif  // AMATERS_SERVER_ETCD_CONVERT_H_
