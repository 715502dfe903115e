// Fuzz target: what a peer can send (proto/peer.proto) through the transport codec
// (server/transport/codec.h) into node::Node::Receive, the path of PeerService::Stream.
//
// Node 1 of a three-node cluster {1, 2, 3} runs on a SimDisk with the in-memory state machine
// (fuzz/node_driver.h) and receives whatever the input holds. Peer bytes are untrusted: the
// node may refuse a message (an error status) but must never crash, whatever the bytes; an
// AM_CHECK that fires is a finding (a peer could stop a node with one message).
//
// Input: byte 0 options (bit 0: rewrite each message's `to` = 1 and `from` in {2, 3}, so that
// the fuzzer gets past addressing checks; bit 1: start as leader of term 1 with a few entries),
// then up to kMaxRecords records (u8 kind, u16 length, bytes); kind % 6:
//   0 a peerpb.Batch          3 tick the node (first byte of the record: how many, 1..8)
//   1 one peerpb.Message      4 client proposal (the record is the command bytes)
//   2 crash and restart       5 a peerpb.ForwardRequest (decoded as HandleForward does)
// Checks, besides not crashing: FromProto only refuses with kInvalidArgument; a decoded
// message encodes back to an equal one (ToProto/FromProto round trip); the node's term and
// commit never decrease while it runs; the node recovers from its own WAL after every restart.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/check.h"
#include "engine/raft/types.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/node_driver.h"
#include "fuzz/raft_compare.h"
#include "proto/etcd/rpc.pb.h"
#include "proto/peer.pb.h"
#include "server/transport/codec.h"

namespace amaters::fuzz {
namespace {

constexpr int kMaxRecords = 64;

class Fuzzer {
 public:
  explicit Fuzzer(uint8_t options) : driver_(1, {1, 2, 3}), fix_addressing_(options & 1) {
    if (options & 2) {
      // Lead term 1 with a quorum of fake acknowledgements: node 2 votes.
      driver_.node().Campaign();
      driver_.Pump();
      raft::Message vote;
      vote.type = raft::MessageType::kPreVoteResp;
      vote.from = 2;
      vote.to = 1;
      vote.term = 1;
      (void)driver_.node().Receive(vote);
      driver_.Pump();
      vote.type = raft::MessageType::kVoteResp;
      (void)driver_.node().Receive(vote);
      driver_.Pump();
      for (int i = 0; i < 3; ++i) driver_.Propose(100 + i, "");
    }
    Observe();
  }

  void Message(const peerpb::Message& pb) {
    peerpb::Message m = pb;
    if (fix_addressing_) {
      m.set_to(1);
      m.set_from(2 + (pb.from() & 1));
    }
    absl::StatusOr<raft::Message> decoded = server::FromProto(m);
    if (!decoded.ok()) {
      AM_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument,
               decoded.status().ToString());
      return;
    }
    peerpb::Message again;
    server::ToProto(*decoded, &again);
    absl::StatusOr<raft::Message> twice = server::FromProto(again);
    AM_CHECK(twice.ok(), "re-encoded message does not decode: ", twice.status().ToString());
    AM_CHECK(MessagesEqual(*decoded, *twice), "codec round trip changed ",
             raft::DescribeMessage(*decoded));
    if (driver_.stopped()) return;
    (void)driver_.node().Receive(*decoded);
    driver_.Pump();
    Observe();
  }

  void Tick(int n) {
    for (int i = 0; i < n; ++i) driver_.Tick();
    Observe();
  }

  void Propose(absl::string_view data) {
    if (driver_.stopped()) return;
    driver_.Propose(next_request_++, std::string(data));
    Observe();
  }

  void Restart() {
    driver_.Restart();
    term_ = 0;
    commit_ = 0;
    Observe();
  }

  void Forward(const peerpb::ForwardRequest& req) {
    // HandleForward: the inner request must decode as the method says; a bad method or
    // undecodable bytes is an error answer, nothing else.
    switch (req.method()) {
      case peerpb::ForwardRequest::PUT: {
        etcdserverpb::PutRequest q;
        if (q.ParseFromString(req.request())) (void)q.SerializeAsString();
        break;
      }
      case peerpb::ForwardRequest::DELETE_RANGE: {
        etcdserverpb::DeleteRangeRequest q;
        if (q.ParseFromString(req.request())) (void)q.SerializeAsString();
        break;
      }
      case peerpb::ForwardRequest::TXN: {
        etcdserverpb::TxnRequest q;
        if (q.ParseFromString(req.request())) (void)q.SerializeAsString();
        break;
      }
      case peerpb::ForwardRequest::RANGE: {
        etcdserverpb::RangeRequest q;
        if (q.ParseFromString(req.request())) (void)q.SerializeAsString();
        break;
      }
      default:
        break;
    }
  }

 private:
  void Observe() {
    if (driver_.stopped()) return;
    const raft::Raft& r = driver_.node().raft();
    AM_CHECK_GE(r.term(), term_, "term decreased");
    AM_CHECK_GE(r.commit(), commit_, "commit decreased");
    AM_CHECK_LE(r.commit(), r.log().LastIndex());
    term_ = r.term();
    commit_ = r.commit();
  }

  NodeDriver driver_;
  const bool fix_addressing_;
  raft::Term term_ = 0;
  raft::Index commit_ = 0;
  uint64_t next_request_ = 1;
};

void RunInput(FuzzInput& in) {
  Fuzzer f(in.U8());
  for (int i = 0; i < kMaxRecords && !in.empty(); ++i) {
    const int kind = in.U8() % 6;
    const absl::string_view bytes = in.Record();
    switch (kind) {
      case 0: {
        peerpb::Batch batch;
        if (!batch.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) break;
        for (const peerpb::Message& m : batch.messages()) f.Message(m);
        break;
      }
      case 1: {
        peerpb::Message m;
        if (m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) f.Message(m);
        break;
      }
      case 2:
        f.Restart();
        break;
      case 3:
        f.Tick(bytes.empty() ? 1 : (static_cast<uint8_t>(bytes[0]) % 8) + 1);
        break;
      case 4:
        f.Propose(bytes);
        break;
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
