#include "sim/chaos/support.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace amaters::sim::chaos {

namespace {

std::string WhyConditionUnsupported(const Condition& c) {
  using K = Condition::Kind;
  switch (c.kind) {
    case K::kLeader:
    case K::kNoLeader:
    case K::kLeaderIn:
    case K::kTerm:
    case K::kCommitted:
    case K::kUp:
    case K::kDown:
    case K::kRefused:
      return "";
    case K::kAlert:
    case K::kAlertCount:
      return "alert conditions are checked in the simulator only";
    case K::kSnapshot:
    case K::kInstalls:
      return "snapshot conditions are checked in the simulator only";
    case K::kVoters:
    case K::kLearners:
      return "configuration conditions are checked in the simulator only";
  }
  return "unknown condition";
}

}  // namespace

std::string WhyUnsupported(const Command& command) {
  using K = Command::Kind;
  switch (command.kind) {
    case K::kWorkload:
    case K::kPartition:
    case K::kIsolate:
    case K::kBlock:
    case K::kClog:
    case K::kHeal:
    case K::kSlowDisk:
    case K::kDiskFull:
    case K::kWipe:
    case K::kCorruptWal:
    case K::kCrash:
    case K::kRestart:
    case K::kPause:
    case K::kResume:
    case K::kCampaign:
    case K::kTransfer:
    case K::kHealAll:
    case K::kWait:
    case K::kExpectLinearizable:
    case K::kExpectConverged:
    case K::kExpectProgress:
    case K::kExpectNoProgress:
      return "";
    case K::kWaitFor:
    case K::kExpect:
      return WhyConditionUnsupported(command.condition);
    case K::kAddLearner:
    case K::kPromote:
    case K::kRemoveMember:
    case K::kReplace:
      return "membership changes need new members' ports and configs (etcdctl member, "
             "docs/membership.md)";
  }
  return "unknown command";
}

absl::Status CheckRealClusterSupport(const Scenario& scenario) {
  std::vector<std::string> errors;
  for (const ScenarioOption& o : scenario.options) {
    errors.push_back(absl::StrCat(scenario.file, ":", o.line, ": `option ", o.name, " ", o.value,
                                  "`: not supported for real clusters: options configure the "
                                  "simulator"));
  }
  for (const Command& c : scenario.commands) {
    const std::string why = WhyUnsupported(c);
    if (why.empty()) continue;
    errors.push_back(absl::StrCat(scenario.file, ":", c.line, ": `", c.text,
                                  "`: not supported for real clusters: ", why));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace amaters::sim::chaos
