#include "engine/raft/types.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace amaters::raft {
namespace {

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool GetLe(absl::string_view in, size_t* at, int bytes, uint64_t* v) {
  if (in.size() < *at || in.size() - *at < static_cast<size_t>(bytes)) return false;
  *v = 0;
  for (int i = 0; i < bytes; ++i) {
    *v |= uint64_t{static_cast<uint8_t>(in[*at + static_cast<size_t>(i)])} << (8 * i);
  }
  *at += static_cast<size_t>(bytes);
  return true;
}

void PutString(std::string* out, const std::string& s) {
  PutLe(out, s.size(), 4);
  out->append(s);
}

bool GetString(absl::string_view in, size_t* at, size_t max_bytes, std::string* s) {
  uint64_t n = 0;
  if (!GetLe(in, at, 4, &n) || n > max_bytes || in.size() - *at < n) return false;
  *s = std::string(in.substr(*at, n));
  *at += n;
  return true;
}

bool GetUrls(absl::string_view in, size_t* at, std::vector<std::string>* urls) {
  uint64_t n = 0;
  if (!GetLe(in, at, 4, &n) || n > kMaxMemberUrls) return false;
  urls->resize(n);
  for (std::string& u : *urls) {
    if (!GetString(in, at, kMaxMemberUrlBytes, &u)) return false;
  }
  return true;
}

}  // namespace

void AppendMemberList(const std::vector<MemberInfo>& members, std::string* out) {
  PutLe(out, members.size(), 4);
  for (const MemberInfo& m : members) {
    PutLe(out, m.id, 8);
    PutString(out, m.name);
    for (const std::vector<std::string>* urls : {&m.peer_urls, &m.client_urls}) {
      PutLe(out, urls->size(), 4);
      for (const std::string& u : *urls) PutString(out, u);
    }
  }
}

size_t MemberListBytes(const std::vector<MemberInfo>& members) {
  size_t n = 4;
  for (const MemberInfo& m : members) {
    n += 8 + 4 + m.name.size() + 4 + 4;
    for (const std::string& u : m.peer_urls) n += 4 + u.size();
    for (const std::string& u : m.client_urls) n += 4 + u.size();
  }
  return n;
}

bool ParseMemberList(absl::string_view in, size_t* at, size_t max_members,
                     std::vector<MemberInfo>* out) {
  uint64_t n = 0;
  if (!GetLe(in, at, 4, &n) || n > max_members) return false;
  out->assign(n, MemberInfo{});
  for (MemberInfo& m : *out) {
    if (!GetLe(in, at, 8, &m.id) || !GetString(in, at, kMaxMemberNameBytes, &m.name) ||
        !GetUrls(in, at, &m.peer_urls) || !GetUrls(in, at, &m.client_urls)) {
      return false;
    }
  }
  return true;
}

std::string MemberInfoProblem(const MemberInfo& m) {
  if (m.id == kNone) return "member id 0";
  if (m.name.size() > kMaxMemberNameBytes) {
    return absl::StrCat("member ", m.id, ": name longer than ", kMaxMemberNameBytes, " bytes");
  }
  for (const std::vector<std::string>* urls : {&m.peer_urls, &m.client_urls}) {
    if (urls->size() > kMaxMemberUrls) {
      return absl::StrCat("member ", m.id, ": more than ", kMaxMemberUrls, " URLs");
    }
    for (const std::string& u : *urls) {
      if (u.size() > kMaxMemberUrlBytes) {
        return absl::StrCat("member ", m.id, ": URL longer than ", kMaxMemberUrlBytes, " bytes");
      }
    }
  }
  return "";
}

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
