#include "engine/raft/raft.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"

namespace amaters::raft {

absl::Status Config::Validate() const {
  if (id == kNone) return absl::InvalidArgumentError("raft config: id must be > 0");
  for (const std::vector<NodeId>* set : {&voters, &learners}) {
    std::vector<NodeId> sorted = *set;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
      return absl::InvalidArgumentError("raft config: duplicate member id");
    }
  }
  if (absl::Status s = Configuration::Of(voters, learners).Validate(); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("raft config: ", s.message()));
  }
  if (heartbeat_ticks <= 0) return absl::InvalidArgumentError("raft config: heartbeat_ticks must be > 0");
  if (election_ticks <= heartbeat_ticks) {
    return absl::InvalidArgumentError("raft config: election_ticks must be > heartbeat_ticks");
  }
  if (election_jitter_max_ticks >= 0 &&
      (election_jitter_min_ticks < 0 || election_jitter_min_ticks > election_jitter_max_ticks)) {
    return absl::InvalidArgumentError(
        "raft config: election jitter must satisfy 0 <= min_ticks <= max_ticks");
  }
  if (max_inflight_msgs == 0) return absl::InvalidArgumentError("raft config: max_inflight_msgs must be > 0");
  if (max_msg_bytes == 0) return absl::InvalidArgumentError("raft config: max_msg_bytes must be > 0");
  if (max_snapshot_sends == 0) {
    return absl::InvalidArgumentError("raft config: max_snapshot_sends must be > 0");
  }
  if (max_committed_bytes_per_ready == 0) {
    return absl::InvalidArgumentError("raft config: max_committed_bytes_per_ready must be > 0");
  }
  if (read_only == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return absl::InvalidArgumentError("raft config: lease-based reads require check_quorum");
  }
  return absl::OkStatus();
}

Raft::Raft(const Config& c)
    : id_(c.id),
      conf_(Configuration::Of(c.voters, c.learners)),
      election_ticks_(c.election_ticks),
      jitter_min_ticks_(c.election_jitter_min_ticks),
      jitter_max_ticks_(c.election_jitter_max_ticks),
      heartbeat_ticks_(c.heartbeat_ticks),
      pre_vote_(c.pre_vote),
      check_quorum_(c.check_quorum),
      read_only_(c.read_only),
      max_msg_bytes_(c.max_msg_bytes),
      max_inflight_msgs_(c.max_inflight_msgs),
      max_inflight_bytes_(c.max_inflight_bytes),
      max_uncommitted_bytes_(c.max_uncommitted_bytes),
      max_committed_bytes_per_ready_(c.max_committed_bytes_per_ready),
      max_pending_reads_(c.max_pending_reads),
      max_snapshot_sends_(c.max_snapshot_sends),
      rng_(c.rng_seed ^ (0x5bd1e995ULL * c.id)) {}

