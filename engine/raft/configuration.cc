#include "engine/raft/configuration.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/check.h"

namespace amaters::raft {
namespace {

constexpr uint8_t kConfChangeVersion = 1;
constexpr size_t kStepBytes = 9;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLe(absl::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= uint64_t{static_cast<uint8_t>(in[at + static_cast<size_t>(i)])} << (8 * i);
  }
  return v;
}

bool Contains(const std::vector<NodeId>& sorted, NodeId id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

void Insert(std::vector<NodeId>* sorted, NodeId id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it == sorted->end() || *it != id) sorted->insert(it, id);
}

void Erase(std::vector<NodeId>* sorted, NodeId id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it != sorted->end() && *it == id) sorted->erase(it);
}

bool SortedUnique(const std::vector<NodeId>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<NodeId>()) == v.end();
}

// Majority of one voter set: kWon / kLost once decided. An empty set is always won (it is the
// outgoing half of a configuration that is not joint).
VoteResult TallyOne(const std::vector<NodeId>& set, const std::map<NodeId, bool>& votes) {
  if (set.empty()) return VoteResult::kWon;
  size_t yes = 0, no = 0;
  for (NodeId v : set) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    (it->second ? yes : no)++;
  }
  const size_t quorum = set.size() / 2 + 1;
  if (yes >= quorum) return VoteResult::kWon;
  if (no > set.size() - quorum) return VoteResult::kLost;
  return VoteResult::kPending;
}

Index CommittedOne(const std::vector<NodeId>& set, const std::function<Index(NodeId)>& match) {
  if (set.empty()) return UINT64_MAX;  // no constraint
  std::vector<Index> m;
  m.reserve(set.size());
  for (NodeId v : set) m.push_back(match(v));
  std::sort(m.begin(), m.end(), std::greater<Index>());
  return m[set.size() / 2];  // the highest index a majority has reached
}

std::string Ids(const std::vector<NodeId>& ids) { return absl::StrJoin(ids, ","); }

// `to` with the member info of `cc` recorded and the info of non-members dropped; refused
// (through `refuse`) for info of a non-member or beyond the bounds.
template <typename Refuse>
absl::StatusOr<Configuration> WithMemberInfo(Configuration to, const ConfChange& cc,
                                             const Refuse& refuse) {
  std::map<NodeId, MemberInfo> info;
  for (MemberInfo& m : to.member_info) {
    if (to.IsMember(m.id)) info[m.id] = std::move(m);
  }
  for (const MemberInfo& m : cc.members) {
    if (std::string why = MemberInfoProblem(m); !why.empty()) return refuse(why);
    if (!to.IsMember(m.id)) return refuse(absl::StrCat("info of node ", m.id, ", not a member"));
    info[m.id] = m;
  }
  to.member_info.clear();
  for (auto& [id, m] : info) to.member_info.push_back(std::move(m));
  AM_CHECK(to.Validate().ok(), to.Describe());
  return to;
}

}  // namespace

std::string EncodeConfChange(const ConfChange& cc) {
  std::string out;
  out.push_back(static_cast<char>(kConfChangeVersion));
  PutU32(&out, static_cast<uint32_t>(cc.steps.size()));
  for (const ConfChangeStep& s : cc.steps) {
    out.push_back(static_cast<char>(s.type));
    PutU64(&out, s.node);
  }
  AppendMemberList(cc.members, &out);
  out.push_back(cc.result.has_value() ? 1 : 0);
  if (cc.result) {
    for (const std::vector<NodeId>* ids : {&cc.result->voters, &cc.result->outgoing,
                                           &cc.result->learners}) {
      PutU32(&out, static_cast<uint32_t>(ids->size()));
      for (NodeId id : *ids) PutU64(&out, id);
    }
    out.push_back(cc.result->auto_leave ? 1 : 0);
    AppendMemberList(cc.result->member_info, &out);
  }
  return out;
}

