// Fuzz target: raft::Raft on a small in-memory cluster (engine/raft/testing/harness.h), the
// input bytes read as a schedule of events; plus the peer wire codec on every message sent.
//
// Input: byte 0 options (bit 0 pre_vote, bit 1 check_quorum, bit 2 lease reads (with
// check_quorum), bit 3 five nodes instead of three), byte 1 the PRNG seed, then events of three
// bytes (kind, a, b), at most kMaxEvents:
//   kind  0- 19 tick node a (1-3 ticks)        80- 81 crash node a (unpersisted writes lost)
//        20- 59 deliver in-flight message b     82- 85 restart node a
//        60- 63 drop in-flight message b        86- 87 partition by the bits of b
//        64- 66 duplicate in-flight message b   88- 90 heal
//        67- 79 propose (to the leader or a)    91- 93 complete node a's pending writes
//        94- 95 manual/automatic persistence     96- 97 ReadIndex on node a
//        98     campaign node a                  99+    transfer leadership a -> b
// After every event: election safety (one leader per term, ever), committed entries never
// change, leader completeness, log matching over every pair of logs, state machine safety
// (the harness's apply check), and per incarnation of a node: term and commit never decrease,
// applied <= commit <= last index. (The whole-log checks, committed prefix and log matching,
// run every kFullCheckEvery events and at the end; in between only new commits are compared.)
// Then everything heals, and a leader must emerge and every node must apply the same log
// (liveness).
// Every message delivered first goes through the transport codec (server/transport/codec.h):
// ToProto -> bytes -> parse -> FromProto must give back the same message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "engine/raft/raft.h"
#include "engine/raft/testing/harness.h"
#include "engine/raft/types.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/raft_compare.h"
#include "proto/peer.pb.h"
#include "server/transport/codec.h"