namespace {

// A snapshot record without any member (written by `amaters-server restore` from a file that
// carries no configuration) keeps the bootstrap configuration.
bool RecordsConfiguration(const SnapshotMeta& snap) {
  return snap.index > 0 && (!snap.voters.empty() || !snap.voters_outgoing.empty() ||
                            !snap.learners.empty());
}

absl::Status CheckRestoredSnapshot(const Config& config, const RestoredState& restored) {
  const SnapshotMeta& snap = restored.snapshot;
  if (snap.index == 0) {
    return snap.term == 0 ? absl::OkStatus()
                          : absl::DataLossError("restored snapshot has a term but no index");
  }
  if (snap.term == 0 || snap.term > restored.hard_state.term) {
    return absl::DataLossError(absl::StrCat("restored snapshot term ", snap.term,
                                            " is impossible (hard state term ",
                                            restored.hard_state.term, ")"));
  }
  if (restored.applied < snap.index) {
    return absl::DataLossError(absl::StrCat(
        "the state machine has applied up to index ", restored.applied,
        " but the newest snapshot covers up to ", snap.index,
        ": restore the state machine from that snapshot before starting"));
  }
  if (!RecordsConfiguration(snap)) return absl::OkStatus();
  if (absl::Status s = ConfigurationOf(snap).Validate(); !s.ok()) {
    return absl::DataLossError(absl::StrCat("restored snapshot: ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Raft>> Raft::Create(const Config& config, RestoredState restored) {
  if (absl::Status s = config.Validate(); !s.ok()) return s;
  const HardState& hs = restored.hard_state;
  const SnapshotMeta& snap = restored.snapshot;
  if (absl::Status s = CheckRestoredSnapshot(config, restored); !s.ok()) return s;
  Index last = snap.index + restored.entries.size();
  for (size_t i = 0; i < restored.entries.size(); ++i) {
    const Entry& e = restored.entries[i];
    Term prev_term = i > 0 ? restored.entries[i - 1].term : snap.term;
    if (e.index != snap.index + 1 + i || e.term < prev_term || e.term > hs.term) {
      return absl::DataLossError(absl::StrCat("restored log is inconsistent at index ", e.index,
                                              snap.index > 0 ? absl::StrCat(" (snapshot at ",
                                              snap.term, "/", snap.index, ")") : ""));
    }
  }
  if (hs.commit > last) {
    return absl::DataLossError(absl::StrCat("hard state commit ", hs.commit,
                                            " is beyond the last durable entry ", last));
  }
  if (restored.applied > std::max(hs.commit, snap.index)) {
    return absl::DataLossError(absl::StrCat("applied index ", restored.applied,
                                            " is beyond the durable commit index ", hs.commit));
  }
  std::unique_ptr<Raft> r(new Raft(config));
  // The configuration: the snapshot's (or the bootstrap one), then every change applied since.
  if (RecordsConfiguration(snap)) r->conf_ = ConfigurationOf(snap);
  r->conf_history_ = {{snap.index, r->conf_}};
  for (const Entry& e : restored.entries) {
    if (e.index > restored.applied) break;
    if (e.type != EntryType::kConfChange) continue;
    absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
    if (cc.ok()) r->ApplyConfChangeEntry(e.index, *cc);
  }
  r->log_.Restore(snap.index, snap.term, std::move(restored.entries));
  r->snapshot_ = snap;
  r->term_ = hs.term;
  r->vote_ = hs.vote;
  // A snapshot covers only committed entries.
  r->commit_ = std::max(hs.commit, snap.index);
  r->applied_ = restored.applied;
  r->applying_ = restored.applied;
  r->persisted_index_ = last;
  r->handed_hard_state_ = {hs.term, hs.vote, r->commit_};
  r->last_checked_term_ = hs.term;
  r->last_checked_commit_ = r->commit_;
  r->BecomeFollower(hs.term, kNone);
  r->CheckInvariants();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Role transitions.

void Raft::ResetRandomizedElectionTimeout() {
  if (jitter_max_ticks_ < 0) {
    randomized_election_timeout_ =
        election_ticks_ + static_cast<int>(rng_.Uniform(static_cast<uint64_t>(election_ticks_)));
    return;
  }
  randomized_election_timeout_ =
      election_ticks_ + jitter_min_ticks_ +
      static_cast<int>(rng_.Uniform(static_cast<uint64_t>(jitter_max_ticks_ - jitter_min_ticks_ + 1)));
}

void Raft::ResetTerm(Term term) {
  if (term_ != term) {
    AM_CHECK(term > term_, "term must not decrease: ", term_, " -> ", term);
    term_ = term;
    vote_ = kNone;
  }
  leader_ = kNone;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  votes_.clear();
  progress_.clear();
  lead_transferee_ = kNone;
  broadcast_pending_ = false;
  pending_reads_.clear();
  reads_awaiting_commit_.clear();
  read_round_ = 0;
  read_round_confirmed_ = 0;
  read_round_needed_ = false;
  round_sent_ticks_.clear();
  lease_start_tick_.reset();
  uncommitted_bytes_ = 0;
}

void Raft::BecomeFollower(Term term, NodeId leader) {
  ResetTerm(term);
  role_ = Role::kFollower;
  leader_ = leader;
}

void Raft::BecomePreCandidate() {
  AM_CHECK(role_ != Role::kLeader, "a leader cannot become pre-candidate");
  // Pre-vote does not change the term or the vote (thesis §9.6): a partitioned node that keeps
  // pre-campaigning cannot disrupt the cluster when it rejoins.
  votes_.clear();
  progress_.clear();
  leader_ = kNone;
  role_ = Role::kPreCandidate;
}

void Raft::BecomeCandidate() {
  AM_CHECK(role_ != Role::kLeader, "a leader cannot become candidate");
  ResetTerm(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Raft::BecomeLeader() {
  AM_CHECK(role_ == Role::kCandidate, "only a candidate becomes leader, not ", RoleName(role_));
  ResetTerm(term_);
  role_ = Role::kLeader;
  leader_ = id_;
  SyncProgressWithConfiguration();
  UpdateSelfMatch();
  // A new leader commits an entry of its own term at once (paper §8, thesis §6.4): it learns the
  // commit index, and ReadIndex may only be served once this entry is committed.
  AppendLocal(EntryType::kNoop, "");
  // Changes in its log it has not applied yet may be pending: no new one before they are.
  pending_conf_index_ = log_.LastIndex();
  BroadcastAppend();
  // Even a single-node leader commits only once its own write is durable (OnPersisted).
}

void Raft::StartElection(bool pre_vote, bool transfer) {
  // Learners, and nodes removed from the configuration, never campaign.
  if (!IsVoter(id_)) return;
  if (pre_vote) {
    BecomePreCandidate();
  } else {
    BecomeCandidate();
  }
  MessageType type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
  Term vote_term = pre_vote ? term_ + 1 : term_;
  if (TallyVote(id_, true) > 0) {
    // Single-node cluster: won already.
    if (pre_vote) {
      StartElection(false, transfer);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (NodeId v : ElectorateOf(conf_)) {
    if (v == id_) continue;
    Message m;
    m.type = type;
    m.to = v;
    m.term = vote_term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    m.transfer = transfer;
    Send(std::move(m));
  }
}

int Raft::TallyVote(NodeId from, bool granted) {
  votes_.emplace(from, granted);
  if (bugs_.removed_node_votes) {
    const size_t yes = std::count_if(votes_.begin(), votes_.end(),
                                     [](const auto& v) { return v.second; });
    if (yes >= conf_.voters.size() / 2 + 1) return 1;
  }
  switch (QuorumConfiguration().Tally(votes_)) {
    case VoteResult::kWon:
      return 1;
    case VoteResult::kLost:
      return -1;
    case VoteResult::kPending:
      return 0;
  }
  return 0;
}

void Raft::Campaign() {
  if (role_ == Role::kLeader) return;
  StartElection(pre_vote_, /*transfer=*/false);
  CheckInvariants();
}

// ---------------------------------------------------------------------------------------------
// Time.

void Raft::Tick() {
  ++ticks_;
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
  CheckInvariants();
}

void Raft::TickElection() {
  if (!IsVoter(id_)) {
    // A learner (or a removed node) never campaigns, and its silence from the leader must not
    // restart: once past the election timeout it is out of the leader's lease and answers
    // vote requests. A learner promoted by an entry it has not received yet is a voter to the
    // others; without its vote a cluster that lost another voter may never elect (as etcd/raft,
    // which lets learners vote for this reason).
    election_elapsed_ = std::min(election_elapsed_ + 1, 2 * election_ticks_);
    return;
  }
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    StartElection(pre_vote_, /*transfer=*/false);
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_ticks_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      // Check quorum (thesis §6.2): step down if a quorum has not been heard from during the
      // last election timeout; a leader cut off in a minority stops accepting work.
      const bool active = QuorumConfiguration().QuorumActive([this](NodeId id) {
        auto it = progress_.find(id);
        return id == id_ || (it != progress_.end() && it->second.recent_active);
      });
      for (auto& [id, pr] : progress_) pr.recent_active = (id == id_);
      if (!active) {
        BecomeFollower(term_, kNone);
        return;
      }
    }
    // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
    lead_transferee_ = kNone;
    if (!IsVoter(id_)) {  // a removed leader whose hand-over did not finish
      BecomeFollower(term_, kNone);
      return;
    }
  }
  if (heartbeat_elapsed_ >= heartbeat_ticks_) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

// ---------------------------------------------------------------------------------------------
// Messages.

absl::Status Raft::CheckAddressed(const Message& m) const {
  if (m.to != id_) {
    return absl::InvalidArgumentError(absl::StrCat("message for node ", m.to, " delivered to ", id_));
  }
  // From a node outside this one's configuration, only what a leader sends is taken: it may be
  // a leader this node does not know yet (its configuration lags, or it is being added). Vote
  // requests from non-voters are ignored in Step (a removed node cannot disrupt); anything
  // else from a non-member is refused here.
  const bool leader_message = m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
                              m.type == MessageType::kSnapshot || m.type == MessageType::kVote ||
                              m.type == MessageType::kPreVote ||
                              m.type == MessageType::kTimeoutNow;  // a removed leader hands over
  const bool bug_answer = bugs_.removed_node_votes && (m.type == MessageType::kVoteResp ||
                                                       m.type == MessageType::kPreVoteResp);
  if (m.from == id_ || m.from == kNone ||
      (!conf_.IsMember(m.from) && !leader_message && !bug_answer)) {
    return absl::InvalidArgumentError(absl::StrCat("message from unknown node ", m.from));
  }
  if (m.term == 0) {
    return absl::InvalidArgumentError(absl::StrCat("message without a term: ", DescribeMessage(m)));
  }
  return absl::OkStatus();
}

absl::Status Raft::Step(const Message& m) {
  if (absl::Status s = CheckAddressed(m); !s.ok()) return s;
  if (MessageTypeName(m.type) == std::string_view("Unknown")) {
    return absl::InvalidArgumentError("message of unknown type");
  }
  if (m.type == MessageType::kSnapshotResp) {
    return absl::InvalidArgumentError("snapshot acknowledgments are node::Node's, not Raft's");
  }
  if (m.type == MessageType::kSnapshot &&
      (m.snapshot.index == 0 || m.snapshot.term == 0 || m.snapshot.term > m.term)) {
    return absl::InvalidArgumentError(absl::StrCat("malformed snapshot: ", DescribeMessage(m)));
  }
  if (!m.entries.empty()) {
    // Only appends carry entries, and they must be contiguous after (index, log_term), with
    // non-decreasing terms no newer than the message's term.
    if (m.type != MessageType::kApp) {
      return absl::InvalidArgumentError(absl::StrCat("entries in a ", MessageTypeName(m.type)));
    }
    Term prev_term = m.log_term;
    for (size_t k = 0; k < m.entries.size(); ++k) {
      const Entry& e = m.entries[k];
      if (e.index != m.index + 1 + k || e.term < prev_term || e.term > m.term ||
          static_cast<uint8_t>(e.type) > static_cast<uint8_t>(EntryType::kConfChange)) {
        return absl::InvalidArgumentError(
            absl::StrCat("malformed entries in append: ", DescribeMessage(m)));
      }
      prev_term = e.term;
    }
  }
  if (m.type == MessageType::kAppResp && !m.reject && m.term == term_ && role_ == Role::kLeader &&
      m.index > log_.LastIndex()) {
    // In its term only this leader appends, so no follower can have matched beyond its log.
    // Taken as is, such an acknowledgment would set next beyond the log and abort in
    // SendAppend (found by fuzz/peer_request): one bad peer message must not stop the leader.
    return absl::InvalidArgumentError(absl::StrCat("append response acknowledges index ", m.index,
                                                   " beyond the leader's last index ",
                                                   log_.LastIndex(), ": ", DescribeMessage(m)));
  }

  if ((m.type == MessageType::kVote || m.type == MessageType::kPreVote) && !IsVoter(m.from) &&
      leader_ != kNone) {
    // A removed node that does not know it yet, or a stray: while this node follows a leader,
    // its campaign changes nothing here (thesis §4.2.3). With no leader known the request is
    // answered like any other: the sender may be a voter this node's lagging configuration
    // does not list yet, and withholding the vote (or the newer term) can leave the cluster
    // unable to elect (swarm seed 3442). Answering is safe: a candidate counts only the votes
    // of its own configuration's voters, and the log check keeps a removed node from winning.
    return absl::OkStatus();
  }
  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      // Leader stickiness (thesis §4.2.3): a node that heard from a leader within the minimum
      // election timeout ignores vote requests, so a removed or partitioned server cannot
      // depose a healthy leader. A leadership transfer overrides it.
      bool in_lease = check_quorum_ && leader_ != kNone && election_elapsed_ < election_ticks_;
      if (in_lease && !m.transfer) {
        CheckInvariants();
        return absl::OkStatus();
      }
    }
    if (m.type == MessageType::kPreVote) {
      // A pre-vote request never changes our term.
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // A granted pre-vote carries the term we would campaign in; it is not a newer leader.
    } else if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNone);
    }
  } else if (m.term < term_) {
    if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
        m.type == MessageType::kSnapshot) {
      // A stale leader (e.g. healed from a partition) learns the newer term and steps down
      // (paper §5.1: reply with the current term). Without this, with check-quorum or
      // pre-vote, it could keep the cluster from electing; and a node whose newer term the
      // others never see (a learner never campaigns, and the campaign of a node that their
      // configuration no longer lists as a voter is ignored) would never hear a leader again.
      Message resp;
      resp.type = MessageType::kAppResp;
      resp.to = m.from;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // A stale candidate learns the newer term (paper §5.1) and can campaign above it; else
      // one whose campaigns only this node can answer could stay behind its term for ever.
      Message resp;
      resp.type = m.type == MessageType::kVote ? MessageType::kVoteResp
                                                 : MessageType::kPreVoteResp;
      resp.to = m.from;
      resp.reject = true;
      Send(std::move(resp));
    }
    CheckInvariants();
    return absl::OkStatus();
  }

  switch (m.type) {
    case MessageType::kVote:
    case MessageType::kPreVote:
      HandleVoteRequest(m);
      break;
    default:
      switch (role_) {
        case Role::kFollower:
          StepFollower(m);
          break;
        case Role::kPreCandidate:
        case Role::kCandidate:
          StepCandidate(m);
          break;
        case Role::kLeader:
          StepLeader(m);
          break;
      }
  }
  CheckInvariants();
  return absl::OkStatus();
}

void Raft::HandleVoteRequest(const Message& m) {
  // Paper §5.2 / §5.4.1: grant at most one vote per term, and only to a candidate whose log is
  // at least as up to date as ours. A pre-vote (thesis §9.6) is granted for a future term
  // without recording anything.
  bool can_vote = vote_ == m.from || (vote_ == kNone && leader_ == kNone) ||
                  (m.type == MessageType::kPreVote && m.term > term_) ||
                  (bugs_.vote_twice && role_ == Role::kFollower);
  Message resp;
  resp.type = m.type == MessageType::kVote ? MessageType::kVoteResp : MessageType::kPreVoteResp;
  resp.to = m.from;
  if (can_vote && (log_.IsUpToDate(m.index, m.log_term) || bugs_.vote_stale_log)) {
    resp.term = m.term;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
  }
  Send(std::move(resp));
}

void Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kApp:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleSnapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // Thesis §3.10: the transfer target starts an election at once, skipping pre-vote, and
      // marks its requests so that voters ignore their leader lease.
      StartElection(/*pre_vote=*/false, /*transfer=*/true);
      break;
    case MessageType::kReadIndexResp:
      if (!m.reject) {
        read_states_.push_back({m.index, m.context, absl::OkStatus()});
      } else {
        read_states_.push_back({0, m.context, ReadRefusal(m.reject_hint)});
      }
      break;
    case MessageType::kReadIndex:
      // Only a leader serves ReadIndex: say so, and the requester retries at once.
      RefuseRead(m.from, m.context, kReadRefusedNotLeader);
      break;
    default:
      break;
  }
}

void Raft::StepCandidate(const Message& m) {
  MessageType my_resp =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  switch (m.type) {
    case MessageType::kApp:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      break;
    case MessageType::kVoteResp:
    case MessageType::kPreVoteResp: {
      if (m.type != my_resp) break;
      // Responses for another round (a pre-vote response carries term + 1) are ignored.
      Term expected = role_ == Role::kPreCandidate ? term_ + 1 : term_;
      if (m.term != expected && !m.reject) break;
      int result = TallyVote(m.from, !m.reject);
      if (result > 0) {
        if (role_ == Role::kPreCandidate) {
          StartElection(/*pre_vote=*/false, /*transfer=*/false);
        } else {
          BecomeLeader();
        }
      } else if (result < 0) {
        BecomeFollower(term_, kNone);
      }
      break;
    }
    default:
      break;
  }
}

void Raft::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppResp:
      HandleAppendResponse(m);
      break;
    case MessageType::kHeartbeatResp:
      HandleHeartbeatResponse(m);
      break;
    case MessageType::kReadIndex:
      HandleReadIndexRequest(m.from, m.context);
      break;
    case MessageType::kApp:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // Two leaders in one term would break election safety (paper §5.2). Never act on it;
      // the simulator's checkers report it.
      break;
    default:
      break;
  }
}

