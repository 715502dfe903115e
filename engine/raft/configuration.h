// Cluster configurations and their quorums (thesis §4; etcd/raft's ConfChangeV2), pure.
//
// A configuration is a set of voters, optionally a second, outgoing set of voters (a joint
// configuration, thesis §4.3), and learners, which receive the log but never vote and never
// count for commitment or quorum. In a joint configuration every decision (election, commit,
// check-quorum, ReadIndex) needs a majority of both sets.
//
// A change (ConfChange) is a list of single steps (add a voter or promote a learner, add a
// learner or demote a voter, remove a node). Changing at most one voter is a simple change: it
// moves straight to the new configuration. Changing more voters at once enters the joint
// configuration (old voters outgoing, new voters incoming); an empty change leaves it again (the
// leader proposes it as soon as the joint configuration is applied: auto_leave).
//
// Changes take effect when their entry is applied (as in etcd/raft; docs/membership.md explains
// why): at most one change may be in the log uncommitted-or-unapplied at a time.
#ifndef AMATERS_ENGINE_RAFT_CONFIGURATION_H_
#define AMATERS_ENGINE_RAFT_CONFIGURATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/raft/types.h"

namespace amaters::raft {

// The most members (voters, outgoing voters and learners together) a configuration may have.
inline constexpr size_t kMaxMembers = 64;

struct ConfChangeStep {
  enum class Type : uint8_t {
    kAddVoter = 0,    // a new voter, or a learner promoted
    kAddLearner = 1,  // a new learner, or a voter demoted
    kRemove = 2,
  };
  Type type = Type::kAddVoter;
  NodeId node = kNone;
  bool operator==(const ConfChangeStep& o) const { return type == o.type && node == o.node; }
};

enum class VoteResult : uint8_t { kPending, kWon, kLost };

struct Configuration {
  std::vector<NodeId> voters;    // sorted, unique; the incoming set in a joint configuration
  std::vector<NodeId> outgoing;  // sorted, unique; non-empty only while joint
  std::vector<NodeId> learners;  // sorted, unique; disjoint from voters and outgoing
  bool auto_leave = false;       // joint: leave as soon as applied
  // Names and URLs recorded for members (sorted by id, only ids that are members; a member
  // without an entry was configured at bootstrap and is known by its id only).
  std::vector<MemberInfo> member_info;

  static Configuration Of(std::vector<NodeId> voters, std::vector<NodeId> learners = {});

  bool joint() const { return !outgoing.empty(); }
  bool IsVoter(NodeId id) const;  // votes in either set
  bool IsLearner(NodeId id) const;
  bool IsMember(NodeId id) const { return IsVoter(id) || IsLearner(id); }
  // Every member (voters of both sets and learners), sorted.
  std::vector<NodeId> Members() const;
  // Every voter of both sets, sorted.
  std::vector<NodeId> AllVoters() const;

  // Majority of each set (an empty set agrees to anything; see Validate).
  VoteResult Tally(const std::map<NodeId, bool>& votes) const;
  // The highest index a majority of each set has matched.
  Index CommittedIndex(const std::function<Index(NodeId)>& match) const;
  bool QuorumActive(const std::function<bool(NodeId)>& active) const;

  // The recorded info of `id`, or nullptr.
  const MemberInfo* InfoOf(NodeId id) const;

  // Non-empty voters; sorted and unique sets; learners disjoint from voters; size bound;
  // member_info sorted by id, of members only, each within its bounds.
  absl::Status Validate() const;
  std::string Describe() const;

  bool operator==(const Configuration& o) const {
    return voters == o.voters && outgoing == o.outgoing && learners == o.learners &&
           auto_leave == o.auto_leave && member_info == o.member_info;
  }
  bool operator!=(const Configuration& o) const { return !(*this == o); }
};

inline std::ostream& operator<<(std::ostream& os, const Configuration& c) {
  return os << c.Describe();
}

// The payload of an EntryType::kConfChange entry.
//  - Steps: the change. No steps: leave the joint configuration, or, outside one, only update
//    `members` (etcd's MemberUpdate).
//  - `members`: what the cluster records about members of the resulting configuration (their
//    names and URLs, replacing what was recorded for the same ids). Raft's decisions never
//    depend on it.
//  - `result`: the configuration the change leads to, set by the leader when it appends the
//    entry (it computes it from the configuration the change will meet: every earlier change
//    is applied by then, as only one may be pending). Applying the entry sets it, so a node
//    that joins without knowing the configurations before (initial_cluster_state "existing")
//    ends up with the right one all the same.
struct ConfChange {
  std::vector<ConfChangeStep> steps;
  std::vector<MemberInfo> members;
  std::optional<Configuration> result;
  bool operator==(const ConfChange& o) const {
    return steps == o.steps && members == o.members && result == o.result;
  }
};

// Entry data of a ConfChange: version byte 1, u32 step count, per step (u8 type, u64 node),
// the member list (AppendMemberList in types.h), u8 1 if a result follows (else 0), and the
// result: u32 count + u64 ids of voters, of outgoing voters and of learners, u8 auto_leave,
// its member list. Little-endian. A result that fails Validate does not decode.
std::string EncodeConfChange(const ConfChange& cc);
absl::StatusOr<ConfChange> DecodeConfChange(absl::string_view data);
std::string DescribeConfChange(const ConfChange& cc);

// The configuration a snapshot records, and recording one in a snapshot's metadata.
Configuration ConfigurationOf(const SnapshotMeta& meta);
void RecordConfiguration(const Configuration& conf, SnapshotMeta* meta);

// The configuration `cc` leads to from `from`, or why it is refused: a change while joint
// (only leaving is allowed then), an empty change outside a joint configuration with no
// members to update, a step naming a node twice, removing or demoting the last voter, a
// demotion in a change that needs a joint configuration, a result without voters or with more
// than kMaxMembers members, or member info for a node that is not a member of the result (or
// beyond the bounds of types.h). Info of members the change removes is dropped.
absl::StatusOr<Configuration> ApplyConfChange(const Configuration& from, const ConfChange& cc);

}  // namespace amaters::raft

#endif  // AMATERS_ENGINE_RAFT_CONFIGURATION_H_