namespace amaters::fuzz {
namespace {

using raft::Entry;
using raft::Index;
using raft::NodeId;
using raft::Raft;
using raft::Role;
using raft::Term;
using raft::testing::Harness;

constexpr size_t kMaxEvents = 1000;
// The whole-log checks (committed prefix, log matching) run every kFullCheckEvery events and
// at the end; in between only what changed since the last check (keeps an exec fast).
constexpr size_t kFullCheckEvery = 16;

class SafetyChecker {
 public:
  void Check(Harness& h, size_t step, bool full) {
    AM_CHECK(h.violations().empty(), "step ", step, ": ", h.violations().front());
    std::vector<NodeId> alive;
    for (NodeId id : h.ids()) {
      if (h.alive(id)) {
        alive.push_back(id);
      } else {
        incarnations_.erase(id);  // a restart is a new incarnation
      }
    }
    for (NodeId id : alive) {
      Raft& r = h.node(id);
      // Per incarnation: term and commit never decrease; commit within the log.
      Incarnation& inc = incarnations_[id];
      if (inc.raft != &r) inc = Incarnation{&r, r.term(), r.commit(), 0};
      AM_CHECK_GE(r.term(), inc.term, "step ", step, ": term of node ", id, " decreased");
      AM_CHECK_GE(r.commit(), inc.commit, "step ", step, ": commit of node ", id, " decreased");
      AM_CHECK_LE(r.commit(), r.log().LastIndex(), "step ", step, " node ", id);
      AM_CHECK_LE(r.applied(), r.commit(), "step ", step, " node ", id);
      inc.term = r.term();
      inc.commit = r.commit();
      // Election safety: at most one leader per term, ever.
      if (r.role() != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(r.term(), id);
      AM_CHECK(inserted || it->second == id, "step ", step, ": election safety: nodes ", it->second,
               " and ", id, " both leader in term ", r.term());
      if (inserted) {
        // Leader completeness: a new leader holds every entry committed before (those below
        // its log's start are in its snapshot, which covers only committed entries).
        for (const auto& [idx, e] : committed_) {
          if (idx <= r.log().snapshot_index()) continue;
          AM_CHECK(idx <= r.log().LastIndex() && r.log().At(idx) == e, "step ", step,
                   ": leader completeness: leader ", id, " of term ", r.term(), " lacks ",
                   raft::DescribeEntry(e));
        }
      }
    }
    // Committed entries never change (between full checks: only newly committed ones).
    for (NodeId id : alive) {
      Raft& r = h.node(id);
      Incarnation& inc = incarnations_[id];
      const Index from = std::max(full ? 1 : inc.checked + 1, r.log().FirstIndex());
      inc.checked = r.commit();
      for (Index i = from; i <= r.commit(); ++i) {
        const Entry& e = r.log().At(i);
        auto [it, inserted] = committed_.emplace(i, e);
        AM_CHECK(inserted || it->second == e, "step ", step, ": committed entry changed at ", i,
                 ": ", raft::DescribeEntry(it->second), " then ", raft::DescribeEntry(e),
                 " on node ", id);
      }
    }
    if (!full) return;
    // Log matching: the same (index, term) in two logs implies identical prefixes.
    for (size_t a = 0; a < alive.size(); ++a) {
      for (size_t b = a + 1; b < alive.size(); ++b) {
        const raft::RaftLog& la = h.node(alive[a]).log();
        const raft::RaftLog& lb = h.node(alive[b]).log();
        // Compared where both logs still hold entries (snapshots cover the rest).
        const Index first = std::max(la.FirstIndex(), lb.FirstIndex());
        Index match = 0;
        for (Index i = std::min(la.LastIndex(), lb.LastIndex()); i >= first; --i) {
          if (la.At(i).term == lb.At(i).term) {
            match = i;
            break;
          }
        }
        for (Index i = first; i <= match; ++i) {
          AM_CHECK(la.At(i) == lb.At(i), "step ", step, ": log matching: nodes ", alive[a], " and ",
                   alive[b], " agree at ", match, " but differ at ", i);
        }
      }
    }
  }

 private:
  struct Incarnation {
    const Raft* raft = nullptr;
    Term term = 0;
    Index commit = 0;
    Index checked = 0;  // committed entries up to here were compared with committed_
  };
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> committed_;
  std::map<NodeId, Incarnation> incarnations_;
};

// The message survives the wire: encode, serialize, parse, decode.
void CheckWireRoundTrip(const raft::Message& m) {
  peerpb::Message pb;
  server::ToProto(m, &pb);
  std::string bytes;
  AM_CHECK(pb.SerializeToString(&bytes), "cannot serialize ", raft::DescribeMessage(m));
  peerpb::Message parsed;
  AM_CHECK(parsed.ParseFromString(bytes), "cannot parse ", raft::DescribeMessage(m));
  absl::StatusOr<raft::Message> back = server::FromProto(parsed);
  AM_CHECK(back.ok(), "codec rejects a message raft sent: ", back.status().ToString(), " ",
           raft::DescribeMessage(m));
  AM_CHECK(MessagesEqual(m, *back), "codec round trip changed ", raft::DescribeMessage(m), " into ",
           raft::DescribeMessage(*back));
}

void RunInput(FuzzInput& in) {
  const uint8_t options = in.U8();
  const uint64_t seed = in.U8() + 1;
  const int n = (options & 8) ? 5 : 3;
  const bool pre_vote = options & 1;
  const bool check_quorum = options & 2;
  const bool lease = check_quorum && (options & 4);
  Harness h(
      n,
      [&](raft::Config& c) {
        c.pre_vote = pre_vote;
        c.check_quorum = check_quorum;
        if (lease) c.read_only = raft::ReadOnlyOption::kLeaseBased;
        c.election_ticks = 5;
        c.max_inflight_msgs = 4;
        c.max_msg_bytes = 256;
      },
      seed);
  h.set_record_events(false);
  SafetyChecker checker;
  int proposals = 0;
  raft::testing::ScheduleOptions schedule;
  // Every delivered message first goes through the peer codec; sizes vary so that
  // max_msg_bytes splits appends.
  schedule.before_deliver = CheckWireRoundTrip;
  schedule.pad_proposals = true;
  for (size_t step = 0; step < kMaxEvents && in.remaining() >= 3; ++step) {
    const int kind = in.U8() % 100;
    const int a = in.U8();
    const int b = in.U8();
    raft::testing::ApplyScheduleStep(h, kind, a, b, &proposals, schedule);
    checker.Check(h, step, step % kFullCheckEvery == kFullCheckEvery - 1);
  }

  checker.Check(h, kMaxEvents, /*full=*/true);

  // Liveness: heal everything; a leader must emerge and every node converge.
  h.Heal();
  for (NodeId id : h.ids()) {
    if (!h.alive(id)) h.Restart(id);
    h.SetManualPersist(id, false);
  }
  NodeId leader = raft::kNone;
  for (int round = 0; round < 300 && leader == raft::kNone; ++round) {
    for (NodeId id : h.ids()) h.Tick(id, 1);
    h.Stabilize();
    leader = h.Leader();
    if (leader != raft::kNone && !h.Propose(leader, "final").status.ok()) leader = raft::kNone;
  }
  AM_CHECK(leader != raft::kNone, "liveness: no leader after healing");
  for (int round = 0; round < 30; ++round) {
    for (NodeId id : h.ids()) h.Tick(id, 1);
    h.Stabilize();
    checker.Check(h, kMaxEvents + round, /*full=*/true);
  }
  leader = h.Leader();
  AM_CHECK(leader != raft::kNone, "liveness: leader lost after healing");
  const Index last = h.node(leader).log().LastIndex();
  for (NodeId id : h.ids()) {
    AM_CHECK_EQ(h.node(id).commit(), last, "liveness: node ", id, " did not catch up");
    AM_CHECK_EQ(h.node(id).applied(), last, "liveness: node ", id, " did not apply");
  }
}

}  // namespace
}  // namespace amaters::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  amaters::fuzz::FuzzInput in(data, size);
  amaters::fuzz::RunInput(in);
  return 0;
}
