// Field-by-field equality of raft::Message (types.h defines none), for codec round trips.
#ifndef AMATERS_FUZZ_RAFT_COMPARE_H_
#define AMATERS_FUZZ_RAFT_COMPARE_H_

#include "engine/raft/types.h"

namespace amaters::fuzz {

inline bool MessagesEqual(const raft::Message& a, const raft::Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term &&
         a.log_term == b.log_term && a.index == b.index && a.entries == b.entries &&
         a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.transfer == b.transfer && a.read_round == b.read_round && a.probe == b.probe &&
         a.context == b.context && a.snapshot == b.snapshot && a.chunk == b.chunk;
}

}  // namespace amaters::fuzz

#endif  // AMATERS_FUZZ_RAFT_COMPARE_H_