void Raft::HandleAppend(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  resp.probe = m.probe;
  if (m.index < commit_) {
    // Everything up to our commit index is known to match the leader (Log Matching).
    resp.index = commit_;
    Send(std::move(resp));
    return;
  }
  if (log_.MatchTerm(m.index, m.log_term)) {
    // Paper Figure 2, AppendEntries receiver steps 3-5.
    Index last_new = m.index + m.entries.size();
    Index conflict = log_.FindConflict(m.entries);
    if (conflict != 0) {
      AM_CHECK(conflict > commit_, "conflict at ", conflict, " with committed entry (commit ",
               commit_, ")");
      std::vector<Entry> suffix(m.entries.begin() + (conflict - m.index - 1), m.entries.end());
      if (conflict <= persisted_index_) persisted_index_ = conflict - 1;
      log_.TruncateAndAppend(std::move(suffix));
    }
    CommitTo(std::min(m.commit, last_new));
    resp.index = last_new;
    Send(std::move(resp));
    return;
  }
  // Log-matching check failed (paper §5.3). Tell the leader where to look next: the largest
  // index <= m.index whose term is <= m.log_term; every entry after it cannot match.
  Index hint = std::min(m.index, log_.LastIndex());
  auto [hint_index, hint_term] = log_.FindConflictByTerm(hint, m.log_term);
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = hint_index;
  resp.log_term = hint_term;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  const SnapshotMeta& snap = m.snapshot;
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.to = m.from;
  if (snap.index <= commit_ && !bugs_.install_stale_snapshot) {
    // Thesis §5.3: a snapshot at or below the commit index holds nothing new; installing it
    // would roll the state machine back.
    resp.index = commit_;
    Send(std::move(resp));
    return;
  }
  if (log_.MatchTerm(snap.index, snap.term) && !bugs_.install_stale_snapshot) {
    // The log already holds the snapshot's last entry: keep the entries after it (thesis
    // §5.1: "the follower retains the entries following it").
    CommitTo(snap.index);
    resp.index = snap.index;
    Send(std::move(resp));
    return;
  }
  // Replace the whole log. Entries handed out for persistence before now may still be
  // acknowledged; they no longer say anything about this log (log_reset_seq_).
  AM_CHECK_LT(applying_, snap.index, "installing a snapshot below what is being applied");
  log_.Restore(snap.index, snap.term, {});
  unhanded_local_snapshot_.reset();
  install_ = snap;
  install_durable_ = false;
  unhanded_install_ = true;
  log_reset_seq_ = next_seq_;
  persisted_index_ = applying_;
  commit_ = snap.index;
  resp.index = snap.index;
  Send(std::move(resp));  // held until the snapshot record is durable
}

