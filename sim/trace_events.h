// The timeline's events, written once for both drivers: the simulator (Simulation::Trace) and
// the chaos runner on real processes (sim/chaos/runner.h). Each function is one kind of event
// and returns its trace line's text; Line() adds the time. sim/html.cc draws these lines
// (`--html`), so a real run and a simulated one get the same page, and it reads trace files
// written earlier the same way.
//
// The vocabulary (node ids as n<id>):
//   config seed=S <settings>      scenario FILE:LINE: STEP      FAIL <why>
//   crash nN   restart nN   pause nN   resume nN   wipe nN   corrupt nN FILE @OFFSET
//   slow disk nN / normal disk nN   disk full nN / disk space nN
//   campaign nN   transfer nA->nB
//   partition {1,2} {3}   block nA->nB   clog nA->nB +Dms   heal network   heal all
//   nN start[ DETAIL]     nN leader term T      nN refuses to start: WHY     nN fatal: WHY
//   client <checker::DescribeOperation>  (indented by two spaces, as message lines are)
#ifndef AMATERS_SIM_TRACE_EVENTS_H_
#define AMATERS_SIM_TRACE_EVENTS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "sim/checker/linearizability.h"

namespace amaters::sim::trace {

using Node = uint64_t;

// "%12.6f <text>": the time in seconds, then the text.
std::string Line(uint64_t t_ns, absl::string_view text);

std::string Config(uint64_t seed, absl::string_view settings);
std::string ScenarioStep(absl::string_view file, int line, absl::string_view step);
std::string Fail(absl::string_view why);

std::string Crash(Node n);
std::string Restart(Node n);
std::string Pause(Node n);
std::string Resume(Node n);
std::string Wipe(Node n);
std::string Corrupt(Node n, absl::string_view file, uint64_t offset);
std::string SlowDisk(Node n, bool slow);  // "slow disk" / "normal disk"
std::string DiskFull(Node n, bool full);  // "disk full" / "disk space"

std::string Campaign(Node n);
std::string Transfer(Node from, Node to);

std::string Partition(const std::vector<std::set<Node>>& groups);
std::string Block(Node from, Node to);
std::string Clog(Node from, Node to, uint64_t extra_ms);
std::string HealNetwork();
std::string HealAll();

std::string Start(Node n, absl::string_view detail);  // detail may be empty
std::string Leader(Node n, uint64_t term);
std::string Refused(Node n, absl::string_view why);  // exited while starting
std::string Fatal(Node n, absl::string_view why);    // stopped after it had started

std::string Client(const checker::Operation& op);

}  // namespace amaters::sim::trace

#endif  // AMATERS_SIM_TRACE_EVENTS_H_
