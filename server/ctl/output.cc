#include "server/ctl/output.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/admin/json.h"

namespace amaters::ctl {
namespace {

std::string HeaderJson(const etcdserverpb::ResponseHeader& h) {
  return absl::StrCat("{\"cluster_id\":", h.cluster_id(), ",\"member_id\":", h.member_id(),
                      ",\"revision\":", h.revision(), ",\"raft_term\":", h.raft_term(), "}");
}

std::string KvJson(const mvccpb::KeyValue& kv) {
  return absl::StrCat("{\"key\":", JsonBytes(kv.key()),
                      ",\"create_revision\":", kv.create_revision(),
                      ",\"mod_revision\":", kv.mod_revision(), ",\"version\":", kv.version(),
                      ",\"value\":", JsonBytes(kv.value()), ",\"lease\":", kv.lease(), "}");
}

std::string KvsJson(const google::protobuf::RepeatedPtrField<mvccpb::KeyValue>& kvs) {
  std::string out = "[";
  for (int i = 0; i < kvs.size(); ++i) absl::StrAppend(&out, i ? "," : "", KvJson(kvs.Get(i)));
  return out + "]";
}

const char* Bool(bool b) { return b ? "true" : "false"; }

void AppendKvText(const mvccpb::KeyValue& kv, std::string* out) {
  absl::StrAppend(out, kv.key(), "\n", kv.value(), "\n");
}

std::string StatusJson(const etcdserverpb::StatusResponse& s) {
  std::vector<std::string> errors;
  for (const std::string& e : s.errors()) errors.push_back(JsonString(e));
  return absl::StrCat("{\"header\":", HeaderJson(s.header()), ",\"version\":",
                      JsonString(s.version()), ",\"dbSize\":", s.dbsize(),
                      ",\"leader\":", s.leader(), ",\"raftIndex\":", s.raftindex(),
                      ",\"raftTerm\":", s.raftterm(),
                      ",\"raftAppliedIndex\":", s.raftappliedindex(), ",\"errors\":[",
                      absl::StrJoin(errors, ","), "],\"dbSizeInUse\":", s.dbsizeinuse(),
                      ",\"isLearner\":", Bool(s.islearner()), "}");
}

std::string StringsJson(const google::protobuf::RepeatedPtrField<std::string>& strings) {
  std::vector<std::string> quoted;
  for (const std::string& x : strings) quoted.push_back(JsonString(x));
  return absl::StrCat("[", absl::StrJoin(quoted, ","), "]");
}

std::string MemberJson(const etcdserverpb::Member& m) {
  return absl::StrCat("{\"ID\":", m.id(), ",\"name\":", JsonString(m.name()),
                      ",\"peerURLs\":", StringsJson(m.peerurls()),
                      ",\"clientURLs\":", StringsJson(m.clienturls()),
                      ",\"isLearner\":", Bool(m.islearner()), "}");
}

std::string MembersJson(const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members) {
  std::vector<std::string> items;
  for (const etcdserverpb::Member& m : members) items.push_back(MemberJson(m));
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

// "http://10.0.0.11:7879/" -> "10.0.0.11:7879" (what [cluster] peers holds).
std::string UrlAddress(absl::string_view url) {
  if (size_t scheme = url.find("://"); scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  while (absl::ConsumeSuffix(&url, "/")) {
  }
  return std::string(url);
}

}  // namespace

std::string JsonString(absl::string_view text) { return server::JsonString(text); }

std::string JsonBytes(absl::string_view bytes) {
  return absl::StrCat("\"", absl::Base64Escape(bytes), "\"");
}

std::string HumanBytes(uint64_t bytes) {
  // go-humanize's humanateBytes(s, 1000, sizes), which etcdctl's table printer uses.
  static const char* const kSizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 10) return absl::StrCat(bytes, " B");
  const double s = static_cast<double>(bytes);
  const double e = std::floor(std::log(s) / std::log(1000.0));
  const double val = std::floor(s / std::pow(1000.0, e) * 10 + 0.5) / 10;
  const char* suffix = kSizes[static_cast<int>(e)];
  return val < 10 ? absl::StrFormat("%.1f %s", val, suffix)
                  : absl::StrFormat("%.0f %s", val, suffix);
}

std::string OneLine(absl::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

std::string FormatPut(const etcdserverpb::PutResponse& response, bool json) {
  if (json) {
    std::string out = absl::StrCat("{\"header\":", HeaderJson(response.header()));
    if (response.has_prev_kv()) absl::StrAppend(&out, ",\"prev_kv\":", KvJson(response.prev_kv()));
    return out + "}\n";
  }
  std::string out = "OK\n";
  if (response.has_prev_kv()) AppendKvText(response.prev_kv(), &out);
  return out;
}

std::string FormatRange(const etcdserverpb::RangeResponse& response, bool json) {
  if (json) {
    return absl::StrCat("{\"header\":", HeaderJson(response.header()),
                        ",\"kvs\":", KvsJson(response.kvs()), ",\"more\":", Bool(response.more()),
                        ",\"count\":", response.count(), "}\n");
  }
  std::string out;
  for (const mvccpb::KeyValue& kv : response.kvs()) AppendKvText(kv, &out);
  return out;
}

std::string FormatDelete(const etcdserverpb::DeleteRangeResponse& response, bool json) {
  if (json) {
    return absl::StrCat("{\"header\":", HeaderJson(response.header()),
                        ",\"deleted\":", response.deleted(),
                        ",\"prev_kvs\":", KvsJson(response.prev_kvs()), "}\n");
  }
  std::string out = absl::StrCat(response.deleted(), "\n");
  for (const mvccpb::KeyValue& kv : response.prev_kvs()) AppendKvText(kv, &out);
  return out;
}

std::string FormatStatus(const std::vector<EndpointStatus>& statuses, bool json) {
  std::string out;
  if (json) {
    out = "[";
    for (size_t i = 0; i < statuses.size(); ++i) {
      absl::StrAppend(&out, i ? "," : "", "{\"Endpoint\":", JsonString(statuses[i].endpoint),
                      ",\"Status\":", StatusJson(statuses[i].status), "}");
    }
    return out + "]\n";
  }
  for (const EndpointStatus& e : statuses) {
    const etcdserverpb::StatusResponse& s = e.status;
    absl::StrAppendFormat(&out, "%s, %x, %x, %d, %d, %s, %s\n", e.endpoint,
                          s.header().member_id(), s.leader(), s.raftterm(), s.raftindex(),
                          HumanBytes(static_cast<uint64_t>(std::max<int64_t>(s.dbsize(), 0))),
                          Bool(s.leader() != 0 && s.leader() == s.header().member_id()));
  }
  return out;
}


std::string FormatMemberList(const etcdserverpb::MemberListResponse& response, bool json) {
  if (json) {
    return absl::StrCat("{\"header\":", HeaderJson(response.header()),
                        ",\"members\":", MembersJson(response.members()), "}\n");
  }
  std::string out;
  for (const etcdserverpb::Member& m : response.members()) {
    absl::StrAppendFormat(&out, "%x, %s, %s, %s, %s, %s\n", m.id(),
                          m.name().empty() ? "unstarted" : "started", m.name(),
                          absl::StrJoin(m.peerurls(), ","), absl::StrJoin(m.clienturls(), ","),
                          Bool(m.islearner()));
  }
  return out;
}

std::string FormatMemberAdded(const etcdserverpb::MemberAddResponse& response, bool json) {
  const etcdserverpb::Member& added = response.member();
  if (json) {
    return absl::StrCat("{\"header\":", HeaderJson(response.header()), ",\"member\":",
                        MemberJson(added), ",\"members\":", MembersJson(response.members()),
                        "}\n");
  }
  std::vector<std::string> peers;
  for (const etcdserverpb::Member& m : response.members()) {
    if (m.peerurls().empty()) continue;
    peers.push_back(JsonString(absl::StrCat(m.id(), ":", UrlAddress(m.peerurls(0)))));
  }
  return absl::StrFormat(
      "Member %x added to cluster %x\n\n"
      "# The new node's [cluster] settings (node_id is the member id in decimal):\n"
      "[cluster]\nnode_id = %d\ninitial_cluster_state = \"existing\"\npeers = [%s]\n",
      added.id(), response.header().cluster_id(), added.id(), absl::StrJoin(peers, ", "));
}

std::string FormatMemberChanged(
    absl::string_view verb, uint64_t id, const etcdserverpb::ResponseHeader& header,
    const google::protobuf::RepeatedPtrField<etcdserverpb::Member>& members, bool json) {
  if (json) {
    return absl::StrCat("{\"header\":", HeaderJson(header), ",\"members\":",
                        MembersJson(members), "}\n");
  }
  return absl::StrFormat("Member %x %s cluster %x\n", id, verb, header.cluster_id());
}

}  // namespace amaters::ctl