void Raft::HandleHeartbeat(const Message& m) {
  // The leader sends min(commit, our match), so this index is in our log and matches.
  CommitTo(std::min(m.commit, log_.LastIndex()));
  Message resp;
  resp.type = MessageType::kHeartbeatResp;
  resp.to = m.from;
  resp.read_round = m.read_round;
  resp.index = log_.LastIndex();  // lets the leader notice a follower that lost its log
  Send(std::move(resp));
}

void Raft::HandleAppendResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    Index next_probe = m.reject_hint;
    if (m.log_term > 0) {
      // Skip every entry of ours whose term is above the follower's term at the hint
      // (fast backtracking; paper §5.3, thesis §3.5).
      next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
    }
    if (pr.MaybeDecrTo(m.index, next_probe, m.probe)) {
      if (pr.state == ProgressState::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, /*send_if_empty=*/true);
    }
    return;
  }
  bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index)) {
    pr.inflights.FreeLE(m.index);
    if (was_paused && !pr.IsPaused()) SendAppend(m.from, false);
    return;
  }
  if (pr.state == ProgressState::kSnapshot && pr.match < pr.pending_snapshot) {
    // An acknowledgment of an older append; the snapshot is still on its way.
    return;
  }
  if (pr.state != ProgressState::kReplicate) {
    pr.BecomeReplicate();
  } else {
    pr.inflights.FreeLE(m.index);
  }
  if (MaybeCommit()) {
    BroadcastAppend();
  } else if (was_paused) {
    // The follower was paused and may have missed the commit index: tell it now.
    SendAppend(m.from, /*send_if_empty=*/true);
  }
  // Pipelining: keep the follower's window full.
  while (SendAppend(m.from, false)) {
  }
  if (m.from == lead_transferee_ && progress_.at(m.from).match == log_.LastIndex()) {
    Message tn;
    tn.type = MessageType::kTimeoutNow;
    tn.to = m.from;
    Send(std::move(tn));
  }
}

void Raft::HandleHeartbeatResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  pr.probe_sent = false;
  if (m.index < pr.match && pr.state != ProgressState::kSnapshot) {
    // The follower holds fewer entries than it acknowledged: its disk was replaced or lost
    // unsynced writes. Probe from what it has (a snapshot if that is compacted here), without
    // waiting for a new entry to expose the gap. (A reordered, older response costs a probe.)
    pr.match = m.index;
    pr.BecomeProbe();
  }
  if (pr.state == ProgressState::kSnapshot && m.index >= pr.pending_snapshot) {
    // The follower holds the snapshot: its acknowledgment of the install was lost (or is
    // late). Probe after the snapshot rather than wait for the transfer to time out, which
    // takes twenty election timeouts.
    pr.BecomeProbe();
  }
  if (pr.state == ProgressState::kReplicate && pr.inflights.Full()) {
    // A full window with the follower alive: free one slot so replication cannot stall on a
    // lost acknowledgment.
    pr.inflights.FreeFirst();
  }
  // An empty append at `next` makes a follower that lost an append reject it, which moves the
  // progress back to probing; otherwise a lost last append would stall replication.
  if (pr.match < log_.LastIndex()) SendAppend(m.from, /*send_if_empty=*/true);
  if (m.read_round > pr.read_round_acked && m.read_round <= read_round_) {
    pr.read_round_acked = m.read_round;
    OnHeartbeatRoundAcked();
  }
}

// ---------------------------------------------------------------------------------------------
// Replication (leader).

bool Raft::SendAppend(NodeId to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (to == id_ || pr.IsPaused()) return false;
  Index prev = pr.next - 1;
  std::optional<Term> prev_term = log_.TermAt(prev);
  if (!prev_term.has_value()) {
    AM_CHECK_LT(prev, log_.snapshot_index(), "no term for index ", prev, " above the log's start");
    return SendSnapshot(to);
  }
  std::vector<Entry> ents = log_.Slice(pr.next, log_.LastIndex() + 1, max_msg_bytes_);
  if (ents.empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kApp;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = commit_;
  if (!ents.empty()) {
    Index last = ents.back().index;
    uint64_t bytes = 0;
    for (const Entry& e : ents) bytes += e.PayloadSize();
    if (pr.state == ProgressState::kReplicate) {
      pr.OptimisticUpdate(last);
      pr.inflights.Add(last, bytes);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.state == ProgressState::kProbe) {
    pr.probe_sent = true;
  }
  if (pr.state == ProgressState::kProbe) m.probe = ++pr.probe_seq;
  m.entries = std::move(ents);
  Send(std::move(m));
  return true;
}

bool Raft::SendSnapshot(NodeId to) {
  Progress& pr = progress_.at(to);
  AM_CHECK_GE(snapshot_.index, log_.snapshot_index(), "log compacted past the newest snapshot");
  uint64_t sending = 0;
  for (const auto& [id, p] : progress_) sending += p.state == ProgressState::kSnapshot;
  if (sending >= max_snapshot_sends_) {
    // Bounded: wait for a heartbeat response and try again.
    pr.probe_sent = true;
    return false;
  }
  pr.BecomeSnapshot(snapshot_.index);
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot = snapshot_;
  Send(std::move(m));
  return true;
}

void Raft::ReportSnapshotFailed(NodeId peer) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(peer);
  if (it == progress_.end() || it->second.state != ProgressState::kSnapshot) return;
  it->second.pending_snapshot = 0;
  it->second.BecomeProbe();
  it->second.probe_sent = true;  // retried after the next heartbeat response
}

absl::Status Raft::SnapshotTaken(Index index) {
  Index newest = std::max(snapshot_.index,
                          unhanded_local_snapshot_ ? unhanded_local_snapshot_->index : 0);
  if (index <= newest) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index, " is not newer than the one at ", newest));
  }
  if (index > applied_) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot at ", index, " is beyond the applied index ", applied_));
  }
  std::optional<Term> term = log_.TermAt(index);
  AM_CHECK(term.has_value(), "applied index ", index, " is compacted but newer than the snapshot");
  SnapshotMeta meta;
  meta.index = index;
  meta.term = *term;
  RecordConfiguration(ConfigurationAt(index), &meta);
  unhanded_local_snapshot_ = std::move(meta);
  return absl::OkStatus();
}

