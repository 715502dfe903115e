// amaters-ctl's output: etcdctl's simple format, or JSON (--json). Pure formatting.
//
// JSON follows the shape of `etcdctl -w json` (etcd's JSON field names; keys and values as
// base64 strings, ids and counts as numbers), except that every field is present even when
// zero (etcdctl leaves zero fields out). Each command prints one JSON document and a newline.
#ifndef AMATERS_SERVER_CTL_OUTPUT_H_
#define AMATERS_SERVER_CTL_OUTPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "proto/etcd/rpc.pb.h"

namespace amaters::ctl {

// A JSON string literal (quotes included) for UTF-8 text: escapes '"', '\\' and control
// characters (\n, \t, ... and \u00XX); other bytes pass through unchanged.
std::string JsonString(absl::string_view text);

// A JSON string literal holding the standard base64 encoding of arbitrary bytes.
std::string JsonBytes(absl::string_view bytes);

// etcdctl's humanize.Bytes (SI units): "0 B", "9 B", "10 B", "1.5 kB", "20 kB", "3.1 MB".
std::string HumanBytes(uint64_t bytes);

// One-line text for a message that may hold newlines (gRPC error details): newlines and
// carriage returns become spaces.
std::string OneLine(absl::string_view text);

// put: "OK". JSON: {"header":{...}} plus "prev_kv" when the response has one.
std::string FormatPut(const etcdserverpb::PutResponse& response, bool json);

// get/range: for each key a key line, then a value line, bytes as they are (like etcdctl;
// with --keys-only the value lines are empty, as etcdctl 3.4 prints them). Nothing for an
// empty result. JSON: {"header","kvs","more","count"}.
std::string FormatRange(const etcdserverpb::RangeResponse& response, bool json);

// del: the number of keys deleted. JSON: {"header","deleted","prev_kvs"}.
std::string FormatDelete(const etcdserverpb::DeleteRangeResponse& response, bool json);

struct EndpointStatus {
  std::string endpoint;
  etcdserverpb::StatusResponse status;
};

// status: per endpoint "endpoint, member id, leader id, raft term, raft index, db size,
// is leader" (ids in hex as etcdctl prints them, db size as etcdctl's humanize.Bytes).
// JSON: an array of {"Endpoint": ..., "Status": {...}} (etcdctl's endpoint status shape).
std::string FormatStatus(const std::vector<EndpointStatus>& statuses, bool json);

// member list: per member "id, started|unstarted, name, peer URLs, client URLs, is learner"
// (etcdctl's format; a member with no name yet is "unstarted"). JSON: {"header","members"}.
std::string FormatMemberList(const etcdserverpb::MemberListResponse& response, bool json);

// member add: "Member <id> added to cluster <id>", then the [cluster] settings the new node
// starts with (node_id in decimal, initial_cluster_state = "existing", peers from the members'
// first peer URLs). JSON: {"header","member","members"}.
std::string FormatMemberAdded(const etcdserverpb::MemberAddResponse& response, bool json);

// member remove/update/promote: "Member <id> <verb> cluster <id>" (verb: "removed from",
// "updated in", "promoted in"). JSON: {"header","members"}.
std::string FormatMemberChanged(
    absl::string_view verb, uint64_t id, const etcdserverpb::ResponseHeader& header,
    const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members, bool json);

}  // namespace amaters::ctl

#endif  // AMATERS_SERVER_CTL_OUTPUT_H_
