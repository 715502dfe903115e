#include "engine/node/requests.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::node {
namespace {

absl::Status Timeout() { return absl::UnavailableError("etcdserver: request timed out"); }

}  // namespace

absl::Status ClientRequestsConfig::Validate() const {
  if (retry_delay_ms == 0) return absl::InvalidArgumentError("retry_delay_ms must be > 0");
  if (read_reask_ms == 0) return absl::InvalidArgumentError("read_reask_ms must be > 0");
  if (max_requests == 0) return absl::InvalidArgumentError("max_requests must be > 0");
  return absl::OkStatus();
}

ClientRequests::ClientRequests(const ClientRequestsConfig& config) : config_(config) {
  AM_CHECK(config_.Validate().ok(), config_.Validate().ToString());
}

void ClientRequests::Submit(Node& node, Token token, ClientRequest request, uint64_t now_ms) {
  Tracked t{token, std::move(request), now_ms};
  if (t.request.deadline_ms <= now_ms) {
    Finish(t, Timeout(), raft::kNone, false);
    return;
  }
  if (size() >= config_.max_requests) {
    // etcd's ErrTooManyRequests: the client backs off; nothing was handed to the node.
    Finish(t, absl::ResourceExhaustedError("etcdserver: too many requests"), raft::kNone, false);
    return;
  }
  AM_CHECK(t.request.kind != ClientRequest::Kind::kConfChange || t.request.change.has_value());
  Hand(node, std::move(t), now_ms);
}

void ClientRequests::Hand(Node& node, Tracked t, uint64_t now_ms) {
  const RequestId id = next_id_++;
  t.asked_ms = now_ms;
  const ClientRequest::Kind kind = t.request.kind;
  // The node may reply at once (into its effects); Route finds the request here.
  auto [it, inserted] = in_node_.emplace(id, std::move(t));
  AM_CHECK(inserted, "request id ", id, " reused");
  const ClientRequest& r = it->second.request;
  switch (kind) {
    case ClientRequest::Kind::kPropose:
      node.Propose(id, r.data);
      break;
    case ClientRequest::Kind::kConfChange:
      node.ProposeConfChange(id, *r.change);
      break;
    case ClientRequest::Kind::kRead:
      node.Read(id);
      break;
  }
  AM_CHECK_LE(size(), config_.max_requests);
}

std::optional<Token> ClientRequests::TakeToken(RequestId id) {
  auto it = in_node_.find(id);
  if (it == in_node_.end()) return std::nullopt;
  const Token token = it->second.token;
  in_node_.erase(it);
  return token;
}

void ClientRequests::Route(Effects& e, uint64_t now_ms) {
  for (const Reply& r : e.replies) OnReply(r, now_ms);
  e.replies.clear();
  for (ApplyItem& item : e.apply) {
    if (item.request) item.request = TakeToken(*item.request);
  }
  std::vector<RequestId> reads;
  reads.reserve(e.reads.size());
  for (RequestId id : e.reads) {
    if (std::optional<Token> token = TakeToken(id)) reads.push_back(*token);
  }
  e.reads = std::move(reads);
}

void ClientRequests::OnReply(const Reply& reply, uint64_t now_ms) {
  auto it = in_node_.find(reply.request);
  if (it == in_node_.end()) return;  // abandoned meanwhile
  Tracked t = std::move(it->second);
  in_node_.erase(it);
  const absl::StatusCode code = reply.status.code();
  const bool write = t.request.kind != ClientRequest::Kind::kRead;
  if (code == absl::StatusCode::kAborted && !config_.planted_retry_aborted) {
    // Its entry may still commit through another replica: the client decides.
    Finish(t, absl::UnavailableError("etcdserver: leader changed"), reply.leader, write);
    return;
  }
  const bool no_leader =
      code == absl::StatusCode::kFailedPrecondition && reply.leader == raft::kNone;
  // A configuration change was checked against the membership when the client asked; another
  // change applied meanwhile may make it unwise (two removals leaving two voters), so only
  // "no leader yet" retries it, never "another change is pending" or "replaced".
  const bool retry = t.request.kind == ClientRequest::Kind::kConfChange
                         ? no_leader
                         : code == absl::StatusCode::kUnavailable ||
                               code == absl::StatusCode::kAborted || no_leader;
  if (!retry) {
    Finish(t, reply.status, reply.leader, false);
    return;
  }
  if (now_ms + config_.retry_delay_ms < t.request.deadline_ms) {
    retrying_.emplace(now_ms + config_.retry_delay_ms, std::move(t));
    return;
  }
  // Out of time while waiting for a leader: etcd's ErrGRPCNoLeader / ErrTimeout.
  Finish(t, reply.leader == raft::kNone ? absl::UnavailableError("etcdserver: no leader")
                                        : Timeout(),
         reply.leader, false);
}

void ClientRequests::Advance(Node& node, uint64_t now_ms) {
  std::vector<Tracked> again;
  for (auto it = in_node_.begin(); it != in_node_.end();) {
    Tracked& t = it->second;
    const bool read = t.request.kind == ClientRequest::Kind::kRead;
    if (t.request.deadline_ms <= now_ms) {
      node.Abandon(it->first);
      Finish(t, Timeout(), raft::kNone, !read);
    } else if (read && now_ms - t.asked_ms >= config_.read_reask_ms) {
      node.Abandon(it->first);
      again.push_back(std::move(t));
    } else {
      ++it;
      continue;
    }
    it = in_node_.erase(it);
  }
  while (!retrying_.empty() && retrying_.begin()->first <= now_ms) {
    again.push_back(std::move(retrying_.begin()->second));
    retrying_.erase(retrying_.begin());
  }
  for (Tracked& t : again) {
    if (t.request.deadline_ms <= now_ms) {
      Finish(t, Timeout(), raft::kNone, false);
    } else {
      Hand(node, std::move(t), now_ms);
    }
  }
}

std::optional<uint64_t> ClientRequests::NextRetryMs() const {
  if (retrying_.empty()) return std::nullopt;
  return retrying_.begin()->first;
}

void ClientRequests::FailAll(const absl::Status& status) {
  AM_CHECK(!status.ok());
  for (auto& [id, t] : in_node_) {
    Finish(t, status, raft::kNone, t.request.kind != ClientRequest::Kind::kRead);
  }
  in_node_.clear();
  for (auto& [due, t] : retrying_) Finish(t, status, raft::kNone, false);
  retrying_.clear();
}

void ClientRequests::Finish(const Tracked& t, absl::Status status, raft::NodeId leader,
                            bool unknown) {
  AM_CHECK(!status.ok(), "a request finishes without a result only on an error");
  finished_.push_back({t.token, std::move(status), leader, unknown});
}

std::vector<Finished> ClientRequests::TakeFinished() {
  std::vector<Finished> out;
  out.swap(finished_);
  return out;
}

}  // namespace amaters::node