absl::Status Raft::CompactLog(Index index) {
  if (index <= log_.snapshot_index()) return absl::OkStatus();
  if (index > snapshot_.index || index > applied_ || index > persisted_index_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot compact to ", index, ": snapshot ", snapshot_.index, ", applied ", applied_,
        ", persisted ", persisted_index_));
  }
  log_.Compact(index);
  return absl::OkStatus();
}

void Raft::BroadcastAppend() {
  for (const auto& [v, pr] : progress_) {
    if (v != id_) SendAppend(v, /*send_if_empty=*/true);
  }
}

void Raft::BroadcastHeartbeat() {
  // Every heartbeat broadcast is a numbered round. A quorum acknowledging round r proves this
  // node was still leader when it sent r: that confirms every read queued before r
  // (ReadIndex, thesis §6.4) and starts the leader lease at r's send time (§6.4.1).
  ++read_round_;
  read_round_needed_ = false;
  progress_.at(id_).read_round_acked = read_round_;
  round_sent_ticks_.emplace_back(read_round_, ticks_);
  while (round_sent_ticks_.size() > kMaxTrackedRounds) round_sent_ticks_.pop_front();
  for (const auto& [v, pr] : progress_) {
    if (v == id_) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = v;
    m.commit = std::min(commit_, progress_.at(v).match);
    m.read_round = read_round_;
    Send(std::move(m));
  }
}

bool Raft::MaybeCommit() {
  const Index quorum_index = QuorumConfiguration().CommittedIndex(
      [this](NodeId v) { return progress_.at(v).match; });
  if (quorum_index <= commit_) return false;
  // Figure 8 (paper §5.4.2): only entries of the current term are committed by counting
  // replicas; earlier entries are committed indirectly by the Log Matching Property.
  if (*log_.TermAt(quorum_index) != term_ && !bugs_.commit_old_terms) return false;
  CommitTo(quorum_index);
  return true;
}

void Raft::CommitTo(Index index) {
  if (index <= commit_) return;
  AM_CHECK_LE(index, log_.LastIndex(), "commit beyond the log");
  if (role_ == Role::kLeader) {
    for (Index i = commit_ + 1; i <= index; ++i) {
      const Entry& e = log_.At(i);
      if (e.term == term_) uncommitted_bytes_ -= std::min(uncommitted_bytes_, e.PayloadSize());
    }
  }
  bool had_term_commit = CommittedInCurrentTerm();
  commit_ = index;
  if (role_ == Role::kLeader && !had_term_commit && CommittedInCurrentTerm()) {
    // Reads that arrived before this leader's first commit can now get a read index.
    while (!reads_awaiting_commit_.empty()) {
      auto [from, ctx] = std::move(reads_awaiting_commit_.front());
      reads_awaiting_commit_.pop_front();
      HandleReadIndexRequest(from, std::move(ctx));
    }
  }
}

bool Raft::CommittedInCurrentTerm() const {
  std::optional<Term> t = log_.TermAt(commit_);
  return t.has_value() && *t == term_;
}

void Raft::AppendLocal(EntryType type, std::string data) {
  Entry e;
  e.term = term_;
  e.index = log_.LastIndex() + 1;
  e.type = type;
  e.data = std::move(data);
  uncommitted_bytes_ += e.PayloadSize();
  log_.Append(std::move(e));
}

void Raft::UpdateSelfMatch() {
  if (role_ != Role::kLeader) return;
  // The leader counts itself only for entries that are durable on its own disk (thesis §10.2.1
  // lets it send before its own write completes, but not count it).
  Progress& self = progress_.at(id_);
  self.match = persisted_index_;
  self.next = log_.LastIndex() + 1;
}

ProposeResult Raft::Propose(std::string data) {
  ProposeResult r;
  r.leader = leader_;
  if (role_ != Role::kLeader) {
    r.status = absl::FailedPreconditionError(
        leader_ == kNone ? std::string("not the leader; no leader is known")
                         : absl::StrCat("not the leader; leader is ", leader_));
    return r;
  }
  if (lead_transferee_ != kNone) {
    r.status = absl::UnavailableError(
        absl::StrCat("leadership is being transferred to ", lead_transferee_));
    return r;
  }
  Entry probe;
  probe.data = data;
  if (max_uncommitted_bytes_ != 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + probe.PayloadSize() > max_uncommitted_bytes_) {
    r.status = absl::ResourceExhaustedError(absl::StrCat(
        "too many uncommitted proposals: ", uncommitted_bytes_, " bytes pending"));
    return r;
  }
  AppendLocal(EntryType::kNormal, std::move(data));
  r.index = log_.LastIndex();
  r.term = term_;
  broadcast_pending_ = true;
  CheckInvariants();
  return r;
}

absl::Status Raft::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) {
    return absl::FailedPreconditionError(absl::StrCat("not the leader; leader is ", leader_));
  }
  if (!IsVoter(target)) {
    return absl::InvalidArgumentError(absl::StrCat("transfer target ", target, " is not a voter"));
  }
  if (target == id_) return absl::OkStatus();
  if (lead_transferee_ == target) return absl::OkStatus();
  lead_transferee_ = target;
  // The transfer must finish within one election timeout or it is abandoned (TickHeartbeat).
  election_elapsed_ = 0;
  if (progress_.at(target).match == log_.LastIndex()) {
    Message tn;
    tn.type = MessageType::kTimeoutNow;
    tn.to = target;
    Send(std::move(tn));
  } else {
    SendAppend(target, /*send_if_empty=*/true);
  }
  CheckInvariants();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// ReadIndex (thesis §6.4).

absl::Status Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    HandleReadIndexRequest(id_, std::move(context));
    CheckInvariants();
    return absl::OkStatus();
  }
  if (leader_ == kNone) return absl::UnavailableError("no leader is known");
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = leader_;
  m.context = std::move(context);
  Send(std::move(m));
  CheckInvariants();
  return absl::OkStatus();
}

