// Fuzz target: etcd v3 client requests, decoded from protobuf bytes, through the server's
// validation and conversion (server/etcd/convert.h) into the engine: proposed to a
// single-node node::Node (Raft + WAL on a SimDisk), committed, decoded from the entry bytes
// and applied to the in-memory key-value state machine; reads go through ReadIndex.
//
// EtcdHandler itself (server/service/etcd_handler.h) needs a running Runtime (threads, gRPC,
// RocksDB), so this target runs the same steps the handler runs, in its order:
// Begin (size limit) -> XToCommand / RangeToRequest -> propose / read -> apply / Range ->
// SortAndLimit -> ToProto; and HandleForward's decoding of a
// peerpb.ForwardRequest.
//
// Input: byte 0 options (bit 0: small limits: keys 16 B, values 64 B, 8 txn ops), then up to
// kMaxRequests records (u8 kind, u16 length, bytes); kind % 5: 0 Put, 1 DeleteRange, 2 Txn,
// 3 Range, 4 ForwardRequest (whose `request` is decoded according to `method`).
//
// Checks: conversions refuse only with kInvalidArgument (a Range at a revision the store does
// not hold: kOutOfRange); a
// converted command passes the state machine's ValidateCommand and survives
// EncodeCommand/DecodeCommand; the node applies it with status OK and a response of the
// request's type; the revision never decreases and moves only on writes; reads return at most
// `limit` kvs, sorted as asked, with `count` covering them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/check.h"
#include "engine/kv/command.h"
#include "engine/kv/state_machine.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/node_driver.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/peer.pb.h"
#include "server/etcd/convert.h"

namespace amaters::fuzz {
namespace {

constexpr int kMaxRequests = 32;
// The handler's default request limit (HandlerLimits::max_request_bytes).
constexpr size_t kMaxRequestBytes = 1572864;

class Fuzzer {
 public:
  explicit Fuzzer(bool small_limits) : driver_(1, {1}) {
    if (small_limits) {
      limits_.max_key_bytes = 16;
      limits_.max_value_bytes = 64;
      limits_.max_txn_ops = 8;
    }
    driver_.node().Campaign();
    driver_.Pump();
    AM_CHECK(driver_.node().raft().role() == raft::Role::kLeader, "single node did not lead");
  }

  void Put(const etcdserverpb::PutRequest& req) {
    if (!Admit(req)) return;
    etcdserverpb::PutResponse out;
    if (std::optional<kv::CommandResponse> r = Write(server::etcd::PutToCommand(req, limits_))) {
      AM_CHECK(std::holds_alternative<kv::PutResponse>(*r), "put answered by another type");
      server::etcd::ToProto(std::get<kv::PutResponse>(*r), info_, &out);
      AM_CHECK(!req.prev_kv() || !std::get<kv::PutResponse>(*r).prev_kv ||
                   std::get<kv::PutResponse>(*r).prev_kv->key == req.key(),
               "prev_kv of another key");
    }
  }

  void DeleteRange(const etcdserverpb::DeleteRangeRequest& req) {
    if (!Admit(req)) return;
    etcdserverpb::DeleteRangeResponse out;
    if (std::optional<kv::CommandResponse> r = Write(server::etcd::DeleteToCommand(req, limits_))) {
      AM_CHECK(std::holds_alternative<kv::DeleteRangeResponse>(*r), "delete answered wrongly");
      const auto& d = std::get<kv::DeleteRangeResponse>(*r);
      AM_CHECK(d.deleted >= 0, "negative delete count");
      AM_CHECK(!req.prev_kv() || static_cast<size_t>(d.deleted) == d.prev_kvs.size(), "deleted ",
               d.deleted, " but ", d.prev_kvs.size(), " prev_kvs");
      server::etcd::ToProto(d, info_, &out);
    }
  }

  void Txn(const etcdserverpb::TxnRequest& req) {
    if (!Admit(req)) return;
    etcdserverpb::TxnResponse out;
    if (std::optional<kv::CommandResponse> r = Write(server::etcd::TxnToCommand(req, limits_))) {
      AM_CHECK(std::holds_alternative<kv::TxnResponse>(*r), "txn answered by another type");
      kv::TxnResponse t = std::get<kv::TxnResponse>(*r);
      const int branch = t.succeeded ? req.success_size() : req.failure_size();
      AM_CHECK_EQ(t.responses.size(), static_cast<size_t>(branch), "txn responses per op");
      server::etcd::SortAndLimit(req, &t);
      server::etcd::ToProto(t, info_, &out);
    }
  }

  void Range(const etcdserverpb::RangeRequest& req) {
    if (!Admit(req)) return;
    absl::StatusOr<kv::RangeRequest> range = server::etcd::RangeToRequest(req, limits_);
    if (!range.ok()) {
      AM_CHECK(range.status().code() == absl::StatusCode::kInvalidArgument,
               range.status().ToString());
      return;
    }
    AM_CHECK(kv::ValidateRangeRequest(*range).ok(), "converted range fails validation");
    if (!req.serializable()) {
      // Linearizable: a ReadIndex round, served once applied.
      const uint64_t id = next_request_++;
      driver_.Read(id);
      bool ready = false;
      for (uint64_t r : driver_.reads_ready) ready |= r == id;
      AM_CHECK(ready || driver_.stopped(), "a read on a single-node leader did not complete");
    }
    absl::StatusOr<kv::RangeResponse> r = driver_.state_machine().Range(*range);
    if (!r.ok()) {
      AM_CHECK(r.status().code() == absl::StatusCode::kOutOfRange && req.revision() > 0,
               "state machine refuses a converted range: ", r.status().ToString());
      return;
    }
    AM_CHECK_EQ(r->header.revision, driver_.state_machine().revision());
    server::etcd::SortAndLimit(req, &*r);
    if (req.limit() > 0) {
      AM_CHECK_LE(r->kvs.size(), static_cast<size_t>(req.limit()), "range exceeds its limit");
    }
    if (!req.count_only()) {
      AM_CHECK_GE(r->count, static_cast<int64_t>(r->kvs.size()), "count below kvs returned");
    } else {
      AM_CHECK(r->kvs.empty(), "count_only returned kvs");
    }
    if (req.sort_order() == etcdserverpb::RangeRequest::NONE &&
        req.sort_target() == etcdserverpb::RangeRequest::KEY) {
      for (size_t i = 1; i < r->kvs.size(); ++i) {
        AM_CHECK(r->kvs[i - 1].key < r->kvs[i].key, "default range order is not by key");
      }
    }
    etcdserverpb::RangeResponse out;
    server::etcd::ToProto(*r, info_, &out);
  }

