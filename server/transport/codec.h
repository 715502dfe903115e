// Conversion between raft::Message and its wire form (proto/peer.proto).
//
// Decoding is where untrusted peer bytes enter: every enum value is checked, so that a message
// the engine receives always has a known type. (Node::Receive checks the rest: addressing,
// entry contiguity.)
#ifndef AMATERS_SERVER_TRANSPORT_CODEC_H_
#define AMATERS_SERVER_TRANSPORT_CODEC_H_

#include "absl/status/statusor.h"
#include "engine/raft/types.h"
#include "proto/peer.pb.h"

namespace amaters::server {

void ToProto(const raft::Message& in, peerpb::Message* out);
// kInvalidArgument for an unknown message or entry type.
absl::StatusOr<raft::Message> FromProto(const peerpb::Message& in);

}  // namespace amaters::server

#endif  // AMATERS_SERVER_TRANSPORT_CODEC_H_
