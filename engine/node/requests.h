// node::ClientRequests — the client request lifecycle, shared by every driver of a node::Node
// (the server's runtime, the simulator, the fuzz driver), so that the simulator's swarm runs the
// retry, deadline and re-ask rules production runs (docs/architecture.md "Client requests").
// Pure: time comes in as `now_ms`, the node is called directly, outcomes go out as data.
//
// A driver hands each client request in with a token of its own (its callback's key) and a
// deadline, and after every Node::TakeEffects passes the effects through Route, which turns the
// node's request ids into tokens and the node's error replies into outcomes:
//  - no leader known (an election runs), or another entry committed in the request's place
//    (kUnavailable): certainly not applied; retried after retry_delay_ms until the deadline,
//    then "etcdserver: no leader" / "etcdserver: request timed out". A configuration change is
//    retried only while no leader is known: its other refusals ("a configuration change is
//    pending") go back to the client, who decides with the membership as it is then;
//  - kAborted (the entry left this node's log; it may still commit elsewhere): never retried;
//    finishes with "etcdserver: leader changed", outcome unknown;
//  - another node is the known leader (kFailedPrecondition with `leader`): finishes with the
//    hint; the driver forwards the request there;
//  - the deadline passes while the node holds it: Node::Abandon, "etcdserver: request timed
//    out", outcome unknown for a write;
//  - a linearizable read unconfirmed for read_reask_ms (a lost ReadIndex round) is abandoned
//    and asked again under a new id: reads have no effect, asking twice is safe;
//  - at most max_requests are tracked (waiting in the node or for a retry): more are refused
//    at once with etcd's "etcdserver: too many requests".
#ifndef AMATERS_ENGINE_NODE_REQUESTS_H_
#define AMATERS_ENGINE_NODE_REQUESTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/node/node.h"
#include "engine/raft/configuration.h"
#include "engine/raft/types.h"

namespace amaters::node {

// The driver's handle on one client request; unique among the requests it has pending.
using Token = uint64_t;

struct ClientRequestsConfig {
  uint64_t retry_delay_ms = 50;     // a request that met no leader is tried again after this
  uint64_t read_reask_ms = 1000;    // an unconfirmed read is asked again after this (an election)
  uint64_t max_requests = 10000;    // tracked at once; NodeConfig::max_pending_requests
  // Simulator only: a planted bug (docs/simulation.md) that retries kAborted proposals.
  bool planted_retry_aborted = false;
  absl::Status Validate() const;
};

struct ClientRequest {
  enum class Kind { kPropose, kConfChange, kRead };
  Kind kind = Kind::kRead;
  std::string data;                        // kPropose: the encoded command
  std::optional<raft::ConfChange> change;  // kConfChange
  uint64_t deadline_ms = 0;
};

// A request that finished without a state machine result.
struct Finished {
  Token token = 0;
  absl::Status status;
  raft::NodeId leader = raft::kNone;  // a leader hint for forwarding
  // The request may still take effect (a write that timed out in the node, or was aborted).
  bool outcome_unknown = false;
};

class ClientRequests {
 public:
  explicit ClientRequests(const ClientRequestsConfig& config);

  // A new request, handed to the node at once (or refused: past its deadline, too many).
  void Submit(Node& node, Token token, ClientRequest request, uint64_t now_ms);
  // Call with every Effects taken from `node`, before using it: replies become Finished
  // outcomes or retries (e.replies is emptied), and the request ids of e.apply and e.reads are
  // replaced by the tokens waiting for them (an item nobody waits for loses its id; a read
  // nobody waits for is dropped).
  void Route(Effects& e, uint64_t now_ms);
  // Time passes: retries that are due are handed to the node again; requests past their
  // deadline are abandoned; unconfirmed reads are asked again.
  void Advance(Node& node, uint64_t now_ms);
  // When Advance next has work (a retry is due), if any is waiting.
  std::optional<uint64_t> NextRetryMs() const;
  // The node stopped: every request finishes with `status` (outcome unknown for writes in the
  // node).
  void FailAll(const absl::Status& status);

  std::vector<Finished> TakeFinished();
  size_t size() const { return in_node_.size() + retrying_.size(); }

 private:
  struct Tracked {
    Token token = 0;
    ClientRequest request;
    uint64_t asked_ms = 0;  // when it was last handed to the node
  };

  void Hand(Node& node, Tracked t, uint64_t now_ms);
  void OnReply(const Reply& reply, uint64_t now_ms);
  void Finish(const Tracked& t, absl::Status status, raft::NodeId leader, bool unknown);
  std::optional<Token> TakeToken(RequestId id);

  const ClientRequestsConfig config_;
  RequestId next_id_ = 1;
  std::map<RequestId, Tracked> in_node_;           // handed to the node, by its request id
  std::multimap<uint64_t, Tracked> retrying_;      // waiting to be handed again, by due time
  std::vector<Finished> finished_;
};

}  // namespace amaters::node

#endif  // AMATERS_ENGINE_NODE_REQUESTS_H_