absl::StatusOr<ConfChange> DecodeConfChange(absl::string_view data) {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("configuration change: ", why));
  };
  if (data.size() < 9) return bad("too short");  // version, step count, member count
  if (static_cast<uint8_t>(data[0]) != kConfChangeVersion) {
    return bad(absl::StrCat("unknown version ", static_cast<int>(static_cast<uint8_t>(data[0]))));
  }
  const uint64_t steps = GetLe(data, 1, 4);
  if (steps > kMaxMembers || data.size() < 5 + steps * kStepBytes + 4) return bad("step count");
  ConfChange cc;
  size_t at = 5;
  for (uint64_t i = 0; i < steps; ++i, at += kStepBytes) {
    const uint8_t type = static_cast<uint8_t>(data[at]);
    if (type > static_cast<uint8_t>(ConfChangeStep::Type::kRemove)) return bad("step type");
    const NodeId node = GetLe(data, at + 1, 8);
    if (node == kNone) return bad("node 0");
    cc.steps.push_back({static_cast<ConfChangeStep::Type>(type), node});
  }
  if (!ParseMemberList(data, &at, kMaxMembers, &cc.members) || at >= data.size()) {
    return bad("member list");
  }
  const uint8_t has_result = static_cast<uint8_t>(data[at++]);
  if (has_result > 1) return bad("result flag");
  if (has_result == 1) {
    Configuration r;
    for (std::vector<NodeId>* ids : {&r.voters, &r.outgoing, &r.learners}) {
      if (data.size() - at < 4) return bad("result");
      const uint64_t n = GetLe(data, at, 4);
      at += 4;
      if (n > kMaxMembers || (data.size() - at) / 8 < n) return bad("result id count");
      for (uint64_t i = 0; i < n; ++i, at += 8) ids->push_back(GetLe(data, at, 8));
    }
    if (at >= data.size() || static_cast<uint8_t>(data[at]) > 1) return bad("result auto_leave");
    r.auto_leave = data[at++] == 1;
    if (!ParseMemberList(data, &at, kMaxMembers, &r.member_info)) return bad("result members");
    if (absl::Status s = r.Validate(); !s.ok()) return bad(s.message());
    cc.result = std::move(r);
  }
  if (at != data.size()) return bad("trailing bytes");
  return cc;
}

std::string DescribeConfChange(const ConfChange& cc) {
  std::vector<std::string> parts;
  if (cc.steps.empty() && cc.members.empty()) return "leave-joint";
  for (const ConfChangeStep& s : cc.steps) {
    const char* what = s.type == ConfChangeStep::Type::kAddVoter     ? "add-voter"
                       : s.type == ConfChangeStep::Type::kAddLearner ? "add-learner"
                                                                      : "remove";
    parts.push_back(absl::StrCat(what, " ", s.node));
  }
  for (const MemberInfo& m : cc.members) parts.push_back(absl::StrCat("info ", m.id));
  return absl::StrJoin(parts, ", ");
}

Configuration Configuration::Of(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  Configuration c;
  std::sort(voters.begin(), voters.end());
  voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
  std::sort(learners.begin(), learners.end());
  learners.erase(std::unique(learners.begin(), learners.end()), learners.end());
  c.voters = std::move(voters);
  c.learners = std::move(learners);
  return c;
}

bool Configuration::IsVoter(NodeId id) const {
  return Contains(voters, id) || Contains(outgoing, id);
}

bool Configuration::IsLearner(NodeId id) const { return Contains(learners, id); }

std::vector<NodeId> Configuration::AllVoters() const {
  std::vector<NodeId> out = voters;
  for (NodeId v : outgoing) Insert(&out, v);
  return out;
}

std::vector<NodeId> Configuration::Members() const {
  std::vector<NodeId> out = AllVoters();
  for (NodeId v : learners) Insert(&out, v);
  return out;
}

VoteResult Configuration::Tally(const std::map<NodeId, bool>& votes) const {
  AM_CHECK(!voters.empty(), "a configuration without voters");
  const VoteResult in = TallyOne(voters, votes);
  const VoteResult out = TallyOne(outgoing, votes);
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  if (in == VoteResult::kWon && out == VoteResult::kWon) return VoteResult::kWon;
  return VoteResult::kPending;
}

Index Configuration::CommittedIndex(const std::function<Index(NodeId)>& match) const {
  AM_CHECK(!voters.empty(), "a configuration without voters");
  const Index committed = std::min(CommittedOne(voters, match), CommittedOne(outgoing, match));
  AM_CHECK_LT(committed, UINT64_MAX);
  return committed;
}

bool Configuration::QuorumActive(const std::function<bool(NodeId)>& active) const {
  std::map<NodeId, bool> votes;
  for (NodeId v : AllVoters()) votes[v] = active(v);
  return Tally(votes) == VoteResult::kWon;
}

const MemberInfo* Configuration::InfoOf(NodeId id) const {
  auto it = std::lower_bound(member_info.begin(), member_info.end(), id,
                             [](const MemberInfo& m, NodeId v) { return m.id < v; });
  return it != member_info.end() && it->id == id ? &*it : nullptr;
}

