// Value types of the Raft engine: log entries, hard state, messages, read states.
//
// These are plain data. They cross the engine boundary in both directions: the driver feeds
// received messages in and carries outgoing messages, entries and hard state out to the network
// and the disk. Wire encoding (protobuf) lives outside the engine's core logic.
#ifndef AMATERS_ENGINE_RAFT_TYPES_H_
#define AMATERS_ENGINE_RAFT_TYPES_H_

#include <cstdint>
#include <cstddef>
#include <string>
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include <utility>
#include <vector>

namespace amaters::raft {

using NodeId = uint64_t;
using Term = uint64_t;
using Index = uint64_t;

// Node ids are positive; 0 means "nobody" (no vote, no known leader).
inline constexpr NodeId kNone = 0;

enum class EntryType : uint8_t {
  kNormal = 0,  // A client command; `data` is opaque to Raft.
  kNoop = 1,    // Appended by a new leader in its own term (thesis §6.4, paper §8).
  // A configuration change; `data` is an encoded raft::ConfChange (configuration.h). It takes
  // effect on each node when that node applies it (Raft::OnApplied).
  kConfChange = 2,
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes this entry counts for in flow control and batching limits.
  uint64_t PayloadSize() const { return data.size() + 24; }
  bool operator==(const Entry& o) const {
    return term == o.term && index == o.index && type == o.type && data == o.data;
  }
};

// Durable per-node state (paper Figure 2 "persistent state on all servers", plus the commit
// index, which is not required for safety but saves re-deriving it after a restart).
struct HardState {
  Term term = 0;
  NodeId vote = kNone;
  Index commit = 0;

  bool operator==(const HardState& o) const {
    return term == o.term && vote == o.vote && commit == o.commit;
  }
  bool operator!=(const HardState& o) const { return !(*this == o); }
};

enum class MessageType : uint8_t {
  kApp = 1,            // AppendEntries (paper §5.3).
  kAppResp = 2,
  kVote = 3,           // RequestVote (paper §5.2).
  kVoteResp = 4,
  kPreVote = 5,        // Pre-vote (thesis §9.6).
  kPreVoteResp = 6,
  kHeartbeat = 7,      // Empty AppendEntries; also confirms leadership for ReadIndex (§6.4).
  kHeartbeatResp = 8,
  kTimeoutNow = 9,     // Leadership transfer (thesis §3.10).
  kReadIndex = 10,     // A follower asks the leader for a read index (thesis §6.4).
  kReadIndexResp = 11,
  kSnapshot = 12,      // InstallSnapshot (thesis §5): the follower's next entry is compacted.
  kSnapshotResp = 13,  // A follower acknowledges snapshot chunks (node::Node, not Raft).
};

const char* MessageTypeName(MessageType t);

// What the cluster knows of a member besides its role (etcd's Member): a name and the URLs
// other members and clients reach it at. Replicated in configuration changes (ConfChange) and
// snapshots; opaque to Raft's decisions. Bounds: kMaxMemberNameBytes, kMaxMemberUrls per list,
// kMaxMemberUrlBytes per URL.
inline constexpr size_t kMaxMemberNameBytes = 256;
inline constexpr size_t kMaxMemberUrls = 8;
inline constexpr size_t kMaxMemberUrlBytes = 512;

struct MemberInfo {
  NodeId id = kNone;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool operator==(const MemberInfo& o) const {
    return id == o.id && name == o.name && peer_urls == o.peer_urls &&
           client_urls == o.client_urls;
  }
  bool operator!=(const MemberInfo& o) const { return !(*this == o); }
};

// A list of MemberInfo as bytes, little-endian: u32 count, then per member u64 id, u32 length +
// name, u32 count + (u32 length + URL) for peer URLs, the same for client URLs.
// ParseMemberList reads one list starting at `*at` and advances it; false (with `*at`
// unspecified) when the bytes are cut short or break a bound (at most `max_members`).
void AppendMemberList(const std::vector<MemberInfo>& members, std::string* out);
bool ParseMemberList(absl::string_view in, size_t* at, size_t max_members,
                     std::vector<MemberInfo>* out);
// The length of AppendMemberList's bytes for `members`.
size_t MemberListBytes(const std::vector<MemberInfo>& members);
// Empty when `m` is within the bounds above and its id is not kNone; otherwise why not.
std::string MemberInfoProblem(const MemberInfo& m);

// A state machine snapshot as Raft sees it (thesis §5.1): it replaces every entry up to and
// including `index`, whose term is `term`; `voters` is the configuration at that index.
// The configuration in effect at `index` is part of a snapshot (raft::Configuration).
struct SnapshotMeta {
  SnapshotMeta() = default;
  SnapshotMeta(Index i, Term t, std::vector<NodeId> v = {})
      : index(i), term(t), voters(std::move(v)) {}

