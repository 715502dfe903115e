#include "sim/trace_events.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace amaters::sim::trace {

std::string Line(uint64_t t_ns, absl::string_view text) {
  return absl::StrFormat("%12.6f %s", static_cast<double>(t_ns) / 1e9, text);
}

std::string Config(uint64_t seed, absl::string_view settings) {
  return absl::StrCat("config seed=", seed, " ", settings);
}
std::string ScenarioStep(absl::string_view file, int line, absl::string_view step) {
  return absl::StrCat("scenario ", file, ":", line, ": ", step);
}
std::string Fail(absl::string_view why) { return absl::StrCat("FAIL ", why); }

std::string Crash(Node n) { return absl::StrCat("crash n", n); }
std::string Restart(Node n) { return absl::StrCat("restart n", n); }
std::string Pause(Node n) { return absl::StrCat("pause n", n); }
std::string Resume(Node n) { return absl::StrCat("resume n", n); }
std::string Wipe(Node n) { return absl::StrCat("wipe n", n); }
std::string Corrupt(Node n, absl::string_view file, uint64_t offset) {
  return absl::StrCat("corrupt n", n, " ", file, " @", offset);
}
std::string SlowDisk(Node n, bool slow) {
  return absl::StrCat(slow ? "slow disk n" : "normal disk n", n);
}
std::string DiskFull(Node n, bool full) {
  return absl::StrCat(full ? "disk full n" : "disk space n", n);
}

std::string Campaign(Node n) { return absl::StrCat("campaign n", n); }
std::string Transfer(Node from, Node to) { return absl::StrCat("transfer n", from, "->n", to); }

std::string Partition(const std::vector<std::set<Node>>& groups) {
  std::string s = "partition";
  for (const std::set<Node>& g : groups) absl::StrAppend(&s, " {", absl::StrJoin(g, ","), "}");
  return s;
}
std::string Block(Node from, Node to) { return absl::StrCat("block n", from, "->n", to); }
std::string Clog(Node from, Node to, uint64_t extra_ms) {
  return absl::StrCat("clog n", from, "->n", to, " +", extra_ms, "ms");
}
std::string HealNetwork() { return "heal network"; }
std::string HealAll() { return "heal all"; }

std::string Start(Node n, absl::string_view detail) {
  return absl::StrCat("n", n, " start", detail.empty() ? "" : " ", detail);
}
std::string Leader(Node n, uint64_t term) { return absl::StrCat("n", n, " leader term ", term); }
std::string Refused(Node n, absl::string_view why) {
  return absl::StrCat("n", n, " refuses to start: ", why);
}

std::string Fatal(Node n, absl::string_view why) {
  return absl::StrCat("n", n, " fatal: ", why);
}

std::string Client(const checker::Operation& op) {
  return absl::StrCat("  client ", checker::DescribeOperation(op));
}

}  // namespace amaters::sim::trace