absl::Status Configuration::Validate() const {
  auto bad = [this](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("configuration ", Describe(), ": ", why));
  };
  if (voters.empty()) return bad("no voters");
  if (!SortedUnique(voters) || !SortedUnique(outgoing) || !SortedUnique(learners)) {
    return bad("a set is not sorted and unique");
  }
  for (NodeId l : learners) {
    if (IsVoter(l)) return bad(absl::StrCat("node ", l, " is both voter and learner"));
  }
  for (NodeId m : Members()) {
    if (m == kNone) return bad("node id 0");
  }
  if (Members().size() > kMaxMembers) return bad(absl::StrCat("more than ", kMaxMembers, " members"));
  if (auto_leave && !joint()) return bad("auto_leave outside a joint configuration");
  for (size_t i = 0; i < member_info.size(); ++i) {
    const MemberInfo& m = member_info[i];
    if (i > 0 && member_info[i - 1].id >= m.id) return bad("member info not sorted by id");
    if (!IsMember(m.id)) return bad(absl::StrCat("info of node ", m.id, ", not a member"));
    if (std::string why = MemberInfoProblem(m); !why.empty()) return bad(why);
  }
  return absl::OkStatus();
}

std::string Configuration::Describe() const {
  std::string out = absl::StrCat("voters=", Ids(voters));
  if (joint()) absl::StrAppend(&out, "&&", Ids(outgoing));
  if (!learners.empty()) absl::StrAppend(&out, " learners=", Ids(learners));
  return out;
}

Configuration ConfigurationOf(const SnapshotMeta& meta) {
  Configuration c = Configuration::Of(meta.voters, meta.learners);
  c.outgoing = meta.voters_outgoing;
  std::sort(c.outgoing.begin(), c.outgoing.end());
  c.auto_leave = meta.auto_leave;
  c.member_info = meta.members;
  return c;
}

void RecordConfiguration(const Configuration& conf, SnapshotMeta* meta) {
  meta->voters = conf.voters;
  meta->voters_outgoing = conf.outgoing;
  meta->learners = conf.learners;
  meta->auto_leave = conf.auto_leave;
  meta->members = conf.member_info;
}

absl::StatusOr<Configuration> ApplyConfChange(const Configuration& from, const ConfChange& cc) {
  AM_CHECK(from.Validate().ok(), from.Describe());
  auto refuse = [&](absl::string_view why) {
    return absl::FailedPreconditionError(absl::StrCat(
        "configuration change (", DescribeConfChange(cc), ") from ", from.Describe(), ": ", why));
  };
  if (cc.steps.empty()) {
    if (!from.joint() && cc.members.empty()) return refuse("not in a joint configuration");
    Configuration to = from;
    to.outgoing.clear();
    to.auto_leave = false;
    return WithMemberInfo(std::move(to), cc, refuse);
  }
  if (from.joint()) return refuse("in a joint configuration: leave it first");
  std::set<NodeId> named;
  Configuration to = from;
  bool demotes = false;
  for (const ConfChangeStep& s : cc.steps) {
    if (s.node == kNone) return refuse("node id 0");
    if (!named.insert(s.node).second) return refuse(absl::StrCat("node ", s.node, " named twice"));
    switch (s.type) {
      case ConfChangeStep::Type::kAddVoter:
        Erase(&to.learners, s.node);
        Insert(&to.voters, s.node);
        break;
      case ConfChangeStep::Type::kAddLearner:
        demotes |= Contains(to.voters, s.node);
        Erase(&to.voters, s.node);
        Insert(&to.learners, s.node);
        break;
      case ConfChangeStep::Type::kRemove:
        Erase(&to.voters, s.node);
        Erase(&to.learners, s.node);
        break;
    }
  }
  if (to.voters.empty()) return refuse("no voter would be left");
  if (to.Members().size() > kMaxMembers) {
    return refuse(absl::StrCat("more than ", kMaxMembers, " members"));
  }
  // Voters added or removed: at most one moves straight to the new set (any majority of the old
  // set and any majority of the new one then overlap, thesis §4.1); more need joint consensus.
  std::vector<NodeId> changed;
  std::set_symmetric_difference(from.voters.begin(), from.voters.end(), to.voters.begin(),
                                to.voters.end(), std::back_inserter(changed));
  if (changed.size() > 1) {
    if (demotes) return refuse("a demotion must be a change of its own");
    to.outgoing = from.voters;
    to.auto_leave = true;
  }
  return WithMemberInfo(std::move(to), cc, refuse);
}

}  // namespace amaters::raft