  Index index = 0;  // 0: no snapshot
  Term term = 0;
  std::vector<NodeId> voters;
  std::vector<NodeId> voters_outgoing;  // non-empty while joint
  std::vector<NodeId> learners;
  bool auto_leave = false;
  std::vector<MemberInfo> members;  // sorted by id; see Configuration::member_info
  bool operator==(const SnapshotMeta& o) const {
    return index == o.index && term == o.term && voters == o.voters &&
           voters_outgoing == o.voters_outgoing && learners == o.learners &&
           auto_leave == o.auto_leave && members == o.members;
  }
  bool operator!=(const SnapshotMeta& o) const { return !(*this == o); }
};

// One piece of a snapshot's state in transit (node::Node streams it; Raft never sees the data).
struct SnapshotChunk {
  uint64_t offset = 0;       // where `data` starts in the snapshot's bytes
  uint64_t total_bytes = 0;  // size of the whole snapshot
  uint32_t total_crc = 0;    // CRC-32C of the whole snapshot
  uint32_t crc = 0;          // CRC-32C of `data`
  std::string data;
  bool operator==(const SnapshotChunk& o) const {
    return offset == o.offset && total_bytes == o.total_bytes && total_crc == o.total_crc &&
           crc == o.crc && data == o.data;
  }
};

// One message between peers. Field meaning depends on `type`:
//   kApp:        index/log_term = the entry preceding `entries`; commit = leader commit;
//                probe = the leader's probe number for this follower (0 when replicating).
//   kAppResp:    index = last index now matching (accept) or the rejected `index` (reject);
//                reject_hint/log_term = follower's conflict hint (fast backtracking);
//                probe echoes the append's.
//   kVote/kPreVote: index/log_term = candidate's last entry; `transfer` = leadership transfer.
//   kHeartbeat:  commit = min(leader commit, follower match); read_round = ReadIndex round.
//   kHeartbeatResp: read_round echoes the heartbeat's round.
//   kReadIndex:  context = the follower's request id; kReadIndexResp: index = read index, or
//                reject = the read was refused: reject_hint = 1 when the leader's read queue
//                was full, 0 when the receiver is not the leader.
//   kSnapshot:   snapshot = the leader's newest snapshot. Raft emits it when a follower needs
//                entries the leader compacted; node::Node streams the state in chunks and steps
//                the follower's Raft with it once the whole state is received and verified.
//                The follower answers with kAppResp (index = what now matches). Between
//                nodes it carries `chunk`: the bytes at chunk.offset.
//   kSnapshotResp: snapshot = the snapshot being received; index = the offset the follower
//                wants next (all bytes before it are received and verified); reject = the
//                follower will not take this snapshot (its commit index is past it).
struct Message {
  MessageType type = MessageType::kApp;
  NodeId from = kNone;
  NodeId to = kNone;
  Term term = 0;
  Term log_term = 0;
  Index index = 0;
  std::vector<Entry> entries;
  Index commit = 0;
  bool reject = false;
  Index reject_hint = 0;
  bool transfer = false;
  uint64_t read_round = 0;
  uint64_t probe = 0;
  std::string context;
  SnapshotMeta snapshot;
  SnapshotChunk chunk;
};

std::string DescribeMessage(const Message& m);
std::string DescribeEntry(const Entry& e);

// A linearizable read that may now be served: once the local state machine has applied
// `index`, the read identified by `context` sees every write acknowledged before it began.
// Or a read the leader refused (`refused` not OK, `index` 0): kResourceExhausted when its read
// queue was full, kUnavailable when the request reached a node that is not the leader.
struct ReadState {
  Index index = 0;
  std::string context;
  absl::Status refused;
  bool operator==(const ReadState& o) const {
    return index == o.index && context == o.context && refused == o.refused;
  }
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

}  // namespace amaters::raft

#endif  // AMATERS_ENGINE_RAFT_TYPES_H_
