#include "server/transport/codec.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/raft/configuration.h"

namespace amaters::server {

void ToProto(const raft::Message& in, peerpb::Message* out) {
  out->set_type(static_cast<uint32_t>(in.type));
  out->set_from(in.from);
  out->set_to(in.to);
  out->set_term(in.term);
  out->set_log_term(in.log_term);
  out->set_index(in.index);
  out->mutable_entries()->Reserve(static_cast<int>(in.entries.size()));
  for (const raft::Entry& e : in.entries) {
    peerpb::Entry* pe = out->add_entries();
    pe->set_term(e.term);
    pe->set_index(e.index);
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data);
  }
  out->set_commit(in.commit);
  out->set_reject(in.reject);
  out->set_reject_hint(in.reject_hint);
  out->set_transfer(in.transfer);
  out->set_read_round(in.read_round);
  out->set_probe(in.probe);
  out->set_context(in.context);
  if (in.snapshot.index != 0 || in.snapshot.term != 0 || !in.snapshot.voters.empty()) {
    peerpb::SnapshotMeta* snap = out->mutable_snapshot();
    snap->set_index(in.snapshot.index);
    snap->set_term(in.snapshot.term);
    for (raft::NodeId v : in.snapshot.voters) snap->add_voters(v);
    for (raft::NodeId v : in.snapshot.voters_outgoing) snap->add_voters_outgoing(v);
    for (raft::NodeId v : in.snapshot.learners) snap->add_learners(v);
    snap->set_auto_leave(in.snapshot.auto_leave);
    if (!in.snapshot.members.empty()) {
      raft::AppendMemberList(in.snapshot.members, snap->mutable_members());
    }
  }
  if (!(in.chunk == raft::SnapshotChunk{})) {
    peerpb::SnapshotChunk* chunk = out->mutable_chunk();
    chunk->set_offset(in.chunk.offset);
    chunk->set_total_bytes(in.chunk.total_bytes);
    chunk->set_total_crc(in.chunk.total_crc);
    chunk->set_crc(in.chunk.crc);
    chunk->set_data(in.chunk.data);
  }
}

absl::StatusOr<raft::Message> FromProto(const peerpb::Message& in) {
  raft::Message m;
  if (in.type() < static_cast<uint32_t>(raft::MessageType::kApp) ||
      in.type() > static_cast<uint32_t>(raft::MessageType::kSnapshotResp)) {
    return absl::InvalidArgumentError(absl::StrCat("peer message: unknown type ", in.type()));
  }
  m.type = static_cast<raft::MessageType>(in.type());
  m.from = in.from();
  m.to = in.to();
  m.term = in.term();
  m.log_term = in.log_term();
  m.index = in.index();
  m.entries.reserve(static_cast<size_t>(in.entries_size()));
  for (const peerpb::Entry& pe : in.entries()) {
    if (pe.type() > static_cast<uint32_t>(raft::EntryType::kConfChange)) {
      return absl::InvalidArgumentError(
          absl::StrCat("peer message: entry ", pe.index(), " has unknown type ", pe.type()));
    }
    raft::Entry e;
    e.term = pe.term();
    e.index = pe.index();
    e.type = static_cast<raft::EntryType>(pe.type());
    e.data = pe.data();
    m.entries.push_back(std::move(e));
  }
  m.commit = in.commit();
  m.reject = in.reject();
  m.reject_hint = in.reject_hint();
  m.transfer = in.transfer();
  m.read_round = in.read_round();
  m.probe = in.probe();
  m.context = in.context();
  m.snapshot.index = in.snapshot().index();
  m.snapshot.term = in.snapshot().term();
  m.snapshot.voters.assign(in.snapshot().voters().begin(), in.snapshot().voters().end());
  m.snapshot.voters_outgoing.assign(in.snapshot().voters_outgoing().begin(),
                                    in.snapshot().voters_outgoing().end());
  m.snapshot.learners.assign(in.snapshot().learners().begin(), in.snapshot().learners().end());
  m.snapshot.auto_leave = in.snapshot().auto_leave();
  if (!in.snapshot().members().empty()) {
    size_t at = 0;
    if (!raft::ParseMemberList(in.snapshot().members(), &at, raft::kMaxMembers,
                               &m.snapshot.members) ||
        at != in.snapshot().members().size()) {
      return absl::InvalidArgumentError("peer message: malformed snapshot member list");
    }
  }
  m.chunk.offset = in.chunk().offset();
  m.chunk.total_bytes = in.chunk().total_bytes();
  m.chunk.total_crc = in.chunk().total_crc();
  m.chunk.crc = in.chunk().crc();
  m.chunk.data = in.chunk().data();
  return m;
}

}  // namespace amaters::server
