// Commands on the wire: conversion between the C++ command types (state_machine.h) and the
// bytes of a Raft entry (proto/kv.proto, package amaters.kvpb).
//
// The undecodable-entry rule. A committed entry is already in every replica's log, so it cannot
// be refused; it must have the same effect everywhere. Bytes that do not decode (DecodeCommand
// fails) and commands that fail validation (ValidateCommand) are applied as a rejection:
//   - the item's ApplyResult carries the kInvalidArgument status (no response);
//   - no key, no revision changes;
//   - the applied index advances past the entry like any other.
// Both outcomes depend only on the entry's bytes and the state, so every replica that runs the
// same decoder agrees. The proposing server validates before proposing, so in a healthy
// cluster only a bug or a version mismatch produces such an entry.
#ifndef AMATERS_ENGINE_KV_COMMAND_H_
#define AMATERS_ENGINE_KV_COMMAND_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/kv/state_machine.h"

namespace amaters::kvpb {
class Command;
}  // namespace amaters::kvpb

namespace amaters::kv {

// Serializes `c` (proto3 binary). A command with an op is never empty, so the result never
// collides with the empty data of a no-op entry.
std::string EncodeCommand(const Command& c);

// Parses entry bytes. kInvalidArgument (with the byte count) when they are not a kvpb.Command,
// when the command or one of its txn ops has no operation set, when an enum holds a value that
// kv.proto does not list, or for a lease checkpoint of more than kMaxLeaseCheckpoints leases.
// Decoding does not validate (see below).
absl::StatusOr<Command> DecodeCommand(absl::string_view bytes);

// The same conversions on the generated message, for callers that embed commands elsewhere.
void ToProto(const Command& c, kvpb::Command* out);
absl::StatusOr<Command> FromProto(const kvpb::Command& in);

// Builds the ApplyItem for a committed entry: empty `data` is a no-op; otherwise the decoded
// command, or the decode error (the undecodable-entry rule above).
ApplyItem DecodeEntry(uint64_t index, absl::string_view data);

// The checks Apply makes before executing a command (etcd's checks at its API layer):
//   - every key (put, delete-range, range op, compare) is non-empty;
//   - a txn has at most kMaxTxnOps compares and at most kMaxTxnOps ops per branch;
//   - within one txn branch no key is put twice, and no put key lies in one of the branch's
//     delete ranges (etcd's ErrDuplicateKey; "\0" range ends count as "every key >= key");
//   - no range op of a txn reads at a revision;
//   - a put with ignore_lease has no lease (kErrLeaseProvided), and no
//     lease is negative (kNotFound kErrLeaseNotFound);
//   - a lease grant has an id > 0 and a ttl in 1..kMaxLeaseTtl (above: kOutOfRange
//     kErrLeaseTtlTooLarge); a revoke's id > 0 (kNotFound kErrLeaseNotFound); a checkpoint
//     lists at most kMaxLeaseCheckpoints leases, each with id > 0 and a remaining TTL in
//     0..kMaxLeaseTtl (0 clears a checkpoint: the full TTL again).
// A compaction always passes (its revision is checked against the store when applied).
// kInvalidArgument naming the first violation unless said otherwise above.
absl::Status ValidateCommand(const Command& c);

// kInvalidArgument for an empty key.
absl::Status ValidateRangeRequest(const RangeRequest& r);

}  // namespace amaters::kv

#endif  // AMATERS_ENGINE_KV_COMMAND_H_