void Raft::RefuseRead(NodeId from, std::string context, Index why) {
  AM_CHECK(why == kReadRefusedFull || why == kReadRefusedNotLeader);
  if (from == id_) {
    read_states_.push_back({0, std::move(context), ReadRefusal(why)});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = from;
  m.reject = true;
  m.reject_hint = why;
  m.context = std::move(context);
  Send(std::move(m));
}

void Raft::HandleReadIndexRequest(NodeId from, std::string context) {
  if (pending_reads_.size() + reads_awaiting_commit_.size() >= max_pending_reads_) {
    // Bounded queue: the read is refused, and the requester's client hears why.
    RefuseRead(from, std::move(context), kReadRefusedFull);
    return;
  }
  if (!CommittedInCurrentTerm()) {
    // Step 1 of §6.4: the leader's commit index is only known to be current once an entry of its
    // own term is committed.
    reads_awaiting_commit_.emplace_back(from, std::move(context));
    return;
  }
  if (QuorumConfiguration().AllVoters() == std::vector<NodeId>{id_} ||
      bugs_.read_without_quorum) {
    ServeRead(from, commit_, std::move(context));
    return;
  }
  if (read_only_ == ReadOnlyOption::kLeaseBased && HasLease()) {
    ServeRead(from, commit_, std::move(context));
    return;
  }
  // Step 2-3: record the read index, then confirm leadership with a heartbeat round. Every read
  // that arrives before the round is broadcast shares it (batching).
  pending_reads_.push_back({from, commit_, read_round_ + 1, std::move(context)});
  read_round_needed_ = true;
}

bool Raft::HasLease() const {
  // Thesis §6.4.1. Followers ignore vote requests for election_ticks after they last heard from
  // the leader (leader stickiness, Step), so no other leader can be elected before
  // lease_start + election_ticks on their clocks. One tick is kept as a margin for tick phase;
  // clock drift beyond that is what the lease option trusts not to happen. A pending transfer
  // voids the lease: TimeoutNow makes the target campaign past the followers' stickiness.
  if (!lease_start_tick_.has_value() || lead_transferee_ != kNone) return false;
  return ticks_ + 1 < *lease_start_tick_ + static_cast<uint64_t>(election_ticks_);
}

bool Raft::ReadRoundDue() const {
  // One read round in flight at a time (as etcd's read loop): reads that arrive while a round is
  // unconfirmed wait for it and then share the next one, so under load a round confirms many
  // reads instead of every loop turn broadcasting its own. A round that is lost is replaced by
  // the next heartbeat (every heartbeat is a round): a read waits at most until then.
  return read_round_needed_ && role_ == Role::kLeader && read_round_confirmed_ >= read_round_;
}

void Raft::StartPendingReadRound() {
  if (!ReadRoundDue()) return;
  BroadcastHeartbeat();
}

void Raft::OnHeartbeatRoundAcked() {
  const uint64_t confirmed = QuorumConfiguration().CommittedIndex(
      [this](NodeId v) { return progress_.at(v).read_round_acked; });
  AM_CHECK_LE(confirmed, read_round_, "a quorum acknowledged a round never sent");
  read_round_confirmed_ = std::max(read_round_confirmed_, confirmed);
  // The lease runs from the send time of the newest round a quorum has acknowledged.
  while (!round_sent_ticks_.empty() && round_sent_ticks_.front().first <= confirmed) {
    if (round_sent_ticks_.front().first == confirmed) {
      lease_start_tick_ = std::max(lease_start_tick_.value_or(0), round_sent_ticks_.front().second);
    }
    round_sent_ticks_.pop_front();
  }
  while (!pending_reads_.empty() && pending_reads_.front().round <= confirmed) {
    PendingRead r = std::move(pending_reads_.front());
    pending_reads_.pop_front();
    ServeRead(r.from, r.index, std::move(r.context));
  }
}

void Raft::ServeRead(NodeId from, Index index, std::string context) {
  if (from == id_) {
    read_states_.push_back({index, std::move(context), absl::OkStatus()});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = from;
  m.index = index;
  m.context = std::move(context);
  Send(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Output and durability.

bool Raft::HasUnhandedPersist() const {
  return log_.HasUnstable() || hard_state() != handed_hard_state_ || unhanded_install_ ||
         unhanded_local_snapshot_.has_value();
}

void Raft::Send(Message m) {
  m.from = id_;
  if (m.term == 0) m.term = term_;
  uint64_t required;
  bool leader_message = role_ == Role::kLeader &&
                        (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
                         m.type == MessageType::kTimeoutNow || m.type == MessageType::kReadIndexResp ||
                         m.type == MessageType::kSnapshot);
  bool term_vote_dirty = term_ != handed_hard_state_.term || vote_ != handed_hard_state_.vote;
  if (leader_message) {
    // A leader may send appends before its own copy is durable (thesis §10.2.1); it only needs
    // its term and vote to be durable, which they are from its election.
    required = term_vote_dirty ? next_seq_ : term_vote_seq_;
  } else {
    // Everything else (votes, append acknowledgments, ...) reports state that must survive a
    // crash (paper Figure 2: "respond to RPCs only after updating stable storage").
    required = HasUnhandedPersist() ? next_seq_ : next_seq_ - 1;
    if (bugs_.ack_before_fsync && m.type == MessageType::kAppResp) required = acked_seq_;
  }
  if (required == next_seq_) force_persist_ = true;
  outbox_.push_back({required, std::move(m)});
}

void Raft::ReleaseMessages() {
  // Releases every message whose state is durable, keeping the others in order (compacted in
  // place; usually all or none are released).
  if (outbox_.empty()) return;
  ready_messages_.reserve(ready_messages_.size() + outbox_.size());
  size_t kept = 0;
  for (HeldMessage& h : outbox_) {
    if (h.required_seq <= acked_seq_) {
      ready_messages_.push_back(std::move(h.message));
    } else {
      if (&outbox_[kept] != &h) outbox_[kept] = std::move(h);
      ++kept;
    }
  }
  outbox_.resize(kept);
}

bool Raft::HasReady() const {
  if (HasUnhandedPersist() || force_persist_ || !ready_messages_.empty() ||
      !read_states_.empty() || broadcast_pending_ || ReadRoundDue()) {
    return true;
  }
  for (const HeldMessage& h : outbox_) {
    if (h.required_seq <= acked_seq_) return true;
  }
  if (install_) return install_durable_;
  return applying_ < ApplyLimit();
}

Index Raft::ApplyLimit() const {
  // Only committed entries that are durable here may be applied (thesis §3.5, §10.2.1).
  return bugs_.apply_before_commit ? persisted_index_ : std::min(commit_, persisted_index_);
}

Ready Raft::TakeReady() {
  if (broadcast_pending_ && role_ == Role::kLeader) {
    // Send everything new, in as many messages as the size limit needs and flow control allows.
    for (const auto& [v, pr] : progress_) {
      if (v == id_) continue;
      while (SendAppend(v, /*send_if_empty=*/false)) {
      }
    }
  }
  broadcast_pending_ = false;
  StartPendingReadRound();

  Ready rd;
  if (HasUnhandedPersist() || force_persist_) {
    PersistRequest req;
    req.seq = next_seq_++;
    HardState hs = hard_state();
    if (hs != handed_hard_state_) {
      if (hs.term != handed_hard_state_.term || hs.vote != handed_hard_state_.vote) {
        term_vote_seq_ = req.seq;
      }
      req.hard_state = hs;
      handed_hard_state_ = hs;
    }
    if (unhanded_install_) {
      req.snapshot = *install_;
      req.snapshot_replaces_log = true;
    } else if (unhanded_local_snapshot_) {
      req.snapshot = *unhanded_local_snapshot_;
    }
    unhanded_install_ = false;
    unhanded_local_snapshot_.reset();
    req.entries = log_.TakeUnstable();
    InFlightPersist p{req.seq, 0, 0, req.snapshot, req.snapshot_replaces_log};
    if (!req.entries.empty()) {
      p.last_index = req.entries.back().index;
      p.last_term = req.entries.back().term;
    }
    persisting_.push_back(p);
    force_persist_ = false;
    rd.persist = std::move(req);
  }
  ReleaseMessages();
  rd.messages = std::move(ready_messages_);
  ready_messages_.clear();

  if (install_ && install_durable_) {
    // The received snapshot goes to the state machine before any entry after it; its
    // configuration takes effect when it is applied.
    rd.snapshot = *install_;
    install_conf_to_apply_ = {install_->index, ConfigurationOf(*install_)};
    applying_ = install_->index;
    install_.reset();
    install_durable_ = false;
  }
  Index hi = install_ ? applying_ : ApplyLimit();
  uint64_t bytes = 0;
  while (applying_ < hi) {
    const Entry& e = log_.At(applying_ + 1);
    if (!rd.committed_entries.empty() && bytes + e.PayloadSize() > max_committed_bytes_per_ready_) {
      break;
    }
    bytes += e.PayloadSize();
    if (e.type == EntryType::kConfChange) {
      // One that does not decode is ignored on every node alike (never appended by a leader).
      absl::StatusOr<ConfChange> cc = DecodeConfChange(e.data);
      if (cc.ok()) conf_to_apply_.emplace_back(e.index, *std::move(cc));
    }
    rd.committed_entries.push_back(e);
    ++applying_;
  }
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  CheckInvariants();
  return rd;
}

void Raft::OnPersisted(uint64_t seq) {
  AM_CHECK(!persisting_.empty(), "OnPersisted(", seq, ") with nothing being persisted");
  AM_CHECK_EQ(persisting_.front().seq, seq, "persist completions must arrive in order");
  InFlightPersist p = persisting_.front();
  persisting_.pop_front();
  acked_seq_ = seq;
  if (p.snapshot) {
    if (p.snapshot->index > snapshot_.index) snapshot_ = *p.snapshot;
    if (p.install && install_ && *install_ == *p.snapshot) {
      install_durable_ = true;
      persisted_index_ = std::max(persisted_index_, p.snapshot->index);
    }
  }
  if (p.seq >= log_reset_seq_ && p.last_index != 0 &&
      log_.MatchTerm(p.last_index, p.last_term)) {
    persisted_index_ = std::max(persisted_index_, p.last_index);
  }
  if (role_ == Role::kLeader) {
    UpdateSelfMatch();
    if (MaybeCommit()) BroadcastAppend();
  }
  CheckInvariants();
}

void Raft::OnApplied(Index index) {
  AM_CHECK_LE(index, applying_, "applied an entry that was not handed out");
  AM_CHECK_GE(index, applied_, "applied index must not decrease");
  // Configurations take effect in log order: changes before an installed snapshot, the
  // snapshot's, then changes after it.
  while (true) {
    const Index change = conf_to_apply_.empty() ? UINT64_MAX : conf_to_apply_.front().first;
    const Index install = install_conf_to_apply_ ? install_conf_to_apply_->first : UINT64_MAX;
    if (std::min(change, install) > index) break;
    if (install < change) {
      conf_history_.clear();
      SetConfiguration(install, std::move(install_conf_to_apply_->second));
      install_conf_to_apply_.reset();
    } else {
      ApplyConfChangeEntry(change, conf_to_apply_.front().second);
      conf_to_apply_.pop_front();
    }
  }
  applied_ = index;
  MaybeAutoLeave();
  CheckInvariants();
}

// ---------------------------------------------------------------------------------------------
// Configuration changes (thesis §4, docs/membership.md).

ProposeResult Raft::ProposeConfChange(const ConfChange& cc) {
  ProposeResult r;
  r.leader = leader_;
  if (role_ != Role::kLeader) {
    r.status = absl::FailedPreconditionError(
        leader_ == kNone ? std::string("not the leader; no leader is known")
                         : absl::StrCat("not the leader; leader is ", leader_));
    return r;
  }
  if (pending_conf_index_ > applied_ && !bugs_.overlapping_conf_changes) {
    r.status = absl::UnavailableError(absl::StrCat(
        "a configuration change is pending (index ", pending_conf_index_, ", applied ",
        applied_, "); try again once it is applied"));
    return r;
  }
  if (lead_transferee_ != kNone) {
    r.status = absl::FailedPreconditionError(
        absl::StrCat("leadership is being transferred to ", lead_transferee_));
    return r;
  }
  absl::StatusOr<Configuration> next = ApplyConfChange(conf_, cc);
  if (!next.ok()) {
    r.status = next.status();
    return r;
  }
  for (const ConfChangeStep& s : cc.steps) {
    if (s.type == ConfChangeStep::Type::kAddVoter && conf_.IsLearner(s.node) &&
        !LearnerCaughtUp(s.node)) {
      r.status = absl::FailedPreconditionError(absl::StrCat(
          "learner ", s.node, " is not caught up with the leader; promote it once it is"));
      return r;
    }
  }
  ConfChange entry = cc;
  entry.result = *std::move(next);
  AppendLocal(EntryType::kConfChange, EncodeConfChange(entry));
  pending_conf_index_ = log_.LastIndex();
  r.index = log_.LastIndex();
  r.term = term_;
  broadcast_pending_ = true;
  CheckInvariants();
  return r;
}

bool Raft::LearnerCaughtUp(NodeId learner) const {
  if (role_ != Role::kLeader || !conf_.IsLearner(learner)) return false;
  const Progress& pr = progress_.at(learner);
  const Index leader_last = log_.LastIndex();
  return pr.match * 10 >= leader_last * 9;
}

void Raft::ApplyConfChangeEntry(Index index, const ConfChange& cc) {
  // The leader recorded the configuration the change leads to: every node sets it, including
  // one that joined without the configurations before it.
  if (cc.result) {
    SetConfiguration(index, *cc.result);
    return;
  }
  // Without a result (never appended by this engine's leaders), derive it. A refused change
  // changes nothing, on every node alike.
  absl::StatusOr<Configuration> next = ApplyConfChange(conf_, cc);
  if (!next.ok()) return;
  SetConfiguration(index, *std::move(next));
}

void Raft::SetConfiguration(Index index, Configuration conf) {
  AM_CHECK(conf.Validate().ok(), conf.Describe());
  AM_CHECK(conf_history_.empty() || conf_history_.back().first <= index, "configuration at ",
           index, " after one at ", conf_history_.back().first);
  conf_ = std::move(conf);
  conf_history_.emplace_back(index, conf_);
  // Keep only what snapshots above the durable one may need.
  while (conf_history_.size() > 1 && conf_history_[1].first <= snapshot_.index) {
    conf_history_.erase(conf_history_.begin());
  }
  AM_CHECK_LE(conf_history_.size(), 1 + (index - conf_history_.front().first),
              "configuration history holds two configurations for one index");
  if (role_ != Role::kLeader) return;
  if (lead_transferee_ != kNone && !IsVoter(lead_transferee_)) lead_transferee_ = kNone;
  SyncProgressWithConfiguration();
  if (!IsVoter(id_)) {
    HandOverLeadership();
    return;
  }
  MaybeCommit();
  BroadcastAppend();  // new members hear from the leader at once, and learn the new commit
}

Configuration Raft::ConfigurationAt(Index index) const {
  AM_CHECK(!conf_history_.empty() && conf_history_.front().first <= index,
           "no configuration recorded at ", index);
  for (auto it = conf_history_.rbegin(); it != conf_history_.rend(); ++it) {
    if (it->first <= index) return it->second;
  }
  return conf_history_.front().second;
}

std::vector<NodeId> Raft::ElectorateOf(const Configuration& conf) const {
  std::vector<NodeId> asked = conf.AllVoters();
  if (!bugs_.removed_node_votes) return asked;
  for (const auto& [index, past] : conf_history_) {
    for (NodeId v : past.AllVoters()) {
      if (std::find(asked.begin(), asked.end(), v) == asked.end()) asked.push_back(v);
    }
  }
  return asked;
}

Configuration Raft::QuorumConfiguration() const {
  if (!bugs_.learner_in_quorum || conf_.learners.empty()) return conf_;
  Configuration c = conf_;
  for (NodeId l : c.learners) c.voters.insert(std::lower_bound(c.voters.begin(), c.voters.end(), l), l);
  c.learners.clear();
  return c;
}

void Raft::HandOverLeadership() {
  AM_CHECK(role_ == Role::kLeader && !IsVoter(id_));
  // Removed (or demoted) by a change it applied, hence committed. The others may not have
  // applied it yet: they still count this node among the voters, and it may hold the newest
  // entries, so a plain step-down can leave no node able to win an election. Like etcd, it
  // keeps leading (without counting itself) while it hands leadership to the most caught-up
  // voter of the new configuration, and steps down when that one takes over or the transfer
  // is abandoned (TickHeartbeat), or at once when there is nobody to hand over to.
  if (lead_transferee_ != kNone) return;
  NodeId best = kNone;
  for (NodeId v : conf_.AllVoters()) {
    if (best == kNone || progress_.at(v).match > progress_.at(best).match) best = v;
  }
  if (best == kNone || !TransferLeadership(best).ok()) BecomeFollower(term_, kNone);
}

void Raft::SyncProgressWithConfiguration() {
  AM_CHECK(role_ == Role::kLeader, "only a leader tracks progress");
  // Every member, and the leader itself (a removed leader leads while it hands over).
  std::vector<NodeId> members = conf_.Members();
  if (!conf_.IsMember(id_)) {
    members.insert(std::lower_bound(members.begin(), members.end(), id_), id_);
  }
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = std::binary_search(members.begin(), members.end(), it->first) ? std::next(it)
                                                                         : progress_.erase(it);
  }
  for (NodeId m : members) {
    if (progress_.count(m)) continue;
    auto [it, inserted] = progress_.emplace(
        m, Progress(log_.LastIndex() + 1, max_inflight_msgs_, max_inflight_bytes_));
    it->second.recent_active = true;  // a new member gets an election timeout to answer
    if (m == id_) it->second.match = persisted_index_;
  }
  AM_CHECK_EQ(progress_.size(), members.size());
}

void Raft::MaybeAutoLeave() {
  if (role_ != Role::kLeader || !conf_.joint() || !conf_.auto_leave) return;
  if (pending_conf_index_ > applied_ || lead_transferee_ != kNone) return;
  ConfChange leave;
  absl::StatusOr<Configuration> next = ApplyConfChange(conf_, leave);
  AM_CHECK(next.ok(), next.status().message());
  leave.result = *std::move(next);
  AppendLocal(EntryType::kConfChange, EncodeConfChange(leave));
  pending_conf_index_ = log_.LastIndex();
  broadcast_pending_ = true;
}

const Progress* Raft::progress(NodeId peer) const {
  auto it = progress_.find(peer);
  return it == progress_.end() ? nullptr : &it->second;
}

std::string Raft::Describe() const {
  return absl::StrCat(id_, " ", RoleName(role_), " term=", term_, " vote=", vote_, " leader=",
                      leader_, " last=", log_.LastTerm(), "/", log_.LastIndex(), " commit=",
                      commit_, " applied=", applied_, " persisted=", persisted_index_);
}

void Raft::CheckInvariants() {
  AM_CHECK_GE(term_, last_checked_term_, "term decreased on node ", id_);
  AM_CHECK_GE(commit_, last_checked_commit_, "commit index decreased on node ", id_);
  last_checked_term_ = term_;
  last_checked_commit_ = commit_;
  AM_CHECK_LE(commit_, log_.LastIndex(), "commit beyond last index on node ", id_);
  AM_CHECK_LE(applied_, applying_, "node ", id_);
  if (!bugs_.apply_before_commit) AM_CHECK_LE(applying_, commit_, "node ", id_);
  AM_CHECK_LE(applying_, persisted_index_, "applied an entry that is not durable on node ", id_);
  AM_CHECK_LE(persisted_index_, log_.LastIndex(), "node ", id_);
  AM_CHECK_LE(log_.snapshot_index(), std::max(snapshot_.index, install_ ? install_->index : 0),
              "log compacted past every snapshot on node ", id_);
  AM_CHECK(install_ || applying_ >= log_.snapshot_index(),
           "entries below the log's start were never handed out on node ", id_);
  AM_CHECK_LE(log_.LastTerm(), term_, "log holds an entry from a future term on node ", id_);
  AM_CHECK(role_ == Role::kFollower || IsVoter(id_) ||
               (role_ == Role::kLeader && lead_transferee_ != kNone),
           "a non-voter campaigns, or leads without handing over, on node ", id_);
  if (role_ == Role::kLeader) {
    AM_CHECK_EQ(leader_, id_, "leader does not know itself");
    AM_CHECK_EQ(vote_, id_, "leader did not vote for itself in its term");
    AM_CHECK_EQ(progress_.size(), conf_.Members().size() + (conf_.IsMember(id_) ? 0 : 1),
                "leader progress out of step with the configuration");
    AM_CHECK_EQ(log_.LastTerm(), term_, "leader's log does not end in its own term");
  } else {
    AM_CHECK(progress_.empty(), "non-leader keeps progress");
    AM_CHECK(pending_reads_.empty(), "non-leader keeps pending reads");
    AM_CHECK_EQ(lead_transferee_, kNone, "non-leader transferring leadership");
  }
  if (role_ == Role::kCandidate) AM_CHECK_EQ(vote_, id_, "candidate did not vote for itself");
  AM_CHECK_LE(outbox_.size() + ready_messages_.size(), 1000000u, "unbounded outbox on node ", id_);
}

}  // namespace amaters::raft