  void Forward(const peerpb::ForwardRequest& req) {
    switch (req.method()) {
      case peerpb::ForwardRequest::PUT: {
        etcdserverpb::PutRequest q;
        if (q.ParseFromString(req.request())) Put(q);
        break;
      }
      case peerpb::ForwardRequest::DELETE_RANGE: {
        etcdserverpb::DeleteRangeRequest q;
        if (q.ParseFromString(req.request())) DeleteRange(q);
        break;
      }
      case peerpb::ForwardRequest::TXN: {
        etcdserverpb::TxnRequest q;
        if (q.ParseFromString(req.request())) Txn(q);
        break;
      }
      case peerpb::ForwardRequest::RANGE: {
        etcdserverpb::RangeRequest q;
        if (q.ParseFromString(req.request())) Range(q);
        break;
      }
      default:
        break;
    }
  }

 private:
  // EtcdHandler::Begin: the encoded size limit.
  static bool Admit(const google::protobuf::Message& req) {
    return req.ByteSizeLong() <= kMaxRequestBytes;
  }

  // The refusals the state machine makes for the state a valid command finds.
  static bool IsStateRefusal(const absl::Status& s) {
    return s.message() == kv::kErrLeaseNotFound || s.message() == kv::kErrKeyNotFound ||
           s.message() == kv::kErrLeaseExists;
  }

  // EtcdHandler::Write + Runtime::Propose: the command's outcome once applied, nullopt if the
  // conversion refused it.
  std::optional<kv::CommandResponse> Write(absl::StatusOr<kv::Command> command) {
    if (!command.ok()) {
      AM_CHECK(command.status().code() == absl::StatusCode::kInvalidArgument,
               command.status().ToString());
      AM_CHECK(!command.status().message().empty());
      return std::nullopt;
    }
    AM_CHECK(kv::ValidateCommand(*command).ok(),
             "converted command fails the state machine's validation: ",
             kv::ValidateCommand(*command).ToString(), " ", kv::Describe(*command));
    const uint64_t id = next_request_++;
    command->request_id = id;
    const std::string bytes = kv::EncodeCommand(*command);
    absl::StatusOr<kv::Command> back = kv::DecodeCommand(bytes);
    AM_CHECK(back.ok(), "encoded command does not decode: ", back.status().ToString());
    AM_CHECK(*back == *command, "command changed in encoding: ", kv::Describe(*command), " vs ",
             kv::Describe(*back));
    const int64_t before = driver_.state_machine().revision();
    driver_.Propose(id, bytes);
    if (driver_.stopped()) return std::nullopt;
    auto it = driver_.applied.find(id);
    AM_CHECK(it != driver_.applied.end(), "single-node proposal not applied; failed: ",
             driver_.failed.count(id) ? driver_.failed[id].ToString() : "no");
    const kv::ApplyResult result = it->second;
    driver_.applied.erase(it);
    const int64_t after = driver_.state_machine().revision();
    if (IsStateRefusal(result.status)) {
      // Refused for the state it found (a lease that does not exist, ignore_lease on a missing
      // key): nothing changed.
      AM_CHECK(!result.response.has_value());
      AM_CHECK_EQ(after, before, "a refused command moved the revision");
      return std::nullopt;
    }
    AM_CHECK(result.status.ok(),
             "state machine rejects a converted command: ", result.status.ToString(), " ",
             kv::Describe(*command));
    AM_CHECK(result.response.has_value());
    AM_CHECK(after == before || after == before + 1, "revision moved from ", before, " to ", after);
    return result.response;
  }

  NodeDriver driver_;
  server::etcd::Limits limits_;
  server::etcd::HeaderInfo info_{0x1234, 1, 1};
  uint64_t next_request_ = 1;
};

void RunInput(FuzzInput& in) {
  Fuzzer f(in.U8() & 1);
  for (int i = 0; i < kMaxRequests && !in.empty(); ++i) {
    const int kind = in.U8() % 5;
    const absl::string_view bytes = in.Record();
    switch (kind) {
      case 0: {
        etcdserverpb::PutRequest q;
        if (q.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.Put(q);
        break;
      }
      case 1: {
        etcdserverpb::DeleteRangeRequest q;
        if (q.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.DeleteRange(q);
        break;
      }
      case 2: {
        etcdserverpb::TxnRequest q;
        if (q.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.Txn(q);
        break;
      }
      case 3: {
        etcdserverpb::RangeRequest q;
        if (q.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.Range(q);
        break;
      }
      default: {
        peerpb::ForwardRequest q;
        if (q.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.Forward(q);
        break;
      }
    }
  }
}

}  // namespace
}  // namespace amaters::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  amaters::fuzz::FuzzInput in(data, size);
  amaters::fuzz::RunInput(in);
  return 0;
}
