#include "engine/alerts/event.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace amaters::alerts {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

const char* EventName(const Event& event) {
  return std::visit(Overloaded{
                        [](const NodeFailed&) { return "NodeFailed"; },
                        [](const NodeRecovered&) { return "NodeRecovered"; },
                        [](const LeaderChanged&) { return "LeaderChanged"; },
                        [](const QuorumLost&) { return "QuorumLost"; },
                        [](const QuorumRestored&) { return "QuorumRestored"; },
                        [](const SlowReplication&) { return "SlowReplication"; },
                        [](const SlowReplicationCleared&) { return "SlowReplicationCleared"; },
                        [](const CertificateExpiring&) { return "CertificateExpiring"; },
                    },
                    event);
}

std::string DescribeEvent(const Event& event) {
  std::string fields = std::visit(
      Overloaded{
          [](const NodeFailed& e) {
            return absl::StrCat("node_id=", e.node_id, e.learner ? " learner" : "");
          },
          [](const NodeRecovered& e) { return absl::StrCat("node_id=", e.node_id); },
          [](const LeaderChanged& e) {
            return absl::StrCat("old=", e.old_leader, " new=", e.new_leader, " term=", e.term);
          },
          [](const QuorumLost& e) {
            return absl::StrCat("cluster_size=", e.cluster_size, " reachable=", e.reachable);
          },
          [](const QuorumRestored& e) {
            return absl::StrCat("cluster_size=", e.cluster_size, " reachable=", e.reachable);
          },
          [](const SlowReplication& e) {
            return absl::StrCat("follower=", e.follower, " lag_entries=", e.lag_entries);
          },
          [](const SlowReplicationCleared& e) {
            return absl::StrCat("follower=", e.follower, " lag_entries=", e.lag_entries);
          },
          [](const CertificateExpiring& e) {
            return absl::StrCat("path=\"", absl::CHexEscape(e.path), "\" days_left=", e.days_left);
          },
      },
      event);
  return absl::StrCat(EventName(event), "{", fields, "}");
}

}  // namespace amaters::alerts
