#include "sim/chaos/history.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/check.h"
#include "server/admin/json.h"

namespace amaters::sim::chaos {

using server::JsonString;

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPending:
      return "invoke";
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kInfo:
      return "info";
  }
  return "info";
}

namespace {

std::string OptionalJson(const std::optional<std::string>& v) {
  return v.has_value() ? JsonString(*v) : "null";
}

struct Line {
  uint64_t time_ns;
  size_t op;  // ties: invocations before completions, then by op
  bool completion;
  std::string text;
};

std::string EventJson(const ClientOp& op, bool completion) {
  const Outcome type = completion ? op.outcome : Outcome::kPending;
  std::string value;
  if (op.is_put) {
    value = JsonString(op.value);
  } else {
    value = completion && op.outcome == Outcome::kOk ? OptionalJson(op.read) : "null";
  }
  std::string line = absl::StrCat("{\"process\":", op.process, ",\"type\":\"", OutcomeName(type),
                                  "\",\"f\":\"", op.is_put ? "put" : "get",
                                  "\",\"key\":", JsonString(op.key), ",\"value\":", value,
                                  ",\"time\":", completion ? op.complete_ns : op.invoke_ns);
  if (completion && !op.error.empty()) absl::StrAppend(&line, ",\"error\":", JsonString(op.error));
  line += "}\n";
  return line;
}

}  // namespace

std::string HistoryJsonLines(const std::vector<ClientOp>& ops) {
  std::vector<Line> lines;
  lines.reserve(ops.size() * 2);
  for (size_t i = 0; i < ops.size(); ++i) {
    const ClientOp& op = ops[i];
    lines.push_back({op.invoke_ns, i, false, EventJson(op, false)});
    if (op.outcome != Outcome::kPending) {
      AM_CHECK_GE(op.complete_ns, op.invoke_ns, "op ", i, " completes before it starts");
      lines.push_back({op.complete_ns, i, true, EventJson(op, true)});
    }
  }
  std::sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    if (a.time_ns != b.time_ns) return a.time_ns < b.time_ns;
    if (a.completion != b.completion) return !a.completion;
    return a.op < b.op;
  });
  std::string out;
  for (const Line& l : lines) out += l.text;
  return out;
}

std::vector<checker::Operation> CheckerOperations(const std::vector<ClientOp>& ops) {
  std::vector<checker::Operation> out;
  out.reserve(ops.size());
  for (const ClientOp& op : ops) {
    checker::Operation c =
        op.is_put ? checker::Operation::Put(op.process, op.key, op.value, op.invoke_ns,
                                            std::max(op.complete_ns, op.invoke_ns))
                  : checker::Operation::Get(op.process, op.key, op.read, op.invoke_ns,
                                            std::max(op.complete_ns, op.invoke_ns));
    switch (op.outcome) {
      case Outcome::kOk:
        out.push_back(std::move(c));
        break;
      case Outcome::kFail:
        out.push_back(c.Failed());
        break;
      case Outcome::kPending:
      case Outcome::kInfo:
        out.push_back(c.Unknown());
        break;
    }
  }
  return out;
}

uint64_t CountLostAcknowledged(
    const std::vector<ClientOp>& ops,
    const std::map<std::string, std::optional<std::string>>& final_values) {
  // The put that wrote each final value (values are unique in a run).
  std::map<std::string, const ClientOp*> writer;
  for (const ClientOp& op : ops) {
    if (!op.is_put) continue;
    auto it = final_values.find(op.key);
    if (it != final_values.end() && it->second == op.value) {
      AM_CHECK(writer.find(op.key) == writer.end(), "value ", op.value, " written twice");
      writer[op.key] = &op;
    }
  }
  uint64_t lost = 0;
  for (const ClientOp& op : ops) {
    if (!op.is_put || op.outcome != Outcome::kOk) continue;
    auto fv = final_values.find(op.key);
    if (fv == final_values.end()) continue;
    auto w = writer.find(op.key);
    if (w == writer.end()) {
      ++lost;  // absent, or a value nobody wrote
      continue;
    }
    const ClientOp& last = *w->second;
    if (&last != &op && last.outcome == Outcome::kOk && last.complete_ns < op.invoke_ns) ++lost;
  }
  return lost;
}

Tally TallyOf(const std::vector<ClientOp>& ops) {
  Tally t;
  for (const ClientOp& op : ops) {
    ++t.ops;
    switch (op.outcome) {
      case Outcome::kOk:
        ++t.ok;
        break;
      case Outcome::kFail:
        ++t.fail;
        break;
      case Outcome::kPending:
      case Outcome::kInfo:
        ++t.info;
        break;
    }
  }
  AM_CHECK_EQ(t.ops, t.ok + t.fail + t.info);
  return t;
}

Availability AvailabilityOf(const std::vector<ClientOp>& ops, uint64_t min_gap_ns) {
  Availability a;
  std::vector<uint64_t> latencies;
  std::vector<uint64_t> done;
  for (const ClientOp& op : ops) {
    if (op.outcome != Outcome::kOk) continue;
    a.acked_puts += op.is_put ? 1 : 0;
    latencies.push_back(op.complete_ns - op.invoke_ns);
    done.push_back(op.complete_ns);
  }
  if (latencies.empty()) return a;
  std::sort(latencies.begin(), latencies.end());
  a.p50_ns = latencies[(latencies.size() - 1) / 2];
  a.p99_ns = latencies[(latencies.size() - 1) * 99 / 100];
  std::sort(done.begin(), done.end());
  for (size_t i = 1; i < done.size(); ++i) {
    const uint64_t gap = done[i] - done[i - 1];
    if (gap < min_gap_ns) continue;
    a.unavailable.emplace_back(done[i - 1], done[i]);
    a.longest_unavailable_ns = std::max(a.longest_unavailable_ns, gap);
  }
  AM_CHECK_LE(a.p50_ns, a.p99_ns);
  return a;
}

const char* LinearizableWord(checker::Verdict verdict) {
  switch (verdict) {
    case checker::Verdict::kOk:
      return "yes";
    case checker::Verdict::kViolation:
      return "no";
    case checker::Verdict::kUnknown:
      return "unknown";
  }
  return "unknown";
}

}  // namespace amaters::sim::chaos
