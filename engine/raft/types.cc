#include "engine/raft/types.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace amaters::raft {

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kApp: return "App";
    case MessageType::kAppResp: return "AppResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResp: return "VoteResp";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResp: return "PreVoteResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResp: return "HeartbeatResp";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResp: return "ReadIndexResp";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kSnapshotResp: return "SnapshotResp";
  }
  return "Unknown";
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "unknown";
}

std::string DescribeEntry(const Entry& e) {
  if (e.type == EntryType::kNoop) return absl::StrCat(e.term, "/", e.index, " noop");
  if (e.type == EntryType::kConfChange) return absl::StrCat(e.term, "/", e.index, " conf-change");
  return absl::StrCat(e.term, "/", e.index, " ", absl::CHexEscape(e.data));
}

std::string DescribeMessage(const Message& m) {
  std::string s = absl::StrCat(m.from, "->", m.to, " ", MessageTypeName(m.type), " term=", m.term);
  switch (m.type) {
    case MessageType::kApp:
      absl::StrAppend(&s, " prev=", m.log_term, "/", m.index, " commit=", m.commit);
      if (!m.entries.empty()) {
        absl::StrAppend(&s, " [");
        for (size_t i = 0; i < m.entries.size(); ++i) {
          absl::StrAppend(&s, i ? ", " : "", DescribeEntry(m.entries[i]));
        }
        absl::StrAppend(&s, "]");
      }
      break;
    case MessageType::kAppResp:
      absl::StrAppend(&s, " index=", m.index);
      if (m.reject) absl::StrAppend(&s, " reject hint=", m.log_term, "/", m.reject_hint);
      break;
    case MessageType::kVote:
    case MessageType::kPreVote:
      absl::StrAppend(&s, " last=", m.log_term, "/", m.index);
      if (m.transfer) absl::StrAppend(&s, " transfer");
      break;
    case MessageType::kVoteResp:
    case MessageType::kPreVoteResp:
      absl::StrAppend(&s, m.reject ? " rejected" : " granted");
      break;
    case MessageType::kHeartbeat:
      absl::StrAppend(&s, " commit=", m.commit);
      if (m.read_round) absl::StrAppend(&s, " round=", m.read_round);
      break;
    case MessageType::kHeartbeatResp:
      if (m.read_round) absl::StrAppend(&s, " round=", m.read_round);
      break;
    case MessageType::kTimeoutNow:
      break;
    case MessageType::kReadIndex:
      absl::StrAppend(&s, " ctx=", absl::CHexEscape(m.context));
      break;
    case MessageType::kReadIndexResp:
      absl::StrAppend(&s, " ctx=", absl::CHexEscape(m.context), " index=", m.index);
      if (m.reject) absl::StrAppend(&s, " rejected");
      break;
    case MessageType::kSnapshot:
      absl::StrAppend(&s, " snapshot=", m.snapshot.term, "/", m.snapshot.index);
      if (m.chunk.total_bytes > 0 || !m.chunk.data.empty()) {
        absl::StrAppend(&s, " chunk=", m.chunk.offset, "+", m.chunk.data.size(), "/",
                        m.chunk.total_bytes);
      }
      break;
    case MessageType::kSnapshotResp:
      absl::StrAppend(&s, " snapshot=", m.snapshot.term, "/", m.snapshot.index,
                      " next=", m.index);
      if (m.reject) absl::StrAppend(&s, " rejected");
      break;
  }
  return s;
}

}  // namespace amaters::raft
