#include "server/ctl/output.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/admin/json.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

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

}  // namespace amaters::ctl
